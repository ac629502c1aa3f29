"""SPARQL 1.1 Protocol query operation (https://www.w3.org/TR/sparql11-protocol/), read-only.

GET ?query=, POST application/x-www-form-urlencoded (query=) and POST application/sparql-query,
with default-graph-uri / named-graph-uri, and results negotiated by Accept like Oxigraph's server.
Without a default-graph-uri the default graph is the union of all graphs.
"""

from __future__ import annotations

import pyoxigraph as ox
from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from ..graph.store import KnowledgeGraph

_RESULT_FORMATS = [
    ("application/sparql-results+json", ox.QueryResultsFormat.JSON),
    ("application/sparql-results+xml", ox.QueryResultsFormat.XML),
    ("text/csv", ox.QueryResultsFormat.CSV),
    ("text/tab-separated-values", ox.QueryResultsFormat.TSV),
    ("application/json", ox.QueryResultsFormat.JSON),
]
_GRAPH_FORMATS = [
    ("text/turtle", ox.RdfFormat.TURTLE),
    ("application/n-triples", ox.RdfFormat.N_TRIPLES),
    ("application/rdf+xml", ox.RdfFormat.RDF_XML),
    ("application/ld+json", ox.RdfFormat.JSON_LD),
    ("application/trig", ox.RdfFormat.TRIG),
    ("application/n-quads", ox.RdfFormat.N_QUADS),
]


def _negotiate(accept: str, offers: list[tuple[str, object]]) -> tuple[str, object] | None:
    """The best offer for an Accept header (q-values honoured; */* and type/* accepted)."""
    if not accept.strip():
        return offers[0]
    ranges = []
    for position, part in enumerate(accept.split(",")):
        media, *params = [p.strip() for p in part.split(";")]
        quality = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    quality = float(param[2:])
                except ValueError:
                    quality = 0.0
        ranges.append((quality, -position, media.lower()))
    for quality, _, media in sorted(ranges, reverse=True):
        if quality <= 0:
            continue
        for offer in offers:
            kind = offer[0]
            if media in ("*/*", kind) or (media.endswith("/*") and kind.startswith(media[:-1])):
                return offer
    return None


def router(graph: KnowledgeGraph) -> APIRouter:
    routes = APIRouter()

    async def run(request: Request, query: str | None, default_graphs: list[str], named_graphs: list[str]) -> Response:
        if not query:
            return PlainTextResponse("no SPARQL query given: pass it as 'query'", status_code=400)
        options = {}
        try:
            if default_graphs:
                options["default_graph"] = [ox.NamedNode(g) for g in default_graphs]
            if named_graphs:
                options["named_graphs"] = [ox.NamedNode(g) for g in named_graphs]
        except ValueError as exc:
            return PlainTextResponse(f"invalid graph IRI: {exc}", status_code=400)
        try:
            result = graph.query(query, **options)
        except SyntaxError as exc:
            return PlainTextResponse(f"invalid SPARQL query: {exc}", status_code=400)
        accept = request.headers.get("accept", "")
        if isinstance(result, ox.QueryTriples):
            chosen = _negotiate(accept, _GRAPH_FORMATS)
            if chosen is None:
                return PlainTextResponse(f"no supported RDF format in Accept: {accept}", status_code=406)
            return Response(result.serialize(format=chosen[1]), media_type=chosen[0])
        chosen = _negotiate(accept, _RESULT_FORMATS)
        if chosen is None:
            return PlainTextResponse(f"no supported results format in Accept: {accept}", status_code=406)
        return Response(result.serialize(format=chosen[1]), media_type=chosen[0])

    @routes.get("/sparql")
    async def sparql_get(request: Request) -> Response:
        params = request.query_params
        if len(params.getlist("query")) > 1:
            return PlainTextResponse("more than one 'query' parameter", status_code=400)
        return await run(request, params.get("query"), params.getlist("default-graph-uri"),
                         params.getlist("named-graph-uri"))

    @routes.post("/sparql")
    async def sparql_post(request: Request) -> Response:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        params = request.query_params
        if content_type == "application/sparql-query":
            body = (await request.body()).decode("utf-8", errors="replace")
            return await run(request, body, params.getlist("default-graph-uri"), params.getlist("named-graph-uri"))
        if content_type == "application/x-www-form-urlencoded":
            form = await request.form()
            queries = form.getlist("query")
            if len(queries) > 1:
                return PlainTextResponse("more than one 'query' parameter", status_code=400)
            return await run(request, str(queries[0]) if queries else None,
                             [str(g) for g in form.getlist("default-graph-uri")],
                             [str(g) for g in form.getlist("named-graph-uri")])
        return PlainTextResponse(f"unsupported Content-Type {content_type!r}: use application/sparql-query "
                                 "or application/x-www-form-urlencoded", status_code=415)

    return routes
