"""The REST catalog, as users of AI4EOSC's Platform API know it, with filters that filter.

    GET /v1/catalog/{modules|tools}                  names
    GET /v1/catalog/{modules|tools}/detail           summaries
    GET /v1/catalog/{modules|tools}/{name}/metadata  the ai4-metadata document
    PUT /v1/catalog/modules/{name}/metadata          publish or replace (signed in, member of the VO)
    DELETE /v1/catalog/modules/{name}/metadata       withdraw

Listings filter on the search index's facets (tags: all / any / not all / none; tasks, libraries,
categories, data types: any of; free text `q`), sort, and page by keyset: the body is the list,
and a `Link: <...>; rel="next"` header carries the cursor of the next page. Tools are the modules
in the "AI4 tools" category.
"""


import inspect
from enum import Enum
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Query, Request, Response

from ..catalog import PUBLIC, VISIBILITIES, document_of
from ..graph.namespaces import asset_iri
from ..graph.search import SORT_KEYS, FacetPage, FacetQuery, Readers
from ..graph.store import KnowledgeGraph
from ..metadata import vocabulary
from ..metadata.records import is_valid_identifier
from . import cursors, problems
from .access import read, read_asset, readers_of, visible_quads
from .auth import identity_of
from .problems import Problem
from .publishing import publish_module, withdraw_module, writer

TOOLS_CATEGORY = ("category", "ai4-tools")
_SUMMARY_FIELDS = ("title", "summary", "dates", "tags", "tasks", "categories", "libraries", "data-type")
_VOCABULARY_PARAMETERS = {"tasks": "task", "libraries": "library", "categories": "category", "data_types": "data-type"}
_FACET_OF_SCHEME = {"task": "task", "library": "library", "category": "category", "data-type": "dataType"}
MAX_LIMIT = 1000

class Kind(str, Enum):
    modules = "modules"
    tools = "tools"


def _labels(parameter: str) -> dict[str, Any]:
    """OpenAPI for a vocabulary filter: every label of the scheme (matching also ignores case and
    punctuation, so the list documents rather than limits)."""
    scheme = vocabulary.schemes()[_VOCABULARY_PARAMETERS[parameter]]
    labels = sorted({*scheme.preferred.values(), *scheme.labels})
    return {"items": {"type": "string", "enum": labels}}


def _values(raw: list[str]) -> tuple[str, ...]:
    """Repeated parameters and comma-separated values both work: ?tags=a&tags=b or ?tags=a,b."""
    return tuple(dict.fromkeys(v.strip() for item in raw for v in item.split(",") if v.strip()))


def _tags(raw: list[str]) -> tuple[str, ...]:
    return tuple(v.lower() for v in _values(raw))


def _concepts(parameter: str, raw: list[str]) -> tuple[str, ...]:
    scheme = vocabulary.schemes()[_VOCABULARY_PARAMETERS[parameter]]
    concepts = []
    for value in _values(raw):
        concept = scheme.concept_of(value)
        if concept is None:
            allowed = ", ".join(sorted(scheme.preferred.values()))
            raise Problem(400, "Unknown vocabulary value", f"{value!r} is not a value of {parameter}; allowed: {allowed}",
                          parameter, value)
        concepts.append(concept)
    return tuple(concepts)


def _decode_cursor(cursor: str, sort: str) -> tuple[str, str]:
    try:
        return cursors.decode(cursor, sort)
    except cursors.InvalidCursor as exc:
        raise Problem(400, "Invalid cursor", str(exc), "cursor", cursor) from None


