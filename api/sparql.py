"""SPARQL 1.1 Protocol (https://www.w3.org/TR/sparql11-protocol/): queries for everyone, updates for
the platform administrator.

Modelled on Oxigraph's server:
- GET ?query=, POST application/x-www-form-urlencoded (query= in the body and/or the URL) and POST
  application/sparql-query (the query is the body). Requests must be UTF-8. Other methods get 405.
- default-graph-uri / named-graph-uri: when either is given, the two lists are the dataset and
  replace the query's FROM / FROM NAMED (an empty list is an empty default graph or no named
  graphs). Otherwise the query's FROM / FROM NAMED apply, and without them the default graph is
  the union of all graphs.
- Relative IRIs in a query resolve against the endpoint URL (`CONSTRUCT { <s> <p> 1 } WHERE {}`).
- Results by Accept: SELECT as SPARQL JSON, XML, CSV or TSV; ASK as SPARQL JSON or XML;
  CONSTRUCT / DESCRIBE as Turtle, N-Triples, RDF/XML, JSON-LD, TriG or N-Quads. The first of each
  list is the default.
- GET without parameters returns the service description (Turtle by default).
- Updates: POST application/sparql-update (the update is the body) or a form with update=, by
  the platform administrator only (401 without credentials, 403 without the admin role); 204 when
  done. using-graph-uri / using-named-graph-uri become USING clauses of each DELETE/INSERT
  (400 when the update has its own USING or WITH). An update's WHERE reads the store's real
  default graph, which holds nothing: assets live in named graphs, so match them with GRAPH or
  USING. Updates bypass the SHACL shapes (KnowledgeGraph.update keeps the search index in step)
  and have no timeout: Oxigraph cannot stop one half-way, and a client must know whether it ran.

Limits (Settings.sparql_timeout, Settings.sparql_result_limit). A query runs in a thread of its
own (api/query_threads.py; pyoxigraph releases the GIL) and its solutions or triples are collected
before anything is serialised, so a client never gets a truncated result that looks complete:
- more rows than the limit: 422, naming the limit; nothing of the result is sent;
- past the deadline: 503, naming the timeout. The client gets the answer at the deadline.
  pyoxigraph 0.5 cannot stop a query inside one step: a query it computes whole before its first
  solution (ASK, ORDER BY, GROUP BY, aggregates) runs in a process of its own, killed at the
  deadline (api/query_process.py); any other stops at its next solution, and one stuck in a
  single step runs on, abandoned, holding no lock, at the lowest priority. A caller with too many
  such heavy queries running gets 429 (query_threads.QueryThreads).
- SERVICE is refused unless the administrator allows endpoints (api/sparql_services.py).
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qsl

import anyio.to_thread
import pyoxigraph as ox
from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..graph.datasets import DatasetConflict, computes_whole, dataset_clause, total_order, with_using
from ..graph.search import Readers
from ..graph.store import KnowledgeGraph
from .access import readers_of
from .auth import Identity, identity_of
from .negotiation import negotiate
from .problems import Problem
from .query_process import can_fork, run_forked
from .query_threads import QueryThreads, QueryTimedOut
from .sparql_services import FederatedQueries

_SOLUTION_FORMATS: list[tuple[str, Any]] = [
    ("application/sparql-results+json", ox.QueryResultsFormat.JSON),
    ("application/sparql-results+xml", ox.QueryResultsFormat.XML),
    ("text/csv", ox.QueryResultsFormat.CSV),
    ("text/tab-separated-values", ox.QueryResultsFormat.TSV),
    ("application/json", ox.QueryResultsFormat.JSON),
]
_BOOLEAN_FORMATS = [_SOLUTION_FORMATS[0], _SOLUTION_FORMATS[1], _SOLUTION_FORMATS[4]]  # CSV, TSV: no booleans
_GRAPH_FORMATS: list[tuple[str, Any]] = [
    ("text/turtle", ox.RdfFormat.TURTLE),
    ("application/n-triples", ox.RdfFormat.N_TRIPLES),
    ("application/rdf+xml", ox.RdfFormat.RDF_XML),
    ("application/ld+json", ox.RdfFormat.JSON_LD),
    ("application/trig", ox.RdfFormat.TRIG),
    ("application/n-quads", ox.RdfFormat.N_QUADS),
]
_ALLOWED_METHODS = "GET, POST"

SD = "http://www.w3.org/ns/sparql-service-description#"
_FORMATS = "http://www.w3.org/ns/formats/"
_FORMAT_NAMES = {
    ox.QueryResultsFormat.JSON: "SPARQL_Results_JSON", ox.QueryResultsFormat.XML: "SPARQL_Results_XML",
    ox.QueryResultsFormat.CSV: "SPARQL_Results_CSV", ox.QueryResultsFormat.TSV: "SPARQL_Results_TSV",
    ox.RdfFormat.TURTLE: "Turtle", ox.RdfFormat.N_TRIPLES: "N-Triples", ox.RdfFormat.RDF_XML: "RDF_XML",
    ox.RdfFormat.JSON_LD: "JSON-LD", ox.RdfFormat.TRIG: "TriG", ox.RdfFormat.N_QUADS: "N-Quads",
}
_XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"
_ABANDON_AFTER = 0.5
"""Seconds past the deadline after which a query that has not answered is abandoned."""


def _utf8(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Problem(400, "Request is not UTF-8",
                      f"the {where} is not valid UTF-8 (byte {data[exc.start]:#04x} at offset {exc.start}): "
                      "SPARQL requests must be sent as UTF-8") from None


def _form(data: bytes, where: str) -> list[tuple[str, str]]:
    """Parameters of a query string or form body; invalid UTF-8 is an error, never replaced silently."""
    try:
        return parse_qsl(_utf8(data, where), keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise Problem(400, "Request is not UTF-8", f"a percent-encoded value in the {where} is not valid UTF-8: "
                      "SPARQL requests must be sent as UTF-8") from None


def _endpoint(request: Request) -> str:
    """The endpoint URL: the base of relative IRIs in queries and the service description's sd:endpoint."""
    return str(request.url.replace(query="", fragment=""))


