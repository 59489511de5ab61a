"""Benchmark `make score`: transactions per second end to end, on 1M rows and the test split.

    python -m benchmarks.score [--runs 2] [--rows N]

Writes the pipeline's own transactions (data/raw/transactions.parquet, 1,000,000 rows in
production: `dvc repro` or `dvc pull` makes it) to a scratch CSV and Parquet file with the raw
columns a user's export has (ids, time, amount, categories, label), and the test split
(data/processed/test.parquet, ~150,000 rows) to a CSV, then times the real command,
`python -m stages.score --input ... --output ...` with the committed model, from process start
to exit (interpreter, imports, model verification, reading, checks, history, scoring,
writing), ``--runs`` times each, with its peak RSS. One more in-process run per input splits
the time into those steps. The machine is shared and its speed varies: every run is kept,
with the load average around them.
Writes benchmarks/results/score.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

from benchmarks.pipeline import measured
from fraud.data import schema
from fraud.offline import score as offline
from fraud.offline.tables import read_table, write_table
from tests.conftest import REPO

TARGET_TRANSACTIONS_PER_SECOND = 100_000
#: The raw columns of a transactions export (hour and day are derived from the time).
COLUMNS = list(schema.CORE_COLUMNS)


def inputs(root: Path, rows: int | None) -> dict[str, Path]:
    """The benchmark's input files, written from the pipeline's data."""
    raw = pq.read_table(REPO / "data/raw/transactions.parquet", columns=COLUMNS)
    if rows is not None:
        raw = raw.slice(0, rows)
    test = pq.read_table(REPO / "data/processed/test.parquet", columns=COLUMNS)
    files = {
        "transactions_csv": (raw, root / "transactions.csv"),
        "transactions_parquet": (raw, root / "transactions.parquet"),
        "test_split_csv": (test, root / "test.csv"),
    }
    for table, path in files.values():
        write_table(table, path)
    return {name: path for name, (_, path) in files.items()}


def phases(source: Path, output: Path) -> dict[str, float]:
    """Seconds per step of one in-process run (the imports already done)."""
    seconds: dict[str, float] = {}
    started = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal started
        now = time.perf_counter()
        seconds[name] = round(now - started, 2)
        started = now

    scorer = offline.load_scorer(REPO / "models/manifest.json")
    state = scorer.artifact.feature_state
    lap("load_model")
    table = read_table(source)
    lap("read")
    clean = offline.check_table(table, state, {}, str(source))
    lap("check")
    history = offline.feature_inputs(clean, state)
    lap("history")
    scored = offline.score_checked(table, clean, history, scorer)
    lap("score")
    write_table(scored.table, output)
    lap("write")
    return seconds


def bench(name: str, source: Path, root: Path, runs: int) -> dict:
    """``runs`` timed runs of the command on ``source``, then the per-step split."""
    rows = pq.read_metadata(source).num_rows if source.suffix == ".parquet" else None
    output = root / f"scored-{name}{source.suffix}"
    command = [sys.executable, "-m", "stages.score", "--input", str(source), "--output"]
    timed = []
    load_before = os.getloadavg()[0]
    for _ in range(runs):
        seconds, peak, rc = measured([*command, str(output)], REPO)
        if rc != 0:
            raise SystemExit(f"make score failed on {source}")
        timed.append((seconds, peak))
    if rows is None:
        rows = read_table(output).num_rows
    rates = [round(rows / seconds) for seconds, _ in timed]
    result = {
        "input": f"{source.suffix[1:]}, {source.stat().st_size / 2**20:.0f} MiB",
        "rows": rows,
        "seconds": [round(seconds, 2) for seconds, _ in timed],
        "transactions_per_second": rates,
        "median_transactions_per_second": round(statistics.median(rates)),
        "peak_rss_mib": round(max(peak for _, peak in timed), 1),
        # the machine's 1-minute load before and after the runs: other work shares the cores
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "steps_seconds": phases(source, output),
    }
    print(f"{name:22s} {rows:>9,} rows: {rates} transactions/s", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=2, help="timed runs per input")
    ap.add_argument("--rows", type=int, help="only the first N transactions (a quick look)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-score-") as tmp:
        root = Path(tmp)
        results = {
            name: bench(name, path, root, args.runs)
            for name, path in inputs(root, args.rows).items()
        }
    result = {
        "model": json.loads((REPO / "models/manifest.json").read_text())["sha256"][:12],
        "command": "python -m stages.score --input FILE --output FILE (make score)",
        "runs": results,
        "target_transactions_per_second": TARGET_TRANSACTIONS_PER_SECOND,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "score.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{path}:\n{json.dumps(result, indent=2)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
