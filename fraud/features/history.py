"""Point-in-time entity history, vectorised: each transaction sees only its entities' past.

``compute_history`` derives each transaction's history columns from the transactions of the
same entity (card, merchant, device) strictly before it (same-timestamp transactions do not see
each other): per entity one sort by (entity, time), segmented prefix sums, ``searchsorted``
windows. Label-delayed risk counts only see transactions older than the label delay.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from fraud.data import schema
from fraud.features.spec import (
    USER_ID,
    EntityConfig,
    FeatureConfig,
    entity_prefix,
    is_count_column,
    novelty_columns,
    present_inputs,
    sorted_windows,
    window_column,
)

if TYPE_CHECKING:
    import pandas as pd

    #: What ``transform`` reads: a DataFrame, or a mapping of column name -> equal-length list.
    Columns = pd.DataFrame | Mapping[str, Sequence[Any]]
# pandas is imported inside the training-side functions only: a serving process that unpickles
# a FeatureState and scores records never loads it (~80 MB per worker).


_NANOS_PER_UNIT: dict[str, int] = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
_MAX_KEY = 2**62
_DAY_MS = 86_400_000
_THREADS = 2


def _require_columns(df: Columns, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in df]
    if missing:
        raise ValueError(f"{what}: missing column(s) {', '.join(missing)}")


def _timestamps_ms(values: pd.Series) -> np.ndarray:
    """Int64 milliseconds since the epoch (UTC), floored; sub-millisecond ties are ties."""
    import pandas as pd

    if not (isinstance(values.dtype, pd.DatetimeTZDtype) or values.dtype.kind == "M"):
        raise ValueError(f"{schema.TIMESTAMP} must be a datetime column, got {values.dtype}")
    index = pd.DatetimeIndex(values)
    if index.hasnans:
        raise ValueError(f"{schema.TIMESTAMP} has missing values")
    nanos = _NANOS_PER_UNIT[index.unit]
    raw = index.asi8
    if nanos >= 1_000_000:
        return raw * (nanos // 1_000_000)
    return raw // (1_000_000 // nanos)


def _segmented_inclusive_cumsum(values: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Per-block inclusive prefix sums of ``values`` (k, n); ``pos`` = index within block.

    A log-step (Hillis-Steele) scan: each row's sum depends only on its own block's earlier
    rows, so other entities' rows (or later rows) can never change it, not even by rounding.
    """
    out = values.copy()
    max_pos = int(pos.max()) if pos.size else 0
    step = 1
    while step <= max_pos:
        reach = pos[step:] >= step
        out[:, step:] += np.where(reach, out[:, :-step], 0.0)
        step <<= 1
    return out


