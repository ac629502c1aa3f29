"""GraphQL at /graphql (strawberry): the catalog and the activities around it; publishing modules.

    modules(filter, sort, first, after) / tools(...)   Relay connections, keyset cursors
    module(name) / tool(name)                          one application, or null
    deployment / trainingRun / dataset / federatedSession(identifier)
    lineage(iri, direction, depth)                     provenance: what a node came from, or what came from it
    mutation publishModule(name, metadata, format, vo, visibility) / withdrawModule(name)
    deployments(owner, vo, status, kind, module, datacenter, first, after)   what the platform runs:
    deploymentRecord(identifier)                                             the deployments service
    mutation createDeployment(request) / deleteDeployment(identifier)        (REST's /v1/deployments)

Types: Module and Tool (both `Application`), Deployment, TrainingRun, Dataset and FederatedSession,
with their links both ways: Module.deployments and Module.trainingRuns, TrainingRun.module and
TrainingRun.datasets, Deployment.module, Dataset.trainingRuns ... Tools are the modules in the
"AI4 tools" category, as in the REST catalog.

Reads go the same ways as REST: listings through `SearchIndex.filter` (facets, keyset pages,
VO visibility), an application's fields through `catalog.document_of`, and links through
parameterised SPARQL over the ontology terms (ai4kg:deploys, ai4kg:trainedModule,
ai4kg:usedDataset): values are bound as variables, never pasted into query text. Every request's
reader comes from `access.readers_of`, and every asset it reaches, listed or linked, passes the same
visibility rule, so other VOs' non-public assets never appear (links to them are left out, or null).

Lookups are batched per request with DataLoaders: the graphs of all the assets a level of the answer
needs are read together, and the links pointing at them with one SELECT per 20 assets (Oxigraph's
planning time grows with the square of a UNION's branches; 20 keeps each query under a
millisecond). From the embedded store each graph is a point read (no query to plan: twice as fast
as one CONSTRUCT over the same graphs); from a SPARQL server (AI4KG_SPARQL_STORE) the graphs come
in one CONSTRUCT, one round trip, named by the protocol dataset. A page of 50 modules with their
deployments takes one index page, the 50 module graphs, 3 link queries and the deployments'
graphs; the deployments' `module` links are the page's modules, not read again. A listing reads its
index page in one worker-thread hop: the index rows (`SearchIndex.filter`) carry each asset's sort
value, VO and visibility, enough for the cursors, the order of merged branches and the vo /
visibility fields, and the index query has already left out what the reader may not see. Only when
the query asks for fields of the ai4-metadata document are the page's graphs read (in the same hop,
documents included), and then the visibility their statements give is checked once more on the way.
An application's fields are plain attributes to strawberry, computed from the asset when read, and
such plain fields (most of a page) are completed by a short way past graphql-core's per-field
machinery (`_ExecutionContext`), with graphql-core's usual way for anything out of the ordinary.

Filters compose with and / or / not over tags, tasks, libraries, categories and data types
(`in`: at least one of, `all`: every one of), created / updated date ranges and free text. The
filter is brought into disjunctive normal form; each AND branch becomes one `FacetQuery`
(negation maps onto none_of / not_all_of), each branch is read up to first + 1 rows after the
cursor, and the branches are merged by (sort value, IRI), so an OR across fields keeps the sort
order and the keyset cursors. Date ranges are not in the search index: the IRIs whose date falls in
a range come from one SPARQL query, and a branch with a date condition reads the index page by page
until it has first + 1 matches (exact pages, at a cost that grows with the rows it skips; a range
on the sort key itself becomes a keyset window, so only rows inside it are read).

Limits: query depth, tokens and aliases (strawberry's validators; the parse and validation of the
last 256 query texts are kept, so a repeated query is neither parsed nor walked again); `first` at
most 100; a filter nests at most 8 levels, holds at most 64 conditions of at most 100 values each,
and expands to at most 16 branches. Linked lists (Module.deployments ...) are not paged: each lists
every visible link.

GraphQL-over-HTTP: responses are application/graphql-response+json when the client accepts it
(requests that fail before execution then get 400 and no `data`), otherwise application/json with
200; bad JSON or parameters get 400, other request bodies 415, other methods 405 (and a mutation
sent with GET 405, Allow: POST), an Accept that allows neither JSON type 406.

Mutations go through api/publishing.py, as REST's PUT and DELETE /v1/catalog/modules/{name}/metadata
do: the same rights (credentials from the request; a member of a VO publishes for that VO; another
VO's module can be neither replaced nor withdrawn, nor seen to exist if it is not public) and the
same validated import (schema, mapping, SHACL; any error writes nothing). A refusal is a GraphQL
error with the problem's detail as message and, in extensions, `code` (UNAUTHENTICATED, FORBIDDEN,
NOT_FOUND, BAD_USER_INPUT), `status` (REST's HTTP status) and the `argument` at fault, or for
invalid metadata `invalidParams`: each field with its rule, reason and value. publishModule answers
the module as re-read from the store after the write.

Deployments the platform runs come from the deployments service (workloads/service.Deployments),
the one REST's /v1/deployments uses, handed to `router`: `deployments`, `deploymentRecord`,
createDeployment and deleteDeployment call its find / get / create / delete in a worker thread, with
REST's rights (credentials needed, else UNAUTHENTICATED; the owner, the VO's members and
administrators read; the owner and administrators delete; what one may not see is null, or
NOT_FOUND), REST's request document (createDeployment's `request`, an object or its JSON text), REST's
cursors, and REST's refusals (each field, rule and value in invalidParams, argument `request`).
DeploymentRecord is the service's record (REST's JSON, in GraphQL's names); `Deployment` stays the
knowledge graph's record of a deployment, whatever ran it, read under the graph's visibility rule.
Without a service (`router(graph)`), the deployment fields answer "deployments are not served here".
"""

from __future__ import annotations

import datetime
import functools
import json
import operator
import re
from collections import defaultdict
from dataclasses import dataclass, field, replace
from enum import Enum
from functools import cached_property
from importlib import resources
from typing import Annotated, Any, Callable, Generic, Iterable, Iterator, Optional, TypeVar

import anyio.to_thread
import pyoxigraph as ox
import strawberry
from cross_web import HTTPException
from fastapi import APIRouter, Request
from fastapi.responses import Response
from graphql import (GraphQLError, GraphQLList, GraphQLNonNull, GraphQLObjectType, GraphQLString, Undefined,
                     is_leaf_type)
from starlette.requests import HTTPConnection
from strawberry.dataloader import DataLoader
from strawberry.extensions import (AddValidationRules, MaskErrors, MaxAliasesLimiter, MaxTokensLimiter, ParserCache,
                                   QueryDepthLimiter, ValidationCache)
from strawberry.fastapi import BaseContext, GraphQLRouter
from strawberry.scalars import JSON
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.execution import PreExecutionError
from strawberry.types.nodes import SelectedField
from strawberry.types.unset import UNSET

from ..catalog import document_of
from ..graph.namespaces import AI4KG, MLS, PROV, RDF_TYPE, RDFS_LABEL, VOCAB, asset_iri
from ..graph.search import PUBLIC, FacetQuery, IndexRow, Readers
from ..graph.store import KnowledgeGraph
from ..metadata import vocabulary
from ..metadata.records import is_valid_identifier
from ..workloads import records as deployment_records
from ..workloads.service import DeploymentRejected, Deployments
from ..threads import once
from . import access, cursors
from .auth import Identity, identity_of
from .deployments import MAX_REQUEST_BYTES, cursor_after, cursor_of, requester_of
from .limits import loads_json
from .negotiation import negotiate
from .problems import Problem, jsonable
from .publishing import publish_module, withdraw_module, writer

PATH = "/graphql"
DEFAULT_FIRST = 20
MAX_FIRST = 100
MAX_DEPTH = 10
MAX_TOKENS = 2000
MAX_ALIASES = 20
MAX_BRANCHES = 16
"""AND branches a filter may expand to (each is one index query)."""
MAX_FILTER_DEPTH = 8
"""Nesting of and / or / not (variables are not bound by the token limit)."""
MAX_CONDITIONS = 64
"""Conditions (value lists, date ranges, texts) in one filter."""
MAX_VALUES = 100
"""Values in one `in` or `all` list."""
LINK_BATCH = 20
"""Assets per SPARQL query that looks up the links pointing at them."""
SCAN_PAGE = 500
"""Index rows read at a time by a branch that also filters on dates."""

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON_MEDIA = "application/json"
TOOLS_CATEGORY = ("category", "ai4-tools")
_TOOLS_CONCEPT = f"{VOCAB}category/ai4-tools"
_RDFS_SUBCLASS = "http://www.w3.org/2000/01/rdf-schema#subClassOf"


# -- assets as read from the store ------------------------------------------------------------

@once
def _subclasses() -> dict[str, frozenset[str]]:
    """ai4kg class name -> it and all its subclasses (names), from the packaged ontology."""
    data = resources.files("ai4kg").joinpath("ontology/ai4kg.ttl").read_bytes()
    children: dict[str, set[str]] = defaultdict(set)
    for triple in ox.parse(input=data, format=ox.RdfFormat.TURTLE):
        if triple.predicate.value == _RDFS_SUBCLASS and triple.subject.value.startswith(AI4KG) \
                and triple.object.value.startswith(AI4KG):
            children[triple.object.value[len(AI4KG):]].add(triple.subject.value[len(AI4KG):])

    def closure(name: str) -> frozenset[str]:
        found, unvisited = {name}, [name]
        while unvisited:
            for child in children[unvisited.pop()]:
                if child not in found:
                    found.add(child)
                    unvisited.append(child)
        return frozenset(found)

    return {name: closure(name) for name in ("Application", "Module", "Tool", "Deployment", "TrainingRun",
                                             "Dataset", "FederatedSession", "FederatedRound")}


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


