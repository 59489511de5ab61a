"""Score a file of transactions offline (`make score`): each row with its score and reasons.

    python -m stages.score --input tx.csv --output scored.csv       # .csv or .parquet, each way

Reads a CSV or Parquet file of raw transactions, computes each row's history from the file
itself (point in time, as training does), scores it with the promoted model (models/, verified
against its manifest as the service does) and writes every input row, in the input's order
and with its own columns, plus fraud_probability, decision, risk_level and the top reasons
(``fraud.offline.score.output_columns``). The output's format follows its suffix and it is
written atomically: on any error nothing is left at OUTPUT (an older file there stays). Exits 2
with a message naming the file, the column and the rows on bad input. Not a DVC stage: it
reads the committed model and the `paths` and `data` sections of params.yaml (``data.columns``
maps a file's own column names, as for the pipeline's input).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TextIO

from fraud.config import PARAMS_FILE, PathsConfig, load_params, parse_checked, parse_section
from fraud.data.synthetic.config import DataConfig
from fraud.offline.score import (
    Scored,
    check_table,
    feature_inputs,
    load_scorer,
    reads_labels,
    score_checked,
)
from fraud.offline.tables import check_suffix, read_table, write_table
from fraud.runtime.artifact import MANIFEST
from fraud.runtime.scoring import Scorer
from stages.common import run


class Progress:
    """A one-line progress bar on ``stream`` (stderr) when it is a terminal and the work has
    taken ``after_s`` already (a long input); redrawn at most every ``every_s``. Quiet in CI
    and logs, as the train stage's progress is."""

    def __init__(self, stream: TextIO | None = None, after_s: float = 0.5, every_s: float = 0.2):
        self.stream = sys.stderr if stream is None else stream
        self.on = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.started = time.monotonic()
        self.after_s, self.every_s = after_s, every_s
        self.shown = -every_s
        self.drawn = False

    def step(self, text: str) -> None:
        """Show the current step (reading, checking, history)."""
        self._draw(f"score: {text}", force=True)

    def rows(self, done: int, total: int) -> None:
        """Show the rows scored so far as a bar."""
        width = 30
        filled = width * done // max(total, 1)
        bar = "#" * filled + "." * (width - filled)
        self._draw(f"score: [{bar}] {done:,}/{total:,} rows", force=done >= total)

    def close(self) -> None:
        """End the bar's line (before the summary, or an error, is printed)."""
        if self.drawn:
            print(file=self.stream, flush=True)
            self.drawn = False

    def _draw(self, text: str, force: bool) -> None:
        now = time.monotonic()
        elapsed = now - self.started
        if (
            not self.on
            or elapsed < self.after_s
            or (not force and now - self.shown < self.every_s)
        ):
            return
        self.shown = now
        self.stream.write(f"\r{text}  {elapsed:.1f} s\x1b[K")
        self.stream.flush()
        self.drawn = True


def summary(scored: Scored, output: Path, seconds: float, scorer: Scorer) -> str:
    """The lines printed when a file is scored: counts, the model, the speed, and what the
    user may want to know about the input (no labels, categories unseen in training)."""
    risk = ", ".join(f"{level} {n:,}" for level, n in scored.risk_counts.items())
    lines = [
        f"score: {scored.rows:,} transactions in {seconds:.1f} s "
        f"({scored.rows / max(seconds, 1e-9):,.0f}/s) with model {scorer.version}: "
        f"{scored.flagged:,} flagged as fraud; risk {risk} -> {output}"
    ]
    if reads_labels(scorer.artifact.feature_state) and not scored.labelled:
        lines.append("score: no is_fraud column: the label-delayed risk features saw no label")
    for name, n in scored.unseen.items():
        lines.append(f"score: {name}: {n:,} row(s) with a value not seen in training (unknown)")
    if scored.replaced:
        lines.append(f"score: replaced the input's column(s) {', '.join(scored.replaced)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Score --input into --output; print the summary."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", type=Path, required=True, help="transactions .csv or .parquet")
    ap.add_argument("--output", type=Path, required=True, help="scored .csv or .parquet")
    ap.add_argument("--model-dir", type=Path, help="default: paths.model_dir (models/)")
    ap.add_argument("--params", type=Path, default=PARAMS_FILE)
    args = ap.parse_args(argv)
    started = time.perf_counter()
    check_suffix(args.output, "output")  # before any work
    check_suffix(args.input, "input")
    if args.input.resolve() == args.output.resolve():
        raise ValueError(f"--output {args.output} is the input file: choose another name")
    params = load_params(["paths", "data"], args.params)
    paths = parse_section(params["paths"], PathsConfig, "paths")
    data = parse_checked(params["data"], DataConfig, "data")
    scorer = load_scorer((args.model_dir or Path(paths.model_dir)) / MANIFEST)
    progress = Progress()
    try:
        progress.step(f"reading {args.input}")
        table = read_table(args.input)
        progress.step(f"checking {table.num_rows:,} rows")
        state = scorer.artifact.feature_state
        clean = check_table(table, state, data.renames(), str(args.input))
        progress.step(f"computing the history of {table.num_rows:,} rows")
        inputs = feature_inputs(clean, state)
        scored = score_checked(table, clean, inputs, scorer, progress.rows)
        progress.step(f"writing {args.output}")
        write_table(scored.table, args.output)
    finally:
        progress.close()
    print(summary(scored, args.output, time.perf_counter() - started, scorer))
    return 0


if __name__ == "__main__":
    run(main)
