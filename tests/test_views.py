"""The MLDCAT-AP and DCAT-AP views against the official shapes in ../shared/standards/, on the real
modules, the demo catalog and SHACL-valid deployments, training runs and datasets written here; how
a view is chosen (profile, Accept-Profile) and what it shows whom."""

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
from ai4kg.credentials import KeyStore
from ai4kg.demo import load_demo_catalog
from ai4kg.graph.store import AssetWrite, KnowledgeGraph
from ai4kg.graph.validation import validate as platform_validate
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
        for iri in graph.index.iris():  # modules, and the provenance of one (a build, a training job, its run)
            for result in _results(_rdflib(VIEWS["mldcat-ap"].describe(graph, iri)), mldcat_shapes):
                assert result["path"] in MISSING_IN_SOURCES | set(NO_SOURCE), (iri, result)


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
        [report] = import_files(graph, [valid_module_files()[0]], ImportOptions(
            identifier="vo-only-module", vo="vo.secret.eu", visibility="virtual-organisation"))
        assert report.status == "imported"
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
    assert "sst-forecaster" in response.text and "/module/vo-only-module" not in response.text
    mldcat = client.get("/id/catalog", params={"profile": "mldcat-ap"}, headers={"accept": "text/turtle"})
    assert mldcat.status_code == 200 and "it6:MachineLearningModel" in mldcat.text and "vo-only-module" not in mldcat.text
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


# -- deployments, training runs and datasets in MLDCAT-AP ---------------------------------------------
BASE = "https://w3id.org/ai4kg/id/"
SST = BASE + "module/sst-forecaster"
PERSON = BASE + "person/jdoe"
OTHER_VO = BASE + "virtualorganisation/vo.secret.eu"
PROVIDER, DATACENTER = BASE + "provider/example-provider", BASE + "datacenter/example-dc"
DATASET, PREDICTIONS = BASE + "dataset/coastal-sst", BASE + "dataset/sst-predictions"
TOOL = BASE + "tool/fl-server"
RUN, SECRET_RUN = BASE + "trainingrun/sst-2024-03", BASE + "trainingrun/secret-run"
DEPLOYMENT, TOOL_DEPLOYMENT = BASE + "moduledeployment/sst-api", BASE + "tooldeployment/fl-server-1"
TRY_ME, BATCH = BASE + "trymedeployment/sst-try", BASE + "batchtrainingdeployment/sst-batch"
SECRET_MODULE_NAME = "secret-model"
SECRET_MODULE = BASE + "module/" + SECRET_MODULE_NAME
SECRET_DEPLOYMENT = BASE + "moduledeployment/secret-model-api"
MLS, PROV, FOAF, SPDX, DQV = (rdflib.Namespace(n) for n in (
    "http://www.w3.org/ns/mls#", "http://www.w3.org/ns/prov#", "http://xmlns.com/foaf/0.1/",
    "http://spdx.org/rdf/terms#", "http://www.w3.org/ns/dqv#"))

# Mandatory MLDCAT-AP properties of deployments, runs and datasets that the ontology has no term
# for: no asset can give them, so their views fall short of the shapes by these, and only these.
NO_SOURCE = {
    IT6.collectionDate: "dataset: when the data was collected (ai4kg:created dates the record)",
    DQV.hasQualityMeasurement: "distribution: no data-quality measurements are recorded",
    MLS.realizes: "run: the ML-Schema algorithm; the graph records the module a run executes",
    IT6.hasFlow: "run: an OpenML flow, with a status concept and an upload time",
    IT6.hasOutputFileDescription: "run: OpenML's run description file",
    IT6.hasOutputFilePrediction: "run: a file of the run's predictions",
}

