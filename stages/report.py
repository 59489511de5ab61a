"""Print the verdict of the last pipeline run: the gate, the test metrics and the served model.

Exits 1 when the gate report says the candidate failed or models/ does not verify against
its manifest, so `make retrain` can never end green with an ungated model.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fraud.config import PARAMS_FILE, load_paths
from fraud.runtime.artifact import MANIFEST, ArtifactError, load_artifact

KEYS = ("roc_auc", "pr_auc", "recall_at_1pct_fpr", "precision", "recall", "f1", "threshold")


def main(argv: list[str] | None = None) -> int:
    """Print a short report; return 0 only for a passed gate and a verified model."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gate-report", type=Path, help="default: paths.gate_report")
    ap.add_argument("--model-dir", type=Path, help="default: paths.model_dir (models/)")
    ap.add_argument("--params", type=Path, default=PARAMS_FILE)
    args = ap.parse_args(argv)
    try:
        if None in (args.gate_report, args.model_dir):
            paths = load_paths(args.params)
            args.gate_report = args.gate_report or Path(paths.gate_report)
            args.model_dir = args.model_dir or Path(paths.model_dir)
        gate = json.loads(args.gate_report.read_text())
        artifact, manifest = load_artifact(args.model_dir / MANIFEST)
    except (OSError, ValueError, ArtifactError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    metrics = manifest.get("test_metrics", {})
    print(
        f"model: {args.model_dir / manifest['artifact']} ({artifact.kind}, "
        f"env {manifest.get('env')}, sha256 {manifest['sha256'][:12]})"
    )
    print("test:  " + ", ".join(f"{k} {metrics[k]:.4f}" for k in KEYS if k in metrics))
    for check in gate.get("checks", []):
        mark = "ok  " if check["passed"] else "FAIL"
        if check["kind"] == "behaviour":
            detail = check.get("skipped") or (
                f"{check['violations']} of {check['rows']} rows broke it "
                f"(rate {check['value']} vs at most {check['bound']})"
            )
            print(f"gate:  {mark} {check['metric']}: {detail}")
            continue
        print(
            f"gate:  {mark} {check['metric']} {check['kind']}: "
            f"{check['value']} vs {check['bound']}"
        )
    if not gate.get("passed"):
        print("gate: FAILED", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
