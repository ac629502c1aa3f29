"""The FAIR4ML, Croissant and PROV-O views: FAIR4ML as compact JSON-LD that expands back to the
CONSTRUCT's triples, Croissant that `mlcroissant validate` accepts, PROV-O that the `prov` package
reads and unifies; on the real modules, the demo catalog and SHACL-valid datasets, agents and
activities written here; chosen by ?profile, Accept-Profile or `ai4kg export --profile`."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
from pathlib import Path

import mlcroissant as mlc
import prov
import pyoxigraph as ox
import pytest
import rdflib
import yaml
from click.testing import CliRunner
from fastapi.testclient import TestClient
from pyld import jsonld

from ai4kg.api.app import create_app
from ai4kg.catalog import ImportOptions, import_files
from ai4kg.cli import main
from ai4kg.config import Settings
from ai4kg.demo import demo_files, load_demo_catalog
from ai4kg.graph.store import AssetWrite, KnowledgeGraph
from ai4kg.graph.validation import validate
from ai4kg.graph.views import VIEWS, view_of

from conftest import SHARED, valid_module_files

BASE = "https://w3id.org/ai4kg/id/"
FAIR4ML = "https://w3id.org/fair4ml#"
SCHEMA = "http://schema.org/"
AI4KG = "https://w3id.org/ai4kg/ns#"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
FAIR4ML_PROFILE, CROISSANT_PROFILE, PROV_PROFILE = (
    "https://w3id.org/fair4ml/0.1.0", "http://mlcommons.org/croissant/1.1", "http://www.w3.org/ns/prov#")
MLCROISSANT = str(Path(sys.executable).parent / "mlcroissant")

DATASET = BASE + "dataset/coastal-sst"
PERSON = BASE + "person/jdoe"
OTHER_VO = BASE + "virtualorganisation/vo.secret.eu"
RUN = BASE + "trainingrun/sst-2024-03"
SECRET_RUN = BASE + "trainingrun/secret-run"
DEPLOYMENT = BASE + "moduledeployment/sst-api"
SST = BASE + "module/sst-forecaster"
FINETUNED = BASE + "module/sst-forecaster-baltic"

_PREFIXES = """@prefix ai4kg: <https://w3id.org/ai4kg/ns#> . @prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix dcat: <http://www.w3.org/ns/dcat#> . @prefix dct: <http://purl.org/dc/terms/> .
@prefix spdx: <http://spdx.org/rdf/terms#> . @prefix vis: <https://w3id.org/ai4kg/vocab/visibility/> .
"""
SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
RECORDS = {
    # A dataset with two files that Croissant can describe and one it cannot (no checksum).
    DATASET: f"""
<{DATASET}> a ai4kg:Dataset ; ai4kg:identifier "coastal-sst" ; ai4kg:title "Coastal sea-surface temperature" ;
  ai4kg:summary "Daily water temperature at 40 coastal stations." ;
  ai4kg:description "Daily mean sea-surface temperature measured at coastal stations, 2000-2023." ;
  ai4kg:created "2024-03-01"^^xsd:date ; ai4kg:updated "2024-06-15"^^xsd:date ; ai4kg:license "CC-BY-4.0" ;
  ai4kg:tag "oceanography", "time series" ; ai4kg:doi "10.5281/zenodo.1234567" ; ai4kg:creator <{PERSON}> ;
  ai4kg:visibility vis:public ;
  dcat:distribution <{DATASET}#stations>, <{DATASET}#readings>, <{DATASET}#notes> .
<{DATASET}#stations> dct:title "stations.csv" ; dcat:downloadURL <https://data.example.org/sst/stations.csv> ;
  dcat:mediaType <https://www.iana.org/assignments/media-types/text/csv> ; dcat:byteSize 2048 ;
  spdx:checksum <{DATASET}#stations-sha256> .
<{DATASET}#stations-sha256> spdx:algorithm spdx:checksumAlgorithm_sha256 ; spdx:checksumValue "{SHA256.upper()}"^^xsd:hexBinary .
<{DATASET}#readings> dct:title "readings.parquet" ; dcat:downloadURL <https://data.example.org/sst/readings.parquet> ;
  dcat:mediaType "application/x-parquet" ; spdx:checksum <{DATASET}#readings-md5> .