_RECORD_PREFIXES = """@prefix ai4kg: <https://w3id.org/ai4kg/ns#> . @prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix dcat: <http://www.w3.org/ns/dcat#> . @prefix dct: <http://purl.org/dc/terms/> .
@prefix spdx: <http://spdx.org/rdf/terms#> . @prefix vis: <https://w3id.org/ai4kg/vocab/visibility/> .
"""
SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
# Everything the ontology can say about each kind (the try-me deployment, on purpose, only what
# the platform's shapes require: no title, no endpoint).
RECORDS = {
    PERSON: f'<{PERSON}> a ai4kg:Person ; ai4kg:identifier "jdoe" ; ai4kg:name "Jane Doe" .',
    OTHER_VO: f'<{OTHER_VO}> a ai4kg:VirtualOrganisation ; ai4kg:identifier "vo.secret.eu" ; ai4kg:name "Secret VO" .',
    PROVIDER: f'<{PROVIDER}> a ai4kg:Provider ; ai4kg:identifier "example-provider" ; ai4kg:name "Example provider" .',
    DATACENTER: f'<{DATACENTER}> a ai4kg:Datacenter ; ai4kg:identifier "example-dc" ; ai4kg:operatedBy <{PROVIDER}> .',
    TOOL: f'<{TOOL}> a ai4kg:Tool ; ai4kg:identifier "fl-server" ; ai4kg:title "Federated-learning server" .',
    DATASET: f"""
<{DATASET}> a ai4kg:Dataset ; ai4kg:identifier "coastal-sst" ; ai4kg:title "Coastal sea-surface temperature" ;
  ai4kg:summary "Daily water temperature at 40 coastal stations." ;
  ai4kg:description "Daily mean sea-surface temperature measured at coastal stations, 2000-2023." ;
  ai4kg:created "2024-03-01"^^xsd:date ; ai4kg:updated "2024-06-15"^^xsd:date ; ai4kg:license "CC-BY-4.0" ;
  ai4kg:tag "oceanography", "time series" ; ai4kg:doi "10.5281/zenodo.1234567" ; ai4kg:creator <{PERSON}> ;
  ai4kg:status "published" ; ai4kg:visibility vis:public ; dcat:landingPage <https://data.example.org/sst/> ;
  dcat:distribution <{DATASET}#stations>, <{DATASET}#readings>, <{DATASET}#notes> .
<{DATASET}#stations> dct:title "stations.csv" ; dcat:downloadURL <https://data.example.org/sst/stations.csv> ;
  dcat:mediaType <https://www.iana.org/assignments/media-types/text/csv> ; dcat:byteSize 2048 ;
  spdx:checksum <{DATASET}#stations-sha256> .
<{DATASET}#stations-sha256> spdx:algorithm spdx:checksumAlgorithm_sha256 ;
  spdx:checksumValue "{SHA256.upper()}"^^xsd:hexBinary .
<{DATASET}#readings> dct:title "readings.parquet" ; dct:description "Daily readings, one row per station and day." ;
  dcat:downloadURL <https://data.example.org/sst/readings.parquet> ; dcat:accessURL <https://data.example.org/sst/> ;
  dcat:mediaType "application/x-parquet" ; spdx:checksum <{DATASET}#readings-md5> .
<{DATASET}#readings-md5> spdx:algorithm spdx:checksumAlgorithm_md5 ; spdx:checksumValue "d41d8cd98f00b204e9800998ecf8427e" .
<{DATASET}#notes> dct:title "notes.txt" ; dcat:downloadURL <https://data.example.org/sst/notes.txt> ;
  dcat:mediaType <https://www.iana.org/assignments/media-types/text/plain> .
""",
    PREDICTIONS: f"""
<{PREDICTIONS}> a ai4kg:Dataset ; ai4kg:identifier "sst-predictions" ; ai4kg:title "SST forecasts" ;
  ai4kg:description "Seven-day sea-surface temperature forecasts of the coastal stations." ; ai4kg:visibility vis:public .
""",
    RUN: f"""
<{RUN}> a ai4kg:TrainingRun ; ai4kg:identifier "sst-2024-03" ; ai4kg:title "Training of the SST forecaster" ;
  ai4kg:summary "March 2024 retraining." ; ai4kg:description "Retraining on the 2023 station data." ;
  ai4kg:created "2024-03-02"^^xsd:date ; ai4kg:updated "2024-03-03"^^xsd:date ; ai4kg:tag "retraining" ;
  ai4kg:trainedModule <{SST}> ; ai4kg:usedDataset <{DATASET}> ; ai4kg:produced <{PREDICTIONS}> ;
  ai4kg:mlflowRun "sst-forecaster/runs/3f9a1c0e7b2d" ; ai4kg:nomadJob "train-sst-2024-03" ;
  ai4kg:startedAt "2024-03-02T08:00:00Z"^^xsd:dateTime ; ai4kg:endedAt "2024-03-02T11:30:00Z"^^xsd:dateTime ;
  ai4kg:status "finished" ; ai4kg:launchedBy <{PERSON}> ; ai4kg:runsOn <{DATACENTER}> ;
  ai4kg:allocatedResources <{RUN}#resources> ; ai4kg:visibility vis:public .
<{RUN}#resources> a ai4kg:ResourceRequirements ; ai4kg:cpu 8 ; ai4kg:gpu 1 ; ai4kg:memoryMB 32000 .
""",
    SECRET_RUN: f"""
<{SECRET_RUN}> a ai4kg:TrainingRun ; ai4kg:identifier "secret-run" ; ai4kg:title "A secret run" ;
  ai4kg:trainedModule <{SST}> ; ai4kg:produced <{PREDICTIONS}> ; ai4kg:belongsToVO <{OTHER_VO}> ;
  ai4kg:visibility vis:private .
""",
    DEPLOYMENT: f"""
<{DEPLOYMENT}> a ai4kg:ModuleDeployment ; ai4kg:identifier "sst-api" ; ai4kg:title "SST forecaster API" ;
  ai4kg:summary "Forecasts on demand." ;
  ai4kg:description "The prediction API of the SST forecaster for the coastal stations." ; ai4kg:tag "forecast" ;
  ai4kg:created "2024-04-01"^^xsd:date ; ai4kg:updated "2024-04-02"^^xsd:date ;
  ai4kg:deploys <{SST}> ; ai4kg:usedDataset <{DATASET}> ; ai4kg:nomadJob "sst-api-7f3c" ; ai4kg:status "running" ;
  ai4kg:startedAt "2024-04-01T09:00:00Z"^^xsd:dateTime ; ai4kg:endedAt "2024-04-30T17:00:00Z"^^xsd:dateTime ;
  ai4kg:launchedBy <{PERSON}> ; ai4kg:runsOn <{DATACENTER}> ;
  ai4kg:endpoint <{DEPLOYMENT}#api>, <{DEPLOYMENT}#ide>, <{DEPLOYMENT}#console> ;
  ai4kg:allocatedResources <{DEPLOYMENT}#resources> ; ai4kg:visibility vis:public .
<{DEPLOYMENT}#api> a ai4kg:Link ; ai4kg:linkKey "api" ; ai4kg:linkTarget "https://sst-api.deployments.example.org/" .
<{DEPLOYMENT}#ide> a ai4kg:Link ; ai4kg:linkKey "ide" ; ai4kg:linkTarget "https://ide-sst-api.deployments.example.org/" .
<{DEPLOYMENT}#console> a ai4kg:Link ; ai4kg:linkKey "console" ; ai4kg:linkTarget "ssh sst-api" .
<{DEPLOYMENT}#resources> a ai4kg:ResourceRequirements ; ai4kg:cpu 2 ; ai4kg:memoryMB 4000 .
""",
    TOOL_DEPLOYMENT: f"""
<{TOOL_DEPLOYMENT}> a ai4kg:ToolDeployment ; ai4kg:identifier "fl-server-1" ;
  ai4kg:title "Federated server of the SST consortium" ; ai4kg:deploys <{TOOL}> ;
  ai4kg:endpoint <{TOOL_DEPLOYMENT}#fl> ; ai4kg:visibility vis:public .
<{TOOL_DEPLOYMENT}#fl> a ai4kg:Link ; ai4kg:linkKey "fl" ; ai4kg:linkTarget "https://fl.deployments.example.org/" .
""",
    TRY_ME: f'<{TRY_ME}> a ai4kg:TryMeDeployment ; ai4kg:identifier "sst-try" ; ai4kg:deploys <{SST}> .',
    BATCH: f'<{BATCH}> a ai4kg:BatchTrainingDeployment ; ai4kg:identifier "sst-batch" ; ai4kg:deploys <{SST}> .',
    # A public deployment of a module that only its VO may see.
    SECRET_DEPLOYMENT: f"""
<{SECRET_DEPLOYMENT}> a ai4kg:ModuleDeployment ; ai4kg:identifier "secret-model-api" ; ai4kg:title "An API" ;
  ai4kg:deploys <{SECRET_MODULE}> ; ai4kg:visibility vis:public .
""",
}
COMPLETE = (DEPLOYMENT, TOOL_DEPLOYMENT, RUN, DATASET, PREDICTIONS)


