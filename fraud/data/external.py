"""A transactions file of the user's own: CSV or Parquet, its columns mapped onto ours.

``read_external`` reads every column as text (CSV) or as stored (Parquet), renames the file's
own names onto the canonical ones (``data.columns``), and drops the columns the pipeline does
not use, returning their names so the caller can list them in one line: an export's extra
columns (``hour_of_day``, ``user_avg_amount``, ...) are never an error and never reach the
features. ``fraud.data.validate`` then checks what is left.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from fraud.data import schema
from fraud.data.validate import SchemaError

#: Generator-only columns a file may carry and the pipeline keeps (the injected pattern).
KEPT_EXTRA = (schema.FRAUD_PATTERN,)


def read_external(
    path: Path, source: str, columns: Mapping[str, str]
) -> tuple[pd.DataFrame, list[str]]:
    """The file's rows with canonical column names, and the names of the columns dropped.

    Raises:
        SchemaError: a mapped column is not in the file (all of them named at once).
        ValueError: the file cannot be read as ``source``.
    """
    try:
        if source == "parquet":
            raw = pd.read_parquet(path)
        else:
            raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise ValueError(f"cannot read {source} file {path}: {exc}") from None
    except (OSError, ValueError) as exc:  # pyarrow: not a parquet file
        raise ValueError(f"cannot read {source} file {path}: {exc}") from None
    return map_columns(raw, path, columns)


def map_columns(
    raw: pd.DataFrame, path: Path | str, columns: Mapping[str, str]
) -> tuple[pd.DataFrame, list[str]]:
    """``raw`` (the table read from ``path``) with the file's names renamed onto the canonical
    ones by ``columns`` (canonical -> the file's name) and every other column dropped, and the
    names of the columns dropped.

    Raises:
        SchemaError: a mapped column is not in the file (all of them named at once).
    """
    problems = []
    for ours, theirs in columns.items():
        if theirs not in raw.columns:
            problems.append(f"data.columns.{ours}: no column {theirs!r} in the file")
        elif ours != theirs and ours in raw.columns:
            problems.append(
                f"data.columns.{ours}: the file has a column {ours!r} besides {theirs!r}"
            )
    if problems:
        raise SchemaError([f"{path}: {problem}" for problem in problems])
    renamed = raw.rename(columns={theirs: ours for ours, theirs in columns.items()})
    known = {*schema.CANONICAL_COLUMNS, *KEPT_EXTRA}
    dropped = [str(name) for name in renamed.columns if name not in known]
    return renamed.drop(columns=dropped), dropped
