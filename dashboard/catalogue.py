"""The catalogue page (`/`): search, facets with counts, sort, pages; from the search index alone.

    /?q=flood&library=pytorch&library=tensorflow&task=segmentation&sort=-updated&after=CURSOR

Values of one facet are alternatives (any of them), facets combine (all must hold). A facet with a
choice made counts its values as if that choice were not made (the other facets' choices applied),
so that a second library can be added to the first; the others count among the matching modules.
The page reads no asset's graph: titles, summaries and dates come from the index (`SearchIndex.cards`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from ..api import cursors
from ..api.access import read
from ..graph.search import SORT_KEYS, FacetQuery
from ..graph.store import KnowledgeGraph
from ..metadata.vocabulary import labels
from .links import page_path
from .session import readers
from .templating import render

PAGE_SIZE = 20
MOST_VALUES = 12
"""Values a facet shows: its most frequent, and every chosen one."""


@dataclass(frozen=True)
class Facet:
    parameter: str
    """The URL parameter (also the form field)."""
    field: str
    """The search index's facet field."""
    title: str
    scheme: str | None = None
    """The vocabulary whose labels name its values."""


FACETS = (Facet("task", "task", "Task", "task"), Facet("library", "library", "Library", "library"),
          Facet("category", "category", "Category", "category"), Facet("data_type", "dataType", "Data type", "data-type"),
          Facet("tag", "tag", "Tag"), Facet("vo", "vo", "Virtual organisation"))
SORTS = {"title": "Title (A-Z)", "-updated": "Recently updated", "-created": "Newest", "created": "Oldest",
         "identifier": "Identifier"}


def router(graph: KnowledgeGraph) -> APIRouter:
    routes = APIRouter(include_in_schema=False)

    @routes.get("/", response_class=HTMLResponse)
    async def catalogue(request: Request) -> HTMLResponse:
        params = request.query_params
        text = (params.get("q") or "").strip() or None
        chosen = {facet.parameter: tuple(dict.fromkeys(v.strip() for v in params.getlist(facet.parameter) if v.strip()))
                  for facet in FACETS}
        sort = params.get("sort") or "title"
        errors: dict[str, str] = {}
        if sort not in SORTS or sort.removeprefix("-") not in SORT_KEYS:
            errors["sort"] = f"sort is one of {', '.join(SORTS)}, not {sort!r}"
            sort = "title"
        after = None
        if params.get("after"):
            try:
                after = cursors.decode(params["after"], sort)
            except cursors.InvalidCursor as exc:
                errors["after"] = f"after: {exc}; showing the first page"
        query = FacetQuery(kind="Module", readers=readers(request), text=text,
                           any_of=tuple((f.field, chosen[f.parameter]) for f in FACETS if chosen[f.parameter]),
                           sort=sort.removeprefix("-"), descending=sort.startswith("-"), limit=PAGE_SIZE, after=after)

        def work() -> dict[str, Any]:
            index = graph.index
            page = index.filter(query)
            picked = {f.field: chosen[f.parameter] for f in FACETS}
            total, counts = index.facet_counts(query, [f.field for f in FACETS if not chosen[f.parameter]], MOST_VALUES)
            for facet in FACETS:  # a facet with a choice counts as if it were not made
                if chosen[facet.parameter]:
                    others = replace(query, any_of=tuple(e for e in query.any_of if e[0] != facet.field))
                    counts[facet.field] = index.facet_counts(others, [facet.field], MOST_VALUES, picked)[1][facet.field]
            return {"page": page, "total": total, "counts": counts, "cards": index.cards(page.iris)}

        found = await read(graph, work)
        page = found["page"]
        names = labels()
        facets = []
        for facet in FACETS:
            scheme = names.get(facet.scheme or "", {})
            facets.append({"facet": facet, "values": [
                {"value": value, "label": scheme.get(value, value) or "(none)", "count": count,
                 "checked": value in chosen[facet.parameter]} for value, count in found["counts"][facet.field]]})
        cards = [{"iri": iri, "path": page_path(graph.settings.base_url, iri), **found["cards"].get(iri, {})}
                 for iri in page.iris]
        next_url = None
        if page.next_after is not None:
            next_url = str(request.url.include_query_params(after=cursors.encode(sort.removeprefix("-"), *page.next_after)))
        first_url = str(request.url.remove_query_params("after")) if after else None
        return render(request, "catalogue.html", q=text or "", facets=facets, sorts=SORTS, sort=sort, cards=cards,
                      total=found["total"], next_url=next_url, first_url=first_url, errors=errors,
                      filtered=bool(text or any(chosen.values())))

    return routes
