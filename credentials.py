"""API keys for machine clients (CI pipelines, harvesters with access to a VO).

A key is shown once, when it is made; only its SHA-256 digest is kept, in credentials.sqlite in
the data directory (SQLite, so `ai4kg apikey` works while `ai4kg serve` runs). Keys are random
and long (256 bits), so a plain digest cannot be reversed and needs no salt.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .config import private_directory

PREFIX = "ai4kg_"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    digest TEXT NOT NULL,
    label TEXT NOT NULL,
    vos TEXT NOT NULL,
    admin INTEGER NOT NULL,
    created TEXT NOT NULL,
    revoked TEXT
);
"""


@dataclass(frozen=True)
class ApiKey:
    id: str
    label: str
    vos: frozenset[str]
    admin: bool
    created: str
    revoked: str | None


class KeyStore:
    def __init__(self, data_dir: Path | None):
        path = str(data_dir / "credentials.sqlite") if data_dir else ":memory:"
        if data_dir:
            private_directory(data_dir)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def create(self, label: str, vos: frozenset[str], admin: bool = False) -> tuple[ApiKey, str]:
        """A new key and its secret text, which is not kept and cannot be shown again."""
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self._lock:
            self._db.execute("INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, NULL)",
                             (key_id, _digest(secret), label, " ".join(sorted(vos)), int(admin), created))
        return ApiKey(key_id, label, vos, admin, created, None), f"{PREFIX}{key_id}_{secret}"

    def verify(self, text: str) -> ApiKey | None:
        """The key a presented secret belongs to, or None (unknown, malformed or revoked)."""
        if not text.startswith(PREFIX) or text.count("_") < 2:
            return None
        key_id, secret = text[len(PREFIX):].split("_", 1)
        with self._lock:
            row = self._db.execute("SELECT * FROM api_keys WHERE id = ?", (key_id,)).fetchone()
        if row is None or row[6] is not None or not hmac.compare_digest(row[1], _digest(secret)):
            return None
        return _key(row)

    def active(self, key_id: str) -> ApiKey | None:
        """The key of that id, unless it is revoked or unknown (a dashboard session signed in with it
        asks on every page, so a revoked key ends the session)."""
        with self._lock:
            row = self._db.execute("SELECT * FROM api_keys WHERE id = ? AND revoked IS NULL", (key_id,)).fetchone()
        return None if row is None else _key(row)

    def list(self) -> list[ApiKey]:
        with self._lock:
            return [_key(row) for row in self._db.execute("SELECT * FROM api_keys ORDER BY created, id")]

    def revoke(self, key_id: str) -> bool:
        revoked = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self._lock:
            cursor = self._db.execute("UPDATE api_keys SET revoked = ? WHERE id = ? AND revoked IS NULL",
                                      (revoked, key_id))
        return cursor.rowcount == 1

    def close(self) -> None:
        self._db.close()


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _key(row: tuple) -> ApiKey:  # type: ignore[type-arg]
    return ApiKey(row[0], row[2], frozenset(row[3].split()), bool(row[4]), row[5], row[6])
