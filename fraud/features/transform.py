"""Raw fields plus history -> the model's feature matrix, in batch and per record.

``transform`` (columns -> matrix) and ``transform_record`` (one mapping -> vector) build the
same vectors; a parity test proves they agree bit for bit. ``transform_records`` feeds
validated request records to ``transform`` column-wise (one record takes the per-record path).
A record without an entity's history fields gets exactly what that entity's first
transaction gets in training (``FeatureState.history_defaults``), never a zero-fill training
never saw.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fraud.data import schema
from fraud.features.history import _require_columns
from fraud.features.spec import Feature
from fraud.features.state import FeatureState

if TYPE_CHECKING:
    import pandas as pd

    #: What ``transform`` reads: a DataFrame, or a mapping of column name -> equal-length list.
    Columns = pd.DataFrame | Mapping[str, Sequence[Any]]
# pandas is imported inside the training-side functions only: a serving process that unpickles
# a FeatureState and scores records never loads it (~80 MB per worker).


# One lookup table for both paths, so hour_sin/hour_cos agree bit for bit.
_HOUR_ANGLE = 2.0 * np.pi * np.arange(24, dtype=np.float64) / 24.0
_HOUR_SIN: np.ndarray = np.sin(_HOUR_ANGLE)
_HOUR_COS: np.ndarray = np.cos(_HOUR_ANGLE)
_HOUR_SIN_LIST: list[float] = [float(v) for v in _HOUR_SIN]
_HOUR_COS_LIST: list[float] = [float(v) for v in _HOUR_COS]
_STACK_ROWS = 16384


def _index_column(df: Columns, name: str, upper: int) -> np.ndarray:
    """An integer column in [0, upper] as intp, or ValueError naming it and a bad value."""
    raw = np.asarray(df[name])
    if raw.dtype.kind not in "iuf":
        raise ValueError(f"{name} must be an integer 0-{upper}, got dtype {raw.dtype}")
    values = raw.astype(np.intp) if raw.dtype.kind == "f" and np.isfinite(raw).all() else raw
    bad = ~((raw == values) & (values >= 0) & (values <= upper))
    if bad.any():
        raise ValueError(f"{name} must be an integer 0-{upper}, got {raw[bad][0].item()!r}")
    return values.astype(np.intp, copy=False)


def _factorize(values: Any) -> tuple[np.ndarray, list[Any]]:
    """Codes (-1 for a missing value) and uniques: pandas for a column, a dict for a list."""
    if not isinstance(values, list):
        import pandas as pd

        codes, uniques = pd.factorize(values)
        return codes, list(uniques)
    index: dict[Any, int] = {}
    codes = np.fromiter(
        (-1 if v is None else index.setdefault(v, len(index)) for v in values),
        dtype=np.intp,
        count=len(values),
    )
    return codes, list(index)


def transform(df: Columns, state: FeatureState) -> np.ndarray:
    """Feature matrix (float64, one row per row of ``df``, columns ``state.feature_names``).

    ``df`` (a DataFrame, or a mapping of equal-length lists) holds the raw columns plus
    ``compute_history`` output (when history is used).
    """
    columns = transform_columns(df, state)
    return _stack_columns(columns, len(columns[0]))


def transform_columns(df: Columns, state: FeatureState) -> list[np.ndarray]:
    """``transform``'s columns, one float64 array per feature name (for columnar writers)."""
    history = state.history_columns
    _require_columns(df, [*state.record_fields, *history], "transform")
    hour = _index_column(df, schema.HOUR, 23)
    day = _index_column(df, schema.DAY, 6)
    amount = np.asarray(df[schema.AMOUNT], dtype=np.float64)
    if not (np.isfinite(amount) & (amount > 0)).all():
        raise ValueError(f"{schema.AMOUNT} must be finite and > 0")

    cols: dict[str, np.ndarray] = {
        schema.HOUR: hour.astype(np.float64),
        schema.DAY: day.astype(np.float64),
        "hour_sin": _HOUR_SIN[hour],
        "hour_cos": _HOUR_COS[hour],
        "is_night": (hour < 6).astype(np.float64),
        "is_weekend": (day >= 5).astype(np.float64),
        schema.AMOUNT: amount,
        "log_amount": np.log1p(amount),
    }
    for col, table, unknown in state._lookups:
        codes, uniques = _factorize(df[col])
        # Same dict as the record path; the extra last entry serves missing values (code -1).
        mapped = [table.get(v, unknown) if isinstance(v, str) else unknown for v in uniques]
        mapped.append(unknown)
        lookup = np.asarray(mapped, dtype=np.float64).reshape(-1, 2)
        cols[f"{col}_code"] = lookup[codes, 0]
        cols[f"{col}_fraud_rate"] = lookup[codes, 1]
    if history:
        cols |= _history_features(df, state, amount)
    return [np.asarray(cols[name], dtype=np.float64) for name in state.feature_names]


