"""Benchmark the online store in-process: batches of 1,000 on the predict and feedback paths.

    python -m benchmarks.store [--url sqlite|redis://...] [--batches 30] [--keep DIR]

Materializes history + train + valid of the production data for models/ into a fresh store
(SQLite in a temporary directory by default), reports its size per entity and in total, then
replays the production test split in time order through ``OnlineStore.record`` in batches of
1,000 (the predict path: load, compute, save, commit) and labels each recorded batch through
``OnlineStore.label`` (the feedback path). Per batch: wall and CPU ms by phase (the backend's
load, the computation, the version check, the save and the commit, measured by wrapping the
backend's functions) and the MiB of parts written. No HTTP: what the store itself costs, the
part a server's batch cannot go faster than. Writes benchmarks/results/store.json.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.serve import write_result
from fraud.config import load_paths
from fraud.runtime.artifact import MANIFEST, load_artifact
from fraud.store import OnlineStore, open_backend, store_size
from fraud.store.labels import Labels
from fraud.store.layout import Batch
from fraud.store.online import OnlineFeatures
from stages import materialize
from tests.conftest import REPO

TARGETS = {"predict_batch_1000_cpu_ms": 33.0, "feedback_batch_1000_cpu_ms": 25.0}
BATCH = 1000
SPLITS = ("history", "train", "valid")
#: The SQLite backend's functions timed as phases (its ``PHASES`` when it declares them).
_PHASES = {"_load": "load", "_events": "check", "_save": "save"}


class Phases:
    """Seconds per phase of the current batch, from wrapped backend functions."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.written = 0

    def wrap(self, module: Any, name: str, phase: str) -> None:
        inner = getattr(module, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.seconds[phase] += time.perf_counter() - started

        setattr(module, name, timed)

    def compute(self, fn: Any) -> Any:
        def timed(loaded: Any) -> Any:
            started = time.perf_counter()
            result, changes = fn(loaded)
            self.seconds["compute"] += time.perf_counter() - started
            self.written += sum(
                len(key) + len(data or b"")
                for key, parts in changes.items()
                for data in parts.values()
            )
            return result, changes

        return timed


def instrument(store: OnlineStore, phases: Phases) -> None:
    """Time the backend's phases of ``store`` (SQLite: its module functions)."""
    backend = store.backend
    if backend.__class__.__module__ == "fraud.store.sqlite":
        from fraud.store import sqlite

        for name, phase in getattr(sqlite, "PHASES", _PHASES).items():
            phases.wrap(sqlite, name, phase)
    transact = backend.transact

    def timed(keys: list[str], compute: Any, optimistic: bool = True) -> Any:
        return transact(keys, phases.compute(compute), optimistic)

    backend.transact = timed  # type: ignore[method-assign]


def run_batches(
    store: OnlineStore, phases: Phases, test: pd.DataFrame, batches: int
) -> dict[str, Any]:
    """Predict-path then feedback-path batches of ``BATCH``; per-phase medians."""
    rows: dict[str, list[dict[str, float]]] = {"predict": [], "feedback": []}
    rng = np.random.default_rng(0)
    for k in range(batches):
        chunk = test.iloc[k * BATCH : (k + 1) * BATCH]
        batch = materialize.frame_batch(chunk, store.features)
        batch.label[:] = -1  # live traffic: labels unknown
        labels = Labels(
            t=batch.t.copy(),
            id=batch.id.copy(),
            label=rng.integers(0, 2, len(batch)).astype(np.int8),
            entities=batch.entities,
        )
        for path, call in (
            ("predict", lambda b=batch: store.record(b)),
            ("feedback", lambda lb=labels: store.label(lb)),
        ):
            phases.seconds.clear()
            phases.written = 0
            cpu, wall = time.process_time(), time.perf_counter()
            call()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            split = dict(phases.seconds)
            other = wall - sum(split.values())
            rows[path].append(
                {
                    "wall_ms": wall * 1e3,
                    "cpu_ms": cpu * 1e3,
                    **{f"{p}_ms": s * 1e3 for p, s in split.items()},
                    "other_ms": other * 1e3,
                    "mib_written": phases.written / 2**20,
                }
            )
    out = {}
    for path, measured in rows.items():
        warm = measured[2:] if len(measured) > 4 else measured  # caches warm
        names = dict.fromkeys(n for row in warm for n in row)
        out[path] = {
            "batches": len(warm),
            **{n: round(statistics.median(r.get(n, 0.0) for r in warm), 3) for n in names},
        }
        out[path]["transactions_per_second_cpu"] = round(BATCH / out[path]["cpu_ms"] * 1e3)
    return out


def run_singles(
    store: OnlineStore, phases: Phases, test: pd.DataFrame, start: int, n: int
) -> dict[str, Any]:
    """``n`` transactions recorded one at a time (the /predict path), from row ``start``:
    microseconds per transaction by phase (medians), after ``n // 10`` to warm up."""
    chunk = test.iloc[start : start + n]
    batch = materialize.frame_batch(chunk, store.features)
    batch.label[:] = -1
    rows = []
    for i in range(n):
        one = Batch(
            t=batch.t[i : i + 1],
            id=batch.id[i : i + 1],
            amount=batch.amount[i : i + 1],
            label=batch.label[i : i + 1],
            entities={c: v[i : i + 1] for c, v in batch.entities.items()},
            values={c: v[i : i + 1] for c, v in batch.values.items()},
        )
        phases.seconds.clear()
        cpu, wall = time.process_time(), time.perf_counter()
        store.record(one)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        split = {f"{p}_us": v * 1e6 for p, v in phases.seconds.items()}
        rows.append({"wall_us": wall * 1e6, "cpu_us": cpu * 1e6, **split})
        rows[-1]["other_us"] = rows[-1]["wall_us"] - sum(split.values())
    warm = rows[n // 10 :]
    names = dict.fromkeys(k for row in warm for k in row)
    return {
        "transactions": len(warm),
        **{k: round(statistics.median(r.get(k, 0.0) for r in warm), 1) for k in names},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="sqlite", help="sqlite (a temporary file) or a store URL")
    ap.add_argument("--batches", type=int, default=30, help="batches of 1,000 per path")
    ap.add_argument(
        "--db",
        type=Path,
        help="SQLite only: copy this materialized file instead of materializing (it is "
        "written there first when absent); the format must be the current one",
    )
    ap.add_argument("--singles", type=int, default=2000, help="transactions recorded one by one")
    ap.add_argument("--profile", type=Path, help="write a cProfile of the batches here")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results/store.json")
    args = ap.parse_args(argv)
    paths = load_paths(REPO / "params.yaml")
    artifact, manifest = load_artifact(Path(paths.model_dir) / MANIFEST)
    features = OnlineFeatures(artifact.feature_state)
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        url = f"sqlite:///{tmp}/features.db" if args.url == "sqlite" else args.url
        started = time.perf_counter()
        db = Path(url.removeprefix("sqlite:///"))
        if args.db is not None and args.db.exists() and url.startswith("sqlite:///"):
            shutil.copyfile(args.db, db)
        else:
            assert materialize.main(["--url", url, "--splits", *SPLITS]) == 0
            if args.db is not None and url.startswith("sqlite:///"):
                shutil.copyfile(db, args.db)
        filled = time.perf_counter() - started
        store = OnlineStore(open_backend(url), features)
        sizes = store_size(store.backend)
        total = {k: sum(s[k] for s in sizes.values()) for k in ("keys", "events", "bytes")}
        size = {
            name: {"keys": s["keys"], "events": s["events"], "mib": round(s["bytes"] / 2**20, 1)}
            for name, s in [*sizes.items(), ("total", total)]
        }
        if url.startswith("sqlite:///"):
            size["sqlite_file_mib"] = round(db.stat().st_size / 2**20, 1)
        test = pd.read_parquet(Path(paths.processed.test)).sort_values("timestamp", kind="stable")
        phases = Phases()
        instrument(store, phases)
        if args.profile:
            import cProfile

            profiler = cProfile.Profile()
            measured = profiler.runcall(run_batches, store, phases, test, args.batches)
            profiler.dump_stats(args.profile)
        else:
            measured = run_batches(store, phases, test, args.batches)
        start = args.batches * BATCH
        measured["predict_one"] = run_singles(store, phases, test, start, args.singles)
        store.backend.close()
    result = {
        "backend": "sqlite (temporary file)" if args.url == "sqlite" else url.split("@")[-1],
        "model": manifest["sha256"][:12],
        "materialize": " + ".join(SPLITS),
        "materialize_seconds": round(filled, 1),
        "store_size": size,
        "batch": BATCH,
        "traffic": "production test split in time order; labels of each recorded batch",
        **measured,
        "targets": TARGETS,
    }
    write_result(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
