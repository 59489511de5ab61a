"""End to end: a real `dvc repro` on a tiny config in a temporary git repo."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from fraud.data.synthetic.config import DataConfig
from fraud.data.synthetic.generate import generate_transactions
from fraud.files import sha256_file
from fraud.runtime.artifact import load_artifact, read_profile
from tests.conftest import dvc_yaml, run

TINY = [
    "env=development",
    "data.n_transactions=12000",
    "data.n_users=600",
    "data.days=30",
    "model.n_estimators=60",
    "gate.min_metrics.roc_auc=0.75",
    "gate.min_metrics.pr_auc=0.2",
    "gate.min_metrics.recall_at_1pct_fpr=0.1",
]
COMMITTED = ["models", "dvc.lock", "params.yaml"]


def compose(repo: Path, overrides: list[str]) -> None:
    run(["python", "-m", "stages.compose", *overrides], repo)


def digests(repo: Path, paths: list[str]) -> dict[str, str | None]:
    """sha256 per path; a directory's files each count (models/ is one set)."""
    files = [f for p in paths for f in sorted((repo / p).rglob("*")) if f.is_file()]
    out = {str(f.relative_to(repo)): sha256_file(f) for f in files}
    return out | {p: sha256_file(repo / p) for p in paths if (repo / p).is_file()}


