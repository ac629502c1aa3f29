"""Free-text search over assets, kept in step with the store.

An SQLite FTS5 index (bm25 ranking) sits beside the Oxigraph directory. Oxigraph and SQLite
cannot commit together, so every write follows a small protocol that makes a crash harmless:
1. the asset IRIs about to change are recorded as pending (committed in SQLite);
2. the store commits the new graphs (one Oxigraph transaction per asset);
3. the index rows are replaced and the pending marks cleared in one SQLite transaction.
On open, any IRI still pending is re-indexed from what the store holds (or removed if the store
no longer has it), so the index always ends up describing exactly the committed graphs.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    rowid INTEGER PRIMARY KEY,
    iri TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS documents_text USING fts5(
    title, summary, description, tags,
    tokenize='unicode61 remove_diacritics 2'
);
CREATE TABLE IF NOT EXISTS pending (iri TEXT PRIMARY KEY);
"""

_TOKEN = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class SearchDocument:
    iri: str
    kind: str
    title: str = ""
    summary: str = ""
    description: str = ""
    tags: str = ""


@dataclass(frozen=True)
class SearchHit:
    iri: str
    kind: str
    score: float


def match_expression(text: str) -> str | None:
    """User text as an FTS5 expression: every word must occur; the last one may be a prefix.

    Words are quoted, so FTS5 operators typed by a user (AND, NEAR, *, quotes) are plain words.
    """
    words = _TOKEN.findall(text)
    if not words:
        return None
    quoted = ['"' + word.replace('"', '""') + '"' for word in words]
    quoted[-1] += "*"
    return " ".join(quoted)


class SearchIndex:
    def __init__(self, path: Path | None):
        self.path = path
        self._db = sqlite3.connect(str(path) if path else ":memory:", isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL" if path else "PRAGMA journal_mode=MEMORY")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        # One connection serves every thread of a server; SQLite needs its calls serialised.
        self._lock = threading.RLock()

    def close(self) -> None:
        self._db.close()

    def mark_pending(self, iris: Iterable[str]) -> None:
        with self._transaction():
            self._db.executemany("INSERT OR IGNORE INTO pending(iri) VALUES (?)", [(iri,) for iri in iris])

    def pending(self) -> list[str]:
        with self._lock:
            return [row[0] for row in self._db.execute("SELECT iri FROM pending ORDER BY iri")]

    def apply(self, documents: Iterable[SearchDocument], removed: Iterable[str] = ()) -> None:
        """Replace the rows of `documents`, delete `removed`, and clear their pending marks."""
        with self._transaction():
            for document in documents:
                self._delete(document.iri)
                cursor = self._db.execute("INSERT INTO documents(iri, kind) VALUES (?, ?)", (document.iri, document.kind))
                self._db.execute(
                    "INSERT INTO documents_text(rowid, title, summary, description, tags) VALUES (?, ?, ?, ?, ?)",
                    (cursor.lastrowid, document.title, document.summary, document.description, document.tags))
                self._db.execute("DELETE FROM pending WHERE iri = ?", (document.iri,))
            for iri in removed:
                self._delete(iri)
                self._db.execute("DELETE FROM pending WHERE iri = ?", (iri,))

    def _delete(self, iri: str) -> None:
        row = self._db.execute("SELECT rowid FROM documents WHERE iri = ?", (iri,)).fetchone()
        if row:
            self._db.execute("DELETE FROM documents_text WHERE rowid = ?", row)
            self._db.execute("DELETE FROM documents WHERE rowid = ?", row)

    def search(self, text: str, limit: int = 20, kind: str | None = None) -> list[SearchHit]:
        expression = match_expression(text)
        if expression is None:
            return []
        # bm25 weights: a word in the title counts most, then tags, summary, description.
        with self._lock:
            rows = self._db.execute(
                "SELECT d.iri, d.kind, bm25(documents_text, 10.0, 4.0, 1.0, 6.0) AS score "
                "FROM documents_text JOIN documents d ON d.rowid = documents_text.rowid "
                "WHERE documents_text MATCH ? AND (? IS NULL OR d.kind = ?) ORDER BY score LIMIT ?",
                (expression, kind, kind, limit)).fetchall()
        return [SearchHit(iri, k, -score) for iri, k, score in rows]

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]

    def iris(self) -> list[str]:
        with self._lock:
            return [row[0] for row in self._db.execute("SELECT iri FROM documents ORDER BY iri")]

    def _transaction(self) -> "_Transaction":
        return _Transaction(self._db, self._lock)


class _Transaction:
    def __init__(self, db: sqlite3.Connection, lock: threading.RLock):
        self.db, self.lock = db, lock

    def __enter__(self) -> None:
        self.lock.acquire()
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb) -> None:  # type: ignore[no-untyped-def]
        try:
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self.lock.release()
