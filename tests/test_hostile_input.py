"""Hostile input (issue 14): control characters, crafted files, non-finite numbers, credentials in
URLs and paths that are not files, in every document the platform takes in and maps into the graph
(metadata files, over the CLI and over HTTP; provenance fragments; deployment and federation
requests; round records). Each is refused at input with an error naming the field (or the line),
the rule and the value, shown escaped; nothing is written; one bad file never stops the others.

Documents are built from a real ai4-metadata 2.x file and real provenance fragments (../shared).
"""

from __future__ import annotations

import copy
import json
import os
import re
import resource
import subprocess
import sys
import urllib.error
import urllib.request
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any, Callable

import pyoxigraph as ox
import pytest
import yaml
from click.testing import CliRunner, Result

from ai4kg.api.app import create_app
from ai4kg.catalog import FileReport, ImportOptions, InlineFile, import_files, validate_files
from ai4kg.cli import main
from ai4kg.config import DEFAULT_BASE_URL, Settings
from ai4kg.credentials import KeyStore
from ai4kg.federated.records import check_request as check_federation
from ai4kg.federated.records import check_round
from ai4kg.graph.store import KnowledgeGraph
from ai4kg.metadata.issues import Issue
from ai4kg.provenance.ingest import Provenance
from ai4kg.workloads.records import check_request as check_deployment
from conftest import MODULES, SHARED, serving

TEMPLATE = MODULES / "ai4os-demo-app__ai4-metadata.yml"
GOOD_FILES = [MODULES / "plants-classification__ai4-metadata.yml", MODULES / "ai4os-llm__ai4-metadata.yml"]
FRAGMENTS = json.loads((SHARED / "ai4eosc/provenance/fragments-demo-app.json").read_text("utf-8"))
MODULE = "ai4os-demo-app"
UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
"""What XML 1.0 cannot carry (and DEL and the C1 controls, which a terminal takes as commands)."""
_ENV = {"COLUMNS": "10000", "AI4KG_BASE_URL": None, "AI4KG_DATA": None}  # no rich line wrapping; no stray env


def cli(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False, env=_ENV)


def v2() -> dict[str, Any]:
    return yaml.safe_load(TEMPLATE.read_text("utf-8"))


def dump(document: Any) -> bytes:
    """YAML as PyYAML writes it: characters it cannot print raw are written as escapes ("\\e", "\\uFFFE")."""
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True).encode("utf-8")


def changed(change: Callable[[dict[str, Any]], None], as_json: bool = False) -> bytes:
    document = v2()
    change(document)
    return json.dumps(document).encode("utf-8") if as_json else dump(document)


def report_of(name: str, data: bytes, options: ImportOptions = ImportOptions()) -> FileReport:
    [report] = validate_files([InlineFile(name, data)], DEFAULT_BASE_URL, options)
    return report


def error(report: FileReport, rule: str) -> Issue:
    found = [i for i in report.errors if i.rule == rule]
    assert found, f"no {rule!r} error in {[str(i) for i in report.issues]}"
    return found[0]


def assert_shows_safely(issues: list[Issue]) -> None:
    """The issues go into JSON and onto a terminal as they are: no forbidden character, no NaN."""
    for issue in issues:
        text = json.dumps(issue.as_dict(), ensure_ascii=False, allow_nan=False)
        text.encode("utf-8")  # a lone surrogate could not be
        assert not UNSAFE.search(text) and not UNSAFE.search(str(issue)), repr(text)


# -- 1. control characters ------------------------------------------------------------------------

FORBIDDEN_CHARACTERS = {"NUL": "\x00", "BEL": "\x07", "ESC": "\x1b", "DEL": "\x7f", "C1-CSI": "\x9b",
                        "U+FFFE": "\ufffe", "U+FFFF": "\uffff", "lone-surrogate": "\ud800"}


@pytest.mark.parametrize("character", FORBIDDEN_CHARACTERS.values(), ids=FORBIDDEN_CHARACTERS.keys())
def test_a_control_character_in_the_title_is_refused_naming_field_rule_and_value(character: str) -> None:
    title = f"Demo{character}[31m app"
    for name, as_json in (("title.yml", False), ("title.json", True)):
        report = report_of(name, changed(lambda d: d.__setitem__("title", title), as_json))
        assert report.status == "invalid"
        found = error(report, "control-character")
        assert found.field == "title"
        assert f"U+{ord(character):04X}" in found.message and "at character 5" in found.message
        assert found.value == title.replace(character, f"\\x{ord(character):02x}" if ord(character) <= 0xFF
                                            else f"\\u{ord(character):04x}")
        assert_shows_safely(report.issues)