<{DATASET}#readings-md5> spdx:algorithm spdx:checksumAlgorithm_md5 ; spdx:checksumValue "d41d8cd98f00b204e9800998ecf8427e" .
<{DATASET}#notes> dct:title "notes.txt" ; dcat:downloadURL <https://data.example.org/sst/notes.txt> ;
  dcat:mediaType <https://www.iana.org/assignments/media-types/text/plain> .
""",
    PERSON: f'<{PERSON}> a ai4kg:Person ; ai4kg:identifier "jdoe" ; ai4kg:name "Jane Doe" .',
    OTHER_VO: f'<{OTHER_VO}> a ai4kg:VirtualOrganisation ; ai4kg:identifier "vo.secret.eu" ; ai4kg:name "Secret VO" .',
    RUN: f"""
<{RUN}> a ai4kg:TrainingRun ; ai4kg:identifier "sst-2024-03" ; ai4kg:title "Training of the SST forecaster" ;
  ai4kg:trainedModule <{SST}> ; ai4kg:usedDataset <{DATASET}> ; ai4kg:mlflowRun "sst-forecaster/runs/3f9a1c0e7b2d" ;
  ai4kg:startedAt "2024-03-02T08:00:00Z"^^xsd:dateTime ; ai4kg:endedAt "2024-03-02T11:30:00Z"^^xsd:dateTime ;
  ai4kg:launchedBy <{PERSON}> ; ai4kg:visibility vis:public .
""",
    SECRET_RUN: f"""
<{SECRET_RUN}> a ai4kg:TrainingRun ; ai4kg:identifier "secret-run" ; ai4kg:trainedModule <{SST}> ;
  ai4kg:belongsToVO <{OTHER_VO}> ; ai4kg:visibility vis:private .
""",
    DEPLOYMENT: f"""
<{DEPLOYMENT}> a ai4kg:ModuleDeployment ; ai4kg:identifier "sst-api" ; ai4kg:deploys <{SST}> ;
  ai4kg:startedAt "2024-04-01T09:00:00Z"^^xsd:dateTime ; ai4kg:launchedBy <{PERSON}> ; ai4kg:visibility vis:public .
""",
}


def _write_records(graph: KnowledgeGraph) -> None:
    """The records above, each checked against the platform's shapes (with the module they name)."""
    writes = []
    for iri, turtle in RECORDS.items():
        name = ox.NamedNode(iri)
        writes.append(AssetWrite(iri, [ox.Quad(t.subject, t.predicate, t.object, name)
                                       for t in ox.parse(_PREFIXES + turtle, format=ox.RdfFormat.TURTLE)]))
    checked = [q for w in writes for q in w.quads] + graph.asset_quads(SST)
    assert [v for v in validate(checked) if v.severity == "violation"] == []
    graph.write(writes)


def _import_finetuned(graph: KnowledgeGraph, tmp_path: Path) -> None:
    """A module fine-tuned from the demo's SST forecaster on the dataset above."""
    document = yaml.safe_load(next(p for p in demo_files() if p.name == "sst-forecaster.yml").read_text("utf-8"))
    document["title"] = "Baltic Sea-Surface Temperature Forecaster"
    document["links"].update(dataset=DATASET, base_model=SST, weights="https://data.example.org/sst/baltic.h5")
    path = tmp_path / "sst-forecaster-baltic.yml"
    path.write_text(yaml.safe_dump(document), "utf-8")
    [report] = import_files(graph, [path], ImportOptions(identifier="sst-forecaster-baltic", license="MIT"))
    assert report.status == "imported", report


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeGraph:
    with KnowledgeGraph(Settings.in_memory()) as graph:
        load_demo_catalog(graph)
        _write_records(graph)
        _import_finetuned(graph, tmp_path_factory.mktemp("finetuned"))
        yield graph


def _modules(graph: KnowledgeGraph) -> list[str]:
    return [iri for iri in graph.index.iris() if "/module/" in iri]


def _offline(url: str, options: dict | None = None) -> dict:
    raise AssertionError(f"the JSON-LD processor tried to load {url}")


def _expanded_back(document: dict) -> set[ox.Triple]:
    """What a JSON-LD processor reads from the document, offline."""
    nquads = jsonld.to_rdf(document, {"format": "application/n-quads", "documentLoader": _offline})
    return {ox.Triple(q.subject, q.predicate, q.object)
            for q in ox.parse(nquads.encode("utf-8"), format=ox.RdfFormat.N_QUADS)}


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("no network access is allowed here")
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


