"""SHACL validation of the nodes a write touches, against shapes/ with the vocabularies at hand.

Only the written assets' own graphs are validated (with the vocabularies beside them), so the
cost of a write does not grow with the store. Results come back as plain `Violation`s; turning
a predicate into the field the user wrote is the caller's job (it knows the mapping).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources
from typing import Any, TYPE_CHECKING, Iterable

import pyoxigraph as ox

from ..threads import once

if TYPE_CHECKING:  # rdflib and pyshacl are imported where a validation runs, not with this module
    import rdflib


@dataclass(frozen=True)
class Violation:
    focus: str
    """The node that failed (an asset IRI, or one of its child nodes: IRI plus fragment)."""
    path: str | None
    """The predicate of the failing property, None for node-level constraints."""
    value: str | None
    rule: str
    """The SHACL constraint component without its namespace and suffix, e.g. 'MinCount', 'Pattern'."""
    message: str
    severity: str


@once
def shapes_graph() -> rdflib.Graph:
    import rdflib

    graph = rdflib.Graph()
    for entry in sorted(resources.files("ai4kg").joinpath("shapes").iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".ttl"):
            graph.parse(data=entry.read_text("utf-8"), format="turtle")
    return graph


@once
def vocabulary_graph() -> rdflib.Graph:
    """The SKOS vocabularies and ontology: mixed into each data graph so sh:node/sh:class checks see them."""
    import rdflib

    graph = rdflib.Graph()
    for name in ("ontology/vocabularies.ttl", "ontology/ai4kg.ttl"):
        graph.parse(data=resources.files("ai4kg").joinpath(name).read_text("utf-8"), format="turtle")
    return graph


def to_rdflib(quads: Iterable[ox.Quad]) -> rdflib.Graph:
    """The quads' triples as an rdflib graph, term by term (a third of the time of writing them as
    N-Triples for rdflib's parser to read back)."""
    import rdflib

    graph = rdflib.Graph()
    graph.addN((_rdflib_term(q.subject), _rdflib_term(q.predicate), _rdflib_term(q.object), graph) for q in quads)
    return graph


_XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"


def _rdflib_term(term: ox.Term) -> Any:
    from rdflib import BNode, Literal, URIRef

    if isinstance(term, ox.NamedNode):
        return URIRef(term.value)
    if isinstance(term, ox.BlankNode):
        return BNode(term.value)
    if term.language:
        return Literal(term.value, lang=term.language)
    datatype = term.datatype.value
    # a plain literal is xsd:string in RDF 1.1; rdflib's parsers make it a Literal without datatype
    return Literal(term.value, datatype=None if datatype == _XSD_STRING else URIRef(datatype))


def validate(quads: list[ox.Quad]) -> list[Violation]:
    """Every SHACL result for the subjects of `quads`, in a stable order."""
    data = to_rdflib(quads)
    if len(data) == 0:
        return []
    # The data graph is the new asset graphs plus what the shapes read of the vocabularies and the
    # ontology about the nodes in them (`vocabulary_for`), nothing else from the store: that bounds
    # the cost. (pyshacl's focus_nodes option would skip sh:node checks on values.)
    for triple in vocabulary_for(data):
        data.add(triple)
    shapes = targeting_shapes(data)
    return violations_of(data, shapes) if shapes else []


def targeting_shapes(data: rdflib.Graph) -> list[str]:
    """The shapes whose targets can be in `data`: those with a sh:targetClass among its classes
    (their rdfs:subClassOf chains are in it: `vocabulary_for`) and every shape with another kind of
    target. pyshacl otherwise looks for the focus nodes of every shape in every graph: a module's
    validation tried 157 shapes for the 4 that apply."""
    from rdflib.namespace import RDF, RDFS

    by_class, always = _shape_targets()
    classes = {str(o) for _, p, o in data if p in (RDF.type, RDFS.subClassOf)}
    return sorted({shape for cls in classes for shape in by_class.get(cls, ())} | set(always))


@once
def _shape_targets() -> tuple[dict[str, set[str]], list[str]]:
    """class -> the shapes that target its instances; and the shapes targeted otherwise."""
    from rdflib import URIRef
    from rdflib.namespace import RDF, RDFS, SH

    shapes = shapes_graph()
    by_class: dict[str, set[str]] = {}
    for shape, cls in shapes.subject_objects(SH.targetClass):
        by_class.setdefault(str(cls), set()).add(str(shape))
    for shape in shapes.subjects(RDF.type, SH.NodeShape):  # SHACL's implicit class targets
        if (shape, RDF.type, RDFS.Class) in shapes:
            by_class.setdefault(str(shape), set()).add(str(shape))
    always = sorted({str(s) for p in (SH.targetNode, SH.targetSubjectsOf, SH.targetObjectsOf)
                     for s in shapes.subjects(p, None)})
    named = [s for s in (*always, *(x for v in by_class.values() for x in v))]
    assert all(isinstance(URIRef(s), URIRef) and s.startswith(("http", "urn")) for s in named), \
        "targeted shapes must be named by IRIs (pyshacl's use_shapes)"
    return by_class, always