@pytest.mark.parametrize("change, field", [
    (lambda d: d.__setitem__("description", "Line one\n\x1b[2Jcleared"), "description"),
    (lambda d: d.__setitem__("tags", ["demo", "tag\x00"]), "tags[1]"),
    (lambda d: d["links"].__setitem__("documentation", "https://docs.ai4eosc.eu/\x07"), "links.documentation"),
    (lambda d: d["links"].__setitem__("dataset\x1b", "https://zenodo.org/records/1"), "links.dataset\\x1b"),
    (lambda d: d.__setitem__("colour", "blue\x9f"), "colour"),  # a field outside the schema: still refused
    (lambda d: d["resources"]["inference"].__setitem__("cpu", "two\x7f"), "resources.inference.cpu"),
], ids=["description", "tag", "url", "key", "unknown-field", "wrong-type-too"])
def test_control_characters_are_refused_in_any_field_and_key(change: Callable[[dict[str, Any]], None],
                                                             field: str) -> None:
    report = report_of("field.yml", changed(change))
    assert error(report, "control-character").field == field
    # the one error that says what is wrong: not also a format or type error for the same field
    assert [i.rule for i in report.errors if i.field == field] == ["control-character"]
    assert_shows_safely(report.issues)


def test_a_control_character_in_the_license_given_to_the_import_is_refused() -> None:
    report = report_of("ok.yml", TEMPLATE.read_bytes(), ImportOptions(license="MIT\x1b[8m"))
    assert (error(report, "control-character").field, report.status) == ("license", "invalid")


def test_text_xml_can_carry_is_kept_and_the_export_stays_well_formed() -> None:
    """Tab, line feed, carriage return, non-ASCII and astral characters are text, not hostile: they
    are imported, and the catalogue's RDF/XML export is well-formed XML."""
    text = "Tabs\there,\r\nlines\nthere, caf\u00e9, \u00a0, \u2028, \U0001f600"
    with KnowledgeGraph(Settings.in_memory()) as graph:
        [report] = import_files(graph, [InlineFile("ok.yml", changed(lambda d: d.__setitem__("description", text)))])
        assert report.status == "imported", [str(i) for i in report.issues]
        ElementTree.fromstring(graph.export(ox.RdfFormat.RDF_XML))
        assert any(q.object.value == text for q in graph.store if isinstance(q.object, ox.Literal))


# -- 2. crafted files ----------------------------------------------------------------------------

def _appended(line: str) -> bytes:
    return TEMPLATE.read_bytes().rstrip(b"\n") + b"\n" + line.encode("utf-8") + b"\n"


def _json_with(key: str, raw_value: str) -> bytes:
    text = json.dumps(v2(), indent=1)
    return (text[:-2] + f',\n "{key}": {raw_value}\n}}\n').encode("utf-8")


CRAFTED: dict[str, tuple[bytes, str]] = {
    # file name -> its bytes, and the rule of the error it must get
    "int-5000-digits.yml": (_appended("size: " + "7" * 5000), "number-size"),
    "int-5000-digits.json": (_json_with("size", "7" * 5000), "number-size"),
    "complex-key-list.yml": (_appended("? [a, b]\n: 1"), "yaml-key"),
    "complex-key-mapping.yml": (_appended("? {a: 1}\n: 1"), "yaml-key"),
    "number-key.yml": (_appended("2024: a year"), "yaml-key"),
    "nested-60k.json": (_json_with("deep", "[" * 60_000 + "]" * 60_000), "nesting"),
    "nested-60k.yml": (_appended("deep: " + "[" * 60_000 + "]" * 60_000), "nesting"),
    "binary.yml": (_appended("blob: !!binary aGVsbG8="), "yaml-tag"),
    "set.yml": (_appended("things: !!set {a, b}"), "yaml-tag"),
    "timestamp.yml": (_appended("when: !!timestamp 2024-01-01"), "yaml-tag"),
    "python.yml": (_appended("run: !!python/object/apply:os.system [echo]"), "yaml-tag"),
    "custom-tag.yml": (_appended("secret: !vault abc"), "yaml-tag"),
    "hex-without-digits.yml": (_appended("mask: 0x_"), "syntax"),
}