# -- FAIR4ML -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fair4ml_terms() -> set[str]:
    vocabulary = json.loads((SHARED / "standards" / "fair4ml" / "0.1.0" / "fair4ml.jsonld").read_text("utf-8"))
    return {node["@id"].replace("fair4ml:", FAIR4ML) for node in vocabulary["@graph"]}


def _check_fair4ml(graph: KnowledgeGraph, iri: str, fair4ml_terms: set[str]) -> dict:
    view = VIEWS["fair4ml"]
    triples = view.describe(graph, iri)
    document = view.to_jsonld(triples, iri)
    # framed on the module: one node object, the module's, in the FAIR4ML / schema.org context
    assert document["@id"] == iri and "@graph" not in document
    assert {"MLModel", "SoftwareApplication"} <= set(document["@type"])
    assert document["@context"]["@vocab"] == SCHEMA and document["@context"]["fair4ml"] == FAIR4ML
    assert not [key for key in document if key.startswith("http")], "every property has a term"
    # compact, yet the same graph: it expands back to exactly the CONSTRUCT's triples
    assert _expanded_back(document) == set(triples)
    for triple in triples:
        predicate = triple.predicate.value
        assert predicate.startswith(SCHEMA) or predicate in fair4ml_terms or predicate in (
            RDF_TYPE, AI4KG + "dataType"), predicate
        if predicate == RDF_TYPE and triple.object.value.startswith(FAIR4ML):
            assert triple.object.value in fair4ml_terms
    return document


def test_fair4ml_of_every_real_module(real: KnowledgeGraph, fair4ml_terms: set[str], no_network: None) -> None:
    modules = _modules(real)
    assert len(modules) >= 30
    tasks = 0
    for iri in modules:
        document = _check_fair4ml(real, iri, fair4ml_terms)
        assert document["name"] and document["identifier"]
        tasks += bool(document.get("mlTask"))
        for task in document.get("mlTask", []):
            assert task["@type"] == "DefinedTerm" and task["termCode"]
    assert tasks >= len(modules) // 2


def test_fair4ml_of_the_demo_catalog(demo: KnowledgeGraph, fair4ml_terms: set[str], no_network: None) -> None:
    for iri in _modules(demo):
        _check_fair4ml(demo, iri, fair4ml_terms)
    document = _check_fair4ml(demo, SST, fair4ml_terms)
    assert document["name"] == "Sea-Surface Temperature Forecaster"
    assert document["dateCreated"] == "2023-10-05" and document["dateModified"] == "2025-01-20"
    assert document["license"] == "http://spdx.org/licenses/CC-BY-4.0"
    assert document["codeRepository"] == ["https://github.com/ai4kg-demo/sst-forecaster"]
    assert {"sst-forecaster", "https://doi.org/10.5281/zenodo.8402217"} <= {
        i if isinstance(i, str) else i["@id"] for i in document["identifier"]}
    assert {t["termCode"] for t in document["mlTask"]} == {"regression", "time-series", "uncertainty-estimation"}
    assert "forecasting" in document["keywords"]
    # no value is invented: the demo states no model category, version or evaluation
    assert not {"modelCategory", "version", "hasEvaluation", "trainedOn"} & set(document)


def test_fair4ml_names_linked_datasets_and_base_models(demo: KnowledgeGraph, fair4ml_terms: set[str]) -> None:
    document = _check_fair4ml(demo, FINETUNED, fair4ml_terms)
    [dataset] = document["trainedOn"]
    assert dataset == {"@id": DATASET, "@type": "Dataset", "name": "Coastal sea-surface temperature",
                       "description": "Daily mean sea-surface temperature measured at coastal stations, 2000-2023."}
    assert document["fineTunedFrom"] == [SST] and document["isBasedOn"] == [SST]
    assert document["license"] == "http://spdx.org/licenses/MIT"
    assert document["distribution"] == [{"@id": FINETUNED + "#weights", "@type": "DataDownload",
                                         "contentUrl": "https://data.example.org/sst/baltic.h5"}]


# -- Croissant -----------------------------------------------------------------------------------
def _croissant(graph: KnowledgeGraph, iri: str) -> dict:
    view = VIEWS["croissant"]
    triples = view.describe(graph, iri)
    document = view.to_jsonld(triples, iri)
    assert _expanded_back(document) == set(triples)
    return document


