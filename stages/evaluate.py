"""Stage evaluate: out-of-time test metrics, DVC plots, the quality gate, and promotion.

Only a candidate that passes the gate is copied into models/ (artifact first, then its
manifest, then its drift reference profile, each atomically). A failing gate exits 1 naming
every failing metric with its value and bound, and models/ keeps the previous model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from fraud.config import load_params, parse_checked
from fraud.data import schema
from fraud.files import atomic_write_bytes, dump_json, sha256_bytes
from fraud.model.gate import GateConfig, gate
from fraud.model.metrics import LABELS, evaluate, plot_data
from fraud.model.train import TrainConfig, feature_importance
from fraud.runtime.artifact import load_artifact
from stages.common import parser, read_parquet, run, write_json


def read_baseline(path: Path) -> dict[str, float] | None:
    """Metrics of the production baseline, or None when the file holds no metrics."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise ValueError(f"baseline {path} is not valid JSON: {exc}") from None
    metrics = data.get("metrics") if isinstance(data, dict) else None
    if metrics is not None and not isinstance(metrics, dict):
        raise ValueError(f"baseline {path}: 'metrics' must be a mapping")
    return metrics


def read_profile(path: Path, sha256: str) -> bytes:
    """The drift reference profile's bytes, refused unless it was built for ``sha256``."""
    data = Path(path).read_bytes()
    try:
        model = json.loads(data).get("model", {})
    except (ValueError, AttributeError) as exc:
        raise ValueError(f"reference profile {path} is not a JSON object: {exc}") from None
    if not isinstance(model, dict) or model.get("sha256") != sha256:
        built_for = model.get("sha256") if isinstance(model, dict) else None
        raise ValueError(
            f"reference profile {path} was built for model {built_for!r}, "
            f"not the candidate {sha256!r}"
        )
    return data


def main(argv: list[str] | None = None) -> int:
    """Evaluate the candidate on test, write metrics/plots/gate report, promote if it passes."""
    args = parser(
        __doc__.splitlines()[0],
        {
            "model": "candidate artifact",
            "manifest": "candidate manifest",
            "test": "test features parquet",
            "baseline": "production baseline metrics JSON",
            "metrics": "test metrics JSON (DVC metrics)",
            "gate_report": "gate verdict JSON",
            "plots": "directory for DVC plot data",
            "promote_model": "promoted artifact path under models/",
            "promote_manifest": "promoted manifest path under models/",
            "profile": "candidate drift reference profile",
            "promote_profile": "promoted reference profile path under models/",
        },
    ).parse_args(argv)
    params = load_params(["train", "gate"], args.params)
    train_cfg = parse_checked(params["train"], TrainConfig, "train")
    gate_cfg = parse_checked(params["gate"], GateConfig, "gate")
    artifact, manifest = load_artifact(args.model, args.manifest)
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

    baseline = read_baseline(args.baseline)
    if gate_cfg.compare_to_baseline:
        if baseline is None:
            print(f"gate: {args.baseline} holds no metrics yet; regression checks skipped")
        elif missing := sorted(set(gate_cfg.max_regression) - set(baseline)):
            raise ValueError(f"baseline {args.baseline} has no {', '.join(missing)}")
    result = gate(metrics, gate_cfg, baseline)
    report: dict[str, Any] = {"passed": result.passed, "checks": result.checks}
    write_json(report, args.gate_report)
    if not result.passed:
        print("gate: FAILED - models/ keeps the previous model")
        for line in result.failures():
            print(f"  - {line}")
        return 1

    # Promote exactly the verified bytes; artifact first, so a manifest never names bytes that
    # are not there (a crash in between leaves a pair that fails verification, never a mix).
    data = args.model.read_bytes()
    if sha256_bytes(data) != manifest["sha256"]:
        raise ValueError(f"{args.model} changed while it was being evaluated")
    profile = read_profile(args.profile, manifest["sha256"])
    promoted = dict(manifest, artifact=args.promote_model.name, test_metrics=metrics, gate=report)
    atomic_write_bytes(args.promote_model, data)
    atomic_write_bytes(args.promote_manifest, dump_json(promoted))
    atomic_write_bytes(args.promote_profile, profile)
    print(
        f"gate: passed - test pr_auc {metrics['pr_auc']:.4f} roc_auc {metrics['roc_auc']:.4f} "
        f"recall@1%fpr {metrics['recall_at_1pct_fpr']:.4f}; promoted to {args.promote_model}"
    )
    return 0


if __name__ == "__main__":
    run(main)
