"""Where /sparql queries run: a thread each, and what happens to one that passes its deadline.

pyoxigraph 0.5 cannot stop a query once it runs (its `Store.query` takes no timeout or
cancellation token, and a sort, a group or a join that filters out every row is computed inside
one call that never returns to Python). The client gets its 503 at the deadline; the query runs
on. What keeps such a query from hurting anyone else:

- it holds no lock: writes and other queries never wait for it (graph/store.py);
- its thread is its own, not one of the pool that serves other requests, and once abandoned it is
  lowered to the least CPU priority (nice 19, Linux), so it only gets time nobody else wants;
- a caller (a signed-in subject, or an anonymous client address) whose abandoned queries still run
  Settings.sparql_abandoned_per_caller times gets 429 for further queries until one ends, and when
  Settings.sparql_abandoned_limit abandoned queries run in all, new queries get 503: a flood of
  pathological queries cannot pile up threads without bound.
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
    thread: threading.Thread | None = None
    outcome: tuple[Any, BaseException | None] | None = None
    abandoned: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


class QueryThreads:
    def __init__(self, per_caller: int, limit: int):
        self.per_caller, self.limit = per_caller, limit
        self._lock = threading.Lock()
        self._abandoned: dict[str, int] = {}
        """caller -> how many of its queries passed their deadline and still run."""

    def abandoned(self, caller: str | None = None) -> int:
        with self._lock:
            return self._abandoned.get(caller, 0) if caller is not None else sum(self._abandoned.values())

    def admit(self, caller: str) -> None:
        """429 / 503 when the caller's, or everybody's, abandoned queries are at their limit."""
        with self._lock:
            mine, everyone = self._abandoned.get(caller, 0), sum(self._abandoned.values())
        if mine >= self.per_caller:
            raise Problem(429, "Earlier queries still running",
                          f"{mine} of your queries passed the timeout and still run on the server, which cannot "
                          "stop them half-way; send another when they have ended "
                          "(AI4KG_SPARQL_ABANDONED_PER_CALLER)", "query", headers={"Retry-After": "30"})
        if everyone >= self.limit:
            raise Problem(503, "Too many queries still running",
                          f"{everyone} queries passed the timeout and still run on the server; try again later "
                          "(AI4KG_SPARQL_ABANDONED_LIMIT)", "query", headers={"Retry-After": "30"})

    async def run(self, caller: str, timeout: float, work: Callable[[], T]) -> T:
        """`work()` in a thread of its own; its result, or QueryTimedOut after `timeout` seconds (the
        thread then runs on, abandoned, at the lowest priority)."""
        self.admit(caller)
        loop = asyncio.get_running_loop()
        finished = asyncio.Event()
        query = _Query(caller)

        def target() -> None:
            try:
                outcome: tuple[Any, BaseException | None] = (work(), None)
            except BaseException as exc:  # noqa: BLE001 - handed to the request that waits for it
                outcome = (None, exc)
            with query.lock:
                query.outcome = outcome
                abandoned = query.abandoned
            if abandoned:
                with self._lock:
                    self._abandoned[caller] -= 1
                    if not self._abandoned[caller]:
                        del self._abandoned[caller]
            else:
                try:
                    loop.call_soon_threadsafe(finished.set)
                except RuntimeError:  # the event loop is gone (server shut down)
                    pass

        query.thread = threading.Thread(target=target, name="sparql-query", daemon=True)
        query.thread.start()
        try:
            await asyncio.wait_for(finished.wait(), timeout)
        except (asyncio.TimeoutError, asyncio.CancelledError) as exc:
            with query.lock:
                if query.outcome is None:  # still running: abandon it
                    query.abandoned = True
            if query.abandoned:
                with self._lock:
                    self._abandoned[caller] = self._abandoned.get(caller, 0) + 1
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
