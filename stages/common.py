"""I/O shared by the stages: params sections, parquet and JSON files, clean error exits."""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from fraud.config import PARAMS_FILE
from fraud.files import atomic_write_bytes, dump_json


def read_parquet(path: Path) -> pd.DataFrame:
    """Read a parquet file, naming it if it is missing."""
    if not Path(path).exists():
        raise FileNotFoundError(f"input not found: {path}")
    return pd.read_parquet(path)


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    """Atomically write ``df`` (without its index) as parquet."""
    buffer = io.BytesIO()
    df.to_parquet(buffer, index=False)
    atomic_write_bytes(Path(path), buffer.getvalue())


def read_dataset(path: Path, columns: list[str] | None = None) -> Any:
    """A lazy Dask frame of a parquet file or a partitioned dataset (a directory of them)."""
    import dask.dataframe as dd

    if not Path(path).exists():
        raise FileNotFoundError(f"input not found: {path}")
    return dd.read_parquet(str(path), columns=columns)


def write_datasets(frames: Mapping[Path, Any]) -> None:
    """Compute lazy Dask frames together (shared work done once) into partitioned parquet
    datasets, each written to a temporary directory beside its path and then swapped in:
    a failed run leaves the previous outputs (files or directories) whole."""
    import dask

    staged: dict[Path, Path] = {}
    try:
        writes = []
        for path, frame in frames.items():
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            staged[path] = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
            writes.append(frame.to_parquet(str(staged[path]), write_index=False, compute=False))
        dask.compute(*writes)
        for path, tmp in staged.items():
            tmp.chmod(0o755)
            old = path.with_name(f".{path.name}.old")
            if path.exists() or path.is_symlink():
                path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)
    finally:
        for tmp in staged.values():
            shutil.rmtree(tmp, ignore_errors=True)


def write_columns(
    columns: list[np.ndarray], names: list[str], extra: dict[str, np.ndarray], path: Path
) -> None:
    """Atomically write feature columns (one float64 array per name) plus extra columns.

    Written without dictionary encoding: for dense floats that encoding saves a third of the
    size at twice the time.
    """
    table = pa.table({**dict(zip(names, columns, strict=True)), **extra})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, use_dictionary=False)
    atomic_write_bytes(Path(path), buffer.getvalue())


def write_joblib(obj: Any, path: Path) -> None:
    """Atomically write ``obj`` as a compressed joblib file."""
    buffer = io.BytesIO()
    joblib.dump(obj, buffer, compress=3)
    atomic_write_bytes(Path(path), buffer.getvalue())


def read_json(path: Path, what: str, hint: str | None = None) -> Any:
    """Parsed JSON of ``path``: a missing file is named (with ``hint``: how to make it), and
    so is one that is not JSON."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        made_by = f" ({hint})" if hint else ""
        raise FileNotFoundError(f"{what} not found: {path}{made_by}") from None
    except ValueError as exc:
        raise ValueError(f"{what} {path} is not valid JSON: {exc}") from None


def write_json(data: Any, path: Path) -> None:
    """Atomically write stable, pretty JSON."""
    atomic_write_bytes(Path(path), dump_json(data))


def parser(description: str, paths: Mapping[str, str]) -> argparse.ArgumentParser:
    """An argument parser with one required ``--<name>`` path option per entry of ``paths``."""
    ap = argparse.ArgumentParser(description=description)
    for name, help_text in paths.items():
        ap.add_argument(f"--{name.replace('_', '-')}", type=Path, required=True, help=help_text)
    ap.add_argument("--params", type=Path, default=PARAMS_FILE, help="params file")
    return ap


def run(main: Callable[[list[str] | None], int]) -> None:
    """Run a stage's main, turning expected failures into a one-paragraph message and exit 2.

    Every expected failure is a ValueError (config, schema, artifact errors) or an OSError
    (a missing or unreadable file); anything else is a bug and keeps its traceback.
    """
    try:
        code = main(None)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 2
    sys.exit(code)
