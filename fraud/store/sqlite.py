"""The embedded online store: one SQLite file (WAL), shared by every worker of one machine.

A read-compute-write runs inside ``BEGIN IMMEDIATE``: SQLite's one writer lock makes it atomic
across processes, so concurrent requests for one card lose no update. Readers never wait for
it (WAL). One instance only: several machines need the Redis store.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import orjson

from fraud.store.errors import StoreUnavailableError
from fraud.store.layout import Changes, Loaded

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS parts (
    key TEXT NOT NULL,
    part INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (key, part)
) WITHOUT ROWID;
"""
_LOAD = "SELECT key, part, data FROM parts WHERE key IN (SELECT value FROM json_each(?))"


class SQLiteStore:
    """Parts of entity keys in a SQLite file; ``url`` is ``sqlite:///<path>``."""

    def __init__(self, path: Path, url: str, busy_timeout_s: float = 5.0) -> None:
        self.path = Path(path)
        self.url = url
        self.name = f"sqlite store {self.path}"
        self.busy_timeout_s = float(busy_timeout_s)
        self._local = threading.local()

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection (and a new one after a fork: connections never cross)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            return conn
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at checkpoints, never torn
            conn.execute("PRAGMA cache_size=-65536")
            conn.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailableError(f"{self.name}: {exc}") from None
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def transact(self, keys: list[str], compute: Callable[[Loaded], tuple[T, Changes]]) -> T:
        """Load ``keys``' parts, ``compute`` (result, changes) and save the changes, atomically."""
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"{self.name}: {exc}") from None
        try:
            loaded: dict[str, dict[int, bytes]] = {}
            for key, part, data in conn.execute(_LOAD, (orjson.dumps(keys),)):
                loaded.setdefault(key, {})[part] = data
            result, changes = compute(loaded)
            _save(conn, changes)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            raise StoreUnavailableError(f"{self.name}: {exc}") from None
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return result

    def ping(self) -> None:
        """Raise StoreUnavailableError unless the file opens and answers."""
        try:
            self._connection().execute("SELECT count(*) FROM parts WHERE key = ''").fetchone()
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"{self.name}: {exc}") from None

    def scan(self) -> Iterable[tuple[str, int, bytes]]:
        """Every (key, part, data), for statistics."""
        yield from self._connection().execute("SELECT key, part, data FROM parts")

    def clear(self) -> None:
        """Delete every key (a fresh materialization)."""
        self._connection().execute("DELETE FROM parts")

    def close(self) -> None:
        conn: Any = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def _save(conn: sqlite3.Connection, changes: Changes) -> None:
    upserts = [
        (k, p, d) for k, parts in changes.items() for p, d in parts.items() if d is not None
    ]
    deletes = [(k, p) for k, parts in changes.items() for p, d in parts.items() if d is None]
    if deletes:
        conn.executemany("DELETE FROM parts WHERE key = ? AND part = ?", deletes)
    if upserts:
        conn.executemany(
            "INSERT OR REPLACE INTO parts (key, part, data) VALUES (?, ?, ?)", upserts
        )
