"""Stage process: validate the schema, clean, and split by time (train < valid < test).

``split=time`` cuts by row shares; ``split=dates`` by calendar dates with the label delay,
writing the delay gap's rows as a history-only part (empty for the share split). With
``compute=dask`` the workers validate and cut their partitions (fraud/cluster/data.py) into
partitioned parquet datasets.
"""

from __future__ import annotations

from fraud.cluster.config import ComputeConfig
from fraud.config import load_params, parse_checked
from fraud.data import schema
from fraud.data.split import PARTS, parse_split_config
from fraud.data.validate import validate_transactions
from stages.common import parser, read_dataset, read_parquet, run, write_datasets, write_parquet


def main(argv: list[str] | None = None) -> int:
    """Write the time-ordered parts."""
    args = parser(
        __doc__.splitlines()[0],
        {
            "input": "raw transactions parquet",
            "train": "train split parquet",
            "valid": "valid split parquet",
            "test": "test split parquet",
            "history": "history-only rows parquet (the label-delay gap of split=dates)",
        },
    ).parse_args(argv)
    params = load_params(["split", "compute"], args.params)
    cfg = parse_split_config(params["split"])
    compute = parse_checked(params["compute"], ComputeConfig, "compute")
    if compute.distributed:
        from fraud.cluster import data as sharded
        from fraud.cluster.engine import cluster

        with cluster(compute):
            frames, parts = sharded.split(read_dataset(args.input), cfg, str(args.input))
            write_datasets({getattr(args, name): frames[name] for name in PARTS})
    else:
        clean = validate_transactions(read_parquet(args.input), source=str(args.input))
        parts = cfg.split(clean)
        for name in PARTS:
            write_parquet(parts[name], getattr(args, name))
    for name in PARTS:
        part = parts[name]
        if part.empty:
            continue
        first, last = part[schema.TIMESTAMP].iloc[[0, -1]]
        print(
            f"process: {name:7s} {len(part):>9,} rows, fraud {part[schema.LABEL].mean():.2%}, "
            f"{first:%Y-%m-%d %H:%M} .. {last:%Y-%m-%d %H:%M}"
        )
    return 0


if __name__ == "__main__":
    run(main)
