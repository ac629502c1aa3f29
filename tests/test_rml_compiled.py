"""The compiled RML engine (metadata/rml_compiler.py) makes morph-kgc's graph, for every mapping.

Each mapping runs with both engines over the records of every real module file (V1 and V2, one by
one and as one batch, since morph-kgc's lexical forms depend on the whole batch), the provenance
fragments in ../shared/ and demo/, deployments through their life and federations with their
rounds, and records with awkward values; the quads must be the same (no mapping makes blank nodes,
so equal sets of quads are isomorphic graphs). A construct the compiler does not know is refused
when the mapping loads, naming it. To compare the engines on every write of other test modules,
run them with AI4KG_RML_ENGINE=crosscheck.
"""

from __future__ import annotations

import copy
import datetime
import decimal
import itertools
import json
import math
import random
import statistics
import subprocess
import sys
import time
from functools import cache
from pathlib import Path
from typing import Any

import pyoxigraph as ox
import pytest

from ai4kg.config import DEFAULT_BASE_URL, DEFAULT_VO
from ai4kg.graph.namespaces import asset_iri
from ai4kg.metadata import loader
from ai4kg.metadata.records import derive_identifier, to_records
from ai4kg.metadata.rml import RmlMapping, mapping_path
from ai4kg.metadata.rml_compiler import MappingError
from ai4kg.metadata.rml_values import MISSING, column_strings, integer_lexical
from ai4kg.metadata.schema import check_document, detect_generation

from conftest import SHARED, valid_module_files

BASE = "https://w3id.org/ai4kg/id/"
ROOT = Path(__file__).resolve().parent.parent
MAPPINGS = ("ai4-metadata-v1", "ai4-metadata-v2", "provenance/provenance", "deployments/deployment",
            "federated/federated")


@cache
def engines(mapping: str | Path) -> tuple[RmlMapping, RmlMapping]:
    path = mapping if isinstance(mapping, Path) else mapping_path(mapping)
    return RmlMapping(path, engine="compiled"), RmlMapping(path, engine="morph-kgc")


def same_graph(mapping: str | Path, records: dict[str, list[dict[str, Any]]]) -> list[ox.Quad]:
    """Both engines' quads of the records, required equal; the compiled engine's ([] where both
    engines refuse the records)."""
    outcomes: list[Any] = []
    for engine in engines(mapping):
        try:
            outcomes.append(engine.materialize(copy.deepcopy(records)))
        except Exception as exc:  # noqa: BLE001 - compared below
            outcomes.append(exc)
    compiled, morph = outcomes
    if isinstance(compiled, Exception) or isinstance(morph, Exception):
        assert isinstance(compiled, ValueError) and isinstance(morph, Exception), (compiled, morph)
        return []
    assert not [q for q in compiled if isinstance(q.subject, ox.BlankNode) or isinstance(q.object, ox.BlankNode)]
    assert len(compiled) == len(set(compiled)), "each quad once"
    only_compiled = sorted(map(str, set(compiled) - set(morph)))
    only_morph = sorted(map(str, set(morph) - set(compiled)))
    assert (only_compiled, only_morph) == ([], []), f"{mapping}: the engines disagree"
    return compiled


