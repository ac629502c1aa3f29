"""The SKOS vocabularies of ontology/vocabularies.ttl, as lookups for the write and read paths.

A document value is matched to a concept by the slug of its preferred label or of any
alternative label (upstream spellings such as 'Computer_Vision' or 'Tensorflow', abbreviations
such as 'NLP'); the graph stores the concept, and a document written back carries the
preferred label.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import pyoxigraph as ox

from ..graph.namespaces import SKOS as _SKOS, VOCAB



def slug(label: str) -> str:
    """The concept slug of a label: 'AI4 pre trained' -> 'ai4-pre-trained'."""
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


@dataclass
class Scheme:
    name: str
    preferred: dict[str, str] = field(default_factory=dict)
    """concept slug -> preferred label"""
    matches: dict[str, str] = field(default_factory=dict)
    """slug of any label (preferred or alternative) -> concept slug"""
    labels: set[str] = field(default_factory=set)
    """every label as written in the vocabulary, preferred and alternative"""

    def concept_of(self, value: str) -> str | None:
        return self.matches.get(slug(value))


@cache
def schemes() -> dict[str, Scheme]:
    """Scheme name ('task', 'category', ...) -> its labels, read once from the packaged Turtle."""
    data = resources.files("ai4kg").joinpath("ontology/vocabularies.ttl").read_bytes()
    triples = list(ox.parse(input=data, format=ox.RdfFormat.TURTLE))
    in_scheme = {t.subject.value: t.object.value for t in triples if t.predicate.value == _SKOS + "inScheme"}
    found: dict[str, Scheme] = {}
    for triple in triples:
        kind = triple.predicate.value
        if kind not in (_SKOS + "prefLabel", _SKOS + "altLabel") or triple.subject.value not in in_scheme:
            continue
        scheme_name = in_scheme[triple.subject.value].removeprefix(VOCAB).strip("/")
        scheme = found.setdefault(scheme_name, Scheme(scheme_name))
        concept = triple.subject.value.rsplit("/", 1)[-1]
        scheme.labels.add(triple.object.value)
        if kind == _SKOS + "prefLabel":
            scheme.preferred[concept] = triple.object.value
            scheme.matches[slug(triple.object.value)] = concept
        else:
            scheme.matches.setdefault(slug(triple.object.value), concept)
    return found


def concept_slug(scheme: str, value: str) -> str:
    """The concept a document value names, or the value's own slug when it names none
    (SHACL then reports it as outside the vocabulary)."""
    known = schemes().get(scheme)
    return (known.concept_of(value) if known else None) or slug(value)


def labels() -> dict[str, dict[str, str]]:
    """scheme name -> concept slug -> preferred label."""
    return {name: scheme.preferred for name, scheme in schemes().items()}
