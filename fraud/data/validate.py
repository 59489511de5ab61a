"""Schema validation and cleaning of a transactions table.

Validation collects every problem before failing, and each message names the column and how
many rows are bad, so a user fixing their own CSV sees the whole list at once.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from fraud.data import schema

_LABEL_VALUES = {"0": 0, "1": 1, "false": 0, "true": 1, "0.0": 0, "1.0": 1}
_STRING_COLUMNS = (
    "transaction_id",
    "user_id",
    schema.MERCHANT_ID,
    schema.DEVICE_ID,
    *schema.CATEGORICAL_COLUMNS,
)


class SchemaError(ValueError):
    """The input table does not satisfy the transaction schema; ``errors`` lists each problem."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("invalid transactions:\n  - " + "\n  - ".join(errors))


def _plural(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


def validate_transactions(raw: pd.DataFrame, source: str | None = None) -> pd.DataFrame:
    """Check ``raw`` against the schema and return a clean, typed copy sorted by time.

    Cleaning: string columns are stripped; amounts parsed as float; timestamps parsed as UTC
    (naive values are taken as UTC); labels 0/1/true/false become int 0/1; hour_of_day and
    day_of_week are always derived from the timestamp so they can never disagree with it.
    Only ``schema.REQUIRED_COLUMNS`` must be there; the feature inputs a table has (merchant
    category, device, ...) are checked and kept, and the features follow them. Extra columns
    (e.g. the generator's ``fraud_pattern``) are kept.

    Raises:
        SchemaError: listing every problem, each naming the column and the number of bad rows
            (and prefixed with ``source``, the file the table came from, when given).
    """
    df = _checked(raw, source, schema.REQUIRED_COLUMNS, unique_ids=True)
    ordered = [c for c in schema.COLUMNS if c in df.columns]
    extra = [c for c in df.columns if c not in schema.COLUMNS]
    return _time_ordered(df[[*ordered, *extra]]).reset_index(drop=True)


def clean_columns(
    raw: pd.DataFrame, source: str, required: Iterable[str] = (), unique_ids: bool = False
) -> pd.DataFrame:
    """The checks and cleaning of ``validate_transactions`` for the columns ``raw`` has, in
    its row order; hour_of_day and day_of_week are derived from a timestamp when there is one.

    Only the ``required`` columns must be there (a current batch for drift monitoring may lack
    ids or labels; a file to score must have what the model reads). ``unique_ids``: a
    ``transaction_id`` shared by several rows is an error, as in the pipeline's input.

    Raises:
        SchemaError: every problem, each naming ``source``, the column and the bad rows.
    """
    return _checked(raw, source, required, unique_ids)


def _checked(
    raw: pd.DataFrame, source: str | None, required: Iterable[str], unique_ids: bool
) -> pd.DataFrame:
    """The cleaned copy of ``raw`` with hour and day derived, or SchemaError listing every
    missing column, every bad column with its row count and the duplicated ids."""

    def fail(errors: list[str]) -> SchemaError:
        return SchemaError([f"{source}: {e}" for e in errors] if source else errors)

    errors = [f"missing column '{c}'" for c in required if c not in raw.columns]
    if len(raw) == 0:
        errors.append("the table has no rows")
        raise fail(errors)
    # Every present column is checked even when others are missing: one message lists all.
    df, found = _clean_present(raw)
    errors += found
    if unique_ids and "transaction_id" in df:
        duplicated = df["transaction_id"].duplicated(keep=False)
        if duplicated.any():
            n_ids = df.loc[duplicated, "transaction_id"].nunique()
            errors.append(
                f"column 'transaction_id': {_plural(int(duplicated.sum()))} share "
                f"{n_ids} duplicated id(s)"
            )
    if errors:
        raise fail(errors)
    if schema.TIMESTAMP in df:
        df[schema.HOUR] = df[schema.TIMESTAMP].dt.hour.astype("int64")
        df[schema.DAY] = df[schema.TIMESTAMP].dt.day_of_week.astype("int64")
    return df


def _clean_present(raw: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """A cleaned copy of ``raw`` (strings stripped, amount float, timestamp UTC, label 0/1)
    and the problems of each of those columns it has, each naming the column and its rows."""
    errors: list[str] = []
    df = raw.copy()
    for col in _STRING_COLUMNS:
        if col not in df:
            continue
        values = df[col].astype("string").str.strip()
        empty = values.isna() | (values == "")
        if empty.any():
            errors.append(f"column '{col}': {_plural(int(empty.sum()))} empty or missing")
        df[col] = values.astype(str)

    if schema.AMOUNT in df:
        amount = _numbers(df[schema.AMOUNT])
        values = amount.to_numpy(dtype="float64", na_value=np.nan)
        non_numeric = amount.isna() | ~np.isfinite(values)
        if non_numeric.any():
            errors.append(
                f"column 'amount': {_plural(int(non_numeric.sum()))} not a finite number"
            )
        non_positive = ~non_numeric & (amount <= 0)
        if non_positive.any():
            errors.append(f"column 'amount': {_plural(int(non_positive.sum()))} not positive")
        df[schema.AMOUNT] = amount

    if schema.TIMESTAMP in df:
        ts = _parse_timestamps(df[schema.TIMESTAMP])
        if ts.isna().any():
            errors.append(
                f"column 'timestamp': {_plural(int(ts.isna().sum()))} not a parseable time"
            )
        df[schema.TIMESTAMP] = ts

    if schema.LABEL in df:
        label_text = df[schema.LABEL].astype("string").str.strip().str.lower()
        label = label_text.map(_LABEL_VALUES)
        if label.isna().any():
            bad = sorted(set(label_text[label.isna()].fillna("<missing>").tolist()))[:5]
            errors.append(
                f"column 'is_fraud': {_plural(int(label.isna().sum()))} not one of "
                f"0/1/true/false (e.g. {', '.join(repr(b) for b in bad)})"
            )
        else:
            df[schema.LABEL] = label.astype("int64")
    return df, errors


def _numbers(values: pd.Series) -> pd.Series:
    """``values`` as float64, NaN where a value is not a number.

    Text held by Arrow (a CSV read as text) is cast by Arrow, ~15x faster than
    ``pd.to_numeric`` and to the same doubles (both round correctly); when any value is not
    plain number text (a blank, a space around it, a word), pandas parses the column instead,
    turning what it cannot read into NaN.
    """
    if isinstance(values.array, pd.arrays.ArrowStringArray):
        import pyarrow as pa
        import pyarrow.compute as pc

        try:
            cast = pc.cast(pa.array(values.array), pa.float64())
            return pd.Series(cast.to_numpy(), index=values.index, dtype="float64")
        except pa.ArrowInvalid:
            pass
    return pd.to_numeric(values, errors="coerce").astype("float64")


def _time_ordered(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` sorted by (timestamp, transaction_id); a no-op check when it already is."""
    ts = df[schema.TIMESTAMP].to_numpy(dtype="datetime64[ns]")
    ids = df["transaction_id"].to_numpy()
    if len(ts) < 2:
        return df
    steps = ts[1:] >= ts[:-1]
    ties = np.flatnonzero(ts[1:] == ts[:-1])
    if steps.all() and (ids[ties + 1] > ids[ties]).all():
        return df
    return df.sort_values([schema.TIMESTAMP, "transaction_id"], kind="stable")


def _parse_timestamps(values: pd.Series) -> pd.Series:
    """Parse to ``datetime64[ns, UTC]``; unparseable values become NaT."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return values.dt.tz_localize("UTC").astype("datetime64[ns, UTC]")
    parsed = pd.to_datetime(values.astype("string"), errors="coerce", utc=True, format="ISO8601")
    return parsed.astype("datetime64[ns, UTC]")