def merged(*record_sets: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for records in record_sets:
        for source, rows in records.items():
            out.setdefault(source, []).extend(rows)
    return out


# -- modules: every real file, and demo/ -------------------------------------------------------------
def module_records(path: Path) -> tuple[str, dict[str, list[dict[str, Any]]]]:
    """The records of a file, as the catalogue makes them (catalog._read_and_check)."""
    document = loader.read_file(path)
    generation = detect_generation(document)
    assert not [i for i in check_document(document, generation) if i.severity == "error"], path
    identifier = derive_identifier(document, generation, path.stem)
    return generation, to_records(document, generation, asset_iri(DEFAULT_BASE_URL, "Module", identifier), identifier,
                                  None, asset_iri(DEFAULT_BASE_URL, "VirtualOrganisation", DEFAULT_VO), "public")


MODULE_FILES = valid_module_files() + sorted((ROOT / "demo").glob("*.yml"))


@pytest.mark.parametrize("path", MODULE_FILES, ids=[p.name for p in MODULE_FILES])
def test_a_module_file_maps_to_the_same_graph(path: Path) -> None:
    generation, records = module_records(path)
    assert same_graph(f"ai4-metadata-{generation}", records)


@pytest.mark.parametrize("generation", ["v1", "v2"])
def test_all_module_files_of_a_generation_map_to_the_same_graph_as_one_batch(generation: str) -> None:
    sets = [records for g, records in map(module_records, MODULE_FILES) if g == generation]
    assert len(sets) >= 10
    assert len(same_graph(f"ai4-metadata-{generation}", merged(*sets))) > 300


# -- provenance fragments ----------------------------------------------------------------------------
def fragment_records() -> list[dict[str, list[dict[str, Any]]]]:
    from ai4kg.provenance.records import BUILDERS, Application, Iris, application_name, check, origin_of

    bundle = json.loads((SHARED / "ai4eosc/provenance/fragments-demo-app.json").read_text())
    fragments = [bundle[part] for part in ("jenkins", "mlflow", "nomad")]
    fragments += json.loads((ROOT / "demo/provenance/flood-segmentation-s2.json").read_text())
    fragments.append({"action": "completed", "repository": {"full_name": "ai4os-hub/ai4os-demo-app"}, "workflow_run": {
        "id": 30433642, "name": "Build", "run_attempt": 1, "status": "completed", "conclusion": "success",
        "head_sha": "acb5820ced9479c074f688cc328bf03f341a511d", "run_started_at": "2025-05-10T09:00:00Z",
        "updated_at": "2025-05-10T09:04:10Z", "actor": {"login": "octocat"},
        "head_commit": {"id": "acb5820ced9479c074f688cc328bf03f341a511d", "message": "Update README.md\n\nmore",
                        "timestamp": "2025-05-10T08:59:00Z", "author": {"name": "Mona", "email": "o@github.com"}}}})
    out = []
    for fragment in fragments:
        origin = origin_of(fragment)
        check(origin, fragment)
        name = "ai4os-demo-app" if origin == "github-actions" else application_name(origin, fragment)
        for visibility, runs in (("public", frozenset({"5e96fe940dca470aa7d6c16620e82c35"})), ("private", frozenset())):
            application = Application(BASE + f"module/{name}", str(name), "vo.demo", visibility, f"ai4oshub/{name}",
                                      f"https://github.com/ai4os-hub/{name}", runs, frozenset())
            out.append(BUILDERS[origin](fragment, application, Iris(BASE)).records)
    return out


def test_provenance_fragments_map_to_the_same_graph_one_by_one_and_together() -> None:
    sets = fragment_records()
    assert len(sets) == 14
    for records in sets:
        assert same_graph("provenance/provenance", records)
    assert len(same_graph("provenance/provenance", merged(*sets[::2]))) > 100


# -- deployments and federations ---------------------------------------------------------------------
def deployment_records() -> list[dict[str, list[dict[str, Any]]]]:
    from ai4kg.workloads.records import new_deployment, to_records as deployment_to_records

    out = []
    bodies = [{"kind": "module", "module": "ai4os-demo-app", "title": "Démo \"app\"", "description": "line\nline",
               "resources": {"cpu": 2, "memory_mb": 4096, "gpu": 1, "gpu_model": "A100"},
               "datasets": [{"doi": "10.5281/zenodo.1234567"}], "command": ["python", "-m", "x y"]},
              {"kind": "try-me", "module": "ai4os-demo-app"}, {"kind": "tool", "module": "ai4os-dev-env"},
              {"kind": "batch", "module": "ai4os-demo-app", "version": "1.2", "storage": "rshare"},
              {"kind": "federated", "module": "ai4os-demo-app"}]
    for n, body in enumerate(bodies):
        deployment = new_deployment(body, f"d-{n}", BASE, "alice@example.org", "vo.demo", BASE + f"module/{body['module']}",
                                    "ai4oshub/ai4os-demo-app:latest", "nomad" if n % 2 else "local")
        out.append(deployment_to_records(deployment, BASE))
        deployment.placed_on = "ifca"
        for status in ("starting", "running", "completed"):
            deployment.move(status, f"it is {status}")
            if status == "running":
                deployment.urls = {label: f"https://{label}.d-{n}.example.org/" for label in deployment.endpoints}
            out.append(deployment_to_records(deployment, BASE))
    return out


def test_deployments_through_their_life_map_to_the_same_graph() -> None:
    sets = deployment_records()
    for records in sets:
        assert same_graph("deployments/deployment", records)
    assert same_graph("deployments/deployment", merged(*sets[3::4]))


def federation_records() -> list[dict[str, list[dict[str, Any]]]]:
    from ai4kg.federated.records import Client, new_federation, round_records, session_records

    module = "ai4os-demo-app"
    federation = new_federation({"module": module, "description": "d", "privacy": {"differential_privacy": True}},
                                "fed", BASE, "alice", "default", BASE + "module/" + module)
    out = [session_records(federation, BASE)]
    federation.deployment, federation.run_id, federation.status = "fed-server", "42", "running"
    federation.started_at, federation.ended_at = "2026-12-03T10:00:00Z", "2026-12-03T11:00:00Z"
    federation.clients = [Client(c, c, "SHA256:" + c.upper() * 43, "ecdsa a", "2026-12-03T09:00:00Z", "alice",
                                 node_id=str(n + 1)) for n, c in enumerate("abcd")]
    federation.clients[3].status = "revoked"
    out.append(session_records(federation, BASE))
    nodes = ["1", "2", "3"]
    for number, privacy in ((1, None), (2, {"sigma": 0.5}), (3, {"sigma": 1})):
        record = {"run_id": "42", "round": number, "started_at": "2026-12-03T10:00:00Z",
                  "ended_at": "2026-12-03T10:00:09Z",
                  "updates": [{"node_id": node, "num_examples": 100 * int(node), "weight": 1 / 3 if node != "3" else None}
                              for node in nodes],
                  "model": {"sha256": f"{number:064x}"} if number < 3 else None,
                  "previous_model": {"sha256": f"{number - 1:064x}"},
                  "train_metrics": {"train-loss": 0.5, "acc": 1}, "evaluate_metrics": {"mse": 0.3, "nan": None},
                  "server_metrics": {"mse": 0.25}, "privacy": privacy}
        out.append(round_records(federation, record, BASE, [0.1, 0.2, 3.0], [2]))
    return out


def test_federations_and_their_rounds_map_to_the_same_graph() -> None:
    sets = federation_records()
    for records in sets:
        assert same_graph("federated/federated", records)
    assert same_graph("federated/federated", merged(*sets[1:]))


# -- awkward values, with every construct the compiler knows ----------------------------------------
AWKWARD_MAPPING = """
@prefix rr: <http://www.w3.org/ns/r2rml#> . @prefix rml: <http://semweb.mmlab.be/ns/rml#> .
@prefix ql: <http://semweb.mmlab.be/ns/ql#> . @prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix ex: <http://example.org/ns#> .
ex:Things a rr:TriplesMap ;
  rml:logicalSource [ rml:source "{things}" ; rml:referenceFormulation ql:JSONPath ; rml:iterator "$[*]" ] ;
  rr:subjectMap [ rr:template "http://example.org/thing/{id}" ; rr:class ex:Thing, ex:Other ;
                  rr:graphMap [ rr:template "http://example.org/graph/{id}" ] ] ;
  rr:predicateObjectMap [ rr:predicate ex:text, ex:text2 ; rr:objectMap [ rml:reference "text" ] ] ;
  rr:predicateObjectMap [ rr:predicate ex:lang ; rr:objectMap [ rml:reference "text" ; rr:language "en-GB" ] ] ;
  rr:predicateObjectMap [ rr:predicate ex:str ; rr:objectMap [ rml:reference "text" ; rr:datatype xsd:string ] ] ;
  rr:predicateObjectMap [ rr:predicate ex:int ; rr:objectMap [ rml:reference "number" ; rr:datatype xsd:integer ] ] ;
  rr:predicateObjectMap [ rr:predicate ex:dec ; rr:objectMap [ rml:reference "number" ; rr:datatype xsd:decimal ] ] ;
  rr:predicateObjectMap [ rr:predicate ex:plain ; rr:objectMap [ rml:reference "number" ] ] ;
  rr:predicateObjectMap [ rr:predicate ex:flag ; rr:objectMap [ rml:reference "flag" ; rr:datatype xsd:boolean ] ] ;
  rr:predicateObjectMap [ rr:predicate ex:flagText ; rr:objectMap [ rml:reference "flag" ] ] ;
  rr:predicateObjectMap [ rr:predicate ex:at ; rr:objectMap [ rml:reference "at" ; rr:datatype xsd:dateTime ] ] ;
  rr:predicateObjectMap [ rr:predicate ex:slug ; rr:objectMap [ rr:template "http://example.org/s/{text}?n={number}#{flag}" ] ] ;
  rr:predicateObjectMap [ rr:predicate ex:label ; rr:objectMap [ rr:template "{text} ({number})" ; rr:termType rr:Literal ] ] ;
  rr:predicateObjectMap [ rr:predicate ex:count ; rr:objectMap [ rr:template "{number}" ; rr:datatype xsd:integer ] ] ;
  rr:predicateObjectMap [ rr:predicate ex:link ; rr:objectMap [ rml:reference "link" ; rr:termType rr:IRI ] ] ;
  rr:predicateObjectMap [ rr:predicate ex:kind ; rr:objectMap [ rr:constant ex:Constant ] ;
                          rr:graphMap [ rr:constant rr:defaultGraph ] ] ;
  rr:predicateObjectMap [ rr:predicate ex:note ; rr:object "a constant note" ] ;
  rr:predicateObjectMap [ rr:predicateMap [ rr:constant ex:viaMap ] ; rr:objectMap [ rml:reference "text" ] ;
                          rr:graph ex:extraGraph ] .
ex:Refs a rr:TriplesMap ;
  rml:logicalSource [ rml:source "{refs}" ; rml:referenceFormulation ql:JSONPath ; rml:iterator "$[*]" ] ;
  rr:subjectMap [ rml:reference "iri" ] ;
  rr:predicateObjectMap [ rr:predicate ex:name ; rr:objectMap [ rml:reference "\\"quoted key\\"" ] ] ;
  rr:predicateObjectMap [ rr:predicate ex:in ; rr:objectMap [ rml:reference "target" ; rr:termType rr:IRI ] ;
                          rr:graphMap [ rml:reference "target" ] ] .
"""
THINGS = [
    {"id": "a b#c?d/é%", "text": "héllo wörld ✓ 𝄞", "number": 3, "flag": True, "at": "2024-01-02 03:04:05",
     "link": "http://example.org/x"},
    {"id": "2", "text": "", "number": 2 ** 62 + 1, "flag": False, "at": "2024-01-02T03:04:05Z"},
    {"id": "3", "text": "nan", "number": 1.5, "flag": "TRUE"},
    {"id": "4", "text": "None", "number": None, "flag": None, "link": "http://example.org/\\u00e9"},
    {"id": "5", "text": 'quote " back \\ \\u0041 newline \n cr \r tab \t nul \x00', "number": -7, "flag": "No"},
    {"id": "6", "number": 10 ** 20},
    {"id": "7", "number": 12345678901234567890, "text": "   "},
    {"id": "", "text": "no subject"},
    {"id": 8, "text": 9, "number": "12", "at": "2024-01-02"},
    {"id": "9", "number": -0.0, "text": "{braces} [x]"},
    {"id": "10", "number": 2.5e-8, "flag": 1},
]
REFS = [{"iri": "http://example.org/r#frag", "quoted key": "v", "target": "http://example.org/g"},
        {"iri": "http://example.org/r2", "quoted key": ""}, {"iri": "http://example.org/\\u00e9#x", "target": "urn:g"}]


@pytest.fixture(scope="module")
def awkward(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rml") / "awkward.rml.ttl"
    path.write_text(AWKWARD_MAPPING, encoding="utf-8")
    return path


def test_awkward_values_alone_and_in_batches_map_to_the_same_graph(awkward: Path) -> None:
    mapped = [bool(same_graph(awkward, {"things": [thing]})) for thing in THINGS]
    # "None" for xsd:integer: both engines refuse it; an empty id: no subject, no triple
    assert mapped == [True] * 3 + [False] + [True] * 3 + [False] + [True] * 3
    assert [bool(same_graph(awkward, {"refs": [ref]})) for ref in REFS] == [True, False, True]
    batch = [t for t in THINGS if t["id"] != "4"]
    quads = same_graph(awkward, {"things": batch, "refs": REFS})
    assert ox.NamedNode("http://example.org/thing/a%20b%23c%3Fd%2F%C3%A9%25") in {q.subject for q in quads}
    rng = random.Random(17)
    for _ in range(8):  # a batch's own mix of types decides lexical forms: random batches
        assert same_graph(awkward, {"things": rng.sample(batch, rng.randint(2, 6)), "refs": rng.sample(REFS, 2)})


@pytest.mark.parametrize("records", [{"things": [{"id": "x", "number": "abc"}]}, {"things": [{"id": "x", "number": True}]},
                                     {"things": [{"id": "x", "number": math.inf}]},
                                     {"things": [{"id": "x", "link": "not an iri"}]},
                                     {"refs": [{"iri": "http://example.org/a b", "quoted key": "v"}]}])
def test_values_the_engines_cannot_map_fail_in_both(awkward: Path, records: dict) -> None:
    compiled, morph = engines(awkward)
    with pytest.raises(Exception):
        morph.materialize(records)
    with pytest.raises(ValueError, match="triples map"):
        compiled.materialize(records)


VALUES = [MISSING, None, math.nan, 0, 1, -1, 2 ** 53 + 1, 2 ** 63, 2 ** 64, -2 ** 63 - 1, 1.5, -0.0, math.inf, True,
          False, "x", "", "nan", "None", datetime.date(2020, 1, 2), decimal.Decimal("1.5"), [1], {"a": 1}]


def test_a_column_of_values_becomes_the_strings_pandas_makes() -> None:
    """morph-kgc builds a pandas frame of the records and str()s its cells: _column follows pandas'
    dtype inference for every mix of two values, and for random mixes of more."""
    import pandas as pd

    rng = random.Random(5)
    mixes = [list(m) for n in (1, 2) for m in itertools.product(VALUES, repeat=n)]
    mixes += [[rng.choice(VALUES) for _ in range(rng.randint(3, 6))] for _ in range(500)]
    for mix in mixes:
        rows = [{} if v is MISSING else {"k": v} for v in mix]
        expected = [None if s in ("", "nan") else s for s in pd.DataFrame(rows, columns=["k"]).map(str)["k"]]
        assert column_strings([row.get("k", MISSING) for row in rows]) == expected, mix


def test_integers_are_written_as_morph_kgc_writes_them() -> None:
    import pandas as pd

    for text in ["3", "3.9", "-3.9", " 4 ", "1_000", "1e3", "4611686018427387905", "1e20", "-1e20", "0.0"]:
        assert integer_lexical(text) == pd.Series([text], dtype=object).astype(float).astype(int).astype(str)[0], text
    for text in ["abc", "", "True", "inf", "NaN"]:
        with pytest.raises(ValueError):
            integer_lexical(text)


# -- what the compiler refuses -----------------------------------------------------------------------
REFUSED = [
    ('rr:objectMap [ rr:parentTriplesMap ex:Other ; rr:joinCondition [ rr:child "a" ; rr:parent "b" ] ]',
     "rr:parentTriplesMap"),
    ('rr:objectMap [ fnml:functionValue [ rr:predicateObjectMap [ rr:predicate fno:executes ; rr:object ex:f ] ] ]',
     "fnml:functionValue"),
    ('rr:objectMap [ rml:reference "a" ; rr:termType rr:BlankNode ]', "rr:BlankNode"),
    ('rr:objectMap [ rml:reference "a" ; rml:languageMap [ rml:reference "lang" ] ]', "rml:languageMap"),
    ('rr:objectMap [ rr:column "a" ]', "rr:column"),
    ('rr:objectMap [ rml:reference "a" ; rr:inverseExpression "{a}" ]', "rr:inverseExpression"),
    ('rr:objectMap [ <http://w3id.org/rml/reference> "a" ]', "http://w3id.org/rml/reference"),
    ('rr:objectMap [ rml:reference "a" ; rr:termType rr:IRI ; rr:datatype xsd:integer ]', "datatype"),
    ('rr:objectMap [ rr:template "x{a" ]', "x{a"),
    ('rr:predicateMap [ rml:reference "p" ] ; rr:objectMap [ rml:reference "a" ]', "predicate map"),
    ('rr:objectMap [ rr:template "http://example.org/{graph}" ]', "'graph'"),  # morph-kgc's own column
]
SOURCE = 'rml:source "{things}" ; rml:referenceFormulation ql:JSONPath ; rml:iterator "$[*]"'
REFUSED_SOURCES = [('rml:source "data.csv" ; rml:referenceFormulation ql:CSV', "ql:CSV"),
                   ('rml:source "{things}" ; rml:referenceFormulation ql:JSONPath ; rml:iterator "$.items[*]"',
                    "$.items[*]"),
                   ('rml:source "data.json" ; rml:referenceFormulation ql:JSONPath ; rml:iterator "$[*]"', "data.json"),
                   (SOURCE + ' ; rml:query "SELECT 1"', "rml:query")]


def refused_mapping(tmp_path: Path, source: str, object_map: str, subject: str = 'rml:reference "iri"') -> Path:
    path = tmp_path / "refused.rml.ttl"
    path.write_text(f"""
@prefix rr: <http://www.w3.org/ns/r2rml#> . @prefix rml: <http://semweb.mmlab.be/ns/rml#> .
@prefix ql: <http://semweb.mmlab.be/ns/ql#> . @prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix fnml: <http://semweb.mmlab.be/ns/fnml#> . @prefix fno: <https://w3id.org/function/ontology#> .
@prefix ex: <http://example.org/ns#> .
ex:Fine a rr:TriplesMap ; rml:logicalSource [ {SOURCE} ] ; rr:subjectMap [ rml:reference "iri" ] ;
  rr:predicateObjectMap [ rr:predicate ex:p ; rr:objectMap [ rml:reference "a" ] ] .
ex:Other a rr:TriplesMap ; rml:logicalSource [ {source} ] ; rr:subjectMap [ {subject} ] ;
  rr:predicateObjectMap [ rr:predicate ex:p ; {object_map} ] .
""", encoding="utf-8")
    return path


@pytest.mark.parametrize("object_map, construct", REFUSED, ids=[c for _, c in REFUSED])
def test_a_construct_the_compiler_does_not_know_is_refused_naming_it(tmp_path: Path, object_map: str,
                                                                      construct: str) -> None:
    with pytest.raises(MappingError, match="triples map Other") as refused:
        RmlMapping(refused_mapping(tmp_path, SOURCE, object_map))
    assert construct in str(refused.value)


@pytest.mark.parametrize("source, construct", REFUSED_SOURCES, ids=[c for _, c in REFUSED_SOURCES])
def test_a_source_the_compiler_does_not_know_is_refused_naming_it(tmp_path: Path, source: str, construct: str) -> None:
    with pytest.raises(MappingError, match="triples map Other") as refused:
        RmlMapping(refused_mapping(tmp_path, source, 'rr:objectMap [ rml:reference "a" ]'))
    assert construct in str(refused.value)


@pytest.mark.parametrize("subject, construct", [('rr:constant ex:s ; rr:class ex:C', "all constant"),
                                                ('rml:reference "iri" ; rr:termType rr:BlankNode', "rr:BlankNode"),
                                                ('rr:template "http://example.org/fixed"', "template without")])
def test_a_subject_map_the_compiler_cannot_reproduce_is_refused(tmp_path: Path, subject: str, construct: str) -> None:
    with pytest.raises(MappingError, match="triples map Other") as refused:
        RmlMapping(refused_mapping(tmp_path, SOURCE, 'rr:objectMap [ rr:constant ex:o ]', subject))
    assert construct in str(refused.value)


def test_every_mapping_of_the_product_compiles() -> None:
    for name in MAPPINGS:
        mapping = RmlMapping(mapping_path(name))
        assert mapping.engine == "compiled" and mapping.compiled.triples_maps


def test_the_crosscheck_engine_runs_both_and_says_where_they_differ(monkeypatch: pytest.MonkeyPatch) -> None:
    from ai4kg.metadata.rml import EngineMismatch

    _, records = module_records(ROOT / "demo/sst-forecaster.yml")
    mapping = RmlMapping(mapping_path("ai4-metadata-v2"), engine="crosscheck")
    quads = mapping.materialize(records)
    assert set(quads) == set(engines("ai4-metadata-v2")[1].materialize(records))
    real = mapping.compiled.materialize
    monkeypatch.setattr(mapping.compiled, "materialize", lambda *args: real(*args)[1:])
    with pytest.raises(EngineMismatch, match="only morph-kgc"):
        mapping.materialize(records)


# -- cost ----------------------------------------------------------------------------------------------
def test_importing_the_mappings_imports_neither_morph_kgc_nor_pandas() -> None:
    code = ("import sys; from ai4kg.metadata.rml import mapping_for; from ai4kg.metadata.records import to_records; "
            "mapping_for('v2').materialize(to_records({'title': 't', 'metadata_version': '2.3.0'}, 'v2', "
            "'https://example.org/m', 'm')); print(sorted({'morph_kgc', 'pandas'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_one_module_maps_in_well_under_a_millisecond() -> None:
    _, records = module_records(ROOT / "demo/sst-forecaster.yml")
    compiled, _ = engines("ai4-metadata-v2")
    times = []
    for _ in range(50):
        start = time.perf_counter()
        compiled.materialize(records)
        times.append(time.perf_counter() - start)
    assert statistics.median(times) < 0.005, f"{statistics.median(times) * 1e3:.2f} ms"
