"""Provenance over HTTP: events in, PROV-O documents and lineage out.

    POST /v1/provenance/events            a CI build webhook (Jenkins fragment, GitHub Actions
                                          workflow_run) or any provenance fragment; signed-in
                                          member of the module's VO; idempotent
    POST /v1/provenance/mlflow-sync       pull runs from the configured MLflow server (administrator)
    GET  /v1/provenance/{kind}/{name}     an asset's provenance: PROV-O (Turtle, JSON-LD), PROV-JSON,
                                          or nodes and edges for a viewer
    GET  /v1/provenance/lineage?iri=...   lineage upstream or downstream, bounded depth

What the reader may not see is not there: another VO's private module is "no such module" to a
webhook, its builds and runs are left out of every document and walk.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import anyio.to_thread
import pyoxigraph as ox
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from ..graph.namespaces import asset_iri
from ..graph.store import KnowledgeGraph
from ..graph.views import serialize
from ..metadata.records import is_valid_identifier
from ..provenance.documents import provenance_triples, to_jsonld, to_prov_json
from ..provenance.ingest import Gate, Outcome, Provenance
from ..provenance.lineage import DEFAULT_DEPTH, IRI_PATTERN, MAX_DEPTH, lineage, may_start_from
from ..provenance.records import Application
from .access import read, readers_of
from .assets import KINDS
from .auth import Identity, identity_of
from .limits import loads_json
from .negotiation import negotiate
from .problems import Problem
from .publishing import writer

MAX_EVENT_BYTES = 5 * 1024 * 1024
"""A CI build with thousands of stages stays well below this."""

PROV_JSON = "application/vnd.prov+json"
"""Accept for PROV-JSON (or ?format=prov-json). It has no registered media type: the answer is
application/json, as the W3C submission says."""


def gate_for(identity: Identity) -> Gate:
    """Who may record provenance of a module: members of its VO, and administrators; a module the
    writer may not even see is reported as unknown."""
    def gate(application: Application) -> str | None:
        if identity.admin or application.vo in identity.vos:
            return None
        return "forbidden" if application.visibility == "public" else "unknown"
    return gate


def _problem_of(outcome: Outcome) -> Problem:
    if outcome.status == "forbidden":
        return Problem.of_issues(403, "Forbidden", outcome.errors)
    return Problem.of_issues(422, "Invalid provenance event", outcome.errors)


def router(graph: KnowledgeGraph) -> APIRouter:
    routes = APIRouter(prefix="/v1/provenance", tags=["provenance"])
    provenance = Provenance(graph)

    @routes.post("/events", status_code=201, responses={
        200: {"description": "The event was known: updated, or unchanged (nothing written)"},
        201: {"description": "A new event: its activity's provenance graph was written"},
        202: {"description": "A webhook event that carries no provenance (e.g. GitHub's ping): ignored"},
        403: {"description": "The module belongs to a VO the sender is not a member of"},
        413: {"description": "Body too large"}})
    async def post_event(request: Request) -> Response:
        """Record a CI build (Jenkins fragment, or GitHub Actions `workflow_run` webhook payload) or
        another provenance fragment. Needs a bearer token or API key of a member of the module's VO.
        Posting the same build again changes nothing (`unchanged`); a newer state of it replaces its
        graph (`updated`). Errors name the field, the rule and the value, and write nothing."""
        identity = writer(identity_of(request), "record provenance")
        github_event = request.headers.get("x-github-event")
        if github_event is not None and github_event != "workflow_run":
            return JSONResponse({"status": "ignored", "detail": f"GitHub event {github_event!r} carries no build"},
                                status_code=202)
        body = await request.body()
        if len(body) > MAX_EVENT_BYTES:
            raise Problem(413, "Body too large", f"events are limited to {MAX_EVENT_BYTES:,} bytes")
        loads_json(body)  # 400 unless JSON nested at most limits.MAX_DOCUMENT_DEPTH deep, whatever its Content-Type
        source = f"webhook:{github_event or 'ci'}"
        # the body as posted is the fragment kept
        [outcome] = await anyio.to_thread.run_sync(provenance.ingest, [(body, source)], gate_for(identity))
        if outcome.status in ("invalid", "forbidden"):
            raise _problem_of(outcome)
        return JSONResponse(outcome.as_dict(), status_code=201 if outcome.status == "created" else 200,
                            headers={"Location": outcome.activity or ""})

    @routes.post("/mlflow-sync", responses={403: {"description": "Not a platform administrator"},
                                            409: {"description": "No MLflow tracking server is configured"},
                                            502: {"description": "The tracking server did not answer"}})
    async def mlflow_sync(request: Request) -> dict[str, Any]:
        """Pull every run from the configured MLflow tracking server (AI4KG_MLFLOW_URL) now."""
        identity = writer(identity_of(request), "start a sync")
        if not identity.admin:
            raise Problem(403, "Forbidden", "only a platform administrator may start an MLflow sync")
        url = graph.settings.mlflow_url
        if not url:
            raise Problem(409, "No MLflow server", "set AI4KG_MLFLOW_URL to the tracking server to sync from")
        from ..adapters.mlflow import MlflowUnavailable, sync

        try:
            report = await anyio.to_thread.run_sync(sync, graph, url, graph.settings.mlflow_token)
        except MlflowUnavailable as exc:
            raise Problem(502, "MLflow unavailable", str(exc)) from None
        return report.as_dict()

    @routes.get("/lineage")
    async def get_lineage(request: Request,
                          iri: str = Query(description="The node to start from: an asset, a commit, an image, weights ...",
                                           min_length=1, max_length=2000, pattern=IRI_PATTERN),
                          direction: Literal["upstream", "downstream"] = Query(
                              "upstream", description="upstream: what it came from; downstream: what came from it"),
                          depth: int = Query(DEFAULT_DEPTH, ge=1, le=MAX_DEPTH, description="Steps at most")) -> dict[str, Any]:
        """The lineage of a node as nodes and edges (each edge a PROV statement: source relation
        target), reading only graphs the reader may see; `truncated` when the walk stopped at its
        node limit."""
        readers = readers_of(request)

        def work() -> dict[str, Any]:
            try:  # an asset the reader may not see answers as an IRI that names nothing (no 404: that would tell)
                return lineage(graph, iri, direction, depth, readers).as_dict()
            except ValueError as exc:
                raise Problem(400, "Invalid IRI", str(exc), "iri", iri) from None
        return await read(graph, work)

    @routes.get("/{kind}/{name}", responses={404: {"description": "No such asset"}, 406: {"description": "No acceptable format"}})
    async def get_provenance(request: Request, kind: str, name: str,
                             format: Literal["graph", "turtle", "jsonld", "prov-json"] | None = Query(
                                 None, description="Overrides Accept: graph (nodes and edges, the default for "
                                 "application/json), turtle, jsonld (PROV-O context), prov-json")) -> Response:
        """An asset's provenance (its upstream lineage and the agents involved) as PROV-O in
        Turtle or JSON-LD, as PROV-JSON, or as nodes and edges for a viewer."""
        readers = readers_of(request)
        if kind not in KINDS:
            raise Problem(404, "Not found", f"no asset kind {kind!r}; kinds: {', '.join(KINDS)}", "kind", kind)
        iri = asset_iri(graph.settings.base_url, KINDS[kind], name) if is_valid_identifier(name) else ""
        offers = [("application/json", "graph"), ("text/turtle", "turtle"), ("application/ld+json", "jsonld"),
                  (PROV_JSON, "prov-json")]
        chosen = format or negotiate(request.headers.get("accept", ""), offers, "provenance")[1]

        def work() -> Response:
            if not iri or not graph.contains(iri) or not may_start_from(graph, iri, readers):
                raise Problem(404, "Not found", f"no {kind} named {name!r}", "name", name)
            triples, walk = provenance_triples(graph, iri, readers)
            if chosen == "graph":
                return Response(_json(walk.as_dict()), media_type="application/json")
            if chosen == "turtle":
                return Response(serialize(triples, ox.RdfFormat.TURTLE), media_type="text/turtle")
            if chosen == "jsonld":
                return Response(_json(to_jsonld(triples, iri)), media_type="application/ld+json")
            return Response(_json(to_prov_json(triples)), media_type="application/json")
        return await read(graph, work)

    return routes


def _json(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8")

