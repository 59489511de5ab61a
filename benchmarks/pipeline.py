"""Benchmark the pipeline on the production config: time and peak memory per stage.

    python -m benchmarks.pipeline [--env production] [--models]

Runs in a temporary git copy of the repository (the committed artifacts are never touched):
composes the environment, runs each DVC stage in order through `dvc repro --single-item`,
then times no-op `dvc repro` runs. With ``--models`` it also retrains, on the same data, the
random forest, the logistic regression and XGBoost without some features (the entity
ablation: no merchant history, the card alone, no history at all) and reports their test
metrics side by side. Writes benchmarks/results/pipeline.json (and models.json).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from tests.conftest import REPO, copy_repo, dvc_yaml, tool_env

METRICS = (
    "roc_auc",
    "pr_auc",
    "recall_at_1pct_fpr",
    "card_precision_at_100",
    "precision",
    "recall",
    "f1",
)
VARIANTS = {
    "xgboost": [],
    "random_forest": ["model=random_forest"],
    "logistic_regression": ["model=logistic_regression"],
    "xgboost_without_merchant": ["~features.entities.merchant_id"],
    "xgboost_card_only": ["~features.entities.merchant_id", "~features.entities.device_id"],
    "xgboost_without_history": ["features.use_history=false"],
}
_MEASURE = (
    "import resource, subprocess, sys, time; t = time.perf_counter(); "
    "rc = subprocess.run(sys.argv[1:]).returncode; "
    "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, rc)"
)


def measured(args: list[str], cwd: Path) -> tuple[float, float, int]:
    """Run ``args`` in a fresh wrapper; return (seconds, peak RSS MiB of any descendant, rc)."""
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE, *args],
        cwd=cwd,
        env=tool_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    seconds, rss_kib, rc = proc.stdout.strip().splitlines()[-1].split()
    if int(rc) != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
    return float(seconds), int(rss_kib) / 1024, int(rc)


def compose(repo: Path, overrides: list[str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "stages.compose", *overrides], cwd=repo, env=tool_env(), check=True
    )


def bench_stages(repo: Path, env: str) -> dict:
    """Time every stage of a from-scratch run and the no-op repro after it."""
    compose(repo, [f"env={env}"])
    rows = yaml.safe_load((repo / "params.yaml").read_text())["data"]["n_transactions"]
    stages = {}
    for stage in dvc_yaml(repo)["stages"]:
        seconds, peak, rc = measured(["dvc", "repro", "--single-item", stage], repo)
        stages[stage] = {"seconds": round(seconds, 2), "peak_rss_mib": round(peak, 1)}
        print(f"{stage:10s} {seconds:7.2f} s  peak {peak:7.1f} MiB", flush=True)
        if rc != 0:
            raise SystemExit(f"stage {stage} failed")
    noop = [measured(["dvc", "repro"], repo)[0] for _ in range(3)]
    # The featurize command alone, without DVC's start-up, hashing and caching around it (it
    # rewrites identical bytes, so the pipeline stays up to date).
    cmd = dvc_yaml(repo)["stages"]["featurize"]["cmd"]
    featurize_cmd = measured(["sh", "-c", cmd], repo)[0]
    total = sum(s["seconds"] for s in stages.values())
    return {
        "env": env,
        "transactions": rows,
        "stages": stages,
        "end_to_end_seconds": round(total, 2),
        "featurize_transactions_per_second": round(rows / stages["featurize"]["seconds"]),
        "featurize_command_seconds": round(featurize_cmd, 2),
        "featurize_command_transactions_per_second": round(rows / featurize_cmd),
        "noop_repro_seconds": round(statistics.median(noop), 2),
        "targets": {
            "end_to_end_seconds": 180,
            "featurize_transactions_per_second": 200_000,
            "noop_repro_seconds": 2.5,
        },
    }


def bench_models(repo: Path, env: str) -> dict:
    """Test metrics per model variant on the same (already generated) data."""
    results = {}
    for name, overrides in VARIANTS.items():
        compose(repo, [f"env={env}", *overrides])
        seconds, peak, _rc = measured(["dvc", "repro"], repo)
        paths = yaml.safe_load((repo / "params.yaml").read_text())["paths"]
        metrics = json.loads((repo / paths["metrics"]).read_text())
        gate = json.loads((repo / paths["gate_report"]).read_text())
        results[name] = {
            **{k: metrics[k] for k in METRICS},
            "recall_by_pattern": metrics.get("recall_by_pattern", {}),
            "gate_passed": gate["passed"],
            "seconds": round(seconds, 1),
            "peak_rss_mib": round(peak, 1),
        }
        print(f"{name:26s} " + " ".join(f"{k} {metrics[k]:.4f}" for k in METRICS), flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", default="production")
    ap.add_argument("--models", action="store_true", help="also compare models and ablation")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        repo = copy_repo(Path(tmp) / "repo")
        result = bench_stages(repo, args.env)
        write(result, args.out / "pipeline.json")
        if args.models:
            write(
                {"env": args.env, "models": bench_models(repo, args.env)}, args.out / "models.json"
            )
    return 0


def write(result: dict, path: Path) -> None:
    """Save a result as JSON and echo it."""
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{path}:\n{json.dumps(result, indent=2)}")


if __name__ == "__main__":
    sys.exit(main())
