"""Per request: the Context (graph, readers, identity, deployments service) and its DataLoaders, and
the assets as read from the store (`Asset`, the graph reads and the link and date queries)."""

from __future__ import annotations

import datetime
from collections import defaultdict
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Iterable

import pyoxigraph as ox
import strawberry
from strawberry.dataloader import DataLoader
from strawberry.fastapi import BaseContext

from ...catalog import document_of
from ...graph.hierarchy import subclasses
from ...graph.namespaces import AI4KG, RDF_TYPE, VOCAB
from ...graph.search import PUBLIC, Readers
from ...graph.store import KnowledgeGraph
from ...threads import once
from ...workloads.service import Deployments
from .. import access
from ..auth import Identity
from .limits import LINK_BATCH

_TOOLS_CONCEPT = f"{VOCAB}category/ai4-tools"


# -- assets as read from the store ------------------------------------------------------------

@once
def _subclasses() -> dict[str, frozenset[str]]:
    """ai4kg class name -> it and all its subclasses (names), from the packaged ontology."""
    return {name: frozenset(iri[len(AI4KG):] for iri in subclasses(AI4KG + name) if iri.startswith(AI4KG))
            for name in ("Application", "Module", "Tool", "Deployment", "TrainingRun", "Dataset",
                         "FederatedSession", "FederatedRound")}


@dataclass
class Asset:
    """One asset, as the reader may see it: the statements its graph makes about it and its
    #fragment nodes (what document_of and search_document read)."""

    iri: str
    triples: list[Any]
    """ox.Quad or ox.Triple: what document_of and search_document read is subject, predicate, object."""
    vo: str
    """The VO that owns it, as the search index has it (search_document's reading of its graph)."""
    visibility: str
    read: bool = True
    """False for an application listed from its index row alone (`_indexed`): no statements read."""

    def _statements(self) -> list[Any]:
        if not self.read:  # a listing decided its graph was not needed (_reads_documents): a bug if reached
            raise RuntimeError(f"{self.iri}: listed from the index, its graph was not read")
        return self.triples

    @cached_property
    def classes(self) -> frozenset[str]:
        return frozenset(term.value[len(AI4KG):] for term in self.objects(RDF_TYPE) if term.value.startswith(AI4KG))

    def is_a(self, name: str) -> bool:
        return bool(self.classes & _subclasses()[name])

    @property
    def is_tool(self) -> bool:
        return self.is_a("Tool") or any(term.value == _TOOLS_CONCEPT for term in self.objects(AI4KG + "category"))

    def objects(self, predicate: str) -> list[ox.NamedNode | ox.Literal | ox.BlankNode]:
        """The values of the asset's own statements with `predicate`, in a stable order."""
        found = [t.object for t in self._statements() if t.subject.value == self.iri and t.predicate.value == predicate]
        return sorted(found, key=lambda term: term.value)

    def text(self, name: str) -> str | None:
        values = self.objects(AI4KG + name)
        return values[0].value if values else None

    def iris(self, name: str) -> list[str]:
        return [term.value for term in self.objects(AI4KG + name) if isinstance(term, ox.NamedNode)]

    @cached_property
    def document(self) -> dict[str, Any]:
        """The ai4-metadata document (2.x), as REST's metadata endpoint serves it."""
        return document_of(self._statements(), "v2")


def _visible(owner: tuple[str, str] | None, readers: Readers) -> bool:
    """The rule of access.visible_quads and the index: public, or in one of the reader's VOs."""
    return owner is not None and (readers is None or owner[1] == PUBLIC or owner[0] in readers)


_VO, _VISIBILITY = AI4KG + "belongsToVO", AI4KG + "visibility"
_ENTRY_PREDICATES = frozenset({RDF_TYPE, _VO, _VISIBILITY})
"""What tells who may see an asset: whether it is one (an ai4kg type), its VO and its visibility."""
_ENTRY_NODES = frozenset(ox.NamedNode(predicate) for predicate in _ENTRY_PREDICATES)


