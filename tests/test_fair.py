"""FAIR reports: the checks of shapes/fair/checks.ttl, their link to the official MLDCAT-AP shapes,
the real modules' reports, the API and the command."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pyoxigraph as ox
import pyshacl
import pytest
import rdflib
import yaml
from click.testing import CliRunner
from fastapi.testclient import TestClient
from rdflib.namespace import SH

from ai4kg.api.app import create_app
from ai4kg.catalog import ImportOptions, import_files
from ai4kg.cli import main
from ai4kg.config import Settings
from ai4kg.credentials import KeyStore
from ai4kg.graph import fair
from ai4kg.graph.store import KnowledgeGraph
from ai4kg.graph.validation import shapes_graph
from ai4kg.graph.views import VIEWS

from conftest import MODULES, REPO, SHARED

IT6, DCT, DCAT = "http://data.europa.eu/it6/", "http://purl.org/dc/terms/", "http://www.w3.org/ns/dcat#"
MLDCAT = "https://semiceu.github.io/MLDCAT-AP/releases/3.1.0#"
BASE = "https://w3id.org/ai4kg/id/module/"

# What MLDCAT-AP 3.1.0 makes mandatory, and the must-check that stands for it: (official node
# shape, path) -> check id. Written out here, independently of the annotations in checks.ttl.
MANDATORY = {
    ("MachineLearningModelShape", DCT + "identifier"): "F-identifier",
    ("MachineLearningModelShape", DCT + "title"): "F-title",
    ("MachineLearningModelShape", DCT + "created"): "R-created",
    ("MachineLearningModelShape", DCAT + "version"): "R-version",
    ("MachineLearningModelShape", IT6 + "trainedOn"): "R-trained-on",
    ("MachineLearningModelShape", IT6 + "hasFile"): "A-file",
    ("FileShape", DCT + "format"): "I-file-format",
    ("FileShape", DCT + "identifier"): "A-file-described",
    ("FileShape", DCT + "title"): "A-file-described",
    ("FileShape", IT6 + "url"): "A-file-described",
    ("DatasetShape", DCT + "title"): "I-dataset-described",
    ("DatasetShape", DCT + "description"): "I-dataset-described",
    ("DatasetShape", IT6 + "collectionDate"): "I-dataset-described",
}
# The properties the views leave out when the metadata lacks them (the documented gaps).
DOCUMENTED_GAPS = {DCAT + "version", IT6 + "hasFile", IT6 + "trainedOn", DCT + "format", DCT + "title",
                   DCT + "description", IT6 + "collectionDate"}


# -- a model that passes every check, and one failing variant per check ----------------------------

PREFIXES = """@prefix adms: <http://www.w3.org/ns/adms#> . @prefix ai4kg: <https://w3id.org/ai4kg/ns#> .
@prefix dcat: <http://www.w3.org/ns/dcat#> . @prefix dct: <http://purl.org/dc/terms/> .
@prefix foaf: <http://xmlns.com/foaf/0.1/> . @prefix it6: <http://data.europa.eu/it6/> .
@prefix lpwcc: <https://linkedpaperswithcode.com/class/> . @prefix schema: <http://schema.org/> .
@prefix skos: <http://www.w3.org/2004/02/skos/core#> . @prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix v: <https://w3id.org/ai4kg/vocab/> . @prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> . @prefix ft: <http://publications.europa.eu/resource/authority/file-type/> .
@base <https://w3id.org/ai4kg/id/module/> .
"""
MODEL = """<m>
  dct:identifier "m" ;
  dct:title "Model" ;
  dct:description "What it does." ;
  it6:shortDescription "Short." ;
  dct:created "2024-01-01"^^xsd:date ;
  dcat:version "1.2.0" ;
  dcat:keyword "plankton" ;
  dcat:theme v:task\\/classification ;
  dct:type v:category\\/ai4-trainable ;
  schema:softwareRequirements v:library\\/pytorch ;
  it6:visibility v:visibility\\/public ;
  adms:identifier <m#doi-10.5281%2Fzenodo.9> ;
  it6:hasInputModality <m#input-modality-image> ;
  dct:license <http://spdx.org/licenses/MIT> ;
  it6:hasRepository <https://github.com/example-org/m> ;
  it6:trainedOn <https://doi.org/10.5281/zenodo.1> ;
  it6:hasFile <m#weights-file> ;
  foaf:page <https://docs.example-org.eu/m> ;
  dct:isReferencedBy <https://doi.org/10.1000/paper> ;
  ai4kg:inferenceResources <m#resources-inference> ;
  a it6:MachineLearningModel .
