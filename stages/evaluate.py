"""Stage evaluate: the candidate's out-of-time test metrics and the DVC plot data.

It measures and writes; the gate and promotion are the promote stage's (stages/promote.py).
"""

from __future__ import annotations

import pandas as pd

from fraud.config import load_params, parse_checked
from fraud.data import schema
from fraud.files import atomic_write_bytes
from fraud.model.metrics import LABELS, evaluate, plot_data
from fraud.model.train import TrainConfig, feature_importance
from fraud.runtime.artifact import load_artifact
from stages.common import parser, read_parquet, run, write_json


def main(argv: list[str] | None = None) -> int:
    """Score the test split with the verified candidate; write metrics and plot data."""
    args = parser(
        __doc__.splitlines()[0],
        {
            "model": "candidate artifact",
            "manifest": "candidate manifest",
            "test": "test features parquet",
            "metrics": "test metrics JSON (DVC metrics)",
            "plots": "directory for DVC plot data",
        },
    ).parse_args(argv)
    train_cfg = parse_checked(load_params(["train"], args.params)["train"], TrainConfig, "train")
    artifact, _ = load_artifact(args.model, args.manifest)
    test = read_parquet(args.test)
    y = test[schema.LABEL].to_numpy(dtype="int64")
    scores = artifact.model.predict_proba(test[artifact.feature_names].to_numpy(dtype="float64"))
    metrics = evaluate(y, scores, artifact.threshold, train_cfg.threshold)
    write_json(metrics, args.metrics)

    importance = feature_importance(artifact.model, artifact.feature_names)
    plots = plot_data(y, scores, artifact.threshold, importance)
    for name in ("roc", "pr", "calibration", "feature_importance"):
        write_json(plots[name], args.plots / f"{name}.json")
    predicted = (scores >= artifact.threshold).astype(int)
    confusion = pd.DataFrame(
        {"actual": pd.Series(y).map(LABELS), "predicted": pd.Series(predicted).map(LABELS)}
    )
    atomic_write_bytes(args.plots / "confusion.csv", confusion.to_csv(index=False).encode())
    print(
        f"evaluate: test pr_auc {metrics['pr_auc']:.4f} roc_auc {metrics['roc_auc']:.4f} "
        f"recall@1%fpr {metrics['recall_at_1pct_fpr']:.4f} on {len(y):,} rows"
    )
    return 0


if __name__ == "__main__":
    run(main)