@pytest.fixture(scope="module")
def activities() -> KnowledgeGraph:
    """The demo catalog, a module only its VO may see, and the records above, each checked against
    the platform's shapes (with the modules they name) and written with KnowledgeGraph.write."""
    with KnowledgeGraph(Settings.in_memory()) as graph:
        load_demo_catalog(graph)
        [report] = import_files(graph, [valid_module_files()[0]], ImportOptions(
            identifier=SECRET_MODULE_NAME, vo="vo.secret.eu", visibility="virtual-organisation"))
        assert report.status == "imported" and report.iri == SECRET_MODULE
        writes = []
        for iri, turtle in RECORDS.items():
            name = ox.NamedNode(iri)
            writes.append(AssetWrite(iri, [ox.Quad(t.subject, t.predicate, t.object, name)
                                           for t in ox.parse(_RECORD_PREFIXES + turtle, format=ox.RdfFormat.TURTLE)]))
        checked = [q for w in writes for q in w.quads] + graph.asset_quads(SST) + graph.asset_quads(SECRET_MODULE)
        assert [v for v in platform_validate(checked) if v.severity == "violation"] == []
        graph.write(writes)
        yield graph


def _mldcat(graph: KnowledgeGraph, iri: str, readers: frozenset[str] | None = None) -> rdflib.Graph:
    return _rdflib(VIEWS["mldcat-ap"].describe(graph, iri, readers))


