"""Run the RML mappings in mappings/ with morph-kgc, and read them backwards.

morph-kgc's public `materialize*` functions parse and normalise the mapping file on every call
(about 0.5 s). `RmlMapping` parses a mapping once and reuses morph-kgc's parsed rules for every
batch of records: a call then costs about 0.13 s for the 2.x mapping (0.07 s for V1), nearly the
same for one record or a batch of 200, which is why imports map files in batches.

The same mapping, read with rdflib, tells which document field feeds each predicate: it is used
to name fields in validation errors and to write a document back from the graph
(`records_from_graph`), so the RML file is the single statement of how fields become triples.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

import pyoxigraph as ox
import rdflib
from morph_kgc.args_parser import load_config_from_argument
from morph_kgc.constants import RML_TRIPLES_MAP_CLASS
from morph_kgc.mapping.mapping_parser import retrieve_mappings
from morph_kgc.materializer import _materialize_mapping_group_to_set

from ..threads import RDFLIB_SPARQL, once
from .records import Records

logging.getLogger("morph_kgc").setLevel(logging.WARNING)

RR = rdflib.Namespace("http://www.w3.org/ns/r2rml#")
RML = rdflib.Namespace("http://semweb.mmlab.be/ns/rml#")
_XSD = "http://www.w3.org/2001/XMLSchema#"
_RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"


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


class RmlMapping:
    """One RML mapping file, parsed once."""

    def __init__(self, path: Path):
        self.path = path
        with RDFLIB_SPARQL:  # morph-kgc reads the mapping with rdflib's SPARQL (see threads.py)
            self._parse(path)
        self.rules = _read_rules(path)

    def _parse(self, path: Path) -> None:
        config = load_config_from_argument(f"[CONFIGURATION]\nnumber_of_processes=1\nlogging_level=WARNING\noutput_format=N-QUADS\n"
                                           f"[Mapping]\nmappings={path}\n")
        rml_df, fnml_df, http_api_df = retrieve_mappings(config)
        config.set("CONFIGURATION", "http_api_df", http_api_df.to_csv())
        asserted = rml_df.loc[rml_df["triples_map_type"] == RML_TRIPLES_MAP_CLASS]
        self._config, self._rml_df, self._fnml_df = config, rml_df, fnml_df
        self._groups = [(group, {value.strip("{}") for value in group["logical_source_value"]})
                        for _, group in asserted.groupby(by="mapping_partition")]
        """morph-kgc's rules in its partitions, each with the record sources its rules read."""

    @property
    def sources(self) -> set[str]:
        return {rule.source for rule in self.rules}

    def materialize(self, records: Records) -> list[ox.Quad]:
        """The quads the mapping makes of the records: in the graph its graph maps name, else in
        the named graph of the subject's asset (`owner_of`)."""
        data = {source: records.get(source, []) for source in self.sources}
        lines: set[str] = set()
        for group, sources in self._groups:
            if not any(data.get(source) for source in sources):
                continue  # morph-kgc builds and walks data frames even for an empty source
            lines |= _materialize_mapping_group_to_set(group, self._rml_df, self._fnml_df, self._config, data)
        if not lines:
            return []
        quads = ox.parse(input=(" .\n".join(sorted(lines)) + " .\n").encode("utf-8"), format=ox.RdfFormat.N_QUADS)
        return [q if isinstance(q.graph_name, ox.NamedNode) else
                ox.Quad(q.subject, q.predicate, q.object, ox.NamedNode(owner_of(q.subject.value))) for q in quads]

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
    graph = rdflib.Graph().parse(path, format="turtle")
    rules = []
    for triples_map in graph.subjects(rdflib.RDF.type, RR.TriplesMap):
        source_node = graph.value(triples_map, RML.logicalSource)
        source = str(graph.value(source_node, RML.source)).strip("{}")
        subject_map = graph.value(triples_map, RR.subjectMap)
        subject_class = graph.value(subject_map, RR["class"])
        rule = TriplesMapRule(str(triples_map).rsplit("#", 1)[-1], source, str(graph.value(subject_map, RML.reference)),
                              str(subject_class) if subject_class else None)
        for pom in graph.objects(triples_map, RR.predicateObjectMap):
            object_map = graph.value(pom, RR.objectMap)
            reference = graph.value(object_map, RML.reference)
            template = graph.value(object_map, RR.template)
            datatype = graph.value(object_map, RR.datatype)
            rule.objects.append(ObjectRule(str(graph.value(pom, RR.predicate)),
                                           str(reference) if reference is not None else None,
                                           str(template) if template is not None else None,
                                           graph.value(object_map, RR.termType) == RR.IRI or template is not None,
                                           str(datatype) if datatype else None))
        rules.append(rule)
    return sorted(rules, key=lambda r: r.name)


def mapping_path(name: str) -> Path:
    """mappings/NAME.rml.ttl (NAME may name a folder: provenance/provenance)."""
    return Path(str(resources.files("ai4kg").joinpath(f"mappings/{name}.rml.ttl")))


@once
def mapping_for(generation: str) -> RmlMapping:
    """The parsed mapping of an ai4-metadata generation ('v1' or 'v2'), parsed once, on first use,
    however many writes ask for it at the same moment."""
    return RmlMapping(mapping_path(f"ai4-metadata-{generation}"))


__all__ = ["RmlMapping", "mapping_for", "owner_of"]
