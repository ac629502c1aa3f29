"""The ASGI application: one KnowledgeGraph, the interfaces mounted on it."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

import anyio.to_thread
from fastapi import FastAPI, Request

from .. import __version__, dashboard
from ..graph.store import KnowledgeGraph
from ..credentials import KeyStore
from ..federated.service import Federations
from ..workloads.service import Controller, Deployments, open_deployments
from . import access, assets, assistant, auth, catalog, deployments as deployments_api, fair, federations as federations_api, graphql, oai, problems, provenance, requestlog, sparql
from .limits import BodyLimits


def create_app(graph: KnowledgeGraph, keys: KeyStore | None = None, deployments: Deployments | None = None,
               platform_url: str | None = None) -> FastAPI:
    """The API over `graph`; API keys are checked against `keys` (default: the data directory's);
    deployments run by `deployments` (default: the executor the settings name); federations' servers
    post their rounds to `platform_url` (where this app is served). While the app runs (its
    lifespan), the control loop of deployments and federations runs in a thread."""
    deployments = deployments or open_deployments(graph)
    federations = Federations(graph, deployments, graph.settings.flower_env)
    if graph.settings.platform_url or platform_url:
        federations.platform_url = graph.settings.platform_url or platform_url  # type: ignore[assignment]
    controller = Controller(deployments, graph.settings.control_interval, also=[federations.tick])

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        controller.start()
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(controller.stop)

    app = FastAPI(title="ai4kg", version=__version__, responses=problems.RESPONSES, lifespan=lifespan,
                  description="Knowledge graph of AI modules, deployments, runs and datasets.")
    app.state.deployments = deployments
    app.state.federations = federations
    problems.install(app)
    # Middleware added later runs earlier: RequestLog sees every write and its answer, Authentication
    # says who is asking, and BodyLimits, knowing who, bounds what the routes read of the body.
    app.add_middleware(BodyLimits, settings=graph.settings)
    authenticator = auth.Authenticator(graph.settings, keys or KeyStore(graph.settings.data_dir))
    auth.install(app, authenticator)
    app.add_middleware(requestlog.RequestLog)
    requestlog.ensure_handler()
    app.include_router(sparql.router(graph))
    app.include_router(catalog.router(graph))
    app.include_router(fair.router(graph))
    app.include_router(assets.router(graph))
    app.include_router(graphql.router(graph, deployments))
    app.include_router(oai.router(graph))
    app.include_router(assistant.router(graph))
    app.include_router(provenance.router(graph))
    app.include_router(deployments_api.router(deployments))
    app.include_router(federations_api.router(federations))
    dashboard.install(app, graph, authenticator)  # the web pages, after the APIs: `/` is its catalogue

    @app.get("/health", tags=["service"])
    async def health() -> dict:
        """Ready when the store answers a query."""
        # On the event loop for the embedded store: no query waits for a write any more, and a hop to a
        # worker thread would queue the probe behind every other request's work; a store server is
        # a round trip, made from a worker thread (access.read_asset).
        await access.read_asset(graph, lambda: graph.query("ASK { }"))
        return {"status": "ok"}

    @app.get("/version", tags=["service"])
    async def version() -> dict:
        return {"version": __version__}

    @app.get("/stats")
    async def stats(request: Request) -> dict:
        """Assets by kind, as far as the caller may see them. The platform administrator gets the
        store's own figures (triples, search entries, the data directory); anyone else counts only
        the assets they may see, from the search index, and never learns where the data lives."""
        readers = access.readers_of(request)
        if readers is None:
            return await access.read(graph, graph.stats)  # counts every asset: never on the event loop
        counts = await access.read(graph, graph.index.count_by_kind, readers)
        return {"assets": sum(counts.values()), "assets_by_kind": counts, "base_url": graph.settings.base_url}

    @app.get("/search")
    async def search(request: Request, q: str, limit: int = 20) -> list[dict]:
        hits = await access.read(graph, graph.search, q, access.readers_of(request), min(max(limit, 1), 200))
        return [{"iri": h.iri, "kind": h.kind, "score": h.score} for h in hits]

    return app