# -- errors ------------------------------------------------------------------------------------

class InputError(GraphQLError):
    """A bad argument: the message says what to change, extensions name the argument and value."""

    def __init__(self, message: str, argument: str, value: Any = None):
        super().__init__(message, extensions={"code": "BAD_USER_INPUT", "argument": argument, "value": value})


def _unexpected(error: GraphQLError) -> bool:
    """Errors that are not ours to explain (a bug, a store failure) lose their message."""
    return error.original_error is not None and not isinstance(error.original_error, GraphQLError)


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


# -- types ---------------------------------------------------------------------------------------

def _date(value: str | None) -> datetime.date | None:
    try:
        return datetime.date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _datetime(value: str | None) -> datetime.datetime | None:
    try:
        return datetime.datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _bool(value: str | None) -> bool | None:
    return None if value is None else value in ("true", "1")


@strawberry.type(description="Links of an application's ai4-metadata `links` section.")
class Links:
    source_code: Optional[str] = strawberry.field(description="links.source_code")
    docker_image: Optional[str] = strawberry.field(description="links.docker_image (an image reference, not a URL)")
    documentation: Optional[str] = strawberry.field(description="links.documentation")
    dataset: Optional[str] = strawberry.field(description="links.dataset: the data the model was trained on")
    weights: Optional[str] = strawberry.field(description="links.weights")
    citation: Optional[str] = strawberry.field(description="links.citation")
    base_model: Optional[str] = strawberry.field(description="links.base_model")


@strawberry.interface(description="An entry of the catalog described by an ai4-metadata document: a module or a tool.")
class Application:
    # Plain fields, not resolvers: strawberry reads them as attributes, its fast path (no Info, no
    # argument parsing per field). The objects handed out are _Module and _Tool, whose properties
    # (_ApplicationFields) compute each field from the asset when it is read.
    asset: strawberry.Private[Asset]
    name: str = strawberry.field(
        description="The identifier, the last segment of the IRI (REST: /v1/catalog/{kind}/{name}).")
    iri: str = strawberry.field(description="The stable IRI, also the name of the asset's graph.")
    title: Optional[str]
    summary: Optional[str]
    description: Optional[str]
    doi: Optional[str] = strawberry.field(description="The DOI as the metadata writes it.")
    tags: list[str]
    tasks: list[str] = strawberry.field(description="Preferred labels of the task vocabulary.")
    categories: list[str] = strawberry.field(description="Preferred labels of the category vocabulary.")
    libraries: list[str] = strawberry.field(description="Preferred labels of the library vocabulary.")
    data_types: list[str] = strawberry.field(
        description="Preferred labels of the data-type vocabulary (ai4-metadata `data-type`).")
    created: Optional[datetime.date] = strawberry.field(description="dates.created")
    updated: Optional[datetime.date] = strawberry.field(description="dates.updated")
    links: Links
    metadata: JSON = strawberry.field(description="The whole ai4-metadata 2.x document, "
                                                  "as GET /v1/catalog/{kind}/{name}/metadata serves it.")
    vo: str = strawberry.field(description="The VO that owns the asset.")
    visibility: str = strawberry.field(description="public, virtual-organisation or private.")

    @strawberry.field(description="Deployments that run this application (ai4kg:deploys), by IRI.")
    async def deployments(self, info: Info) -> list["Deployment"]:
        return [Deployment(asset=a) for a in await info.context.pointing_at("deploys", self.asset.iri, "Deployment")]

    @strawberry.field(description="Training runs that executed this application's training (ai4kg:trainedModule), "
                                  "by IRI.")
    async def training_runs(self, info: Info) -> list["TrainingRun"]:
        runs = await info.context.pointing_at("trainedModule", self.asset.iri, "TrainingRun")
        return [TrainingRun(asset=a) for a in runs]


@strawberry.type(description="An AI module of the catalog.")
class Module(Application):
    pass


@strawberry.type(description="A platform tool: a catalog entry in the \"AI4 tools\" category.")
class Tool(Application):
    pass


_DOCUMENT_FREE = frozenset({"name", "iri", "vo", "visibility", "deployments", "trainingRuns", "__typename"})
"""Application fields that do not read the ai4-metadata document."""


def _selected(selections: Iterable[Any], name: str | None = None) -> Iterator[SelectedField]:
    """The fields among `selections` (looking inside fragments), those called `name` if given."""
    for selection in selections:
        if isinstance(selection, SelectedField):
            if name is None or selection.name == name:
                yield selection
        else:  # a fragment spread or an inline fragment
            yield from _selected(selection.selections, name)


def _reads_documents(info: Info) -> bool:
    """Whether a connection's nodes ask for fields of the ai4-metadata document."""
    return any(field.name not in _DOCUMENT_FREE
               for connection in _selected(info.selected_fields)
               for edges in _selected(connection.selections, "edges")
               for node in _selected(edges.selections, "node")
               for field in _selected(node.selections))


class _ApplicationFields:
    """The fields of Application, read from the asset when strawberry reads them."""

    asset: Asset

    def __init__(self, asset: Asset):
        self.asset = asset

    @property
    def name(self) -> str:
        return self.asset.iri.rsplit("/", 1)[-1]

    @property
    def iri(self) -> str:
        return self.asset.iri

    @property
    def title(self) -> str | None:
        return self.asset.document.get("title")

    @property
    def summary(self) -> str | None:
        return self.asset.document.get("summary")

    @property
    def description(self) -> str | None:
        return self.asset.document.get("description")

    @property
    def doi(self) -> str | None:
        return self.asset.document.get("doi")

    @property
    def tags(self) -> list[str]:
        return list(self.asset.document.get("tags", []))

    @property
    def tasks(self) -> list[str]:
        return list(self.asset.document.get("tasks", []))

    @property
    def categories(self) -> list[str]:
        return list(self.asset.document.get("categories", []))

    @property
    def libraries(self) -> list[str]:
        return list(self.asset.document.get("libraries", []))

    @property
    def data_types(self) -> list[str]:
        return list(self.asset.document.get("data-type", []))

    @property
    def created(self) -> datetime.date | None:
        return _date(self.asset.document.get("dates", {}).get("created"))

    @property
    def updated(self) -> datetime.date | None:
        return _date(self.asset.document.get("dates", {}).get("updated"))

    @property
    def links(self) -> Links:
        links = self.asset.document.get("links", {})
        return Links(source_code=links.get("source_code"), docker_image=links.get("docker_image"),
                     documentation=links.get("documentation"), dataset=links.get("dataset"),
                     weights=links.get("weights"), citation=links.get("citation"), base_model=links.get("base_model"))

    @property
    def metadata(self) -> dict[str, Any]:
        return self.asset.document

    @property
    def vo(self) -> str:
        return self.asset.vo

    @property
    def visibility(self) -> str:
        return self.asset.visibility


class _Module(_ApplicationFields, Module):  # type: ignore[misc]  # a Module to strawberry
    pass


class _Tool(_ApplicationFields, Tool):  # type: ignore[misc]
    pass


def _module(asset: Asset) -> Module:
    return _Module(asset)


def _tool(asset: Asset) -> Tool:
    return _Tool(asset)


def _application(asset: Asset) -> Application:
    return _tool(asset) if asset.is_tool else _module(asset)


@strawberry.interface(description="A record of the platform with its own IRI and graph.")
class Record:
    asset: strawberry.Private[Asset]

    @strawberry.field
    def iri(self) -> str:
        return self.asset.iri

    @strawberry.field
    def identifier(self) -> Optional[str]:
        return self.asset.text("identifier")

    @strawberry.field
    def title(self) -> Optional[str]:
        return self.asset.text("title")


@strawberry.interface(description="Something that happened on the platform over a period of time.")
class Activity(Record):
    @strawberry.field(description="The last observed state (queued, running, finished, failed ...).")
    def status(self) -> Optional[str]:
        return self.asset.text("status")

    @strawberry.field
    def started_at(self) -> Optional[datetime.datetime]:
        return _datetime(self.asset.text("startedAt"))

    @strawberry.field
    def ended_at(self) -> Optional[datetime.datetime]:
        return _datetime(self.asset.text("endedAt"))

    @strawberry.field
    def created(self) -> Optional[datetime.date]:
        return _date(self.asset.text("created"))

    @strawberry.field(description="The IRI of the datacenter the activity ran on (ai4kg:runsOn).")
    def datacenter(self) -> Optional[str]:
        iris = self.asset.iris("runsOn")
        return iris[0] if iris else None

    @strawberry.field
    def vo(self) -> str:
        return self.asset.vo

    @strawberry.field
    def visibility(self) -> str:
        return self.asset.visibility

    @strawberry.field(description="Datasets the activity read (ai4kg:usedDataset), by IRI.")
    async def datasets(self, info: Info) -> list["Dataset"]:
        return [Dataset(asset=a) for a in await info.context.linked(self.asset.iris("usedDataset"), "Dataset")]


