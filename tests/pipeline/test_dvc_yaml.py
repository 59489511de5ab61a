"""dvc.yaml is a contract: every module a stage imports is a dep, every param it reads declared."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, dvc_yaml

RAW = (REPO / "dvc.yaml").read_text()
DVC = dvc_yaml()
STAGES = list(DVC["stages"])
#: Sections each stage parses (must equal its `params:` in dvc.yaml).
READS = {
    "generate": ["base", "data", "compute"],
    "process": ["split", "compute"],
    "featurize": ["features", "compute"],
    "train": ["base", "model", "train", "drift_profile", "compute"],
    "evaluate": ["train", "evaluate", "serving", "compute"],
    "promote": ["gate", "serving", "drift"],
}


def imported_files(stage: str) -> set[str]:
    """Project files a fresh interpreter loads when importing ``stages.<stage>``."""
    code = (
        f"import sys, stages.{stage}\n"
        "for name, mod in sorted(sys.modules.items()):\n"
        "    if name.split('.')[0] in ('fraud', 'stages') and '.' in name:\n"
        "        print(mod.__file__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    return {Path(f).resolve().relative_to(REPO).as_posix() for f in out.split()}


def test_pipeline_order() -> None:
    assert STAGES == ["generate", "process", "featurize", "train", "evaluate", "promote"]


def covered(path: str, deps: set[str]) -> bool:
    """Whether ``path`` is a dep itself or lies in a directory dep (a fraud/ subpackage)."""
    return path in deps or any(path.startswith(dep + "/") for dep in deps)


@pytest.mark.parametrize("stage", STAGES)
def test_every_imported_module_is_a_dep(stage: str) -> None:
    deps = set(DVC["stages"][stage]["deps"])
    missing = {path for path in imported_files(stage) if not covered(path, deps)}
    assert not missing, f"{stage} imports {sorted(missing)} without declaring them"
    produced = {
        next(iter(o)) if isinstance(o, dict) else o
        for earlier in STAGES[: STAGES.index(stage)]
        for o in DVC["stages"][earlier].get("outs", [])
    }
    for dep in deps - produced:
        # Pipeline data may be absent on a clean checkout; anything else must exist.
        assert (REPO / dep).exists(), f"{stage} declares a missing dep {dep}"


@pytest.mark.parametrize("stage", ["train", "evaluate"])
def test_stages_unpickling_the_artifact_depend_on_what_it_holds(stage: str) -> None:
    """The feature state and the runtime are unpickled (or built lazily), not imported."""
    deps = set(DVC["stages"][stage]["deps"])
    assert {"fraud/features", "fraud/runtime", "fraud/model"} <= deps


def test_directory_deps_ignore_code_caches() -> None:
    """Bytecode and the tree kernel built on first use must not make a stage stale."""
    ignored = (REPO / ".dvcignore").read_text().split()
    assert {"__pycache__/", "*.pyc", "*.so"} <= set(ignored)


@pytest.mark.parametrize("stage", STAGES)
def test_declared_params_are_what_the_stage_reads(stage: str) -> None:
    assert DVC["stages"][stage]["params"] == READS[stage]
    source = (REPO / "stages" / f"{stage}.py").read_text()
    assert f"load_params({READS[stage]!r}".replace("'", '"') in source


def test_every_data_path_comes_from_params_paths() -> None:
    """dvc.yaml names no data, model or report file itself: conf/paths/ states each once."""
    literal = re.findall(r"(?<![\w${.])(?:data|models|reports)/[\w./-]+", RAW)
    assert literal == []
    used = set(re.findall(r"\$\{([\w.]+)\}", RAW))
    assert all(name.startswith("paths.") for name in used)


def test_committed_outputs_are_not_cached_and_models_persist() -> None:
    outs = {
        next(iter(o)) if isinstance(o, dict) else o: (
            o[next(iter(o))] if isinstance(o, dict) else {}
        )
        for stage in DVC["stages"].values()
        for o in stage.get("outs", []) + stage.get("metrics", [])
    }
    assert outs["models"] == {"cache": False, "persist": True}
    for committed in ("data/selected_features.json", "data/training_summary.json"):
        assert outs[committed] == {"cache": False}


def test_committed_lock_matches_code_and_params(tmp_path: Path) -> None:
    """dvc.lock was produced by this code and params.yaml (missing data is allowed)."""
    from tests.conftest import copy_repo, run

    repo = copy_repo(tmp_path / "repo")
    proc = run(["dvc", "repro", "--allow-missing", "--dry"], repo, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Data and pipelines are up to date" in proc.stdout
    assert "Running stage" not in proc.stdout
