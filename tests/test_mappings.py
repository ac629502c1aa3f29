"""Every RML mapping runs through morph-kgc, and every mapped field produces its triple.

morph-kgc silently produces nothing for references it cannot resolve (array references are a
known upstream bug), so each predicate-object map of each mapping is checked against a document
that fills every field.
"""

from __future__ import annotations

import pyoxigraph as ox
import pytest

from ai4kg.metadata.records import to_records
from ai4kg.metadata.rml import mapping_for, mapping_path

IRI = "https://w3id.org/ai4kg/id/module/full"
RESOURCES = {"cpu": 4, "gpu": 1, "memory_MB": 8000, "gpu_memory_MB": 4000, "gpu_compute_capability": 7.5,
             "storage_MB": 10000}

FULL_V2 = {
    "metadata_version": "2.3.0", "title": "Full", "summary": "Every field.", "description": "Text with \"quotes\" and \\.",
    "doi": "10.5281/zenodo.1234567", "dates": {"created": "2024-01-01", "updated": "2024-02-01"},
    "links": {"self": "https://example.org/meta", "documentation": "https://example.org/doc",
              "source_code": "https://example.org/code", "docker_image": "org/full:1.0",
              "zenodo_doi": "https://doi.org/10.5281/zenodo.1234567", "dataset": "https://example.org/data",
              "weights": "https://example.org/w", "citation": "https://example.org/cite",
              "base_model": "https://example.org/base", "ai4_template": "ai4-template/2.1.0",
              "training_data": "https://example.org/extra"},
    "tags": ["a", "b"], "tasks": ["Computer Vision"], "categories": ["AI4 trainable"], "libraries": ["PyTorch"],
    "data-type": ["Image"], "resources": {"inference": RESOURCES, "training": RESOURCES},
    "provenance": {"nomad_job": "job-1", "mlflow_run": "run-1"},
}
FULL_V1 = {
    "title": "Full", "summary": "Every field.", "description": ["one ", "two"], "date_creation": "2020-01-01",
    "keywords": ["k"], "license": "MIT", "cite_url": "https://example.org/cite", "dataset_url": "https://example.org/data",
    "training_files_url": "https://example.org/files",
    "sources": {"dockerfile_repo": "https://example.org/df", "docker_registry_repo": "org/full",
                "code": "https://example.org/code", "pre_trained_weights": "https://example.org/w",
                "ai4_template": "ai4-template/1.9.9"},
    "continuous_integration": {"build_status_badge": "https://example.org/badge", "build_status_url": "https://example.org/ci"},
    "tosca": [{"title": "Mesos", "url": "https://example.org/tosca.yml", "inputs": ["rclone_conf", "rclone_url"]}],
}


@pytest.mark.parametrize("generation, document", [("v2", FULL_V2), ("v1", FULL_V1)])
def test_every_predicate_object_map_produces_a_triple(generation: str, document: dict) -> None:
    mapping = mapping_for(generation)
    quads = mapping.materialize(to_records(document, generation, IRI, "full", "MIT",
                                           "https://w3id.org/ai4kg/id/virtualorganisation/vo.example.eu", "public"))
    produced = {q.predicate.value for q in quads}
    expected = {obj.predicate for rule in mapping.rules for obj in rule.objects}
    assert expected - produced == set(), f"mapped but never produced by morph-kgc: {expected - produced}"
    assert all(q.graph_name == ox.NamedNode(IRI) for q in quads), "every quad lands in the asset's graph"


def test_literals_with_quotes_backslashes_and_newlines_survive() -> None:
    quads = mapping_for("v2").materialize(to_records(FULL_V2, "v2", IRI, "full"))
    [description] = [q.object.value for q in quads if q.predicate.value.endswith("#description")]
    assert description == FULL_V2["description"]


def test_numbers_keep_their_datatype() -> None:
    quads = mapping_for("v2").materialize(to_records(FULL_V2, "v2", IRI, "full"))
    cpu = [q.object for q in quads if q.predicate.value.endswith("#cpu")]
    assert {c.value for c in cpu} == {"4"}
    assert {c.datatype.value for c in cpu} == {"http://www.w3.org/2001/XMLSchema#integer"}


def test_mapping_files_are_plain_rml_for_any_tool() -> None:
    import rdflib

    for name in ("ai4-metadata-v1", "ai4-metadata-v2"):
        graph = rdflib.Graph().parse(mapping_path(name), format="turtle")
        maps = set(graph.subjects(rdflib.RDF.type, rdflib.URIRef("http://www.w3.org/ns/r2rml#TriplesMap")))
        assert len(maps) >= 5


def test_a_file_the_engine_cannot_map_fails_alone(monkeypatch, graph) -> None:
    """If the engine chokes on one document, the others of its batch still import."""
    from ai4kg.catalog import import_files
    from ai4kg.metadata.rml import RmlMapping

    from conftest import MODULES

    real = RmlMapping.materialize

    def choking(self, records):  # type: ignore[no-untyped-def]
        if any(r["asset_iri"].endswith("/ai4-llm") for r in records.get("modules", [])):
            raise ValueError("engine failure")
        return real(self, records)

    monkeypatch.setattr(RmlMapping, "materialize", choking)
    reports = import_files(graph, [MODULES / "ai4os-llm__ai4-metadata.yml", MODULES / "ai4os-yolo-torch__ai4-metadata.yml"])
    assert [r.status for r in reports] == ["invalid", "imported"]
    assert reports[0].errors[0].rule == "mapping" and "engine failure" in reports[0].errors[0].message
    assert not graph.contains(reports[0].iri or "x") and graph.contains(reports[1].iri)
