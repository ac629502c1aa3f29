"""The MLDCAT-AP and DCAT-AP views against the official shapes in ../shared/standards/, on the real
modules and the demo catalog; how a view is chosen (profile, Accept-Profile) and what it shows whom."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyoxigraph as ox
import pytest
import rdflib
from click.testing import CliRunner
from fastapi.testclient import TestClient
from pyshacl import validate

from ai4kg.api.app import create_app
from ai4kg.catalog import ImportOptions, import_files
from ai4kg.cli import main
from ai4kg.config import Settings
from ai4kg.demo import load_demo_catalog
from ai4kg.graph.store import KnowledgeGraph
from ai4kg.graph.views import VIEWS, view_of

from conftest import SHARED, valid_module_files

STANDARDS = SHARED / "standards"
SH = rdflib.Namespace("http://www.w3.org/ns/shacl#")
IT6, DCAT, DCT = (rdflib.Namespace(n) for n in ("http://data.europa.eu/it6/", "http://www.w3.org/ns/dcat#",
                                                "http://purl.org/dc/terms/"))
MLDCAT_PROFILE = "https://semiceu.github.io/MLDCAT-AP/releases/3.1.0/"

# What the real modules lack, and only that, may make their MLDCAT-AP view fall short of the
# shapes: mandatory properties their sources do not have (reported by the FAIR report), never a
# wrong value, class or datatype.
MISSING_IN_SOURCES = {DCAT.version, IT6.hasFile, IT6.trainedOn, DCT["format"], DCT.title, DCT.description,
                      IT6.collectionDate}


@pytest.fixture(scope="module")
def real() -> KnowledgeGraph:
    with KnowledgeGraph(Settings.in_memory()) as graph:
        reports = import_files(graph, valid_module_files())
        assert {r.status for r in reports} <= {"imported", "skipped"}
        yield graph


@pytest.fixture(scope="module")
def mldcat_shapes() -> rdflib.Graph:
    return rdflib.Graph().parse(STANDARDS / "mldcat-ap" / "3.1.0" / "shacl" / "mldcat-ap-SHACL.ttl")


@pytest.fixture(scope="module")
def dcat_shapes() -> rdflib.Graph:
    """DCAT-AP 3.0.1 as its README says: the split files merged."""
    merged = rdflib.Graph()
    for name in ("shapes", "range", "shapes_recommended", "deprecateduris"):
        merged.parse(STANDARDS / "dcat-ap" / "3.0.1" / "html-shacl" / f"{name}.ttl")
    return merged


def _rdflib(triples: list[ox.Triple]) -> rdflib.Graph:
    return rdflib.Graph().parse(data=ox.serialize(triples, format=ox.RdfFormat.N_TRIPLES), format="nt")


def _results(data: rdflib.Graph, shapes: rdflib.Graph) -> list[dict]:
    _, report, _ = validate(data, shacl_graph=shapes, inference="none", allow_warnings=True)
    return [{"path": report.value(r, SH.resultPath), "component": report.value(r, SH.sourceConstraintComponent),
             "severity": report.value(r, SH.resultSeverity), "focus": report.value(r, SH.focusNode)}
            for r in report.subjects(rdflib.RDF.type, SH.ValidationResult)]


def test_every_real_module_meets_mldcat_ap_but_for_what_its_source_lacks(real: KnowledgeGraph,
                                                                         mldcat_shapes: rdflib.Graph) -> None:
    modules = [iri for iri in real.index.iris() if "/module/" in iri]
    assert len(modules) >= 30
    missing: Counter = Counter()
    for iri in modules:
        view = _rdflib(VIEWS["mldcat-ap"].describe(real, iri))
        assert (rdflib.URIRef(iri), rdflib.RDF.type, IT6.MachineLearningModel) in view
        for result in _results(view, mldcat_shapes):
            assert result["component"] == SH.MinCountConstraintComponent, (iri, result)
            assert result["path"] in MISSING_IN_SOURCES, (iri, result)
            missing[result["path"]] += 1
    # no value is invented: no module states a version, so none may get one
    assert missing[DCAT.version] == len(modules)


def test_the_catalogue_conforms_to_dcat_ap(real: KnowledgeGraph, dcat_shapes: rdflib.Graph) -> None:
    catalogue = _rdflib(VIEWS["dcat-ap"].catalog(real))
    results = _results(catalogue, dcat_shapes)
    assert [r for r in results if r["severity"] == SH.Violation] == []
    [catalog] = catalogue.subjects(rdflib.RDF.type, DCAT.Catalog)
    listed = set(catalogue.objects(catalog, DCAT.dataset))
    assert len(listed) == len([iri for iri in real.index.iris() if "/module/" in iri])


def test_the_demo_catalog_passes_the_official_shapes(mldcat_shapes: rdflib.Graph, dcat_shapes: rdflib.Graph) -> None:
    with KnowledgeGraph(Settings.in_memory()) as graph:
        load_demo_catalog(graph)
        assert [r for r in _results(_rdflib(VIEWS["dcat-ap"].catalog(graph)), dcat_shapes)
                if r["severity"] == SH.Violation] == []
        for iri in graph.index.iris():
            for result in _results(_rdflib(VIEWS["mldcat-ap"].describe(graph, iri)), mldcat_shapes):
                assert result["path"] in MISSING_IN_SOURCES, (iri, result)


def test_view_queries_run_in_another_sparql_engine(real: KnowledgeGraph) -> None:
    """The CONSTRUCT files are plain SPARQL 1.1: rdflib's engine gives Oxigraph's answer."""
    iri = f"{real.settings.base_url}module/ai4os-yolo-torch"
    union = rdflib.Dataset(default_union=True)
    union.parse(data=real.export(ox.RdfFormat.N_QUADS), format="nquads")
    query = (Path(__file__).resolve().parents[1] / "mappings" / "views" / "mldcat-ap.rq").read_text("utf-8")
    by_rdflib = union.query(query, initBindings={"asset": rdflib.URIRef(iri)}).graph
    assert len(by_rdflib) > 30
    ours = _rdflib(VIEWS["mldcat-ap"].describe(real, iri))
    assert set(by_rdflib) == set(ours)  # the view mints IRIs, no blank nodes: the same triples


# -- choosing a view -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def client() -> TestClient:
    with KnowledgeGraph(Settings.in_memory()) as graph:
        load_demo_catalog(graph)
        import_files(graph, [valid_module_files()[0]], ImportOptions(vo="vo.secret.eu", visibility="virtual-organisation"))
        yield TestClient(create_app(graph))


def test_profile_parameter_and_accept_profile(client: TestClient) -> None:
    by_name = client.get("/id/module/sst-forecaster", params={"profile": "mldcat-ap"},
                         headers={"accept": "application/n-triples"})
    assert by_name.status_code == 200 and by_name.headers["content-profile"] == f"<{MLDCAT_PROFILE}>"
    assert f'<{MLDCAT_PROFILE}>; rel="profile"' in by_name.headers["link"]
    assert "Accept-Profile" in by_name.headers["vary"]
    by_header = client.get("/id/module/sst-forecaster", headers={
        "accept": "application/n-triples", "accept-profile": f"<urn:unknown>;q=1, <{MLDCAT_PROFILE}>;q=0.5"})
    assert by_header.status_code == 200 and by_header.text == by_name.text
    assert "http://data.europa.eu/it6/MachineLearningModel" in by_header.text
    native = client.get("/id/module/sst-forecaster")
    assert native.headers["content-profile"] == "<https://w3id.org/ai4kg/ns>" and native.json()["title"]
    as_json = client.get("/id/module/sst-forecaster", params={"profile": MLDCAT_PROFILE}, headers={"accept": "application/json"})
    assert as_json.status_code == 200 and isinstance(as_json.json(), list)  # JSON-LD, not the metadata document
    for bad, status in (("no-such-view", 400), ("<urn:x>", 400)):
        response = client.get("/id/module/sst-forecaster", params={"profile": bad})
        assert response.status_code == status and response.json()["invalid-params"][0]["name"] == "profile"
    assert view_of(f"<{MLDCAT_PROFILE}>") is VIEWS["mldcat-ap"] is view_of(MLDCAT_PROFILE.rstrip("/"))


def test_the_catalogue_shows_only_what_the_reader_may_see(client: TestClient) -> None:
    response = client.get("/id/catalog", headers={"accept": "application/n-triples"})
    assert response.status_code == 200
    assert response.headers["content-profile"] == "<https://semiceu.github.io/DCAT-AP/releases/3.0.1/>"
    assert "sst-forecaster" in response.text and "/module/" + valid_module_files()[0].name.split("__")[0] not in response.text
    mldcat = client.get("/id/catalog", params={"profile": "mldcat-ap"}, headers={"accept": "text/turtle"})
    assert mldcat.status_code == 200 and "it6:MachineLearningModel" in mldcat.text
    assert client.get("/id/catalog", params={"profile": "ai4kg"}).status_code == 400


def test_export_profile(tmp_path: Path) -> None:
    runner = CliRunner()
    data = ["--data", str(tmp_path / "data")]
    assert runner.invoke(main, [*data, "import", str(valid_module_files()[0])]).exit_code == 0
    result = runner.invoke(main, [*data, "export", "--profile", "mldcat-ap", "--format", "nt"])
    assert result.exit_code == 0, result.output
    triples = list(ox.parse(input=result.stdout_bytes, format=ox.RdfFormat.N_TRIPLES))
    assert any(t.object.value == "http://data.europa.eu/it6/MachineLearningModel" for t in triples)
    compact = runner.invoke(main, [*data, "export", "--profile", "fair4ml", "--format", "jsonld"])
    assert compact.exit_code == 0 and "@context" in json.loads(compact.stdout)  # compact, in the view's context
    assert runner.invoke(main, [*data, "export", "--profile", "nope"]).exit_code == 2
    assert runner.invoke(main, [*data, "export", "--profile", "dcat-ap", "--format", "trig"]).exit_code == 2
