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


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--image",
        action="store_true",
        help="run only the tests marked image: they build and run the container image "
        "(buildah; root or sudo); `make test-image`",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked image run only with --image (and then alone): they need buildah and root,
    and take minutes, so `make test` leaves them to `make test-image`, a CI job of its own."""
    wanted = config.getoption("--image")
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        (keep if (item.get_closest_marker("image") is not None) == wanted else dropped).append(
            item
        )
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


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


@pytest.fixture(scope="session", autouse=True)
def _private_feature_store(tmp_path_factory: pytest.TempPathFactory):
    """No test touches the checkout's data/online/ store: the default store of every app and
    gunicorn a test starts is a scratch file (a test may still choose its own)."""
    path = tmp_path_factory.mktemp("feature-store") / "features.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FEATURE_STORE_URL", f"sqlite:///{path}")
        yield


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


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A real ``redis-server`` on a loopback port, in memory only, stopped by the fixture."""

    def __init__(self, workdir: Path) -> None:
        import time

        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server not found: apt-get install redis-server (.ci/run does)")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    pytest.fail(f"redis-server did not start on port {self.port}")
                time.sleep(0.05)
        client.close()

    def flush(self) -> None:
        import redis

        with redis.Redis.from_url(self.url) as client:
            client.flushall()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory):
    """A real redis-server for the test session (flushed by ``redis_url``)."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The URL of an empty real Redis."""
    redis_server.flush()
    return redis_server.url