def test_crafted_files_get_an_error_each_and_the_good_ones_are_imported(tmp_path: Path) -> None:
    folder = tmp_path / "upload"
    folder.mkdir()
    for name, (data, _) in CRAFTED.items():
        (folder / name).write_bytes(data)
    for path in GOOD_FILES:
        (folder / path.name).write_bytes(path.read_bytes())
    store = tmp_path / "store"

    result = cli("--data", store, "import", "--json", folder)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    reports = {Path(r["path"]).name: r for r in json.loads(result.stdout)["files"]}
    assert {name for name, r in reports.items() if r["status"] == "imported"} == {p.name for p in GOOD_FILES}
    for name, (_, rule) in CRAFTED.items():
        report = reports[name]
        assert report["status"] == "invalid", report
        assert [e["rule"] for e in report["errors"]] == [rule], (name, report["errors"])
        assert report["errors"][0]["field"].startswith("line "), report["errors"]
    assert f"{len(reports)} files: 2 imported, 0 skipped, {len(CRAFTED)} invalid, 0 unreadable" in result.stderr
    with KnowledgeGraph(Settings(data_dir=store)) as graph:
        assert graph.index.count() == 2


def test_yaml_merge_and_value_keys_are_plain_keys_not_yaml_1_1_magic() -> None:
    """'<<' would silently override the keys beside it; '=' has no constructor (an error naming a tag)."""
    report = report_of("merge.yml", _appended("<<: {title: replaced}\nsign: ="))
    assert report.status == "valid", [str(i) for i in report.issues]
    assert {(i.field, i.rule) for i in report.warnings} >= {("<<", "unknown-key"), ("sign", "unknown-key")}


# -- 3. numbers ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name, data, field, shown", [
    ("inf.yml", changed(lambda d: d["resources"]["inference"].__setitem__("gpu_compute_capability", float("inf"))),
     "resources.inference.gpu_compute_capability", "inf"),
    ("nan.yml", changed(lambda d: d["resources"]["inference"].__setitem__("gpu_compute_capability", float("nan"))),
     "resources.inference.gpu_compute_capability", "nan"),
    ("minus-inf.yml", changed(lambda d: d["resources"]["inference"].__setitem__("cpu", float("-inf"))),
     "resources.inference.cpu", "-inf"),
    ("overflow.json", _json_with("score", "1e400"), "score", "inf"),
    ("nan.json", _json_with("score", "NaN"), "score", "nan"),
    ("infinity.json", _json_with("score", "-Infinity"), "score", "-inf"),
], ids=["yaml-inf", "yaml-nan", "yaml-minus-inf-in-integer", "json-1e400", "json-NaN", "json-minus-Infinity"])
def test_non_finite_numbers_are_refused_naming_the_field(name: str, data: bytes, field: str, shown: str) -> None:
    report = report_of(name, data)
    found = error(report, "finite-number")
    assert (found.field, found.value) == (field, shown)
    assert [i.rule for i in report.errors if i.field == field] == ["finite-number"]
    assert_shows_safely(report.issues)


# -- 4. credentials in URLs ---------------------------------------------------------------------

@pytest.mark.parametrize("change, field", [
    (lambda d: d["links"].__setitem__("source_code", "https://alice:s3cr3t-pw@github.com/ai4os/ai4os-demo-app"),
     "links.source_code"),
    (lambda d: d["links"].__setitem__("documentation", "https://ghp_s3cr3t-pw@docs.ai4eosc.eu/"),
     "links.documentation"),
    (lambda d: d["links"].__setitem__("training_data", "https://bob:s3cr3t-pw@zenodo.org/records/1"),
     "links.training_data"),  # a link outside the schema: only a warning, yet published
], ids=["user-and-password", "token-as-user", "unknown-link"])
def test_urls_with_credentials_are_refused_and_the_secret_is_not_echoed(change: Callable[[dict[str, Any]], None],
                                                                       field: str, tmp_path: Path) -> None:
    path = tmp_path / "creds.yml"
    path.write_bytes(changed(change))
    result = cli("validate", "--json", path)
    assert result.exit_code == 1, result.output
    [report] = json.loads(result.stdout)
    assert [(e["field"], e["rule"]) for e in report["errors"]] == [(field, "url-credentials")], report["errors"]
    assert "***@" in report["errors"][0]["value"]
    assert "s3cr3t" not in result.output


