"""Where /sparql queries run: a thread each, and how many heavy ones a caller may have at once.

pyoxigraph 0.5 cannot stop a query once it runs (its `Store.query` takes no timeout or
cancellation token). A query Oxigraph computes whole before its first row (a sort, a group, an
aggregate, an ASK) runs in a process of its own, killed at the deadline (api/query_process.py).
Any other query streams, and stops at its next row after the deadline; one stuck inside a single
step (a SERVICE call, a join whose rows a filter drops) is abandoned a moment after the deadline
and runs on. What keeps such queries from hurting anyone else:

- none holds a lock: writes and other queries never wait for them (graph/store.py);
- each thread is its own, not one of the pool that serves other requests, and an abandoned one is
  lowered to the least CPU priority (nice 19, Linux), so it only gets time nobody else wants;
- heavy queries (computed in a process, or abandoned and still running) are counted per caller (a
  signed-in subject, or an anonymous client address): a caller with
  Settings.sparql_heavy_per_caller of them gets 429 for further queries until one ends, and when
  Settings.sparql_heavy_limit run in all, new queries get 503: a flood of pathological queries
  cannot pile up processes or threads without bound.
"""

from __future__ import annotations

import asyncio
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

from .problems import Problem

T = TypeVar("T")
LOWEST_PRIORITY = 19


class QueryTimedOut(Exception):
    """The query passed its deadline; it was abandoned and may still be running."""


@dataclass
class _Query:
    caller: str
    heavy: bool
    thread: threading.Thread | None = None
    outcome: tuple[Any, BaseException | None] | None = None
    abandoned: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


class QueryThreads:
    def __init__(self, per_caller: int, limit: int):
        self.per_caller, self.limit = per_caller, limit
        self._lock = threading.Lock()
        self._held: dict[str, int] = {}
        """caller -> its heavy queries running now (computed in a process, or abandoned)."""

    def _hold(self, caller: str) -> None:
        with self._lock:
            self._held[caller] = self._held.get(caller, 0) + 1

    def _release(self, caller: str) -> None:
        with self._lock:
            self._held[caller] -= 1
            if not self._held[caller]:
                del self._held[caller]

    def admit(self, caller: str) -> None:
        """429 / 503 when the caller's, or everybody's, heavy queries are at their limit."""
        with self._lock:
            mine, everyone = self._held.get(caller, 0), sum(self._held.values())
        if mine >= self.per_caller:
            raise Problem(429, "Earlier queries still running",
                          f"{mine} of your queries are heavy (a sort, a group or an aggregate, or past the timeout) "
                          "and still run on the server; send another when one has ended "
                          "(AI4KG_SPARQL_HEAVY_PER_CALLER)", "query", headers={"Retry-After": "30"})
        if everyone >= self.limit:
            raise Problem(503, "Too many queries running",
                          f"{everyone} heavy queries run on the server; try again later (AI4KG_SPARQL_HEAVY_LIMIT)",
                          "query", headers={"Retry-After": "30"})

    async def run(self, caller: str, timeout: float, work: Callable[[], T], heavy: bool = False) -> T:
        """`work()` in a thread of its own; its result, or QueryTimedOut after `timeout` seconds (the
        thread then runs on, abandoned, at the lowest priority). A `heavy` query counts against its
        caller's limit from its start, any other once abandoned, until it ends."""
        self.admit(caller)
        loop = asyncio.get_running_loop()
        finished = asyncio.Event()
        query = _Query(caller, heavy)
        if heavy:
            self._hold(caller)

        def target() -> None:
            try:
                outcome: tuple[Any, BaseException | None] = (work(), None)
            except BaseException as exc:  # noqa: BLE001 - handed to the request that waits for it
                outcome = (None, exc)
            with query.lock:
                query.outcome = outcome
                abandoned = query.abandoned
            if heavy or abandoned:
                self._release(caller)
            if not abandoned:
                try:
                    loop.call_soon_threadsafe(finished.set)
                except RuntimeError:  # the event loop is gone (server shut down)
                    pass

        query.thread = threading.Thread(target=target, name="sparql-query", daemon=True)
        query.thread.start()
        try:
            await asyncio.wait_for(finished.wait(), timeout)
        except (asyncio.TimeoutError, asyncio.CancelledError) as exc:
            with query.lock:  # the thread, ending now, must see the count it will take back
                if query.outcome is None:  # still running: abandon it
                    query.abandoned = True
                    if not heavy:  # a heavy query is counted already, until it ends
                        self._hold(caller)
            if query.abandoned:
                _lower_priority(query.thread)
            if isinstance(exc, asyncio.CancelledError):
                raise
            if query.abandoned:
                raise QueryTimedOut() from None
            await finished.wait()  # it ended at the deadline: its answer is on the way
        assert query.outcome is not None
        result, error = query.outcome
        if error is not None:
            raise error
        return result


def _lower_priority(thread: threading.Thread) -> None:
    """nice 19 for this thread only (on Linux a thread id names one thread to setpriority)."""
    try:
        if thread.native_id is not None:
            os.setpriority(os.PRIO_PROCESS, thread.native_id, LOWEST_PRIORITY)
    except (AttributeError, OSError):  # not Linux, or the thread has just ended
        pass


def thread_priority(thread: threading.Thread) -> int | None:
    """A thread's nice value (Linux), for tests and diagnostics."""
    try:
        return os.getpriority(os.PRIO_PROCESS, thread.native_id) if thread.native_id else None
    except (AttributeError, OSError):
        return None
