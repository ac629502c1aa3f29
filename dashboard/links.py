"""Where a page links to: an asset IRI as the path of its page on this server."""

from __future__ import annotations


def page_path(base_url: str, iri: str) -> str | None:
    """The local path of an asset's page (/id/{kind}/{name}) when `iri` is one of this platform's
    (it starts with the base URL), else None: the page links to the IRI itself."""
    if not iri.startswith(base_url):
        return None
    from ..api.assets import KINDS

    kind, _, name = iri[len(base_url):].partition("/")
    return f"/id/{kind}/{name}" if kind in KINDS and name and not any(c in name for c in "/?#") else None


def href(base_url: str, iri: str) -> str:
    """The link for `iri`: its page here, or the IRI itself."""
    return page_path(base_url, iri) or iri
