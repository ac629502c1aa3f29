"""What the agent behind a request may read: the read paths hide other VOs' non-public assets.

api/auth.py says who is asking; anonymous requests see public assets only, members of a VO also
that VO's assets, and platform administrators everything.
"""

from collections.abc import Callable
from typing import TypeVar

import anyio.to_thread
import pyoxigraph as ox
from fastapi import Request

from ..graph.search import PUBLIC, Readers
from ..graph.store import KnowledgeGraph, search_document
from .auth import identity_of

ANONYMOUS: Readers = frozenset()
T = TypeVar("T")


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


async def read_asset(graph: KnowledgeGraph, work: Callable[[], T]) -> T:
    """`work()`, a read of one asset, from a coroutine handler without a worker-thread hop where it can.

    Reading one asset from the embedded store and building its answer is a few tenths of a
    millisecond of Python holding the GIL: a worker thread would run it no sooner and add a hop
    (a tenth of a millisecond or more), so it runs on the event loop. From an Oxigraph server
    (AI4KG_SPARQL_STORE) it is a network round trip, which runs in a worker thread."""
    if isinstance(graph.store, ox.Store):
        return work()
    return await anyio.to_thread.run_sync(work)