def router(graph: KnowledgeGraph) -> APIRouter:
    routes = APIRouter(prefix="/v1/catalog", tags=["catalog"])

    def listing_query(request: Request, kind: Kind, p: dict[str, Any]) -> FacetQuery:
        sort: str = p["sort"]
        key = sort.removeprefix("-")
        if key not in SORT_KEYS:
            raise Problem(400, "Unknown sort key", f"sort by one of {', '.join(SORT_KEYS)}, '-' first for descending",
                          "sort", sort)
        any_of = [("tag", _tags(p["tags_any"]))]
        any_of += [(_FACET_OF_SCHEME[_VOCABULARY_PARAMETERS[name]], _concepts(name, p[name]))
                   for name in _VOCABULARY_PARAMETERS if _values(p[name])]
        none_of = [("tag", _tags(p["not_tags_any"]))]
        (any_of if kind is Kind.tools else none_of).append((TOOLS_CATEGORY[0], (TOOLS_CATEGORY[1],)))
        return FacetQuery(kind="Module", readers=readers_of(request), text=p["q"], all_of=tuple(("tag", tag) for tag in _tags(p["tags"])),
                          any_of=tuple(any_of), none_of=tuple(none_of), not_all_of=(("tag", _tags(p["not_tags"])),),
                          sort=key, descending=sort.startswith("-"), limit=p["limit"],
                          after=_decode_cursor(p["cursor"], sort) if p["cursor"] else None)

    def link_next(request: Request, response: Response, sort: str, page: FacetPage) -> None:
        if page.next_after is not None:
            next_url = request.url.include_query_params(cursor=cursors.encode(sort, *page.next_after))
            response.headers["Link"] = f'<{next_url}>; rel="next"'

    async def common(q: Annotated[str | None, Query(description="free text over title, summary, description, tags")] = None,
                     tags: Annotated[list[str], Query(description="has all of these tags")] = [],  # noqa: B006
                     tags_any: Annotated[list[str], Query(description="has at least one of these tags")] = [],  # noqa: B006
                     not_tags: Annotated[list[str], Query(description="does not have all of these tags")] = [],  # noqa: B006
                     not_tags_any: Annotated[list[str], Query(description="has none of these tags")] = [],  # noqa: B006
                     tasks: Annotated[list[str], Query(description="has one of these tasks",
                                                       json_schema_extra=_labels("tasks"))] = [],  # noqa: B006
                     libraries: Annotated[list[str], Query(description="uses one of these libraries",
                                                       json_schema_extra=_labels("libraries"))] = [],  # noqa: B006
                     categories: Annotated[list[str], Query(description="in one of these categories",
                                                       json_schema_extra=_labels("categories"))] = [],  # noqa: B006
                     data_types: Annotated[list[str], Query(description="takes one of these data types",
                                                       json_schema_extra=_labels("data_types"))] = [],  # noqa: B006
                     sort: Annotated[str, Query(description="identifier|title|created|updated, '-' first for descending",
                                                json_schema_extra={"enum": [*SORT_KEYS, *(f"-{k}" for k in SORT_KEYS)]})]
                     = "identifier",
                     limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
                     cursor: Annotated[str | None, Query(description="from the Link header of the previous page")] = None,
                     ) -> dict[str, Any]:
        return dict(q=q, tags=tags, tags_any=tags_any, not_tags=not_tags, not_tags_any=not_tags_any, tasks=tasks,
                    libraries=libraries, categories=categories, data_types=data_types, sort=sort, limit=limit,
                    cursor=cursor)

    # One set of routes per kind, spelled out: `/modules/{name}/metadata` then has GET, PUT and
    # DELETE under one path, as OpenAPI clients (and the Allow header) expect.
    # Handlers are coroutines: a plain `def` handler costs FastAPI a worker-thread hop for the
    # handler, one for each plain dependency and one for validating its answer. Work that can take
    # long (SQLite queries, which run without the GIL; the documents of a whole page) goes to a
    # worker thread in one hop; one asset from the embedded store is read on the event loop
    # (`access.read_asset`).
    for kind in Kind:
        async def names(request: Request, response: Response, params: Annotated[dict[str, Any], Depends(common)],
                        kind: Kind = kind) -> list[str]:
            query = listing_query(request, kind, params)
            page = await read(graph, graph.index.filter, query)
            link_next(request, response, params["sort"], page)
            return [iri.rsplit("/", 1)[-1] for iri in page.iris]

        async def details(request: Request, response: Response, params: Annotated[dict[str, Any], Depends(common)],
                          kind: Kind = kind) -> list[dict[str, Any]]:
            query = listing_query(request, kind, params)

            def work() -> tuple[FacetPage, list[dict[str, Any]]]:
                page = graph.index.filter(query)
                return page, [_summary(graph, iri) for iri in page.iris]

            page, summaries = await read(graph, work)
            link_next(request, response, params["sort"], page)
            return summaries

        async def metadata(request: Request, name: str, kind: Kind = kind) -> dict[str, Any]:
            readers = readers_of(request)
            return await read_asset(graph, lambda: document_of(_asset_quads(graph, kind, name, readers), "v2"))

        for function in (names, details, metadata):  # `kind` is fixed per route, not a parameter
            function.__signature__ = _without_kind(function)  # type: ignore[attr-defined]
        routes.get(f"/{kind.value}", summary=f"Names of the {kind.value}", operation_id=f"{kind.value}_names")(names)
        routes.get(f"/{kind.value}/detail", summary=f"Summaries of the {kind.value}",
                   operation_id=f"{kind.value}_details")(details)
        routes.get(f"/{kind.value}/{{name}}/metadata", summary=f"The ai4-metadata document of one of the {kind.value}",
                   operation_id=f"{kind.value}_metadata")(metadata)

    @routes.put("/modules/{name}/metadata", summary="Publish or replace a module from its ai4-metadata document",
                status_code=200, openapi_extra={"requestBody": {"required": True, "content": {
                    "application/yaml": {"schema": {"type": "string"}},
                    "application/json": {"schema": {"type": "object"}}}}},
                responses={401: problems.RESPONSES[400] | {"description": "Sign in first"},
                           403: problems.RESPONSES[400] | {"description": "Not a member of that VO, or the name is "
                                                            "taken by another VO's module"},
                           413: problems.RESPONSES[400] | {"description": "Body over AI4KG_MAX_BODY_BYTES (1 MiB)"}})
    async def publish(request: Request, response: Response, name: str,
                      vo: Annotated[str | None, Query(description="owning VO (default: your only VO)")] = None,
                      visibility: Annotated[str, Query(json_schema_extra={"enum": list(VISIBILITIES)})] = PUBLIC,
                      ) -> dict[str, Any]:
        """The same checks as `ai4kg import` (schema, mapping, SHACL): any error writes nothing and
        comes back as 422 naming each field. A member of a VO publishes for that VO; a name taken by
        another VO's module gets 403 (whether you may see that module or not)."""
        identity = writer(identity_of(request))  # before the body: an anonymous write is not worth reading
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body = await request.body()  # at most AI4KG_MAX_BODY_BYTES (api/limits.py)
        published = await anyio.to_thread.run_sync(
            lambda: publish_module(graph, identity, name, body, media.endswith("json"), vo, visibility))
        response.status_code = 201 if published.created else 200
        return {"name": published.name, "iri": published.iri, "vo": published.vo,
                "visibility": published.visibility, "warnings": published.warnings}

    @routes.delete("/modules/{name}/metadata", status_code=204, summary="Withdraw a module",
                   responses={401: problems.RESPONSES[400] | {"description": "Sign in first"},
                              403: problems.RESPONSES[400] | {"description": "Not a member of its VO"}})
    def withdraw(request: Request, name: str) -> Response:
        withdraw_module(graph, identity_of(request), name)
        return Response(status_code=204)

    return routes


def _without_kind(function: Any) -> inspect.Signature:
    signature = inspect.signature(function)
    return signature.replace(parameters=[p for p in signature.parameters.values() if p.name != "kind"])


def _asset_quads(graph: KnowledgeGraph, kind: Kind, name: str, readers: Readers) -> list:
    quads = visible_quads(graph, asset_iri(graph.settings.base_url, "Module", name), readers) \
        if is_valid_identifier(name) else []
    is_tool = any(q.object.value.endswith("/category/ai4-tools") for q in quads)
    if not quads or is_tool != (kind is Kind.tools):
        raise Problem(404, "Not found", f"no {kind.value[:-1]} named {name!r}", "name", name)
    return quads


def _summary(graph: KnowledgeGraph, iri: str) -> dict[str, Any]:
    document = document_of(graph.asset_quads(iri), "v2")
    summary = {"name": iri.rsplit("/", 1)[-1], "iri": iri}
    summary.update({key: document[key] for key in _SUMMARY_FIELDS if key in document})
    return summary
