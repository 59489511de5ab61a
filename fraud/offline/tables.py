"""Transaction tables on disk: a CSV or Parquet file read as an Arrow table, written atomically.

The format follows the file's suffix (``SUFFIXES``). A CSV is read with every column as text,
as the pipeline reads a user's own CSV (``fraud.data.external``: an empty cell stays an empty
string, a value is never guessed into a number), by pyarrow's multi-threaded reader, ~5x
faster than pandas' on a million rows; so the columns the scorer does not read are written
back as they were. ``frame`` hands the table to pandas without copying the text.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from fraud.files import atomic_path

CSV = ".csv"
PARQUET = ".parquet"
#: The suffixes a transactions file may have, and so its format.
SUFFIXES = (CSV, PARQUET)
#: Rows per slice of a CSV formatted at a time, and the threads formatting slices.
WRITE_ROWS = 65_536
WRITE_THREADS = 2


class TableError(ValueError):
    """A file cannot be read or written as a transactions table; the message names it."""


def check_suffix(path: Path, what: str) -> str:
    """``path``'s suffix, or TableError saying which suffixes are known."""
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise TableError(
            f"{what} {path}: unknown suffix {Path(path).suffix or '(none)'!r}; expected "
            f"{' or '.join(SUFFIXES)}"
        )
    return suffix


def read_table(path: Path) -> pa.Table:
    """The file's rows as an Arrow table: every column text for a CSV, as stored for Parquet.

    Raises:
        FileNotFoundError: no such file.
        TableError: an unknown suffix, an empty file, a file that does not parse, repeated
            column names; each message names the file.
    """
    path = Path(path)
    suffix = check_suffix(path, "input")
    if not path.is_file():
        raise FileNotFoundError(f"input not found: {path}")
    try:
        table = _read_csv(path) if suffix == CSV else pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        message = str(exc).strip()
        if message == "Empty CSV file":
            raise TableError(f"input {path}: the file is empty (no header, no rows)") from None
        raise TableError(f"input {path}: cannot be read as {suffix[1:]}: {message}") from None
    repeated = sorted(name for name, n in Counter(table.column_names).items() if n > 1)
    if repeated:
        raise TableError(f"input {path}: column(s) named twice: {', '.join(repeated)}")
    return table


def _read_csv(path: Path) -> pa.Table:
    """A CSV with every column as text (the header read first to name them)."""
    with pcsv.open_csv(path) as reader:
        names = reader.schema.names
    convert = pcsv.ConvertOptions(
        column_types={name: pa.string() for name in names},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    return pcsv.read_csv(path, convert_options=convert)


def frame(table: pa.Table) -> pd.DataFrame:
    """``table`` as a DataFrame; text columns keep their Arrow buffers (pandas' ``str`` dtype),
    where ``Table.to_pandas`` would copy every string (~10x the time)."""
    text = pd.StringDtype("pyarrow", na_value=np.nan)
    columns = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            columns[name] = pd.Series(pd.array(column, dtype=text), copy=False)
        else:
            columns[name] = column.to_pandas()
    return pd.DataFrame(columns, copy=False)


def write_table(table: pa.Table, path: Path) -> None:
    """Write ``table`` to ``path`` atomically, in the format of its suffix.

    A CSV quotes nothing that does not need it (a comma, quote or line break), as most exports
    are written; when a value needs it, every text value is quoted (pyarrow's two styles).

    Raises:
        TableError: an unknown suffix, or the file system refused the file (nothing is left
            at ``path`` but what was there before).
    """
    path = Path(path)
    suffix = check_suffix(path, "output")
    try:
        with atomic_path(path) as tmp:
            if suffix == PARQUET:
                # dictionary encoding for text only: dense floats gain little at twice the time
                text = [f.name for f in table.schema if not pa.types.is_floating(f.type)]
                pq.write_table(table, tmp, use_dictionary=text)
            else:
                _write_csv(table, tmp)
    except OSError as exc:
        raise TableError(f"output {path}: cannot be written: {exc.strerror or exc}") from None


def _write_csv(table: pa.Table, path: Path) -> None:
    """``table`` as CSV: the header as Python's csv module writes it (pyarrow's quotes every
    name), then the rows unquoted, or with their text quoted when a value needs it."""
    header = io.StringIO()
    csv.writer(header, lineterminator="\n").writerow(table.column_names)
    for style in ("none", "needed"):
        try:
            with pa.OSFile(str(path), "wb") as sink:
                sink.write(header.getvalue().encode())
                for part in _csv_rows(table, style):
                    sink.write(part)
            return
        except pa.ArrowInvalid:  # quoting_style="none" and a value with a comma, quote, ...
            if style == "needed":
                raise


def _csv_rows(table: pa.Table, style: str) -> Iterator[pa.Buffer]:
    """The rows of ``table`` as CSV text, ``WRITE_ROWS`` at a time, in order: formatting
    numbers is most of a write, and pyarrow does it without the GIL, so ``WRITE_THREADS``
    format slices side by side (1.9x on two cores)."""
    options = pcsv.WriteOptions(include_header=False, quoting_style=style)

    def text(start: int) -> pa.Buffer:
        sink = pa.BufferOutputStream()
        pcsv.write_csv(table.slice(start, WRITE_ROWS), sink, options)
        return sink.getvalue()

    with ThreadPoolExecutor(max_workers=WRITE_THREADS) as pool:
        yield from pool.map(text, range(0, table.num_rows, WRITE_ROWS))