@dataclass
class _Blocks:
    """Rows sorted by (entity, time, amount), in blocks of one entity."""

    order: np.ndarray  # sorted position -> original row
    key: np.ndarray  # entity * stride + time (ms), sorted
    t: np.ndarray  # time (ms), sorted
    entity: np.ndarray  # entity code, sorted
    start: np.ndarray  # first position of the row's block
    pos: np.ndarray  # position within the block
    end: np.ndarray  # first position of the row's (entity, time) tie group
    _found: dict[int, np.ndarray] = field(default_factory=dict)

    @classmethod
    def build(
        cls, entity: np.ndarray, t: np.ndarray, amount: np.ndarray, name: str, time_sorted: bool
    ) -> _Blocks:
        """Blocks of the entity codes ``entity``; ``time_sorted``: ``t`` is non-decreasing."""
        stride = int(t.max()) + 1
        if (int(entity.max()) + 1) * stride >= _MAX_KEY:
            raise ValueError(f"compute_history: too many {name} values x time span for int64")
        key = entity * stride + t
        order = _sort_order(key, amount, entity if time_sorted else None)
        key_s = key[order]
        entity_s = key_s // stride
        n = len(key)
        first = np.empty(n, dtype=bool)
        first[0] = True
        np.not_equal(entity_s[1:], entity_s[:-1], out=first[1:])
        start = np.flatnonzero(first)[np.cumsum(first) - 1]
        rows = np.arange(n, dtype=np.int64)
        first_of_tie = np.empty(n, dtype=bool)
        first_of_tie[0] = True
        np.not_equal(key_s[1:], key_s[:-1], out=first_of_tie[1:])
        end = np.maximum.accumulate(np.where(first_of_tie, rows, 0))
        return cls(order, key_s, key_s - entity_s * stride, entity_s, start, rows - start, end)

    def exclusive_sums(self, values: np.ndarray) -> np.ndarray:
        """Per-block sums of ``values`` (k, n; sorted) over the rows before each position."""
        inclusive = _segmented_inclusive_cumsum(values, self.pos)
        exclusive = np.zeros_like(inclusive)
        exclusive[:, 1:] = np.where(self.pos[1:] > 0, inclusive[:, :-1], 0.0)
        return exclusive

    def first_at_or_after(self, back_ms: int) -> np.ndarray:
        """Per row, the first position of its block at time >= its time - ``back_ms`` (each
        distinct ``back_ms`` searched once: a 7-day window and a 7-day label delay share it)."""
        found = self._found.get(back_ms)
        if found is None:
            found = np.searchsorted(self.key, self.key - back_ms, side="left")
            found = self._found[back_ms] = np.maximum(found, self.start, out=found)
        return found


def compute_history(df: pd.DataFrame, cfg: FeatureConfig) -> pd.DataFrame:
    """Point-in-time history columns of every declared entity for every row of ``df``.

    Each row sees only its entities' transactions with a strictly earlier timestamp (at
    millisecond resolution); risk counts see only those older than ``cfg.label_delay_days``
    (labels come from ``is_fraud``; without that column no label is known). Pass the full
    dataset (all splits) so later splits see earlier history. Columns:
    ``cfg.history_columns(inputs)`` for the feature inputs ``df`` has, aligned to its index.
    """
    import pandas as pd

    return pd.DataFrame(history_arrays(df, cfg), index=df.index, copy=False)


def history_arrays(df: pd.DataFrame, cfg: FeatureConfig) -> dict[str, np.ndarray]:
    """``compute_history``'s columns as plain arrays, in row order (no frame around them:
    slices of them are views, which featurize hands to ``transform`` part by part)."""
    inputs = present_inputs(df.columns)
    columns = cfg.history_columns(inputs)
    _require_columns(df, [USER_ID, schema.TIMESTAMP, schema.AMOUNT], "compute_history")
    n = len(df)
    if n == 0:
        return {c: np.empty(0, np.int64 if is_count_column(c) else np.float64) for c in columns}

    t = _timestamps_ms(df[schema.TIMESTAMP])
    t = t - t.min()
    amount = df[schema.AMOUNT].to_numpy(dtype=np.float64)
    label = _labels(df)
    delay_ms = int(cfg.label_delay_days) * _DAY_MS
    time_sorted = bool((t[1:] >= t[:-1]).all())
    entities = cfg.entities_of(inputs)
    codes = _Codes(df)

    def one(column: str, entity: EntityConfig) -> dict[str, np.ndarray]:
        """One entity's history columns, in the original row order."""
        blocks = _Blocks.build(codes(column)[0], t, amount, column, time_sorted)
        if column == USER_ID:
            sorted_cols = _user_columns(blocks, amount, entity, codes, inputs)
        else:
            sorted_cols = _window_columns(
                blocks,
                lambda: blocks.exclusive_sums(amount[blocks.order][np.newaxis])[0],
                entity,
                column,
            )
        sorted_cols |= _risk_columns(blocks, label[blocks.order], entity, column, delay_ms)
        out: dict[str, np.ndarray] = {}
        for name, values in sorted_cols.items():
            out[name] = np.empty(n, dtype=values.dtype)
            out[name][blocks.order] = values
        return out

    # Entities are independent and numpy / pyarrow release the GIL in their sorts, searches
    # and hashing: two threads use both cores of a small machine (same results, any order).
    needed = [c for c, _ in entities] + list(novelty_columns(inputs).values())
    with ThreadPoolExecutor(max_workers=_THREADS) as pool:
        list(pool.map(codes, dict.fromkeys(needed)))
        result: dict[str, np.ndarray] = {}
        for part in pool.map(lambda item: one(*item), entities):
            result |= part
    return {name: result[name] for name in columns}


