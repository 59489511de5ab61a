"""A tiny model made by the pipeline's own stages, for tests that need a served model.

``build`` composes conf/ for production with a small data set and a low gate, points every
``paths`` entry into a scratch directory, and runs each stage of dvc.yaml in order, in
process, with the command line dvc.yaml gives it: the same code and contract as `dvc repro`,
in a few seconds and without DVC or git. No test loads the committed models/ artifact.
"""

from __future__ import annotations

import importlib
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fraud.runtime.artifact import MANIFEST, member, read_manifest
from stages.compose import compose_params
from tests.conftest import REPO, dvc_yaml

#: Small enough to train in a second, large enough for a model that flags some fraud.
OVERRIDES = [
    "env=production",
    "data.n_transactions=8000",
    "data.n_users=400",
    "data.days=40",
    "model.n_estimators=60",
    "gate.min_metrics.roc_auc=0.5",
    "gate.min_metrics.pr_auc=0.01",
    "gate.min_metrics.recall_at_1pct_fpr=0.0",
]


@dataclass(frozen=True)
class TinyModel:
    """Where the tiny model and what describes it lie (absolute paths)."""

    root: Path
    params: Path
    model_dir: Path
    features: Path
    gate_report: Path

    @property
    def manifest(self) -> Path:
        """The promoted manifest (it names the artifact and the reference profile)."""
        return self.model_dir / MANIFEST

    @property
    def model(self) -> Path:
        """The promoted artifact."""
        return member(self.manifest, read_manifest(self.manifest), "artifact")

    @property
    def profile(self) -> Path:
        """The promoted drift reference profile."""
        return member(self.manifest, read_manifest(self.manifest), "profile")

    def app_config(self, **extra: Any) -> dict[str, Any]:
        """``create_app`` settings serving this model."""
        return {**self.env(), **extra}

    def env(self) -> dict[str, str]:
        """The same, as environment variables (for a real gunicorn)."""
        return {"MODEL_DIR": str(self.model_dir), "FEATURES_PATH": str(self.features)}


def _rebase(paths: Any, root: Path) -> Any:
    if isinstance(paths, dict):
        return {key: _rebase(value, root) for key, value in paths.items()}
    return str(root / paths)


def build(root: Path, overrides: tuple[str, ...] = ()) -> TinyModel:
    """Run generate -> ... -> promote into ``root`` (``OVERRIDES``, then ``overrides``); fail
    with the stage's name if one fails."""
    _, params = compose_params([*OVERRIDES, *overrides])
    params["paths"] = _rebase(params["paths"], root)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (root / "dvc.yaml").write_text((REPO / "dvc.yaml").read_text())
    Path(params["paths"]["external"]).mkdir(parents=True, exist_ok=True)
    for name, stage in dvc_yaml(root)["stages"].items():
        argv = shlex.split(stage["cmd"])
        assert argv[:3] == ["python", "-m", f"stages.{name}"], argv
        module = importlib.import_module(f"stages.{name}")
        code = module.main([*argv[3:], "--params", str(root / "params.yaml")])
        assert code == 0, f"stage {name} exited {code}"
    paths = params["paths"]
    return TinyModel(
        root=root,
        params=root / "params.yaml",
        model_dir=Path(paths["model_dir"]),
        features=Path(paths["selected_features"]),
        gate_report=Path(paths["gate_report"]),
    )