def _term_json(term: Any) -> dict[str, Any]:
    """A term in SPARQL 1.1 (and 1.2: triple terms, base direction) JSON results, as Oxigraph writes it."""
    if isinstance(term, ox.NamedNode):
        return {"type": "uri", "value": term.value}
    if isinstance(term, ox.BlankNode):
        return {"type": "bnode", "value": term.value}
    if isinstance(term, ox.Triple):
        return {"type": "triple", "value": {"subject": _term_json(term.subject),
                                             "predicate": _term_json(term.predicate),
                                             "object": _term_json(term.object)}}
    literal: dict[str, Any] = {"type": "literal", "value": term.value}
    if term.language:
        literal["xml:lang"] = term.language
        if term.direction is not None:
            literal["its:dir"] = term.direction.value
    elif term.datatype.value != _XSD_STRING:
        literal["datatype"] = term.datatype.value
    return literal


def serialize_solutions(variables: list[ox.Variable], solutions: list[ox.QuerySolution], format: Any) -> bytes:
    """Collected solutions in a results format: JSON written here, the other formats by Oxigraph from it."""
    names = [v.value for v in variables]
    bindings = [{name: _term_json(value) for name, value in zip(names, (s[v] for v in variables))
                 if value is not None} for s in solutions]
    document = json.dumps({"head": {"vars": names}, "results": {"bindings": bindings}},
                          ensure_ascii=False, separators=(",", ":")).encode()
    if format == ox.QueryResultsFormat.JSON:
        return document
    return ox.parse_query_results(document, format=ox.QueryResultsFormat.JSON).serialize(format=format)