def vocabulary_for(data: rdflib.Graph) -> list[tuple]:
    """The vocabulary and ontology statements SHACL may read about the nodes of `data`: those about
    each node (a concept's skos:inScheme, a value's rdf:type), and the rdfs:subClassOf chain of
    every class named (sh:class and sh:targetClass follow it). Copying the whole vocabulary into
    each data graph took 23 of a write's 40 ms of validation; the results are the same (tested
    against the whole vocabulary on every real module)."""
    from rdflib import URIRef
    from rdflib.namespace import RDF, RDFS

    about = _vocabulary_by_subject()
    nodes = {s for s, _, _ in data} | {o for _, _, o in data if isinstance(o, URIRef)}
    found: list[tuple] = []
    classes = [o for _, p, o in data if p == RDF.type]
    for node in nodes:
        for triple in about.get(node, ()):
            found.append(triple)
            if triple[1] == RDF.type:
                classes.append(triple[2])
    seen: set = set()
    while classes:
        cls = classes.pop()
        if cls in seen:
            continue
        seen.add(cls)
        for triple in about.get(cls, ()):
            if triple[1] == RDFS.subClassOf:
                found.append(triple)
                classes.append(triple[2])
    return found


@once
def _vocabulary_by_subject() -> dict:
    about: dict = {}
    for triple in vocabulary_graph():
        about.setdefault(triple[0], []).append(triple)
    return about


@once
def _shapes() -> Any:
    """pyshacl's shapes, built once: `pyshacl.validate` builds every Shape again on each call (a
    third of a module's validation). They hold nothing of the data they validate."""
    from pyshacl.monkey import apply_patches
    from pyshacl.shapes_graph import ShapesGraph
    from pyshacl.validator import assign_baked_in

    apply_patches()  # what pyshacl.validate does first
    assign_baked_in()
    shapes = ShapesGraph(shapes_graph(), False, logging.getLogger("pyshacl"))
    list(shapes.shapes)  # built now, not by the first writer
    return shapes


def violations_of(data: rdflib.Graph, shapes: list[str] | None = None) -> list[Violation]:
    """The SHACL results of the shapes (all, or the `shapes` named) over `data` (changed: it is
    validated in place), in a stable order."""
    from pyshacl.graph_abstraction import DataGraph
    from pyshacl.validator import Validator
    from rdflib.namespace import RDF, SH

    kept = _shapes()
    validator = Validator(DataGraph.from_rdflib(data), shacl_graph=shapes_graph(),
                          options={"allow_warnings": True, "inference": "none", "inplace": True,
                                   "logger": logging.getLogger("pyshacl"), "use_shapes": shapes})
    validator.shacl_graph = kept
    conforms, report, _ = validator.run()
    if conforms:
        return []
    shapes_text = shapes_graph()
    violations = []
    for result in report.subjects(RDF.type, SH.ValidationResult):
        focus_node = report.value(result, SH.focusNode)
        path = report.value(result, SH.resultPath)
        value = report.value(result, SH.value)
        component = str(report.value(result, SH.sourceConstraintComponent))
        rule = component.rsplit("#", 1)[-1].removesuffix("ConstraintComponent")
        source_shape = report.value(result, SH.sourceShape)
        message = _message(shapes_text, source_shape, rule) or str(report.value(result, SH.resultMessage) or rule)
        severity = str(report.value(result, SH.resultSeverity)).rsplit("#", 1)[-1].lower()
        violations.append(Violation(str(focus_node), str(path) if path is not None else None,
                                    str(value) if value is not None else None, rule, message, severity))
    # the message too: two shapes can fail the same value by the same rule (a round is an activity)
    return sorted(violations, key=lambda v: (v.focus, v.path or "", v.rule, v.value or "", v.message, v.severity))


def _message(shapes: rdflib.Graph, source_shape: rdflib.term.Node | None, rule: str) -> str | None:
    """The shape author's sh:message, looking through sh:node to the node shape that failed."""
    from rdflib.namespace import SH

    if source_shape is None:
        return None
    if rule == "Node":
        target = shapes.value(source_shape, SH.node)
        if target is not None and shapes.value(target, SH.message):
            return str(shapes.value(target, SH.message))
    message = shapes.value(source_shape, SH.message)
    return str(message) if message else None