def test_urls_that_merely_hold_an_at_sign_are_urls() -> None:
    report = report_of("at.yml", changed(lambda d: d["links"].update(documentation="https://medium.com/@ai4eosc/post",
                                                                     dataset="https://zenodo.org/records/1?by=a@b.eu")))
    assert report.status == "valid", [str(i) for i in report.issues]


# -- the same rules for every other input ----------------------------------------------------------

def _fragment(part: str, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    fragment = copy.deepcopy(FRAGMENTS[part])
    change(fragment)
    return fragment


@pytest.mark.parametrize("fragment, field, rule", [
    (_fragment("nomad", lambda f: f.update(title="stoat\x1b]0;owned\x07")), "title", "control-character"),
    (_fragment("jenkins", lambda f: f["trace"]["stages"][2].update(startTime=float("nan"))),
     "trace.stages[2].startTime", "finite-number"),
    (_fragment("nomad", lambda f: f["endpoints"].update(api="http://user:s3cr3t@api.cloud.ai4eosc.eu/ui")),
     "endpoints.api", "url-credentials"),
], ids=["control-character", "nan", "url-credentials"])
def test_provenance_fragments_meet_the_same_rules_and_write_nothing(fragment: dict[str, Any], field: str,
                                                                    rule: str) -> None:
    with KnowledgeGraph(Settings.in_memory()) as graph:
        details = FRAGMENTS["details"]
        [report] = import_files(graph, [InlineFile(f"{details['id']}.json", json.dumps(details).encode())],
                                ImportOptions(identifier=details["id"]))
        assert report.status == "imported", report.issues
        before = graph.export(ox.RdfFormat.N_QUADS)
        [outcome] = Provenance(graph).ingest([(fragment, "test")])
        assert outcome.status == "invalid"
        assert (field, rule) in {(i.field, i.rule) for i in outcome.issues}, [str(i) for i in outcome.issues]
        assert_shows_safely(outcome.issues)
        assert graph.export(ox.RdfFormat.N_QUADS) == before and graph.fragments.count() == 0


def _round(**extra: Any) -> dict[str, Any]:
    nodes = ["1", "2"]
    return {"federation": "fl-1", "run_id": "42", "round": 1, "started_at": "2026-12-03T10:00:00Z",
            "ended_at": "2026-12-03T10:00:09Z", "strategy": "fedavg", "sampled_nodes": nodes,
            "updates": [{"node_id": n, "num_examples": 100, "metrics": {"train-loss": 0.5}} for n in nodes],
            "failures": [], "distances": [[0.0, 1.0], [1.0, 0.0]], "model": {"sha256": "1" * 64, "parameters": 10},
            "previous_model": {"sha256": "0" * 64}, "server_metrics": {"mse": 0.25}, "privacy": None, **extra}


DEPLOYMENT = {"kind": "module", "module": MODULE, "title": "ring", "resources": {"cpu": 1}}
FEDERATION = {"module": MODULE, "description": "a whole character", "training": {"learning_rate": 0.1}}


@pytest.mark.parametrize("check, body, change, field, rule", [
    (check_deployment, DEPLOYMENT, lambda b: b.update(title="ring\x07"), "title", "control-character"),
    (check_deployment, DEPLOYMENT, lambda b: b["resources"].update(cpu=float("nan")), "resources.cpu",
     "finite-number"),
    (check_federation, FEDERATION, lambda b: b.update(description="half a character: \udc80"), "description",
     "control-character"),
    (check_federation, FEDERATION, lambda b: b["training"].update(learning_rate=float("inf")),
     "training.learning_rate", "finite-number"),
    (check_round, _round(), lambda b: b.update(strategy="fed\x1bavg"), "strategy", "control-character"),
    (check_round, _round(), lambda b: b["server_metrics"].update(mse=float("nan")), "server_metrics.mse",
     "finite-number"),
], ids=["deployment-bel", "deployment-nan", "federation-surrogate", "federation-inf", "round-esc", "round-nan"])
def test_requests_and_round_records_meet_the_same_rules(check: Callable[[Any], list[Issue]], body: dict[str, Any],
                                                        change: Callable[[dict[str, Any]], None], field: str,
                                                        rule: str) -> None:
    assert check(body) == [], "the body without the fault must be valid, or the test proves nothing"
    faulty = copy.deepcopy(body)
    change(faulty)
    issues = check(faulty)
    assert [(i.field, i.rule) for i in issues] == [(field, rule)], [str(i) for i in issues]
    assert_shows_safely(issues)


# -- over HTTP: the same loader, 422 not 500 ------------------------------------------------------

def test_publishing_hostile_documents_over_http_gives_422_naming_the_rule() -> None:
    keys = KeyStore(None)
    _, secret = keys.create("publisher", frozenset({"vo.any.eu"}))
    bodies = {name: (data, rule) for name, (data, rule) in CRAFTED.items()}
    bodies["esc-title.yml"] = (changed(lambda d: d.__setitem__("title", "Demo\x1b[31m")), "control-character")
    bodies["inf.json"] = (_json_with("score", "Infinity"), "finite-number")
    bodies["creds.yml"] = (changed(lambda d: d["links"].__setitem__("source_code", "https://a:b@github.com/x/y")),
                           "url-credentials")
    with KnowledgeGraph(Settings(data_dir=None)) as graph, serving(create_app(graph, keys)) as url:
        before = graph.export(ox.RdfFormat.N_QUADS)
        for number, (name, (data, rule)) in enumerate(bodies.items()):
            media = "application/json" if name.endswith(".json") else "application/yaml"
            request = urllib.request.Request(f"{url}/v1/catalog/modules/hostile-{number}/metadata", data=data,
                                             method="PUT", headers={"content-type": media,
                                                                    "authorization": f"Bearer {secret}"})
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=60)
            assert refused.value.code in (400, 422), (name, refused.value.code, refused.value.read()[:300])
            problem = json.loads(refused.value.read())
            if name == "nested-60k.json" and refused.value.code == 400:  # api/limits.py refuses it before reading
                assert "nest" in problem["detail"], problem
                continue
            assert refused.value.code == 422, (name, refused.value.code, problem)
            assert rule in {p["rule"] for p in problem["invalid-params"]}, (name, problem)
        assert graph.index.count() == 0 and graph.export(ox.RdfFormat.N_QUADS) == before


