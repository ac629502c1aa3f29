"""Who is asking, for the read paths that hide other VOs' non-public assets.

The API does not authenticate requests yet: every request is anonymous and sees public assets
only. Authentication (OIDC bearer tokens, API keys) will map a request to the VOs it may read.
"""

import pyoxigraph as ox
from fastapi import Request

from ..graph.search import PUBLIC, Readers
from ..graph.store import KnowledgeGraph, search_document

ANONYMOUS: Readers = frozenset()


def readers_of(request: Request) -> Readers:
    """The VOs whose non-public assets this request may see."""
    return ANONYMOUS


def visible_quads(graph: KnowledgeGraph, iri: str, readers: Readers) -> list[ox.Quad]:
    """The asset's quads if `readers` may see it; none (as if it did not exist) otherwise."""
    quads = graph.asset_quads(iri)
    document = search_document(iri, quads)
    if document is None or readers is None or document.visibility == PUBLIC or document.vo in readers:
        return quads
    return []