@strawberry.type(description="A workload run for a user on a datacenter (a Nomad job).")
class Deployment(Activity):
    @strawberry.field(description="The most specific class: ModuleDeployment, BatchTrainingDeployment, "
                                  "TryMeDeployment, ToolDeployment or Deployment.")
    def kind(self) -> str:
        specific = sorted(self.asset.classes & _subclasses()["Deployment"] - {"Deployment"})
        return specific[0] if specific else "Deployment"

    @strawberry.field
    def docker_image(self) -> Optional[str]:
        return self.asset.text("dockerImage")

    @strawberry.field
    def nomad_job(self) -> Optional[str]:
        return self.asset.text("nomadJob")

    @strawberry.field(description="The module or tool deployed (ai4kg:deploys); null if the reader may not see it.")
    async def module(self, info: Info) -> Optional[Application]:
        found = await info.context.linked(self.asset.iris("deploys"), "Application")
        return _application(found[0]) if found else None


@strawberry.type(description="One execution of a module's training, as an experiment tracker recorded it.")
class TrainingRun(Activity):
    @strawberry.field
    def mlflow_run(self) -> Optional[str]:
        return self.asset.text("mlflowRun")

    @strawberry.field(description="The module trained (ai4kg:trainedModule); null if the reader may not see it.")
    async def module(self, info: Info) -> Optional[Application]:
        found = await info.context.linked(self.asset.iris("trainedModule"), "Application")
        return _application(found[0]) if found else None


@strawberry.type(description="A federated-learning training: a server's strategy over rounds of clients.")
class FederatedSession(Activity):
    @strawberry.field
    def strategy(self) -> Optional[str]:
        return self.asset.text("strategy")

    @strawberry.field
    def num_rounds(self) -> Optional[int]:
        return _int(self.asset.text("numRounds"))

    @strawberry.field
    def min_fit_clients(self) -> Optional[int]:
        return _int(self.asset.text("minFitClients"))

    @strawberry.field
    def min_available_clients(self) -> Optional[int]:
        return _int(self.asset.text("minAvailableClients"))

    @strawberry.field
    def differential_privacy(self) -> Optional[bool]:
        return _bool(self.asset.text("differentialPrivacy"))

    @strawberry.field
    def metric_privacy(self) -> Optional[bool]:
        return _bool(self.asset.text("metricPrivacy"))

    @strawberry.field(description="The Flower run that carried the session out.")
    def flower_run(self) -> Optional[str]:
        return self.asset.text("flowerRun")

    @strawberry.field(description="The module trained (ai4kg:federatedModule); null if the reader may not see it.")
    async def module(self, info: Info) -> Optional[Application]:
        found = await info.context.linked(self.asset.iris("federatedModule"), "Application")
        return _application(found[0]) if found else None

    @strawberry.field(description="The rounds recorded so far, in order (each its own graph: ai4kg:session).")
    async def rounds(self, info: Info) -> list["FederatedRound"]:
        found = await info.context.pointing_at("session", self.asset.iri, "FederatedRound")
        return [FederatedRound(asset=a) for a in sorted(found, key=lambda a: _int(a.text("roundNumber")) or 0)]


@strawberry.type(description="A client's update as one round used it.")
class ClientUpdate:
    iri: str
    client: Optional[str] = strawberry.field(description="The IRI of the client agent (prov:wasAttributedTo).")
    num_examples: Optional[int]
    aggregation_weight: Optional[float] = strawberry.field(description="Its weight in the round's aggregate.")
    divergence_score: Optional[float] = strawberry.field(description="Its median distance to the other updates.")
    divergent: bool = strawberry.field(description="Flagged by divergence monitoring.")


@strawberry.type(description="A metric of a round: the server's evaluation (`server`), the clients' (`client`), "
                             "or training (`training`).")
class RoundMetric:
    name: str
    scope: Optional[str]
    value: float


@strawberry.type(description="One round of a federated-learning session: the updates it used, the model it made.")
class FederatedRound(Record):
    @strawberry.field
    def number(self) -> Optional[int]:
        return _int(self.asset.text("roundNumber"))

    @strawberry.field
    def started_at(self) -> Optional[datetime.datetime]:
        values = self.asset.objects(PROV + "startedAtTime")
        return _datetime(values[0].value) if values else None

    @strawberry.field
    def ended_at(self) -> Optional[datetime.datetime]:
        values = self.asset.objects(PROV + "endedAtTime")
        return _datetime(values[0].value) if values else None

    @strawberry.field(description="The standard deviation of the noise differential privacy added, if any.")
    def noise_scale(self) -> Optional[float]:
        return _float(self.asset.text("noiseScale"))

    @strawberry.field(description="The IRI of the global model the round generated.")
    def model(self) -> Optional[str]:
        iris = self.asset.iris("produced")
        return iris[0] if iris else None

    @strawberry.field(description="The IRI of the session (ai4kg:session).")
    def session(self) -> Optional[str]:
        iris = self.asset.iris("session")
        return iris[0] if iris else None

    @strawberry.field(description="The client updates the round used.")
    def updates(self) -> list[ClientUpdate]:
        nodes = self._fragments(AI4KG + "ClientUpdate")
        return [ClientUpdate(iri=iri, client=_first_iri(values, PROV + "wasAttributedTo"),
                             num_examples=_int(_first(values, AI4KG + "numExamples")),
                             aggregation_weight=_float(_first(values, AI4KG + "aggregationWeight")),
                             divergence_score=_float(_first(values, AI4KG + "divergenceScore")),
                             divergent=_bool(_first(values, AI4KG + "divergent")) or False)
                for iri, values in nodes]

    @strawberry.field(description="The round's metrics.")
    def metrics(self) -> list[RoundMetric]:
        return [RoundMetric(name=_first(values, RDFS_LABEL) or "", scope=_first(values, AI4KG + "metricScope"),
                            value=_float(_first(values, MLS + "hasValue")) or 0.0)
                for _, values in self._fragments(MLS + "ModelEvaluation")]

    def _fragments(self, cls: str) -> list[tuple[str, dict[str, list[Any]]]]:
        """The round's #fragment nodes of class `cls`, each with its values by predicate."""
        by_node: dict[str, dict[str, list[Any]]] = {}
        for t in self.asset.triples:
            if t.subject.value.startswith(self.asset.iri + "#"):
                by_node.setdefault(t.subject.value, {}).setdefault(t.predicate.value, []).append(t.object)
        return sorted((iri, values) for iri, values in by_node.items()
                      if any(o.value == cls for o in values.get(RDF_TYPE, [])))


def _first(values: dict[str, list[Any]], predicate: str) -> str | None:
    found = values.get(predicate)
    return found[0].value if found else None


def _first_iri(values: dict[str, list[Any]], predicate: str) -> str | None:
    found = [o for o in values.get(predicate, []) if isinstance(o, ox.NamedNode)]
    return found[0].value if found else None


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


@strawberry.type(description="A dataset registered with the platform.")
class Dataset(Record):
    @strawberry.field
    def summary(self) -> Optional[str]:
        return self.asset.text("summary")

    @strawberry.field
    def description(self) -> Optional[str]:
        return self.asset.text("description")

    @strawberry.field
    def doi(self) -> Optional[str]:
        return self.asset.text("doi")

    @strawberry.field
    def created(self) -> Optional[datetime.date]:
        return _date(self.asset.text("created"))

    @strawberry.field
    def updated(self) -> Optional[datetime.date]:
        return _date(self.asset.text("updated"))

    @strawberry.field
    def vo(self) -> str:
        return self.asset.vo

    @strawberry.field
    def visibility(self) -> str:
        return self.asset.visibility

    @strawberry.field(description="Training runs that used this dataset (ai4kg:usedDataset), by IRI.")
    async def training_runs(self, info: Info) -> list[TrainingRun]:
        runs = await info.context.pointing_at("usedDataset", self.asset.iri, "TrainingRun")
        return [TrainingRun(asset=a) for a in runs]

    @strawberry.field(description="Deployments that used this dataset (ai4kg:usedDataset), by IRI.")
    async def deployments(self, info: Info) -> list[Deployment]:
        deployments = await info.context.pointing_at("usedDataset", self.asset.iri, "Deployment")
        return [Deployment(asset=a) for a in deployments]

    @strawberry.field(description="Federated sessions that used this dataset (ai4kg:usedDataset), by IRI.")
    async def federated_sessions(self, info: Info) -> list[FederatedSession]:
        return [FederatedSession(asset=a)
                for a in await info.context.pointing_at("usedDataset", self.asset.iri, "FederatedSession")]


# -- connections ---------------------------------------------------------------------------------

N = TypeVar("N")