def _owner(entry: Iterable[Any]) -> tuple[str, str] | None:
    """(VO, visibility) from an asset's statements with _ENTRY_PREDICATES, read as search_document
    reads them for the index (None when it has no ai4kg type: not an asset)."""
    typed, vo, visibility = False, "", PUBLIC
    for statement in entry:
        predicate = statement.predicate.value
        if predicate == RDF_TYPE:
            typed = typed or statement.object.value.startswith(AI4KG)
        elif predicate == _VO:
            vo = statement.object.value.rsplit("/", 1)[-1]
        elif predicate == _VISIBILITY:
            visibility = statement.object.value.rsplit("/", 1)[-1]
    return (vo, visibility) if typed else None


_ASSET_TRIPLES = ('CONSTRUCT { ?s ?p ?o } WHERE { GRAPH ?g { ?s ?p ?o } '
                  'FILTER(?s = ?g || STRSTARTS(STR(?s), CONCAT(STR(?g), "#"))) }')
"""What each named graph says about its own asset and the asset's #fragment nodes, so that a triple's
subject tells its graph: one query for any number of assets, for a remote SPARQL store (one round
trip instead of one per asset)."""


def _embedded(graph: KnowledgeGraph) -> bool:
    """Whether the store is the embedded Oxigraph (not a SPARQL server: AI4KG_SPARQL_STORE)."""
    return graph.settings.sparql_store_url is None


Statements = tuple[list[Any], list[Any]]
"""An asset's own statements (ox.Quad or ox.Triple), and among them those with _ENTRY_PREDICATES."""


def _own_statements(graph: KnowledgeGraph, wanted: dict[str, ox.NamedNode]) -> dict[str, Statements]:
    """For each asset: what its graph says about it and its #fragment nodes."""
    return _read_graphs(graph, wanted) if _embedded(graph) else _construct_graphs(graph, wanted)


def _read_graphs(graph: KnowledgeGraph, wanted: dict[str, ox.NamedNode]) -> dict[str, Statements]:
    """Graph by graph (quads): from the embedded store a point read each, no query to plan, about
    twice as fast as the CONSTRUCT over the same graphs."""
    found: dict[str, Statements] = {}
    for iri, node in wanted.items():
        fragment = iri + "#"
        own: list[Any] = []
        entry: list[Any] = []
        for quad in graph.asset_quads(iri):
            subject = quad.subject
            if subject == node:  # terms compared as terms: no string made for each
                own.append(quad)
                if quad.predicate in _ENTRY_NODES:
                    entry.append(quad)
            elif subject.value.startswith(fragment):
                own.append(quad)
        found[iri] = (own, entry)
    return found


def _construct_graphs(graph: KnowledgeGraph, wanted: dict[str, ox.NamedNode]) -> dict[str, Statements]:
    """All graphs in one query (triples): one round trip to a store server."""
    found: dict[str, Statements] = {}
    for triple in graph.query(_ASSET_TRIPLES, default_graph=[], named_graphs=list(wanted.values())):
        subject = triple.subject.value
        own, entry = found.setdefault(subject if subject in wanted else subject.rsplit("#", 1)[0], ([], []))
        own.append(triple)
        if subject in wanted and triple.predicate.value in _ENTRY_PREDICATES:
            entry.append(triple)
    return found


def _load_assets(graph: KnowledgeGraph, iris: list[str], readers: Readers) -> list[Asset | None]:
    """The visible assets among `iris` (None for missing or hidden ones). Nothing of the IRIs enters
    a query text: they name the graphs to read."""
    wanted: dict[str, ox.NamedNode] = {}
    for iri in iris:
        try:
            wanted[iri] = ox.NamedNode(iri)
        except ValueError:
            continue
    statements = _own_statements(graph, wanted) if wanted else {}
    found: list[Asset | None] = []
    for iri in iris:
        own, entry = statements.get(iri, ([], []))
        owner = _owner(entry)
        found.append(Asset(iri, own, *owner) if owner is not None and _visible(owner, readers) else None)
    return found