def test_croissant_passes_mlcroissant_validate(demo: KnowledgeGraph, tmp_path: Path) -> None:
    document = _croissant(demo, DATASET)
    path = tmp_path / "metadata.json"
    path.write_text(json.dumps(document), "utf-8")
    result = subprocess.run([MLCROISSANT, "validate", "--jsonld", str(path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "not standard" not in result.stderr  # the official examples' @context
    assert "error" not in result.stderr.lower()

    assert document["@type"] == "Dataset" and document["conformsTo"] == CROISSANT_PROFILE
    assert document["name"] == "Coastal sea-surface temperature" and document["url"] == DATASET
    assert document["license"] == "http://spdx.org/licenses/CC-BY-4.0" and document["dateCreated"] == "2024-03-01"
    assert document["creator"] == {"@id": PERSON, "@type": "Person", "name": "Jane Doe"}
    files = {f["name"]: f for f in document["distribution"]}
    # notes.txt has no checksum, which Croissant requires of a file: it is left out
    assert set(files) == {"stations.csv", "readings.parquet"}
    assert files["stations.csv"] == {
        "@id": DATASET + "#stations", "@type": "cr:FileObject", "name": "stations.csv", "contentSize": "2048 B",
        "contentUrl": "https://data.example.org/sst/stations.csv", "encodingFormat": "text/csv", "sha256": SHA256}
    assert files["readings.parquet"]["md5"] == "d41d8cd98f00b204e9800998ecf8427e"
    assert files["readings.parquet"]["encodingFormat"] == "application/x-parquet"

    # mlcroissant's own reading of it (its Python API)
    metadata = mlc.Dataset(jsonld=path).metadata
    assert metadata.name == "Coastal sea-surface temperature"
    assert {f.name for f in metadata.distribution} == {"stations.csv", "readings.parquet"}


def test_a_dataset_with_only_what_the_shapes_require_is_valid_croissant(tmp_path: Path) -> None:
    iri = BASE + "dataset/bare"
    with KnowledgeGraph(Settings.in_memory()) as graph:
        quads = [ox.Quad(t.subject, t.predicate, t.object, ox.NamedNode(iri)) for t in ox.parse(
            _PREFIXES + f'<{iri}> a ai4kg:Dataset ; ai4kg:identifier "bare" ; ai4kg:title "Bare" .',
            format=ox.RdfFormat.TURTLE)]
        assert validate(quads) == []
        graph.write([AssetWrite(iri, quads)])
        document = _croissant(graph, iri)
    assert set(document) == {"@context", "@id", "@type", "conformsTo", "identifier", "name", "url"}
    path = tmp_path / "bare.json"
    path.write_text(json.dumps(document), "utf-8")
    assert mlc.Dataset(jsonld=path).metadata.name == "Bare"


# -- PROV-O --------------------------------------------------------------------------------------
def _prov_documents(graph: KnowledgeGraph, iri: str) -> list[prov.model.ProvDocument]:
    """The view read by the `prov` package from Turtle and from our compact JSON-LD, unified."""
    view = VIEWS["prov"]
    triples = view.describe(graph, iri)
    compact = view.to_jsonld(triples, iri)
    assert _expanded_back(compact) == set(triples)
    documents = []
    for data, rdf_format in ((ox.serialize(triples, format=ox.RdfFormat.TURTLE), "turtle"),
                             (json.dumps(compact).encode("utf-8"), "json-ld")):
        document = prov.read(io.BytesIO(data), format="rdf", rdf_format=rdf_format)
        unified = document.unified()
        assert unified.get_provn().startswith("document")
        documents.append(unified)
    return documents


def _relations(document: prov.model.ProvDocument, kind: type) -> set[tuple[str, ...]]:
    return {tuple(str(value.uri) if hasattr(value, "uri") else str(value) for _, value in record.formal_attributes
                  if value is not None)
            for record in document.get_records(kind)}


def test_prov_of_every_real_module_parses_and_unifies(real: KnowledgeGraph) -> None:
    for iri in _modules(real):
        turtle, compact = _prov_documents(real, iri)
        [entity] = [r for r in turtle.get_records(prov.model.ProvEntity) if str(r.identifier.uri) == iri]
        assert len(turtle.get_records()) == len(compact.get_records())


def test_prov_of_the_demo_catalog(demo: KnowledgeGraph) -> None:
    for iri in _modules(demo) + [DATASET]:
        _prov_documents(demo, iri)
    [document, _] = _prov_documents(demo, SST)
    entity = document.get_record(SST)[0]
    assert str(next(iter(entity.get_attribute("prov:label")))) == "Sea-Surface Temperature Forecaster"
    # the training run the module's metadata names, found as the platform's record of it
    assert (SST, RUN) in _relations(document, prov.model.ProvGeneration)
    used = _relations(document, prov.model.ProvUsage)
    assert {(RUN, SST), (DEPLOYMENT, SST)} <= used
    assert (RUN, PERSON) in _relations(document, prov.model.ProvAssociation)
    [agent] = document.get_record(PERSON)
    assert isinstance(agent, prov.model.ProvAgent)
    # the fine-tuned module derives from its base model and its training data
    [finetuned, _] = _prov_documents(demo, FINETUNED)
    assert {(FINETUNED, SST), (FINETUNED, DATASET)} <= _relations(finetuned, prov.model.ProvDerivation)
    # the dataset: attributed to its creator, used by the training run
    [dataset, _] = _prov_documents(demo, DATASET)
    assert (DATASET, PERSON) in _relations(dataset, prov.model.ProvAttribution)
    assert (RUN, DATASET) in _relations(dataset, prov.model.ProvUsage)


def test_prov_shows_only_the_activities_the_reader_may_see(demo: KnowledgeGraph) -> None:
    view = VIEWS["prov"]
    everyone = {t.subject.value for t in view.describe(demo, SST)}
    anonymous = {t.subject.value for t in view.describe(demo, SST, frozenset())}
    member = {t.subject.value for t in view.describe(demo, SST, frozenset({"vo.secret.eu"}))}
    assert SECRET_RUN in everyone and SECRET_RUN in member and SECRET_RUN not in anonymous
    assert RUN in anonymous


# -- the views' SPARQL is plain SPARQL 1.1 ---------------------------------------------------------
@pytest.mark.parametrize("view, iri", [("fair4ml", FINETUNED), ("croissant", DATASET), ("prov", SST)])
def test_view_queries_run_in_another_sparql_engine(demo: KnowledgeGraph, view: str, iri: str) -> None:
    union = rdflib.Dataset(default_union=True)
    union.parse(data=demo.export(ox.RdfFormat.N_QUADS), format="nquads")
    query = (Path(__file__).resolve().parents[1] / "mappings" / "views" / f"{view}.rq").read_text("utf-8")
    by_rdflib = union.query(query, initBindings={"asset": rdflib.URIRef(iri)}).graph
    ours = rdflib.Graph().parse(data=ox.serialize(VIEWS[view].describe(demo, iri), format=ox.RdfFormat.N_TRIPLES),
                                format="nt")
    assert len(ours) > 5 and set(by_rdflib) == set(ours)


# -- choosing a view over HTTP and on the command line -------------------------------------------
@pytest.fixture(scope="module")
def client(demo: KnowledgeGraph) -> TestClient:
    return TestClient(create_app(demo))


@pytest.mark.parametrize("accept", ["application/ld+json", "application/json"])
def test_fair4ml_over_http_is_compact_json_ld(client: TestClient, accept: str) -> None:
    response = client.get("/id/module/sst-forecaster", params={"profile": "fair4ml"}, headers={"accept": accept})
    assert response.status_code == 200 and response.headers["content-type"].startswith(accept)
    assert response.headers["content-profile"] == f"<{FAIR4ML_PROFILE}>"
    assert f'<{FAIR4ML_PROFILE}>; rel="profile"' in response.headers["link"]
    document = response.json()
    assert document["@id"] == SST and "MLModel" in document["@type"] and document["@context"]["@vocab"] == SCHEMA


def test_views_by_accept_profile(client: TestClient) -> None:
    for header in (f"<{FAIR4ML_PROFILE}>", "<https://w3id.org/fair4ml>", "<urn:unknown>, <https://w3id.org/fair4ml/>"):
        response = client.get("/id/module/sst-forecaster", headers={"accept": "text/turtle", "accept-profile": header})
        assert response.status_code == 200 and response.headers["content-profile"] == f"<{FAIR4ML_PROFILE}>"
        assert "fair4ml:MLModel" in response.text
    response = client.get("/id/module/sst-forecaster", headers={"accept": "application/ld+json",
                                                                "accept-profile": f"<{PROV_PROFILE}>"})
    assert response.headers["content-profile"] == f"<{PROV_PROFILE}>"
    # activities that used the module do not hang off it: compacted, not framed on the module
    nodes = {node["@id"]: node for node in response.json()["@graph"]}
    assert nodes[SST]["@type"] == "Entity" and nodes[RUN]["used"] == [SST]
    # Accept-Profile is a preference: a profile that does not describe modules is passed over
    response = client.get("/id/module/sst-forecaster", headers={
        "accept": "text/turtle", "accept-profile": f"<{CROISSANT_PROFILE}>, <{PROV_PROFILE}>;q=0.5"})
    assert response.headers["content-profile"] == f"<{PROV_PROFILE}>"
    response = client.get("/id/module/sst-forecaster", headers={"accept-profile": f"<{CROISSANT_PROFILE}>"})
    assert response.headers["content-profile"] == "<https://w3id.org/ai4kg/ns>" and response.json()["title"]


def test_croissant_over_http(client: TestClient, tmp_path: Path) -> None:
    response = client.get("/id/dataset/coastal-sst", params={"profile": CROISSANT_PROFILE},
                          headers={"accept": "application/ld+json"})
    assert response.status_code == 200 and response.headers["content-profile"] == f"<{CROISSANT_PROFILE}>"
    path = tmp_path / "metadata.json"
    path.write_bytes(response.content)
    assert mlc.Dataset(jsonld=path).metadata.url == DATASET
    # a dataset's own graph: JSON-LD, as it has no ai4-metadata document
    native = client.get("/id/dataset/coastal-sst", headers={"accept": "application/json"})
    assert native.status_code == 200 and isinstance(native.json(), list)
    turtle = client.get("/id/dataset/coastal-sst", params={"profile": "prov"}, headers={"accept": "text/turtle"})
    assert turtle.status_code == 200 and "prov:Entity" in turtle.text


@pytest.mark.parametrize("url, profile", [
    ("/id/module/sst-forecaster", "croissant"),           # Croissant describes datasets
    ("/id/dataset/coastal-sst", "fair4ml"),               # FAIR4ML describes models
    ("/id/dataset/coastal-sst", "dcat-ap"),
    ("/id/catalog", "croissant"),                         # one Croissant document is one dataset
])
def test_a_profile_that_does_not_describe_the_kind_is_a_400_naming_it(client: TestClient, url: str,
                                                                       profile: str) -> None:
    response = client.get(url, params={"profile": profile})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["invalid-params"][0]["name"] == "profile"


def test_catalogue_in_fair4ml_and_prov(client: TestClient) -> None:
    response = client.get("/id/catalog", params={"profile": "fair4ml"}, headers={"accept": "application/ld+json"})
    assert response.status_code == 200 and response.headers["content-profile"] == f"<{FAIR4ML_PROFILE}>"
    document = response.json()
    models = [node for node in document["@graph"] if "MLModel" in node.get("@type", [])]
    assert {node["@id"] for node in models} >= {SST, FINETUNED}
    response = client.get("/id/catalog", params={"profile": "prov"}, headers={"accept": "text/turtle"})
    assert response.status_code == 200
    unified = prov.read(io.BytesIO(response.content), format="rdf", rdf_format="turtle").unified()
    assert unified.get_record(SST) and SECRET_RUN not in response.text  # anonymous: public activities only


def test_export_profile(tmp_path: Path) -> None:
    runner = CliRunner()
    data = ["--data", str(tmp_path / "data")]
    assert runner.invoke(main, [*data, "import", str(valid_module_files()[0])]).exit_code == 0
    for profile, term in (("fair4ml", "https://w3id.org/fair4ml#MLModel"), ("prov", "http://www.w3.org/ns/prov#Entity")):
        result = runner.invoke(main, [*data, "export", "--profile", profile, "--format", "nt"])
        assert result.exit_code == 0, result.output
        assert any(t.object.value == term for t in ox.parse(input=result.stdout_bytes, format=ox.RdfFormat.N_TRIPLES))
    assert runner.invoke(main, [*data, "export", "--profile", "croissant"]).exit_code == 2


def test_profiles_by_name_iri_and_alias() -> None:
    assert view_of("fair4ml") is view_of(f"<{FAIR4ML_PROFILE}>") is view_of("https://w3id.org/fair4ml") is VIEWS["fair4ml"]
    assert view_of(CROISSANT_PROFILE) is VIEWS["croissant"]
    assert view_of("http://www.w3.org/ns/prov") is view_of(PROV_PROFILE) is VIEWS["prov"]
    assert VIEWS["croissant"].describes("Dataset") and not VIEWS["croissant"].describes("Module")
    assert not VIEWS["croissant"].catalog_queries