@pytest.fixture(scope="module")
def trained_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repo copy where the tiny pipeline has run once, successfully."""
    from tests.conftest import copy_repo

    repo = copy_repo(tmp_path_factory.mktemp("pipeline") / "repo")
    compose(repo, TINY)
    proc = run(["dvc", "repro"], repo)
    assert "gate: passed" in proc.stdout
    return repo


def test_repro_builds_every_artifact(trained_repo: Path) -> None:
    repo = trained_repo
    for rel in [
        "data/raw/transactions.parquet",
        "data/features/test.parquet",
        "data/selected_features.json",
        "data/training_summary.json",
        "reports/metrics.json",
        "reports/plots/roc.json",
        "reports/plots/confusion.json",
        *COMMITTED,
    ]:
        assert (repo / rel).exists(), rel
    artifact, manifest = load_artifact(repo / "models/manifest.json")
    assert manifest["env"] == "development"
    assert manifest["gate"]["passed"] is True
    assert artifact.feature_names == manifest["features"]
    selected = json.loads((repo / "data/selected_features.json").read_text())
    assert selected["features"] == manifest["features"]
    metrics = json.loads((repo / "reports/metrics.json").read_text())
    assert metrics == manifest["test_metrics"]
    assert 0.75 <= metrics["roc_auc"] <= 1.0
    summary = json.loads((repo / "data/training_summary.json").read_text())
    assert summary["artifact_sha256"] == manifest["sha256"]
    assert sorted(p.name for p in (repo / "models").iterdir()) == sorted(
        ["manifest.json", manifest["artifact"], manifest["profile"]]
    )
    profile = json.loads(read_profile(repo / "models/manifest.json"))
    assert profile["model"]["sha256"] == manifest["sha256"]
    assert profile["n_rows"] == summary["rows"]["train"]
    assert profile["score"]["n"] == summary["rows"]["valid"]
    shown = run(["dvc", "metrics", "show", "--json"], repo).stdout
    assert "roc_auc" in shown


def test_stages_write_only_declared_outputs(trained_repo: Path) -> None:
    """Every file the run left behind is a declared out (or DVC's own bookkeeping)."""
    dvc = dvc_yaml(trained_repo)
    declared = {
        next(iter(out)) if isinstance(out, dict) else out
        for stage in dvc["stages"].values()
        for out in stage.get("outs", []) + stage.get("metrics", [])
    }
    # a directory out declares every file in it (written, or removed: models/ is one set)
    directories = tuple(f"{out}/" for out in declared if (trained_repo / out).is_dir())
    status = run(
        ["git", "status", "--porcelain", "--untracked-files=all", "--ignored"], trained_repo
    )
    changed = {line[3:] for line in status.stdout.splitlines()}
    # fraud/runtime/_treewalk.so: the tree kernel compiled on first use, a code cache (like
    # __pycache__)
    bookkeeping = {"dvc.lock", "params.yaml", "fraud/runtime/_treewalk.so"}
    stray = {
        path
        for path in changed - declared - bookkeeping
        if not path.startswith(directories)
        and not path.endswith(".gitignore")
        and not path.startswith(".dvc/")
        and "__pycache__" not in path
    }
    assert not stray, f"undeclared files written: {sorted(stray)}"


def test_second_repro_is_a_no_op(trained_repo: Path) -> None:
    before = digests(trained_repo, COMMITTED)
    proc = run(["dvc", "repro"], trained_repo)
    assert "Data and pipelines are up to date" in proc.stdout
    assert digests(trained_repo, COMMITTED) == before
    assert run(["dvc", "status"], trained_repo).stdout.strip().endswith("up to date.")


def test_plots_render(trained_repo: Path, tmp_path: Path) -> None:
    proc = run(["dvc", "plots", "show", "--json"], trained_repo)
    plots = json.loads(proc.stdout)["data"]
    assert set(plots) == {
        "ROC",
        "Precision-Recall",
        "Calibration",
        "Feature importance",
        "Card Precision@k per test day",
        "Confusion matrix",
    }
    for rendered in plots.values():
        assert rendered[0]["type"] == "vega"
        assert rendered[0]["content"]["data"]["values"], "a plot without data points"
    # the confusion matrix is 4 aggregated cells, summed by .dvc/plots/confusion_counts.json
    confusion = plots["Confusion matrix"][0]["content"]
    metrics = json.loads((trained_repo / "reports/metrics.json").read_text())
    cells = {(r["actual"], r["predicted"]): r["count"] for r in confusion["data"]["values"]}
    assert cells == {
        ("legit", "legit"): metrics["tn"],
        ("legit", "fraud"): metrics["fp"],
        ("fraud", "legit"): metrics["fn"],
        ("fraud", "fraud"): metrics["tp"],
    }
    assert confusion["spec"]["transform"][0]["aggregate"][0] == {
        "op": "sum",
        "field": "count",
        "as": "rows",
    }
    # the days of Card Precision@k are ordinal (a linear template would draw nothing)
    per_day = plots["Card Precision@k per test day"][0]["content"]
    assert per_day["encoding"]["x"] == {"field": "day", "type": "ordinal", "title": "day"}
    run(["dvc", "plots", "show", "-o", str(tmp_path / "dvc_plots")], trained_repo)
    page = (tmp_path / "dvc_plots/index.html").stat().st_size
    renderer = (trained_repo / ".dvc/plots/offline.html").stat().st_size  # the vendored Vega
    assert page - renderer < 200_000  # the plots' data: was 9.5 MB
    ignored = run(["git", "check-ignore", "dvc_plots/index.html"], trained_repo, check=False)
    assert ignored.returncode == 0, "dvc_plots/ is not git-ignored"


def test_failing_gate_exits_nonzero_and_keeps_the_model(trained_repo: Path) -> None:
    repo = trained_repo
    promoted = ["models"]
    before = digests(repo, promoted)
    compose(
        repo,
        [
            *TINY[:-3],
            "model.n_estimators=1",
            "model.max_depth=1",
            "gate.min_metrics.roc_auc=0.99",
            "gate.min_metrics.pr_auc=0.9",
        ],
    )
    proc = run(["dvc", "repro"], repo, check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "gate: FAILED" in out
    assert "roc_auc = " in out
    assert "< minimum 0.9900" in out
    assert "pr_auc = " in out
    assert "< minimum 0.9000" in out
    assert digests(repo, promoted) == before
    gate = json.loads((repo / "reports/gate.json").read_text())
    assert gate["passed"] is False
    assert "`git checkout -- reports dvc.lock` restores the committed ones" in out
    # Restoring the passing config brings the pipeline back without retraining from scratch.
    compose(repo, TINY)
    assert run(["dvc", "repro"], repo).returncode == 0
    assert digests(repo, promoted) == before


def test_a_typo_in_params_fails_the_stage_naming_the_key(repo_copy: Path) -> None:
    compose(repo_copy, TINY)
    params = repo_copy / "params.yaml"
    params.write_text(params.read_text().replace("max_depth: 6", "max_depht: 6"))
    proc = run(["dvc", "repro", "train"], repo_copy, check=False)
    assert proc.returncode != 0
    assert "model.max_depht" in proc.stderr + proc.stdout


def test_csv_ingestion_trains_on_an_external_file(repo_copy: Path) -> None:
    repo = repo_copy
    df = generate_transactions(DataConfig(n_transactions=12000, n_users=600, days=30), seed=7)
    external = df.drop(columns=["hour_of_day", "day_of_week", "fraud_pattern"])
    external["timestamp"] = external["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    external["is_fraud"] = external["is_fraud"].map({0: "false", 1: "true"})
    external.to_csv(repo / "data/external/tx.csv", index=False)
    compose(repo, [*TINY, "data.source=csv", "data.path=data/external/tx.csv"])
    run(["dvc", "repro", "featurize"], repo)
    raw = pd.read_parquet(repo / "data/raw/transactions.parquet")
    assert len(raw) == 12000
    parts = [
        pd.read_parquet(repo / f"data/processed/{s}.parquet") for s in ("train", "valid", "test")
    ]
    processed = pd.concat(parts, ignore_index=True)
    assert sorted(processed["transaction_id"]) == sorted(df["transaction_id"])
    merged = processed.merge(df, on="transaction_id", suffixes=("", "_src"))
    assert (merged["hour_of_day"] == merged["hour_of_day_src"]).all()
    assert (merged["day_of_week"] == merged["day_of_week_src"]).all()
    assert (merged["is_fraud"] == merged["is_fraud_src"]).all()


def test_csv_outside_external_dir_is_refused(repo_copy: Path) -> None:
    compose(repo_copy, [*TINY, "data.source=csv", "data.path=/etc/passwd"])
    proc = run(["dvc", "repro", "generate"], repo_copy, check=False)
    assert proc.returncode != 0
    assert "data.path" in proc.stderr + proc.stdout


def test_dvc_exp_run_composes_with_hydra_overrides(trained_repo: Path) -> None:
    """`dvc exp run -S ...` recomposes params.yaml from conf/ and runs only what changed."""
    repo = trained_repo
    args = [x for o in [*TINY, "model.max_depth=4"] for x in ("-S", o)]
    proc = run(["dvc", "exp", "run", *args], repo)
    assert "Stage 'generate' didn't change, skipping" in proc.stdout
    assert "Running stage 'train'" in proc.stdout
    params = yaml.safe_load((repo / "params.yaml").read_text())
    assert params["model"]["max_depth"] == 4
    assert params["base"]["env"] == "development"
    shown = json.loads(run(["dvc", "exp", "show", "--json"], repo).stdout)
    assert "max_depth" in json.dumps(shown)
