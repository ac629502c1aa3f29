"""The ontology declares and aligns every term in use; the vocabularies cover ai4-metadata 2.3.0."""

from __future__ import annotations

import json
from importlib import resources

import pytest
import rdflib
from rdflib.namespace import OWL, RDF, RDFS, SKOS

from ai4kg.catalog import document_of, import_files
from ai4kg.graph.store import KnowledgeGraph
from ai4kg.metadata import vocabulary
from ai4kg.metadata.records import VOCABULARY_FIELDS

from conftest import MODULES, SHARED

AI4KG = "https://w3id.org/ai4kg/ns#"


def _graph(*names: str) -> rdflib.Graph:
    graph = rdflib.Graph()
    for name in names:
        graph.parse(data=resources.files("ai4kg").joinpath(name).read_text("utf-8"), format="turtle")
    return graph


ONTOLOGY = _graph("ontology/ai4kg.ttl")


def test_every_term_used_by_mappings_and_shapes_is_declared() -> None:
    used = _graph("mappings/ai4-metadata-v1.rml.ttl", "mappings/ai4-metadata-v2.rml.ttl", "shapes/module.ttl",
                  "shapes/platform.ttl", "shapes/provenance.ttl", "mappings/provenance/provenance.rml.ttl",
                  "shapes/deployments.ttl", "mappings/deployments/deployment.rml.ttl")
    terms = {str(t) for triple in used for t in triple if str(t).startswith(AI4KG)}
    declared = {str(s) for s in ONTOLOGY.subjects(RDF.type, None) if str(s).startswith(AI4KG)}
    assert terms - declared == set()


def test_every_term_has_label_comment_and_a_standard_alignment() -> None:
    unaligned = []
    for kind, parent in ((OWL.Class, RDFS.subClassOf), (OWL.ObjectProperty, RDFS.subPropertyOf),
                         (OWL.DatatypeProperty, RDFS.subPropertyOf)):
        for term in ONTOLOGY.subjects(RDF.type, kind):
            if not str(term).startswith(AI4KG):
                continue
            assert ONTOLOGY.value(term, RDFS.label) and ONTOLOGY.value(term, RDFS.comment), term
            ancestors = set(ONTOLOGY.transitive_objects(term, parent)) - {term}
            ancestors |= set(ONTOLOGY.objects(term, OWL.equivalentClass)) | set(ONTOLOGY.objects(term, OWL.equivalentProperty))
            if not any(not str(a).startswith(AI4KG) for a in ancestors):
                unaligned.append(str(term)[len(AI4KG):])
    # Numeric resource figures and platform-specific switches have no standard counterpart;
    # each is listed with its reason at the end of ontology/ai4kg.ttl. Anything else must align.
    assert len(unaligned) <= 38, sorted(unaligned)
    for core in ("Module", "Dataset", "TrainingRun", "Deployment", "title", "description", "task", "tag",
                 "trainingDataset", "sourceCode", "created", "updated"):
        assert core not in unaligned


SCHEMA = json.loads((SHARED / "ai4eosc/schema/ai4-apps-v2.3.0.json").read_text())


@pytest.mark.parametrize("field, scheme", sorted(VOCABULARY_FIELDS.items()))
def test_vocabulary_has_every_enum_value_as_preferred_label(field: str, scheme: str) -> None:
    enum = set(SCHEMA["properties"][field]["items"]["enum"])
    assert set(vocabulary.labels()[scheme].values()) == enum


@pytest.mark.parametrize("path", sorted((SHARED / "ai4eosc/schema").glob("ai4eosc-*.ttl")), ids=lambda p: p.name)
def test_upstream_spellings_are_alternative_labels(path) -> None:
    upstream = rdflib.Graph().parse(path)
    scheme = {"tasktype": "task", "category": "category", "library": "library"}[path.stem.split("-")[1]]
    for concept in set(upstream.subjects(RDF.type, SKOS.Concept)):
        for label in list(upstream.objects(concept, SKOS.prefLabel)) + list(upstream.objects(concept, SKOS.notation)):
            assert vocabulary.schemes()[scheme].concept_of(str(label)), f"{label} not matched in {scheme}"


def test_alternative_labels_are_accepted_and_written_back_canonically(graph: KnowledgeGraph, tmp_path) -> None:
    text = (MODULES / "ai4os-llm__ai4-metadata.yml").read_text()
    import yaml

    document = yaml.safe_load(text)
    document["tasks"] = ["NLP", "computer_vision"]
    document["libraries"] = ["Tensorflow", "sklearn"]
    path = tmp_path / "llm.yml"
    path.write_text(yaml.safe_dump(document))
    [report] = import_files(graph, [path])
    assert report.status == "imported", [str(i) for i in report.issues]
    written = document_of(graph.asset_quads(report.iri))
    assert sorted(written["tasks"]) == ["Computer Vision", "Natural Language Processing"]
    assert sorted(written["libraries"]) == ["Scikit-learn", "TensorFlow"]


def test_unknown_vocabulary_value_lists_the_allowed_ones(graph: KnowledgeGraph, tmp_path) -> None:
    import yaml

    document = yaml.safe_load((MODULES / "ai4os-llm__ai4-metadata.yml").read_text())
    document["tasks"] = ["Telepathy"]
    path = tmp_path / "llm.yml"
    path.write_text(yaml.safe_dump(document))
    [report] = import_files(graph, [path])
    [issue] = report.errors
    assert (issue.field, issue.rule, issue.value) == ("tasks", "vocabulary", "Telepathy")
    assert "Computer Vision" in issue.message
