"""What the online store keeps, byte for byte, and the columns it is given and answers.

Per entity key (``user:<id>``, ``merchant:<id>``, ``device:<id>``) the store holds parts:

- ``BASE_PART``: a ``BASE`` record, the folded aggregates of the key's events older than its
  horizon (count, amount sum, centred sums for the variance, last time), the centring shift and
  the horizon itself;
- ``SEEN_PART`` (cards): the first time each device / location / category was used, JSON;
- ``EVENTS_PART``: the events the key's windows still reach, ``EVENT`` records in time order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from fraud.features.history import _DAY_MS

EVENT = np.dtype([("t", "<i8"), ("id", "<i8"), ("amount", "<f8"), ("label", "i1")])
BASE = np.dtype(
    [
        ("n", "<i8"),
        ("sum", "<f8"),
        ("c", "<f8"),
        ("c2", "<f8"),
        ("last", "<i8"),
        ("shift", "<f8"),
        ("horizon", "<i8"),
    ]
)
BASE_PART, SEEN_PART, EVENTS_PART = -1, -2, 0
#: Events are folded into the base a whole day at a time (a base changes at most daily).
FOLD_MS = _DAY_MS
NO_TIME = int(np.iinfo(np.int64).min)
_EMPTY_BASE = np.array([(0, 0.0, 0.0, 0.0, NO_TIME, np.nan, NO_TIME)], dtype=BASE)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)

#: What a backend loads: key -> part -> bytes (absent keys have no entry).
Loaded = Mapping[str, Mapping[int, bytes]]
#: What a backend saves: key -> part -> bytes, or None to delete the part.
Changes = dict[str, dict[int, bytes | None]]


def time_ms(value: datetime | str) -> int:
    """Milliseconds since the epoch (UTC; naive means UTC), floored as offline."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // _MS


def event_id(transaction_id: str) -> int:
    """A transaction id as a signed 64-bit event id (blake2b): what duplicates are found by
    among one card's kept events (a collision there is ~1e-15 likely)."""
    digest = hashlib.blake2b(transaction_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


@dataclass
class Batch:
    """Transactions to compute and record, as columns (one entry per transaction)."""

    t: np.ndarray  # int64 ms since the epoch
    id: np.ndarray  # int64 event ids (``event_id``)
    amount: np.ndarray  # float64
    label: np.ndarray  # int8: 1 fraud, 0 legitimate, -1 unknown (live traffic)
    entities: Mapping[str, Sequence[str]]  # id column -> ids (every entity of the plan)
    values: Mapping[str, Sequence[str]]  # novelty raw column -> values

    def __len__(self) -> int:
        return len(self.t)


@dataclass
class Result:
    """History columns of every transaction of a batch (``history``, in batch order).

    ``late``: refused, older than a key's horizon allows (its history is meaningless, it was not
    recorded); ``late_entity`` names the entity column. ``duplicate`` (never a late one): already
    recorded for its card, or earlier in the batch (scored as of its timestamp again, not
    counted twice).
    """

    history: dict[str, np.ndarray]
    late: np.ndarray
    late_entity: list[str | None]
    duplicate: np.ndarray
