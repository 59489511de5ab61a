"""Stage generate: synthetic transactions from `data`, or ingest an external CSV.

With ``data.source=csv`` the file ``data.path`` (under the external-data directory, which is a
dependency of this stage, so DVC notices when a file changes) is read as text and passed on
untouched; the process stage validates and types it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fraud.config import ConfigError
from fraud.generate import DataConfig, generate_transactions
from stages.common import load_params, parser, run, write_parquet
from stages.params import section


def ingest_csv(cfg: DataConfig, external_dir: Path) -> pd.DataFrame:
    """Read ``cfg.path`` as strings; it must lie inside ``external_dir``."""
    if not cfg.path:
        raise ConfigError("invalid config 'data.path': required when data.source=csv")
    path = Path(cfg.path)
    if not path.resolve().is_relative_to(external_dir.resolve()):
        raise ConfigError(
            f"invalid config 'data.path': {path} must be inside {external_dir}/ "
            "(the generate stage's declared dependency)"
        )
    if not path.is_file():
        raise FileNotFoundError(f"data.path {path} does not exist")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise ValueError(f"cannot read CSV {path}: {exc}") from None


def main(argv: list[str] | None = None) -> int:
    """Write the raw transactions table."""
    args = parser(
        __doc__.splitlines()[0],
        {"external": "directory holding external CSV files", "out": "raw transactions parquet"},
    ).parse_args(argv)
    params = load_params(["base", "data"], args.params)
    base, data = section(params, "base"), section(params, "data")
    if data.source == "synthetic":
        df = generate_transactions(data, base.seed)
    elif data.source == "csv":
        df = ingest_csv(data, args.external)
    else:
        raise ConfigError(f"invalid config 'data.source': {data.source!r} is not synthetic or csv")
    write_parquet(df, args.out)
    print(f"generate: {len(df):,} transactions ({data.source}) -> {args.out}")
    return 0


if __name__ == "__main__":
    run(main)
