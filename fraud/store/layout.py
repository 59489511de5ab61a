"""What the online store keeps, byte for byte, and the columns it is given and answers.

Per entity key (``user:<id>``, ``merchant:<id>``, ``device:<id>``) the store holds parts:

- ``BASE_PART``: a ``BASE`` record, the folded aggregates of the key's events older than its
  horizon (count, amount sum, centred sums for the variance, last time), the centring shift and
  the horizon itself;
- ``SEEN_PART`` (cards): the first time each device / location / category was used, JSON;
- ``EVENTS_PART`` and ``OPEN_PART``: the events the key's windows still reach, ``EVENT`` records
  in time order. A key of more than ``SPLIT_EVENTS`` events keeps the days before its latest
  event's day in ``EVENTS_PART`` (sealed: rewritten only when a day folds, or a late transaction
  or a label reaches them) and that day's in ``OPEN_PART``: a write then rewrites a hot
  merchant's open day (a few KiB), not its weeks of events (up to ~100 KiB, a chain of SQLite
  overflow pages). A smaller key keeps them all in ``OPEN_PART``. ``events_blob`` joins the two;
  a store written before the split (everything in ``EVENTS_PART``) reads the same.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

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
BASE_PART, SEEN_PART, EVENTS_PART, OPEN_PART = -1, -2, 0, 1
#: The parts holding a key's events, in time order.
EVENT_PARTS = (EVENTS_PART, OPEN_PART)
#: Keys with more events than this keep their sealed days apart from their open day.
SPLIT_EVENTS = 64
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


def events_blob(parts: Mapping[int, bytes]) -> bytes:
    """A key's stored events, in time order (its sealed days, then its open day)."""
    open_ = parts.get(OPEN_PART)
    if open_ is None:
        return parts.get(EVENTS_PART, b"")
    sealed = parts.get(EVENTS_PART)
    return sealed + open_ if sealed else open_


def split_at(times: Any) -> int:
    """Where a key's events (their times, in order) split into sealed days and the open
    day: 0 (all open) for a key of at most ``SPLIT_EVENTS``."""
    n = len(times)
    if n <= SPLIT_EVENTS:
        return 0
    day = (int(times[n - 1]) // _DAY_MS) * _DAY_MS
    return (
        int(np.searchsorted(times, day))
        if isinstance(times, np.ndarray)
        else bisect_left(times, day)
    )


def save_events(
    part: dict[int, bytes | None], parts: Mapping[int, bytes], blob: bytes, at: int
) -> None:
    """Into ``part`` (a key's changes): its events ``blob`` split at event ``at``
    (``split_at``), the event parts that differ from the stored ``parts`` (None deletes)."""
    cut = at * EVENT.itemsize
    sealed, open_ = blob[:cut] or None, blob[cut:] or None
    if parts.get(EVENTS_PART) != sealed:
        part[EVENTS_PART] = sealed
    if parts.get(OPEN_PART) != open_:
        part[OPEN_PART] = open_


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
