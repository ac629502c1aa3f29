"""What the agent behind a request may read: the read paths hide other VOs' non-public assets.

api/auth.py says who is asking; anonymous requests see public assets only, members of a VO also
that VO's assets, and platform administrators everything.
"""

from collections.abc import Callable
from typing import TypeVar, TypeVarTuple, Unpack

import anyio
import anyio.to_thread
import pyoxigraph as ox
from anyio.lowlevel import RunVar
from fastapi import Request

from ..graph.search import PUBLIC, Readers
from ..graph.store import KnowledgeGraph, search_document
from .auth import identity_of

ANONYMOUS: Readers = frozenset()
T = TypeVar("T")
Args = TypeVarTuple("Args")
_READERS: RunVar[anyio.CapacityLimiter] = RunVar("ai4kg_reader_threads")
"""The worker threads reads run in, one set per event loop (as anyio's own default)."""


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


async def read(graph: KnowledgeGraph, work: Callable[[Unpack[Args]], T], *args: Unpack[Args]) -> T:
    """`work(*args)`, a read of the store, in one of the threads that answer reads.

    Building an answer from the embedded store holds the GIL; those threads are as many as the
    process has CPUs (Settings.reader_threads), not anyio's 40: more add no throughput, and each
    runnable one delays the event loop, which answers /health and reads every request. Writes, sign-in
    and calls to other services stay in anyio's threads, so one that waits never holds a reader back.
    Reads of a store server (AI4KG_SPARQL_STORE) wait on the network: they use anyio's threads too."""
    if not isinstance(graph.store, ox.Store):
        return await anyio.to_thread.run_sync(work, *args)
    try:
        limiter = _READERS.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(graph.settings.reader_threads)
        _READERS.set(limiter)
    return await anyio.to_thread.run_sync(work, *args, limiter=limiter)


async def read_asset(graph: KnowledgeGraph, work: Callable[[], T]) -> T:
    """`work()`, a read of one asset, from a coroutine handler without a worker-thread hop where it can.

    Reading one asset from the embedded store and building its answer is a few tenths of a
    millisecond of Python holding the GIL: a worker thread would run it no sooner and add a hop
    (a tenth of a millisecond or more), so it runs on the event loop. From an Oxigraph server
    (AI4KG_SPARQL_STORE) it is a network round trip, which runs in a worker thread."""
    if isinstance(graph.store, ox.Store):
        return work()
    return await anyio.to_thread.run_sync(work)
