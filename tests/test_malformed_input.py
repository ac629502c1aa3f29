"""Malformed metadata through the real CLI: `ai4kg validate` and `ai4kg import` refuse it with an
error that names the field, the rule and the value, and a refused import leaves the store exactly
as it was (N-Quads export, search index entries and search results compared byte for byte).

Inputs are built from a real ai4-metadata 2.x file (../shared), changed one fault at a time.
"""

from __future__ import annotations

import copy
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pyoxigraph as ox
import pytest
import yaml
from click.testing import CliRunner, Result

from ai4kg.cli import main
from ai4kg.config import Settings
from ai4kg.graph.store import KnowledgeGraph
from ai4kg.metadata.loader import MAX_FILE_BYTES
from conftest import MODULES

TEMPLATE = MODULES / "ai4os-demo-app__ai4-metadata.yml"
BASELINE_FILES = ["ai4os-demo-app__ai4-metadata.yml", "plants-classification__ai4-metadata.yml",
                  "ai4os-llm__ai4-metadata.yml"]
OTHER_VALID_FILES = ["cold-coral-segmentation__ai4-metadata.yml", "litter-assessment__ai4-metadata.yml",
                     "eyeonwater-yolo__ai4-metadata.yml"]
SEARCH_WORDS = ["demo", "classification", "plants"]
_ENV = {"COLUMNS": "10000", "AI4KG_BASE_URL": None, "AI4KG_DATA": None}  # no rich line wrapping; no stray env


def cli(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False, env=_ENV)


def v2() -> dict[str, Any]:
    """A fresh copy of the real V2 template document."""
    return copy.deepcopy(_template())


_TEMPLATE_CACHE: list[dict[str, Any]] = []


def _template() -> dict[str, Any]:
    if not _TEMPLATE_CACHE:
        _TEMPLATE_CACHE.append(yaml.safe_load(TEMPLATE.read_text("utf-8")))
    return _TEMPLATE_CACHE[0]


def dump(document: Any) -> bytes:
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True).encode("utf-8")


def changed(change: Callable[[dict[str, Any]], None]) -> bytes:
    document = v2()
    change(document)
    return dump(document)


# -- store snapshots ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Snapshot:
    nquads: bytes
    index_iris: list[str]
    hits: list[tuple[str, str, float]]


def snapshot(data_dir: Path) -> Snapshot:
    with KnowledgeGraph(Settings(data_dir=data_dir)) as graph:
        hits = [(h.iri, h.kind, h.score) for word in SEARCH_WORDS for h in graph.search(word)]
        return Snapshot(graph.export(ox.RdfFormat.N_QUADS), graph.index.iris(), hits)


@dataclass(frozen=True)
class Baseline:
    data_dir: Path
    snap: Snapshot


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Baseline:
    data_dir = tmp_path_factory.mktemp("baseline") / "store"
    result = cli("--data", data_dir, "import", *(MODULES / name for name in BASELINE_FILES))
    assert result.exit_code == 0, result.output
    snap = snapshot(data_dir)
    assert len(snap.index_iris) == len(BASELINE_FILES)
    assert snap.hits, "the search words must find something, or comparing results proves nothing"
    assert b"https://w3id.org/ai4kg/id/module/ai4os-demo-app" in snap.nquads
    return Baseline(data_dir, snap)


@pytest.fixture
def store(baseline: Baseline, tmp_path: Path) -> Path:
    """A private copy of the baseline store (the store is closed, so copying its files is safe)."""
    target = tmp_path / "store"
    shutil.copytree(baseline.data_dir, target)
    return target


# -- the malformed inputs --------------------------------------------------------------------

@dataclass(frozen=True)
class Bad:
    """A malformed input and the one error it must produce."""

    name: str
    content: Callable[[], bytes]
    field: str
    """Issue.field of the expected error ("" = the whole document)."""
    rule: str | None
    """Issue.rule of the expected error (None: not pinned)."""
    value: Any = None
    """Issue.value of the expected error (None: no value)."""
    says: tuple[str, ...] = ()
    """Fragments the printed error must contain."""
    shows_value: bool = True
    """Whether the human output shows repr(value) as is (False for values it shortens)."""
    extra: dict[str, Any] = field(default_factory=dict)


def _broken_yaml() -> bytes:
    text = dump(v2()).decode("utf-8")
    assert text.splitlines()[1] == "title: ai4os-demo-app"
    return text.replace("title: ai4os-demo-app\n", "title: [ai4os-demo-app\n", 1).encode("utf-8")


