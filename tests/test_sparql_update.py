"""SPARQL Update at /sparql: the administrator's raw access, atomic, with the search index kept in step.

The W3C protocol's update cases run in test_sparql_protocol.py; these tests cover who may update,
what the index says afterwards, the USING rewrite, and what a crash or a failed update leaves."""

from __future__ import annotations

from pathlib import Path

import pyoxigraph as ox
import pytest
from fastapi.testclient import TestClient

from ai4kg.api.app import create_app
from ai4kg.catalog import ImportOptions, import_files
from ai4kg.config import Settings
from ai4kg.credentials import KeyStore
from ai4kg.graph.datasets import ANY_GRAPH, DatasetConflict, graphs_written, with_using
from ai4kg.graph.search import FacetQuery
from ai4kg.graph.store import KnowledgeGraph

from conftest import MODULES

YOLO = "https://w3id.org/ai4kg/id/module/ai4os-yolo-torch"
DEMO = "https://w3id.org/ai4kg/id/module/ai4os-demo-app"
AI4KG = "https://w3id.org/ai4kg/ns#"
ADD_TAG = f'INSERT DATA {{ GRAPH <{YOLO}> {{ <{YOLO}> <{AI4KG}tag> "added-by-update" }} }}'


@pytest.fixture
def graph(store_url: str | None) -> KnowledgeGraph:
    if store_url:  # each test starts from an empty server
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(f"{store_url}/update", data=b"DROP ALL",
                                                      headers={"content-type": "application/sparql-update"}))
    with KnowledgeGraph(Settings(data_dir=None, sparql_store_url=store_url)) as kg:
        import_files(kg, [MODULES / "ai4os-yolo-torch__ai4-metadata.yml"])
        import_files(kg, [MODULES / "ai4os-demo-app__ai4-metadata.yml"], ImportOptions(vo="vo.ai4eosc.eu"))
        yield kg


@pytest.fixture
def keys() -> dict[str, str]:
    store = KeyStore(None)
    return {"store": store,  # type: ignore[dict-item]
            "admin": "Bearer " + store.create("admin", frozenset(), admin=True)[1],
            "member": "Bearer " + store.create("member", frozenset({"vo.ai4eosc.eu"}))[1]}


def _client(graph: KnowledgeGraph, keys: dict, who: str | None = None) -> TestClient:
    headers = {"authorization": keys[who]} if who else {}
    return TestClient(create_app(graph, keys["store"]), headers=headers)


def _update(client: TestClient, update: str, **params: str):  # type: ignore[no-untyped-def]
    return client.post("/sparql", params=params, content=update,
                       headers={"content-type": "application/sparql-update"})


def _tagged(graph: KnowledgeGraph, tag: str) -> list[str]:
    return graph.index.filter(FacetQuery("Module", None, all_of=(("tag", tag),))).iris


def _dump(graph: KnowledgeGraph) -> bytes:
    return graph.export(ox.RdfFormat.N_QUADS)


def test_only_the_administrator_updates(graph: KnowledgeGraph, keys: dict) -> None:
    before = _dump(graph)
    anonymous = _update(_client(graph, keys), ADD_TAG)
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
    member = _update(_client(graph, keys, "member"), ADD_TAG)
    assert member.status_code == 403 and "access:platform:admin" in member.json()["detail"]
    form = _client(graph, keys, "member").post("/sparql", data={"update": ADD_TAG})
    assert form.status_code == 403
    assert _dump(graph) == before
    assert _update(_client(graph, keys, "admin"), ADD_TAG).status_code == 204
    assert _dump(graph) != before


def test_the_index_follows_what_an_update_writes(graph: KnowledgeGraph, keys: dict) -> None:
    admin = _client(graph, keys, "admin")
    assert _tagged(graph, "added-by-update") == []
    assert _update(admin, ADD_TAG).status_code == 204
    assert _tagged(graph, "added-by-update") == [YOLO]
    assert admin.get("/v1/catalog/modules", params={"tags": "added-by-update"}).json() == ["ai4os-yolo-torch"]
    # a graph variable: the update could touch anything, so every asset is re-indexed
    retitle = f'''DELETE {{ GRAPH ?g {{ ?m <{AI4KG}title> ?t }} }}
                 INSERT {{ GRAPH ?g {{ ?m <{AI4KG}title> "Renamed by update" }} }}
                 WHERE {{ GRAPH ?g {{ ?m <{AI4KG}title> ?t ; <{AI4KG}identifier> "ai4os-demo-app" }} }}'''
    assert _update(admin, retitle).status_code == 204
    assert [hit.iri for hit in graph.search("renamed by update")] == [DEMO]
    assert _update(admin, f"DROP GRAPH <{YOLO}>").status_code == 204
    assert graph.index.iris() == [DEMO] and not graph.contains(YOLO)
    assert admin.get("/v1/catalog/modules/ai4os-yolo-torch/metadata").status_code == 404
    assert _update(admin, "CLEAR ALL").status_code == 204
    assert graph.index.iris() == [] and graph.index.pending() == []


