"""The RML mappings in mappings/, compiled once into plain Python and run in-process on every write.

`compile_mapping(path)` reads a mapping (pyoxigraph's Turtle parser) and turns each triples map into
tuples of term maps; `CompiledMapping.materialize(records)` runs them over the records (about 0.1 ms
for one module where morph-kgc takes 130 ms), with morph-kgc's output (metadata/rml_values.py says
how values become lexical forms). Only the subset of RML that ai4kg's mappings use is compiled
(mappings/README.md, "The compiled engine"); any other term of the R2RML, RML, QL, FnML or FnO
namespaces is refused when the mapping loads, with a `MappingError` that names the construct and
the triples map.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import pyoxigraph as ox

from .rml_values import CONVERSIONS, MISSING, XSD, RecordError, column_strings, encoded, iri_of

RR = "http://www.w3.org/ns/r2rml#"
RML = "http://semweb.mmlab.be/ns/rml#"
QL = "http://semweb.mmlab.be/ns/ql#"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
CONTROLLED = (RR, RML, QL, "http://semweb.mmlab.be/ns/fnml#", "https://w3id.org/function/ontology#",
              "http://w3id.org/function/ontology#", "http://w3id.org/rml/", "http://semweb.mmlab.be/ns/rmls#",
              "http://www.w3.org/ns/csvw#", "http://www.wiwiss.fu-berlin.de/suhl/bizer/D2RQ/0.1#")
"""Namespaces of mapping languages: a term of theirs the compiler does not know is refused."""

_CLASSES = {"TriplesMap": RR + "TriplesMap", "LogicalSource": RML + "LogicalSource",
            "SubjectMap": RR + "SubjectMap", "PredicateObjectMap": RR + "PredicateObjectMap",
            "PredicateMap": RR + "PredicateMap", "ObjectMap": RR + "ObjectMap", "GraphMap": RR + "GraphMap",
            "TermMap": RR + "TermMap"}
_MORPH_COLUMNS = {"subject", "predicate", "object", "graph", "triple", "reference_results", "lang_datatype"}
"""Columns of morph-kgc's own frame: a record key so named is overwritten before it is read."""


class MappingError(ValueError):
    """A mapping uses a construct the compiled engine does not know (or one it cannot reproduce)."""


# -- the compiled form ----------------------------------------------------------------------------------

@dataclass(eq=False)
class TermMap:
    """A subject, object or graph map: a record key, a template or a constant, and its term type."""

    where: str
    kind: str
    """reference, template or constant"""
    keys: tuple[str, ...] = ()
    parts: tuple[tuple[bool, str], ...] = ()
    """a template's pieces, (True, key) or (False, text)"""
    iri: bool = True
    make: Callable[[str], ox.Term] | None = None
    """a literal's constructor (datatype or language applied)"""
    convert: Callable[[str], str] | None = None
    constant: ox.Term | None = None

    @cached_property
    def needs(self) -> frozenset[str]:
        return frozenset(self.keys)

    def render(self, column: Callable[[str], list[str | None]], n: int) -> list[Any]:
        """The term of each record (None: no term, the record makes no triple). A value that makes
        no term gives a `Failure`, raised only if its record makes a triple (as in morph-kgc)."""
        if self.kind == "constant":
            return [self.constant] * n
        raw: list[Any]
        if self.kind == "reference":
            raw = column(self.keys[0])
        elif self.keys:
            raw = [None if None in row else row for row in zip(*[column(k) for k in self.keys])]
        else:
            raw = [()] * n
        build = self.build
        try:
            return [None if v is None else build(v) for v in raw]
        except ValueError:
            terms = Failures()
            for v in raw:
                try:
                    terms.append(None if v is None else build(v))
                except ValueError as exc:
                    terms.append(Failure(RecordError(
                        f"{self.where} (record key {', '.join(map(repr, self.keys))}): {exc}")))
            return terms

    @cached_property
    def build(self) -> Callable[[Any], ox.Term]:
        """A record's value (a template's: the tuple of its values) to a term."""
        finish: Callable[[str], ox.Term] = iri_of if self.iri else self.make  # type: ignore[assignment]
        if self.kind == "template":
            return lambda row: finish(self._fill(row))
        if self.convert:
            convert = self.convert
            return lambda value: finish(convert(value))
        return finish

    def _fill(self, row: tuple[str | None, ...]) -> str:
        values = iter(row)
        out = []
        for is_key, text in self.parts:
            if not is_key:
                out.append(text)
                continue
            value: str = next(values)  # type: ignore[assignment]
            if self.iri:
                value = encoded(value)
            elif self.convert:
                value = self.convert(value)
            out.append(value)
        return "".join(out)