def _inverse_query(size: int) -> str:
    """Subjects whose own graph says `?s ?p <key>`, for `size` keys bound as ?k0 ... (SEP-0007 wants
    every bound variable in the projection)."""
    keys = " ".join(f"?k{i}" for i in range(size))
    branches = " UNION ".join(f"{{ GRAPH ?s {{ ?s ?p ?k{i} }} BIND(?k{i} AS ?o) }}" for i in range(size))
    return f"SELECT ?s ?o ?p {keys} WHERE {{ {branches} }}"


def _load_inverse(graph: KnowledgeGraph, keys: list[tuple[str, str]]) -> list[list[str]]:
    """For each (predicate, object IRI): the assets that state it about the object, by IRI."""
    found: dict[tuple[str, str], set[str]] = defaultdict(set)
    by_predicate: dict[str, list[str]] = defaultdict(list)
    for predicate, target in dict.fromkeys(keys):
        by_predicate[predicate].append(target)
    for predicate, targets in by_predicate.items():
        for start in range(0, len(targets), LINK_BATCH):
            chunk = []
            for target in targets[start:start + LINK_BATCH]:
                try:
                    chunk.append(ox.NamedNode(target))
                except ValueError:
                    continue
            if not chunk:
                continue
            bindings: dict[str, ox.NamedNode | ox.Literal] = {f"k{i}": node for i, node in enumerate(chunk)}
            bindings["p"] = ox.NamedNode(predicate)
            for row in graph.query(_inverse_query(len(chunk)), bindings):
                found[(predicate, row["o"].value)].add(row["s"].value)
    return [sorted(found.get(key, ())) for key in keys]


_DATE_QUERY = ("SELECT ?a ?p ?start ?end WHERE { GRAPH ?a { ?a ?p ?d } "
               "FILTER(STR(?d) >= ?start && STR(?d) <= ?end) }")


def _dated(graph: KnowledgeGraph, name: str, start: datetime.date | None, end: datetime.date | None) -> frozenset[str]:
    """The assets whose `name` date (created / updated) lies in [start, end]."""
    bindings = {"p": ox.NamedNode(AI4KG + name), "start": ox.Literal(start.isoformat() if start else ""),
                "end": ox.Literal(end.isoformat() if end else "9999-12-31")}
    return frozenset(row["a"].value for row in graph.query(_DATE_QUERY, bindings))


# -- per request ---------------------------------------------------------------------------------

class Context(BaseContext):
    def __init__(self, graph: KnowledgeGraph, readers: Readers, identity: Identity | None = None,
                 deployments: Deployments | None = None):
        super().__init__()
        self.graph, self.readers, self.identity = graph, readers, identity
        self.deployments = deployments
        """The deployments service (workloads/service.py), None where this endpoint serves none."""
        self.assets: DataLoader[str, Asset | None] = DataLoader(self._assets)
        self.inverse: DataLoader[tuple[str, str], list[str]] = DataLoader(self._inverse)

    async def _assets(self, iris: list[str]) -> list[Asset | None]:
        if len(iris) == 1 and _embedded(self.graph):  # one graph read is shorter than a worker-thread hop
            return _load_assets(self.graph, iris, self.readers)
        return await access.read(self.graph, _load_assets, self.graph, iris, self.readers)

    def forget(self) -> None:
        """Drop what this request has read: after a write it may be stale."""
        self.assets.clear_all()
        self.inverse.clear_all()

    async def _inverse(self, keys: list[tuple[str, str]]) -> list[list[str]]:
        return await access.read(self.graph, _load_inverse, self.graph, keys)

    async def linked(self, iris: Iterable[str], wanted: str) -> list[Asset]:
        """The visible assets among `iris` that are of class `wanted` (or a subclass)."""
        loaded = await self.assets.load_many(list(iris))
        return [asset for asset in loaded if asset is not None and asset.is_a(wanted)]

    async def pointing_at(self, predicate: str, iri: str, wanted: str) -> list[Asset]:
        """The visible assets of class `wanted` whose graph says <them> predicate <iri>."""
        return await self.linked(await self.inverse.load((AI4KG + predicate, iri)), wanted)


Info = strawberry.Info[Context, None]
