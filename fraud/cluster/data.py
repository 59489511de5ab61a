"""Generate and split on Dask: synthetic users sharded over partitions, and the time split.

Each shard is ``generate_transactions`` of its share of the users, transactions and merchants,
with its own seed drawn from ``(seed, shard)``: deterministic per shard, independent of which
worker runs it. A shard's ids carry its number (``s0003_u_000012``), so ids stay unique; its
merchants are its own (regional shops, each with its own compromised-merchant episodes).

The split gathers only the timestamp and the label of every row (9 bytes a row) and runs the
single-machine split on them, which gives each part's time range (parts never share a
timestamp); the workers then cut their partitions by those ranges.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fraud.data import schema
from fraud.data.split import PARTS, DateSplitConfig, SplitConfig
from fraud.data.synthetic.config import DataConfig
from fraud.data.synthetic.generate import generate_transactions
from fraud.data.validate import validate_transactions

if TYPE_CHECKING:
    import dask.dataframe as dd

_IDS = (schema.TRANSACTION_ID, schema.USER_ID, schema.MERCHANT_ID, schema.DEVICE_ID)


def _share(total: int, shards: int, shard: int) -> int:
    """Shard ``shard``'s share of ``total`` (the first ``total % shards`` get one more)."""
    return total // shards + (1 if shard < total % shards else 0)


def shard_config(cfg: DataConfig, shards: int, shard: int) -> DataConfig:
    """The generator config of one shard: its share of transactions, users and merchants."""
    merchants = cfg.merchant_count()
    return replace(
        cfg,
        n_transactions=_share(cfg.n_transactions, shards, shard),
        n_users=max(1, _share(cfg.n_users, shards, shard)),
        n_merchants=max(len(schema.MERCHANT_CATEGORIES), _share(merchants, shards, shard)),
    )


def shard_seed(seed: int, shard: int) -> int:
    """The shard's own seed, drawn from ``(seed, shard)``."""
    return int(np.random.SeedSequence([seed, shard]).generate_state(1)[0])


def generate_shard(cfg: DataConfig, seed: int, shards: int, shard: int) -> pd.DataFrame:
    """One shard's transactions, ids prefixed with the shard number."""
    frame = generate_transactions(shard_config(cfg, shards, shard), shard_seed(seed, shard))
    prefix = f"s{shard:04d}_"
    for col in _IDS:
        frame[col] = prefix + frame[col]
    return frame


def generate(cfg: DataConfig, seed: int, shards: int) -> dd.DataFrame:
    """The sharded synthetic table, one partition per shard (lazy)."""
    import dask.dataframe as dd

    cfg.check()
    too_small = next(
        (i for i in range(shards) if shard_config(cfg, shards, i).n_transactions < 2 * 15), None
    )
    if too_small is not None:
        raise ValueError(
            f"compute.partition_rows is too small for data.n_transactions="
            f"{cfg.n_transactions}: shard {too_small} would get too few transactions"
        )
    meta = generate_shard(replace(cfg, n_transactions=2000, n_users=100), seed, 1, 0).iloc[:0]
    return dd.from_map(
        generate_shard,
        [cfg] * shards,
        [seed] * shards,
        [shards] * shards,
        list(range(shards)),
        meta=meta,
        enforce_metadata=False,
    )


def _validated(pdf: pd.DataFrame, source: str) -> pd.DataFrame:
    return validate_transactions(pdf, source=source).reset_index(drop=True)


def _between(pdf: pd.DataFrame, first: np.datetime64, last: np.datetime64) -> pd.DataFrame:
    ts = pdf[schema.TIMESTAMP].to_numpy(dtype="datetime64[ns]")
    return pdf[(ts >= first) & (ts <= last)].reset_index(drop=True)


def split(
    raw: dd.DataFrame, cfg: SplitConfig | DateSplitConfig, source: str
) -> tuple[dict[str, dd.DataFrame], dict[str, pd.DataFrame]]:
    """``PARTS`` of the validated table (lazy), and the gathered (timestamp, label) frame of
    each part for the summary lines. Each partition is validated on its own (duplicate ids
    across partitions are not looked for)."""
    clean = raw.map_partitions(_validated, source, meta=raw._meta)
    gathered = clean[[schema.TIMESTAMP, schema.LABEL]].compute()
    ts = gathered[schema.TIMESTAMP].to_numpy(dtype="datetime64[ns]")
    order = np.argsort(ts, kind="stable")
    small = gathered.iloc[order].reset_index(drop=True)
    small[schema.TRANSACTION_ID] = np.arange(len(small))  # time order: ties keep any order
    parts = cfg.split(small)
    out: dict[str, dd.DataFrame] = {}
    for name in PARTS:
        part = parts[name][schema.TIMESTAMP].to_numpy(dtype="datetime64[ns]")
        if len(part):
            out[name] = clean.map_partitions(_between, part[0], part[-1], meta=clean._meta)
        else:
            out[name] = clean.map_partitions(lambda pdf: pdf.iloc[:0], meta=clean._meta)
    return out, parts
