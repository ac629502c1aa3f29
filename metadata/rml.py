"""Run the RML mappings in mappings/ (compiled once into Python, or with morph-kgc), and read them
backwards.

Every write maps its records with `RmlMapping.materialize`. By default that runs the mapping
compiled by metadata/rml_compiler.py when it loads (about 0.1 ms for one module). morph-kgc stays
the reference engine: `RmlMapping(path, engine="morph-kgc")` runs it (its parsed rules reused, about
130 ms a call, nearly the same for one record or a batch of 200), and tests/test_rml_compiled.py
requires both engines to make the same graph. `engine="crosscheck"` runs both on every call and
raises `EngineMismatch` where they differ. The environment variable AI4KG_RML_ENGINE sets the
default engine for a process. morph-kgc and pandas are imported only when that engine runs.

The same mapping, read backwards, tells which document field feeds each predicate: it is used to
name fields in validation errors and to write a document back from the graph
(`records_from_graph`), so the RML file is the single statement of how fields become triples.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Literal

import pyoxigraph as ox

from ..threads import RDFLIB_SPARQL, once
from .records import Records
from .rml_compiler import RML, RR, CompiledMapping, MappingError, compile_mapping
from .rml_values import RecordError

_XSD = "http://www.w3.org/2001/XMLSchema#"
_RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
Engine = Literal["compiled", "morph-kgc", "crosscheck"]
ENGINES = ("compiled", "morph-kgc", "crosscheck")


class EngineMismatch(AssertionError):
    """The compiled engine and morph-kgc made different quads of the same records (crosscheck)."""


@dataclass(frozen=True)
class ObjectRule:
    predicate: str
    reference: str | None
    """Record key holding the value (None for template objects)."""
    template: str | None
    is_iri: bool
    datatype: str | None


@dataclass
class TriplesMapRule:
    name: str
    source: str
    subject_reference: str
    subject_class: str | None
    objects: list[ObjectRule] = field(default_factory=list)


def owner_of(node: str) -> str:
    """The asset an IRI belongs to: child nodes are the asset IRI plus a fragment."""
    return node.split("#", 1)[0]


def _owner_graph(subject: ox.NamedNode) -> ox.NamedNode:
    value = subject.value
    return ox.NamedNode(value.split("#", 1)[0]) if "#" in value else subject


def default_engine() -> Engine:
    engine = os.environ.get("AI4KG_RML_ENGINE", "compiled")
    if engine not in ENGINES:
        raise ValueError(f"AI4KG_RML_ENGINE={engine!r}: one of {', '.join(ENGINES)}")
    return engine  # type: ignore[return-value]


class RmlMapping:
    """One RML mapping file, compiled once (MappingError if it uses a construct the compiled engine
    does not know)."""

    def __init__(self, path: Path, engine: Engine | None = None):
        self.path = Path(path)
        self.engine: Engine = engine or default_engine()
        if self.engine not in ENGINES:
            raise ValueError(f"engine {self.engine!r}: one of {', '.join(ENGINES)}")
        self.compiled: CompiledMapping = compile_mapping(self.path)
        self.rules = _read_rules(self.path)
        self._morph: _MorphKgc | None = None
        self._morph_lock = threading.Lock()

    @property
    def sources(self) -> set[str]:
        return {rule.source for rule in self.rules}

    def materialize(self, records: Records) -> list[ox.Quad]:
        """The quads the mapping makes of the records: in the graph its graph maps name, else in
        the named graph of the subject's asset (`owner_of`)."""
        if self.engine == "compiled":
            return self.compiled.materialize(records, _owner_graph)
        if self.engine == "morph-kgc":
            return self.materialize_morph_kgc(records)
        return self._crosscheck(records)

    def materialize_morph_kgc(self, records: Records) -> list[ox.Quad]:
        """`materialize` with morph-kgc, the reference engine."""
        with self._morph_lock:
            if self._morph is None:
                self._morph = _MorphKgc(self.path)
        return self._morph.materialize(records, self.compiled.by_source)

    def _crosscheck(self, records: Records) -> list[ox.Quad]:
        outcomes: list[Any] = []
        for run in (lambda: self.compiled.materialize(records, _owner_graph), lambda: self.materialize_morph_kgc(records)):
            try:
                outcomes.append(run())
            except Exception as exc:  # noqa: BLE001 - compared below
                outcomes.append(exc)
        compiled, morph = outcomes
        if isinstance(compiled, Exception) and isinstance(morph, Exception):
            raise compiled
        if isinstance(compiled, Exception) or isinstance(morph, Exception) or set(compiled) != set(morph):
            raise EngineMismatch(f"{self.path.name}: the engines disagree on {repr(records)[:2000]}: "
                                 f"{_difference(compiled, morph)}")
        return compiled

    def field_of(self, records: Records, node: str, predicate: str) -> tuple[str, dict[str, Any]] | None:
        """The record key (a document field path) that made `predicate` on `node`, with its record."""
        for rule in self.rules:
            obj = next((o for o in rule.objects if o.predicate == predicate), None)
            if obj is None:
                continue
            for record in records.get(rule.source, []):
                if record.get(rule.subject_reference) == node:
                    return (obj.reference or _template_variable(obj.template) or predicate), record
        return None

    def records_from_graph(self, quads: Iterable[ox.Quad]) -> Records:
        """Read the mapping backwards: the records that would produce these quads."""
        by_subject: dict[str, dict[str, list[ox.Term]]] = defaultdict(lambda: defaultdict(list))
        for quad in quads:
            by_subject[quad.subject.value][quad.predicate.value].append(quad.object)
        # A child node (subject reference other than asset_iri) belongs to the rule whose subject
        # reference is the object reference of the link pointing at it (inference vs training).
        link_of = {obj.reference: obj.predicate for rule in self.rules for obj in rule.objects if obj.is_iri and obj.reference}
        linked: dict[str, set[str]] = defaultdict(set)
        for properties in by_subject.values():
            for predicate, terms in properties.items():
                for term in terms:
                    linked[predicate].add(term.value)
        records: Records = defaultdict(list)
        for rule in self.rules:
            predicates = {obj.predicate for obj in rule.objects}
            for subject, properties in by_subject.items():
                if rule.subject_class:
                    if not any(t.value == rule.subject_class for t in properties.get(_RDF_TYPE, [])):
                        continue
                elif not predicates & set(properties):
                    continue
                link = link_of.get(rule.subject_reference)
                if link and subject not in linked[link]:
                    continue
                base = {rule.subject_reference: subject}
                if rule.subject_reference != "asset_iri":
                    base["asset_iri"] = owner_of(subject)
                if len(rule.objects) == 1:
                    obj = rule.objects[0]
                    for term in sorted(properties.get(obj.predicate, []), key=str):
                        records[rule.source].append({**base, **_value_of(obj, term)})
                    continue
                record = dict(base)
                for obj in rule.objects:
                    for term in properties.get(obj.predicate, [])[:1]:
                        record.update(_value_of(obj, term))
                records[rule.source].append(record)
        return dict(records)


