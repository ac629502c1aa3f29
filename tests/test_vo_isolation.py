"""Every asset belongs to a VO; a non-public asset is invisible to readers outside its VO."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from ai4kg.api.app import create_app
from ai4kg.catalog import ImportOptions, document_of, import_files
from ai4kg.cli import main
from ai4kg.config import Settings
from ai4kg.graph.search import FacetQuery
from ai4kg.graph.store import KnowledgeGraph

from conftest import MODULES

PUBLIC_FILE = MODULES / "ai4os-yolo-torch__ai4-metadata.yml"
PRIVATE_FILE = MODULES / "ai4os-demo-app__ai4-metadata.yml"  # a module, not a tool
PRIVATE = "https://w3id.org/ai4kg/id/module/ai4os-demo-app"


@pytest.fixture(scope="module")
def graph(store_url: str | None) -> KnowledgeGraph:
    with KnowledgeGraph(Settings(data_dir=None, sparql_store_url=store_url)) as kg:
        import_files(kg, [PUBLIC_FILE])
        [report] = import_files(kg, [PRIVATE_FILE], ImportOptions(vo="vo.secret.eu", visibility="virtual-organisation"))
        assert report.iri == PRIVATE
        yield kg


def test_the_graph_records_owner_and_visibility(graph: KnowledgeGraph) -> None:
    values = {q.predicate.value.rsplit("#", 1)[-1]: q.object.value for q in graph.asset_quads(PRIVATE)}
    assert values["belongsToVO"] == "https://w3id.org/ai4kg/id/virtualorganisation/vo.secret.eu"
    assert values["visibility"] == "https://w3id.org/ai4kg/vocab/visibility/virtual-organisation"
    assert "vo" not in document_of(graph.asset_quads(PRIVATE))  # not part of the metadata document


def test_index_hides_other_vos_assets(graph: KnowledgeGraph) -> None:
    def listed(readers):  # type: ignore[no-untyped-def]
        return graph.index.filter(FacetQuery("Module", readers)).iris

    assert PRIVATE not in listed(frozenset()) and PRIVATE not in listed(frozenset({"vo.other.eu"}))
    assert PRIVATE in listed(frozenset({"vo.secret.eu"})) and PRIVATE in listed(None)
    assert PRIVATE not in [h.iri for h in graph.search("toy application", frozenset())]
    assert PRIVATE in [h.iri for h in graph.search("toy application", frozenset({"vo.secret.eu"}))]


def test_anonymous_api_readers_never_see_it(graph: KnowledgeGraph) -> None:
    client = TestClient(create_app(graph))
    assert client.get("/v1/catalog/modules").json() == ["ai4os-yolo-torch"]
    assert client.get("/v1/catalog/modules", params={"q": "toy application"}).json() == []
    assert [d["name"] for d in client.get("/v1/catalog/modules/detail").json()] == ["ai4os-yolo-torch"]
    assert client.get("/v1/catalog/modules/ai4os-demo-app/metadata").status_code == 404
    assert client.get("/id/module/ai4os-demo-app").status_code == 404
    assert all(hit["iri"] != PRIVATE for hit in client.get("/search", params={"q": "toy application"}).json())


def test_import_options_are_checked(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--data", str(tmp_path / "d"), "import", "--vo", "bad vo!", str(PUBLIC_FILE)])
    assert result.exit_code == 1 and "vo" in result.stderr and "bad vo!" in result.stderr
    result = CliRunner().invoke(main, ["--data", str(tmp_path / "d"), "import", "--visibility", "secret",
                                       str(PUBLIC_FILE)])
    assert result.exit_code == 2 and "visibility" in result.stderr


@pytest.mark.parametrize("query", [
    "SELECT ?t WHERE { ?m <https://w3id.org/ai4kg/ns#title> ?t }",
    "SELECT ?t WHERE { GRAPH ?g { ?m <https://w3id.org/ai4kg/ns#title> ?t } }",
    f"SELECT ?t WHERE {{ GRAPH <{PRIVATE}> {{ ?m <https://w3id.org/ai4kg/ns#title> ?t }} }}",
    f"SELECT ?t FROM <{PRIVATE}> WHERE {{ ?m <https://w3id.org/ai4kg/ns#title> ?t }}",
    f"SELECT ?t FROM NAMED <{PRIVATE}> WHERE {{ GRAPH ?g {{ ?m <https://w3id.org/ai4kg/ns#title> ?t }} }}",
    "PREFIX m: <https://w3id.org/ai4kg/id/module/> SELECT ?t FROM m:ai4os-demo-app WHERE { ?m ?p ?t }",
    f"SELECT ?t WHERE {{ <{PRIVATE}> ?p ?t }}",
])
def test_sparql_never_shows_another_vos_graph(graph: KnowledgeGraph, query: str) -> None:
    client = TestClient(create_app(graph))
    for params in ({"query": query}, {"query": query, "default-graph-uri": PRIVATE},
                   {"query": query, "named-graph-uri": PRIVATE}):
        response = client.get("/sparql", params=params, headers={"accept": "application/sparql-results+json"})
        assert response.status_code == 200, response.text
        values = [b["t"]["value"] for b in response.json()["results"]["bindings"]]
        assert all("demo-app" not in v and "toy application" not in v for v in values), (params, values)
    # the public module stays visible through the same interface
    public = client.get("/sparql", params={"query": "SELECT ?t WHERE { ?m <https://w3id.org/ai4kg/ns#title> ?t }"},
                        headers={"accept": "application/sparql-results+json"}).json()
    assert [b["t"]["value"] for b in public["results"]["bindings"]] == ["YOLO models"]


def test_members_of_the_vo_query_their_graphs(graph: KnowledgeGraph) -> None:
    from ai4kg.api.sparql import _confined

    mine = _confined(graph, "SELECT * { ?s ?p ?o }", {}, frozenset({"vo.secret.eu"}), "http://x/sparql")
    theirs = _confined(graph, "SELECT * { ?s ?p ?o }", {}, frozenset({"vo.other.eu"}), "http://x/sparql")
    assert PRIVATE in {g.value for g in mine["default_graph"]} and PRIVATE in {g.value for g in mine["named_graphs"]}
    assert PRIVATE not in {g.value for g in theirs["default_graph"] + theirs["named_graphs"]}
    assert _confined(graph, "SELECT * { ?s ?p ?o }", {}, None, "http://x/sparql") == {}  # the platform: everything
