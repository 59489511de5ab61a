"""Stage generate: synthetic transactions from `data`, or ingest an external CSV.

With ``data.source=csv`` the file ``data.path`` (under the external-data directory, which is a
dependency of this stage, so DVC notices when a file changes) is read, validated against the
schema (errors name the file) and written typed.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fraud.config import BaseConfig, ConfigError, load_params, parse_checked
from fraud.data.synthetic.config import DataConfig
from fraud.data.synthetic.generate import generate_transactions
from fraud.data.validate import validate_transactions
from stages.common import parser, run, write_parquet


def ingest_csv(cfg: DataConfig, external_dir: Path) -> pd.DataFrame:
    """Read and validate ``cfg.path``; it must lie inside ``external_dir``.

    Validating here, not only in process, lets schema errors name the user's own file.
    """
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
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise ValueError(f"cannot read CSV {path}: {exc}") from None
    return validate_transactions(raw, source=str(path))


def main(argv: list[str] | None = None) -> int:
    """Write the raw transactions table."""
    args = parser(
        __doc__.splitlines()[0],
        {"external": "directory holding external CSV files", "out": "raw transactions parquet"},
    ).parse_args(argv)
    params = load_params(["base", "data"], args.params)
    base = parse_checked(params["base"], BaseConfig, "base")
    data = parse_checked(params["data"], DataConfig, "data")
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