@strawberry.type(description="Relay page information. Cursors are keyset positions (sort value, IRI; for "
                             "deployments, the order they were created in): a page never skips or repeats an asset "
                             "when others are added or removed meanwhile.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool = strawberry.field(description="True when the page starts after a cursor.")
    start_cursor: Optional[str]
    end_cursor: Optional[str]


@strawberry.type
class Edge(Generic[N]):
    cursor: str
    node: N


@strawberry.type
class Connection(Generic[N]):
    edges: list[Edge[N]]
    page_info: PageInfo


# -- filters -------------------------------------------------------------------------------------

@strawberry.input(description="Conditions on one multi-valued field; both must hold when both are given.")
class ValuesFilter:
    in_: Optional[list[str]] = strawberry.field(
        name="in", default=None, description="Has at least one of these values (an empty list matches nothing).")
    all: Optional[list[str]] = strawberry.field(default=None, description="Has every one of these values.")


@strawberry.input(description="Dates from and to, both included; either may be left out.")
class DateRange:
    from_: Optional[datetime.date] = strawberry.field(name="from", default=None)
    to: Optional[datetime.date] = None


@strawberry.input(description=(
    "Conditions on applications. All conditions given in one object must hold; `and`, `or` and `not` "
    "compose them (`or: []` matches nothing, `and: []` everything). Tags match in any case; tasks, "
    "libraries, categories and data types accept any label of their vocabulary (preferred or "
    "alternative, any case). Free text matches every word (the last one as a prefix) in title, "
    "summary, description and tags; it cannot be negated, and each AND branch may hold one."))
class ApplicationFilter:
    tags: Optional[ValuesFilter] = None
    tasks: Optional[ValuesFilter] = None
    libraries: Optional[ValuesFilter] = None
    categories: Optional[ValuesFilter] = None
    data_types: Optional[ValuesFilter] = None
    created: Optional[DateRange] = None
    updated: Optional[DateRange] = None
    text: Optional[str] = None
    and_: Optional[list["ApplicationFilter"]] = strawberry.field(name="and", default=None)
    or_: Optional[list["ApplicationFilter"]] = strawberry.field(name="or", default=None)
    not_: Optional["ApplicationFilter"] = strawberry.field(name="not", default=None)


@strawberry.enum
class SortField(Enum):
    IDENTIFIER = "identifier"
    TITLE = "title"
    CREATED = "created"
    UPDATED = "updated"


@strawberry.enum
class SortDirection(Enum):
    ASC = "asc"
    DESC = "desc"


@strawberry.input(description="Order of a listing; ties are broken by IRI.")
class Sort:
    field: SortField = SortField.IDENTIFIER
    direction: SortDirection = SortDirection.ASC


_FACETS = {"tags": "tag", "tasks": "task", "libraries": "library", "categories": "category", "data_types": "dataType"}
_SCHEMES = {"tasks": "task", "libraries": "library", "categories": "category", "data_types": "data-type"}
_GRAPHQL_NAMES = {"data_types": "dataTypes"}


@dataclass(frozen=True)
class _Facet:
    field: str
    values: tuple[str, ...]
    every: bool
    """all (True) or in (False)"""
    negated: bool = False


@dataclass(frozen=True)
class _Text:
    text: str
    argument: str


@dataclass(frozen=True)
class _Dates:
    field: str
    start: datetime.date | None
    end: datetime.date | None
    negated: bool = False


_Atom = _Facet | _Text | _Dates
_Conjunction = tuple[_Atom, ...]


@dataclass
class _Node:
    kind: str  # and, or, not
    children: list[Any] = field(default_factory=list)


def _values(name: str, values: list[str], argument: str) -> tuple[str, ...]:
    """Tags in lower case; vocabulary labels as concept slugs (an unknown label is an error)."""
    if len(values) > MAX_VALUES:
        raise InputError(f"at most {MAX_VALUES} values in one list", argument, len(values))
    if name == "tags":
        return tuple(dict.fromkeys(v.strip().lower() for v in values if v.strip()))
    scheme = vocabulary.schemes()[_SCHEMES[name]]
    concepts = []
    for value in values:
        concept = scheme.concept_of(value)
        if concept is None:
            allowed = ", ".join(sorted(scheme.preferred.values()))
            raise InputError(f"{value!r} is not a value of {_GRAPHQL_NAMES.get(name, name)}; allowed: {allowed}",
                             argument, value)
        concepts.append(concept)
    return tuple(dict.fromkeys(concepts))


def _tree(spec: ApplicationFilter, argument: str, depth: int = 0, counted: list[int] | None = None) -> _Node:
    """The filter as an AND of its conditions and of its and / or / not parts."""
    if depth > MAX_FILTER_DEPTH:
        raise InputError(f"and / or / not nest at most {MAX_FILTER_DEPTH} levels deep", argument)
    counted = [0] if counted is None else counted

    def sub(part: ApplicationFilter, where: str) -> _Node:
        return _tree(part, where, depth + 1, counted)

    node = _Node("and")
    for name, facet in _FACETS.items():
        condition: ValuesFilter | None = getattr(spec, name)
        if condition is None:
            continue
        where = f"{argument}.{_GRAPHQL_NAMES.get(name, name)}"
        if condition.in_ is not None:
            node.children.append(_Facet(facet, _values(name, condition.in_, f"{where}.in"), every=False))
        if condition.all is not None:
            node.children.append(_Facet(facet, _values(name, condition.all, f"{where}.all"), every=True))
    for name in ("created", "updated"):
        dates: DateRange | None = getattr(spec, name)
        if dates is not None and (dates.from_ is not None or dates.to is not None):
            node.children.append(_Dates(name, dates.from_, dates.to))
    if spec.text is not None:
        node.children.append(_Text(spec.text, f"{argument}.text"))
    counted[0] += len(node.children)
    if counted[0] > MAX_CONDITIONS:
        raise InputError(f"a filter holds at most {MAX_CONDITIONS} conditions", argument)
    if spec.and_ is not None:
        node.children.append(_Node("and", [sub(s, f"{argument}.and[{i}]") for i, s in enumerate(spec.and_)]))
    if spec.or_ is not None:
        node.children.append(_Node("or", [sub(s, f"{argument}.or[{i}]") for i, s in enumerate(spec.or_)]))
    if spec.not_ is not None:
        node.children.append(_Node("not", [sub(spec.not_, f"{argument}.not")]))
    return node


_TRUE: list[_Conjunction] = [()]
_FALSE: list[_Conjunction] = []


def _dnf(node: _Node | _Atom, negated: bool = False) -> list[_Conjunction]:
    """Disjunctive normal form, negations pushed onto the atoms (De Morgan)."""
    if isinstance(node, _Facet):
        if not node.values:  # in [] is false, all [] is true
            return _TRUE if node.every != negated else _FALSE
        return [(replace(node, negated=negated),)]
    if isinstance(node, _Dates):
        return [(replace(node, negated=negated),)]
    if isinstance(node, _Text):
        if negated:
            raise InputError("free text cannot be negated (under `not`)", node.argument, node.text)
        return [(node,)]
    if node.kind == "not":
        return _dnf(node.children[0], not negated)
    parts = [_dnf(child, negated) for child in node.children]
    if (node.kind == "and") != negated:
        result = _TRUE
        for part in parts:
            if len(result) * len(part) > MAX_BRANCHES:
                raise _too_many()
            result = [a + b for a in result for b in part]
        return result
    result = [conjunction for part in parts for conjunction in part]
    if len(result) > MAX_BRANCHES:
        raise _too_many()
    return result


def _too_many() -> InputError:
    return InputError(f"the filter expands to more than {MAX_BRANCHES} alternatives (OR branches); simplify it",
                      "filter")


@dataclass(frozen=True)
class _Branch:
    query: FacetQuery
    dates: tuple[_Dates, ...]


def _branch(conjunction: _Conjunction, base: FacetQuery, tools: bool) -> _Branch:
    facets = [a for a in conjunction if isinstance(a, _Facet)]
    texts = [a for a in conjunction if isinstance(a, _Text)]
    if len(texts) > 1:
        raise InputError("each AND branch of a filter may hold one free-text condition; put the words in one `text`",
                         texts[1].argument, texts[1].text)
    any_of = [(f.field, f.values) for f in facets if not f.every and not f.negated]
    none_of = [(f.field, f.values) for f in facets if not f.every and f.negated]
    (any_of if tools else none_of).append((TOOLS_CATEGORY[0], (TOOLS_CATEGORY[1],)))
    query = replace(base, text=texts[0].text if texts else None,
                    all_of=tuple((f.field, v) for f in facets if f.every and not f.negated for v in f.values),
                    any_of=tuple(any_of), none_of=tuple(none_of),
                    not_all_of=tuple((f.field, f.values) for f in facets if f.every and f.negated))
    return _Branch(query, tuple(a for a in conjunction if isinstance(a, _Dates)))


def _branch_page(graph: KnowledgeGraph, branch: _Branch, first: int,
                 dated: dict[_Dates, frozenset[str]]) -> tuple[list[IndexRow], bool]:
    """Up to `first` index rows of one branch after its cursor, and whether it has more."""
    if not branch.dates:
        page = graph.index.filter(replace(branch.query, limit=first))
        return page.rows, page.next_after is not None

    def keep(iri: str) -> bool:
        return all((iri in dated[replace(d, negated=False)]) != d.negated for d in branch.dates)

    query = replace(branch.query, limit=SCAN_PAGE)
    # A range on the sort key is a keyset window: start at its near end, stop past its far end.
    ranges = [d for d in branch.dates if d.field == query.sort and not d.negated]
    low = max((d.start.isoformat() for d in ranges if d.start), default=None)
    high = min((d.end.isoformat() for d in ranges if d.end), default=None)
    if query.descending:
        entry, beyond = ((high, "\U0010ffff") if high else None), (lambda value: low is not None and value < low)
    else:
        entry, beyond = ((low, "") if low else None), (lambda value: high is not None and value > high)
    if entry and (query.after is None or (entry < query.after if query.descending else entry > query.after)):
        query = replace(query, after=entry)
    found: list[IndexRow] = []
    while True:
        page = graph.index.filter(query)
        for row in page.rows:
            if keep(row.iri):
                found.append(row)
                if len(found) > first:
                    return found[:first], True
        if page.next_after is None or beyond(page.next_after[0]):
            return found, False
        query = replace(query, after=page.next_after)


def _read_branches(graph: KnowledgeGraph, branches: list[_Branch], first: int) -> tuple[list[IndexRow], bool]:
    """The index rows every branch contributes to the page (up to `first` each), and whether any has more."""
    ranges = {replace(d, negated=False) for branch in branches for d in branch.dates}
    dated = {key: _dated(graph, key.field, key.start, key.end) for key in ranges}
    rows: dict[str, IndexRow] = {}
    more = False
    for branch in branches:
        found, has_more = _branch_page(graph, branch, first, dated)
        for row in found:
            rows.setdefault(row.iri, row)
        more = more or has_more
    return list(rows.values()), more


def _decode_cursor(cursor: str, sort: str) -> tuple[str, str]:
    try:
        return cursors.decode(cursor, sort)
    except cursors.InvalidCursor as exc:
        raise InputError(str(exc), "after", cursor) from None


async def _listing(info: Info, tools: bool, filter: ApplicationFilter | None, sort: Sort | None, first: int,
                   after: str | None, node: Callable[[Asset], N]) -> Connection[N]:
    if not 1 <= first <= MAX_FIRST:
        raise InputError(f"first must be between 1 and {MAX_FIRST}", "first", first)
    sort = sort or Sort()
    key, descending = sort.field.value, sort.direction is SortDirection.DESC
    sort_name = f"-{key}" if descending else key
    context = info.context
    base = FacetQuery(kind="Module", readers=context.readers, sort=key, descending=descending, limit=first,
                      after=_decode_cursor(after, sort_name) if after else None)
    conjunctions = _dnf(_tree(filter, "filter")) if filter is not None else _TRUE
    branches = [_branch(conjunction, base, tools) for conjunction in conjunctions]
    graph, readers = context.graph, context.readers
    documents = _reads_documents(info)

    def read() -> tuple[list[IndexRow], list[Asset | None] | None, bool]:
        """The page, in one worker-thread hop: the index rows and, only when the query asks for
        fields of the ai4-metadata document, the assets' graphs and documents. The rows carry what
        the cursors and the VO / visibility fields need, and the index has already left out what
        the reader may not see."""
        rows, more = _read_branches(graph, branches, first)
        if len(branches) > 1:  # each branch comes in sort order; merged, they need sorting again
            rows.sort(key=lambda row: (row.value, row.iri), reverse=descending)
        more = more or len(rows) > first
        rows = rows[:first]
        if not documents:
            return rows, None, more
        # The graphs are read for their documents; the visibility their entry states is checked
        # again on the way (free here), so a graph changed since the index row was read is left out.
        loaded = _load_assets(graph, [row.iri for row in rows], readers)
        for asset in loaded:
            if asset is not None:
                asset.document  # noqa: B018 - computed here rather than on the event loop
        return rows, loaded, more

    rows, loaded, more = await access.read(context.graph, read)
    if loaded is None:
        assets: Iterable[tuple[IndexRow, Asset | None]] = ((row, _indexed(row)) for row in rows)
    else:
        context.assets.prime_many({row.iri: asset for row, asset in zip(rows, loaded)})  # links back: not read again
        assets = zip(rows, loaded)
    edges = [Edge(cursor=cursors.encode(sort_name, row.value, row.iri), node=node(asset))
             for row, asset in assets if asset is not None]
    return Connection(edges=edges, page_info=PageInfo(
        has_next_page=more, has_previous_page=after is not None,
        start_cursor=edges[0].cursor if edges else None, end_cursor=edges[-1].cursor if edges else None))


def _indexed(row: IndexRow) -> Asset:
    """An application listed from its index row alone: its graph is not read (the query asks only
    for name, IRI, VO, visibility or links, see _DOCUMENT_FREE)."""
    return Asset(row.iri, [], row.vo, row.visibility, read=False)


async def _application_named(info: Info, name: str, tools: bool) -> Asset | None:
    if not is_valid_identifier(name):
        return None
    asset = await info.context.assets.load(asset_iri(info.context.graph.settings.base_url, "Module", name))
    if asset is None or not asset.is_a("Application") or asset.is_tool != tools:
        return None
    return asset


_IDENTIFIED = "SELECT ?a ?id WHERE { GRAPH ?a { ?a <https://w3id.org/ai4kg/ns#identifier> ?id } }"


async def _identified(info: Info, identifier: str, wanted: str) -> Asset | None:
    """The visible asset of class `wanted` with this identifier (the first by IRI if several)."""
    context = info.context

    def lookup() -> list[str]:
        return sorted(row["a"].value for row in context.graph.query(_IDENTIFIED, {"id": ox.Literal(identifier)}))

    found = await context.linked(await access.read(context.graph, lookup), wanted)
    return found[0] if found else None


@strawberry.enum(description="Which way a lineage walk goes.")
class LineageDirection(Enum):
    UPSTREAM = "upstream"
    """What the node came from: what generated it, what it derives from, what it used."""
    DOWNSTREAM = "downstream"
    """What came from the node."""


@strawberry.type(description="A node a lineage walk reached: an entity, an activity or an agent.")
class LineageNode:
    iri: str
    kind: str = strawberry.field(description="Entity, Activity or Agent (PROV-O)")
    types: list[str] = strawberry.field(description="Its PROV-O and ai4kg classes, e.g. Build, ContainerImage")
    label: Optional[str]
    depth: int = strawberry.field(description="Steps from the node the walk started from")


@strawberry.type(description="A PROV statement the walk crossed: source relation target.")
class LineageEdge:
    source: str
    relation: str = strawberry.field(description="The PROV-O relation, e.g. wasGeneratedBy, used, wasDerivedFrom")
    target: str


@strawberry.type(description="The lineage of a node, over the provenance graphs the reader may see.")
class Lineage:
    root: str
    direction: LineageDirection
    depth: int
    truncated: bool = strawberry.field(description="True when the walk stopped at its node limit")
    nodes: list[LineageNode]
    edges: list[LineageEdge]


async def _lineage(info: Info, iri: str, direction: LineageDirection, depth: int) -> Optional[Lineage]:
    from ..provenance.lineage import MAX_DEPTH, lineage

    if not 1 <= depth <= MAX_DEPTH:
        raise InputError(f"depth must be between 1 and {MAX_DEPTH}", "depth", depth)
    context = info.context
    try:
        walk = await access.read(context.graph, lineage, context.graph, iri, direction.value, depth, context.readers)
    except ValueError as exc:
        raise InputError(str(exc), "iri", iri) from None
    return Lineage(root=walk.root, direction=direction, depth=walk.depth, truncated=walk.truncated,
                   nodes=[LineageNode(iri=n.iri, kind=n.kind, types=n.types, label=n.label, depth=n.depth)
                          for n in walk.nodes],
                   edges=[LineageEdge(**e.as_dict()) for e in walk.edges])


# -- deployments, as the deployments service keeps them -------------------------------------------

DEPLOYMENTS_FIRST = 100
MAX_DEPLOYMENTS_FIRST = 1000
"""Page size of `deployments`, as REST's GET /v1/deployments `limit`."""
_DEPLOYMENT_FILTER_LENGTHS = {"owner": 300, "vo": 128, "module": 128, "datacenter": 128}
"""The longest value of each text filter, as REST allows."""


@strawberry.type(description="The resources a deployment holds while it runs (units of a deployment request).")
class DeploymentResources:
    cpu: int = strawberry.field(description="Cores.")
    memory_mb: int = strawberry.field(description="Memory, MiB (also a hard limit of the job).")
    gpu: int = strawberry.field(description="GPUs.")
    gpu_model: Optional[str] = strawberry.field(description="The GPU model asked for; null: any.")
    disk_mb: int = strawberry.field(description="Disk, MiB.")


@strawberry.type(description="Where a deployment listens: a label of the request's endpoints, the port inside "
                             "its task, and the URL it answers on.")
class DeploymentEndpoint:
    label: str
    port: Optional[int] = strawberry.field(description="The port inside the task (the request's `endpoints`).")
    url: Optional[str] = strawberry.field(description="The URL it answers on (REST's `urls`); null until it runs, "
                                                      "and again once it ended.")


@strawberry.type(description="A status a deployment entered: when, and why.")
class DeploymentChange:
    status: str
    at: datetime.datetime
    reason: str


@strawberry.type(description=(
    "A deployment as the platform's deployments service keeps it: what was asked, where it runs, its endpoints "
    "and its status history; the same record as REST's GET /v1/deployments/{identifier}. Its owner, the members "
    "of its VO and administrators see it. (`Deployment` is a deployment as the knowledge graph records it, "
    "whatever ran it.)"))
class DeploymentRecord:
    module_iri: str = strawberry.field(description="The IRI of the module or tool deployed.")
    identifier: str
    iri: str = strawberry.field(description="The deployment's IRI, also the name of its graph.")
    kind: str = strawberry.field(description="module, tool, try-me or batch.")
    owner: str = strawberry.field(description="The account that created it.")
    vo: str = strawberry.field(description="The VO whose namespace and quotas it uses.")
    module: str = strawberry.field(description="The name of the module or tool deployed.")
    version: str = strawberry.field(description="The tag of the module's image it runs.")
    image: str = strawberry.field(description="The image reference it runs.")
    title: str
    description: str
    status: str = strawberry.field(description="queued, starting, running, completed, failed or stopped.")
    waiting: Optional[str] = strawberry.field(description="Why a queued deployment waits (a quota, no room).")
    datacenter: Optional[str] = strawberry.field(description="The datacenter asked for; null: any.")
    placed_on: Optional[str] = strawberry.field(description="The datacenter it was placed on, once placed.")
    executor: str = strawberry.field(description="The workload manager that runs it (local, nomad).")
    resources: DeploymentResources
    endpoints: list[DeploymentEndpoint]
    datasets: list[str] = strawberry.field(description="The DOIs of the datasets it reads.")
    storage: Optional[str] = strawberry.field(description="The storage it mounts.")
    notify: Optional[str] = strawberry.field(description="Who is mailed when it ends (not in the graph).")
    command: Optional[list[str]] = strawberry.field(description="The command of a batch job.")
    expires_at: Optional[datetime.datetime] = strawberry.field(description="When a try-me deployment is stopped.")
    created_at: datetime.datetime
    started_at: Optional[datetime.datetime]
    ended_at: Optional[datetime.datetime]
    history: list[DeploymentChange] = strawberry.field(description="Every status it entered, oldest first.")

    @strawberry.field(description="The module or tool deployed, from the catalog; null if the reader may not see "
                                  "it (or it was withdrawn since).")
    async def deploys(self, info: Info) -> Optional[Application]:
        found = await info.context.linked([self.module_iri], "Application")
        return _application(found[0]) if found else None


def _deployment_record(deployment: deployment_records.Deployment) -> DeploymentRecord:
    """The GraphQL view of a record of the service (what REST answers as JSON)."""
    r = deployment.resources
    labels = list(dict.fromkeys([*deployment.endpoints, *deployment.urls]))
    return DeploymentRecord(
        module_iri=deployment.module_iri, identifier=deployment.identifier, iri=deployment.iri, kind=deployment.kind,
        owner=deployment.owner, vo=deployment.vo, module=deployment.module, version=deployment.version,
        image=deployment.image, title=deployment.title, description=deployment.description,
        status=deployment.status, waiting=deployment.waiting, datacenter=deployment.datacenter,
        placed_on=deployment.placed_on, executor=deployment.executor,
        resources=DeploymentResources(cpu=r["cpu"], memory_mb=r["memory_mb"], gpu=r["gpu"],
                                      gpu_model=r.get("gpu_model"), disk_mb=r["disk_mb"]),
        endpoints=[DeploymentEndpoint(label=label, port=deployment.endpoints.get(label), url=deployment.urls.get(label))
                   for label in labels],
        datasets=list(deployment.datasets), storage=deployment.storage, notify=deployment.notify,
        command=list(deployment.command) if deployment.command is not None else None,
        expires_at=_datetime(deployment.expires_at),
        created_at=_datetime(deployment.created_at),  # type: ignore[arg-type]  # the record's own times: valid
        started_at=_datetime(deployment.started_at), ended_at=_datetime(deployment.ended_at),
        history=[DeploymentChange(status=c.status, at=_datetime(c.at), reason=c.reason)  # type: ignore[arg-type]
                 for c in deployment.history])


def _deployments_service(info: Info, action: str) -> tuple[Deployments, Identity]:
    """The service and the signed-in requester, or the GraphQL error REST's 401 is (or: not served here)."""
    context = info.context
    if context.deployments is None:
        raise GraphQLError("deployments are not served here", extensions={"code": "NOT_IMPLEMENTED", "status": 501})
    try:
        return context.deployments, writer(context.identity, action)
    except Problem as problem:
        raise _problem_error(problem) from None


async def _deployment_listing(info: Info, first: int, after: Optional[str], **filters: Optional[str]
                              ) -> Connection[DeploymentRecord]:
    service, identity = _deployments_service(info, "list deployments")
    if not 1 <= first <= MAX_DEPLOYMENTS_FIRST:
        raise InputError(f"first must be between 1 and {MAX_DEPLOYMENTS_FIRST}", "first", first)
    for name, value in filters.items():
        longest = _DEPLOYMENT_FILTER_LENGTHS.get(name)
        if value is not None and longest is not None and len(value) > longest:
            raise InputError(f"{name} is at most {longest} characters", name, value[:longest] + "...")
    for name, allowed in (("status", deployment_records.STATUSES), ("kind", deployment_records.KINDS)):
        if filters[name] is not None and filters[name] not in allowed:
            raise InputError(f"{filters[name]!r} is not a {name} of deployments; allowed: {', '.join(allowed)}",
                             name, filters[name])
    try:
        position = cursor_after(after)
    except Problem as problem:
        raise InputError(problem.detail, "after", after) from None
    requester = requester_of(identity)
    found = await anyio.to_thread.run_sync(lambda: service.find(requester, **filters, after=position, limit=first + 1))
    edges = [Edge(cursor=cursor_of(seq), node=_deployment_record(deployment))
             for seq, deployment in found[:first]]
    return Connection(edges=edges, page_info=PageInfo(
        has_next_page=len(found) > first, has_previous_page=bool(after),
        start_cursor=edges[0].cursor if edges else None, end_cursor=edges[-1].cursor if edges else None))


async def _deployment_named(info: Info, identifier: str) -> Optional[DeploymentRecord]:
    service, identity = _deployments_service(info, "see deployments")
    found = await anyio.to_thread.run_sync(service.get, identifier, requester_of(identity))
    return _deployment_record(found) if found is not None else None


_FIRST = strawberry.argument(description=f"Page size, 1 to {MAX_FIRST}.")
_AFTER = strawberry.argument(description="The endCursor of the previous page.")


@strawberry.type(description="The catalog and the activities around it.")
class Query:
    @strawberry.field(description="Modules of the catalog (not tools), filtered, sorted, one keyset page at a time.")
    async def modules(self, info: Info, filter: Optional[ApplicationFilter] = None, sort: Optional[Sort] = None,
                      first: int = DEFAULT_FIRST, after: Optional[str] = None) -> Connection[Module]:
        return await _listing(info, False, filter, sort, first, after, _module)

    @strawberry.field(description="Tools of the catalog (the \"AI4 tools\" category), as `modules`.")
    async def tools(self, info: Info, filter: Optional[ApplicationFilter] = None, sort: Optional[Sort] = None,
                    first: int = DEFAULT_FIRST, after: Optional[str] = None) -> Connection[Tool]:
        return await _listing(info, True, filter, sort, first, after, _tool)

    @strawberry.field(description="One module by name, or null.")
    async def module(self, info: Info, name: str) -> Optional[Module]:
        asset = await _application_named(info, name, tools=False)
        return _module(asset) if asset else None

    @strawberry.field(description="One tool by name, or null.")
    async def tool(self, info: Info, name: str) -> Optional[Tool]:
        asset = await _application_named(info, name, tools=True)
        return _tool(asset) if asset else None

    @strawberry.field(description="One deployment by identifier, as the knowledge graph records it, or null. "
                                  "`deploymentRecord` is the deployments service's record of one it runs.")
    async def deployment(self, info: Info, identifier: str) -> Optional[Deployment]:
        asset = await _identified(info, identifier, "Deployment")
        return Deployment(asset=asset) if asset else None

    @strawberry.field(description=(
        "Deployments the platform runs (REST's GET /v1/deployments), oldest first, one keyset page at a time: "
        "your own by default, a VO's with `vo` (its members), anyone's with `owner` (administrators; others see "
        "only what their VOs hold). Filters: status (queued, starting, running, completed, failed, stopped), "
        "kind (module, tool, try-me, batch), module name and datacenter placed on. Needs credentials."))
    async def deployments(
            self, info: Info, owner: Optional[str] = None, vo: Optional[str] = None, status: Optional[str] = None,
            kind: Optional[str] = None, module: Optional[str] = None, datacenter: Optional[str] = None,
            first: Annotated[int, strawberry.argument(
                description=f"Page size, 1 to {MAX_DEPLOYMENTS_FIRST}.")] = DEPLOYMENTS_FIRST,
            after: Annotated[Optional[str], strawberry.argument(
                description="The endCursor of the previous page (REST's `next` cursors are the same).")] = None,
    ) -> Connection[DeploymentRecord]:
        return await _deployment_listing(info, first, after, owner=owner, vo=vo, status=status, kind=kind,
                                         module=module, datacenter=datacenter)

    @strawberry.field(description=(
        "One deployment the platform runs, by identifier (REST's GET /v1/deployments/{identifier}), or null when "
        "there is none you may see: its owner, the members of its VO and administrators may. Needs credentials."))
    async def deployment_record(self, info: Info, identifier: str) -> Optional[DeploymentRecord]:
        return await _deployment_named(info, identifier)

    @strawberry.field(description="One training run by identifier, or null.")
    async def training_run(self, info: Info, identifier: str) -> Optional[TrainingRun]:
        asset = await _identified(info, identifier, "TrainingRun")
        return TrainingRun(asset=asset) if asset else None

    @strawberry.field(description="One dataset by identifier, or null.")
    async def dataset(self, info: Info, identifier: str) -> Optional[Dataset]:
        asset = await _identified(info, identifier, "Dataset")
        return Dataset(asset=asset) if asset else None

    @strawberry.field(description="The lineage of a node (an asset, a commit, an image, weights ...): what it came "
                      "from (UPSTREAM) or what came from it (DOWNSTREAM), `depth` steps at most; null for an asset "
                      "the reader may not see.")
    async def lineage(self, info: Info, iri: str, direction: LineageDirection = LineageDirection.UPSTREAM,
                      depth: int = 5) -> Optional[Lineage]:
        return await _lineage(info, iri, direction, depth)

    @strawberry.field(description="One federated-learning session by identifier, or null.")
    async def federated_session(self, info: Info, identifier: str) -> Optional[FederatedSession]:
        asset = await _identified(info, identifier, "FederatedSession")
        return FederatedSession(asset=asset) if asset else None


# -- mutations -----------------------------------------------------------------------------------

@strawberry.enum(description="How `metadata` is written.")
class MetadataFormat(Enum):
    YAML = "yaml"
    JSON = "json"


@strawberry.enum(description="Who may read a module: everyone (PUBLIC), or the members of its VO and the "
                             "platform administrators (VIRTUAL_ORGANISATION, PRIVATE).")
class Visibility(Enum):
    PUBLIC = "public"
    VIRTUAL_ORGANISATION = "virtual-organisation"
    PRIVATE = "private"  # catalog.VISIBILITIES, which the import checks



@strawberry.type(description="A remark on a published document that did not stop it (an error would have).")
class MetadataIssue:
    field: str = strawberry.field(description="The field path as written in the document, e.g. links.source_code.")
    rule: str = strawberry.field(description="The rule, short and stable: url, date, required, vocabulary ...")
    message: str
    value: Optional[JSON] = strawberry.field(description="The value at fault, shortened; null when missing.")


@strawberry.type(description="What publishModule wrote.")
class PublishModulePayload:
    module: Optional[Application] = strawberry.field(description=(
        "The module as the store holds it after the write (a Tool when its categories make it one)."))
    created: bool = strawberry.field(description="True for a new module, false when it replaced one.")
    warnings: list[MetadataIssue]


@strawberry.type(description="What withdrawModule removed.")
class WithdrawModulePayload:
    name: str
    iri: str
    withdrawn: bool = strawberry.field(description="True: the module and its graph are gone.")


_CODES = {400: "BAD_USER_INPUT", 401: "UNAUTHENTICATED", 403: "FORBIDDEN", 404: "NOT_FOUND", 409: "CONFLICT",
          413: "BAD_USER_INPUT", 422: "BAD_USER_INPUT"}
_RULE = re.compile(r"(?s)(?P<reason>.*) \[(?P<rule>[^\[\]]+)\]")
_MUTATION_ARGUMENTS = ("name", "vo", "visibility", "request", "identifier")


def _problem_error(problem: Problem, document: str = "metadata") -> GraphQLError:
    """A Problem of api/publishing.py (or api/deployments.py) as a GraphQL error: its detail as the
    message; in extensions the code, the HTTP status REST answers with, and the argument (or each
    field of the document, the argument `document`) at fault."""
    extensions: dict[str, Any] = {"code": _CODES.get(problem.status, "BAD_REQUEST"), "status": problem.status}
    if problem.invalid_params is not None:
        extensions["argument"] = document
        extensions["invalidParams"] = [_invalid_param(param) for param in problem.invalid_params]
    elif problem.parameter in _MUTATION_ARGUMENTS:
        extensions["argument"] = problem.parameter
        extensions["value"] = jsonable(problem.value)
    elif problem.status == 413:
        extensions["argument"] = document
    return GraphQLError(problem.detail, extensions=extensions)


def _rejected_error(rejected: DeploymentRejected, argument: str) -> GraphQLError:
    """A request the deployments service refused, as REST's problem says it: each issue (field, rule,
    reason, value) in extensions.invalidParams."""
    return _problem_error(Problem.of_issues(rejected.status, rejected.title, rejected.issues), argument)


def _deployment_request(request: Any) -> Any:
    """The request as REST's POST /v1/deployments body reads it: given as an object, or as its JSON text."""
    if isinstance(request, str):
        text = request
        if len(text.encode("utf-8", "surrogatepass")) > MAX_REQUEST_BYTES:
            raise _problem_error(Problem(413, "Body too large",
                                         f"a deployment request is limited to {MAX_REQUEST_BYTES:,} bytes"), "request")
        try:
            return loads_json(text, "request")
        except Problem as problem:
            raise _problem_error(problem, "request") from None
    if len(json.dumps(request, ensure_ascii=False).encode("utf-8", "surrogatepass")) > MAX_REQUEST_BYTES:
        raise _problem_error(Problem(413, "Body too large",
                                     f"a deployment request is limited to {MAX_REQUEST_BYTES:,} bytes"), "request")
    return request


@strawberry.type(description="What createDeployment did.")
class CreateDeploymentPayload:
    deployment: DeploymentRecord
    created: bool = strawberry.field(description=(
        "True: queued now (and started when there was room); false: the same request (same `name`) was made "
        "before and nothing new was done."))


def _invalid_param(param: dict[str, Any]) -> dict[str, Any]:
    """{name, rule, reason, value}: REST's invalid-params entry, with the rule apart."""
    reason, rule = str(param.get("reason", "")), param.get("rule")
    if (match := _RULE.fullmatch(reason)) and rule in (None, match["rule"]):  # the rule, not in the reason too
        reason, rule = match["reason"], match["rule"]
    return {"name": param.get("name"), "rule": rule, "reason": reason, "value": jsonable(param.get("value"))}


@strawberry.type(description="Publishing and withdrawing modules, with the rights and checks of REST's PUT and "
                             "DELETE /v1/catalog/modules/{name}/metadata (api/publishing.py); creating and deleting "
                             "deployments, as REST's POST and DELETE /v1/deployments. POST only.")
class Mutation:
    @strawberry.mutation(description=(
        "Publish module `name` from its ai4-metadata document, or replace it. The same checks as `ai4kg import` "
        "(schema, mapping, SHACL): any error writes nothing and names each field in "
        "extensions.invalidParams. Needs credentials; a member of a VO publishes for that VO (`vo` may be left "
        "out by a member of one VO only); a module of another VO cannot be replaced."))
    async def publish_module(self, info: Info, name: str, metadata: str,
                             format: MetadataFormat = MetadataFormat.YAML, vo: Optional[str] = None,
                             visibility: Visibility = Visibility.PUBLIC) -> Optional[PublishModulePayload]:
        context = info.context
        body = metadata.encode("utf-8", "surrogatepass")  # text the loader cannot decode is its error to report
        try:
            published = await anyio.to_thread.run_sync(
                lambda: publish_module(context.graph, context.identity, name, body, format is MetadataFormat.JSON,
                                       vo, visibility.value))
        except Problem as problem:
            raise _problem_error(problem) from None
        context.forget()
        asset = await context.assets.load(published.iri)
        return PublishModulePayload(
            module=_application(asset) if asset is not None else None, created=published.created,
            warnings=[MetadataIssue(field=w["field"], rule=w["rule"], message=w["message"], value=jsonable(w["value"]))
                      for w in published.warnings])

    @strawberry.mutation(description=(
        "Withdraw module `name`: its graph is removed. Needs credentials and membership of the module's VO; "
        "a module you cannot see is NOT_FOUND."))
    async def withdraw_module(self, info: Info, name: str) -> Optional[WithdrawModulePayload]:
        context = info.context
        try:
            iri = await anyio.to_thread.run_sync(withdraw_module, context.graph, context.identity, name)
        except Problem as problem:
            raise _problem_error(problem) from None
        context.forget()
        return WithdrawModulePayload(name=name, iri=iri, withdrawn=True)

    @strawberry.mutation(description=(
        "Deploy a module or tool of the catalog, as REST's POST /v1/deployments: `request` is the same document "
        "(mappings/deployments/deployment.schema.json: kind, module, version, resources, command ...), as an "
        "object or as its JSON text. Errors name each field with its rule and value in extensions.invalidParams, "
        "and nothing is created. A deployment over a quota, or with no room on any healthy datacenter, is "
        "created `queued` and says why in `waiting`. Needs credentials."))
    async def create_deployment(self, info: Info, request: JSON) -> Optional[CreateDeploymentPayload]:
        service, identity = _deployments_service(info, "deploy")
        body = _deployment_request(request)
        try:
            deployment, created = await anyio.to_thread.run_sync(service.create, body, requester_of(identity))
        except DeploymentRejected as rejected:
            raise _rejected_error(rejected, "request") from None
        info.context.forget()
        return CreateDeploymentPayload(deployment=_deployment_record(deployment), created=created)

    @strawberry.mutation(description=(
        "Stop a deployment and free its resources, as REST's DELETE /v1/deployments/{identifier}; answers it "
        "after (stopped). Its record stays, with its history; deleting it again changes nothing. Only its owner "
        "and administrators may; one you cannot see is NOT_FOUND. Needs credentials."))
    async def delete_deployment(self, info: Info, identifier: str) -> Optional[DeploymentRecord]:
        service, identity = _deployments_service(info, "delete deployments")
        try:
            found = await anyio.to_thread.run_sync(service.delete, identifier, requester_of(identity))
        except DeploymentRejected as rejected:
            raise _rejected_error(rejected, "identifier") from None
        info.context.forget()
        if found is None:
            raise _problem_error(Problem(404, "Not found", f"no deployment {identifier!r}", "identifier", identifier))
        return _deployment_record(found)


_PlainFields = dict[str, tuple[Callable[[Any], Any], Any]]
_USUAL = object()
"""What a short-way completion answers when graphql-core's usual way must see to the field."""


class _ExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's execution, with a short way for the bulk of an answer.

    Most fields of a listing are "plain": strawberry reads them as an attribute or property of the
    object (no resolver of its own, no arguments, no Info). An object whose selected fields are all
    plain, and whose plain fields hold scalars, enums, lists or such objects again (a connection:
    its edges, their cursors and nodes, the page info), is completed here in one recursive pass,
    without the response paths, resolve infos and completion steps graphql-core spends on every
    field (about 400 in a page of 50 modules, most of its time). Anything out of the ordinary (a
    null where the schema says non-null, an exception, a value a scalar refuses, a list that is not
    a list, an interface or union, field middleware, @defer) abandons the short way for that object,
    and graphql-core completes it as ever (plain fields are side-effect free, so reading them again
    changes nothing): answers, errors and their paths are exactly graphql-core's."""

    _plain: dict[GraphQLObjectType, _PlainFields] = {}
    """Per object type: its plain fields (how to read each, its GraphQL type). Built on first use."""

    def _plain_of(self, parent_type: GraphQLObjectType) -> _PlainFields | None:
        if self.middleware_manager is not None and self.middleware_manager.middlewares:
            return None  # resolvers are wrapped: every field the usual way
        plain = self._plain.get(parent_type)
        if plain is None:
            plain = self._plain[parent_type] = _plain_fields(parent_type)
        return plain

    def _plain_object(self, parent_type: GraphQLObjectType, grouped_field_set: Any, source: Any) -> Any:
        """The object's answer when every selected field is plain, else _USUAL."""
        plain = self._plain_of(parent_type)
        if not plain:
            return _USUAL
        fields = []
        for response_name, field_details_list in grouped_field_set.items():
            found = plain.get(field_details_list[0].node.name.value)
            if found is None:
                return _USUAL
            fields.append((response_name, field_details_list, found))
        results: dict[str, Any] = {}
        for response_name, field_details_list, (read, type_) in fields:
            try:
                value = read(source)
            except Exception:  # noqa: BLE001 - the usual way reports it, located
                return _USUAL
            value = self._plain_value(type_, field_details_list, value)
            if value is _USUAL:
                return _USUAL
            results[response_name] = value
        return results

    def _plain_value(self, type_: Any, field_details_list: Any, value: Any) -> Any:
        """`value` completed as `type_`, or _USUAL."""
        if isinstance(type_, GraphQLNonNull):
            if value is None:
                return _USUAL
            type_ = type_.of_type
        elif value is None:
            return None
        if isinstance(value, Exception) or self.is_awaitable(value):
            return _USUAL
        if type_ is GraphQLString and type(value) is str:  # what GraphQLString's serialiser returns
            return value
        if isinstance(type_, GraphQLList):
            if not isinstance(value, (list, tuple)):
                return _USUAL
            completed = []
            for item in value:
                item = self._plain_value(type_.of_type, field_details_list, item)
                if item is _USUAL:
                    return _USUAL
                completed.append(item)
            return completed
        if isinstance(type_, GraphQLObjectType):
            if type_.is_type_of is not None and not type_.is_type_of(value, None):
                return _USUAL
            grouped_field_set, new_defer_usages, _ = self.collect_subfields(type_, field_details_list)
            return _USUAL if new_defer_usages else self._plain_object(type_, grouped_field_set, value)
        if is_leaf_type(type_):
            try:
                coerced = type_.coerce_output_value(value)
            except Exception:  # noqa: BLE001 - the usual way reports it, located
                return _USUAL
            return _USUAL if coerced is None or coerced is Undefined else coerced
        return _USUAL  # an interface or a union: the usual way resolves the type

    def execute_fields(self, parent_type: GraphQLObjectType, source_value: Any, path: Any,
                       grouped_field_set: Any, position_context: Any) -> Any:
        if position_context is None:
            results = self._plain_object(parent_type, grouped_field_set, source_value)
            if results is not _USUAL:
                return results
        return super().execute_fields(parent_type, source_value, path, grouped_field_set, position_context)

    def execute_field(self, parent_type: GraphQLObjectType, source: Any, field_details_list: Any, path: Any,
                      position_context: Any) -> Any:
        plain = self._plain_of(parent_type) if position_context is None else None
        found = plain.get(field_details_list[0].node.name.value) if plain else None
        if found is not None:  # a plain field of an object that has others
            read, type_ = found
            try:
                value = self._plain_value(type_, field_details_list, read(source))
            except Exception:  # noqa: BLE001 - the usual way reports it, located
                value = _USUAL
            if value is not _USUAL:
                return value
        return super().execute_field(parent_type, source, field_details_list, path, position_context)


def _plain_fields(parent_type: GraphQLObjectType) -> _PlainFields:
    """The fields of `parent_type` that strawberry resolves as plain attributes (no resolver, no
    arguments), each with how to read it (operator.attrgetter when strawberry would read it with
    getattr; else strawberry's own resolver, which needs no Info for these) and its GraphQL type."""
    found: _PlainFields = {}
    for name, definition in parent_type.fields.items():
        resolve = definition.resolve
        if resolve is None or not getattr(resolve, "_is_default", False) or definition.args:
            continue
        strawberry_field = (definition.extensions or {}).get("strawberry-definition")
        if strawberry_field is not None and strawberry_field.default_resolver is getattr \
                and strawberry_field.base_resolver is None:
            read: Callable[[Any], Any] = operator.attrgetter(strawberry_field.python_name)
        else:
            read = functools.partial(_with_no_info, resolve)
        found[name] = (read, definition.type)
    return found


def _with_no_info(resolve: Callable[..., Any], source: Any) -> Any:
    return resolve(source, None)


class _Schema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """Log what went wrong on our side; the client's mistakes are answered, not logged."""
        super().process_errors([error for error in errors if _unexpected(error)], execution_context)


_LIMIT_RULES = [*QueryDepthLimiter(max_depth=MAX_DEPTH).validation_rules,
                *MaxAliasesLimiter(max_alias_count=MAX_ALIASES).validation_rules]
"""The depth and alias rules, built once: the validation cache is keyed by the rule classes, and
strawberry's limiters build new ones for every instance."""
CACHED_DOCUMENTS = 256
"""Query texts whose parse and validation results are kept (least recently used go first)."""

schema = _Schema(
    query=Query,
    mutation=Mutation,
    types=[Module, Tool, Deployment, TrainingRun, FederatedSession, FederatedRound, Dataset],
    execution_context_class=_ExecutionContext,
    extensions=[
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: AddValidationRules(_LIMIT_RULES),
        lambda: ParserCache(maxsize=CACHED_DOCUMENTS),
        lambda: ValidationCache(maxsize=CACHED_DOCUMENTS),
        lambda: MaskErrors(should_mask_error=_unexpected),
    ],
)


# -- HTTP ----------------------------------------------------------------------------------------

def _is_request_error(result: Any) -> bool:
    """Whether the request failed before execution (parse, validation, variables): no `data` then."""
    if isinstance(result, PreExecutionError):
        return True
    return result.data is None and bool(result.errors) and all(error.path is None for error in result.errors)


class _Router(GraphQLRouter):
    """strawberry's router, with GraphQL-over-HTTP media types and status codes."""

    async def run(  # type: ignore[override]
            self, request: Request, context: Any = UNSET, root_value: Any = UNSET) -> Response:
        if self.is_websocket_request(request) or self.should_render_graphql_ide(self.request_adapter_class(request)):
            return await super().run(request, context, root_value)
        media, _ = negotiate(request.headers.get("accept", ""), [(JSON_MEDIA, None), (GRAPHQL_RESPONSE, None)],
                             "GraphQL response")
        try:
            response = await super().run(request, context, root_value)
        except HTTPException as exc:
            status = 415 if exc.reason == "Unsupported content type" else exc.status_code
            allow = "GET, POST"
            message = exc.reason if status != 415 else \
                "send the request as application/json (POST) or as query parameters (GET)"
            if isinstance(exc.__cause__, InvalidOperationTypeError):  # a mutation sent with GET
                status, allow, message = 405, "POST", f"{exc.reason}: send mutations with POST"
            headers = {"Allow": allow} if status == 405 else {}
            body = {"errors": [{"message": message}]}
            return Response(json.dumps(body), status_code=status, media_type=f"{media}; charset=utf-8", headers=headers)
        response.headers["content-type"] = f"{media}; charset=utf-8"
        if media == GRAPHQL_RESPONSE and getattr(request.state, "graphql_request_error", False):
            response.status_code = 400
        return response

    async def process_result(self, request: Request, result: Any) -> Any:  # type: ignore[override]
        response = await super().process_result(request, result)
        if _is_request_error(result):
            request.state.graphql_request_error = True
            response.pop("data", None)
        return response


def router(graph: KnowledgeGraph, deployments: Deployments | None = None) -> APIRouter:
    """The GraphQL endpoint at /graphql over `graph` (GET and POST; GraphiQL for browsers), and over
    `deployments`, the service REST's /v1/deployments uses (None: the deployment fields answer an
    error, deployments are not served here)."""

    async def context(connection: HTTPConnection) -> Context:  # a Request, or a WebSocket to be refused
        return Context(graph, access.readers_of(connection), identity_of(connection),  # type: ignore[arg-type]
                       deployments)

    # No subscriptions: WebSocket upgrades are refused rather than offered protocols that serve nothing.
    # Left out of the OpenAPI document: GraphQL describes itself (introspection), over GraphQL-over-HTTP.
    routes = _Router(schema, path=PATH, context_getter=context, tags=["graphql"], subscription_protocols=(),
                     include_in_schema=False)

    @routes.api_route(PATH, methods=["PUT", "PATCH", "DELETE"], include_in_schema=False)
    async def other_methods() -> Response:
        body = {"errors": [{"message": "GraphQL is served by GET (queries) and POST"}]}
        return Response(json.dumps(body), status_code=405, media_type=f"{JSON_MEDIA}; charset=utf-8",
                        headers={"Allow": "GET, POST"})

    return routes
