"""The tiny pipeline on a real cluster: a `dask scheduler` and two `dask worker` processes on
loopback, and `dvc repro` with compute.address pointing at them.

The processes are bounded in time by themselves (the scheduler's --idle-timeout, the workers'
--lifetime) and stopped by the fixture.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fraud.runtime.artifact import load_artifact
from tests.conftest import REPO, copy_repo, free_port, run, tool_env
from tests.pipeline.test_pipeline import TINY

pytest.importorskip("distributed")

LIFETIME_S = 480


def _dask(*args: str, log: Path, code: Path = REPO) -> subprocess.Popen[bytes]:
    """``dask <args>`` from this interpreter's environment with the project on its path (as
    a cluster's image would have it), output into ``log``."""
    dask = Path(sys.executable).parent / "dask"
    env = tool_env() | {"PYTHONPATH": str(code)}
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(dask), *args], env=env, cwd=code, stdout=out, stderr=subprocess.STDOUT
        )


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The address of a scheduler with two single-threaded workers, all on 127.0.0.1."""
    from distributed import Client

    logs = tmp_path_factory.mktemp("dask")
    address = f"tcp://127.0.0.1:{free_port()}"
    port = address.rsplit(":", 1)[1]
    procs = [
        _dask(
            "scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard",
            "--idle-timeout", f"{LIFETIME_S}s", log=logs / "scheduler.log",
        )
    ]  # fmt: skip
    try:
        for i in range(2):
            procs.append(
                _dask(
                    "worker", address, "--host", "127.0.0.1", "--nworkers", "1",
                    "--nthreads", "1", "--memory-limit", "2GiB", "--no-dashboard",
                    "--lifetime", f"{LIFETIME_S}s", "--name", f"w{i}",
                    log=logs / f"worker{i}.log",
                )
            )  # fmt: skip
        deadline = time.monotonic() + 60
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=max(1.0, deadline - time.monotonic()))
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.mark.slow
def test_tiny_pipeline_runs_on_a_scheduler_address(scheduler: str, tmp_path: Path) -> None:
    repo = copy_repo(tmp_path / "repo")
    overrides = [*TINY, "compute=dask", f"compute.address={scheduler}"]
    run(["python", "-m", "stages.compose", *overrides, "compute.partition_rows=3000"], repo)
    proc = run(["dvc", "repro"], repo, timeout=LIFETIME_S - 60)
    assert "generate: 12,000 transactions in 4 shards" in proc.stdout
    assert "gate: passed" in proc.stdout
    for split in ("train", "valid", "test"):
        dataset = repo / "data" / "features" / f"{split}.parquet"
        assert dataset.is_dir()
        assert sorted(p.name for p in dataset.iterdir())[0] == "part.0.parquet"
    artifact, manifest = load_artifact(repo / "models" / "manifest.json")
    assert manifest["compute"] == {
        "engine": "dask",
        "n_workers": 2,
        "threads_per_worker": 1,
        "partition_rows": 3000,
    }
    summary = json.loads((repo / "data" / "training_summary.json").read_text())
    assert summary["compute"] == manifest["compute"]
    assert summary["rows"]["train"] == 8400
    metrics = json.loads((repo / "reports" / "metrics.json").read_text())
    assert metrics["roc_auc"] >= 0.75
    assert metrics["behaviour"]["amount_spike"]["violations"] == 0
    assert artifact.feature_names == manifest["features"]
    again = run(["dvc", "repro"], repo)
    assert "Running stage" not in again.stdout


def test_workers_running_other_code_are_refused(scheduler: str, tmp_path: Path) -> None:
    """A stage whose fraud/ differs from the workers' fails naming them, before any work."""
    repo = copy_repo(tmp_path / "repo")
    run(["python", "-m", "stages.compose", *TINY, "compute=dask",
         f"compute.address={scheduler}"], repo)  # fmt: skip
    with (repo / "fraud" / "cluster" / "config.py").open("a") as fh:
        fh.write("# an edit the workers do not have\n")
    proc = run(["python", "-m", "stages.generate", "--external", "data/external",
                "--out", "data/raw/transactions.parquet"], repo, check=False)  # fmt: skip
    assert proc.returncode == 2
    assert f"compute.address {scheduler}: worker(s)" in proc.stderr
    assert "run other fraud/ sources" in proc.stderr
    assert not (repo / "data" / "raw" / "transactions.parquet").exists()
