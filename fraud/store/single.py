"""One transaction's history from its keys' stored parts: ``OnlineFeatures.compute`` for a
batch of one, at a fraction of the batch path's fixed cost (a few numpy calls per window over
each key's kept events, instead of sorting and scanning a batch). Same definition, same parts
written: the replay tests hold both equal to the offline history.
"""

from __future__ import annotations

import bisect
import functools
import math
import struct
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from fraud.features.spec import USER_ID, window_column
from fraud.store.layout import (
    _EMPTY_BASE,
    BASE,
    BASE_PART,
    EVENT,
    SEEN_PART,
    SPLIT_EVENTS,
    Batch,
    Changes,
    Loaded,
    Result,
    events_blob,
    save_events,
    split_at,
)

if TYPE_CHECKING:
    from fraud.store.online import OnlineFeatures, _Entity


#: One ``EVENT`` record (numpy's packed layout: no padding).
_EVENT = struct.Struct("<qqdb")
assert _EVENT.size == EVENT.itemsize
_BASE = struct.Struct("<qdddqdq")  # one ``BASE`` record
assert _BASE.size == BASE.itemsize


#: Keys with at most this many events are computed on Python lists (``_columns_small``).
SMALL = 64


class _Key:
    """One entity key's stored parts, decoded."""

    def __init__(self, entity: _Entity, key: str, parts: Mapping[int, bytes]) -> None:
        self.entity, self.key, self.parts = entity, key, parts
        self.known = BASE_PART in parts
        self.base = np.frombuffer(parts[BASE_PART] if self.known else _EMPTY_BASE.tobytes(), BASE)
        self.base = self.base.copy()
        self.events = np.frombuffer(events_blob(parts), EVENT)
        self.t = self.events["t"]
        #: a few events: plain lists, where numpy's fixed cost per call is the whole cost
        self.lists = (
            (self.t.tolist(), self.events["amount"].tolist(), self.events["label"].tolist())
            if len(self.events) <= SMALL
            else None
        )


def compute_one(features: OnlineFeatures, loaded: Loaded, batch: Batch) -> tuple[Result, Changes]:
    """``features.compute(loaded, batch)`` for ``len(batch) == 1``."""
    t = int(batch.t[0])
    keys = [
        _Key(e, key := f"{e.prefix}:{batch.entities[e.column][0]}", loaded.get(key, {}))
        for e in features.entities
    ]
    late_entity = next(
        (k.entity.column for k in keys if k.entity.too_late(t, int(k.base["horizon"][0]))),
        None,
    )
    duplicate = (
        late_entity is None and bool(keys) and bool((keys[0].events["id"] == batch.id[0]).any())
    )
    history: dict[str, Any] = {}
    changes: Changes = {}
    insert = late_entity is None and not duplicate
    for k in keys:
        if k.lists is not None:
            end = bisect.bisect_left(k.lists[0], t)
            history |= _columns_small(k, t, end, features.delay)
        else:
            end = int(k.t.searchsorted(t))
            history |= _columns(k, t, end, features.delay)
        if k.entity.column == USER_ID:
            history |= _novelty(k, batch, t, features.novelty, insert, changes)
        if insert:
            _save(k, batch, end, features.lateness, changes)
    columns = {name: [history[name]] for name in features.columns}
    result = Result(
        columns, np.array([late_entity is not None]), [late_entity], np.array([duplicate])
    )
    return result, changes


@functools.cache
def _name(prefix: str, kind: str, label: str) -> str:
    return window_column(prefix, kind, label)


def _columns(k: _Key, t: int, end: int, delay: int) -> dict[str, Any]:
    """The key's history columns as of ``t`` (its events before position ``end``): one
    search for every window's start, window sums as differences of one cumulative sum (as
    the batch path and the offline history compute them)."""
    e, out = k.entity, {}
    amount = k.events["amount"]
    if e.column == USER_ID:
        out |= _user(k, t, end, amount)
    if e.windows:
        begins = k.t.searchsorted([t - ms for _, ms in e.windows]).tolist()
        sums = None
        if "amount_sum" in e.kinds:
            low = min(begins)
            prefix = np.zeros(end - low + 1)
            np.cumsum(amount[low:end], out=prefix[1:])
            sums = (prefix[end - low] - prefix[np.array(begins) - low]).tolist()
        for i, (label, _) in enumerate(e.windows):
            if "txn_count" in e.kinds:
                out[_name(e.prefix, "txn_count", label)] = end - begins[i]
            if sums is not None:
                out[_name(e.prefix, "amount_sum", label)] = sums[i]
    if e.risk:
        known_end = int(k.t.searchsorted(t - delay))
        begins = k.t.searchsorted([t - delay - ms for _, ms in e.risk])
        low = int(begins.min())
        y = k.events["label"][low:known_end]
        at = begins - low
        for kind, hit in (("labelled_count", y >= 0), ("fraud_count", y == 1)):
            prefix = np.zeros(len(y) + 1, dtype=np.int64)
            np.cumsum(hit, out=prefix[1:])
            counts = (prefix[-1] - prefix[at]).tolist()
            for (label, _), count in zip(e.risk, counts, strict=True):
                out[_name(e.prefix, kind, label)] = count
    return out


