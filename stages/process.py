"""Stage process: validate the schema, clean, and split by time into train < valid < test."""

from __future__ import annotations

from fraud.config import load_params, parse_checked
from fraud.data import schema
from fraud.data.validate import SplitConfig, time_split, validate_transactions
from stages.common import parser, read_parquet, run, write_parquet


def main(argv: list[str] | None = None) -> int:
    """Write the three time-ordered splits."""
    args = parser(
        __doc__.splitlines()[0],
        {
            "input": "raw transactions parquet",
            "train": "train split parquet",
            "valid": "valid split parquet",
            "test": "test split parquet",
        },
    ).parse_args(argv)
    cfg = parse_checked(load_params(["split"], args.params)["split"], SplitConfig, "split")
    clean = validate_transactions(read_parquet(args.input), source=str(args.input))
    for name, part in zip(("train", "valid", "test"), time_split(clean, cfg), strict=True):
        write_parquet(part, getattr(args, name))
        first, last = part[schema.TIMESTAMP].iloc[[0, -1]]
        print(
            f"process: {name:5s} {len(part):>9,} rows, fraud {part[schema.LABEL].mean():.2%}, "
            f"{first:%Y-%m-%d %H:%M} .. {last:%Y-%m-%d %H:%M}"
        )
    return 0


if __name__ == "__main__":
    run(main)
