"""Stage generate: synthetic transactions from `data`, or ingest an external CSV or Parquet.

With ``data.source=csv`` or ``parquet`` the file ``data.path`` (under the external-data
directory, which is a dependency of this stage, so DVC notices when a file changes) is read,
its columns mapped (``data.columns``), the ones the pipeline does not use listed in one line
and dropped, the rest validated against the schema (every error at once, naming the file) and
written typed. With ``compute=dask`` synthetic users are generated in shards of
``compute.partition_rows`` transactions on the cluster (fraud/cluster/data.py) and written as a
partitioned parquet dataset (a directory); an external file is read here and written the same
way.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fraud.cluster.config import ComputeConfig
from fraud.config import BaseConfig, ConfigError, load_params, parse_checked
from fraud.data.external import read_external
from fraud.data.synthetic.config import DataConfig
from fraud.data.synthetic.generate import generate_transactions
from fraud.data.validate import validate_transactions
from stages.common import parser, run, write_datasets, write_parquet


def ingest(cfg: DataConfig, external_dir: Path) -> tuple[pd.DataFrame, list[str]]:
    """Read, map and validate ``cfg.path``, which must lie inside ``external_dir``; also return
    the names of the file's columns that were left out.

    Validating here, not only in process, lets schema errors name the user's own file.
    """
    if not cfg.path:
        raise ConfigError(f"invalid config 'data.path': required when data.source={cfg.source}")
    path = Path(cfg.path)
    if not path.resolve().is_relative_to(external_dir.resolve()):
        raise ConfigError(
            f"invalid config 'data.path': {path} must be inside {external_dir}/ "
            "(the generate stage's declared dependency)"
        )
    if not path.is_file():
        raise FileNotFoundError(f"data.path {path} does not exist")
    raw, ignored = read_external(path, cfg.source, cfg.renames())
    return validate_transactions(raw, source=str(path)), ignored


def main(argv: list[str] | None = None) -> int:
    """Write the raw transactions table."""
    args = parser(
        __doc__.splitlines()[0],
        {"external": "directory holding external CSV files", "out": "raw transactions parquet"},
    ).parse_args(argv)
    params = load_params(["base", "data", "compute"], args.params)
    base = parse_checked(params["base"], BaseConfig, "base")
    data = parse_checked(params["data"], DataConfig, "data")
    compute = parse_checked(params["compute"], ComputeConfig, "compute")
    if compute.distributed and data.source == "synthetic":
        from fraud.cluster import data as sharded
        from fraud.cluster.engine import cluster

        shards = compute.partitions(data.n_transactions)
        frame = sharded.generate(data, base.seed, shards)
        with cluster(compute):
            write_datasets({args.out: frame})
        print(f"generate: {data.n_transactions:,} transactions in {shards} shards -> {args.out}")
        return 0
    if data.source == "synthetic":
        df = generate_transactions(data, base.seed)
    else:
        df, ignored = ingest(data, args.external)
        if ignored:
            more = f" (+{len(ignored) - 20} more)" if len(ignored) > 20 else ""
            listed = ", ".join(ignored[:20]) + more
            print(f"generate: ignored {len(ignored)} unused column(s): {listed}")
    if compute.distributed:
        import dask.dataframe as dd

        from fraud.cluster.engine import cluster

        with cluster(compute):
            write_datasets({args.out: dd.from_pandas(df, npartitions=compute.partitions(len(df)))})
    else:
        write_parquet(df, args.out)
    print(f"generate: {len(df):,} transactions ({data.source}) -> {args.out}")
    return 0


if __name__ == "__main__":
    run(main)