def _own(iri: str, focus: rdflib.term.Node) -> bool:
    """Whether the focus node is the asset or a node its view mints under it (#fragment)."""
    return str(focus) == iri or str(focus).startswith(iri + "#")


def test_deployments_runs_and_datasets_meet_mldcat_ap_but_for_what_the_ontology_lacks(
        activities: KnowledgeGraph, mldcat_shapes: rdflib.Graph) -> None:
    mldcat = VIEWS["mldcat-ap"]
    for iri in COMPLETE:
        view = _mldcat(activities, iri)
        for result in _results(view, mldcat_shapes):
            assert result["component"] == SH.MinCountConstraintComponent, (iri, result)
            if _own(iri, result["focus"]):
                assert result["path"] in NO_SOURCE, (iri, result)
            else:  # a linked asset (the served model): what its own view lacks too
                own = _results(_mldcat(activities, str(result["focus"])), mldcat_shapes)
                assert (result["focus"], result["path"]) in {(r["focus"], r["path"]) for r in own}, (iri, result)
    # each kind fails the shapes by exactly the properties the ontology lacks
    expected = {DEPLOYMENT: set(), TOOL_DEPLOYMENT: set(), DATASET: {IT6.collectionDate, DQV.hasQualityMeasurement},
                PREDICTIONS: {IT6.collectionDate}, RUN: {MLS.realizes, IT6.hasFlow, IT6.hasOutputFileDescription,
                                                         IT6.hasOutputFilePrediction}}
    for iri, paths in expected.items():
        assert {r["path"] for r in _results(_mldcat(activities, iri), mldcat_shapes) if _own(iri, r["focus"])} == paths
    assert all(mldcat.describes(kind) for kind in ("ModuleDeployment", "TryMeDeployment", "ToolDeployment",
                                                   "Deployment", "TrainingRun", "Dataset", "Module"))
    assert not mldcat.describes("BatchTrainingDeployment") and mldcat.describe(activities, BATCH) == []


