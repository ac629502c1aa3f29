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

import json
import re
import secrets
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field as dataclass_field, replace
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple

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
DROP INDEX IF EXISTS facets_by_document;
CREATE INDEX IF NOT EXISTS facets_by_document_field ON facets(rowid, field, value);
CREATE INDEX IF NOT EXISTS documents_by_visibility ON documents(visibility, vo);
CREATE INDEX IF NOT EXISTS documents_by_kind ON documents(kind, visibility, vo);
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

EVERY_ASSET = "urn:ai4kg:pending:every-asset"
"""A pending mark that stands for every asset: the store re-indexes all of them on open (graph/store.py).
Set with a change that needs it (an index rebuilt, a record log upgraded), in the same transaction."""


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
    digest: str = ""
    """A digest of the asset's quads (store.content_digest; "" when not computed): the record log
    gives an asset a new sequence number and datestamp only when it changes."""
    dublin_core: str = ""
    """The asset's Dublin Core fields as compact JSON (store.dublin_core; "" when not computed): the
    record log keeps them, so OAI-PMH oai_dc records never read the store. They follow from the
    quads the digest covers."""


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


class IndexRow(NamedTuple):
    """What the index holds about one listed asset, beside its IRI: enough to build its keyset cursor
    and to know whom it is visible to, without reading its graph."""

    iri: str
    value: str
    """The value of the listing's sort key (the cursor is (value, iri))."""
    vo: str
    visibility: str


