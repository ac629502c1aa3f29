"""What many request threads share safely: things built once on first use, and rdflib's SPARQL parser.

The server answers requests in worker threads, and right after a start several of them may be the
first to need a lazily built thing at the same moment (an RML mapping, the SHACL shapes, a
vocabulary). `functools.cache` lets each of them build it, concurrently; `once` builds it in one
thread while the others wait for that result.

rdflib's SPARQL parser is pyparsing's, which fills in each parse action's arity on its first call:
two threads parsing at once can both be in that first call and break it for the life of the process
(`Param.postParse2() missing 1 required positional argument`, then every parse fails). Every use of
rdflib's SPARQL parser in ai4kg (morph-kgc reading a mapping, the dataset and update analysis of
graph/datasets.py) holds `RDFLIB_SPARQL` while it parses.
"""

from __future__ import annotations

import functools
import threading
from typing import Any, Callable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

RDFLIB_SPARQL = threading.RLock()
"""Held by any code that parses SPARQL with rdflib (directly or through morph-kgc)."""


def once(function: F) -> F:
    """`functools.cache` that builds each value once when threads ask for it at the same time.

    A value is built under a lock of its own arguments, so two different values (the V1 and V2
    mappings) can still be built side by side; a build that raises is not kept, and the next call
    tries again."""
    values: dict[Any, Any] = {}
    locks: dict[Any, threading.Lock] = {}
    guard = threading.Lock()

    @functools.wraps(function)
    def cached(*args: Any, **kwargs: Any) -> Any:
        key = (args, tuple(sorted(kwargs.items())))
        try:
            return values[key]
        except KeyError:
            pass
        with guard:
            lock = locks.setdefault(key, threading.Lock())
        with lock:
            if key not in values:
                values[key] = function(*args, **kwargs)
            return values[key]

    return cached  # type: ignore[return-value]


__all__ = ["RDFLIB_SPARQL", "once"]