def test_a_deployment_is_a_data_service_serving_its_model(activities: KnowledgeGraph) -> None:
    view = _mldcat(activities, DEPLOYMENT)
    service, model = rdflib.URIRef(DEPLOYMENT), rdflib.URIRef(SST)
    assert (service, rdflib.RDF.type, DCAT.DataService) in view
    assert set(view.objects(service, IT6.servesModel)) == {model}
    assert (model, rdflib.RDF.type, IT6.MachineLearningModel) in view
    assert str(view.value(model, DCT.title)) == "Sea-Surface Temperature Forecaster"  # from the module's graph
    assert {str(u) for u in view.objects(service, DCAT.endpointURL)} == {  # "ssh sst-api" is no URL
        "https://sst-api.deployments.example.org/", "https://ide-sst-api.deployments.example.org/"}
    assert all((u, rdflib.RDF.type, DCAT.Resource) in view for u in view.objects(service, DCAT.endpointURL))
    assert str(view.value(service, DCT.title)) == "SST forecaster API"
    assert set(view.objects(service, PROV.used)) == {rdflib.URIRef(DATASET)}
    person = view.value(service, PROV.wasAssociatedWith)
    assert (person, rdflib.RDF.type, FOAF.Agent) in view and str(view.value(person, FOAF.name)) == "Jane Doe"
    assert view.value(service, PROV.startedAtTime) == rdflib.Literal("2024-04-01T09:00:00Z", datatype=rdflib.XSD.dateTime)
    # a tool deployment serves no model: the tool is what it used
    tool = _mldcat(activities, TOOL_DEPLOYMENT)
    assert not set(tool.objects(None, IT6.servesModel))
    assert set(tool.objects(rdflib.URIRef(TOOL_DEPLOYMENT), PROV.used)) == {rdflib.URIRef(TOOL)}
    # nothing is invented: a try-me deployment without title or endpoint gets neither
    try_me = _mldcat(activities, TRY_ME)
    assert set(try_me.objects(rdflib.URIRef(TRY_ME), IT6.servesModel)) == {model}
    assert try_me.value(rdflib.URIRef(TRY_ME), DCT.title) is None
    assert try_me.value(rdflib.URIRef(TRY_ME), DCAT.endpointURL) is None


def test_a_training_run_is_a_run(activities: KnowledgeGraph) -> None:
    view = _mldcat(activities, RUN)
    run = rdflib.URIRef(RUN)
    assert (run, rdflib.RDF.type, IT6.Run) in view
    assert view.value(run, MLS.executes) == rdflib.URIRef(SST)
    assert view.value(run, MLS.hasInput) == rdflib.URIRef(DATASET)
    assert view.value(run, MLS.hasOutput) == rdflib.URIRef(PREDICTIONS)
    assert view.value(run, IT6.trainingTime) == rdflib.Literal("PT3H30M", datatype=rdflib.XSD.dayTimeDuration)
    assert str(view.value(run, DCT.identifier)) == "sst-2024-03"
    assert {str(k) for k in view.objects(run, DCAT.keyword)} == {"retraining"}
    # nothing stands for what the graph lacks: no algorithm, flow or output files
    assert not {MLS.realizes, IT6.hasFlow, IT6.hasOutputFileDescription, IT6.hasOutputFilePrediction} & set(
        view.predicates(run))