@dataclass(frozen=True)
class FacetPage:
    iris: list[str]
    next_after: tuple[str, str] | None
    rows: list[IndexRow] = dataclass_field(default_factory=list)
    """The page's rows, in `iris` order: sort value, VO and visibility as the index holds them (the
    query already kept only those its readers may see)."""


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
        """The index was written by another version (or the record log is new or upgraded): it is
        refilled from the store on open, by the pending mark EVERY_ASSET committed with the change."""
        if self.needs_rebuild:  # one transaction: the empty index comes with the mark that refills it
            self._db.executescript(
                "BEGIN IMMEDIATE; DROP TABLE IF EXISTS documents; DROP TABLE IF EXISTS documents_text; "
                "DROP TABLE IF EXISTS facets; DROP TABLE IF EXISTS pending; " + _SCHEMA +
                f"PRAGMA user_version = {SCHEMA_VERSION:d}; INSERT INTO pending(iri) VALUES ('{EVERY_ASSET}'); COMMIT;")
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")
        self._open_record_log()
        # Writes (and, in memory, reads) are serialised on the one write connection.
        self._lock = threading.RLock()
        self._facet_cache: dict[tuple, tuple[int, dict[str, list[tuple[str, int]]]]] = {}
        self._facet_lock = threading.Lock()
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
        documents, removed = list(documents), list(removed)
        with self._transaction():
            self._log_records(documents, removed)  # the record log changes in the same transaction
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
        where = self._matching(query)
        if where is None:
            return FacetPage([], None)
        conditions, params = where
        sql = [f"SELECT d.iri, d.{query.sort}, d.vo, d.visibility FROM documents d WHERE {conditions}"]
        if query.after is not None:
            comparison = "<" if query.descending else ">"
            sql.append(f"AND (d.{query.sort} {comparison} ? OR (d.{query.sort} = ? AND d.iri {comparison} ?))")
            params += [query.after[0], query.after[0], query.after[1]]
        direction = "DESC" if query.descending else "ASC"
        sql.append(f"ORDER BY d.{query.sort} {direction}, d.iri {direction} LIMIT ?")
        params.append(query.limit + 1)
        found = self._rows(" ".join(sql), params)
        more = len(found) > query.limit
        rows = list(map(IndexRow._make, found[: query.limit]))
        return FacetPage([row.iri for row in rows], (rows[-1].value, rows[-1].iri) if more else None, rows)

    def facet_counts(self, query: FacetQuery, fields: Iterable[str], most: int = 12,
                     chosen: dict[str, tuple[str, ...]] | None = None) -> tuple[int, dict[str, list[tuple[str, int]]]]:
        """How many assets match `query` (its sort and page aside), and for each facet field the
        `most` frequent values among them with their counts (most first), plus the `chosen` values
        of that field wherever they rank: a catalogue's facets. "vo" counts the owning VOs.

        Remembered until the index changes (its record log moves on): the pages of one listing,
        and the catalogue's first page, share their counts."""
        fields = tuple(fields)
        chosen = chosen or {}
        key = (self.log_position()[0], replace(query, sort="identifier", descending=False, limit=0, after=None), fields,
               most, tuple(sorted((f, tuple(v)) for f, v in chosen.items())))
        with self._facet_lock:
            cached = self._facet_cache.get(key)
        if cached is not None:
            return cached
        found = self._facet_counts(query, fields, most, chosen)
        with self._facet_lock:
            if len(self._facet_cache) >= 256:
                self._facet_cache.clear()
            self._facet_cache[key] = found
        return found

    def _facet_counts(self, query: FacetQuery, fields: tuple[str, ...], most: int,
                      chosen: dict[str, tuple[str, ...]]) -> tuple[int, dict[str, list[tuple[str, int]]]]:
        where = self._matching(query)
        if where is None:
            return 0, {field: [] for field in fields}
        conditions, params = where
        # One statement: the matching rows are found once (a materialised CTE), then each field is
        # counted over them. With conditions, from the matching documents to their facet rows (an
        # index seek each: 1,841 of 10,000 modules in 15 ms where a pass over every row of the field
        # took 24); without, over the field's rows (34 vs 47 ms for all 10,000).
        filtered = query.text is not None or bool(query.all_of) or any(
            values for entries in (query.any_of, query.none_of, query.not_all_of) for _, values in entries)
        parts, arguments = ["SELECT '', '', COUNT(*) FROM m"], list(params)
        for field in fields:
            if field == "vo":  # the owning VO is a column of the document
                counted, column, field_args = "m JOIN documents d ON d.rowid = m.rowid", "d.vo", []
            elif filtered:
                counted, column, field_args = "m CROSS JOIN facets f ON f.rowid = m.rowid AND f.field = ?", "f.value", [field]
            else:
                counted, column, field_args = "facets f WHERE f.field = ? AND f.rowid IN m", "f.value", [field]
            joiner = "AND" if "WHERE" in counted else "WHERE"
            parts.append(f"SELECT * FROM (SELECT ?, {column}, COUNT(*) AS n FROM {counted} GROUP BY {column} "
                         f"ORDER BY n DESC, {column} LIMIT ?)")
            arguments += [field, *field_args, most]
            values = chosen.get(field, ())
            if values:  # a chosen value is shown wherever it ranks
                parts.append(f"SELECT ?, {column}, COUNT(*) FROM {counted} {joiner} {column} IN "
                             f"({', '.join('?' * len(values))}) GROUP BY {column}")
                arguments += [field, *field_args, *values]
        rows = self._rows(f"WITH m(rowid) AS MATERIALIZED (SELECT d.rowid FROM documents d WHERE {conditions}) "
                          + " UNION ALL ".join(parts), arguments)
        total = rows[0][2]
        counts: dict[str, list[tuple[str, int]]] = {field: [] for field in fields}
        seen: set[tuple[str, str]] = set()
        for field, value, n in rows[1:]:
            if (field, value) not in seen:
                seen.add((field, value))
                counts[field].append((value, n))
        return total, counts

    def cards(self, iris: list[str]) -> dict[str, dict[str, str]]:
        """What a listing shows of each asset (title, summary, dates, VO, visibility), from the index
        alone: a catalogue page reads no asset's graph."""
        found: dict[str, dict[str, str]] = {}
        for start in range(0, len(iris), 500):
            chunk = iris[start:start + 500]
            for iri, identifier, title, summary, created, updated, vo, visibility in self._rows(
                    "SELECT d.iri, d.identifier, d.title, t.summary, d.created, d.updated, d.vo, d.visibility "
                    "FROM documents d JOIN documents_text t ON t.rowid = d.rowid "
                    f"WHERE d.iri IN ({', '.join('?' * len(chunk))})", chunk):
                found[iri] = {"identifier": identifier, "title": title, "summary": summary or "", "created": created,
                              "updated": updated, "vo": vo, "visibility": visibility}
        return found

    def _matching(self, query: FacetQuery) -> tuple[str, list[object]] | None:
        """The SQL conditions (on `documents d`) and parameters of the assets `query` matches, its
        cursor aside; None when its text can match nothing."""
        visible, visible_params = _visible(query.readers)
        sql = [f"d.kind = ? {visible}"]
        params: list[object] = [query.kind, *visible_params]
        has = "SELECT 1 FROM facets f WHERE f.rowid = d.rowid AND f.field = ? AND f.value"
        if query.text is not None:
            expression = match_expression(query.text)
            if expression is None:
                return None
            sql.append("AND d.rowid IN (SELECT rowid FROM documents_text WHERE documents_text MATCH ?)")
            params.append(expression)
        for field, value in query.all_of:
            sql.append(f"AND EXISTS ({has} = ?)")
            params += [field, value]
        for negate, entries in (("", query.any_of), ("NOT ", query.none_of)):
            for field, values in entries:
                if not values:
                    continue
                if field == "vo":  # the owning VO is a column, not a facet row
                    sql.append(f"AND d.vo {negate}IN ({', '.join('?' * len(values))})")
                    params += list(values)
                    continue
                sql.append(f"AND {negate}EXISTS ({has} IN ({', '.join('?' * len(values))}))")
                params += [field, *values]
        for field, values in query.not_all_of:
            if not values:
                continue
            sql.append(f"AND (SELECT COUNT(DISTINCT f.value) FROM facets f WHERE f.rowid = d.rowid AND f.field = ? "
                       f"AND f.value IN ({', '.join('?' * len(values))})) < ?")
            params += [field, *values, len(set(values))]
        return " ".join(sql), params

    def has_restricted(self) -> bool:
        """Whether any asset is not public (until one is, nothing needs hiding)."""
        # two range probes on the visibility index, not a scan (as `!=` would be)
        return self._rows("SELECT EXISTS (SELECT 1 FROM documents WHERE visibility < ? OR visibility > ?)",
                          (PUBLIC, PUBLIC))[0][0] == 1

    def visible_iris(self, readers: Readers) -> list[str]:
        """Every asset `readers` may see (for restricting SPARQL to those graphs)."""
        visible, params = _visible(readers)
        return [row[0] for row in self._rows(f"SELECT d.iri FROM documents d WHERE 1 = 1 {visible}", params)]

    def hidden_among(self, iris: Iterable[str], readers: Readers) -> set[str]:
        """The assets among `iris` that `readers` may not see (IRIs that are no asset are not hidden)."""
        iris = list(dict.fromkeys(iris))
        if readers is None or not iris:
            return set()
        hidden: set[str] = set()
        for start in range(0, len(iris), 500):
            chunk = iris[start:start + 500]
            rows = self._rows(f"SELECT iri, vo, visibility FROM documents WHERE iri IN ({', '.join('?' * len(chunk))})", chunk)
            hidden |= {iri for iri, vo, visibility in rows if visibility != PUBLIC and vo not in readers}
        return hidden

    def count(self) -> int:
        return self._rows("SELECT COUNT(*) FROM documents")[0][0]

    def names(self, readers: Readers, kind: str | None = None) -> list[tuple[str, str, str, str]]:
        """(iri, kind, title, identifier) of every asset `readers` may see (of `kind`, if given): what
        the assistant (assistant/lexicon.py) recognises a named asset by."""
        visible, params = _visible(readers)
        return self._rows(f"SELECT d.iri, d.kind, d.title, d.identifier FROM documents d "
                          f"WHERE (? IS NULL OR d.kind = ?) {visible}", (kind, kind, *params))

    def facet_values(self, field: str, readers: Readers) -> list[tuple[str, int]]:
        """The values of a facet (e.g. "tag") among the assets `readers` may see, with their counts."""
        visible, params = _visible(readers)
        return self._rows(f"SELECT f.value, COUNT(*) FROM facets f JOIN documents d ON d.rowid = f.rowid "
                          f"WHERE f.field = ? {visible} GROUP BY f.value", (field, *params))

    def count_by_kind(self, readers: Readers) -> dict[str, int]:
        """How many assets of each kind `readers` may see (GET /stats: counting a VO's private assets
        for anyone would tell that they exist, and how many)."""
        visible, params = _visible(readers)
        return dict(self._rows(f"SELECT d.kind, COUNT(*) FROM documents d WHERE 1 = 1 {visible} "
                               "GROUP BY d.kind ORDER BY d.kind", params))

    def iris(self) -> list[str]:
        return [row[0] for row in self._rows("SELECT iri FROM documents ORDER BY iri")]

    # -- the record log (OAI-PMH, api/oai.py) ------------------------------------------------------
    def _open_record_log(self) -> None:
        """Create the record log's tables, or keep them: they have a version of their own, so an index
        rebuild (another SCHEMA_VERSION) keeps every sequence number, datestamp and tombstone. A log
        of an older version is upgraded in place: its entries stay as they are and every asset is
        marked pending in the same transaction, so the store re-indexes them on open, which fills
        what the new version keeps (the Dublin Core fields of version 2) for every live record
        without moving it; a crash in between leaves the mark, and the next open does it again. A
        log that is new (or of an unknown version) beside an index that already holds assets is
        filled the same way."""
        db = self._db
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        version = None
        if "record_log_meta" in tables:
            row = db.execute("SELECT value FROM record_log_meta WHERE key = 'version'").fetchone()
            version = row[0] if row else None
        current = str(RECORD_LOG_VERSION)
        if "record_log" in tables and version == current:
            db.executescript(_RECORD_LOG_SCHEMA)
            return
        upgrade = "record_log" in tables and version in _RECORD_LOG_UPGRADES
        with self._transaction_on(db):
            if not upgrade:
                db.execute("DROP TABLE IF EXISTS record_metadata")
                db.execute("DROP TABLE IF EXISTS record_sets")
                db.execute("DROP TABLE IF EXISTS record_log")
                db.execute("DROP TABLE IF EXISTS record_log_meta")
            for statement in _RECORD_LOG_SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            if upgrade:
                db.execute("UPDATE record_log_meta SET value = ? WHERE key = 'version'", (current,))
            else:
                db.executemany("INSERT OR REPLACE INTO record_log_meta(key, value) VALUES (?, ?)",
                               [("version", current), ("created", str(int(_clock()))),
                                ("token_key", secrets.token_hex(32))])
            if db.execute("SELECT EXISTS (SELECT 1 FROM documents)").fetchone()[0] or upgrade:
                # re-applying every document fills the log (or what its new version keeps)
                db.execute("INSERT OR IGNORE INTO pending(iri) VALUES (?)", (EVERY_ASSET,))
                self.needs_rebuild = True

    @staticmethod
    @contextmanager
    def _transaction_on(db: sqlite3.Connection) -> Iterator[None]:
        """A transaction on `db` before the lock exists (while opening)."""
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _log_records(self, documents: list[SearchDocument], removed: list[str]) -> None:
        """Record log entries for an `apply` (inside its transaction): an asset that is new or changed
        (its digest, kind, VO, visibility or sets differ) gets the next sequence number and a datestamp
        that never goes backwards; a removed asset becomes a tombstone that keeps its kind, VO,
        visibility and sets. Re-applying an unchanged document changes nothing."""
        stamp: list[int] = []

        def datestamp() -> int:
            if not stamp:
                last = self._db.execute("SELECT MAX(datestamp) FROM record_log").fetchone()[0] or 0
                stamp.append(max(int(_clock()), last))
            return stamp[0]

        for document in documents:
            specs = " ".join(set_specs(document))
            row = self._db.execute("SELECT r.seq, r.deleted, r.kind, r.vo, r.visibility, r.digest, r.sets, m.dc "
                                   "FROM record_log r LEFT JOIN record_metadata m ON m.seq = r.seq "
                                   "WHERE r.iri = ?", (document.iri,)).fetchone()
            if row is not None and document.digest and \
                    row[1:7] == (0, document.kind, document.vo, document.visibility, document.digest, specs):
                if (row[7] or "") != document.dublin_core:  # the same content, fields kept by a newer version
                    self._log_metadata(row[0], document.dublin_core)
                continue
            self._log_write(row[0] if row else None, document.iri, datestamp(), False, document.kind, document.vo,
                            document.visibility, document.digest, specs, document.dublin_core)
        for iri in removed:
            row = self._db.execute("SELECT seq, deleted, kind, vo, visibility, sets FROM record_log WHERE iri = ?",
                                   (iri,)).fetchone()
            if row is None or row[1]:
                continue
            self._log_write(row[0], iri, datestamp(), True, row[2], row[3], row[4], "", row[5], "")

    def _log_metadata(self, seq: int, dublin_core: str) -> None:
        if dublin_core:
            self._db.execute("INSERT OR REPLACE INTO record_metadata(seq, dc) VALUES (?, ?)", (seq, dublin_core))
        else:
            self._db.execute("DELETE FROM record_metadata WHERE seq = ?", (seq,))

    def _log_write(self, old_seq: int | None, iri: str, datestamp: int, deleted: bool, kind: str, vo: str,
                   visibility: str, digest: str, specs: str, dublin_core: str) -> None:
        if old_seq is not None:
            self._db.execute("DELETE FROM record_sets WHERE seq = ?", (old_seq,))
            self._db.execute("DELETE FROM record_metadata WHERE seq = ?", (old_seq,))
            self._db.execute("DELETE FROM record_log WHERE seq = ?", (old_seq,))
        seq = self._db.execute(
            "INSERT INTO record_log(iri, datestamp, deleted, kind, vo, visibility, digest, sets) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (iri, datestamp, int(deleted), kind, vo, visibility, digest, specs)
        ).lastrowid
        if dublin_core and not deleted:
            self._log_metadata(seq, dublin_core)
        leaves = specs.split()
        self._db.executemany("INSERT OR IGNORE INTO record_sets(spec, seq) VALUES (?, ?)",
                             [(spec, seq) for spec in sorted({*leaves, *(s.split(":", 1)[0] for s in leaves)})])

    def log_secret(self) -> bytes:
        """A random key kept with the log (it survives restarts): signs OAI-PMH resumption tokens."""
        return bytes.fromhex(self._rows("SELECT value FROM record_log_meta WHERE key = 'token_key'")[0][0])

    def log_record(self, iri: str, metadata: bool = False) -> LogRecord | None:
        """The log entry of one asset (live or a tombstone), whoever may see it; `metadata`: with its
        Dublin Core fields."""
        columns, join = _log_columns(metadata)
        rows = self._rows(f"SELECT {columns} FROM record_log r {join} WHERE r.iri = ?", (iri,))
        return _log_record(rows[0]) if rows else None

    def log_names(self, iris: Iterable[str]) -> dict[str, str]:
        """What live assets are called when they are another asset's creator (the first title, else
        foaf:name, from their Dublin Core fields), for those of `iris` that have a name."""
        iris = sorted(set(iris))
        names: dict[str, str] = {}
        for at in range(0, len(iris), 500):
            chunk = iris[at:at + 500]
            for iri, dc in self._rows(
                    "SELECT r.iri, m.dc FROM record_log r JOIN record_metadata m ON m.seq = r.seq "
                    f"WHERE r.iri IN ({', '.join('?' * len(chunk))}) AND r.deleted = 0", chunk):
                fields = json.loads(dc)
                name = (fields.get("title") or fields.get("name") or [None])[0]
                if name is not None:
                    names[iri] = name
        return names

    def log_earliest(self) -> int:
        """The earliest datestamp in the log (UTC seconds); when it is empty, when it was created."""
        earliest = self._rows("SELECT MIN(datestamp) FROM record_log")[0][0]
        if earliest is None:
            earliest = int(self._rows("SELECT value FROM record_log_meta WHERE key = 'created'")[0][0])
        return earliest

    def log_position(self) -> tuple[int, int]:
        """(the highest sequence number, the latest datestamp) given out so far; (0, 0) when empty."""
        seq, stamp = self._rows("SELECT MAX(seq), MAX(datestamp) FROM record_log")[0]
        return seq or 0, stamp or 0

    def log_bounds(self, start: int | None, end: int | None) -> tuple[int, int | None] | None:
        """Sequence numbers around the datestamps [start, end]: every entry stamped in the range has
        low < seq (and seq <= high where high is not None); None when no entry is. An end before the
        latest datestamp bounds the sequence for good (later entries get later stamps)."""
        low, high = 0, None
        if start is not None:
            low = self._rows("SELECT MIN(seq) FROM record_log WHERE datestamp >= ?", (start,))[0][0]
            if low is None:
                return None
            low -= 1
        if end is not None and end < self.log_position()[1]:
            high = self._rows("SELECT MAX(seq) FROM record_log WHERE datestamp <= ?", (end,))[0][0]
            if high is None:
                return None
        return low, high

    def _log_query(self, columns: str, readers: Readers, after: int, high: int | None, kinds: frozenset[str] | None,
                   spec: str | None, start: int | None, end: int | None, join: str = "") -> tuple[str, list[object]]:
        if spec is None:
            sql, params = [f"SELECT {columns} FROM record_log r {join} WHERE r.seq > ?"], [after]
        else:
            sql = [f"SELECT {columns} FROM record_sets s JOIN record_log r ON r.seq = s.seq {join} "
                   "WHERE s.spec = ? AND s.seq > ?"]
            params = [spec, after]
        key = "r.seq" if spec is None else "s.seq"
        if high is not None:
            sql.append(f"AND {key} <= ?")
            params.append(high)
        # unary + keeps the planner on the sequence number's range (datestamps only filter)
        if start is not None:
            sql.append("AND +r.datestamp >= ?")
            params.append(start)
        if end is not None:
            sql.append("AND +r.datestamp <= ?")
            params.append(end)
        if kinds is not None:
            sql.append(f"AND r.kind IN ({', '.join('?' * len(kinds))})")
            params += sorted(kinds)
        if readers is not None:
            sql.append(f"AND (r.visibility = ? OR r.vo IN ({', '.join('?' * len(readers))}))")
            params += [PUBLIC, *sorted(readers)]
        return " ".join(sql), params

    def log_page(self, readers: Readers, after: int, limit: int, *, high: int | None = None,
                 kinds: frozenset[str] | None = None, spec: str | None = None, start: int | None = None,
                 end: int | None = None, metadata: bool = False) -> list[LogRecord]:
        """Log entries after sequence number `after`, in sequence order, that `readers` may see (None:
        all), of `kinds` (None: all), in set `spec` (or a set below it), stamped in [start, end];
        `metadata`: with their Dublin Core fields."""
        columns, join = _log_columns(metadata)
        sql, params = self._log_query(columns, readers, after, high, kinds, spec, start, end, join)
        order = "r.seq" if spec is None else "s.seq"
        return [_log_record(row) for row in self._rows(f"{sql} ORDER BY {order} LIMIT ?", [*params, limit])]

    def log_count(self, readers: Readers, after: int = 0, *, high: int | None = None,
                  kinds: frozenset[str] | None = None, spec: str | None = None, start: int | None = None,
                  end: int | None = None) -> int:
        """How many entries `log_page` would list from `after` on, without a limit."""
        sql, params = self._log_query("COUNT(*)", readers, after, high, kinds, spec, start, end)
        return self._rows(sql, params)[0][0]

    def log_sets(self, readers: Readers) -> list[str]:
        """Every set spec with at least one entry `readers` may see, in order (one index probe per set)."""
        specs: list[str] = []
        previous = ""
        visible, params = "", []
        if readers is not None:
            visible = f"AND (r.visibility = ? OR r.vo IN ({', '.join('?' * len(readers))}))"
            params = [PUBLIC, *sorted(readers)]
        while True:
            row = self._rows("SELECT spec FROM record_sets WHERE spec > ? ORDER BY spec LIMIT 1", (previous,))
            if not row:
                return specs
            previous = row[0][0]
            if readers is None or self._rows(
                    "SELECT EXISTS (SELECT 1 FROM record_sets s JOIN record_log r ON r.seq = s.seq "
                    f"WHERE s.spec = ? {visible})", (previous, *params))[0][0]:
                specs.append(previous)

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