def _template_variable(template: str | None) -> str | None:
    if not template:
        return None
    match = re.search(r"\{([^}]+)\}", template)
    return match.group(1) if match else None


def _value_of(obj: ObjectRule, term: ox.Term) -> dict[str, Any]:
    if obj.template:
        name = _template_variable(obj.template)
        prefix = obj.template.split("{", 1)[0]
        return {name: term.value[len(prefix):] if term.value.startswith(prefix) else term.value}
    value: Any = term.value
    if isinstance(term, ox.Literal):
        datatype = term.datatype.value
        if datatype in (_XSD + "integer", _XSD + "int", _XSD + "long"):
            value = int(value)
        elif datatype in (_XSD + "decimal", _XSD + "double", _XSD + "float"):
            value = float(value)
    return {obj.reference: value}


def _read_rules(path: Path) -> list[TriplesMapRule]:
    """What the mapping says of each triples map, for reading it backwards."""
    props: dict[Any, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for quad in ox.parse(path=str(path), format=ox.RdfFormat.TURTLE):
        props[quad.subject][quad.predicate.value].append(quad.object)

    def value(node: Any, predicate: str) -> Any:
        found = props[node].get(predicate) if node is not None else None
        return found[0] if found else None

    def text(term: Any) -> str | None:
        return None if term is None else term.value

    rules = []
    for triples_map, properties in list(props.items()):
        if ox.NamedNode(RR + "TriplesMap") not in properties.get(_RDF_TYPE, []):
            continue
        source = str(text(value(value(triples_map, RML + "logicalSource"), RML + "source"))).strip("{}")
        subject_map = value(triples_map, RR + "subjectMap")
        subject_class = value(subject_map, RR + "class")
        rule = TriplesMapRule(str(text(triples_map)).rsplit("#", 1)[-1], source,
                              str(text(value(subject_map, RML + "reference"))), text(subject_class))
        for pom in properties.get(RR + "predicateObjectMap", []):
            object_map = value(pom, RR + "objectMap")
            template = text(value(object_map, RR + "template"))
            rule.objects.append(ObjectRule(str(text(value(pom, RR + "predicate"))),
                                           text(value(object_map, RML + "reference")), template,
                                           value(object_map, RR + "termType") == ox.NamedNode(RR + "IRI")
                                           or template is not None,
                                           text(value(object_map, RR + "datatype"))))
        rules.append(rule)
    return sorted(rules, key=lambda r: r.name)


def _difference(compiled: Any, morph: Any) -> str:
    if isinstance(compiled, Exception) or isinstance(morph, Exception):
        return f"compiled: {compiled!r}; morph-kgc: {morph!r}"
    only_compiled, only_morph = set(compiled) - set(morph), set(morph) - set(compiled)
    return (f"only compiled: {sorted(map(str, only_compiled))[:20]}; "
            f"only morph-kgc: {sorted(map(str, only_morph))[:20]}")


class _MorphKgc:
    """morph-kgc's parsed rules of one mapping (imported and parsed on first use: about 0.5 s)."""

    def __init__(self, path: Path):
        from morph_kgc.args_parser import load_config_from_argument
        from morph_kgc.constants import RML_TRIPLES_MAP_CLASS
        from morph_kgc.mapping.mapping_parser import retrieve_mappings

        logging.getLogger("morph_kgc").setLevel(logging.WARNING)
        config = load_config_from_argument(f"[CONFIGURATION]\nnumber_of_processes=1\nlogging_level=WARNING\n"
                                           f"output_format=N-QUADS\n[Mapping]\nmappings={path}\n")
        with RDFLIB_SPARQL:  # morph-kgc reads the mapping with rdflib's SPARQL (see threads.py)
            rml_df, fnml_df, http_api_df = retrieve_mappings(config)
        config.set("CONFIGURATION", "http_api_df", http_api_df.to_csv())
        asserted = rml_df.loc[rml_df["triples_map_type"] == RML_TRIPLES_MAP_CLASS]
        self._config, self._rml_df, self._fnml_df = config, rml_df, fnml_df
        self._groups = [(group, {value.strip("{}") for value in group["logical_source_value"]})
                        for _, group in asserted.groupby(by="mapping_partition")]
        """morph-kgc's rules in its partitions, each with the record sources its rules read."""

    def materialize(self, records: Records, sources: Iterable[str]) -> list[ox.Quad]:
        from morph_kgc.materializer import _materialize_mapping_group_to_set

        data = {source: records.get(source, []) for source in sources}
        lines: set[str] = set()
        for group, group_sources in self._groups:
            if not any(data.get(source) for source in group_sources):
                continue  # morph-kgc builds and walks data frames even for an empty source
            lines |= _materialize_mapping_group_to_set(group, self._rml_df, self._fnml_df, self._config, data)
        if not lines:
            return []
        quads = ox.parse(input=(" .\n".join(sorted(lines)) + " .\n").encode("utf-8"), format=ox.RdfFormat.N_QUADS)
        return [q if isinstance(q.graph_name, ox.NamedNode) else
                ox.Quad(q.subject, q.predicate, q.object, ox.NamedNode(owner_of(q.subject.value))) for q in quads]


def mapping_path(name: str) -> Path:
    """mappings/NAME.rml.ttl (NAME may name a folder: provenance/provenance)."""
    return Path(str(resources.files("ai4kg").joinpath(f"mappings/{name}.rml.ttl")))


@once
def mapping_for(generation: str) -> RmlMapping:
    """The parsed mapping of an ai4-metadata generation ('v1' or 'v2'), parsed once, on first use,
    however many writes ask for it at the same moment."""
    return RmlMapping(mapping_path(f"ai4-metadata-{generation}"))


__all__ = ["EngineMismatch", "MappingError", "RecordError", "RmlMapping", "mapping_for", "owner_of"]