def _window_columns(
    blocks: _Blocks, amount_sums: Callable[[], np.ndarray], entity: EntityConfig, column: str
) -> dict[str, np.ndarray]:
    """Count and/or amount sum (``entity.window_columns()``) of the entity's earlier
    transactions in each window; ``amount_sums()`` gives the per-block exclusive prefix sums
    of the amount, computed only when a sum is needed."""
    windows = sorted_windows(entity.windows)
    kinds = entity.window_columns()
    if not windows or not kinds:
        return {}
    exclusive = amount_sums() if "amount_sum" in kinds else None
    p = entity_prefix(column)
    out: dict[str, np.ndarray] = {}
    for label, seconds in windows:
        start = blocks.first_at_or_after(seconds * 1000)
        if "txn_count" in kinds:
            out[window_column(p, "txn_count", label)] = blocks.end - start
        if exclusive is not None:
            out[window_column(p, "amount_sum", label)] = exclusive[blocks.end] - exclusive[start]
    return out


def _labels(df: pd.DataFrame) -> np.ndarray:
    """``is_fraud`` as int8: 1 fraud, 0 legitimate, -1 unknown (missing, not 0/1, or no
    such column: current data of a live system is partly unlabelled)."""
    if schema.LABEL not in df.columns:
        return np.full(len(df), -1, dtype=np.int8)
    raw = df[schema.LABEL].to_numpy(dtype=np.float64, na_value=np.nan)
    return np.where(raw == 1, 1, np.where(raw == 0, 0, -1)).astype(np.int8)


def _risk_columns(
    blocks: _Blocks, y: np.ndarray, entity: EntityConfig, column: str, delay_ms: int
) -> dict[str, np.ndarray]:
    """Per risk window: how many of the entity's transactions in [t - delay - window, t - delay)
    had a known label (``y`` >= 0; labels of that age are known at t) and how many of them
    were fraud."""
    windows = sorted_windows(entity.risk_windows)
    if not windows:
        return {}
    p = entity_prefix(column)
    # Integer prefix sums: exact, so other blocks can never change a block's differences.
    known = np.zeros(len(y) + 1, dtype=np.int64)
    np.cumsum(y >= 0, out=known[1:])
    frauds = np.zeros(len(y) + 1, dtype=np.int64)
    np.cumsum(y == 1, out=frauds[1:])
    known_end = blocks.first_at_or_after(delay_ms)  # delay 0: the first of the tie group
    out: dict[str, np.ndarray] = {}
    for label, seconds in windows:
        start = blocks.first_at_or_after(delay_ms + seconds * 1000)
        out[window_column(p, "labelled_count", label)] = known[known_end] - known[start]
        out[window_column(p, "fraud_count", label)] = frauds[known_end] - frauds[start]
    return out