# -- the record log (OAI-PMH) ----------------------------------------------------------------------
RECORD_LOG_VERSION = 2
"""The record log's own version. Index rebuilds (SCHEMA_VERSION) keep the log: its sequence numbers,
datestamps and tombstones cannot be recomputed from the store. A log of an older version (in
_RECORD_LOG_UPGRADES) is upgraded in place, keeping all of them (see `_open_record_log`); one of an
unknown version is dropped and filled again from the store (its tombstones are then lost).
2: record_metadata, the Dublin Core fields of live records."""

_RECORD_LOG_UPGRADES = {"1"}
"""Versions whose tables the current one extends (new tables only): kept, and refilled on open."""

_RECORD_LOG_SCHEMA = """
CREATE TABLE IF NOT EXISTS record_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    iri TEXT NOT NULL UNIQUE,
    datestamp INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    kind TEXT NOT NULL,
    vo TEXT NOT NULL DEFAULT '',
    visibility TEXT NOT NULL DEFAULT '',
    digest TEXT NOT NULL DEFAULT '',
    sets TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS record_log_by_datestamp ON record_log(datestamp, seq);
CREATE TABLE IF NOT EXISTS record_sets (
    spec TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (spec, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS record_sets_by_seq ON record_sets(seq);
CREATE TABLE IF NOT EXISTS record_log_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS record_metadata (seq INTEGER PRIMARY KEY, dc TEXT NOT NULL);
"""
"""One row per asset IRI ever indexed: `seq` grows with every change (AUTOINCREMENT never reuses a
number, even the highest one's after it moves on), `datestamp` is UTC seconds, `sets` the leaf set
specs; record_sets holds each entry's sets and their parents, for selective harvesting by keyset.
record_metadata holds a live entry's Dublin Core fields (SearchDocument.dublin_core) under its
sequence number, beside the log rather than in it, so that scans and counts of the log stay small;
a tombstone has none."""

