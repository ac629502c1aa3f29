"""The dashboard: the web pages a researcher uses, served by `ai4kg serve` beside the APIs.

Server-rendered HTML (Jinja2 templates in dashboard/templates) with a little JavaScript (htmx and
small scripts in dashboard/static, shipped as files: no build step). Each page reads through the
same services and index queries as the REST and GraphQL APIs, as the viewer (dashboard/session.py),
so a VO's private assets stay hidden here too. Pages, one module each:

    /                       catalogue.py    search, facets, sort, pages
    /id/{kind}/{name}       assets.py       an asset's page (the asset IRI, opened in a browser)
    /deployments...         deployments.py  create, list, follow, delete
    /federations...         federations.py  create, clients, rounds
    /ask                    ask.py          the assistant
    /query                  query.py        SPARQL editor and results
    /sign-in, /sign-out     signin.py       OIDC (authorization code + PKCE) and API keys
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from ..api.auth import Authenticator
from ..graph.store import KnowledgeGraph
from .session import COOKIE, SESSION_SECONDS, CsrfFailed, session_key
from .templating import render

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI, graph: KnowledgeGraph, authenticator: Authenticator) -> None:
    """The dashboard's pages, static files and session cookie on `app` (whose state holds the
    deployments and federations services)."""
    from . import ask, assets, catalogue, deployments, federations, query, signin

    app.state.authenticator = authenticator
    # not https_only: `serve` answers plain HTTP on loopback; behind a TLS proxy the browser sends
    # the cookie over HTTPS anyway, and SameSite=Lax keeps it off cross-site form posts
    app.add_middleware(SessionMiddleware, secret_key=session_key(graph.settings.data_dir), session_cookie=COOKIE,
                       max_age=SESSION_SECONDS, same_site="lax", https_only=False)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_exception_handler(CsrfFailed, _csrf_failed)  # type: ignore[arg-type]
    for pages in (catalogue, assets, deployments, federations, ask, query, signin):
        app.include_router(pages.router(graph))
    app.state.asset_page = assets.page(graph)


async def _csrf_failed(request: Request, exc: CsrfFailed) -> HTMLResponse:
    return render(request, "message.html", status=403, heading="Form not accepted", message=str(exc),
                  back=request.headers.get("referer") if _same_origin(request) else "/")


def _same_origin(request: Request) -> bool:
    referer = request.headers.get("referer", "")
    return referer.startswith(str(request.base_url))