def test_a_rejected_update_changes_nothing(graph: KnowledgeGraph, keys: dict) -> None:
    admin, before, indexed = _client(graph, keys, "admin"), _dump(graph), graph.index.iris()
    syntax = _update(admin, f"{ADD_TAG} ; CLEAR XYZ")
    assert syntax.status_code == 400 and syntax.json()["invalid-params"][0]["name"] == "update"
    # the first operation would work, the second fails: Oxigraph applies all of a request or nothing
    failed = _update(admin, f"{ADD_TAG} ; LOAD <http://127.0.0.1:9/nothing-here>")
    assert failed.status_code == 502 and "nothing was written" in failed.json()["detail"]
    for name, value in (("using-graph-uri", "not an iri"), ("default-graph-uri", YOLO)):
        response = _update(admin, ADD_TAG, **{name: value})
        assert response.status_code == 400 and response.json()["invalid-params"][0]["name"] == name
    assert admin.get("/sparql", params={"query": "ASK {}", "using-graph-uri": YOLO}).status_code == 400
    assert admin.get("/sparql", params={"update": ADD_TAG}).status_code == 400  # GET never updates
    both = admin.post("/sparql", data={"update": ADD_TAG, "query": "ASK {}"})
    assert both.status_code == 400
    assert admin.post("/sparql", data={"update": [ADD_TAG, ADD_TAG]}).status_code == 400
    conflict = _update(admin, f"WITH <{YOLO}> DELETE {{ ?s ?p ?o }} WHERE {{ ?s ?p ?o }}", **{"using-graph-uri": YOLO})
    assert conflict.status_code == 400 and "WITH" in conflict.json()["detail"]
    assert _dump(graph) == before and graph.index.iris() == indexed and graph.index.pending() == []
    assert _tagged(graph, "added-by-update") == []


def test_using_graph_uri_is_the_where_clauses_dataset(graph: KnowledgeGraph, keys: dict) -> None:
    admin = _client(graph, keys, "admin")
    copy_titles = f'INSERT {{ GRAPH <urn:x-test:titles> {{ ?m <{AI4KG}title> ?t }} }} WHERE {{ ?m <{AI4KG}title> ?t }}'
    assert _update(admin, copy_titles).status_code == 204  # the real default graph is empty: nothing matches
    assert not graph.contains("urn:x-test:titles")
    assert _update(admin, copy_titles, **{"using-graph-uri": DEMO}).status_code == 204
    [row] = graph.query(f"SELECT ?m WHERE {{ GRAPH <urn:x-test:titles> {{ ?m <{AI4KG}title> ?t }} }}")
    assert row["m"].value == DEMO


def test_a_crash_during_an_update_is_repaired_on_open(tmp_path: Path) -> None:
    """Simulated: the mark set before a graph-variable update, the store changed, the process gone."""
    settings = Settings(data_dir=tmp_path / "data")
    with KnowledgeGraph(settings) as graph:
        import_files(graph, [MODULES / "ai4os-yolo-torch__ai4-metadata.yml"])
        graph.index.mark_pending(["urn:ai4kg:pending:every-asset"])
        graph.store.update(f"DROP GRAPH <{YOLO}>")  # what the update did before the crash
        assert graph.index.iris() == [YOLO]
    with KnowledgeGraph(settings) as graph:
        assert graph.index.iris() == [] and graph.index.pending() == []


def test_with_using_puts_the_clauses_where_the_grammar_wants_them() -> None:
    update = '''PREFIX ex: <http://ex/> # WHERE { } USING
INSERT DATA { GRAPH <http://g> { ex:a ex:b "DELETE WHERE { }" } } ;
INSERT { ?s a ex:Seen } WHERE { ?s a ex:Thing } ;
delete where { ?s ex:gone ?o } ;
DELETE { ?s ex:where ?where } INSERT { ?s ex:using 'WITH' } WHERE{ ?s ex:where ?where FILTER(?where != "}") }'''
    rewritten = with_using(update, ["<http://d>"], ["<http://n>"])
    clauses = "USING <http://d> USING NAMED <http://n>"
    assert rewritten.count(clauses) == 3
    assert f"INSERT {{ ?s a ex:Seen }} {clauses} WHERE {{ ?s a ex:Thing }}" in rewritten
    assert f"delete {{ ?s ex:gone ?o }} {clauses} WHERE {{ ?s ex:gone ?o }}" in rewritten
    assert f"INSERT {{ ?s ex:using 'WITH' }} {clauses} WHERE{{" in rewritten
    assert with_using(update, [], []) == update
    ox.Store().update(rewritten)  # still valid SPARQL
    for own in ("WITH <http://g> DELETE { ?s ?p ?o } WHERE { ?s ?p ?o }",
                "DELETE { ?s ?p ?o } USING <http://g> WHERE { ?s ?p ?o }"):
        with pytest.raises(DatasetConflict):
            with_using(own, ["<http://d>"], [])


def test_graphs_written_read_from_the_text() -> None:
    assert graphs_written(ADD_TAG) == {YOLO}
    assert graphs_written("CLEAR GRAPH <http://a> ; DROP SILENT GRAPH <http://b> ; CLEAR DEFAULT") == \
        {"http://a", "http://b"}
    assert graphs_written("MOVE <http://a> TO <http://b> ; COPY <http://c> TO <http://d> ; ADD DEFAULT TO <http://e>") \
        == {"http://a", "http://b", "http://d", "http://e"}
    assert graphs_written("WITH <http://w> DELETE { ?s ?p ?o } WHERE { ?s ?p ?o }") == {"http://w"}
    assert graphs_written("INSERT { GRAPH <http://i> { ?s ?p 1 } } WHERE { GRAPH ?g { ?s ?p ?o } }") == {"http://i"}
    assert graphs_written("DELETE DATA { <http://s> <http://p> 1 }") == set()  # the default graph: no asset
    assert graphs_written("BASE <http://x/> INSERT DATA { GRAPH <g> { <s> <p> 1 } }") == {"http://x/g"}
    for anything in ("CLEAR ALL", "DROP NAMED", "INSERT { GRAPH ?g { ?s ?p 1 } } WHERE { GRAPH ?g { ?s ?p ?o } }",
                     "not sparql at all"):
        assert graphs_written(anything) is ANY_GRAPH, anything