def test_a_dataset_is_a_dataset_with_its_distributions(activities: KnowledgeGraph) -> None:
    view = _mldcat(activities, DATASET)
    dataset = rdflib.URIRef(DATASET)
    assert (dataset, rdflib.RDF.type, DCAT.Dataset) in view
    assert view.value(dataset, DCT.license) == rdflib.URIRef("http://spdx.org/licenses/CC-BY-4.0")
    creator = view.value(dataset, DCT.creator)
    assert (creator, rdflib.RDF.type, FOAF.Agent) in view and str(view.value(creator, FOAF.name)) == "Jane Doe"
    stations = rdflib.URIRef(DATASET + "#stations")
    assert view.value(stations, DCAT.byteSize) == rdflib.Literal("2048", datatype=rdflib.XSD.nonNegativeInteger)
    # a file that is only directly downloadable has its download URL as access URL too
    assert view.value(stations, DCAT.accessURL) == view.value(stations, DCAT.downloadURL)
    assert view.value(rdflib.URIRef(DATASET + "#readings"), DCAT.accessURL) == rdflib.URIRef("https://data.example.org/sst/")
    assert view.value(rdflib.URIRef(DATASET + "#readings"), DCAT.mediaType) is None  # text, not an IANA IRI
    checksum = view.value(stations, SPDX.checksum)
    assert view.value(checksum, SPDX.checksumValue) == rdflib.Literal(SHA256, datatype=rdflib.XSD.hexBinary)
    assert not set(view.objects(dataset, IT6.collectionDate))  # never invented
    assert set(_mldcat(activities, PREDICTIONS).objects(rdflib.URIRef(PREDICTIONS), PROV.wasGeneratedBy)) == {
        rdflib.URIRef(RUN), rdflib.URIRef(SECRET_RUN)}  # the platform itself sees every run


def test_linked_assets_only_as_the_reader_may_see_them(activities: KnowledgeGraph) -> None:
    anonymous, member = frozenset(), frozenset({"vo.secret.eu"})
    produced = rdflib.URIRef(PREDICTIONS)
    assert set(_mldcat(activities, PREDICTIONS, anonymous).objects(produced, PROV.wasGeneratedBy)) == {rdflib.URIRef(RUN)}
    assert rdflib.URIRef(SECRET_RUN) in set(_mldcat(activities, PREDICTIONS, member).objects(produced, PROV.wasGeneratedBy))
    # a public deployment of a module the reader may not see names the model, but nothing of it
    hidden = _mldcat(activities, SECRET_DEPLOYMENT, anonymous)
    model = rdflib.URIRef(SECRET_MODULE)
    assert hidden.value(rdflib.URIRef(SECRET_DEPLOYMENT), IT6.servesModel) == model
    assert hidden.value(model, DCT.title) is None and hidden.value(model, DCT.identifier) is None
    assert str(_mldcat(activities, SECRET_DEPLOYMENT, member).value(model, DCT.identifier)) == SECRET_MODULE_NAME