_LOG_COLUMNS = "r.seq, r.iri, r.datestamp, r.deleted, r.kind, r.vo, r.visibility, r.sets"


def _log_columns(metadata: bool) -> tuple[str, str]:
    """The columns of a LogRecord, and the join they need (with the Dublin Core fields or not)."""
    if metadata:
        return _LOG_COLUMNS + ", m.dc", "LEFT JOIN record_metadata m ON m.seq = r.seq"
    return _LOG_COLUMNS + ", NULL", ""
SET_FACETS = ("category", "task", "library", "dataType")
"""Facets that make sets (besides the asset's kind and VO): set spec `<facet>:<value>`."""
_SPEC_UNSAFE = re.compile(r"[^A-Za-z0-9\-_.!*'()]")


def spec_part(value: str) -> str:
    """A value as one part of an OAI-PMH set spec ([A-Za-z0-9-_.!~*'()]+): other characters as ~XX
    (their UTF-8 bytes; `~` is the escape)."""
    return _SPEC_UNSAFE.sub(lambda m: "".join(f"~{b:02X}" for b in m.group().encode()), value)


def set_specs(document: SearchDocument) -> tuple[str, ...]:
    """The leaf sets of an asset: `kind:<Kind>`, `vo:<vo>` and `<facet>:<value>` for SET_FACETS."""
    specs = {f"kind:{spec_part(document.kind)}"}
    if document.vo:
        specs.add(f"vo:{spec_part(document.vo)}")
    specs |= {f"{field}:{spec_part(value)}" for field, value in document.facets if field in SET_FACETS and value}
    return tuple(sorted(specs))


class LogRecord(NamedTuple):
    """One entry of the record log: the asset as it was when it last changed (or was removed)."""

    seq: int
    iri: str
    datestamp: int
    """UTC seconds."""
    deleted: bool
    kind: str
    vo: str
    visibility: str
    sets: tuple[str, ...]
    dublin_core: str = ""
    """The Dublin Core fields (compact JSON, store.dublin_core) when asked for and kept; else ""."""


def _clock() -> float:
    """UTC seconds now, for datestamps (tests replace it)."""
    return time.time()


def _log_record(row: tuple) -> LogRecord:
    seq, iri, datestamp, deleted, kind, vo, visibility, sets, dublin_core = row
    return LogRecord(seq, iri, datestamp, bool(deleted), kind, vo, visibility, tuple(sets.split()), dublin_core or "")
