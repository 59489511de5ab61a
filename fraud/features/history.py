"""Point-in-time user history, vectorised: each transaction sees only the user's past.

``compute_history`` derives each transaction's user-history columns from that user's
transactions strictly before it (same-timestamp transactions do not see each other): one sort
by (user, time), segmented prefix sums, ``searchsorted`` windows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fraud.data import schema
from fraud.features.spec import (
    USER_ID,
    _sorted_windows,
    history_columns,
    novelty_columns,
    present_inputs,
)

if TYPE_CHECKING:
    import pandas as pd

    #: What ``transform`` reads: a DataFrame, or a mapping of column name -> equal-length list.
    Columns = pd.DataFrame | Mapping[str, Sequence[Any]]
# pandas is imported inside the training-side functions only: a serving process that unpickles
# a FeatureState and scores records never loads it (~80 MB per worker).


_NANOS_PER_UNIT: dict[str, int] = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
_MAX_KEY = 2**62


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
    rows, so other users' rows (or later rows) can never change it, not even by rounding.
    """
    out = values.copy()
    max_pos = int(pos.max()) if pos.size else 0
    step = 1
    while step <= max_pos:
        reach = pos[step:] >= step
        out[:, step:] += np.where(reach, out[:, :-step], 0.0)
        step <<= 1
    return out


def compute_history(df: pd.DataFrame, windows: Mapping[str, int]) -> pd.DataFrame:
    """Point-in-time user-history columns for every row of ``df``, aligned to its index.

    Each row sees only the same user's transactions with a strictly earlier timestamp (at
    millisecond resolution). Pass the full dataset (all splits) so later splits see earlier
    history. Columns: ``history_columns(windows, inputs)`` for the feature inputs ``df`` has
    (a novelty flag only where its raw column is there).
    """
    import pandas as pd

    wins = _sorted_windows(windows)
    inputs = present_inputs(df.columns)
    columns = history_columns(windows, inputs)
    _require_columns(df, [USER_ID, schema.TIMESTAMP, schema.AMOUNT], "compute_history")
    n = len(df)
    if n == 0:
        return pd.DataFrame(
            {c: pd.Series(dtype=_history_dtype(c)) for c in columns}, index=df.index
        )

    user, _ = pd.factorize(df[USER_ID], use_na_sentinel=False)
    user = user.astype(np.int64, copy=False)
    t = _timestamps_ms(df[schema.TIMESTAMP])
    t = t - t.min()
    stride = int(t.max()) + 1
    if (int(user.max()) + 1) * stride >= _MAX_KEY:
        raise ValueError("compute_history: too many users x time span for int64 keys")
    key = user * stride + t
    amount = df[schema.AMOUNT].to_numpy(dtype=np.float64)

    order = _sort_order(key, amount)
    key_s, x = key[order], amount[order]
    user_s = key_s // stride
    t_s = key_s - user_s * stride
    first_in_block = np.empty(n, dtype=bool)
    first_in_block[0] = True
    np.not_equal(user_s[1:], user_s[:-1], out=first_in_block[1:])
    starts = np.flatnonzero(first_in_block)
    block_start = starts[np.cumsum(first_in_block) - 1]
    rows = np.arange(n, dtype=np.int64)
    pos = rows - block_start
    # First row of this row's (user, time) tie group: everything before it is strictly earlier.
    first_of_tie = np.empty(n, dtype=bool)
    first_of_tie[0] = True
    np.not_equal(key_s[1:], key_s[:-1], out=first_of_tie[1:])
    end = np.maximum.accumulate(np.where(first_of_tie, rows, 0))
    prior = end - block_start

    # Exclusive per-user prefix sums of amount and of amount centred on the user's first amount
    # (centring limits cancellation in the variance).
    centred = x - x[block_start]
    inclusive = _segmented_inclusive_cumsum(np.stack([x, centred, centred * centred]), pos)
    exclusive = np.zeros_like(inclusive)
    exclusive[:, 1:] = np.where(pos[1:] > 0, inclusive[:, :-1], 0.0)
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
    std = np.sqrt(var)
    since_last = np.full(n, np.nan)
    last = np.maximum(end - 1, 0)
    np.divide((t_s - t_s[last]).astype(np.float64), 1000.0, out=since_last, where=has_prior)

    sorted_cols: dict[str, np.ndarray] = {
        "user_transaction_count": prior,
        "user_avg_amount": mean,
        "user_std_amount": std,
        "seconds_since_last_transaction": since_last,
    }
    for label, seconds in wins:
        start = np.searchsorted(key_s, key_s - seconds * 1000, side="left")
        np.maximum(start, block_start, out=start)
        sorted_cols[f"user_txn_count_{label}"] = end - start
        sorted_cols[f"user_amount_sum_{label}"] = sums_at_end[0] - exclusive[0, start]

    n_users = int(user_s[-1]) + 1
    for name, col in novelty_columns(inputs).items():
        sorted_cols[name] = _is_new(df[col], order, user_s, t_s, n_users)

    result: dict[str, np.ndarray] = {}
    for name in columns:
        values = sorted_cols[name]
        out = np.empty(n, dtype=values.dtype)
        out[order] = values
        result[name] = out
    return pd.DataFrame(result, index=df.index, copy=False)  # fresh arrays: no copy needed


def _history_dtype(name: str) -> str:
    return (
        "int64"
        if name == "user_transaction_count" or name.startswith("user_txn_count_")
        else "float64"
    )


def _sort_order(key: np.ndarray, amount: np.ndarray) -> np.ndarray:
    """Row order by (key, amount): a total order on values, so results never depend on the
    input order. A fast unstable sort on the int64 key, then the rare tie groups re-sorted."""
    order = np.argsort(key)
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


def _is_new(
    values: pd.Series, order: np.ndarray, user_s: np.ndarray, t_s: np.ndarray, n_users: int
) -> np.ndarray:
    """1.0 where the user never used this value strictly before the row's time, else 0.0.

    Rows are in (user, time) order, so a (user, value) pair's first use is its lowest position.
    """
    import pandas as pd

    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    n_values = max(len(uniques), 1)
    pair = user_s * n_values + codes.astype(np.int64, copy=False)[order]
    if n_users * n_values > 4 * len(pair) + 1024:  # sparse pairs: compact them by hashing
        pair, _ = pd.factorize(pair)
        size = int(pair.max()) + 1
    else:
        size = n_users * n_values
    first_pos = np.full(size, len(pair), dtype=np.int64)
    np.minimum.at(first_pos, pair, np.arange(len(pair), dtype=np.int64))
    return (t_s[first_pos[pair]] == t_s).astype(np.float64)
