"""Pages from Jinja2 templates: every value escaped, Markdown rendered without raw HTML.

Templates live in dashboard/templates, one per page, all extending base.html. `render` adds what
every page needs (who is signed in, the form token against cross-site request forgery, the
navigation) and the response headers that keep a page's content from running anything it did not
ship: a Content-Security-Policy with scripts and styles from this server only.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from .. import __version__

TEMPLATES = Path(__file__).parent / "templates"
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
NAVIGATION = [("/", "Catalogue"), ("/ask", "Ask"), ("/query", "SPARQL"), ("/deployments", "Deployments"),
              ("/federations", "Federations")]


@lru_cache(maxsize=1)
def _markdown() -> Any:
    from markdown_it import MarkdownIt

    # CommonMark without raw HTML: a <script> in a description is shown as text; markdown-it's link
    # check refuses javascript:, vbscript:, file: and data: (but images) URLs
    return MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table")


def markdown(text: str | None) -> Markup:
    return Markup(_markdown().render(text or ""))  # noqa: S704 - raw HTML is off: the output is escaped text


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["markdown"] = markdown
    env.globals.update(navigation=NAVIGATION, version=__version__)
    return env


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """`template` filled with `context` and what every page shows."""
    from .session import csrf_token, viewer  # session imports this module's `render` for its pages

    page = environment().get_template(template).render(
        request=request, viewer=viewer(request), csrf=csrf_token(request), path=request.url.path, **context)
    return HTMLResponse(page, status_code=status, headers=page_headers())


def page_headers() -> dict[str, str]:
    return {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin", "Cache-Control": "no-store"}


def not_found(request: Request, what: str) -> HTMLResponse:
    """The page for something that is not there (or that the viewer may not see: the same page)."""
    return render(request, "not_found.html", status=404, what=what)
