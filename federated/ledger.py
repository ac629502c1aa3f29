"""The federations' ledger: `federated.sqlite` in the data directory.

Beside the graph (each session and each round its own named graph) it keeps what the API answers
with and checks fast: each federation's record as JSON with its clients, the digest of the token
its ServerApp posts rounds with, and each round record as the ServerApp posted it (with the
divergence found). Changes follow the search index's protocol: saved marked `unmapped`, the
graph written, the mark cleared; on open, what is still marked is written to the graph again.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from .records import Federation

_SCHEMA = """
CREATE TABLE IF NOT EXISTS federations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    identifier TEXT NOT NULL UNIQUE,
    owner TEXT NOT NULL,
    vo TEXT NOT NULL,
    status TEXT NOT NULL,
    token_digest TEXT NOT NULL,
    record TEXT NOT NULL,
    unmapped INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS federations_by_owner ON federations(owner, seq);
CREATE INDEX IF NOT EXISTS federations_by_vo ON federations(vo, seq);
CREATE TABLE IF NOT EXISTS rounds (
    federation TEXT NOT NULL,
    number INTEGER NOT NULL,
    record TEXT NOT NULL,
    divergence TEXT NOT NULL,
    received TEXT NOT NULL,
    unmapped INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (federation, number)
);
"""


class FederationLedger:
    def __init__(self, data_dir: Path | None):
        path = ":memory:"
        if data_dir is not None:
            data_dir.mkdir(parents=True, exist_ok=True)
            path = str(data_dir / "federated.sqlite")
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def save(self, federation: Federation, token_digest: str | None = None) -> None:
        """Insert or update the federation's record, marked unmapped."""
        record = json.dumps(federation.as_json())
        with self._lock:
            if token_digest is not None:
                self._db.execute("INSERT INTO federations (identifier, owner, vo, status, token_digest, record) "
                                 "VALUES (?, ?, ?, ?, ?, ?)", (federation.identifier, federation.owner,
                                                               federation.vo, federation.status, token_digest, record))
            else:
                self._db.execute("UPDATE federations SET status = ?, record = ?, unmapped = 1 WHERE identifier = ?",
                                 (federation.status, record, federation.identifier))

    def mapped(self, identifier: str, round_number: int | None = None) -> None:
        with self._lock:
            if round_number is None:
                self._db.execute("UPDATE federations SET unmapped = 0 WHERE identifier = ?", (identifier,))
            else:
                self._db.execute("UPDATE rounds SET unmapped = 0 WHERE federation = ? AND number = ?",
                                 (identifier, round_number))

    def get(self, identifier: str) -> Federation | None:
        row = self._db.execute("SELECT record FROM federations WHERE identifier = ?", (identifier,)).fetchone()
        return Federation.from_json(json.loads(row[0])) if row else None

    def token_digest(self, identifier: str) -> str | None:
        row = self._db.execute("SELECT token_digest FROM federations WHERE identifier = ?", (identifier,)).fetchone()
        return row[0] if row else None

    def find(self, owner: str | None = None, vos: frozenset[str] | None = None, limit: int = 1000
             ) -> list[Federation]:
        """Newest first: the owner's, or (also) those of `vos`; everyone's when both are None."""
        clauses, values = [], []
        if owner is not None and vos:
            clauses.append(f"(owner = ? OR vo IN ({','.join('?' * len(vos))}))")
            values += [owner, *sorted(vos)]
        elif owner is not None:
            clauses.append("owner = ?")
            values.append(owner)
        elif vos is not None:
            clauses.append(f"vo IN ({','.join('?' * len(vos))})")
            values += sorted(vos)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._db.execute(f"SELECT record FROM federations {where} ORDER BY seq DESC LIMIT ?",
                                (*values, limit)).fetchall()
        return [Federation.from_json(json.loads(r[0])) for r in rows]

    def active(self) -> list[Federation]:
        rows = self._db.execute("SELECT record FROM federations WHERE status NOT IN "
                                "('completed', 'failed', 'stopped') ORDER BY seq").fetchall()
        return [Federation.from_json(json.loads(r[0])) for r in rows]

    def save_round(self, federation: str, record: dict[str, Any], divergence: dict[str, Any], received: str) -> None:
        with self._lock:
            self._db.execute("INSERT INTO rounds (federation, number, record, divergence, received) "
                             "VALUES (?, ?, ?, ?, ?)", (federation, record["round"], json.dumps(record),
                                                        json.dumps(divergence), received))

    def round(self, federation: str, number: int) -> tuple[dict[str, Any], dict[str, Any]] | None:
        row = self._db.execute("SELECT record, divergence FROM rounds WHERE federation = ? AND number = ?",
                               (federation, number)).fetchone()
        return (json.loads(row[0]), json.loads(row[1])) if row else None

    def rounds(self, federation: str) -> list[tuple[dict[str, Any], dict[str, Any], str]]:
        rows = self._db.execute("SELECT record, divergence, received FROM rounds WHERE federation = ? "
                                "ORDER BY number", (federation,)).fetchall()
        return [(json.loads(r[0]), json.loads(r[1]), r[2]) for r in rows]

    def unmapped(self) -> tuple[list[Federation], list[tuple[str, dict[str, Any], dict[str, Any]]]]:
        federations = [Federation.from_json(json.loads(r[0])) for r in
                       self._db.execute("SELECT record FROM federations WHERE unmapped = 1 ORDER BY seq")]
        rounds = [(r[0], json.loads(r[1]), json.loads(r[2])) for r in
                  self._db.execute("SELECT federation, record, divergence FROM rounds WHERE unmapped = 1 "
                                   "ORDER BY federation, number")]
        return federations, rounds