v:task\\/classification a skos:Concept ; skos:prefLabel "Classification"@en .
v:category\\/ai4-trainable a skos:Concept ; skos:prefLabel "AI4 trainable"@en .
v:library\\/pytorch a skos:Concept ; skos:prefLabel "PyTorch"@en .
v:visibility\\/public a skos:Concept ; skos:prefLabel "Public"@en .
v:data-type\\/image a skos:Concept ; skos:prefLabel "Image"@en .
<m#doi-10.5281%2Fzenodo.9> a adms:Identifier ; skos:notation "10.5281/zenodo.9" .
<m#input-modality-image> a it6:Modality ; it6:classification v:data-type\\/image .
<http://spdx.org/licenses/MIT> a dct:LicenseDocument ; rdfs:label "MIT" .
<https://github.com/example-org/m> a lpwcc:repository, dcat:Resource ; dct:title "github.com/example-org/m" .
<https://doi.org/10.5281/zenodo.1> a dcat:Dataset ;
  it6:collectionDate "2023-05-01"^^xsd:date ;
  dct:title "Plankton images" ;
  dct:description "Images of plankton." .
<m#weights-file> a it6:File ;
  dct:format ft:TAR_GZ ;
  dct:identifier "https://zenodo.org/records/9/files/weights.tar.gz" ;
  dct:title "Trained weights of Model" ;
  it6:url <https://zenodo.org/records/9/files/weights.tar.gz> .
