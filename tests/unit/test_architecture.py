"""The layout's rules, checked on the source: arrows point down, modules stay small."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

FRAUD = REPO / "fraud"
MODULES = sorted(FRAUD.rglob("*.py"))
#: Subpackage -> fraud subpackages it may import (itself always; config and files always).
ALLOWED = {
    "data": set(),
    "features": {"data"},
    "runtime": {"data", "features"},
    "monitoring": {"data"},
    # monitoring: Card Precision@k's numpy core is fraud.monitoring.performance's, which the
    # service runs on its audit log; serving never imports fraud.model, so the one copy lives
    # where both can reach it
    "model": {"data", "features", "runtime", "monitoring"},
    "store": {"data", "features"},
    "offline": {"data", "features", "runtime"},
    "cluster": {"data", "features", "model", "runtime"},
}


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def subpackage(path: Path) -> str | None:
    parts = path.relative_to(FRAUD).parts
    return parts[0] if len(parts) > 1 else None


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_imports_point_down(path: Path) -> None:
    own = subpackage(path)
    targets = {name.split(".")[1] for name in imports(path) if name.startswith("fraud.")}
    assert not {n.split(".")[0] for n in imports(path)} & {"stages", "app", "scripts", "tests"}
    if own is None:  # fraud/config.py, fraud/files.py: the floor everyone stands on
        assert targets <= {"config", "files"}, targets
        return
    if own == "monitoring" and path.name == "scenarios.py":  # drift scenarios drive the generator
        assert targets - {"config", "files"} <= {"data", "monitoring"}
        return
    allowed = ALLOWED[own] | {own, "config", "files"}
    assert targets <= allowed, f"{path.name} imports {sorted(targets - allowed)}"


@pytest.mark.parametrize(
    "path",
    [*MODULES, *sorted((REPO / "app").glob("*.py")), *sorted((REPO / "stages").glob("*.py"))],
    ids=lambda p: p.relative_to(REPO).as_posix(),
)
def test_no_module_over_400_lines(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= 400


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_each_subpackage_says_what_it_owns(package: str) -> None:
    doc = ast.get_docstring(ast.parse((FRAUD / package / "__init__.py").read_text()))
    assert doc is not None
    assert "Owns:" in doc
    assert "May import:" in doc


def test_serving_imports_no_training_code_nor_heavy_libraries() -> None:
    """What a gunicorn worker imports to serve: no fraud.model, pandas, XGBoost, sklearn."""
    code = (
        "import sys, app, app.api, app.monitoring, fraud.runtime.scoring, "
        "fraud.runtime.xgboost_model, fraud.runtime.sklearn_model, fraud.monitoring.drift\n"
        "print(sorted({n for n in sys.modules if n.startswith('fraud.model')} | "
        "({n.split('.')[0] for n in sys.modules} & {'pandas', 'xgboost', 'sklearn', 'scipy', "
        "'pyarrow', 'hydra', 'omegaconf'})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_the_model_kind_is_decided_in_one_place() -> None:
    """No ``isinstance`` on a runtime or model-config class: each kind's class does its part."""
    kinds = ("XGBoost", "Sklearn", "Forest", "Logistic", "RandomForest", "LogisticRegression")
    runtime_names = tuple(f"{k}{suffix}" for k in kinds for suffix in ("Model", "Config"))
    for path in [*MODULES, *(REPO / "app").rglob("*.py"), *(REPO / "stages").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "isinstance":
                text = ast.unparse(node)
                assert not any(name in text for name in runtime_names), (path, text)


def test_only_delivery_tests_read_the_committed_model() -> None:
    """Unit, pipeline and service tests use the tiny model (tests/tiny_model.py); only the
    delivery tier checks the committed models/ that is shipped."""
    for path in (REPO / "tests").rglob("*.py"):
        if "delivery" in path.relative_to(REPO).parts or path.name == "test_architecture.py":
            continue
        assert 'REPO / "models' not in path.read_text(), path


@pytest.mark.parametrize(
    "path", sorted((REPO / "stages").glob("*.py")), ids=lambda p: p.relative_to(REPO).as_posix()
)
def test_stages_do_not_import_the_service(path: Path) -> None:
    """A pipeline stage stands on fraud/ only: what it shares with the app (the audit log's
    reader, for one) lives in fraud/."""
    assert not {n.split(".")[0] for n in imports(path)} & {"app", "scripts"}