def _history_features(
    df: Columns, state: FeatureState, amount: np.ndarray
) -> dict[str, np.ndarray]:
    """The kept history-based features (``state._features``) from the history columns."""
    wanted = set(state.feature_names)
    h = {name: np.asarray(df[name], dtype=np.float64) for name in state.history_columns}
    return _apply([f for f in state._features if f.name in wanted], h, amount, state)


def _apply(
    features: list[Feature], h: Mapping[str, np.ndarray], amount: np.ndarray, state: FeatureState
) -> dict[str, np.ndarray]:
    """Evaluate history-based ``features`` over history columns ``h`` (the batch path)."""
    shift, smoothing = state._risk
    out: dict[str, np.ndarray] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for name, op, args in features:
            a = h[args[0]]
            if op == "hist":
                out[name] = a
            elif op == "mean":
                out[name] = a / h[args[1]]
            elif op == "risk":
                out[name] = (a + shift) / (h[args[1]] + smoothing)
            elif op == "zscore":
                out[name] = (amount - a) / np.maximum(h[args[1]], state._floor)
            else:  # ratio
                out[name] = amount / a
    return out


def with_amount(x: np.ndarray, state: FeatureState, amount: np.ndarray) -> np.ndarray:
    """Feature rows ``x`` (``transform`` output) as if each transaction's amount were
    ``amount``: the features of the amount recomputed exactly as ``transform`` does, the rest
    (the transaction's kind and every entity's past) unchanged. For behavioural checks.

    Raises ValueError when an amount feature needs a history column the model does not keep.
    """
    amount = np.asarray(amount, dtype=np.float64)
    position = {name: i for i, name in enumerate(state.feature_names)}
    out = np.array(x, dtype=np.float64, copy=True)
    for name, values in ((schema.AMOUNT, amount), ("log_amount", np.log1p(amount))):
        if name in position:
            out[:, position[name]] = values
    derived = [f for f in state._features if f.op in ("zscore", "ratio") and f.name in position]
    for f in derived:
        if missing := [a for a in f.args if a not in position]:
            raise ValueError(
                f"with_amount: {', '.join(missing)} must be among the model's features to "
                f"recompute {f.name}"
            )
    h = {a: x[:, position[a]] for f in derived for a in f.args}
    for name, values in _apply(derived, h, amount, state).items():
        out[:, position[name]] = values
    return out


def _stack_columns(columns: list[np.ndarray], n: int) -> np.ndarray:
    """C-ordered (n, k) matrix from k columns, written in row blocks (cache-friendly: ~5x
    faster than strided column writes on a million rows)."""
    out = np.empty((n, len(columns)), dtype=np.float64)
    block = np.empty((len(columns), _STACK_ROWS), dtype=np.float64)
    for start in range(0, n, _STACK_ROWS):
        stop = min(start + _STACK_ROWS, n)
        for j, col in enumerate(columns):
            block[j, : stop - start] = col[start:stop]
        out[start:stop] = block[:, : stop - start].T
    return out


# ---------------------------------------------------------------------------------------------
# Per-record path
# ---------------------------------------------------------------------------------------------


def _record_index(record: Mapping[str, Any], name: str, upper: int) -> int:
    try:
        value = record[name]
    except KeyError:
        raise ValueError(f"missing field '{name}'") from None
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name} must be an integer 0-{upper}, got {value!r}")
    if value != value or not 0 <= value <= upper or int(value) != value:
        raise ValueError(f"{name} must be an integer 0-{upper}, got {value!r}")
    return int(value)


def _record_float(name: str, value: Any) -> float:
    if isinstance(value, str):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None


def _divide(num: float, den: float) -> float:
    """IEEE division as numpy does it (inf/NaN on zero) so both paths agree."""
    if den == 0.0:
        if num == 0.0 or num != num:
            return math.nan
        return math.copysign(math.inf, num) * math.copysign(1.0, den)
    return num / den


