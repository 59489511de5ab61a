"""The embedded online store: one SQLite file (WAL), shared by every worker of one machine.

A read-compute-write is optimistic: parts are loaded and computed on outside any lock (WAL
readers never wait), then saved under SQLite's one writer lock (``BEGIN IMMEDIATE``) only if no
written key's events changed meanwhile, else done again; so concurrent requests for one card
from any worker lose no update. One machine only: several instances need the Redis store.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import orjson

from fraud.store.errors import StoreUnavailableError
from fraud.store.layout import EVENT_PARTS, Changes, Loaded

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS parts (
    key TEXT NOT NULL,
    part INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (key, part)
) WITHOUT ROWID;
"""
_LOAD = "SELECT p.key, p.part, p.data FROM json_each(?) j JOIN parts p ON p.key = j.value"
_FEW = 8
_LOAD_FEW = [
    f"SELECT key, part, data FROM parts WHERE key IN ({', '.join('?' * n)})"  # noqa: S608 - placeholders only
    for n in range(_FEW + 1)
]
_EVENTS = (
    "SELECT key, part, data FROM parts WHERE part >= 0 AND key IN (SELECT value FROM json_each(?))"
)
_EVENTS_FEW = [
    f"SELECT key, part, data FROM parts WHERE part >= 0 AND key IN ({', '.join('?' * n)})"  # noqa: S608 - placeholders only
    for n in range(_FEW + 1)
]
#: The module's functions that are phases of a ``transact`` (``make bench-store`` times them).
PHASES = {"_load": "load", "_events": "check", "_save": "save"}
#: Optimistic attempts before a batch runs under the write lock.
OPTIMISTIC_TRIES = 3
#: How often each process copies the write-ahead log into the database file.
CHECKPOINT_SECONDS = 2.0
_CHECKPOINTERS: dict[Path, int] = {}  # path -> the pid whose thread checkpoints it
_CHECKPOINTERS_LOCK = threading.Lock()
logger = logging.getLogger(__name__)


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
            # no SQLite busy handler: it sleeps a whole millisecond and more when the write
            # lock is taken, a request's whole budget; _retry waits in 50 us steps instead
            conn = sqlite3.connect(self.path, timeout=0, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at checkpoints, never torn
            conn.execute("PRAGMA cache_size=-65536")
            conn.execute("PRAGMA mmap_size=1073741824")  # reads from the page cache, no copies
            # checkpoints (which fsync) run in the background thread, not inside a request's
            # COMMIT: they were half of a single transaction's store time
            conn.execute("PRAGMA wal_autocheckpoint=10000")  # a safety net only
            conn.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailableError(f"{self.name}: {exc}") from None
        self._local.conn, self._local.pid = conn, os.getpid()
        self._start_checkpoints()
        return conn

    def _start_checkpoints(self) -> None:
        """One daemon thread per process copying the WAL into the database every
        ``CHECKPOINT_SECONDS`` (PASSIVE: it never blocks a reader or the writer)."""
        with _CHECKPOINTERS_LOCK:
            if _CHECKPOINTERS.get(self.path) == os.getpid():
                return
            _CHECKPOINTERS[self.path] = os.getpid()

        def run() -> None:
            try:
                conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s)
                while True:
                    time.sleep(CHECKPOINT_SECONDS)
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:  # the next connection's thread takes over
                logger.warning("%s: background checkpoints stopped: %s", self.name, exc)
                with _CHECKPOINTERS_LOCK:
                    _CHECKPOINTERS.pop(self.path, None)

        threading.Thread(target=run, name="sqlite-checkpoint", daemon=True).start()

    def transact(
        self,
        keys: list[str],
        compute: Callable[[Loaded], tuple[T, Changes]],
        optimistic: bool = True,
    ) -> T:
        """Load ``keys``' parts, ``compute`` (result, changes) and save the changes, atomically.

        ``optimistic`` (a request's few keys): the load and the computation run outside any
        lock (WAL readers never wait), then the write lock is taken only to check that no
        written key's events changed and to save; after ``OPTIMISTIC_TRIES`` conflicts, or at
        once when not ``optimistic`` (a batch: its thousands of keys share hot merchants with
        any concurrent batch, so a check would mostly fail), the work runs under the lock from
        its load, which always succeeds.
        """
        conn = self._connection()
        tries = OPTIMISTIC_TRIES if optimistic else 0
        try:
            for attempt in range(tries + 1):
                locked = attempt == tries
                if locked:
                    self._retry(conn, "BEGIN IMMEDIATE")
                loaded = _load(conn, keys)
                result, changes = compute(loaded)
                if not locked:
                    if not changes:
                        return result
                    self._retry(conn, "BEGIN IMMEDIATE")
                    if _events(conn, list(changes)) != {
                        (k, p): d
                        for k in changes
                        for p, d in loaded.get(k, {}).items()
                        if p in EVENT_PARTS
                    }:
                        conn.execute("ROLLBACK")
                        continue
                _save(conn, changes)
                conn.execute("COMMIT")
                return result
        except sqlite3.Error as exc:
            _rollback(conn)
            raise StoreUnavailableError(f"{self.name}: {exc}") from None
        except BaseException:
            _rollback(conn)
            raise
        raise AssertionError("unreachable: the locked attempt returns or raises")

    def _retry(self, conn: sqlite3.Connection, sql: str) -> None:
        """``conn.execute(sql)``, again every 50 us while the database is locked, for at most
        ``busy_timeout_s`` (then the locked error propagates)."""
        deadline = time.monotonic() + self.busy_timeout_s
        while True:
            try:
                conn.execute(sql)
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.00005)

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
        """Copy the whole write-ahead log into the database and close this thread's
        connection (a CLI such as materialize leaves no log for the service to read through)."""
        conn: Any = getattr(self._local, "conn", None)
        if conn is not None:
            self._retry(conn, "PRAGMA wal_checkpoint(TRUNCATE)")
            conn.close()
            self._local.conn = None


