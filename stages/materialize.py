"""Fill the online feature store from the offline data, so a freshly deployed service scores
returning cards, merchants and devices with their real history.

    python -m stages.materialize                       # the store of FEATURE_STORE_URL
    python -m stages.materialize --url redis://host:6379/0 --splits train valid

Replays the processed splits (all by default: history, train, valid, test) through the store in
time order, labels included, for the served model's feature config (models/): exactly what the
service would have recorded had it seen that traffic. Each key keeps what its windows need and
folds the rest into its all-history aggregates, so the store ends bounded. The store is cleared
first (``--keep`` adds instead). Not a DVC stage: the store is live state, not an artifact.
Run it after a retrain that changed the feature windows, and when a service starts on an empty
store (a new machine, a new Redis).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from fraud.config import PARAMS_FILE, load_paths
from fraud.data import schema
from fraud.runtime.artifact import MANIFEST, load_artifact
from fraud.store import DEFAULT_URL, OnlineStore, open_backend, store_size
from fraud.store.layout import Batch, event_id
from fraud.store.online import OnlineFeatures
from stages.common import read_parquet, run

SPLITS = ("history", "train", "valid", "test")
CHUNK = 50_000


def frame_batch(df: pd.DataFrame, features: OnlineFeatures) -> Batch:
    """Processed rows (with ``is_fraud``) as a store batch."""
    n = len(df)
    ts = pd.DatetimeIndex(df[schema.TIMESTAMP]).as_unit("ms").asi8
    label = df[schema.LABEL].to_numpy(dtype=np.float64, na_value=np.nan)
    return Batch(
        t=np.asarray(ts, dtype=np.int64),
        id=np.fromiter(map(event_id, df[schema.TRANSACTION_ID].astype(str)), np.int64, n),
        amount=df[schema.AMOUNT].to_numpy(np.float64),
        label=np.where(label == 1, 1, np.where(label == 0, 0, -1)).astype(np.int8),
        entities={c: df[c].astype(str).tolist() for c in features.entity_columns},
        values={c: df[c].astype(str).tolist() for c in features.novelty.values()},
    )


def materialize(store: OnlineStore, df: pd.DataFrame, chunk: int = CHUNK) -> dict[str, int]:
    """Record ``df`` in time order, ``chunk`` rows per store transaction; counts of what
    was recorded, already there and refused as too late."""
    df = df.sort_values(schema.TIMESTAMP, kind="stable")
    counts = {"recorded": 0, "duplicate": 0, "late": 0}
    for start in range(0, len(df), chunk):
        result = store.record(frame_batch(df.iloc[start : start + chunk], store.features))
        counts["late"] += int(result.late.sum())
        counts["duplicate"] += int(result.duplicate.sum())
        counts["recorded"] += int((~(result.late | result.duplicate)).sum())
    return counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--url",
        default=os.environ.get("FEATURE_STORE_URL") or DEFAULT_URL,
        help="store URL (default: FEATURE_STORE_URL, else %(default)s)",
    )
    ap.add_argument("--splits", nargs="+", choices=SPLITS, default=list(SPLITS))
    ap.add_argument("--model-dir", type=Path, help="default: paths.model_dir (models/)")
    ap.add_argument("--keep", action="store_true", help="add to the store instead of clearing")
    ap.add_argument(
        "--max-lateness",
        type=int,
        default=int(os.environ.get("FEATURE_STORE_MAX_LATENESS") or 86_400),
        help="seconds kept beyond the windows (default: FEATURE_STORE_MAX_LATENESS, 86400)",
    )
    ap.add_argument("--params", type=Path, default=PARAMS_FILE)
    args = ap.parse_args(argv)
    paths = load_paths(args.params)
    artifact, manifest = load_artifact((args.model_dir or Path(paths.model_dir)) / MANIFEST)
    state = artifact.feature_state
    features = OnlineFeatures(state, args.max_lateness * 1000)
    if not features.columns:
        print("the served model uses no history: nothing to materialize")
        return 0
    frames = [read_parquet(Path(getattr(paths.processed, s))) for s in args.splits]
    df = pd.concat([f for f in frames if len(f)], ignore_index=True)
    missing = [c for c in (schema.TRANSACTION_ID, *features.entity_columns) if c not in df]
    if missing:
        raise ValueError(f"processed data lacks {', '.join(missing)}: cannot materialize")
    backend = open_backend(args.url.strip())
    store = OnlineStore(backend, features)
    started = time.perf_counter()
    if not args.keep:
        backend.clear()
    counts = materialize(store, df)
    seconds = time.perf_counter() - started
    sizes = store_size(backend)
    print(
        f"materialized {len(df):,} transactions ({', '.join(args.splits)}) into {backend.name} "
        f"for model {manifest['sha256'][:12]} in {seconds:.1f} s ({len(df) / seconds:,.0f}/s): "
        + ", ".join(f"{v:,} {k}" for k, v in counts.items())
    )
    total = {k: sum(s[k] for s in sizes.values()) for k in ("keys", "events", "bytes")}
    for name, s in [*sizes.items(), ("total", total)]:
        print(
            f"  {name:9s} {s['keys']:>9,} keys {s['events']:>10,} events kept "
            f"{s['bytes'] / 2**20:>8.1f} MiB"
        )
    backend.close()
    return 0


if __name__ == "__main__":
    run(main)
