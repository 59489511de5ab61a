"""Live tests: the Dockerfile's gunicorn command on a loopback port with two workers."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.tiny_model import TinyModel

GUNICORN = [sys.executable, "-m", "gunicorn", "-c", "app/gunicorn.conf.py", "app:create_app()"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request(
    url: str, body: object | None = None, timeout: float = 10, token: str | None = None
) -> tuple[int, dict | str]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    if data:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            text = resp.read().decode()
            status = resp.status
    except urllib.error.HTTPError as err:
        text, status = err.read().decode(), err.code
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


class Server:
    """A gunicorn master started with the project's config, bound to 127.0.0.1."""

    def __init__(self, tmp: Path, extra_env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        metrics_dir = tmp / "metrics"
        env = {
            **os.environ,
            "PORT": str(self.port),
            "WEB_CONCURRENCY": "2",
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            "DRAIN_SECONDS": "0",  # stop at once unless a test drains
            **(extra_env or {}),
        }
        self.log = tmp / "gunicorn.log"
        self.proc = subprocess.Popen(
            [*GUNICORN, "--bind", f"127.0.0.1:{self.port}"],
            cwd=REPO,
            env=env,
            stdout=open(self.log, "w"),  # noqa: SIM115 - closed with the process
            stderr=subprocess.STDOUT,
        )

    @classmethod
    def started(cls, tmp: Path, extra_env: dict[str, str] | None = None) -> Server:
        """A server that answers /ready (stopped again if it does not)."""
        server = cls(tmp, extra_env)
        try:
            server.wait_ready()
        except BaseException:
            server.stop()
            raise
        return server

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"gunicorn exited {self.proc.returncode}: {self.log.read_text()}"
                )
            try:
                if request(f"{self.url}/ready", timeout=1)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"not ready in {timeout}s: {self.log.read_text()}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=40)


@pytest.fixture
def server(tmp_path: Path):
    srv = Server(tmp_path)
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


def sample(server: Server) -> dict:
    status, body = request(f"{server.url}/sample-transaction")
    assert status == 200
    return body  # type: ignore[return-value]


def test_scores_single_and_batch_and_metrics_add_up_across_workers(server: Server) -> None:
    tx = sample(server)
    n = 60
    for _ in range(n):
        status, body = request(f"{server.url}/predict", tx)
        assert status == 200
        assert 0.0 <= body["fraud_probability"] <= 1.0
    status, body = request(f"{server.url}/predict/batch", {"transactions": [tx] * 5})
    assert status == 200
    assert body["n_scored"] == 5
    # Several scrapes may hit either worker; each must report the total over both.
    for _ in range(4):
        status, text = request(f"{server.url}/metrics")
        assert status == 200
        counted = sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("fraud_http_requests_total{")
            and 'endpoint="/predict"' in line
            and 'status="200"' in line
        )
        assert counted == n


def test_sigterm_lets_in_flight_requests_finish(server: Server) -> None:
    """DRAIN_SECONDS=0: SIGTERM stops at once, yet a request inside a worker is answered."""
    tx = sample(server)
    batch = {"transactions": [tx] * 2000}

    def call(_: int) -> int:
        try:
            return request(f"{server.url}/predict/batch", batch, timeout=30)[0]
        except OSError:
            return -1  # refused after the listener closed: never a half answer

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(call, i) for i in range(4)]
        time.sleep(0.3)
        server.proc.send_signal(signal.SIGTERM)
        statuses = [f.result() for f in futures]
    assert server.proc.wait(timeout=40) == 0
    assert statuses.count(200) >= 1
    assert set(statuses) <= {200, -1}


def test_sigterm_drains_queued_connections_while_ready_says_503(tmp_path: Path) -> None:
    """Under load from more clients than workers (so connections wait in the accept queue),
    SIGTERM turns /ready to 503 and every request sent during the drain is answered 200."""
    drain = 3.0
    srv = Server(tmp_path, {"DRAIN_SECONDS": str(drain)})
    try:
        srv.wait_ready()
        tx = sample(srv)
        stop_sending, statuses, ready = 0.0, [], []

        def client() -> None:
            while time.monotonic() < stop_sending:
                try:
                    statuses.append(request(f"{srv.url}/predict", tx, timeout=10)[0])
                except OSError as exc:
                    statuses.append(repr(exc))

        def probe() -> None:
            while time.monotonic() < stop_sending:
                try:
                    ready.append(request(f"{srv.url}/ready", timeout=2)[0])
                except OSError as exc:
                    ready.append(repr(exc))
                time.sleep(0.05)

        stop_sending = time.monotonic() + 0.5 + drain - 1.0  # stop 1 s before the drain ends
        with ThreadPoolExecutor(max_workers=9) as pool:
            futures = [pool.submit(client) for _ in range(8)] + [pool.submit(probe)]
            time.sleep(0.5)
            sent_before = len(statuses)
            terminated = time.monotonic()
            srv.proc.send_signal(signal.SIGTERM)
            for future in futures:
                future.result()
        assert srv.proc.wait(timeout=drain + 40) == 0
        waited = time.monotonic() - terminated
    finally:
        srv.stop()
    assert sent_before > 0
    assert len(statuses) > sent_before
    assert set(statuses) == {200}, [s for s in statuses if s != 200][:5]
    assert 503 in ready
    assert set(ready) <= {200, 503}
    assert ready[-1] == 503
    assert waited >= drain - 1.0  # it served out the drain before exiting
    assert "draining for 3s" in srv.log.read_text()


def test_tampered_artifact_refuses_to_start(tiny_model: TinyModel, tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(tiny_model.model_dir, models)
    artifact = models / tiny_model.model.name
    with open(artifact, "r+b") as fh:
        fh.seek(200)
        byte = fh.read(1)
        fh.seek(200)
        fh.write(bytes([byte[0] ^ 0xFF]))
    srv = Server(tmp_path, {"MODEL_DIR": str(models)})
    code = srv.proc.wait(timeout=60)
    assert code != 0
    log = srv.log.read_text()
    assert artifact.name in log
    assert "does not match manifest" in log
