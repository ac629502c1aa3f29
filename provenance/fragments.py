"""The fragments, kept verbatim beside the store (provenance.sqlite in the data directory).

A fragment is stored as the bytes of its JSON, with where it came from, when it arrived, its
idempotency key (a build, a run, a job: posting it again is the same fragment) and a digest of
its content, so that the same content posted twice changes nothing and `ai4kg provenance remap`
can derive every provenance graph again after a mapping changes.

Fragments and the graph cannot commit together, so a write marks the fragment unmapped in the
same SQLite transaction that stores it, commits the graph, then clears the mark; on open, any
fragment still marked is mapped again (graph/store.py does the same for the search index).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

_SCHEMA = """
CREATE TABLE IF NOT EXISTS fragments (
    key TEXT PRIMARY KEY,
    origin TEXT NOT NULL,
    application TEXT NOT NULL,
    activity TEXT NOT NULL,
    source TEXT NOT NULL,
    received TEXT NOT NULL,
    digest TEXT NOT NULL,
    body TEXT NOT NULL,
    unmapped INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS fragments_by_application ON fragments(application);
CREATE INDEX IF NOT EXISTS fragments_unmapped ON fragments(unmapped) WHERE unmapped = 1;
"""


def canonical(fragment: Any) -> str:
    """The fragment as compact JSON with sorted keys: the form stored and digested."""
    return json.dumps(fragment, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def digest_of(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class StoredFragment:
    key: str
    origin: str
    application: str
    """The IRI of the module the fragment is about."""
    activity: str
    """The IRI of the activity (the provenance graph) it maps to."""
    source: str
    """Where it came from: `webhook`, an MLflow tracking server's URL, a file name."""
    received: str
    digest: str
    body: str

    @property
    def fragment(self) -> Any:
        return json.loads(self.body)


class FragmentStore:
    def __init__(self, data_dir: Path | None):
        path = str(data_dir / "provenance.sqlite") if data_dir else ":memory:"
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL" if data_dir else "PRAGMA journal_mode=MEMORY")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self.writing = threading.RLock()
        """Held by a provenance write from reading the stored digests to clearing the marks, so two
        writers of the same fragment (a webhook and a sync) cannot both report it new."""

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def digests(self, keys: Iterable[str]) -> dict[str, str]:
        """The stored digest of each key that is stored."""
        keys = list(keys)
        found: dict[str, str] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                found.update(self._db.execute(
                    f"SELECT key, digest FROM fragments WHERE key IN ({', '.join('?' * len(chunk))})", chunk).fetchall())
        return found

    def put(self, fragments: Iterable[StoredFragment]) -> None:
        """Store (or replace) fragments, marked unmapped until `mapped` clears them; one transaction."""
        rows = [(f.key, f.origin, f.application, f.activity, f.source, f.received, f.digest, f.body) for f in fragments]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT OR REPLACE INTO fragments VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)", rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def mark_unmapped(self, keys: Iterable[str]) -> None:
        with self._lock:
            self._db.executemany("UPDATE fragments SET unmapped = 1 WHERE key = ?", [(k,) for k in keys])

    def mapped(self, keys: Iterable[str]) -> None:
        with self._lock:
            self._db.executemany("UPDATE fragments SET unmapped = 0 WHERE key = ?", [(k,) for k in keys])

    def _select(self, where: str, params: tuple[Any, ...] = ()) -> list[StoredFragment]:
        with self._lock:
            rows = self._db.execute(f"SELECT key, origin, application, activity, source, received, digest, body "
                                    f"FROM fragments {where} ORDER BY received, key", params).fetchall()
        return [StoredFragment(*row) for row in rows]

    def unmapped(self) -> list[StoredFragment]:
        return self._select("WHERE unmapped = 1")

    def of_application(self, iri: str) -> list[StoredFragment]:
        return self._select("WHERE application = ?", (iri,))

    def get(self, key: str) -> StoredFragment | None:
        found = self._select("WHERE key = ?", (key,))
        return found[0] if found else None

    def keys(self) -> list[str]:
        with self._lock:
            return [row[0] for row in self._db.execute("SELECT key FROM fragments ORDER BY received, key")]

    def all(self, batch: int = 500) -> Iterator[list[StoredFragment]]:
        """Every fragment, a batch at a time, in the order they arrived."""
        keys = self.keys()
        for start in range(0, len(keys), batch):
            chunk = keys[start:start + batch]
            yield self._select(f"WHERE key IN ({', '.join('?' * len(chunk))})", tuple(chunk))

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM fragments").fetchone()[0]


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