def test_the_mldcat_ap_catalogue_lists_services_runs_and_datasets(activities: KnowledgeGraph,
                                                                  mldcat_shapes: rdflib.Graph) -> None:
    catalogue = _rdflib(VIEWS["mldcat-ap"].catalog(activities, frozenset()))
    [catalog] = catalogue.subjects(rdflib.RDF.type, DCAT.Catalog)
    services = set(catalogue.objects(catalog, DCAT.service))
    assert services == {rdflib.URIRef(i) for i in (DEPLOYMENT, TOOL_DEPLOYMENT, TRY_ME, SECRET_DEPLOYMENT)}
    assert set(catalogue.objects(catalog, DCAT.dataset)) == {rdflib.URIRef(DATASET), rdflib.URIRef(PREDICTIONS)}
    resources = {str(r) for r in catalogue.objects(catalog, DCAT.resource)}
    assert RUN in resources and SECRET_RUN not in resources and SST in resources and SECRET_MODULE not in resources
    # a private run of another VO is nowhere in the anonymous catalogue; its VO sees it
    assert not any(SECRET_RUN in (str(s), str(o)) for s, _, o in catalogue)
    assert not any(SECRET_MODULE == str(s) and p == DCT.title for s, p, _ in catalogue)
    member = _rdflib(VIEWS["mldcat-ap"].catalog(activities, frozenset({"vo.secret.eu"})))
    assert rdflib.URIRef(SECRET_RUN) in set(member.objects(catalog, DCAT.resource))
    assert (rdflib.URIRef(SECRET_RUN), rdflib.RDF.type, IT6.Run) in member
    # the catalogue's descriptions are its assets' views: the same shortfalls, no others
    for result in _results(catalogue, mldcat_shapes):
        focus = str(result["focus"])
        assert result["component"] == SH.MinCountConstraintComponent, result
        if any(_own(iri, focus) for iri in COMPLETE) or focus.startswith(BASE + "trainingrun/mlflow-"):
            assert result["path"] in NO_SOURCE, result  # (the demo's run recorded from MLflow is complete too)
        elif focus == SECRET_MODULE:  # served by a public deployment; this reader may not see its graph
            assert result["path"] in {DCT.identifier, DCT.title, DCT.created, *MISSING_IN_SOURCES}, result
        elif focus.startswith(BASE + "module/") or not focus.startswith(BASE):
            assert result["path"] in MISSING_IN_SOURCES, result  # modules, and the datasets they name
        else:
            assert focus in (TRY_ME, SECRET_DEPLOYMENT) and result["path"] in (DCT.title, DCAT.endpointURL), result


def test_new_kinds_dereference_in_mldcat_ap(activities: KnowledgeGraph) -> None:
    client = TestClient(create_app(activities))
    for path, kind in (("moduledeployment/sst-api", DCAT.DataService), ("tooldeployment/fl-server-1", DCAT.DataService),
                       ("trainingrun/sst-2024-03", IT6.Run), ("dataset/coastal-sst", DCAT.Dataset)):
        response = client.get(f"/id/{path}", params={"profile": "mldcat-ap"}, headers={"accept": "application/n-triples"})
        assert response.status_code == 200, (path, response.text)
        assert response.headers["content-profile"] == f"<{MLDCAT_PROFILE}>"
        assert f"<{BASE}{path}> <{rdflib.RDF.type}> <{kind}>" in response.text
        native = client.get(f"/id/{path}", headers={"accept": "text/turtle"})
        assert native.status_code == 200 and "ai4kg:" in native.text
    assert client.get("/id/trainingrun/secret-run", params={"profile": "mldcat-ap"}).status_code == 404
    batch = client.get("/id/batchtrainingdeployment/sst-batch", params={"profile": "mldcat-ap"})
    assert batch.status_code == 400 and batch.json()["invalid-params"][0]["name"] == "profile"
    catalogue = client.get("/id/catalog", params={"profile": "mldcat-ap"}, headers={"accept": "application/n-triples"})
    assert DEPLOYMENT in catalogue.text and RUN in catalogue.text and SECRET_RUN not in catalogue.text


@pytest.mark.parametrize("iri", [DEPLOYMENT, TOOL_DEPLOYMENT, RUN, DATASET, PREDICTIONS])
def test_kind_queries_run_in_another_sparql_engine(activities: KnowledgeGraph, iri: str) -> None:
    """rdflib's engine gives Oxigraph's answer (over every graph, as the platform itself reads)."""
    file, reach = VIEWS["mldcat-ap"].asset_query_of(activities, iri)
    assert reach == "neighbours" and file is not None
    union = rdflib.Dataset(default_union=True)
    union.parse(data=activities.export(ox.RdfFormat.N_QUADS), format="nquads")
    query = (Path(__file__).resolve().parents[1] / "mappings" / "views" / file).read_text("utf-8")
    by_rdflib = union.query(query, initBindings={"asset": rdflib.URIRef(iri)}).graph
    assert len(by_rdflib) > 5
    assert set(by_rdflib) == set(_mldcat(activities, iri))


