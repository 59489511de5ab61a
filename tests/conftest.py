"""Shared fixtures: a throwaway git+DVC copy of this repository for pipeline tests."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

if TYPE_CHECKING:
    from tests.tiny_model import TinyModel

REPO = Path(__file__).resolve().parents[1]
GIT_ENV = {
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


def tool_env() -> dict[str, str]:
    """Environment whose PATH finds this interpreter's `python` and `dvc` first."""
    env = dict(os.environ, **GIT_ENV)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["DVC_NO_ANALYTICS"] = "1"
    env.pop("PYTHONPATH", None)
    return env


def run(
    args: list[str], cwd: Path, check: bool = True, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing text output; fail with its output when ``check`` and non-zero."""
    proc = subprocess.run(
        args, cwd=cwd, env=tool_env(), capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def fake_tool(tmp_path: Path, name: str, script: str) -> Path:
    """Install ``script`` (formatted with ``{python}``) as executable ``name`` in
    ``tmp_path/bin``, the stand-in for a CLI that cannot run here; returns that directory."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    tool = bin_dir / name
    tool.write_text(script.format(python=sys.executable))
    tool.chmod(0o755)
    return bin_dir


def dvc_yaml(root: Path = REPO) -> dict[str, Any]:
    """``root``'s dvc.yaml with each ``${dotted.key}`` replaced by its params.yaml value, as
    DVC's templating does."""
    params = yaml.safe_load((root / "params.yaml").read_text())

    def interpolate(match: re.Match[str]) -> str:
        value: Any = params
        for key in match.group(1).split("."):
            value = value[key]
        return str(value)

    text = (root / "dvc.yaml").read_text()
    return yaml.safe_load(re.sub(r"\$\{([\w.]+)\}", interpolate, text))


def copy_repo(dest: Path) -> Path:
    """Copy the tracked (and new, not ignored) files of this repo into a fresh git repo."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for rel in filter(None, listed):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    run(["git", "init", "-q"], dest)
    run(["git", "add", "-A"], dest)
    run(["git", "commit", "-qm", "copy"], dest)
    return dest


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """A temporary git repository holding a copy of this project."""
    return copy_repo(tmp_path / "repo")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    """A model made by the pipeline's stages on a tiny config and promoted into a scratch
    models/ (once per test process, a few seconds): what service tests serve."""
    from tests.tiny_model import build

    return build(tmp_path_factory.mktemp("tiny"))
