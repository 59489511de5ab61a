"""Export production traffic as a training set: the audit log joined with feedback labels.

    python -m stages.export                          # PREDICTION_LOG_DIR's audit log
    python -m stages.export --log /var/log/fraud     # another audit log directory
    make export-production EXPORT_ARGS="--log DIR"

Each transaction once, by its latest prediction, with the raw transaction columns the service
logged; labelled by its current feedback label; as card issuers do, unlabelled and scored more
than ``performance.genuine_after_days`` before the newest prediction: genuine; unlabelled and
more recent: left out (``fraud.monitoring.export``). Writes ``<paths.external>/production.parquet``
(the own-data path reads it: ``make retrain ARGS="data.source=parquet
data.path=data/external/production.parquet"``) and a summary JSON beside the performance
report (``<paths.drift_reports>/production_export.json``) that states the rule and the counts.
Exit 0, or 2 (an error: no audit log, no row to train on).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pandas as pd

from fraud.config import PARAMS_FILE, load_params, load_paths, parse_checked
from fraud.data import schema
from fraud.monitoring.auditlog import read_all, read_labels
from fraud.monitoring.export import training_rows
from fraud.monitoring.performance import PerformanceConfig
from stages.common import run, write_json, write_parquet

OUT_NAME = "production.parquet"


def export(directory: Path, genuine_after_s: float | None) -> tuple[pd.DataFrame, dict]:
    """The training rows of audit log ``directory`` and the summary."""
    if not directory.is_dir():
        raise FileNotFoundError(f"audit log directory not found: {directory}")
    columns, summary = training_rows(read_all(directory), read_labels(directory), genuine_after_s)
    if not summary["rows"]:
        raise ValueError(f"{directory}: no transaction to train on ({summary['rule']})")
    frame = pd.DataFrame(columns)
    frame[schema.AMOUNT] = frame[schema.AMOUNT].astype("float64")
    return frame, {"source": str(directory), **summary}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--log", type=Path, help="audit log directory (default PREDICTION_LOG_DIR)")
    ap.add_argument("--out", type=Path, help=f"default: <paths.external>/{OUT_NAME}")
    ap.add_argument("--summary", type=Path, help="default: <paths.drift_reports>/...json")
    ap.add_argument("--params", type=Path, default=PARAMS_FILE)
    args = ap.parse_args(argv)
    section = load_params(["performance"], args.params)["performance"]
    cfg = parse_checked(section, PerformanceConfig, "performance")
    paths = load_paths(args.params)
    directory = args.log or os.environ.get("PREDICTION_LOG_DIR")
    if not directory:
        ap.error("give --log DIR (or set PREDICTION_LOG_DIR)")
    days = cfg.genuine_after_days
    frame, summary = export(Path(directory), None if days is None else days * 86_400)
    out = args.out or Path(paths.external) / OUT_NAME
    summary_out = args.summary or Path(paths.drift_reports) / "production_export.json"
    write_parquet(frame, out)
    write_json({**summary, "out": str(out)}, summary_out)
    print(
        f"export: {summary['rows']:,} of {summary['transactions']:,} transactions -> {out} "
        f"({summary['frauds']:,} fraud; {summary['labelled_by_feedback']:,} labelled by "
        f"feedback, {summary['assumed_genuine']:,} genuine by the delay rule; left out "
        f"{summary['left_out_unlabelled']:,} unlabelled recent, "
        f"{summary['left_out_incomplete']:,} incomplete)\nexport: rule: {summary['rule']}"
    )
    return 0


if __name__ == "__main__":
    run(main)
