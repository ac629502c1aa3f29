"""Free-text search and faceted filtering over assets, kept in step with the store.

An SQLite FTS5 index (bm25 ranking) sits beside the Oxigraph directory. Oxigraph and SQLite
cannot commit together, so every write follows a small protocol that makes a crash harmless:
1. the asset IRIs about to change are recorded as pending (committed in SQLite);
2. the store commits the new graphs (one Oxigraph transaction per asset);
3. the index rows are replaced and the pending marks cleared in one SQLite transaction.
On open, any IRI still pending is re-indexed from what the store holds (or removed if the store
no longer has it), so the index always ends up describing exactly the committed graphs.

Besides the text, each asset's facets (tags, tasks, categories, libraries, data types) and sort
keys are indexed, so catalog listings filter with AND, OR and NOT and page by keyset in SQL with
bound parameters, whatever the catalog's size.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

SCHEMA_VERSION = 3
"""Bumped when the tables change; an index of another version is rebuilt from the store on open."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    rowid INTEGER PRIMARY KEY,
    iri TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    identifier TEXT NOT NULL DEFAULT '',
    vo TEXT NOT NULL DEFAULT '',
    visibility TEXT NOT NULL DEFAULT '',
    title TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL DEFAULT '',
    updated TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS facets (
    rowid INTEGER NOT NULL,
    field TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (field, value, rowid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS facets_by_document ON facets(rowid);
CREATE INDEX IF NOT EXISTS documents_by_visibility ON documents(visibility, vo);
CREATE INDEX IF NOT EXISTS documents_by_identifier ON documents(kind, identifier, iri);
CREATE INDEX IF NOT EXISTS documents_by_title ON documents(kind, title, iri);
CREATE INDEX IF NOT EXISTS documents_by_created ON documents(kind, created, iri);
CREATE INDEX IF NOT EXISTS documents_by_updated ON documents(kind, updated, iri);
CREATE VIRTUAL TABLE IF NOT EXISTS documents_text USING fts5(
    title, summary, description, tags,
    tokenize='unicode61 remove_diacritics 2'
);
CREATE TABLE IF NOT EXISTS pending (iri TEXT PRIMARY KEY);
"""

_TOKEN = re.compile(r"\w+", re.UNICODE)


SORT_KEYS = ("identifier", "title", "created", "updated")
PUBLIC = "public"
Readers = frozenset[str] | None
"""Who is asking: the VOs a reader belongs to (empty: anonymous), or None for the platform itself."""


def _visible(readers: Readers) -> tuple[str, list[object]]:
    """The SQL condition (on documents d) and parameters for what `readers` may see."""
    if readers is None:
        return "", []
    return f"AND (d.visibility = ? OR d.vo IN ({', '.join('?' * len(readers))}))", [PUBLIC, *sorted(readers)]


@dataclass(frozen=True)
class SearchDocument:
    iri: str
    kind: str
    title: str = ""
    summary: str = ""
    description: str = ""
    tags: str = ""
    identifier: str = ""
    created: str = ""
    updated: str = ""
    facets: tuple[tuple[str, str], ...] = ()
    vo: str = ""
    """The identifier of the VO that owns the asset."""
    visibility: str = PUBLIC
    """public: anyone may see it; anything else: only members of its VO."""
    """(field, value) pairs to filter on, e.g. ("tag", "deep learning"), ("task", "computer-vision")."""


@dataclass(frozen=True)
class FacetQuery:
    """A catalog listing: every condition must hold. Field names and sort keys come from code,
    values from users (they are only ever bound as SQL parameters)."""

    kind: str
    readers: Readers
    """Assets of other VOs that are not public never come back (see `Readers`)."""
    text: str | None = None
    all_of: tuple[tuple[str, str], ...] = ()
    """(field, value): the asset has every one of these."""
    any_of: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """(field, values): the asset has at least one of the values, for each entry."""
    none_of: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """(field, values): the asset has none of the values."""
    not_all_of: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """(field, values): the asset does not have all of the values."""
    sort: str = "identifier"
    descending: bool = False
    limit: int = 100
    after: tuple[str, str] | None = None
    """Keyset cursor: the (sort value, iri) of the last row of the previous page."""


@dataclass(frozen=True)
class FacetPage:
    iris: list[str]
    next_after: tuple[str, str] | None


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
    """The index in `path` (None: in memory).

    Writes go through one connection, one transaction at a time (the crash protocol above). On
    disk the database is in WAL mode, so reads take a connection of their own from a small pool:
    they run beside each other and beside a write (SQLite lets go of the GIL while it works), each
    seeing the last committed state. An in-memory database exists only on its one connection, so
    there reads share it, behind the same lock as the writes.
    """

    POOL_SIZE = 8
    """Idle read connections kept open (more are opened while more threads read at once)."""

    def __init__(self, path: Path | None):
        self.path = path
        self._db = sqlite3.connect(str(path) if path else ":memory:", isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL" if path else "PRAGMA journal_mode=MEMORY")
        self._db.execute("PRAGMA synchronous=NORMAL")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        existing = self._db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'documents'").fetchone()[0]
        self.needs_rebuild = bool(existing) and version != SCHEMA_VERSION
        """The index was written by another version: the caller refills it from the store."""
        if self.needs_rebuild:
            self._db.executescript("DROP TABLE IF EXISTS documents; DROP TABLE IF EXISTS documents_text; "
                                   "DROP TABLE IF EXISTS facets; DROP TABLE IF EXISTS pending;")
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")
        # Writes (and, in memory, reads) are serialised on the one write connection.
        self._lock = threading.RLock()
        self._idle: list[sqlite3.Connection] = []
        """Read connections not in use (on disk only)."""
        self._closed = False

    def close(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().close()
        self._db.close()

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """A connection to read from: one of the pool's (on disk), or the write connection under its lock."""
        if self.path is None:
            with self._lock:
                yield self._db
            return
        try:
            db = self._idle.pop()  # atomic: no two threads get the same connection
        except IndexError:
            if self._closed:
                raise sqlite3.ProgrammingError("Cannot operate on a closed database.") from None
            db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA query_only = ON")
        try:
            yield db
        finally:
            if self._closed or len(self._idle) >= self.POOL_SIZE:
                db.close()
            else:
                self._idle.append(db)

    def _rows(self, sql: str, params: Iterable[object] = ()) -> list[tuple]:
        with self._reading() as db:
            return db.execute(sql, tuple(params)).fetchall()

    def mark_pending(self, iris: Iterable[str]) -> None:
        with self._transaction():
            self._db.executemany("INSERT OR IGNORE INTO pending(iri) VALUES (?)", [(iri,) for iri in iris])

    def pending(self) -> list[str]:
        return [row[0] for row in self._rows("SELECT iri FROM pending ORDER BY iri")]

    def apply(self, documents: Iterable[SearchDocument], removed: Iterable[str] = ()) -> None:
        """Replace the rows of `documents`, delete `removed`, and clear their pending marks."""
        with self._transaction():
            for document in documents:
                self._delete(document.iri)
                cursor = self._db.execute(
                    "INSERT INTO documents(iri, kind, identifier, vo, visibility, title, created, updated) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (document.iri, document.kind, document.identifier, document.vo, document.visibility,
                     document.title, document.created, document.updated))
                rowid = cursor.lastrowid
                self._db.execute(
                    "INSERT INTO documents_text(rowid, title, summary, description, tags) VALUES (?, ?, ?, ?, ?)",
                    (rowid, document.title, document.summary, document.description, document.tags))
                self._db.executemany("INSERT OR IGNORE INTO facets(rowid, field, value) VALUES (?, ?, ?)",
                                     [(rowid, field, value) for field, value in document.facets])
                self._db.execute("DELETE FROM pending WHERE iri = ?", (document.iri,))
            for iri in removed:
                self._delete(iri)
                self._db.execute("DELETE FROM pending WHERE iri = ?", (iri,))

    def _delete(self, iri: str) -> None:
        row = self._db.execute("SELECT rowid FROM documents WHERE iri = ?", (iri,)).fetchone()
        if row:
            self._db.execute("DELETE FROM documents_text WHERE rowid = ?", row)
            self._db.execute("DELETE FROM facets WHERE rowid = ?", row)
            self._db.execute("DELETE FROM documents WHERE rowid = ?", row)

    def search(self, text: str, readers: Readers, limit: int = 20, kind: str | None = None) -> list[SearchHit]:
        expression = match_expression(text)
        if expression is None:
            return []
        visible, visible_params = _visible(readers)
        # bm25 weights: a word in the title counts most, then tags, summary, description.
        rows = self._rows(
            "SELECT d.iri, d.kind, bm25(documents_text, 10.0, 4.0, 1.0, 6.0) AS score "
            "FROM documents_text JOIN documents d ON d.rowid = documents_text.rowid "
            f"WHERE documents_text MATCH ? AND (? IS NULL OR d.kind = ?) {visible} ORDER BY score LIMIT ?",
            (expression, kind, kind, *visible_params, limit))
        return [SearchHit(iri, k, -score) for iri, k, score in rows]

    def filter(self, query: FacetQuery) -> FacetPage:
        """One page of the assets matching `query`, in sort order, with the cursor of the next page."""
        if query.sort not in SORT_KEYS:
            raise ValueError(f"unknown sort key {query.sort!r}; one of {', '.join(SORT_KEYS)}")
        visible, visible_params = _visible(query.readers)
        sql = [f"SELECT d.iri, d.{query.sort} FROM documents d WHERE d.kind = ? {visible}"]
        params: list[object] = [query.kind, *visible_params]
        has = "SELECT 1 FROM facets f WHERE f.rowid = d.rowid AND f.field = ? AND f.value"
        if query.text is not None:
            expression = match_expression(query.text)
            if expression is None:
                return FacetPage([], None)
            sql.append("AND d.rowid IN (SELECT rowid FROM documents_text WHERE documents_text MATCH ?)")
            params.append(expression)
        for field, value in query.all_of:
            sql.append(f"AND EXISTS ({has} = ?)")
            params += [field, value]
        for negate, entries in (("", query.any_of), ("NOT ", query.none_of)):
            for field, values in entries:
                if not values:
                    continue
                sql.append(f"AND {negate}EXISTS ({has} IN ({', '.join('?' * len(values))}))")
                params += [field, *values]
        for field, values in query.not_all_of:
            if not values:
                continue
            sql.append(f"AND (SELECT COUNT(DISTINCT f.value) FROM facets f WHERE f.rowid = d.rowid AND f.field = ? "
                       f"AND f.value IN ({', '.join('?' * len(values))})) < ?")
            params += [field, *values, len(set(values))]
        if query.after is not None:
            comparison = "<" if query.descending else ">"
            sql.append(f"AND (d.{query.sort} {comparison} ? OR (d.{query.sort} = ? AND d.iri {comparison} ?))")
            params += [query.after[0], query.after[0], query.after[1]]
        direction = "DESC" if query.descending else "ASC"
        sql.append(f"ORDER BY d.{query.sort} {direction}, d.iri {direction} LIMIT ?")
        params.append(query.limit + 1)
        rows = self._rows(" ".join(sql), params)
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        return FacetPage([iri for iri, _ in rows], (rows[-1][1], rows[-1][0]) if more else None)

    def has_restricted(self) -> bool:
        """Whether any asset is not public (until one is, nothing needs hiding)."""
        # two range probes on the visibility index, not a scan (as `!=` would be)
        return self._rows("SELECT EXISTS (SELECT 1 FROM documents WHERE visibility < ? OR visibility > ?)",
                          (PUBLIC, PUBLIC))[0][0] == 1

    def visible_iris(self, readers: Readers) -> list[str]:
        """Every asset `readers` may see (for restricting SPARQL to those graphs)."""
        visible, params = _visible(readers)
        return [row[0] for row in self._rows(f"SELECT d.iri FROM documents d WHERE 1 = 1 {visible}", params)]

    def count(self) -> int:
        return self._rows("SELECT COUNT(*) FROM documents")[0][0]

    def iris(self) -> list[str]:
        return [row[0] for row in self._rows("SELECT iri FROM documents ORDER BY iri")]

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
