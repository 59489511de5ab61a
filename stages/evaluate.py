"""Stage evaluate: the candidate's out-of-time test metrics and the DVC plot data.

Ranking metrics on the test features, Card Precision@k per test day (cards and days from the
test split's raw rows, in the same order), the behavioural checks (fraud/model/behaviour.py),
where the data names each fraud's pattern (the generator does) the recall at the threshold
per pattern, and the expected calibration error on the calibration plot's bins (the service
trusts its score-only performance estimate only below a bound). The plot data
(fraud/model/plots.py) is aggregated: curves of at most 200 points, a 2x2 confusion matrix,
calibration on bins fixed around the threshold and the risk bands (``serving``), the score
distribution by class. It measures and writes; the gate and promotion are the promote
stage's (stages/promote.py). With ``compute=dask`` the test split is scored on the workers
and the metrics are computed on the gathered scores.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from fraud.cluster.config import ComputeConfig
from fraud.config import load_params, parse_checked
from fraud.data import schema
from fraud.model.behaviour import run_checks, spike_rows
from fraud.model.metrics import EvaluateConfig, card_precision_at_k, evaluate, recall_by_group
from fraud.model.plots import (
    calibration_edges,
    expected_calibration_error,
    log_edges,
    plot_data,
    score_histogram,
)
from fraud.model.train import TrainConfig, feature_importance
from fraud.runtime.artifact import ModelArtifact, load_artifact
from fraud.runtime.scoring import ServingConfig
from stages.common import parser, read_dataset, read_parquet, run, write_json


def score_local(
    args: Any, artifact: ModelArtifact, _: EvaluateConfig
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame, np.ndarray]:
    """(labels, scores, raw test rows, the feature matrix the behavioural checks use)."""
    test, raw = read_parquet(args.test), read_parquet(args.test_raw)
    x = test[artifact.feature_names].to_numpy(dtype="float64")
    return test[schema.LABEL].to_numpy(dtype="int64"), artifact.model.predict_proba(x), raw, x


def score_dask(
    args: Any, artifact: ModelArtifact, eval_cfg: EvaluateConfig, compute: ComputeConfig
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame, np.ndarray]:
    """``score_local`` on the cluster: rows in ``transaction_id`` order; the checks get the
    first ``max_rows`` rows they may raise."""
    from fraud.cluster.engine import cluster
    from fraud.cluster.training import SCORE, first_rows, scores

    names, spike = artifact.feature_names, eval_cfg.behaviour.amount_spike

    def raisable(x: np.ndarray) -> np.ndarray:
        rows = spike_rows(x, artifact.feature_state, spike)
        return np.zeros(len(x), dtype=bool) if isinstance(rows, str) else rows

    with cluster(compute):
        test, raw = read_dataset(args.test), read_dataset(args.test_raw)
        scored = scores(test, artifact.model, names)
        used = [schema.TRANSACTION_ID, schema.USER_ID, schema.TIMESTAMP, schema.LABEL]
        raw = raw[[c for c in raw.columns if c in {*used, schema.FRAUD_PATTERN}]].compute()
        x = first_rows(test, names, raisable, spike.max_rows)
    raw = raw.sort_values(schema.TRANSACTION_ID, ignore_index=True)
    if not (raw[schema.TRANSACTION_ID].to_numpy() == scored[schema.TRANSACTION_ID]).all():
        raise ValueError(f"{args.test_raw} does not hold the rows of {args.test}")
    return scored[schema.LABEL].to_numpy(dtype="int64"), scored[SCORE].to_numpy(), raw, x


def main(argv: list[str] | None = None) -> int:
    """Score the test split with the verified candidate; write metrics and plot data."""
    args = parser(
        __doc__.splitlines()[0],
        {
            "manifest": "candidate manifest (it names the artifact beside it)",
            "test": "test features parquet",
            "test_raw": "test split of raw transactions (cards and days for Card Precision@k)",
            "metrics": "test metrics JSON (DVC metrics)",
            "plots": "directory for DVC plot data",
        },
    ).parse_args(argv)
    params = load_params(["train", "evaluate", "serving", "compute"], args.params)
    train_cfg = parse_checked(params["train"], TrainConfig, "train")
    eval_cfg = parse_checked(params["evaluate"], EvaluateConfig, "evaluate")
    serving = parse_checked(params["serving"], ServingConfig, "serving")
    compute = parse_checked(params["compute"], ComputeConfig, "compute")
    artifact, _ = load_artifact(args.manifest)
    if compute.distributed:
        y, scores, raw, x = score_dask(args, artifact, eval_cfg, compute)
    else:
        y, scores, raw, x = score_local(args, artifact, eval_cfg)
    if len(raw) != len(y) or not (raw[schema.LABEL].to_numpy() == y).all():
        raise ValueError(f"{args.test_raw} does not hold the rows of {args.test}")
    metrics = evaluate(y, scores, artifact.threshold, train_cfg.threshold)
    k = eval_cfg.card_precision_k
    days = raw[schema.TIMESTAMP].to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")
    cards = raw[schema.USER_ID].to_numpy()
    metrics[f"card_precision_at_{k}"], per_day = card_precision_at_k(cards, days, y, scores, k)
    if schema.FRAUD_PATTERN in raw:  # data that names how each fraud happened (synthetic)
        patterns = raw[schema.FRAUD_PATTERN].to_numpy()
        metrics["recall_by_pattern"] = recall_by_group(patterns, y, scores, artifact.threshold)
    metrics["behaviour"] = run_checks(
        x, artifact.feature_state, artifact.model.predict_proba, eval_cfg.behaviour
    )
    bands = (serving.risk_medium, serving.risk_high)
    edges = calibration_edges(artifact.threshold, bands, eval_cfg.calibration)
    metrics["expected_calibration_error"] = expected_calibration_error(y, scores, edges)
    write_json(metrics, args.metrics)
    write_json(per_day, args.plots / "card_precision.json")

    importance = feature_importance(artifact.model, artifact.feature_names)
    plots = plot_data(y, scores, artifact.threshold, importance, edges)
    for name in ("roc", "pr", "calibration", "feature_importance", "confusion"):
        write_json(plots[name], args.plots / f"{name}.json")
    bins = log_edges(eval_cfg.score_bins.min_edge, eval_cfg.score_bins.per_decade)
    write_json(score_histogram(y, scores, bins), args.plots / "score_histogram.json")
    print(
        f"evaluate: test pr_auc {metrics['pr_auc']:.4f} roc_auc {metrics['roc_auc']:.4f} "
        f"recall@1%fpr {metrics['recall_at_1pct_fpr']:.4f} card_precision@{k} "
        f"{metrics[f'card_precision_at_{k}']:.4f} on {len(y):,} rows, {len(per_day)} days"
    )
    return 0


if __name__ == "__main__":
    run(main)