def transform_record(
    record: Mapping[str, Any], state: FeatureState
) -> tuple[np.ndarray, list[str]]:
    """One transaction -> (feature vector identical to its ``transform`` row, warnings).

    History fields absent (or None) take ``state.history_defaults`` - the values a first-ever
    transaction gets in training. Each categorical value mapped to the unknown bucket adds a
    warning naming the field and value. Missing or invalid required fields raise ValueError.
    """
    hour = _record_index(record, schema.HOUR, 23)
    day = _record_index(record, schema.DAY, 6)
    if schema.AMOUNT not in record:
        raise ValueError(f"missing field '{schema.AMOUNT}'")
    amount_raw = record[schema.AMOUNT]
    amount = _record_float(schema.AMOUNT, amount_raw)
    if not (amount > 0 and amount != math.inf) or isinstance(amount_raw, bool):
        raise ValueError(f"{schema.AMOUNT} must be finite and > 0, got {amount_raw!r}")
    values = [
        float(hour),
        float(day),
        _HOUR_SIN_LIST[hour],
        _HOUR_COS_LIST[hour],
        1.0 if hour < 6 else 0.0,
        1.0 if day >= 5 else 0.0,
        amount,
        float(np.log1p(amount)),
    ]
    warnings: list[str] = []
    for col, table, unknown in state._lookups:
        try:
            value = record[col]
        except KeyError:
            raise ValueError(f"missing field '{col}'") from None
        hit = table.get(value) if isinstance(value, str) else None
        if hit is None:
            warnings.append(_unknown_warning(col, value))
            hit = unknown
        values += hit
    if state._history_plan:
        values += _record_history(record, state, amount)
    vector = np.array(values, dtype=np.float64)
    if state._keep is not None:
        vector = vector[state._keep]
    return vector, warnings


def _record_history(record: Mapping[str, Any], state: FeatureState, amount: float) -> list[float]:
    """The history-based features of one record, in model order (before ``exclude``)."""
    h = [
        default if (value := record.get(name)) is None else _record_float(name, value)
        for name, default in state._history_plan
    ]
    shift, smoothing = state._risk
    floor = state._floor
    out: list[float] = []
    for op, args in state._ops:
        a = h[args[0]]
        if op == "hist":
            out.append(a)
        elif op == "mean":
            out.append(_divide(a, h[args[1]]))
        elif op == "risk":
            out.append(_divide(a + shift, h[args[1]] + smoothing))
        elif op == "zscore":
            std = h[args[1]]
            out.append(_divide(amount - a, std if (std != std or std > floor) else floor))
        else:  # ratio
            out.append(_divide(amount, a))
    return out


def _unknown_warning(col: str, value: Any) -> str:
    return f"{col}: value {value!r} was not seen in training; using unknown"


def _all_known(values: list[Any], table: Mapping[str, Any]) -> bool:
    """Whether every value is in ``table`` (whose keys are strings): one set operation."""
    try:
        return set(values) <= table.keys()
    except TypeError:  # an unhashable value: the caller words the warning
        return False


def transform_records(
    records: Sequence[Mapping[str, Any]],
    state: FeatureState,
    history: Mapping[str, np.ndarray] | None = None,
) -> tuple[np.ndarray, list[list[str]]]:
    """Many validated records -> (``transform`` of their columns, warnings per record).

    Row ``i`` equals ``transform_record(records[i], state)`` bit for bit (absent history takes
    the same defaults, unknown categories the same warnings), at batch speed: one ``transform``
    over column lists instead of a Python pass per record. One record takes
    ``transform_record`` itself, a few microseconds against ~100 for the columnar path's fixed
    cost. Raises ValueError when a required field is missing or invalid anywhere (validate
    records first). ``history``: the history columns, one value per record (the online store's),
    used instead of the records' history fields.
    """
    if len(records) == 1:
        record = records[0]
        if history is not None:
            record = {**record, **{name: history[name][0] for name, _ in state._history_plan}}
        vector, warnings = transform_record(record, state)
        return vector.reshape(1, -1), [warnings]
    columns: dict[str, list[Any]] = {}
    for name in state.record_fields:
        try:
            columns[name] = [record[name] for record in records]
        except KeyError:
            raise ValueError(f"missing field '{name}'") from None
    for name, default in state._history_plan:
        columns[name] = (
            [default if (value := record.get(name)) is None else value for record in records]
            if history is None
            else history[name]
        )
    return transform_with_warnings(columns, state, len(records))


def transform_with_warnings(
    columns: dict[str, Any], state: FeatureState, n: int
) -> tuple[np.ndarray, list[list[str]]]:
    """``transform`` of ``n`` rows' columns, and per row the unknown categories it met."""
    warnings: list[list[str]] = [[] for _ in range(n)]
    for col, table, _ in state._lookups:
        if _all_known(columns[col], table):
            continue
        for i, value in enumerate(columns[col]):
            if not (isinstance(value, str) and value in table):
                warnings[i].append(_unknown_warning(col, value))
    return transform(columns, state), warnings