def _load(conn: sqlite3.Connection, keys: list[str]) -> dict[str, dict[int, bytes]]:
    """The parts of ``keys`` (a WAL reader is never locked out, bar recovery after a crash)."""
    loaded: dict[str, dict[int, bytes]] = {}
    if len(keys) <= _FEW:  # a request's few keys: bound directly, no JSON to parse
        rows = conn.execute(_LOAD_FEW[len(keys)], keys)
    else:
        rows = conn.execute(_LOAD, (orjson.dumps(sorted(keys)),))  # in B-tree order: ~10% less
    for key, part, data in rows:
        loaded.setdefault(key, {})[part] = data
    return loaded


def _events(conn: sqlite3.Connection, keys: list[str]) -> dict[tuple[str, int], bytes]:
    """The events parts of ``keys`` (``EVENT_PARTS``): every recorded transaction changes its
    keys' events, so equal events mean nobody wrote the key since it was loaded."""
    if len(keys) <= _FEW:  # a request's few keys: bound directly, no JSON to parse
        rows = conn.execute(_EVENTS_FEW[len(keys)], keys)
    else:
        rows = conn.execute(_EVENTS, (orjson.dumps(keys),))
    return {(key, part): data for key, part, data in rows}


def _save(conn: sqlite3.Connection, changes: Changes) -> None:
    """Apply ``changes``."""
    upserts = sorted(  # in key order: neighbouring rows share B-tree pages
        (k, p, d) for k, parts in changes.items() for p, d in parts.items() if d is not None
    )
    deletes = [(k, p) for k, parts in changes.items() for p, d in parts.items() if d is None]
    if deletes:
        conn.executemany("DELETE FROM parts WHERE key = ? AND part = ?", deletes)
    if upserts:
        conn.executemany(
            "INSERT OR REPLACE INTO parts (key, part, data) VALUES (?, ?, ?)", upserts
        )


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")
