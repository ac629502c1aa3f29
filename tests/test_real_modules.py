"""Every real AI4EOSC module file: valid ones import, invalid ones are rejected naming the field,
and a round trip metadata -> RDF -> metadata gives back the input (modulo documented normalisation)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ai4kg.catalog import document_of, expand_paths, import_files, validate_files
from ai4kg.config import Settings
from ai4kg.graph.store import KnowledgeGraph
from ai4kg.metadata import loader
from ai4kg.metadata.records import VOCABULARY_FIELDS, slug
from ai4kg.metadata.schema import detect_generation

from conftest import INVALID_MODULE_FILES, MODULES, module_files, valid_module_files

BASE = Settings.in_memory().base_url


@pytest.mark.parametrize("path", valid_module_files(), ids=lambda p: p.name)
def test_valid_file_imports_alone(path: Path, graph: KnowledgeGraph) -> None:
    [report] = import_files(graph, [path])
    assert report.status == "imported", [str(i) for i in report.issues]
    assert not report.errors
    assert graph.contains(report.iri)
    assert graph.search(loader.read_file(path)["title"].split()[0])  # indexed with the store write


@pytest.mark.parametrize("name", sorted(INVALID_MODULE_FILES))
def test_invalid_file_is_rejected_naming_the_field(name: str, graph: KnowledgeGraph) -> None:
    [report] = import_files(graph, [MODULES / name])
    assert report.status == "invalid"
    assert any(issue.field == INVALID_MODULE_FILES[name] for issue in report.errors), [str(i) for i in report.errors]
    assert graph.stats()["assets"] == 0


def test_folder_import_reports_counts(graph: KnowledgeGraph) -> None:
    reports = import_files(graph, expand_paths([MODULES]))
    by_status: dict[str, list[str]] = {}
    for report in reports:
        by_status.setdefault(report.status, []).append(Path(report.path).name)
    assert sorted(by_status["invalid"]) == sorted(INVALID_MODULE_FILES)
    assert len(reports) == len(module_files())
    # legacy metadata.json files of modules that also have an ai4-metadata.yml do not overwrite it
    assert all(name.endswith("metadata.json") for name in by_status.get("skipped", []))
    stats = graph.stats()
    assert stats["assets"] == len(by_status["imported"]) - _replaced(reports)
    assert stats["search_entries"] == stats["assets"]


def _replaced(reports: list) -> int:
    iris = [r.iri for r in reports if r.status == "imported"]
    return len(iris) - len(set(iris))


def test_v2_wins_over_v1_whatever_the_order(graph: KnowledgeGraph) -> None:
    v1, v2 = MODULES / "ai4os-demo-app__metadata.json", MODULES / "ai4os-demo-app__ai4-metadata.yml"
    import_files(graph, [v2])
    [report] = import_files(graph, [v1])
    assert report.status == "skipped"
    assert document_of(graph.asset_quads(report.iri))["metadata_version"] == "2.0.0"


def _normalised(document: dict[str, Any], generation: str) -> dict[str, Any]:
    """The documented normalisation (mappings/README.md): what a round trip may change."""
    document = json.loads(json.dumps(document))
    for field in ("tags", "keywords"):
        if field in document:
            document[field] = sorted(value.strip() for value in document[field])
    for field in VOCABULARY_FIELDS:
        if field in document:
            document[field] = sorted(slug(value) for value in document[field])
    for key, value in list(document.get("links", {}).items()) + list(document.get("sources", {}).items()):
        if value is None:
            document["links"].pop(key)
        elif isinstance(value, str):
            (document["links"] if key in document.get("links", {}) else document["sources"])[key] = value.strip()
    if document.get("data-type") == []:
        del document["data-type"]
    if generation == "v1":
        document["description"] = ["".join(document["description"])]
        for template in document.get("tosca", []):
            template["inputs"] = sorted(template["inputs"])
    return document


@pytest.mark.parametrize("path", valid_module_files(), ids=lambda p: p.name)
def test_round_trip_gives_back_the_input(path: Path, graph: KnowledgeGraph) -> None:
    original = loader.read_file(path)
    generation = detect_generation(original)
    [report] = import_files(graph, [path])
    written = document_of(graph.asset_quads(report.iri))
    assert _normalised(written, generation) == _normalised(original, generation)


def test_round_trip_writes_canonical_vocabulary_labels(graph: KnowledgeGraph) -> None:
    path = MODULES / "ai4os-yolo-torch__ai4-metadata.yml"
    [report] = import_files(graph, [path])
    written = document_of(graph.asset_quads(report.iri))
    assert sorted(written["tasks"]) == ["Classification", "Computer Vision"]
    assert sorted(written["categories"]) == ["AI4 inference", "AI4 pre trained", "AI4 trainable"]


def test_validate_does_not_need_a_store() -> None:
    reports = validate_files(valid_module_files()[:5], BASE)
    assert [r.status for r in reports] == ["valid"] * 5


def test_delete_removes_graph_and_search_entry(graph: KnowledgeGraph) -> None:
    [report] = import_files(graph, [MODULES / "ai4os-yolo-torch__ai4-metadata.yml"])
    assert graph.search("yolo")
    assert graph.delete(report.iri) is True
    assert not graph.contains(report.iri) and graph.search("yolo") == []
    assert graph.stats()["assets"] == 0
    assert graph.delete(report.iri) is False