class Failure:
    """A term a record value could not make; its error is raised if the record makes a triple."""

    def __init__(self, error: RecordError):
        self.error = error


class Failures(list):  # type: ignore[type-arg]
    """Rendered terms, some of them Failures."""


@dataclass(frozen=True)
class Rule:
    predicate: ox.NamedNode
    object: TermMap
    graph: TermMap | None
    """None: the default graph (rr:defaultGraph, or no graph map)"""

    @cached_property
    def needs(self) -> frozenset[str]:
        """The record keys the rule reads besides its subject's."""
        return self.object.needs | (self.graph.needs if self.graph else frozenset())


@dataclass(frozen=True)
class CompiledTriplesMap:
    name: str
    source: str
    subject: TermMap
    rules: tuple[Rule, ...]


class CompiledMapping:
    """A mapping's triples maps as Python: `materialize` is a loop over the records."""

    def __init__(self, path: Path, triples_maps: list[CompiledTriplesMap]):
        self.path = path
        self.triples_maps = triples_maps
        self.by_source: dict[str, list[CompiledTriplesMap]] = {}
        for tm in triples_maps:
            self.by_source.setdefault(tm.source, []).append(tm)

    def materialize(self, records: dict[str, list[dict[str, Any]]],
                    default_graph: Callable[[ox.NamedNode], ox.NamedNode]) -> list[ox.Quad]:
        """The quads of the records, each once; a triple of the default graph goes to
        `default_graph(subject)`."""
        out: dict[ox.Quad, None] = {}
        owners: dict[ox.NamedNode, ox.NamedNode] = {}
        for source, maps in self.by_source.items():
            rows = records.get(source)
            if not rows:
                continue
            n = len(rows)
            present = set(rows[0]) if n == 1 else set().union(*rows)
            """A key no record has makes no triple: the rules that need one are skipped."""
            columns: dict[str, list[str | None]] = {}

            def column(key: str) -> list[str | None]:
                found = columns.get(key)
                if found is None:
                    found = columns[key] = column_strings([row.get(key, MISSING) for row in rows])
                return found

            rendered: dict[int, list[Any]] = {}
            for tm in maps:
                if not tm.subject.needs <= present:
                    continue
                subjects = tm.subject.render(column, n)
                for rule in tm.rules:
                    if not rule.needs <= present:
                        continue
                    objects = rendered.get(id(rule.object))
                    if objects is None:
                        objects = rendered[id(rule.object)] = rule.object.render(column, n)
                    graphs = None
                    if rule.graph is not None:
                        graphs = rendered.get(id(rule.graph))
                        if graphs is None:
                            graphs = rendered[id(rule.graph)] = rule.graph.render(column, n)
                    predicate = rule.predicate
                    if subjects.__class__ is Failures or objects.__class__ is Failures or graphs.__class__ is Failures:
                        _raise_failure(subjects, objects, graphs)
                    for i, s in enumerate(subjects):
                        o = objects[i]
                        if s is None or o is None:
                            continue
                        if graphs is None:
                            g = owners.get(s)
                            if g is None:
                                g = owners[s] = default_graph(s)
                        else:
                            g = graphs[i]
                            if g is None:
                                continue
                        out[ox.Quad(s, predicate, o, g)] = None
        return list(out)


