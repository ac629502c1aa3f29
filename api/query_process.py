"""A /sparql query that Oxigraph computes whole before its first row runs in a child process, which
is killed at the deadline.

pyoxigraph cannot stop a query: a sort, a group, an aggregate or an ASK is computed inside one call
(api/query_threads.py). A sort of a cross product also holds every row in memory (over a GB a query
on the demo catalogue), and an inconsistent comparison in Oxigraph's sort aborts the process it runs
in. Such queries (`graph/datasets.computes_whole`) run in a child forked from the server, which
shares the store's files and memory copy-on-write, reads a snapshot as any query does, and sends
its serialised answer back through a pipe. At the deadline the child is killed: the query stops
using the store and its memory is returned at once. The child also has an address-space limit
(Settings.sparql_query_memory above the server's own), so a query that would eat the machine fails
alone, with 507.

A fork copies only the thread that forks: a lock another thread held at that moment stays held in
the child. The store's own writers hold `KnowledgeGraph.write_guard` while they write, and the fork
takes it too, so no write of the store is half-way in the child; whatever else the child would
wait for, it waits for until the deadline kills it.
"""

from __future__ import annotations

import ctypes
import faulthandler
import os
import pickle
import resource
import select
import signal
import time
from typing import Any, Callable

from ..graph.store import KnowledgeGraph
from .problems import Problem

_OK, _PROBLEM = "ok", "problem"
_PR_SET_PDEATHSIG = 1
NICENESS = 19
"""How much the child yields the CPU: a heavy query gets what requests being answered leave (next
to nothing while the server is busy, all it wants on an idle machine)."""


def _die_with_parent() -> None:
    """Linux: the child is killed when the thread that forked it ends, which waits for it, so only
    when the server itself dies (kill -9 included): it must not keep the server's port or store
    files open after the server is gone."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the deadline still kills it
        pass


def can_fork() -> bool:
    return hasattr(os, "fork") and os.path.exists("/proc/self/status")


def _address_space() -> int:
    """This process's virtual size in bytes (VmSize): what the child starts with."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))


def run_forked(graph: KnowledgeGraph, work: Callable[[], tuple[str, bytes]], deadline: float,
               memory: int, timed_out: Callable[[], Problem]) -> tuple[str, bytes]:
    """`work()` in a forked child: its (media type, body), or the Problem it raised; `timed_out()`
    when it has not answered by `deadline` (monotonic), the child then killed."""
    limit = _address_space() + memory
    reader, writer = os.pipe()
    with graph.write_guard:  # no store write is half-way in the copy the child gets
        pid = os.fork()
    if pid == 0:  # the child: answer, and leave without running any of the parent's clean-up
        status = 1
        try:
            os.close(reader)
            faulthandler.disable()  # a query over its memory limit aborts: its end is reported, not dumped
            _die_with_parent()
            os.nice(NICENESS)
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            try:
                outcome: tuple[Any, ...] = (_OK, *work())
            except Problem as problem:
                outcome = (_PROBLEM, problem.status, problem.title, problem.detail, problem.parameter,
                           problem.headers)
            data = pickle.dumps(outcome)
            view = memoryview(data)
            while view:
                view = view[os.write(writer, view):]
            status = 0
        finally:
            os._exit(status)
    os.close(writer)
    chunks: list[bytes] = []
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([reader], [], [], left)[0]:
                os.kill(pid, signal.SIGKILL)
                raise timed_out()
            chunk = os.read(reader, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(reader)
        _, code = os.waitpid(pid, 0)
    if code != 0 or not chunks:
        cause = f"signal {os.WTERMSIG(code)}" if os.WIFSIGNALED(code) else f"exit status {os.WEXITSTATUS(code)}"
        raise Problem(507, "Query failed in the store",
                      f"the query ended without an answer ({cause}): most likely it needed more memory than a query "
                      f"may use ({memory / 2**20:,.0f} MiB, AI4KG_SPARQL_QUERY_MEMORY); make it more selective",
                      "query")
    outcome = pickle.loads(b"".join(chunks))  # noqa: S301 - written by our own child, just above
    if outcome[0] == _PROBLEM:
        status, title, detail, parameter, headers = outcome[1:]
        raise Problem(status, title, detail, parameter, headers=headers)
    return outcome[1], outcome[2]
