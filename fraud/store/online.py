"""Point-in-time history from the online store: what ``fraud.features.history`` computes over a
data set, computed for live transactions from each entity's stored parts (``fraud.store.layout``).

A transaction's history is computed as of its own timestamp, from its entities' events strictly
before it (exactly as offline; out-of-order ones included) plus the folded base; it is then
recorded. Days older than an entity's longest window (label delay included) plus
``max_lateness`` before its latest event are folded into the base and deleted, so a key keeps
only what its windows need. A transaction older than that horizon allows cannot be computed
exactly and is refused (``Result.late``); one whose ``transaction_id`` is already recorded is
scored again but not counted twice (``Result.duplicate``).

Pure numpy over plain columns: the backends (``fraud.store.sqlite``, ``fraud.store.redis``)
only load and save parts, atomically.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from fraud.features.history import _DAY_MS, _segmented_inclusive_cumsum, _sort_order
from fraud.features.spec import (
    USER_ID,
    EntityConfig,
    entity_prefix,
    novelty_columns,
    sorted_windows,
    window_column,
)
from fraud.store import layout
from fraud.store.layout import (
    BASE_PART,
    NO_TIME,
    Batch,
    Changes,
    Loaded,
    Result,
)
from fraud.store.single import compute_one

if TYPE_CHECKING:
    from fraud.features.state import FeatureState


@dataclass(frozen=True)
class _Entity:
    column: str
    prefix: str
    windows: list[tuple[str, int]]  # (label, ms)
    kinds: list[str]
    risk: list[tuple[str, int]]
    retention: int  # ms of history its windows reach back (label delay included)

    def too_late(self, t: Any, horizon: Any) -> Any:
        """Whether windows at ``t`` reach before ``horizon`` (into folded events)."""
        return t < horizon + self.retention

    def fold_cut(self, latest: Any, lateness: int) -> Any:
        """The day start before which a key whose latest event is ``latest`` folds events."""
        return ((latest - self.retention - lateness) // layout.FOLD_MS) * layout.FOLD_MS


class OnlineFeatures:
    """The store-side history of a model: which keys, parts and columns its features need."""

    def __init__(self, state: FeatureState, max_lateness_ms: int = _DAY_MS) -> None:
        if max_lateness_ms < 0:
            raise ValueError(f"max_lateness_ms must be >= 0, got {max_lateness_ms}")
        cfg = state.config
        self.columns: list[str] = state.history_columns
        self.delay = int(cfg.label_delay_days) * _DAY_MS
        self.lateness = int(max_lateness_ms)
        self.novelty: dict[str, str] = novelty_columns(state.inputs) if self.columns else {}
        self.entities: list[_Entity] = (
            [self._entity(c, e) for c, e in cfg.entities_of(state.inputs)] if self.columns else []
        )

    def _entity(self, column: str, entity: EntityConfig) -> _Entity:
        windows = [(label, s * 1000) for label, s in sorted_windows(entity.windows)]
        risk = [(label, s * 1000) for label, s in sorted_windows(entity.risk_windows)]
        reach = [w for _, w in windows] + [self.delay + w for _, w in risk]
        return _Entity(
            column,
            entity_prefix(column),
            windows,
            entity.window_columns() if windows else [],
            risk,
            max(reach, default=0),
        )

    @property
    def entity_columns(self) -> list[str]:
        """The id columns a transaction must carry for the store to compute its history."""
        return [e.column for e in self.entities]

    def keys(self, batch: Batch) -> list[str]:
        """Every store key ``batch`` touches, each once."""
        return list(
            dict.fromkeys(
                f"{e.prefix}:{v}" for e in self.entities for v in batch.entities[e.column]
            )
        )

    def compute(self, loaded: Loaded, batch: Batch) -> tuple[Result, Changes]:
        """``batch``'s history as of each transaction's time, and the parts to save."""
        n = len(batch)
        if n and int(batch.t.min()) < 0:
            raise ValueError("timestamps before 1970 cannot be stored")
        if n == 1:
            return compute_one(self, loaded, batch)
        kinds = [_Kind(e, loaded, batch) for e in self.entities]
        late = np.zeros(n, dtype=bool)
        late_entity: list[str | None] = [None] * n
        for kind in kinds:
            kind_late = kind.entity.too_late(batch.t, kind.base["horizon"][kind.codes])
            for i in np.flatnonzero(kind_late & ~late):
                late_entity[i] = kind.entity.column
            late |= kind_late
        duplicate = kinds[0].duplicates(batch, late) if kinds else np.zeros(n, dtype=bool)
        insert = ~(late | duplicate)
        history: dict[str, np.ndarray] = {}
        changes: Changes = {}
        for kind in kinds:
            history |= kind.columns(batch, insert, self.delay)
            if kind.entity.column == USER_ID and self.novelty:
                history |= kind.novelty(batch, insert, self.novelty, changes)
            kind.save(batch, insert, self.lateness, changes)
        ordered = {name: history[name] for name in self.columns}
        return Result(ordered, late, late_entity, duplicate), changes


class _Kind:
    """One entity column of a batch: its keys' loaded state and the batch rows' codes."""

    def __init__(self, entity: _Entity, loaded: Loaded, batch: Batch) -> None:
        self.entity = entity
        ids = batch.entities[entity.column]
        index: dict[str, int] = {}
        self.codes = np.fromiter(
            (index.setdefault(v, len(index)) for v in ids), dtype=np.int64, count=len(ids)
        )
        self.keys = [f"{entity.prefix}:{v}" for v in index]
        self.parts = [loaded.get(key, {}) for key in self.keys]
        empty = layout._EMPTY_BASE.tobytes()
        self.base = np.frombuffer(
            b"".join(p.get(BASE_PART, empty) for p in self.parts), dtype=layout.BASE
        ).copy()
        self.known = np.array([BASE_PART in p for p in self.parts], dtype=bool)
        blobs = [layout.events_blob(p) for p in self.parts]
        self.context = np.frombuffer(b"".join(blobs), dtype=layout.EVENT)
        self.context_code = np.repeat(
            np.arange(len(blobs), dtype=np.int64), [len(b) // layout.EVENT.itemsize for b in blobs]
        )

    def duplicates(self, batch: Batch, late: np.ndarray) -> np.ndarray:
        """Transactions (of rows not ``late``) already recorded for their card (this, the
        user's, key), or by an earlier row of the batch for the same card."""
        n = len(batch)
        duplicate = np.zeros(n, dtype=bool)
        rows = np.flatnonzero(~late)
        if not rows.size:
            return duplicate
        pairs = np.stack([self.codes[rows], batch.id[rows]], axis=1)
        first = np.unique(pairs, axis=0, return_index=True)[1]
        duplicate[rows] = True
        duplicate[rows[first]] = False
        maybe = rows[np.isin(batch.id[rows], self.context["id"])]
        if maybe.size:
            stored = set(zip(self.context_code.tolist(), self.context["id"].tolist(), strict=True))
            for i in maybe.tolist():
                duplicate[i] |= (int(self.codes[i]), int(batch.id[i])) in stored
        return duplicate

    def _rows(self, batch: Batch, insert: np.ndarray, reach: int) -> None:
        """The kept and new events of the batch's keys, sorted by (key, time, amount)."""
        code = np.concatenate([self.context_code, self.codes[insert]])
        t = np.concatenate([self.context["t"], batch.t[insert]])
        amount = np.concatenate([self.context["amount"], batch.amount[insert]])
        # a query's position: first event at or after (key, time - back), one composite key
        low = min(int(t.min()) if len(t) else int(batch.t.min()), int(batch.t.min()))
        high = max(int(t.max()) if len(t) else int(batch.t.max()), int(batch.t.max()))
        self._t0 = low - reach - 1
        self._stride = high - self._t0 + 1
        key = code * self._stride + (t - self._t0)
        order = _sort_order(key, amount, None)
        events = np.empty(len(code), dtype=layout.EVENT)
        events["t"] = t[order]
        events["amount"] = amount[order]
        events["id"] = np.concatenate([self.context["id"], batch.id[insert]])[order]
        events["label"] = np.concatenate([self.context["label"], batch.label[insert]])[order]
        self.events, self.code, self._sorted_key = events, code[order], key[order]
        self.new = order >= len(self.context_code)
        first = np.ones(len(code), dtype=bool)
        first[1:] = self.code[1:] != self.code[:-1]
        self.start = np.flatnonzero(first)
        self.row_start = self.start[np.cumsum(first) - 1] if len(code) else self.start

    def _position(self, batch: Batch, back: int) -> np.ndarray:
        target = self.codes * self._stride + (batch.t - back - self._t0)
        return np.searchsorted(self._sorted_key, target, side="left")

    def _block_sum(self, inclusive: np.ndarray, p: np.ndarray, s: np.ndarray) -> np.ndarray:
        """Per query: the sum of its block's values before position ``p`` (block start ``s``)."""
        if not len(inclusive):
            return np.zeros(len(p))
        return np.where(p > s, inclusive[np.maximum(p - 1, 0)], 0.0)

    def columns(self, batch: Batch, insert: np.ndarray, delay: int) -> dict[str, np.ndarray]:
        """This entity's history columns for every transaction of ``batch``."""
        e = self.entity
        self._rows(batch, insert, max(e.retention, delay))
        end = self._position(batch, 0)
        block = np.searchsorted(self._sorted_key, self.codes * self._stride, side="left")
        x = self.events["amount"]
        out: dict[str, np.ndarray] = {}
        if e.column == USER_ID:
            out |= self._user(batch, x, end, block)
            sums = self._sums[0]
        elif "amount_sum" in e.kinds:
            sums = _segmented_inclusive_cumsum(x[np.newaxis], self._pos_in_block())[0]
        else:
            sums = None
        at_end = self._block_sum(sums, end, block) if sums is not None else None
        for label, ms in e.windows:
            begin = self._position(batch, ms)
            if "txn_count" in e.kinds:
                out[window_column(e.prefix, "txn_count", label)] = end - begin
            if at_end is not None:
                name = window_column(e.prefix, "amount_sum", label)
                out[name] = at_end - self._block_sum(sums, begin, block)
        if e.risk:
            y = self.events["label"]
            known = np.zeros(len(y) + 1, dtype=np.int64)
            np.cumsum(y >= 0, out=known[1:])
            fraud = np.zeros(len(y) + 1, dtype=np.int64)
            np.cumsum(y == 1, out=fraud[1:])
            known_end = self._position(batch, delay)
            for label, ms in e.risk:
                begin = self._position(batch, delay + ms)
                out[window_column(e.prefix, "labelled_count", label)] = (
                    known[known_end] - known[begin]
                )
                out[window_column(e.prefix, "fraud_count", label)] = (
                    fraud[known_end] - fraud[begin]
                )
        return out

    def _pos_in_block(self) -> np.ndarray:
        return np.arange(len(self.code), dtype=np.int64) - self.row_start

    def _shift(self) -> np.ndarray:
        """Per key, the amount sums are centred on: the stored one, or the key's first."""
        shift = self.base["shift"].copy()
        fresh = np.isnan(shift)
        if len(self.start):
            first_amount = np.full(len(shift), np.nan)
            first_amount[self.code[self.start]] = self.events["amount"][self.start]
            shift[fresh] = first_amount[fresh]
        return shift

    def _user(
        self, batch: Batch, x: np.ndarray, end: np.ndarray, block: np.ndarray
    ) -> dict[str, np.ndarray]:
        """The card's all-history statistics: the base plus its kept events before each."""
        self.shift = self._shift()
        centred = x - self.shift[self.code] if len(x) else x
        self._sums = (
            _segmented_inclusive_cumsum(
                np.stack([x, centred, centred * centred]), self._pos_in_block()
            )
            if len(x)
            else np.zeros((3, 0))
        )
        base = self.base[self.codes]
        prior = end - block
        count = base["n"] + prior
        total = base["sum"] + self._block_sum(self._sums[0], end, block)
        c = base["c"] + self._block_sum(self._sums[1], end, block)
        c2 = base["c2"] + self._block_sum(self._sums[2], end, block)
        has = count > 0
        count_f = count.astype(np.float64)
        mean = np.full(len(count), np.nan)
        np.divide(total, count_f, out=mean, where=has)
        centred_mean = np.zeros(len(count))
        np.divide(c, count_f, out=centred_mean, where=has)
        var = np.full(len(count), np.nan)
        np.divide(c2, count_f, out=var, where=has)
        var -= centred_mean * centred_mean
        np.maximum(var, 0.0, out=var, where=has)
        last = np.where(
            prior > 0,
            self.events["t"][np.maximum(end - 1, 0)] if len(x) else 0,
            base["last"],
        )
        since = np.full(len(count), np.nan)
        seen = (prior > 0) | (base["last"] != NO_TIME)
        np.divide((batch.t - last).astype(np.float64), 1000.0, out=since, where=seen)
        return {
            "user_transaction_count": count,
            "user_avg_amount": mean,
            "user_std_amount": np.sqrt(var),
            "seconds_since_last_transaction": since,
        }

    def novelty(
        self, batch: Batch, insert: np.ndarray, flags: Mapping[str, str], changes: Changes
    ) -> dict[str, np.ndarray]:
        """1.0 where the card never used the value strictly before the transaction's time;
        the first-use times of the inserted transactions saved with the card."""
        seen = [orjson.loads(p.get(layout.SEEN_PART, b"{}")) for p in self.parts]
        changed: set[int] = set()
        out: dict[str, np.ndarray] = {}
        t = batch.t.tolist()
        codes = self.codes.tolist()
        inserted = np.flatnonzero(insert).tolist()
        for flag, column in flags.items():
            values = batch.values[column]
            used_by = [s.setdefault(column, {}) for s in seen]
            first: dict[tuple[int, str], int] = {}
            for i in inserted:
                pair, when = (codes[i], values[i]), t[i]
                earliest = first.get(pair)
                if earliest is None or when < earliest:
                    first[pair] = when
            new = []
            for code, value, when in zip(codes, values, t, strict=True):
                stored = used_by[code].get(value)
                earliest = first.get((code, value))
                if earliest is None or (stored is not None and stored < earliest):
                    earliest = stored
                new.append(0.0 if earliest is not None and earliest < when else 1.0)
            out[flag] = np.array(new)
            for (code, value), when in first.items():
                used = used_by[code]
                stored = used.get(value)
                if stored is None or when < stored:
                    used[value] = when
                    changed.add(code)
        for code in changed:
            changes.setdefault(self.keys[code], {})[layout.SEEN_PART] = orjson.dumps(seen[code])
        return out

    def save(self, batch: Batch, insert: np.ndarray, lateness: int, changes: Changes) -> None:
        """The events of every key that got one, less those folded into its base because
        they fell a whole day out of the key's reach plus ``lateness``; the bases of new keys
        and of keys that folded."""
        if not insert.any():
            return
        events, code = self.events, self.code
        t = events["t"]
        k = len(self.keys)
        block_end = np.append(self.start[1:], len(code))
        latest = np.full(k, NO_TIME, dtype=np.int64)
        latest[code[self.start]] = t[block_end - 1]
        cut = self.entity.fold_cut(latest, lateness)
        cut[latest == NO_TIME] = NO_TIME
        fold = t < cut[code]
        touched = np.zeros(k, dtype=bool)
        touched[code[self.new]] = True
        base = self.base
        if self.entity.column == USER_ID:
            shift = self.shift
        else:
            shift = np.where(np.isnan(base["shift"]), 0.0, base["shift"])
        rewrite = touched & ~self.known
        folded = np.zeros(k, dtype=bool)
        if fold.any():
            fc = code[fold]
            x = events["amount"][fold]
            centred = x - shift[fc]
            base["n"] += np.bincount(fc, minlength=k)
            base["sum"] += np.bincount(fc, weights=x, minlength=k)
            base["c"] += np.bincount(fc, weights=centred, minlength=k)
            base["c2"] += np.bincount(fc, weights=centred * centred, minlength=k)
            folded_last = np.full(k, NO_TIME, dtype=np.int64)
            np.maximum.at(folded_last, fc, t[fold])
            base["last"] = np.maximum(base["last"], folded_last)
            folded[fc] = True
            base["horizon"] = np.where(folded, np.maximum(base["horizon"], cut), base["horizon"])
            rewrite |= folded
        base["shift"] = shift
        # a block's folded events are its first ones (time order)
        kept_start = np.zeros(k, dtype=np.int64)
        kept_start[code[self.start]] = self.start + np.add.reduceat(fold, self.start)
        kept_end = np.zeros(k, dtype=np.int64)
        kept_end[code[self.start]] = block_end
        for i in np.flatnonzero(touched | folded).tolist():
            part: dict[int, bytes | None] = {}
            s, e = int(kept_start[i]), int(kept_end[i])
            at = layout.split_at(t[s:e]) if e - s > layout.SPLIT_EVENTS else 0
            layout.save_events(part, self.parts[i], events[s:e].tobytes(), at)
            if rewrite[i]:
                part[BASE_PART] = base[i : i + 1].tobytes()
            if part:
                changes.setdefault(self.keys[i], {}).update(part)
