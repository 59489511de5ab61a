"""Stage promote: the quality gate, and promotion of a passing candidate into models/.

The gate reads the candidate's test metrics (the evaluate stage's) and, for production, the
baseline. A failing gate exits 1 naming every failing metric with its value and bound, and
models/ keeps the previous model. A passing candidate is published into models/ as one set
(``fraud.runtime.artifact.publish``: the artifact and its drift reference profile under
names carrying the model's sha256, then the manifest naming them, in one rename), so a
crash at any point leaves the old set or the new one. The promoted manifest carries the test
metrics, the gate verdict and the ``serving`` and ``drift`` sections, so the service reads
everything it needs from models/ and never params.yaml.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fraud.config import load_params, parse_checked
from fraud.model.gate import GateConfig, gate
from fraud.monitoring.config import DriftConfig
from fraud.runtime.artifact import member, publish, read_manifest
from fraud.runtime.scoring import ServingConfig
from stages.common import parser, run, write_json


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
    """Gate the candidate on its test metrics; promote it into models/ if it passes."""
    args = parser(
        __doc__.splitlines()[0],
        {
            "manifest": "candidate manifest (it names the artifact beside it)",
            "profile": "candidate drift reference profile",
            "metrics": "the candidate's test metrics JSON (evaluate stage)",
            "baseline": "production baseline metrics JSON",
            "gate_report": "gate verdict JSON",
            "models": "directory the passing set is published into (models/)",
        },
    ).parse_args(argv)
    params = load_params(["gate", "serving", "drift"], args.params)
    gate_cfg = parse_checked(params["gate"], GateConfig, "gate")
    parse_checked(params["serving"], ServingConfig, "serving")
    parse_checked(params["drift"], DriftConfig, "drift")
    manifest = read_manifest(args.manifest)
    metrics = json.loads(Path(args.metrics).read_text())
    baseline = read_baseline(args.baseline)
    if gate_cfg.compare_to_baseline:
        if baseline is None:
            print(f"gate: {args.baseline} holds no metrics yet; regression checks skipped")
        elif missing := sorted(set(gate_cfg.max_regression) - set(baseline)):
            raise ValueError(f"baseline {args.baseline} has no {', '.join(missing)}")
    result = gate(metrics, gate_cfg, baseline)
    report: dict[str, Any] = {"passed": result.passed, "checks": result.checks}
    write_json(report, args.gate_report)
    for check in result.checks:
        if "skipped" in check:
            print(f"gate: {check['metric']} not checked: {check['skipped']}")
    if not result.passed:
        print("gate: FAILED - models/ keeps the previous model")
        for line in result.failures():
            print(f"  - {line}")
        print(
            f"gate: the failed candidate's metrics, plots and gate report stay in "
            f"{args.gate_report.parent}/ (and its lock entries in dvc.lock) to look at; "
            f"`git checkout -- {args.gate_report.parent} dvc.lock` restores the committed "
            "ones (dvc checkout cannot: those outputs are not cached)"
        )
        return 1

    # Promote exactly the verified bytes (publish refuses others), as one set.
    data = member(args.manifest, manifest, "artifact").read_bytes()
    profile = read_profile(args.profile, manifest["sha256"])
    promoted = dict(manifest, test_metrics=metrics, gate=report)
    promoted |= {"serving": params["serving"], "drift": params["drift"]}
    written = publish(args.models, data, promoted, profile)
    print(
        f"gate: passed - test pr_auc {metrics['pr_auc']:.4f} roc_auc {metrics['roc_auc']:.4f} "
        f"recall@1%fpr {metrics['recall_at_1pct_fpr']:.4f}; promoted to "
        f"{args.models / written['artifact']}"
    )
    return 0


if __name__ == "__main__":
    run(main)