# -- 5. paths that are not regular files ----------------------------------------------------------

def _bounded_memory() -> None:
    """Should a reader read /dev/zero without end, it fails with MemoryError instead of eating the machine."""
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


def test_a_named_pipe_and_dev_zero_are_refused_not_read(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.yml"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.yml"
    zero.symlink_to("/dev/zero")
    # A real process: a reader that blocks on the pipe (no writer ever comes) must fail this test,
    # not hang it; the timeout is far above the command's start-up time.
    result = subprocess.run([sys.executable, "-m", "ai4kg", "validate", fifo, zero], capture_output=True, text=True,
                            timeout=300, preexec_fn=_bounded_memory,
                            env={k: v for k, v in os.environ.items() if not k.startswith("AI4KG_")})
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"unreadable: {fifo}" in result.stderr and f"unreadable: {zero}" in result.stderr
    assert "named pipe (FIFO), not a regular file" in result.stderr
    assert "character device, not a regular file" in result.stderr


def test_provenance_files_and_events_are_read_under_the_same_limits(tmp_path: Path) -> None:
    """`ai4kg provenance ingest` read any path whole with json.loads (a pipe blocked it, /dev/zero
    never ended, 60k nesting and a 5,000-digit number gave tracebacks); a webhook's body went the
    same way. Both now refuse with the rule named."""
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 60_000 + "]" * 60_000)
    huge = tmp_path / "huge.json"
    huge.write_text('{"run": {"info": {"run_id": ' + "9" * 5_000 + "}}}")
    for path, said in ((fifo, "named pipe (FIFO), not a regular file"), (deep, "nesting deeper than 64 levels"),
                       (huge, "5,000 digits")):
        result = subprocess.run([sys.executable, "-m", "ai4kg", "--data", str(tmp_path / "data"), "provenance",
                                 "ingest", str(path)], capture_output=True, text=True, timeout=300,
                                preexec_fn=_bounded_memory,
                                env={k: v for k, v in os.environ.items() if not k.startswith("AI4KG_")})
        assert result.returncode == 2 and said in result.stderr, (path.name, result.stderr[-2000:])
        assert "Traceback" not in result.stderr

    with KnowledgeGraph(Settings.in_memory()) as graph:
        for body, rule in ((huge.read_bytes(), "number-size"), (deep.read_bytes(), "nesting"),
                           (b'{"a": 1, "a": 2}', "duplicate-key")):
            [report] = Provenance(graph).ingest([(body, "webhook:test")])
            assert report.status == "invalid" and rule in {issue.rule for issue in report.errors}, report
        assert graph.index.count() == 0