def _columns_small(k: _Key, t: int, end: int, delay: int) -> dict[str, Any]:
    """``_columns`` for a key of at most ``SMALL`` events, on Python lists."""
    e, out = k.entity, {}
    assert k.lists is not None
    times, amount, labels = k.lists
    if e.column == USER_ID:
        out |= _user(k, t, end, amount)
    for label, ms in e.windows:
        begin = bisect.bisect_left(times, t - ms, 0, end)
        if "txn_count" in e.kinds:
            out[_name(e.prefix, "txn_count", label)] = end - begin
        if "amount_sum" in e.kinds:
            out[_name(e.prefix, "amount_sum", label)] = math.fsum(amount[begin:end])
    if e.risk:
        known_end = bisect.bisect_left(times, t - delay, 0, end)
        for label, ms in e.risk:
            y = labels[bisect.bisect_left(times, t - delay - ms, 0, known_end) : known_end]
            out[_name(e.prefix, "labelled_count", label)] = len(y) - y.count(-1)
            out[_name(e.prefix, "fraud_count", label)] = y.count(1)
    return out


def _user(k: _Key, t: int, end: int, amount: Any) -> dict[str, Any]:
    """The card's all-history statistics: its base plus its kept events before ``t``
    (``amount``: an array, or a list for a small key)."""
    b_n, b_sum, b_c, b_c2, b_last, b_shift, _ = k.base.tolist()[0]
    n = b_n + end
    if n == 0:
        mean = std = since = math.nan
    else:
        before = amount[:end]
        shift = b_shift if k.known else 0.0
        if isinstance(before, list):
            centred = [x - shift for x in before]
            total = b_sum + math.fsum(before)
            c = b_c + math.fsum(centred)
            c2 = b_c2 + math.fsum(x * x for x in centred)
        else:
            centred = before - shift
            total = b_sum + float(before.sum())
            c = b_c + float(centred.sum())
            c2 = b_c2 + float((centred * centred).sum())
        mean = total / n
        var = max(c2 / n - (c / n) * (c / n), 0.0)
        std = math.sqrt(var)
        last = int(k.t[end - 1]) if end else b_last
        since = (t - last) / 1000.0
    return {
        "user_transaction_count": n,
        "user_avg_amount": mean,
        "user_std_amount": std,
        "seconds_since_last_transaction": since,
    }


def _novelty(
    k: _Key, batch: Batch, t: int, flags: Mapping[str, str], insert: bool, changes: Changes
) -> dict[str, float]:
    """1.0 where the card never used the value before ``t``; first uses recorded."""
    seen = orjson.loads(k.parts[SEEN_PART]) if SEEN_PART in k.parts else {}
    out: dict[str, float] = {}
    changed = False
    for flag, column in flags.items():
        value = batch.values[column][0]
        used = seen.setdefault(column, {})
        first = used.get(value)
        out[flag] = 0.0 if first is not None and first < t else 1.0
        if insert and (first is None or t < first):
            used[value] = t
            changed = True
    if changed:
        changes.setdefault(k.key, {})[SEEN_PART] = orjson.dumps(seen)
    return out


def _save(k: _Key, batch: Batch, end: int, lateness: int, changes: Changes) -> None:
    """The key's events with the new one in time order, less those folded into its base
    (on Python lists for a small key, numpy otherwise)."""
    t, x_new = int(batch.t[0]), float(batch.amount[0])
    new = _EVENT.pack(t, int(batch.id[0]), x_new, int(batch.label[0]))
    small = k.lists
    if small is not None:
        times, amounts, _ = small
        at = bisect.bisect_right(times, t)
        first, latest = (min(t, times[0]), max(t, times[-1])) if times else (t, t)
    else:
        at = int(k.t.searchsorted(t, side="right"))
        first, latest = min(t, int(k.t[0])), max(t, int(k.t[-1]))
    old = events_blob(k.parts)
    blob = old[: at * EVENT.itemsize] + new + old[at * EVENT.itemsize :]
    n, total, c, c2, last, shift, horizon = k.base.tolist()[0]
    if not k.known:
        shift = x_new if k.entity.column == USER_ID else 0.0
    cut = k.entity.fold_cut(latest, lateness)
    folded = 0
    if first < cut:  # a day fell out of reach: fold it
        if small is not None:
            ts = [*times[:at], t, *times[at:]]
            folded = bisect.bisect_left(ts, cut)
            gone = [*amounts[:at], x_new, *amounts[at:]][:folded]
            centred = [x - shift for x in gone]
            sums = math.fsum(gone), math.fsum(centred), math.fsum(x * x for x in centred)
            gone_last = ts[folded - 1]
        else:
            events = np.frombuffer(blob, EVENT)
            folded = int(events["t"].searchsorted(cut))
            x = events["amount"][:folded]
            dx = x - shift
            sums = float(x.sum()), float(dx.sum()), float((dx * dx).sum())
            gone_last = int(events["t"][folded - 1])
        n, total, c, c2 = n + folded, total + sums[0], c + sums[1], c2 + sums[2]
        last, horizon = max(last, gone_last), max(horizon, cut)
        blob = blob[folded * EVENT.itemsize :]
    part = changes.setdefault(k.key, {})
    split = 0
    if len(blob) > SPLIT_EVENTS * EVENT.itemsize:
        times = [*times[:at], t, *times[at:]][folded:] if small is not None else None
        split = split_at(times if times is not None else np.frombuffer(blob, EVENT)["t"])
    save_events(part, k.parts, blob, split)
    if folded or not k.known:
        part[BASE_PART] = _BASE.pack(n, total, c, c2, last, shift, horizon)
