"""The catalog's applications: the Application interface and its Module and Tool (fields read from
the asset's ai4-metadata document when strawberry reads them), and their listings (`modules`,
`tools`: filtered keyset pages of the search index) and lookups by name."""

from __future__ import annotations

import datetime
from typing import Any, Callable, Iterable, Iterator, Optional

import strawberry
from strawberry.scalars import JSON
from strawberry.types.nodes import SelectedField

from ...graph.namespaces import asset_iri
from ...graph.search import FacetQuery, IndexRow
from ...metadata.records import is_valid_identifier
from .. import access, cursors
from .connections import Connection, Edge, N, PageInfo
from .context import Asset, Info, _load_assets
from .errors import InputError
from .filters import _TRUE, ApplicationFilter, Sort, SortDirection, _branch, _dnf, _read_branches, _tree
from .limits import MAX_FIRST
from .values import _date


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


# At the end, as the types link both ways: the resolvers above name these, and strawberry reads
# their annotations only when the schema is built. The type modules import one another only here,
# or records.py (the base interfaces, which imports none), so any import order works.
from .deployments import Deployment  # noqa: E402
from .provenance import TrainingRun  # noqa: E402
