"""One transaction's history from its keys' stored parts: ``OnlineFeatures.compute`` for a
batch of one, at a fraction of the batch path's fixed cost (a few numpy calls per window over
each key's kept events, instead of sorting and scanning a batch). Same definition, same parts
written: the replay tests hold both equal to the offline history.
"""

from __future__ import annotations

import math
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
    EVENTS_PART,
    SEEN_PART,
    Batch,
    Changes,
    Loaded,
    Result,
)

if TYPE_CHECKING:
    from fraud.store.online import OnlineFeatures, _Entity


class _Key:
    """One entity key's stored parts, decoded."""

    def __init__(self, entity: _Entity, key: str, parts: Mapping[int, bytes]) -> None:
        self.entity, self.key, self.parts = entity, key, parts
        self.known = BASE_PART in parts
        self.base = np.frombuffer(parts[BASE_PART] if self.known else _EMPTY_BASE.tobytes(), BASE)
        self.base = self.base.copy()
        self.events = np.frombuffer(parts.get(EVENTS_PART, b""), EVENT)
        self.t = self.events["t"]


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


def _columns(k: _Key, t: int, end: int, delay: int) -> dict[str, Any]:
    """The key's history columns as of ``t`` (its events before position ``end``)."""
    e, out = k.entity, {}
    amount = k.events["amount"]
    if e.column == USER_ID:
        out |= _user(k, t, end, amount)
    for label, ms in e.windows:
        begin = int(k.t.searchsorted(t - ms))
        if "txn_count" in e.kinds:
            out[window_column(e.prefix, "txn_count", label)] = end - begin
        if "amount_sum" in e.kinds:
            out[window_column(e.prefix, "amount_sum", label)] = float(amount[begin:end].sum())
    if e.risk:
        labels = k.events["label"]
        known_end = int(k.t.searchsorted(t - delay))
        for label, ms in e.risk:
            y = labels[int(k.t.searchsorted(t - delay - ms)) : known_end]
            out[window_column(e.prefix, "labelled_count", label)] = int((y >= 0).sum())
            out[window_column(e.prefix, "fraud_count", label)] = int((y == 1).sum())
    return out


def _user(k: _Key, t: int, end: int, amount: np.ndarray) -> dict[str, Any]:
    """The card's all-history statistics: its base plus its kept events before ``t``."""
    base = k.base[0]
    n = int(base["n"]) + end
    if n == 0:
        mean = std = since = math.nan
    else:
        before = amount[:end]
        shift = float(base["shift"]) if k.known else 0.0
        centred = before - shift
        total = float(base["sum"]) + float(before.sum())
        c = float(base["c"]) + float(centred.sum())
        c2 = float(base["c2"]) + float((centred * centred).sum())
        mean = total / n
        var = max(c2 / n - (c / n) * (c / n), 0.0)
        std = math.sqrt(var)
        last = int(k.t[end - 1]) if end else int(base["last"])
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
    """The key's events with the new one in time order, less those folded into its base."""
    t = int(batch.t[0])
    new = np.empty(1, dtype=EVENT)
    new[0] = (t, int(batch.id[0]), float(batch.amount[0]), int(batch.label[0]))
    at = int(k.t.searchsorted(t, side="right")) * EVENT.itemsize
    old = k.parts.get(EVENTS_PART, b"")
    blob = old[:at] + new.tobytes() + old[at:]
    base = k.base
    if not k.known:
        base["shift"] = float(batch.amount[0]) if k.entity.column == USER_ID else 0.0
    latest = max(t, int(k.t[-1])) if len(k.t) else t
    cut = k.entity.fold_cut(latest, lateness)
    part = changes.setdefault(k.key, {})
    folded = 0
    if min(t, int(k.t[0]) if len(k.t) else t) < cut:  # a day fell out of reach: fold it
        events = np.frombuffer(blob, EVENT)
        folded = int(events["t"].searchsorted(cut))
        gone = events[:folded]
        x = gone["amount"]
        centred = x - base["shift"][0]
        base["n"] += folded
        base["sum"] += x.sum()
        base["c"] += centred.sum()
        base["c2"] += (centred * centred).sum()
        base["last"] = max(int(base["last"][0]), int(gone["t"][-1]))
        base["horizon"] = max(int(base["horizon"][0]), cut)
        blob = blob[folded * EVENT.itemsize :]
    part[EVENTS_PART] = blob or None
    if folded or not k.known:
        part[BASE_PART] = base.tobytes()