<https://zenodo.org/records/9/files/weights.tar.gz> a dcat:Resource .
ft:TAR_GZ a skos:Concept ; skos:prefLabel "TAR GZ" .
<https://docs.example-org.eu/m> a foaf:Document .
<m#resources-inference> ai4kg:cpu 2 .
"""


def _drop(line: str) -> str:
    assert line in MODEL, line
    return MODEL.replace(line, "")


def _swap(old: str, new: str) -> str:
    assert old in MODEL, old
    return MODEL.replace(old, new)


FAILING: dict[str, str] = {
    "F-identifier": _drop('  dct:identifier "m" ;\n'),
    "F-pid": _drop("  adms:identifier <m#doi-10.5281%2Fzenodo.9> ;\n"),
    "F-title": _drop('  dct:title "Model" ;\n'),
    "F-description": _drop('  it6:shortDescription "Short." ;\n'),
    "F-keywords": _drop('  dcat:keyword "plankton" ;\n'),
    "F-task": _drop("  dcat:theme v:task\\/classification ;\n"),
    "F-category": _drop("  dct:type v:category\\/ai4-trainable ;\n"),
    "A-file": _drop("  it6:hasFile <m#weights-file> ;\n"),
    "A-file-described": _drop('  dct:title "Trained weights of Model" ;\n'),
    "A-repository": _drop("  it6:hasRepository <https://github.com/example-org/m> ;\n"),
    "A-access-rights": _drop("  it6:visibility v:visibility\\/public ;\n"),
    "A-no-placeholder": _swap("<https://docs.example-org.eu/m>", "<http://add-some-documentation.com>"),
    "I-vocabularies": _swap('skos:prefLabel "Classification"@en', 'skos:notation "classification"'),
    "I-modality": _drop("  it6:hasInputModality <m#input-modality-image> ;\n"),
    "I-file-format": _drop("  dct:format ft:TAR_GZ ;\n"),
    "I-dataset-described": _drop('  it6:collectionDate "2023-05-01"^^xsd:date ;\n'),
    "R-licence": _drop("  dct:license <http://spdx.org/licenses/MIT> ;\n"),
    "R-licence-known": _swap("<http://spdx.org/licenses/MIT>", "<m#licence>"),
    "R-version": _drop('  dcat:version "1.2.0" ;\n'),
    "R-created": _drop('  dct:created "2024-01-01"^^xsd:date ;\n'),
    "R-trained-on": _drop("  it6:trainedOn <https://doi.org/10.5281/zenodo.1> ;\n"),
    "R-documentation": _drop("  foaf:page <https://docs.example-org.eu/m> ;\n"),
    "R-citation": _drop("  dct:isReferencedBy <https://doi.org/10.1000/paper> ;\n"),
    "R-resources": _drop("  ai4kg:inferenceResources <m#resources-inference> ;\n"),
}
"""check id -> the model above with what that check asks for taken out."""


def _report(turtle: str) -> fair.FairReport:
    text = PREFIXES + turtle
    return fair.report_of_view(BASE + "m", [q.triple for q in ox.parse(input=text.encode(), format=ox.RdfFormat.TURTLE)])


def _status(report: fair.FairReport) -> dict[str, str]:
    return {o.check.id: o.status for o in report.checks}


def test_the_complete_model_passes_every_check_and_conforms() -> None:
    report = _report(MODEL)
    assert _status(report) == {c.id: "pass" for c in fair.checks()}
    assert report.conforms_to_mldcat_ap and report.mldcat_ap_violations == [] and report.must_passed
    assert all(s.passed == s.applicable > 0 for s in report.scores.values())


@pytest.mark.parametrize("check_id", sorted(FAILING))
def test_each_check_fails_when_its_property_is_missing(check_id: str) -> None:
    report = _report(FAILING[check_id])
    outcome = next(o for o in report.checks if o.check.id == check_id)
    assert outcome.status == "fail" and outcome.findings and all(f.message for f in outcome.findings)
    expected_severity = "Violation" if outcome.check.level == "must" else "Warning"
    assert {f.severity for f in outcome.findings} == {expected_severity}
    if outcome.check.level == "must":  # a must-check fails exactly when MLDCAT-AP says so
        assert not report.conforms_to_mldcat_ap and outcome.standard
    else:  # a should-check asks for more than the standard
        assert report.conforms_to_mldcat_ap, [f.as_dict() for f in report.mldcat_ap_violations]
    assert not report.must_passed if outcome.check.level == "must" else report.must_passed


def test_every_check_has_a_passing_and_a_failing_example() -> None:
    assert {c.id for c in fair.checks()} == set(FAILING)


def test_checks_that_need_a_linked_node_are_not_applicable_without_one() -> None:
    report = _report(FAILING["A-file"])
    status = _status(report)
    assert status["A-file"] == "fail"
    assert status["A-file-described"] == status["I-file-format"] == "not applicable"
    assert _status(_report(FAILING["R-trained-on"]))["I-dataset-described"] == "not applicable"
    assert _status(_report(FAILING["R-licence"]))["R-licence-known"] == "not applicable"


# -- the declarations ----------------------------------------------------------------------------

def test_every_check_is_declared_completely() -> None:
    graph = fair.model_shapes().graph
    for check in fair.checks():
        assert check.level in ("must", "should") and check.title and check.advice, check.id
        assert check.principle[0] in "FAIR" and check.principle[1:2].isdigit(), check.id
        severity = SH.Violation if check.level == "must" else SH.Warning
        shape = rdflib.URIRef(check.shape)
        for s in (shape, *graph.objects(shape, SH.property)):
            assert isinstance(s, rdflib.URIRef), f"{check.id}: shapes with results need IRIs"
            assert graph.value(s, SH.severity) == severity, f"{check.id}: {s} must have sh:severity {severity}"
            if graph.value(s, SH.path) is not None:
                assert graph.value(s, SH.message) or graph.value(shape, SH.message), f"{check.id}: {s} needs sh:message"
        if check.field:
            assert f"`{check.field}" in check.advice or check.field == "links.source_code", check.id


def test_must_checks_mirror_the_official_mandatory_properties() -> None:
    official = rdflib.Graph().parse(SHARED / "standards/mldcat-ap/3.1.0/shacl/mldcat-ap-SHACL.ttl")
    mandatory = {(str(ns).rsplit("#", 1)[-1], str(official.value(ps, SH.path)))
                 for ns, ps in official.subject_objects(SH.property)
                 if official.value(ps, SH.minCount) is not None and int(official.value(ps, SH.minCount)) >= 1}
    for key, check_id in MANDATORY.items():
        assert key in mandatory, key
    model_mandatory = {key for key in mandatory if key[0] == "MachineLearningModelShape"}
    assert model_mandatory <= set(MANDATORY), "every mandatory property of a model has its must-check"
    by_id = {c.id: c for c in fair.checks()}
    for (shape, path), check_id in MANDATORY.items():
        check = by_id[check_id]
        assert check.level == "must" and check.standard_shape == MLDCAT + shape and path in check.paths
    assert {c.id for c in fair.checks() if c.level == "must"} == set(MANDATORY.values())


def test_the_fair_shapes_stay_out_of_the_write_path() -> None:
    assert not set(shapes_graph().subjects(rdflib.URIRef("https://w3id.org/ai4kg/ns#fairPrinciple"), None))


def test_vendored_official_shapes_are_the_published_bytes() -> None:
    vendored = sorted(p for p in (REPO / "shapes/standards").rglob("*.ttl"))
    assert len(vendored) == 5
    readme = (REPO / "shapes/standards/README.md").read_text("utf-8")
    sources = (SHARED / "standards/SOURCES.tsv").read_text("utf-8")
    for path in vendored:
        relative = path.relative_to(REPO / "shapes/standards").as_posix()
        assert path.read_bytes() == (SHARED / "standards" / relative).read_bytes(), relative
        assert f"`{relative}`" in readme, f"{relative} is not listed in shapes/standards/README.md"
        commit = next(line.split("\t")[1] for line in sources.splitlines() if line.startswith(relative + "\t"))
        assert commit in readme, f"the source of {relative} ({commit}) is not in the README"
    used = {*fair.MLDCAT_AP, *fair.DCAT_AP}
    assert used == {f"shapes/standards/{p.relative_to(REPO / 'shapes/standards').as_posix()}" for p in vendored}


def test_the_shape_files_are_packaged() -> None:
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["tool"]["setuptools"]["package-data"]["ai4kg"]
    for name in (fair.FAIR_CHECKS, *fair.MLDCAT_AP, *fair.DCAT_AP, "shapes/standards/README.md"):
        assert any(REPO / name in REPO.glob(p) for p in patterns), f"{name} is not in the package data"


# -- real modules ----------------------------------------------------------------------------------

def test_the_real_modules_import(real: KnowledgeGraph) -> None:
    assert sum("/module/" in iri for iri in real.index.iris()) >= 30


def _official(triples: list[ox.Triple]) -> list[tuple[str, str, str, str]]:
    """(node shape, path, component, focus) of every result of the published MLDCAT-AP shapes, by
    plain pyshacl (not the report's prepared shapes)."""
    official = _official_shapes()
    data = rdflib.Graph().parse(data=ox.serialize(triples, format=ox.RdfFormat.N_TRIPLES).decode(), format="nt")
    _, report, _ = pyshacl.validate(data, shacl_graph=official, inference="none")
    parents = {ps: ns for ns, ps in official.subject_objects(SH.property)}
    return [(str(parents[report.value(r, SH.sourceShape)]).rsplit("#", 1)[-1], str(report.value(r, SH.resultPath)),
             str(report.value(r, SH.sourceConstraintComponent)).rsplit("#", 1)[-1], str(report.value(r, SH.focusNode)))
            for r in report.objects(None, SH.result)]


_SHAPES: list[rdflib.Graph] = []


def _official_shapes() -> rdflib.Graph:
    if not _SHAPES:
        _SHAPES.append(rdflib.Graph().parse(SHARED / "standards/mldcat-ap/3.1.0/shacl/mldcat-ap-SHACL.ttl"))
    return _SHAPES[0]


def test_real_modules_fail_exactly_the_official_mandatory_properties(real: KnowledgeGraph) -> None:
    iris = fair.module_iris(real)
    assert len(iris) >= 30
    for iri in iris:
        official = _official(VIEWS["mldcat-ap"].describe(real, iri))
        # Nothing but missing mandatory properties, on the documented paths.
        assert {component for _, _, component, _ in official} <= {"MinCountConstraintComponent"}, iri
        assert {path for _, path, _, _ in official} <= DOCUMENTED_GAPS, iri
        report = fair.fair_report(real, iri)
        assert set(report.failed("must")) == {MANDATORY[(shape, path)] for shape, path, _, _ in official}, iri
        assert report.conforms_to_mldcat_ap == (not official)
        assert len(report.mldcat_ap_violations) == len(official)
        for outcome in report.checks:
            if outcome.check.level == "must" and not outcome.passed:
                assert outcome.standard, f"{iri} {outcome.check.id}: the official results behind it"
    # No view invents a version: every module lacks one.
    assert all("R-version" in fair.fair_report(real, iri).failed() for iri in iris)


def test_the_catalogue_report_agrees_with_each_module_report(real: KnowledgeGraph) -> None:
    catalogue = fair.catalog_fair_report(real)
    assert [m.iri for m in catalogue.modules] == fair.module_iris(real) == sorted(fair.module_iris(real))
    for module in catalogue.modules:
        single = fair.fair_report(real, module.iri)
        assert module.as_dict() == single.as_dict(), module.name
    for i, summary in enumerate(catalogue.checks):
        assert summary.passed + summary.failed + summary.not_applicable == len(catalogue.modules)
        assert summary.failing == [m.name for m in catalogue.modules if m.checks[i].status == "fail"]
    assert catalogue.conforms_to_dcat_ap and catalogue.dcat_ap_violations == []
    assert sum(w["count"] for w in catalogue.dcat_ap_warnings) > 0  # recommended properties the data lacks
    assert not catalogue.must_passed
    json.dumps(catalogue.as_dict())


def test_placeholder_links_are_flagged_on_the_demo_app_only(real: KnowledgeGraph) -> None:
    catalogue = fair.catalog_fair_report(real)
    placeholder = next(s for s in catalogue.checks if s.check.id == "A-no-placeholder")
    assert placeholder.failing == ["ai4os-demo-app"]
    report = fair.fair_report(real, BASE + "ai4os-demo-app")
    outcome = next(o for o in report.checks if o.check.id == "A-no-placeholder")
    assert sorted(f.value for f in outcome.findings) == [
        "http://add-some-documentation.com", "http://add-some-link-to-another-model.com",
        "http://add-some-url-pointing-to-your-dataset.com", "http://add-some-weights-url.com"]


def test_adding_the_missing_links_passes_their_checks(tmp_path: Path) -> None:
    document = yaml.safe_load((MODULES / "ai4os-yolo-torch__ai4-metadata.yml").read_text("utf-8"))
    path = tmp_path / "ai4-metadata.yml"
    with KnowledgeGraph(Settings.in_memory()) as graph:
        path.write_text(yaml.safe_dump(document), "utf-8")
        [imported] = import_files(graph, [path])
        before = fair.fair_report(graph, imported.iri)
        assert set(before.failed("must")) == {"A-file", "R-trained-on", "R-version"}
        # links.weights feeds it6:hasFile (a .tar.gz gives its format), links.dataset it6:trainedOn
        document["links"]["weights"] = "https://zenodo.org/records/1234/files/yolo-weights.tar.gz"
        document["links"]["dataset"] = "https://doi.org/10.5281/zenodo.1234"
        path.write_text(yaml.safe_dump(document), "utf-8")
        [again] = import_files(graph, [path])
        after = fair.fair_report(graph, again.iri)
    status = _status(after)
    assert status["A-file"] == status["A-file-described"] == status["I-file-format"] == status["R-trained-on"] == "pass"
    # What the metadata cannot say is still reported missing, never invented.
    assert set(after.failed("must")) == {"R-version", "I-dataset-described"}
    dataset = next(o for o in after.checks if o.check.id == "I-dataset-described")
    assert {f.path for f in dataset.findings} == {"dct:title", "dct:description", "it6:collectionDate"}
    assert {f.via for f in dataset.findings} == {"it6:trainedOn"}


def test_prepared_shapes_give_the_same_results_as_plain_pyshacl(real: KnowledgeGraph) -> None:
    shapes = fair.model_shapes()

    def results(report: rdflib.Graph) -> list[tuple[str, ...]]:
        return sorted((str(report.value(r, SH.focusNode)), str(report.value(r, SH.resultPath)),
                       str(report.value(r, SH.value)), str(report.value(r, SH.resultSeverity)),
                       str(report.value(r, SH.sourceConstraintComponent)))
                      for r in report.objects(None, SH.result))

    views = {iri: VIEWS["mldcat-ap"].describe(real, iri) for iri in fair.module_iris(real)[:12]}
    union = list(dict.fromkeys(t for v in views.values() for t in v))
    for triples in (*views.values(), union):
        data = fair._to_rdflib(triples)
        plain = pyshacl.validate(data, shacl_graph=shapes.graph, inference="none", allow_warnings=True)[1]
        assert results(shapes.validate(data)) == results(plain)


# -- API and command ---------------------------------------------------------------------------------

PUBLIC, PRIVATE = "ai4os-yolo-torch", "ai4os-demo-app"


@pytest.fixture(scope="module")
def api() -> tuple[TestClient, str, str]:
    keys = KeyStore(None)
    with KnowledgeGraph(Settings.in_memory()) as graph:
        import_files(graph, [MODULES / "ai4os-yolo-torch__ai4-metadata.yml"])
        import_files(graph, [MODULES / "ai4os-demo-app__ai4-metadata.yml"],
                     ImportOptions(vo="vo.secret.eu", visibility="virtual-organisation"))
        _, member = keys.create("member", frozenset({"vo.secret.eu"}))
        _, other = keys.create("other", frozenset({"vo.other.eu"}))
        yield TestClient(create_app(graph, keys)), member, other


def test_api_module_report(api: tuple[TestClient, str, str]) -> None:
    client, member, other = api
    response = client.get(f"/v1/catalog/modules/{PUBLIC}/fair")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["name"] == PUBLIC and not body["must_passed"] and not body["conforms_to_mldcat_ap"]
    assert [c["id"] for c in body["checks"]] == [c.id for c in fair.checks()]
    failed = {c["id"] for c in body["checks"] if c["status"] == "fail" and c["level"] == "must"}
    assert failed == {"A-file", "R-trained-on", "R-version"}
    assert set(body["scores"]) == {"F", "A", "I", "R"}
    for name, headers in (("no-such-module", {}), ("bad name!", {}), (PRIVATE, {}),
                          (PRIVATE, {"authorization": f"Bearer {other}"})):
        response = client.get(f"/v1/catalog/modules/{name}/fair", headers=headers)
        assert response.status_code == 404, name
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["invalid-params"][0]["name"] == "name"
    assert client.get(f"/v1/catalog/modules/{PRIVATE}/fair", headers={"authorization": f"Bearer {member}"}).status_code == 200
    assert client.get(f"/v1/catalog/tools/{PUBLIC}/fair").status_code == 404  # a module, not a tool


def test_api_catalogue_report_shows_what_the_reader_may_see(api: tuple[TestClient, str, str]) -> None:
    client, member, _ = api
    anonymous = client.get("/v1/catalog/fair").json()
    assert [m["name"] for m in anonymous["modules"]] == [PUBLIC] and anonymous["modules_count"] == 1
    assert anonymous["conforms_to_dcat_ap"] is True
    assert all(c["passed"] + c["failed"] + c["not_applicable"] == 1 for c in anonymous["checks"])
    assert all("class" in w for w in anonymous["dcat_ap_warnings"])
    seen = client.get("/v1/catalog/fair", headers={"authorization": f"Bearer {member}"}).json()
    assert [m["name"] for m in seen["modules"]] == [PRIVATE, PUBLIC]
    placeholder = next(c for c in seen["checks"] if c["id"] == "A-no-placeholder")
    assert placeholder["failing"] == [PRIVATE]


def test_api_documents_the_reports() -> None:
    with KnowledgeGraph(Settings.in_memory()) as graph:
        paths = create_app(graph).openapi()["paths"]
    for path in ("/v1/catalog/modules/{name}/fair", "/v1/catalog/tools/{name}/fair", "/v1/catalog/fair"):
        operation = paths[path]["get"]
        assert "$ref" in json.dumps(operation["responses"]["200"]), path
        assert "application/problem+json" in operation["responses"]["404"]["content"]


def test_cli_fair(tmp_path: Path) -> None:
    runner = CliRunner()
    data = ["--data", str(tmp_path / "d")]
    empty = runner.invoke(main, [*data, "fair"])
    assert empty.exit_code == 0, empty.output  # no module: no must-check fails
    assert runner.invoke(main, [*data, "import", str(MODULES / "ai4os-demo-app__ai4-metadata.yml")]).exit_code == 0
    result = runner.invoke(main, [*data, "fair", PRIVATE])
    assert result.exit_code == 1
    for text in ("A-no-placeholder", "R-version", "FAIL", "links.weights", "add-some-weights-url.com"):
        assert text in result.stdout, text
    result = runner.invoke(main, [*data, "fair", "--json", PRIVATE])
    assert result.exit_code == 1 and json.loads(result.stdout)["name"] == PRIVATE
    assert runner.invoke(main, [*data, "fair", "no-such-module"]).exit_code == 2
    assert runner.invoke(main, [*data, "fair", "bad name!"]).exit_code == 2
    result = runner.invoke(main, [*data, "fair", "--all", "--json"])
    assert result.exit_code == 1 and [m["name"] for m in json.loads(result.stdout)["modules"]] == [PRIVATE]
    result = runner.invoke(main, [*data, "fair"])
    assert result.exit_code == 1 and "DCAT-AP 3.0.1" in result.stdout
    assert runner.invoke(main, [*data, "fair", "--all", PRIVATE]).exit_code == 2  # usage error
