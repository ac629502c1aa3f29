"""Standard views of the graph: one profile per output vocabulary, each a set of SPARQL CONSTRUCT
files in mappings/views/ (usable with any SPARQL engine), selected by name or profile IRI.

A view describes one asset (its CONSTRUCT run with ?asset bound, over the asset's own graph and
the system graphs: ontology, vocabularies, the platform's catalogue) or the whole catalogue (its
catalogue queries over every graph the reader may see). A view may have one CONSTRUCT per asset
kind (MLDCAT-AP: a module is a model, a deployment a data service, a training run a run, a dataset
a dataset); the asset's ai4kg class in its own graph picks it. Views never invent values: a
property the source lacks is left out, and the FAIR report names it.

Like ckanext-dcat's profiles, a new vocabulary is one more `View` in VIEWS: its CONSTRUCT files,
its profile IRI, and the asset kinds it describes. `ai4kg` is the asset's own graph, as stored.

A view with a JSON-LD context (a `{"@context": ...}` file in mappings/views/) is served as compact
JSON-LD in that context: one asset framed on the asset (its nodes nested under it, each once), a
catalogue compacted. pyld does the JSON-LD processing, offline: the contexts are embedded in the
output, and its document loader serves only the packaged context files, never the network.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any, Iterable, Literal

import pyoxigraph as ox

from ..threads import once

if TYPE_CHECKING:  # pyld (and the store) are imported where they are used: `ai4kg --help` reads VIEWS
    from .search import Readers
    from .store import KnowledgeGraph

NATIVE = "ai4kg"
"""The asset's own graph, in the platform's ontology (https://w3id.org/ai4kg/ns#)."""


@once
def view_query(file: str) -> str:
    """A CONSTRUCT query from mappings/views/FILE."""
    return resources.files("ai4kg").joinpath(f"mappings/views/{file}").read_text("utf-8")


@once
def view_context(file: str) -> dict[str, Any]:
    """A JSON-LD context document (`{"@context": ...}`) from mappings/views/FILE."""
    document = json.loads(view_query(file))
    if not isinstance(document, dict) or not isinstance(document.get("@context"), dict):
        raise ValueError(f"mappings/views/{file} is not a JSON-LD context document")
    return document


@dataclass(frozen=True)
class View:
    name: str
    """Short name: ?profile=NAME, `ai4kg export --profile NAME`."""
    profile: str
    """The profile's IRI (W3C content negotiation by profile: Accept-Profile / Content-Profile)."""
    title: str
    asset_query: str | None = None
    """CONSTRUCT file describing one asset, ?asset bound; None: the view has no per-asset form
    (but for the kinds of `asset_queries`)."""
    asset_queries: tuple[tuple[str, str], ...] = ()
    """(kind, CONSTRUCT file) for the kinds that have a per-asset query of their own, in place of
    `asset_query`; those kinds are among `kinds`."""
    catalog_queries: tuple[str, ...] = ()
    """CONSTRUCT files whose union describes the whole catalogue (?asset unbound)."""
    kinds: frozenset[str] = field(default_factory=frozenset)
    """Asset kinds (ai4kg classes) the per-asset form describes."""
    context: str | None = None
    """JSON-LD context file in mappings/views/ for compact JSON-LD; None: expanded JSON-LD (pyoxigraph's)."""
    linked: bool = False
    """Whether the per-asset CONSTRUCT also reads the graphs of the other assets the reader may see
    (agents, datasets, activities linked with the asset); else only the asset's own graph."""
    neighbour_kinds: frozenset[str] = field(default_factory=frozenset)
    """Kinds whose per-asset CONSTRUCT reads, besides the asset's own graph, the graphs of its
    neighbours the reader may see: the assets it names, and those that name it with a property of
    `inbound` (one link; a query for such a kind reads nothing further)."""
    inbound: tuple[str, ...] = ()
    """Properties (IRIs) whose links to an asset of a neighbour kind its query reads, e.g. the
    activity that produced a dataset."""
    aliases: tuple[str, ...] = ()
    """Other IRIs of the profile that select this view (e.g. the unversioned namespace)."""
    retyped: tuple[tuple[str, str], ...] = ()
    """(property, datatype derived from xsd:integer): the datatype the CONSTRUCT gives the
    property's values with STRDT. Oxigraph keeps no datatype derived from xsd:integer (it writes
    xsd:integer instead, in the store and in query results), so the view puts it back."""

    def describes(self, kind: str) -> bool:
        per_asset = self.asset_query is not None or bool(self.asset_queries)
        return self.name == NATIVE or (per_asset and kind in self.kinds)

    def asset_query_of(self, graph: KnowledgeGraph, iri: str) -> tuple[str | None, Reach]:
        """The per-asset CONSTRUCT file for the asset's kind (its ai4kg class, read from its own
        graph, when the view has queries per kind), and which graphs it reads."""
        reach: Reach = "linked" if self.linked else "own"
        if self.asset_queries:
            by_kind = dict(self.asset_queries)
            node = ox.NamedNode(iri)
            for quad in graph.store.quads_for_pattern(node, _RDF_TYPE_NODE, None, node):
                kind = quad.object.value.removeprefix(_AI4KG)
                if kind in by_kind:
                    return by_kind[kind], "neighbours" if kind in self.neighbour_kinds and not self.linked else reach
        return self.asset_query, reach

    def describe(self, graph: KnowledgeGraph, iri: str, readers: Readers = None) -> list[ox.Triple]:
        """The view of one asset; the caller has checked that the reader may see it. A linked
        view reads the other assets `readers` may see (None: every asset), a view of a neighbour
        kind those of its neighbours."""
        if self.name == NATIVE:
            return [ox.Triple(q.subject, q.predicate, q.object) for q in graph.asset_quads(iri)]
        if self.asset_query is None and not self.asset_queries:
            raise ValueError(f"the {self.name} view describes the catalogue only")
        query, reach = self.asset_query_of(graph, iri)
        if query is None:  # a kind the view does not describe
            return []
        from .store import SYSTEM_GRAPHS

        options: dict[str, list[ox.NamedNode]] = {}
        if reach == "own":
            dataset = [ox.NamedNode(iri), *(ox.NamedNode(g) for g in SYSTEM_GRAPHS)]
            options = {"default_graph": dataset, "named_graphs": dataset}
        elif readers is not None and graph.index.has_restricted():
            # Oxigraph reads a dataset of many graphs graph by graph at every step: a neighbour
            # kind's query over its neighbours' graphs alone takes ~1 ms in a store of 3,000 assets
            # (40 ms over every visible graph)
            visible: Iterable[str] = graph.index.visible_iris(readers)
            if reach == "neighbours":
                visible = _neighbours(graph, iri, self.inbound) & set(visible)
            dataset = [ox.NamedNode(g) for g in dict.fromkeys((iri, *visible, *SYSTEM_GRAPHS))]
            options = {"default_graph": dataset, "named_graphs": dataset}
        return self._retype(list(graph.query(view_query(query), {"asset": ox.NamedNode(iri)}, **options)))

    def _retype(self, triples: list[ox.Triple]) -> list[ox.Triple]:
        """The triples with the datatypes of `retyped` on the integer values of those properties."""
        if not self.retyped:
            return triples
        datatypes = {prop: ox.NamedNode(datatype) for prop, datatype in self.retyped}
        return [ox.Triple(t.subject, t.predicate, ox.Literal(t.object.value, datatype=datatypes[t.predicate.value]))
                if t.predicate.value in datatypes and isinstance(t.object, ox.Literal)
                and t.object.datatype.value == _XSD + "integer" and not t.object.value.startswith("-") else t
                for t in triples]

    def to_jsonld(self, triples: list[ox.Triple], root: str | None = None) -> dict[str, Any]:
        """The triples as compact JSON-LD in the view's context: framed on `root` (its nodes
        nested under it, each once) when every node hangs off it, else compacted (`@graph`)."""
        if self.context is None:
            raise ValueError(f"the {self.name} view has no JSON-LD context")
        from pyld import jsonld

        context = view_context(self.context)
        nodes = _expanded(triples)
        options = {"documentLoader": _packaged_document}
        if root is not None and _all_reachable(triples, root):
            return jsonld.frame(nodes, {**context, "@id": root}, options)
        return jsonld.compact(nodes, context, options)

    def catalog(self, graph: KnowledgeGraph, readers: Readers = None) -> list[ox.Triple]:
        """The view of the whole catalogue as `readers` may see it (None: everything)."""
        if not self.catalog_queries:
            raise ValueError(f"the {self.name} view has no catalogue form")
        from .store import SYSTEM_GRAPHS

        options: dict[str, list[ox.NamedNode]] = {}
        visible: ox.Store | None = None
        if readers is not None and graph.index.has_restricted():
            dataset = [ox.NamedNode(g) for g in (*graph.index.visible_iris(readers), *SYSTEM_GRAPHS)]
            if isinstance(graph.store, ox.Store):
                # Oxigraph reads a dataset of many named graphs graph by graph at every step of a query
                # (3,000 assets: a minute per catalogue); a store of the visible graphs alone gives the
                # same answer over its union, in milliseconds (the copy: ~35 ms for 18,000 quads).
                visible = ox.Store()
                visible.bulk_extend(q for name in dataset for q in graph.store.quads_for_pattern(None, None, None, name))
            else:
                options = {"default_graph": dataset, "named_graphs": dataset}
        triples: dict[ox.Triple, None] = {}
        for file in self.catalog_queries:
            query = view_query(file)
            answer = (graph.query(query, **options) if visible is None
                      else visible.query(query, use_default_graph_as_union=True))
            triples.update(dict.fromkeys(answer))
        return self._retype(list(triples))


Reach = Literal["own", "linked", "neighbours"]
"""Which graphs a per-asset CONSTRUCT reads besides the system graphs: the asset's own, those of
every asset the reader may see, or those of the asset's neighbours the reader may see."""


def _neighbours(graph: KnowledgeGraph, iri: str, inbound: tuple[str, ...]) -> set[str]:
    """The graphs one link away from the asset: named by its own triples' objects, or holding a
    triple with a property of `inbound` whose object is the asset (a name that is no graph, such as
    a #fragment, matches none)."""
    node = ox.NamedNode(iri)
    named = {q.object.value for q in graph.store.quads_for_pattern(None, None, None, node)
             if isinstance(q.object, ox.NamedNode)}
    naming = {q.graph_name.value for prop in inbound
              for q in graph.store.quads_for_pattern(None, ox.NamedNode(prop), node, None)
              if isinstance(q.graph_name, ox.NamedNode)}
    return named | naming


_AI4KG = "https://w3id.org/ai4kg/ns#"
_RDF_TYPE_NODE = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
_MLDCAT_AP_KINDS = (
    *((kind, "mldcat-ap-service.rq") for kind in ("ModuleDeployment", "TryMeDeployment", "ToolDeployment", "Deployment")),
    ("TrainingRun", "mldcat-ap-run.rq"), ("Dataset", "mldcat-ap-dataset.rq"))
"""The MLDCAT-AP view's per-kind queries besides the module's (mldcat-ap.rq)."""

VIEWS: dict[str, View] = {view.name: view for view in (
    View(NATIVE, "https://w3id.org/ai4kg/ns", "ai4kg: the asset's own graph"),
    # A module is an it6:MachineLearningModel (over its own graph); a deployment a dcat:DataService,
    # a training run an it6:Run, a dataset a dcat:Dataset, each also over its neighbours' graphs
    # (the served model's labels, agents' names, the activities that produced a dataset).
    View("mldcat-ap", "https://semiceu.github.io/MLDCAT-AP/releases/3.1.0/", "MLDCAT-AP 3.1.0",
         asset_query="mldcat-ap.rq", asset_queries=_MLDCAT_AP_KINDS,
         catalog_queries=("mldcat-ap-catalog.rq", "mldcat-ap.rq", *dict.fromkeys(f for _, f in _MLDCAT_AP_KINDS)),
         kinds=frozenset({"Module", *(kind for kind, _ in _MLDCAT_AP_KINDS)}),
         neighbour_kinds=frozenset(kind for kind, _ in _MLDCAT_AP_KINDS), inbound=(_AI4KG + "produced",),
         retyped=(("http://www.w3.org/ns/dcat#byteSize", "http://www.w3.org/2001/XMLSchema#nonNegativeInteger"),)),
    # One asset in DCAT-AP: the catalogue query with ?asset bound (the dataset and its catalogue).
    View("dcat-ap", "https://semiceu.github.io/DCAT-AP/releases/3.0.1/", "DCAT-AP 3.0.1",
         asset_query="dcat-ap-catalog.rq", catalog_queries=("dcat-ap-catalog.rq",), kinds=frozenset({"Module"})),
    # The profile IRI is the version IRI that the FAIR4ML 0.1.0 vocabulary file declares.
    View("fair4ml", "https://w3id.org/fair4ml/0.1.0", "FAIR4ML 0.1.0 (schema.org)", asset_query="fair4ml.rq",
         catalog_queries=("fair4ml.rq",), kinds=frozenset({"Module"}), context="fair4ml.context.jsonld", linked=True,
         aliases=("https://w3id.org/fair4ml", "https://w3id.org/fair4ml/", "https://w3id.org/fair4ml#")),
    # A Croissant document describes one dataset: no catalogue form.
    View("croissant", "http://mlcommons.org/croissant/1.1", "Croissant 1.1", asset_query="croissant.rq",
         kinds=frozenset({"Dataset"}), context="croissant.context.jsonld", linked=True),
    View("prov", "http://www.w3.org/ns/prov#", "PROV-O", asset_query="prov.rq", catalog_queries=("prov.rq",),
         kinds=frozenset({"Module", "Tool", "Dataset"}), context="prov.context.jsonld", linked=True,
         aliases=("http://www.w3.org/ns/prov", "http://www.w3.org/ns/prov-o", "https://www.w3.org/TR/prov-o/")),
)}
"""Every view, by name."""


PREFIXES = {
    "adms": "http://www.w3.org/ns/adms#", "ai4kg": "https://w3id.org/ai4kg/ns#", "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/", "foaf": "http://xmlns.com/foaf/0.1/", "it6": "http://data.europa.eu/it6/",
    "prov": "http://www.w3.org/ns/prov#", "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "schema": "http://schema.org/", "skos": "http://www.w3.org/2004/02/skos/core#",
    "xsd": "http://www.w3.org/2001/XMLSchema#", "fair4ml": "https://w3id.org/fair4ml#",
    "sc": "https://schema.org/", "cr": "http://mlcommons.org/croissant/",
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
        if token in (view.name, view.profile, view.profile.rstrip("/"), *view.aliases):
            return view
    raise UnknownView(f"no view {token!r}; views: {', '.join(VIEWS)} (or their profile IRIs: "
                      f"{', '.join(v.profile for v in VIEWS.values())})")


# -- JSON-LD -----------------------------------------------------------------------------------------
_XSD = "http://www.w3.org/2001/XMLSchema#"
_RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
_INTEGER = re.compile(r"-?(0|[1-9][0-9]{0,14})")


def _node_id(term: ox.NamedNode | ox.BlankNode) -> str:
    return f"_:{term.value}" if isinstance(term, ox.BlankNode) else term.value


def _value(term: Any) -> dict[str, Any]:
    """An RDF term as an expanded JSON-LD value; integers and booleans in their canonical form as
    JSON numbers and booleans (they turn back into the same literal)."""
    if not isinstance(term, ox.Literal):
        return {"@id": _node_id(term)}
    if term.language:
        return {"@value": term.value, "@language": term.language}
    datatype = term.datatype.value
    if datatype == _XSD + "string":
        return {"@value": term.value}
    if datatype == _XSD + "integer" and _INTEGER.fullmatch(term.value):
        return {"@value": int(term.value)}
    if datatype == _XSD + "boolean" and term.value in ("true", "false"):
        return {"@value": term.value == "true"}
    return {"@value": term.value, "@type": datatype}


def _expanded(triples: list[ox.Triple]) -> list[dict[str, Any]]:
    """Triples as expanded JSON-LD, one node object per subject (what JSON-LD's fromRdf gives)."""
    nodes: dict[str, dict[str, Any]] = {}
    for triple in triples:
        node = nodes.setdefault(_node_id(triple.subject), {"@id": _node_id(triple.subject)})
        if triple.predicate.value == _RDF_TYPE and not isinstance(triple.object, ox.Literal):
            node.setdefault("@type", []).append(_node_id(triple.object))
        else:
            node.setdefault(triple.predicate.value, []).append(_value(triple.object))
    return list(nodes.values())


def _all_reachable(triples: list[ox.Triple], root: str) -> bool:
    """Whether every subject can be reached from `root` by following objects (framing on the root
    would leave the others out)."""
    links: dict[str, list[str]] = {}
    for triple in triples:
        if not isinstance(triple.object, ox.Literal):
            links.setdefault(_node_id(triple.subject), []).append(_node_id(triple.object))
    seen, frontier = {root}, [root]
    while frontier:
        for target in links.get(frontier.pop(), ()):
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    return all(_node_id(t.subject) in seen for t in triples)


def _packaged_document(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """pyld's document loader: the packaged context files by name, and nothing from the network."""
    from pyld import jsonld

    if re.fullmatch(r"[a-z0-9-]+\.context\.jsonld", url):
        try:
            return {"contextUrl": None, "documentUrl": url, "document": view_context(url)}
        except FileNotFoundError:
            pass
    raise jsonld.JsonLdError(f"ai4kg loads no JSON-LD document from {url!r}: its contexts are embedded",
                             "jsonld.LoadDocumentError", code="loading document failed")
