"""Standard views of the graph: one profile per output vocabulary, each a set of SPARQL CONSTRUCT
files in mappings/views/ (usable with any SPARQL engine), selected by name or profile IRI.

A view describes one asset (its CONSTRUCT run with ?asset bound, over the asset's own graph and
the system graphs: ontology, vocabularies, the platform's catalogue) or the whole catalogue (its
catalogue queries over every graph the reader may see). Views never invent values: a property the
source lacks is left out, and the FAIR report names it.

Like ckanext-dcat's profiles, a new vocabulary is one more `View` in VIEWS: its CONSTRUCT files,
its profile IRI, and the asset kinds it describes. `ai4kg` is the asset's own graph, as stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import pyoxigraph as ox

from .search import Readers
from .store import SYSTEM_GRAPHS, KnowledgeGraph

NATIVE = "ai4kg"
"""The asset's own graph, in the platform's ontology (https://w3id.org/ai4kg/ns#)."""


@cache
def view_query(file: str) -> str:
    """A CONSTRUCT query from mappings/views/FILE."""
    return resources.files("ai4kg").joinpath(f"mappings/views/{file}").read_text("utf-8")


@dataclass(frozen=True)
class View:
    name: str
    """Short name: ?profile=NAME, `ai4kg export --profile NAME`."""
    profile: str
    """The profile's IRI (W3C content negotiation by profile: Accept-Profile / Content-Profile)."""
    title: str
    asset_query: str | None = None
    """CONSTRUCT file describing one asset, ?asset bound; None: the view has no per-asset form."""
    catalog_queries: tuple[str, ...] = ()
    """CONSTRUCT files whose union describes the whole catalogue (?asset unbound)."""
    kinds: frozenset[str] = field(default_factory=frozenset)
    """Asset kinds (ai4kg classes) the per-asset form describes."""

    def describes(self, kind: str) -> bool:
        return self.name == NATIVE or (self.asset_query is not None and kind in self.kinds)

    def describe(self, graph: KnowledgeGraph, iri: str) -> list[ox.Triple]:
        """The view of one asset; the caller has checked that the reader may see it."""
        if self.name == NATIVE:
            return [ox.Triple(q.subject, q.predicate, q.object) for q in graph.asset_quads(iri)]
        if self.asset_query is None:
            raise ValueError(f"the {self.name} view describes the catalogue only")
        dataset = [ox.NamedNode(iri), *(ox.NamedNode(g) for g in SYSTEM_GRAPHS)]
        return list(graph.query(view_query(self.asset_query), {"asset": ox.NamedNode(iri)},
                                default_graph=dataset, named_graphs=dataset))

    def catalog(self, graph: KnowledgeGraph, readers: Readers = None) -> list[ox.Triple]:
        """The view of the whole catalogue as `readers` may see it (None: everything)."""
        if not self.catalog_queries:
            raise ValueError(f"the {self.name} view has no catalogue form")
        options: dict[str, list[ox.NamedNode]] = {}
        if readers is not None and graph.index.has_restricted():
            dataset = [ox.NamedNode(g) for g in (*graph.index.visible_iris(readers), *SYSTEM_GRAPHS)]
            options = {"default_graph": dataset, "named_graphs": dataset}
        triples: dict[ox.Triple, None] = {}
        for file in self.catalog_queries:
            triples.update(dict.fromkeys(graph.query(view_query(file), **options)))
        return list(triples)


VIEWS: dict[str, View] = {view.name: view for view in (
    View(NATIVE, "https://w3id.org/ai4kg/ns", "ai4kg: the asset's own graph"),
    View("mldcat-ap", "https://semiceu.github.io/MLDCAT-AP/releases/3.1.0/", "MLDCAT-AP 3.1.0",
         asset_query="mldcat-ap.rq", catalog_queries=("mldcat-ap-catalog.rq", "mldcat-ap.rq"),
         kinds=frozenset({"Module"})),
    # One asset in DCAT-AP: the catalogue query with ?asset bound (the dataset and its catalogue).
    View("dcat-ap", "https://semiceu.github.io/DCAT-AP/releases/3.0.1/", "DCAT-AP 3.0.1",
         asset_query="dcat-ap-catalog.rq", catalog_queries=("dcat-ap-catalog.rq",), kinds=frozenset({"Module"})),
)}
"""Every view, by name."""


PREFIXES = {
    "adms": "http://www.w3.org/ns/adms#", "ai4kg": "https://w3id.org/ai4kg/ns#", "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/", "foaf": "http://xmlns.com/foaf/0.1/", "it6": "http://data.europa.eu/it6/",
    "prov": "http://www.w3.org/ns/prov#", "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "schema": "http://schema.org/", "skos": "http://www.w3.org/2004/02/skos/core#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}
"""Prefixes for readable Turtle and RDF/XML of the views."""


def serialize(triples: list[ox.Triple], format: ox.RdfFormat) -> bytes:
    """Triples in `format`, with the usual prefixes where the format has them."""
    triples = sorted(triples, key=lambda t: (str(t.subject), str(t.predicate)))  # each subject's lines together
    if format in (ox.RdfFormat.TURTLE, ox.RdfFormat.RDF_XML, ox.RdfFormat.TRIG):
        return ox.serialize(triples, format=format, prefixes=PREFIXES)
    return ox.serialize(triples, format=format)


class UnknownView(LookupError):
    pass


def view_of(token: str) -> View:
    """The view named `token`, or whose profile IRI it is (with or without angle brackets)."""
    token = token.strip().strip("<>")
    for view in VIEWS.values():
        if token in (view.name, view.profile, view.profile.rstrip("/")):
            return view
    raise UnknownView(f"no view {token!r}; views: {', '.join(VIEWS)} (or their profile IRIs: "
                      f"{', '.join(v.profile for v in VIEWS.values())})")