def _trailing_comma_json() -> bytes:
    text = json.dumps(v2(), indent=2)
    assert text.endswith("\n}")
    return (text[:-2] + ",\n}\n").encode("utf-8")


def _latin1_title() -> bytes:
    data = changed(lambda d: d.__setitem__("title", "Caf\u00e9 demo"))
    return data.replace("Caf\u00e9".encode("utf-8"), "Caf\u00e9".encode("latin-1"), 1)


_LAUGHS = ["lol: &l0 [\"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\"]"]
_LAUGHS += [f"lol{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, 10)]


def _billion_laughs() -> bytes:
    return ("metadata_version: 2.0.0\n" + "\n".join(_LAUGHS) + "\n").encode("utf-8")


def _duplicate_key() -> bytes:
    return TEMPLATE.read_bytes().rstrip(b"\n") + b"\ntitle: a second title\n"


def _with_description(size: int) -> bytes:
    """The template with a description of `size` bytes (spliced in: dumping 10 MB with PyYAML is slow)."""
    data = changed(lambda d: d.__setitem__("description", "PLACEHOLDER"))
    return data.replace(b"description: PLACEHOLDER", b"description: " + b"x" * size, 1)


def _line_count(data: bytes) -> int:
    return data.rstrip(b"\n").count(b"\n") + 1


CASES = [
    pytest.param(Bad("broken.yml", _broken_yaml, "line 3", "syntax",
                     says=("invalid YAML", "expected ',' or ']'")), id="yaml-unclosed-bracket"),
    pytest.param(Bad("trailing.json", _trailing_comma_json, "", "syntax", says=("invalid JSON",),
                     extra={"line_of_last": True}), id="json-trailing-comma"),
    pytest.param(Bad("tags.yml", lambda: changed(lambda d: d.__setitem__("tags", "demo")), "tags", "type", "demo",
                     says=("must be of type array",)), id="tags-as-string"),
    pytest.param(Bad("cpu.yml", lambda: changed(lambda d: d["resources"]["inference"].__setitem__("cpu", "two")),
                     "resources.inference.cpu", "type", "two", says=("must be of type integer",)), id="cpu-as-word"),
    pytest.param(Bad("title.yml", lambda: changed(lambda d: d.__setitem__("title", ["a", "b"])), "title", "type",
                     ["a", "b"], says=("must be of type string",)), id="title-as-list"),
    pytest.param(Bad("url1.yml", lambda: changed(lambda d: d["links"].__setitem__("source_code", "not a url")),
                     "links.source_code", "format", "not a url", says=("http(s) URL",)), id="url-not-a-url"),
    pytest.param(Bad("url2.yml", lambda: changed(lambda d: d["links"].__setitem__("source_code", "ftp://x")),
                     "links.source_code", "format", "ftp://x", says=("http(s) URL",)), id="url-ftp"),
    pytest.param(Bad("url3.yml", lambda: changed(lambda d: d["links"].__setitem__("source_code", "http://nohost")),
                     "links.source_code", "format", "http://nohost", says=("host name",)), id="url-no-host"),
    pytest.param(Bad("url4.yml", lambda: changed(lambda d: d["links"].__setitem__("documentation", 'https://a.org/> "x"')),
                     "links.documentation", "format", 'https://a.org/> "x"', says=("without spaces",)),
                 id="url-breaks-iri-syntax"),
    pytest.param(Bad("date1.yml", lambda: changed(lambda d: d["dates"].__setitem__("created", "2024-13-45")),
                     "dates.created", "format", "2024-13-45", says=("YYYY-MM-DD",)), id="date-impossible"),
    pytest.param(Bad("date2.yml", lambda: changed(lambda d: d["dates"].__setitem__("created", "yesterday")),
                     "dates.created", "format", "yesterday", says=("YYYY-MM-DD",)), id="date-word"),
    pytest.param(Bad("order.yml", lambda: changed(lambda d: d["dates"].update(created="2025-01-01",
                                                                              updated="2024-01-01")),
                     "dates.created", "date-order", "2025-01-01", says=("no later than the last update",)),
                 id="created-after-updated"),
    pytest.param(Bad("tasks.yml", lambda: changed(lambda d: d.__setitem__("tasks", ["Telepathy"])), "tasks",
                     "vocabulary", "Telepathy", says=("task vocabulary",)), id="unknown-task"),
    pytest.param(Bad("libraries.yml", lambda: changed(lambda d: d.__setitem__("libraries", ["Fortran"])),
                     "libraries", "vocabulary", "Fortran", says=("library vocabulary",)), id="unknown-library"),
    pytest.param(Bad("huge.yml", lambda: _with_description(10_000_000), "",
                     "size", says=(f"limited to {MAX_FILE_BYTES:,} bytes",)), id="file-10MB"),
    pytest.param(Bad("long.yml", lambda: changed(lambda d: d.__setitem__("description", "y" * 100_000)),
                     "description", "max-length", "y" * 100_000, says=("100,000 characters", "65,536"),
                     shows_value=False), id="description-100KB"),
    pytest.param(Bad("latin1.yml", _latin1_title, "line 2", "encoding", says=("not valid UTF-8", "0xe9")),
                 id="latin1-byte"),
    pytest.param(Bad("bomb.yml", _billion_laughs, "line 2", "yaml-alias", says=("are not allowed in metadata files",),
                     extra={"bomb": True}),
                 id="billion-laughs"),
    pytest.param(Bad("list.yml", lambda: dump([v2(), v2()]), "", "not-a-mapping",
                     says=("must hold a mapping of fields, found list",)), id="document-is-list"),
    pytest.param(Bad("scalar.yml", lambda: b"just a sentence\n", "", "not-a-mapping",
                     says=("must hold a mapping of fields, found str",)), id="document-is-scalar"),
    pytest.param(Bad("empty.yml", lambda: b"", "", "not-a-mapping", says=("must hold a mapping of fields, found empty",)),
                 id="document-empty"),
    pytest.param(Bad("dup.yml", _duplicate_key, "", "duplicate-key", says=("duplicate key 'title'",),
                     extra={"line_of_last": True}), id="duplicate-key-yaml"),
    pytest.param(Bad("dup.json", lambda: b'{"metadata_version": "2.0.0", "title": "a", "title": "b"}', "", "duplicate-key",
                     says=("duplicate key 'title'",)), id="duplicate-key-json"),
    pytest.param(Bad("missing.yml", lambda: changed(lambda d: d["links"].pop("source_code")), "links.source_code",
                     "required", None, says=("this field is required",)), id="missing-source-code"),
]


def _expected_field(case: Bad, data: bytes) -> str:
    if case.extra.get("line_of_last"):
        return f"line {_line_count(data)}"
    return case.field


@pytest.mark.parametrize("case", CASES)
def test_malformed_file_is_refused_and_nothing_is_written(case: Bad, tmp_path: Path, store: Path,
                                                         baseline: Baseline) -> None:
    data = case.content()
    path = tmp_path / case.name
    path.write_bytes(data)
    field_name = _expected_field(case, data)
    error_line = f"error: {field_name or '(document)'}: "

    started = time.perf_counter()
    result = cli("validate", path)
    validate_s = time.perf_counter() - started
    assert result.exit_code == 1, result.output
    assert f"invalid: {path}" in result.stderr
    lines = [line.strip() for line in result.stderr.splitlines() if line.strip().startswith(error_line)]
    assert lines, f"no error naming {field_name!r}:\n{result.stderr}"
    line = next((l for l in lines if all(s in l for s in case.says)), None)
    assert line is not None, f"expected {case.says} in one of {lines}"
    if case.rule:
        assert line.endswith(f"[{case.rule}]") or f"[{case.rule}] (value: " in line, line
    if case.value is not None and case.shows_value:
        assert f"(value: {case.value!r})" in line, line
    if case.value is None:
        assert "(value: " not in line, line
    assert len(result.stderr) < 2000, "the message must stay short, whatever the size of the input"
    assert "Traceback" not in result.output

    as_json = cli("validate", "--json", path)
    assert as_json.exit_code == 1, as_json.output
    [report] = json.loads(as_json.stdout)
    assert report["path"] == str(path) and report["status"] == "invalid"
    errors = [e for e in report["errors"] if e["field"] == field_name]
    assert errors, report["errors"]
    for error in report["errors"]:
        assert {"field", "rule", "message", "value"} <= set(error), error
        assert isinstance(error["message"], str) and error["message"]
    if case.rule:
        assert any(e["rule"] == case.rule for e in errors), errors
    assert any(e["value"] == case.value for e in errors), errors

    started = time.perf_counter()
    imported = cli("--data", store, "import", path)
    import_s = time.perf_counter() - started
    assert imported.exit_code == 1, imported.output
    assert line in imported.stderr
    assert "1 files: 0 imported, 0 skipped, 1 invalid, 0 unreadable" in imported.stderr
    assert f"failed: {path}" in imported.stderr
    assert snapshot(store) == baseline.snap

    if case.extra.get("bomb"):
        assert validate_s < 2 and import_s < 2, (validate_s, import_s)
        assert "aliases" in line or "anchors" in line, line


def test_yaml_anchor_without_alias_is_refused_as_documented(tmp_path: Path) -> None:
    path = tmp_path / "anchor.yml"
    path.write_bytes(dump(v2()).replace(b"title: ai4os-demo-app", b"title: &t ai4os-demo-app", 1))
    result = cli("validate", path)
    assert result.exit_code == 1, result.output
    assert "anchors" in result.stderr


def test_unknown_top_level_key_is_only_a_warning(tmp_path: Path, store: Path, baseline: Baseline) -> None:
    document = v2()
    document["colour"] = "blue"
    document["title"] = "Zanzibar unknown key module"
    document["links"]["source_code"] = "https://github.com/example/unknown-key-module"
    path = tmp_path / "unknown-key.yml"
    path.write_bytes(dump(document))
    iri = "https://w3id.org/ai4kg/id/module/unknown-key-module"

    result = cli("validate", path)
    assert result.exit_code == 0, result.output
    assert f"valid: {path}" in result.stderr
    assert "warning: colour: 'colour' is not a field of ai4-metadata 2.x [unknown-key]" in result.stderr
    assert "error:" not in result.stderr

    [report] = json.loads(cli("validate", "--json", path).stdout)
    assert report["status"] == "valid" and report["errors"] == [] and report["iri"] == iri
    assert [(w["field"], w["rule"]) for w in report["warnings"]] == [("colour", "unknown-key")]

    imported = cli("--data", store, "import", path)
    assert imported.exit_code == 0, imported.output
    assert f"imported: {path} -> {iri}" in imported.stderr
    assert "1 files: 1 imported, 0 skipped, 0 invalid, 0 unreadable" in imported.stderr
    with KnowledgeGraph(Settings(data_dir=store)) as graph:
        assert graph.contains(iri)
        assert graph.index.iris() == sorted([*baseline.snap.index_iris, iri])
        assert [h.iri for h in graph.search("Zanzibar")] == [iri]
        assert not any("blue" in q.object.value for q in graph.asset_quads(iri))


def test_folder_with_good_and_bad_files(tmp_path: Path, store: Path, baseline: Baseline) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    for name in OTHER_VALID_FILES:
        shutil.copy(MODULES / name, folder / name)
    bad = {"bad-cpu.yml": changed(lambda d: d["resources"]["inference"].__setitem__("cpu", "two")),
           "bad-bomb.yml": _billion_laughs(),
           "bad-missing.yml": changed(lambda d: d["links"].pop("source_code"))}
    for name, data in bad.items():
        (folder / name).write_bytes(data)
    (folder / "README.txt").write_text("not a metadata file: ignored\n")

    checked = cli("validate", "--json", folder)
    assert checked.exit_code == 1, checked.output
    reports = {Path(r["path"]).name: r for r in json.loads(checked.stdout)}
    assert set(reports) == set(OTHER_VALID_FILES) | set(bad)
    assert {n for n, r in reports.items() if r["status"] == "invalid"} == set(bad)
    good_iris = {reports[name]["iri"] for name in OTHER_VALID_FILES}
    assert len(good_iris) == 3 and None not in good_iris

    result = cli("--data", store, "import", folder)
    assert result.exit_code == 1, result.output
    assert "6 files: 3 imported, 0 skipped, 3 invalid, 0 unreadable" in result.stderr
    [failed] = [line for line in result.stderr.splitlines() if line.startswith("failed: ")]
    assert sorted(failed.removeprefix("failed: ").split(", ")) == sorted(str(folder / n) for n in bad)
    for name in bad:
        assert f"invalid: {folder / name}" in result.stderr
    assert "README.txt" not in result.stderr

    with KnowledgeGraph(Settings(data_dir=store)) as graph:
        for iri in good_iris:
            assert graph.contains(iri), iri
        assert graph.index.iris() == sorted([*baseline.snap.index_iris, *good_iris])
        # the bad files describe ai4os-demo-app: the stored one is untouched
        demo = "https://w3id.org/ai4kg/id/module/ai4os-demo-app"
        before = ox.Store()
        before.load(baseline.snap.nquads, format=ox.RdfFormat.N_QUADS)
        assert set(graph.asset_quads(demo)) == set(before.quads_for_pattern(None, None, None, ox.NamedNode(demo)))


def test_missing_file_is_unreadable(tmp_path: Path, store: Path, baseline: Baseline) -> None:
    missing = tmp_path / "no-such-file.yml"
    result = cli("validate", missing)
    assert result.exit_code == 2, result.output
    assert f"unreadable: {missing}" in result.stderr
    assert "No such file or directory" in result.stderr

    imported = cli("--data", store, "import", missing)
    assert imported.exit_code == 2, imported.output
    assert "1 files: 0 imported, 0 skipped, 0 invalid, 1 unreadable" in imported.stderr
    assert snapshot(store) == baseline.snap


def test_unreadable_outranks_invalid_in_the_exit_status(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_bytes(changed(lambda d: d.__setitem__("tags", "demo")))
    result = cli("validate", MODULES / BASELINE_FILES[0], bad, tmp_path / "missing.yml")
    assert result.exit_code == 2, result.output
    assert f"invalid: {bad}" in result.stderr and f"valid: {MODULES / BASELINE_FILES[0]}" in result.stderr


def test_a_folder_given_as_file_is_searched_for_metadata_files(tmp_path: Path) -> None:
    nested = tmp_path / "folder" / "nested"
    nested.mkdir(parents=True)
    (nested / "module.yaml").write_bytes(changed(lambda d: d["dates"].__setitem__("created", "yesterday")))
    (nested / "notes.md").write_text("ignored")
    result = cli("validate", tmp_path / "folder")
    assert result.exit_code == 1, result.output
    assert f"invalid: {nested / 'module.yaml'}" in result.stderr
    assert "dates.created" in result.stderr and "notes.md" not in result.stderr


def test_empty_folder_is_an_error_not_silence(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    for command in ("validate",):
        result = cli(command, tmp_path / "empty")
        assert result.exit_code == 2
        assert "no metadata files" in result.stderr


def test_size_and_encoding_errors_name_their_rule(tmp_path: Path) -> None:
    from ai4kg.catalog import validate_files

    big = tmp_path / "big.yml"
    big.write_bytes(b"title: x\ndescription: " + b"a" * (2 * 1024 * 1024) + b"\n")
    latin = tmp_path / "latin.yml"
    latin.write_bytes("title: caf\u00e9\n".encode("latin-1"))
    [size], [encoding] = (validate_files([p], "https://x.org/")[0].errors for p in (big, latin))
    assert size.rule == "size" and "1,048,576" in size.message
    assert encoding.rule == "encoding" and encoding.field == "line 1"


def test_unknown_keys_cannot_redirect_the_write(tmp_path: Path) -> None:
    """Keys the mapping uses internally, written as unknown document keys, change nothing."""
    from ai4kg.catalog import import_files
    from ai4kg.config import Settings
    from ai4kg.graph.store import KnowledgeGraph

    document = v2()
    document["asset_iri"] = "https://w3id.org/ai4kg/id/module/someone-else"
    document["identifier"] = "someone-else"
    document["license"] = "stolen"
    document["links"]["training_data"] = "https://a.org/one"
    document["links"]["training-data"] = "https://a.org/two"
    path = tmp_path / "sneaky.yml"
    path.write_bytes(dump(document))
    with KnowledgeGraph(Settings.in_memory()) as graph:
        [report] = import_files(graph, [path])
        assert report.status == "imported"
        assert {i.field for i in report.warnings} >= {"asset_iri", "identifier", "license"}
        assert report.iri.endswith("/module/ai4os-demo-app")
        assert {q.graph_name.value for q in graph.store if "someone-else" in str(q)} == set()
        assert not any(q.predicate.value.endswith("#license") for q in graph.asset_quads(report.iri))
        from ai4kg.catalog import document_of

        links = document_of(graph.asset_quads(report.iri))["links"]
        assert (links["training_data"], links["training-data"]) == ("https://a.org/one", "https://a.org/two")


def test_libyamls_parser_reads_every_real_file_as_pyyamls_own_does() -> None:
    """The loader parses with libyaml (C) and reads what libyaml refuses again with PyYAML's parser:
    on every real and demo metadata file the two give the same data, and the same error."""
    import yaml

    from ai4kg.metadata import loader
    from conftest import REPO, module_files

    paths = [p for p in module_files() if p.suffix in (".yml", ".yaml")] + sorted((REPO / "demo").glob("*.yml"))
    assert len(paths) > 30
    assert loader._StrictLoader is not loader._StrictPythonLoader and yaml.__with_libyaml__
    for path in paths:
        text = path.read_text("utf-8")
        outcomes = []
        for strict in (loader._StrictLoader, loader._StrictPythonLoader):
            try:
                outcomes.append(yaml.load(text, Loader=strict))  # noqa: S506 - the strict SafeLoaders
            except loader.ParseError as exc:
                outcomes.append(("refused", str(exc)))
        assert outcomes[0] == outcomes[1], path.name