def test_the_licence_tables_of_the_views_agree() -> None:
    """The SPDX table is repeated in each view that reads licence texts (a SPARQL file has no includes)."""
    folder = Path(__file__).resolve().parents[1] / "mappings" / "views"
    tables = {}
    for path in sorted(folder.glob("*.rq")):
        text = path.read_text("utf-8")
        if "VALUES (?licenceKey ?spdx)" in text:
            table = text.split("VALUES (?licenceKey ?spdx)", 1)[1].split("}", 1)[0]
            tables[path.name] = " ".join(table.split())
    assert {"mldcat-ap.rq", "mldcat-ap-dataset.rq"} <= set(tables) and len(set(tables.values())) == 1, tables


@pytest.mark.parametrize("name", [view.name for view in VIEWS.values() if view.catalog_queries])
def test_a_confined_catalogue_reads_exactly_the_visible_graphs(activities: KnowledgeGraph, name: str) -> None:
    """The catalogue for a reader is its queries over the dataset of the graphs the reader may see
    (View.catalog copies those graphs into a store of their own, which Oxigraph queries faster)."""
    from ai4kg.graph.store import SYSTEM_GRAPHS
    from ai4kg.graph.views import view_query
    view = VIEWS[name]
    for readers in (frozenset(), frozenset({"vo.secret.eu"})):
        dataset = [ox.NamedNode(g) for g in (*activities.index.visible_iris(readers), *SYSTEM_GRAPHS)]
        expected: set[ox.Triple] = set()
        for file in view.catalog_queries:
            expected |= set(activities.query(view_query(file), default_graph=dataset, named_graphs=dataset))
        catalogue = view.catalog(activities, readers)
        assert len(catalogue) == len(set(catalogue)) and set(catalogue) == set(view._retype(list(expected)))


@pytest.mark.parametrize("iri", [*COMPLETE, TRY_ME, SECRET_DEPLOYMENT])
def test_a_kind_query_reads_no_further_than_its_neighbours(activities: KnowledgeGraph, iri: str) -> None:
    """Over its neighbours' graphs the reader may see, an asset's view is what it is over every
    graph the reader may see."""
    from ai4kg.graph.store import SYSTEM_GRAPHS
    from ai4kg.graph.views import view_query
    view = VIEWS["mldcat-ap"]
    file, _ = view.asset_query_of(activities, iri)
    for readers in (frozenset(), frozenset({"vo.secret.eu"})):
        dataset = [ox.NamedNode(g) for g in dict.fromkeys((iri, *activities.index.visible_iris(readers), *SYSTEM_GRAPHS))]
        everything = activities.query(view_query(file), {"asset": ox.NamedNode(iri)}, default_graph=dataset,
                                      named_graphs=dataset)
        assert set(view.describe(activities, iri, readers)) == set(view._retype(list(everything)))


def test_oai_records_of_linked_views_show_only_what_the_harvester_may_see(activities: KnowledgeGraph) -> None:
    """OAI-PMH's mldcat_ap records go through the same reader rule as /id: an anonymous harvester's
    record of a public dataset does not name the private run of another VO that produced it."""
    keys = KeyStore(None)
    member = keys.create("member", frozenset({"vo.secret.eu"}))[1]
    app = create_app(activities, keys)
    params = {"verb": "GetRecord", "metadataPrefix": "mldcat_ap", "identifier": "oai:w3id.org:dataset/sst-predictions"}
    anonymous = TestClient(app).get("/oai", params=params)
    assert anonymous.status_code == 200 and RUN in anonymous.text and SECRET_RUN not in anonymous.text
    insider = TestClient(app, headers={"authorization": f"Bearer {member}"}).get("/oai", params=params)
    assert SECRET_RUN in insider.text
