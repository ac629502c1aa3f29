"""What the agent behind a request may read: the read paths hide other VOs' non-public assets.

api/auth.py says who is asking; anonymous requests see public assets only, members of a VO also
that VO's assets, and platform administrators everything.
"""

import pyoxigraph as ox
from fastapi import Request

from ..graph.search import PUBLIC, Readers
from ..graph.store import KnowledgeGraph, search_document
from .auth import identity_of

ANONYMOUS: Readers = frozenset()


def readers_of(request: Request) -> Readers:
    """The VOs whose non-public assets this request may see (None: all of them)."""
    identity = identity_of(request)
    if identity is None:
        return ANONYMOUS
    return None if identity.admin else identity.vos


def visible_quads(graph: KnowledgeGraph, iri: str, readers: Readers) -> list[ox.Quad]:
    """The asset's quads if `readers` may see it; none (as if it did not exist) otherwise."""
    quads = graph.asset_quads(iri)
    document = search_document(iri, quads)
    if document is None or readers is None or document.visibility == PUBLIC or document.vo in readers:
        return quads
    return []