def _raise_failure(subjects: list[Any], objects: list[Any], graphs: list[Any] | None) -> None:
    """Raise the first Failure of a record that makes a triple (subject, object and graph all set)."""
    for i, (s, o) in enumerate(zip(subjects, objects)):
        g = graphs[i] if graphs is not None else True
        if s is not None and o is not None and g is not None:
            for term in (s, o, g):
                if term.__class__ is Failure:
                    raise term.error


# -- the compiler ------------------------------------------------------------------------------------------

Node = Any  # ox.NamedNode | ox.BlankNode


def _short(term: Any) -> str:
    if isinstance(term, ox.NamedNode):
        for ns, prefix in ((RR, "rr:"), (RML, "rml:"), (QL, "ql:"), (XSD, "xsd:"), (CONTROLLED[3], "fnml:"),
                           (CONTROLLED[4], "fno:")):
            if term.value.startswith(ns):
                return prefix + term.value[len(ns):]
        return f"<{term.value}>"
    return str(term)


def _controlled(term: Any) -> bool:
    return isinstance(term, ox.NamedNode) and term.value.startswith(CONTROLLED)


class _Compiler:
    def __init__(self, path: Path):
        self.path = path
        self.props: dict[Node, list[tuple[str, Any]]] = {}
        for quad in ox.parse(path=str(path), format=ox.RdfFormat.TURTLE):
            self.props.setdefault(quad.subject, []).append((quad.predicate.value, quad.object))
        self.read: set[Node] = set()
        self.term_maps: dict[Node, TermMap] = {}

    def refuse(self, where: str, what: str) -> MappingError:
        return MappingError(f"{where}: {what} is not supported by the compiled RML engine "
                            "(mappings/README.md lists what is)")

    def values(self, node: Node, role: str, where: str, allowed: dict[str, str]) -> dict[str, list[Any]]:
        """The node's values of the allowed predicates (rr:/rml: local names); any other term of a
        mapping namespace on it, as predicate or as class, is refused."""
        self.read.add(node)
        found: dict[str, list[Any]] = {}
        for predicate, obj in self.props.get(node, []):
            if predicate == RDF_TYPE:
                if _controlled(obj) and obj.value not in (_CLASSES.get(c) for c in allowed.get("a", "").split()):
                    raise self.refuse(where, f"the class {_short(obj)} on a {role}")
                continue
            name = next((n for n, full in allowed.items() if full == predicate), None)
            if name is None:
                if predicate.startswith(CONTROLLED):
                    raise self.refuse(where, f"{_short(ox.NamedNode(predicate))} on a {role}")
                continue  # rdfs:comment and other annotations
            found.setdefault(name, []).append(obj)
        return found

    def compile(self) -> CompiledMapping:
        tms = {s for s, props in self.props.items()
               if any(p == RML + "logicalSource" or (p == RDF_TYPE and o == ox.NamedNode(RR + "TriplesMap"))
                      for p, o in props)}
        compiled = [self.triples_map(tm) for tm in sorted(tms, key=str)]
        for subject, props in self.props.items():
            if subject in self.read:
                continue
            for predicate, obj in props:
                if predicate.startswith(CONTROLLED) or _controlled(obj):
                    raise self.refuse(f"{self.path.name}, node {_short(subject)} (outside any triples map)",
                                      f"{_short(ox.NamedNode(predicate))} {_short(obj)}")
        return CompiledMapping(self.path, compiled)

    def triples_map(self, node: Node) -> CompiledTriplesMap:
        name = node.value.rsplit("#", 1)[-1] if isinstance(node, ox.NamedNode) else str(node)
        where = f"{self.path.name}, triples map {name}"
        v = self.values(node, "triples map", where, {
            "a": "TriplesMap", "logicalSource": RML + "logicalSource", "subjectMap": RR + "subjectMap",
            "subject": RR + "subject", "predicateObjectMap": RR + "predicateObjectMap"})
        [source] = self.one(v, "logicalSource", where, "rml:logicalSource")
        source_name = self.logical_source(source, where)
        subject_maps = v.get("subjectMap", []) + v.get("subject", [])
        if len(subject_maps) != 1:
            raise self.refuse(where, f"{len(subject_maps)} subject maps (exactly one is)")
        if v.get("subject"):
            subject = self.constant_term(subject_maps[0], f"{where}, rr:subject", iri_only=True)
            classes, subject_graphs = [], []
        else:
            subject, classes, subject_graphs = self.subject_map(subject_maps[0], f"{where}, subject map")
        if subject.kind == "template" and not subject.keys:
            raise self.refuse(f"{where}, subject map", "a template without a reference")
        rules: list[Rule] = []
        rdf_type = ox.NamedNode(RDF_TYPE)
        for cls in classes:
            rules += [Rule(rdf_type, TermMap(f"{where}, rr:class", "constant", constant=cls), g)
                      for g in subject_graphs or [None]]
        for pom in v.get("predicateObjectMap", []):
            rules += self.predicate_object_map(pom, f"{where}, predicate-object map", subject_graphs)
        for rule in rules:
            if subject.kind == "constant" and rule.object.kind == "constant" and (
                    rule.graph is None or rule.graph.kind == "constant"):
                raise self.refuse(where, "a triple whose subject, object and graph are all constant "
                                         "(morph-kgc makes it whatever the records)")
        return CompiledTriplesMap(name, source_name, subject, tuple(rules))

    def one(self, v: dict[str, list[Any]], key: str, where: str, label: str) -> list[Any]:
        if len(v.get(key, [])) != 1:
            raise self.refuse(where, f"{len(v.get(key, []))} values of {label} (exactly one is)")
        return v[key]

    def logical_source(self, node: Node, where: str) -> str:
        v = self.values(node, "logical source", where, {
            "a": "LogicalSource", "source": RML + "source", "referenceFormulation": RML + "referenceFormulation",
            "iterator": RML + "iterator"})
        [source] = self.one(v, "source", where, "rml:source")
        [formulation] = self.one(v, "referenceFormulation", where, "rml:referenceFormulation")
        if formulation != ox.NamedNode(QL + "JSONPath"):
            raise self.refuse(where, f"the reference formulation {_short(formulation)}")
        if not (isinstance(source, ox.Literal) and re.fullmatch(r"\{[^{}]+\}", source.value)):
            raise self.refuse(where, f"the source {_short(source)} (only an in-memory \"{{name}}\" is)")
        [iterator] = self.one(v, "iterator", where, "rml:iterator")
        if not (isinstance(iterator, ox.Literal) and iterator.value == "$[*]"):
            raise self.refuse(where, f"the iterator {_short(iterator)} (only \"$[*]\" is)")
        return source.value[1:-1]

    def subject_map(self, node: Node, where: str) -> tuple[TermMap, list[ox.NamedNode], list[TermMap | None]]:
        v = self.values(node, "subject map", where, {
            "a": "SubjectMap TermMap", "reference": RML + "reference", "template": RR + "template",
            "constant": RR + "constant", "termType": RR + "termType", "class": RR + "class",
            "graphMap": RR + "graphMap", "graph": RR + "graph"})
        term_map = self.term_map(node, v, where, iri_only=True)
        classes = v.get("class", [])
        if any(not isinstance(c, ox.NamedNode) for c in classes):
            raise self.refuse(where, "an rr:class that is not an IRI")
        return term_map, classes, self.graph_maps(v, where)

    def graph_maps(self, v: dict[str, list[Any]], where: str) -> list[TermMap | None]:
        maps: list[TermMap | None] = [self.graph_map(g, f"{where}, graph map") for g in v.get("graphMap", [])]
        maps += [self.constant_graph(g, f"{where}, rr:graph") for g in v.get("graph", [])]
        return maps

    def graph_map(self, node: Node, where: str) -> TermMap | None:
        if node in self.term_maps:
            return self.term_maps[node]  # type: ignore[return-value]
        v = self.values(node, "graph map", where, {
            "a": "GraphMap TermMap", "reference": RML + "reference", "template": RR + "template",
            "constant": RR + "constant", "termType": RR + "termType"})
        if v.get("constant") and len(v["constant"]) == 1 and not set(v) - {"constant", "termType"}:
            term_map: TermMap | None = self.constant_graph(v["constant"][0], where)
        else:
            term_map = self.term_map(node, v, where, iri_only=True)
        self.term_maps[node] = term_map  # type: ignore[assignment]
        return term_map

    def constant_graph(self, value: Any, where: str) -> TermMap | None:
        if value == ox.NamedNode(RR + "defaultGraph"):
            return None
        return self.constant_term(value, where, iri_only=True)

    def predicate_object_map(self, node: Node, where: str, subject_graphs: list[TermMap | None]) -> list[Rule]:
        v = self.values(node, "predicate-object map", where, {
            "a": "PredicateObjectMap", "predicate": RR + "predicate", "predicateMap": RR + "predicateMap",
            "objectMap": RR + "objectMap", "object": RR + "object", "graphMap": RR + "graphMap", "graph": RR + "graph"})
        predicates = list(v.get("predicate", []))
        for pm in v.get("predicateMap", []):
            pv = self.values(pm, "predicate map", where, {"a": "PredicateMap TermMap", "constant": RR + "constant",
                                                           "termType": RR + "termType"})
            if set(pv) - {"constant", "termType"} or len(pv.get("constant", [])) != 1 or \
                    pv.get("termType", [ox.NamedNode(RR + "IRI")]) != [ox.NamedNode(RR + "IRI")]:
                raise self.refuse(where, "a predicate map other than a constant IRI")
            predicates += pv["constant"]
        if not predicates or any(not isinstance(p, ox.NamedNode) or "{" in p.value for p in predicates):
            raise self.refuse(where, "a predicate that is not a constant IRI (or none)")
        objects = [self.object_map(o, f"{where}, object map") for o in v.get("objectMap", [])]
        objects += [self.constant_term(o, f"{where}, rr:object") for o in v.get("object", [])]
        if not objects:
            raise self.refuse(where, "a predicate-object map without an object map")
        graphs = self.graph_maps(v, where) + subject_graphs or [None]
        return [Rule(p, o, g) for p in predicates for o in objects for g in graphs]  # type: ignore[arg-type]

    def object_map(self, node: Node, where: str) -> TermMap:
        if node in self.term_maps:
            return self.term_maps[node]
        v = self.values(node, "object map", where, {
            "a": "ObjectMap TermMap", "reference": RML + "reference", "template": RR + "template",
            "constant": RR + "constant", "termType": RR + "termType", "datatype": RR + "datatype",
            "language": RR + "language"})
        self.term_maps[node] = term_map = self.term_map(node, v, where, iri_only=False)
        return term_map

    def constant_term(self, value: Any, where: str, iri_only: bool = False) -> TermMap:
        if isinstance(value, ox.NamedNode) and "{" not in value.value and "}" not in value.value:
            return TermMap(where, "constant", constant=value)
        if not iri_only and isinstance(value, ox.Literal) and not value.language and \
                value.datatype == ox.NamedNode(XSD + "string") and not re.search(r'[{}"\\\n\r]', value.value):
            return TermMap(where, "constant", iri=False, constant=value)
        raise self.refuse(where, f"the constant {_short(value)}")

    def term_map(self, node: Node, v: dict[str, list[Any]], where: str, iri_only: bool) -> TermMap:
        kinds = [k for k in ("reference", "template", "constant") if k in v]
        if len(kinds) != 1 or len(v[kinds[0]]) != 1:
            raise self.refuse(where, "a term map without exactly one of rml:reference, rr:template, rr:constant")
        kind, [value] = kinds[0], v[kinds[0]]
        term_types = v.get("termType", [])
        datatypes, languages = v.get("datatype", []), v.get("language", [])
        if len(term_types) > 1 or len(datatypes) > 1 or len(languages) > 1 or (datatypes and languages):
            raise self.refuse(where, "more than one term type, datatype or language")
        known = {ox.NamedNode(RR + "IRI"): True, ox.NamedNode(RR + "Literal"): False}
        if term_types and (term_types[0] not in known or (iri_only and not known[term_types[0]])):
            raise self.refuse(where, f"the term type {_short(term_types[0])}")
        if kind == "constant":
            if term_types or datatypes or languages:
                raise self.refuse(where, "a constant with a term type, datatype or language")
            return self.constant_term(value, where, iri_only)
        if not isinstance(value, ox.Literal):
            raise self.refuse(where, f"the {kind} {_short(value)}")
        if iri_only:
            iri = True
        elif term_types:
            iri = known[term_types[0]]
        else:  # R2RML's default: a template makes an IRI, a reference a literal
            iri = kind == "template" and not datatypes and not languages
        if iri and (datatypes or languages):
            raise self.refuse(where, "a datatype or language on an IRI")
        term_map = TermMap(where, kind, iri=iri)
        if kind == "reference":
            text = value.value
            term_map.keys = (text[1:-1] if len(text) > 2 and text[0] == text[-1] == '"' else text,)
        else:
            term_map.parts = self.template(value.value, where)
            term_map.keys = tuple(text for is_key, text in term_map.parts if is_key)
        clash = set(term_map.keys) & _MORPH_COLUMNS
        if clash:
            raise self.refuse(where, f"the record key {clash.pop()!r} (morph-kgc, the reference engine, "
                                     "mis-maps a key named like a column of its own)")
        if not iri:
            term_map.make, term_map.convert = self.literal(datatypes, languages, where)
        return term_map

    def template(self, template: str, where: str) -> tuple[tuple[bool, str], ...]:
        template = template.replace('{"', "{").replace('"}', "}")  # morph-kgc's delimited identifiers
        if "\\" in template or not re.fullmatch(r"(?:[^{}]|\{[^{}]+\})*", template):
            raise self.refuse(where, f"the template {template!r} (escaped, nested or unbalanced braces)")
        return tuple((piece.startswith("{"), piece.strip("{}") if piece.startswith("{") else piece)
                     for piece in re.findall(r"\{[^{}]+\}|[^{}]+", template))

    def literal(self, datatypes: list[Any], languages: list[Any], where: str) -> tuple[Callable[[str], ox.Term],
                                                                                         Callable[[str], str] | None]:
        if languages:
            [language] = languages
            try:
                ox.Literal("", language=language.value)
            except (ValueError, AttributeError):
                raise self.refuse(where, f"the language {_short(language)}") from None
            return (lambda s: ox.Literal(s, language=language.value)), None
        if datatypes:
            [datatype] = datatypes
            if not isinstance(datatype, ox.NamedNode) or datatype.value.startswith(CONTROLLED) or \
                    datatype.value == "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString":
                raise self.refuse(where, f"the datatype {_short(datatype)}")
            if datatype.value != XSD + "string":  # morph-kgc drops xsd:string: a plain literal
                return (lambda s: ox.Literal(s, datatype=datatype)), CONVERSIONS.get(datatype.value)
        return ox.Literal, None


def compile_mapping(path: Path) -> CompiledMapping:
    """The mapping at `path`, compiled; MappingError if it uses a construct the compiler does not know."""
    return _Compiler(Path(path)).compile()


__all__ = ["CompiledMapping", "MappingError", "RecordError", "compile_mapping"]
