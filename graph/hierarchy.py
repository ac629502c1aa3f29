"""The ontology's class hierarchy: which ai4kg classes each class is a kind of.

Read once from the packaged ontology (the file the store loads into its ontology graph), for code
that must know that a ModuleDeployment is a Deployment (GraphQL's interfaces) or a Module an
Application (the assistant's provenance walks)."""

from __future__ import annotations

from collections import defaultdict
from importlib import resources

import pyoxigraph as ox

from ..threads import once

RDFS_SUBCLASS = "http://www.w3.org/2000/01/rdf-schema#subClassOf"


@once
def superclasses() -> dict[str, frozenset[str]]:
    """class IRI -> every class IRI it is a subclass of, directly or not (itself excluded)."""
    data = resources.files("ai4kg").joinpath("ontology/ai4kg.ttl").read_bytes()
    parents: dict[str, set[str]] = defaultdict(set)
    for triple in ox.parse(input=data, format=ox.RdfFormat.TURTLE):
        if triple.predicate.value == RDFS_SUBCLASS and isinstance(triple.object, ox.NamedNode) \
                and isinstance(triple.subject, ox.NamedNode):
            parents[triple.subject.value].add(triple.object.value)

    def ancestors(cls: str) -> frozenset[str]:
        found: set[str] = set()
        unvisited = list(parents[cls])
        while unvisited:
            parent = unvisited.pop()
            if parent not in found:
                found.add(parent)
                unvisited.extend(parents[parent])
        return frozenset(found)

    return {cls: ancestors(cls) for cls in list(parents)}


def subclasses(cls: str) -> frozenset[str]:
    """`cls` and every class that is a kind of it."""
    return frozenset({cls} | {child for child, above in superclasses().items() if cls in above})