def _user_columns(
    blocks: _Blocks,
    amount: np.ndarray,
    entity: EntityConfig,
    codes: _Codes,
    inputs: list[str],
) -> dict[str, np.ndarray]:
    """The user's all-history statistics, window aggregates and novelty flags."""
    n = len(amount)
    x = amount[blocks.order]
    end, block_start = blocks.end, blocks.start
    prior = end - block_start
    # Exclusive per-user prefix sums of amount and of amount centred on the user's first amount
    # (centring limits cancellation in the variance).
    centred = x - x[block_start]
    exclusive = blocks.exclusive_sums(np.stack([x, centred, centred * centred]))
    sums_at_end = exclusive[:, end]

    has_prior = prior > 0
    count_f = prior.astype(np.float64)
    mean = np.full(n, np.nan)
    np.divide(sums_at_end[0], count_f, out=mean, where=has_prior)
    centred_mean = np.zeros(n)
    np.divide(sums_at_end[1], count_f, out=centred_mean, where=has_prior)
    var = np.full(n, np.nan)
    np.divide(sums_at_end[2], count_f, out=var, where=has_prior)
    var -= centred_mean * centred_mean
    np.maximum(var, 0.0, out=var, where=has_prior)
    since_last = np.full(n, np.nan)
    last = np.maximum(end - 1, 0)
    np.divide(
        (blocks.t - blocks.t[last]).astype(np.float64), 1000.0, out=since_last, where=has_prior
    )
    out: dict[str, np.ndarray] = {
        "user_transaction_count": prior,
        "user_avg_amount": mean,
        "user_std_amount": np.sqrt(var),
        "seconds_since_last_transaction": since_last,
    }
    out |= _window_columns(blocks, lambda: exclusive[0], entity, USER_ID)
    n_users = int(blocks.entity[-1]) + 1
    for name, col in novelty_columns(inputs).items():
        out[name] = _is_new(*codes(col), blocks, n_users)
    return out


class _Codes:
    """``pd.factorize`` of a frame's columns, each computed once: (int64 codes, n uniques)."""

    def __init__(self, df: pd.DataFrame) -> None:
        self._df = df
        self._done: dict[str, tuple[np.ndarray, int]] = {}

    def __call__(self, column: str) -> tuple[np.ndarray, int]:
        if column not in self._done:
            import pandas as pd

            codes, uniques = pd.factorize(self._df[column], use_na_sentinel=False)
            self._done[column] = (codes.astype(np.int64, copy=False), len(uniques))
        return self._done[column]


def _sort_order(key: np.ndarray, amount: np.ndarray, entity: np.ndarray | None) -> np.ndarray:
    """Row order by (key, amount): a total order on values, so results never depend on the
    input order. A fast sort, then the rare tie groups re-sorted.

    ``entity``: the key's entity codes when the rows are already in time order; a stable sort
    of those (radix, 16 bits a pass) is then the key order at a third of ``argsort``'s time.
    """
    order = np.argsort(key) if entity is None else _stable_argsort(entity)
    key_s = key[order]
    tie = key_s[1:] == key_s[:-1]
    if tie.any():
        in_group = np.zeros(len(key), dtype=bool)
        in_group[1:] = tie
        in_group[:-1] |= tie
        at = np.flatnonzero(in_group)
        rows = order[at]
        order[at] = rows[np.lexsort((amount[rows], key[rows]))]
    return order


def _stable_argsort(codes: np.ndarray) -> np.ndarray:
    """A stable argsort of non-negative int64 codes: numpy's radix sort on 16-bit digits."""
    top = int(codes.max()) if codes.size else 0
    if top >= 2**32:
        return np.argsort(codes, kind="stable")
    order = np.argsort((codes & 0xFFFF).astype(np.uint16), kind="stable")
    if top >= 2**16:
        high = (codes[order] >> 16).astype(np.uint16)
        order = order[np.argsort(high, kind="stable")]
    return order


def _is_new(codes: np.ndarray, n_values: int, blocks: _Blocks, n_users: int) -> np.ndarray:
    """1.0 where the user never used this value strictly before the row's time, else 0.0.

    Rows are in (user, time) order, so a (user, value) pair's first use is its lowest position.
    """
    import pandas as pd

    n_values = max(n_values, 1)
    pair = blocks.entity * n_values + codes[blocks.order]
    if n_users * n_values > 4 * len(pair) + 1024:  # sparse pairs: compact them by hashing
        pair, _ = pd.factorize(pair)
        size = int(pair.max()) + 1
    else:
        size = n_users * n_values
    first_pos = np.full(size, len(pair), dtype=np.int64)
    np.minimum.at(first_pos, pair, np.arange(len(pair), dtype=np.int64))
    return (blocks.t[first_pos[pair]] == blocks.t).astype(np.float64)