def service_description(endpoint: str, format: Any) -> bytes:
    """What this endpoint offers, in the SPARQL 1.1 Service Description vocabulary."""
    def sd(name: str) -> ox.NamedNode:
        return ox.NamedNode(SD + name)

    service, dataset, default_graph = ox.BlankNode(), ox.BlankNode(), ox.BlankNode()
    a = ox.NamedNode("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
    formats = dict.fromkeys(f for _, f in _SOLUTION_FORMATS + _GRAPH_FORMATS)
    triples = [
        ox.Triple(service, a, sd("Service")),
        ox.Triple(service, sd("endpoint"), ox.NamedNode(endpoint)),
        ox.Triple(service, sd("supportedLanguage"), sd("SPARQL10Query")),
        ox.Triple(service, sd("supportedLanguage"), sd("SPARQL11Query")),
        ox.Triple(service, sd("supportedLanguage"), sd("SPARQL11Update")),
        *(ox.Triple(service, sd("resultFormat"), ox.NamedNode(_FORMATS + _FORMAT_NAMES[f])) for f in formats),
        ox.Triple(service, sd("feature"), sd("UnionDefaultGraph")),
        ox.Triple(service, sd("defaultEntailmentRegime"), ox.NamedNode("http://www.w3.org/ns/entailment/Simple")),
        ox.Triple(service, sd("defaultDataset"), dataset),
        ox.Triple(dataset, a, sd("Dataset")),
        ox.Triple(dataset, sd("defaultGraph"), default_graph),
        ox.Triple(default_graph, a, sd("Graph")),
    ]
    return ox.serialize(triples, format=format, prefixes={"sd": SD, "formats": _FORMATS})


def _timed_out(seconds: float) -> Problem:
    return Problem(503, "Query timed out",
                   f"the query did not finish within the SPARQL timeout of {seconds:g} s; make it more selective, "
                   "or raise the timeout (AI4KG_SPARQL_TIMEOUT, in seconds)")


def _too_many(limit: int) -> Problem:
    return Problem(422, "Result limit exceeded",
                   f"the query returns more than the SPARQL result limit of {limit} rows or triples, and none were "
                   "sent; page with LIMIT and OFFSET (ordered by ORDER BY), or raise the limit "
                   "(AI4KG_SPARQL_RESULT_LIMIT)")


def _one(params: list[tuple[str, str]], body: str | None, operation: str) -> str:
    """The one query or update of a request, from the `operation` parameters and the body."""
    other = "update" if operation == "query" else "query"
    if any(name == other for name, _ in params):
        raise Problem(400, "Both a query and an update", "a request carries a query or an update, not both",
                      parameter=other)
    media = f"application/sparql-{operation}"
    texts = [value for name, value in params if name == operation] + ([] if body is None else [body])
    if len(texts) > 1:
        raise Problem(400, f"More than one {operation}", f"give exactly one {operation} (one '{operation}' "
                      f"parameter, or the body of an {media} POST)", parameter=operation)
    if not texts or not texts[0].strip():
        raise Problem(400, f"No {operation}", f"no SPARQL {operation} given: pass it as the '{operation}' "
                      f"parameter, or POST it as {media}", parameter=operation)
    _refuse_parameters(params, operation)
    return texts[0]


_DATASET_PARAMETERS = {"query": ("default-graph-uri", "named-graph-uri"),
                       "update": ("using-graph-uri", "using-named-graph-uri")}


def _refuse_parameters(params: list[tuple[str, str]], operation: str) -> None:
    """The other operation's dataset parameters are an error, not silently ignored."""
    other = "update" if operation == "query" else "query"
    for name, _ in params:
        if name in _DATASET_PARAMETERS[other]:
            raise Problem(400, "Parameter of the other operation",
                          f"{name} applies to SPARQL {other}s; a {operation} takes "
                          f"{' and '.join(_DATASET_PARAMETERS[operation])}", parameter=name)


def _graph_iris(params: list[tuple[str, str]], name: str) -> list[ox.NamedNode]:
    try:
        return [ox.NamedNode(value) for key, value in params if key == name]
    except ValueError as exc:
        value = next(v for k, v in params if k == name and not _is_iri(v))
        raise Problem(400, "Invalid graph IRI", f"{name} must be an absolute IRI: {exc}",
                      parameter=name, value=value) from None


def _is_iri(value: str) -> bool:
    try:
        ox.NamedNode(value)
    except ValueError:
        return False
    return True


def _protocol_dataset(params: list[tuple[str, str]]) -> dict[str, list[ox.NamedNode]]:
    """KnowledgeGraph.query options for default-graph-uri / named-graph-uri: both lists when either is
    given (they replace FROM and FROM NAMED together), none otherwise."""
    dataset = {"default_graph": _graph_iris(params, "default-graph-uri"),
               "named_graphs": _graph_iris(params, "named-graph-uri")}
    return dataset if any(dataset.values()) else {}


def _confined(graph: KnowledgeGraph, query: str, dataset: dict[str, list[ox.NamedNode]], readers: Readers,
              base_iri: str) -> dict[str, list[ox.NamedNode]]:
    """The dataset a reader queries: what the protocol (or else the query's FROM, or else the union of
    all graphs) names, cut down to the graphs the reader may see. Naming another VO's graph, in
    the protocol, in FROM or in GRAPH <...>, finds nothing, as if the graph did not exist."""
    visible = graph.visible_graphs(readers)
    if visible is None:
        return dataset
    allowed = set(visible)
    if dataset:
        default, named = [g.value for g in dataset["default_graph"]], [g.value for g in dataset["named_graphs"]]
    else:
        try:
            clause = dataset_clause(query, base_iri)
        except SyntaxError as exc:
            raise Problem(400, "Invalid SPARQL query", str(exc), parameter="query") from None
        default, named = (clause.default, clause.named) if clause else (sorted(allowed), sorted(allowed))
    return {"default_graph": [ox.NamedNode(g) for g in default if g in allowed],
            "named_graphs": [ox.NamedNode(g) for g in named if g in allowed]}


def _evaluate(graph: KnowledgeGraph, query: str, dataset: dict[str, list[ox.NamedNode]], base_iri: str,
              accept: str, deadline: float, in_process: bool) -> tuple[str, bytes]:
    """Run the query, collect its rows until the result limit or the deadline, then serialise them.

    Runs in a thread of its own (api/query_threads.py); `in_process` (`_in_process_of_its_own`):
    in a process of its own, killed at the deadline (api/query_process.py). Once the deadline
    passes, the next row ends a query."""
    try:
        if in_process:
            return run_forked(graph, lambda: _collect(graph, query, dataset, base_iri, accept, deadline), deadline,
                              graph.settings.sparql_query_memory, lambda: _timed_out(graph.settings.sparql_timeout))
        return _collect(graph, query, dataset, base_iri, accept, deadline)
    except OSError as exc:  # a SERVICE call that failed (api/sparql_services.py says why), or the store
        reason = str(exc).split("with payload:", 1)[-1].strip()
        raise Problem(502, "Federated query failed", f"a SERVICE call failed: {reason}", parameter="query") from None


def _in_process_of_its_own(graph: KnowledgeGraph, query: str) -> bool:
    """Whether the query runs in a forked process: one Oxigraph computes whole, on the embedded store
    (an Oxigraph server stops its own queries)."""
    return isinstance(graph.store, ox.Store) and can_fork() and computes_whole(query)


def _collect(graph: KnowledgeGraph, query: str, dataset: dict[str, list[ox.NamedNode]], base_iri: str,
             accept: str, deadline: float) -> tuple[str, bytes]:
    settings = graph.settings
    try:
        result = graph.query(query, base_iri=base_iri, **dataset)
    except (SyntaxError, ValueError) as exc:
        raise Problem(400, "Invalid SPARQL query", str(exc), parameter="query") from None
    try:
        if time.monotonic() > deadline:
            raise _timed_out(settings.sparql_timeout)
        if isinstance(result, ox.QueryBoolean):
            media, format = negotiate(accept, _BOOLEAN_FORMATS, "ASK results")
            return media, result.serialize(format=format)
        is_graph = isinstance(result, ox.QueryTriples)
        media, format = negotiate(accept, _GRAPH_FORMATS if is_graph else _SOLUTION_FORMATS,
                                   "RDF" if is_graph else "SELECT results")
        items = []
        for item in result:
            if len(items) == settings.sparql_result_limit:
                raise _too_many(settings.sparql_result_limit)
            if time.monotonic() > deadline:
                raise _timed_out(settings.sparql_timeout)
            items.append(item)
        if is_graph:
            return media, ox.serialize(items, format=format)
        return media, serialize_solutions(result.variables, items, format)
    finally:
        del result  # pyoxigraph's result iterators must be dropped on the thread that made them


def caller_of(request: Request, identity: Identity | None) -> str:
    """Whose query this is, for the limits on heavy queries: the signed-in subject, or else the
    client's address (anonymous callers behind one address share a budget)."""
    if identity is not None:
        return f"{identity.via}:{identity.subject}"
    return f"anonymous:{request.client.host if request.client else 'unknown'}"


class Queries:
    """How a query runs for a reader: SERVICE checked, its dataset confined to what the reader may see,
    in a thread of its own with the timeout, the result limit and the limits on heavy queries.
    /sparql and the dashboard's SPARQL page (dashboard/query.py) share the app's one (`queries_of`)."""

    def __init__(self, graph: KnowledgeGraph):
        self.graph, settings = graph, graph.settings
        self.threads = QueryThreads(settings.sparql_heavy_per_caller, settings.sparql_heavy_limit)
        self.services = FederatedQueries(settings)

    async def run(self, text: str, params: list[tuple[str, str]], readers: Readers, caller: str, endpoint: str,
                  accept: str) -> tuple[str, bytes]:
        """The query's results serialised as `accept` asks (media type, body); a Problem when it cannot
        be answered (invalid, too many rows, past the timeout, too many heavy queries)."""
        graph = self.graph
        query = total_order(self.services.prepare(text))
        dataset = _confined(graph, query, _protocol_dataset(params), readers, endpoint)
        timeout = graph.settings.sparql_timeout
        deadline, in_process = time.monotonic() + timeout, _in_process_of_its_own(graph, query)
        try:
            # The query answers 503 itself at the deadline (between rows, or by killing its process);
            # only one stuck inside a single step is abandoned, a moment later.
            return await self.threads.run(caller, timeout + _ABANDON_AFTER, lambda: _evaluate(
                graph, query, dataset, endpoint, accept, deadline, in_process), heavy=in_process)
        except QueryTimedOut:
            raise _timed_out(timeout) from None


def queries_of(request: Request, graph: KnowledgeGraph) -> Queries:
    """The app's `Queries` (made on first use)."""
    state = request.app.state
    found = getattr(state, "sparql_queries", None)
    if found is None:
        found = state.sparql_queries = Queries(graph)
    return found


def _openapi(post: bool) -> dict[str, Any]:
    """The protocol's parameters and answers for /docs (the handlers read the raw request themselves)."""
    iri_list = {"type": "array", "items": {"type": "string"}}
    names = ["default-graph-uri", "named-graph-uri"] + (["using-graph-uri", "using-named-graph-uri"] if post else [])
    parameters = [{"name": name, "in": "query", "schema": iri_list, "style": "form", "explode": True} for name in names]
    if not post:
        parameters.insert(0, {"name": "query", "in": "query", "schema": {"type": "string"},
                              "description": "the SPARQL query; without any parameter: the service description"})
    answers = {"200": {"description": "results, or the service description",
                       "content": {media: {} for media, _ in _SOLUTION_FORMATS + _GRAPH_FORMATS}}}
    errors = [("400", "no query, several, invalid SPARQL or IRI, not UTF-8, a SERVICE not allowed"),
              ("406", "no format fits Accept"), ("422", "more rows than the result limit"),
              ("429", "too many of the caller's heavy queries still run"),
              ("502", "a SERVICE call failed"), ("507", "the query needed more memory than a query may use"),
              ("503", "past the query timeout, or too many heavy queries run")]
    if post:
        answers["204"] = {"description": "the update is done"}
        errors += [("401", "an update without credentials"), ("403", "an update by someone not administrator"),
                   ("415", "unsupported Content-Type"), ("502", "an update failed (a LOAD source): nothing written")]
    for status, why in errors:
        answers[status] = {"description": why, "content": {"application/problem+json": {}}}
    extra: dict[str, Any] = {"parameters": parameters, "responses": answers}
    if post:
        extra["requestBody"] = {"required": True, "content": {
            "application/sparql-query": {"schema": {"type": "string"}},
            "application/sparql-update": {"schema": {"type": "string"}},
            "application/x-www-form-urlencoded": {"schema": {
                "type": "object",
                "properties": {"query": {"type": "string"}, "update": {"type": "string"},
                               **{name: iri_list for name in names}}}}}}
    return extra


def router(graph: KnowledgeGraph) -> APIRouter:
    routes = APIRouter(tags=["sparql"])

    async def answer(request: Request, params: list[tuple[str, str]], body_query: str | None) -> Response:
        media, body = await queries_of(request, graph).run(
            _one(params, body_query, "query"), params, readers_of(request), caller_of(request, identity_of(request)),
            _endpoint(request), request.headers.get("accept", ""))
        return Response(body, media_type=media)

    def administrator(request: Request) -> None:
        """401 / 403 unless the platform administrator asks: checked before an update's body is read."""
        identity = identity_of(request)
        if identity is None:
            raise Problem(401, "Unauthorized", "SPARQL Update needs the platform administrator: sign in "
                          "(a bearer token or an API key)", "Authorization", headers={"WWW-Authenticate": "Bearer"})
        if not identity.admin:
            raise Problem(403, "Forbidden", f"SPARQL Update needs the platform administrator role "
                          f"({graph.settings.admin_role}); publish modules through /v1/catalog instead",
                          "Authorization")

    async def run_update(request: Request, params: list[tuple[str, str]], body_update: str | None) -> Response:
        administrator(request)
        update = _one(params, body_update, "update")
        using = {name: [str(iri) for iri in _graph_iris(params, name)] for name in _DATASET_PARAMETERS["update"]}
        try:
            update = with_using(update, using["using-graph-uri"], using["using-named-graph-uri"])
        except DatasetConflict as exc:
            raise Problem(400, "Dataset given twice", str(exc), parameter="using-graph-uri") from None
        try:
            await anyio.to_thread.run_sync(lambda: graph.update(update, base_iri=_endpoint(request)))
        except (SyntaxError, ValueError) as exc:
            raise Problem(400, "Invalid SPARQL update", str(exc), parameter="update") from None
        except OSError as exc:  # e.g. LOAD of a document that cannot be fetched; Oxigraph rolled back
            raise Problem(502, "Update failed", f"nothing was written: {exc}", parameter="update") from None
        return Response(status_code=204)

    @routes.get("/sparql", summary="SPARQL query, or the service description", openapi_extra=_openapi(post=False),
                response_class=Response)
    async def sparql_get(request: Request) -> Response:
        params = _form(request.scope["query_string"], "URL query string")
        if not params:
            media, format = negotiate(request.headers.get("accept", ""), _GRAPH_FORMATS, "RDF")
            return Response(service_description(_endpoint(request), format), media_type=media)
        if any(name == "update" for name, _ in params):
            raise Problem(400, "SPARQL Update needs POST", "updates change the store and are only accepted by "
                          "POST (application/sparql-update, or a form with 'update')", parameter="update")
        return await answer(request, params, None)

    @routes.post("/sparql", summary="SPARQL query, or update (administrator)", openapi_extra=_openapi(post=True),
                 response_class=Response)
    async def sparql_post(request: Request) -> Response:
        content_type = request.headers.get("content-type", "")
        media = content_type.split(";")[0].strip().lower()
        params = _form(request.scope["query_string"], "URL query string")
        if media == "application/sparql-query":
            return await answer(request, params, _utf8(await request.body(), "request body"))
        if media == "application/sparql-update":
            administrator(request)  # before a byte of the body is read
            return await run_update(request, params, _utf8(await request.body(), "request body"))
        if media == "application/x-www-form-urlencoded":
            params += _form(await request.body(), "form body")
            if any(name == "update" for name, _ in params):
                return await run_update(request, params, None)
            return await answer(request, params, None)
        raise Problem(415, "Unsupported media type", f"cannot take a SPARQL request as {content_type or 'no Content-Type'}"
                      ": POST a query as application/sparql-query, an update as application/sparql-update, or either "
                      "as application/x-www-form-urlencoded with 'query' or 'update'",
                      parameter="Content-Type", value=content_type or None)

    async def other_method(request: Request) -> Response:
        raise Problem(405, "Method not allowed", f"{request.method} is not supported at /sparql: use GET or POST",
                      headers={"Allow": _ALLOWED_METHODS})

    routes.add_route("/sparql", other_method, methods=["PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE"],
                     include_in_schema=False)
    return routes
