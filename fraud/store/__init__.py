"""The online feature store: each entity's point-in-time state, kept by the service itself.

Owns: the store's layout (``layout``), the store-side history computation (``online``) and
its backends (``sqlite``, ``redis``). May import: data, features (the spec and the scans the
offline history uses); never training code, so the serving image carries it.

One interface, two backends chosen by one URL (``FEATURE_STORE_URL``):

- ``sqlite:///<path>`` (the default, ``DEFAULT_URL``): an embedded file shared by the workers of
  one machine, surviving restarts;
- ``redis://[:password@]host:port/db`` (or ``rediss://``): a Redis / Valkey server shared by
  several instances.

``OnlineStore.record`` computes a batch of transactions' history as of their own timestamps
(``fraud.store.online``), then records them, in one atomic step per batch. The windows come from
the model artifact's feature config, so a new model with other windows needs no code change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from fraud.store.errors import StoreUnavailableError
from fraud.store.labels import Labels, label_keys, relabel
from fraud.store.layout import BASE_PART, EVENT, EVENT_PARTS, Batch, Result, event_id
from fraud.store.online import OnlineFeatures

__all__ = ["DEFAULT_URL", "OnlineStore", "StoreUnavailableError", "open_backend"]

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Batches up to this size try optimistic concurrency first (``SQLiteStore.transact``).
OPTIMISTIC_BATCH = 16
#: The embedded store of a checkout (``make materialize`` fills it, ``make serve`` reads it).
DEFAULT_URL = "sqlite:///data/online/features.db"


class Backend(Protocol):
    name: str

    def transact(self, keys: list[str], compute: Any, optimistic: bool = True) -> Any: ...
    def ping(self) -> None: ...
    def scan(self) -> Any: ...
    def clear(self) -> None: ...
    def close(self) -> None: ...


def open_backend(url: str) -> Backend:
    """The backend of ``url``: ``sqlite:///path`` (relative to the repository unless
    absolute) or ``redis://`` / ``rediss://``. ValueError for anything else."""
    if url.startswith("sqlite:///"):
        from fraud.store.sqlite import SQLiteStore

        raw = url.removeprefix("sqlite:///")
        if not raw:
            raise ValueError(f"feature store URL {url!r} has no path")
        path = Path(raw)
        return SQLiteStore(path if path.is_absolute() else REPO_ROOT / path, url)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from fraud.store.redis import RedisStore

        return RedisStore(url)
    raise ValueError(
        f"feature store URL {url!r} must start with sqlite:///, redis:// or rediss:// "
        "(or be 'none' for no store)"
    )


class OnlineStore:
    """A backend and the feature plan of one model."""

    def __init__(self, backend: Backend, features: OnlineFeatures) -> None:
        self.backend = backend
        self.features = features
        self.name = backend.name

    def record(self, batch: Batch) -> Result:
        """``batch``'s history as of each transaction's time; the batch is then recorded.

        Raises StoreUnavailableError when the backend cannot be used (nothing is recorded).
        """
        if not len(batch):
            return self.features.compute({}, batch)[0]
        return self.backend.transact(
            self.features.keys(batch),
            lambda loaded: self.features.compute(loaded, batch),
            optimistic=len(batch) <= OPTIMISTIC_BATCH,
        )

    def label(self, labels: Labels) -> np.ndarray:
        """Set late-arriving labels on the stored events of their transactions
        (``fraud.store.labels``), atomically; per label, whether a stored event was found.

        Raises StoreUnavailableError when the backend cannot be used (nothing is changed).
        """
        keys = label_keys(self.features, labels)
        if not keys:
            return np.zeros(len(labels), dtype=bool)
        return self.backend.transact(
            keys,
            lambda loaded: relabel(self.features, loaded, labels),
            optimistic=len(labels) <= OPTIMISTIC_BATCH,
        )

    def ping(self) -> None:
        self.backend.ping()

    def batch_of_records(
        self, records: Sequence[Mapping[str, Any]], times: Sequence[int]
    ) -> Batch:
        """Validated records (transaction_id, amount and every entity id) at ``times`` (ms,
        ``time_ms`` of each timestamp) as a ``Batch`` of live traffic: labels unknown."""
        n = len(records)
        f = self.features
        return Batch(
            t=np.asarray(times, dtype=np.int64),
            id=np.fromiter((event_id(r["transaction_id"]) for r in records), np.int64, n),
            amount=np.fromiter((r["amount"] for r in records), np.float64, n),
            label=np.full(n, -1, np.int8),
            entities={c: [r[c] for r in records] for c in f.entity_columns},
            values={c: [r[c] for r in records] for c in f.novelty.values()},
        )


def store_size(backend: Backend) -> dict[str, dict[str, int]]:
    """Per entity prefix: keys, kept events and bytes (keys + parts)."""
    out: dict[str, dict[str, int]] = {}
    for key, part, data in backend.scan():
        key = key.decode() if isinstance(key, bytes) else key
        stats = out.setdefault(key.partition(":")[0], {"keys": 0, "events": 0, "bytes": 0})
        stats["bytes"] += len(key) + len(data) + 8
        if part == BASE_PART:
            stats["keys"] += 1
        elif part in EVENT_PARTS:
            stats["events"] += len(data) // EVENT.itemsize
    return out
