"""Side by side with the peer users would pick instead: SeldonIO MLServer serving the same booster.

    python -m benchmarks.peer [--seconds 10] [--mlserver PATH_TO_MLSERVER]

MLServer 1.7 with ``mlserver-xgboost`` runs from its own venv (``make bench-peer`` builds it
in ``.venv-mlserver``: its pins would clash with ours), 2 parallel workers,
``OMP_NUM_THREADS=1``, loading ``booster.ubj`` from the committed artifact. Ours is the real
gunicorn (2 sync workers). In one sitting, the same 1,000 rows (the service's features of
``benchmarks.serve``'s batch, NaN as 0 since MLServer's JSON has no NaN) go as one FP32 V2
tensor to each, and as ``/predict/batch`` (with features and reasons) and ``/predict`` to ours
(MLServer loads a bare booster as XGBRegressor: its ``predict`` is the
binary:logistic probability; ``fraud_probability`` from ours), plus one
row at 8 connections, and RSS per worker. wrk keeps connections alive (MLServer's uvicorn
keeps them; our sync workers close each). Writes benchmarks/results/peer.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from benchmarks.serve import (
    batch_body,
    feature_matrix,
    rss_mib,
    worker_rss_mib,
    write_result,
    wrk_load,
)
from tests.conftest import REPO, free_port
from tests.service.test_server import Server, request


def features(tx: dict, size: int) -> list[list[float]]:
    """The service's FP32 features of ``size`` distinct transactions (NaN as 0)."""
    import numpy as np

    return np.nan_to_num(feature_matrix(tx, size), nan=0.0).tolist()


def v2_body(rows: list[list[float]], name: str, output: str) -> bytes:
    tensor = {"name": name, "datatype": "FP32", "shape": [len(rows), len(rows[0])], "data": rows}
    return json.dumps({"inputs": [tensor], "outputs": [{"name": output}]}).encode()


def start_mlserver(mlserver: Path, tmp: Path) -> tuple[subprocess.Popen, int]:
    """MLServer on a free port serving the artifact's booster; (process, http port)."""
    from fraud.runtime.artifact import MANIFEST, load_artifact

    artifact, _ = load_artifact(REPO / "models" / MANIFEST)
    model_dir = tmp / "mlserver"
    model_dir.mkdir()
    (model_dir / "model.ubj").write_bytes(artifact.model.raw)
    port = free_port()
    (model_dir / "settings.json").write_text(
        json.dumps(
            {
                "parallel_workers": 2,
                "http_port": port,
                "grpc_port": free_port(),
                "metrics_port": free_port(),
                "metrics_dir": str(tmp / "mlserver-metrics"),  # else .metrics/ in the cwd
            }
        )
    )
    (model_dir / "model-settings.json").write_text(
        json.dumps(
            {
                "name": "fraud-xgb",
                "implementation": "mlserver_xgboost.XGBoostModel",
                "parameters": {"uri": "./model.ubj"},
            }
        )
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    log = open(tmp / "mlserver.log", "w")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [str(mlserver), "start", str(model_dir)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: its workers are stopped with it
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, (tmp / "mlserver.log").read_text()[-3000:]
        try:
            url = f"http://127.0.0.1:{port}/v2/models/fraud-xgb/ready"
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return proc, port
        except OSError:
            pass
        time.sleep(0.5)
    stop_group(proc)
    raise AssertionError("MLServer not ready in 120 s: " + (tmp / "mlserver.log").read_text())


def scores(url: str, body: bytes) -> list[float]:
    """One V2 infer: the first output's data (AssertionError unless 200)."""
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 200, resp.status
        return json.loads(resp.read())["outputs"][0]["data"]


def stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM to MLServer's process group (its workers too), SIGKILL after 30 s."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    except ProcessLookupError:
        pass


def measure(url: str, tmp: Path, batch: bytes, one: bytes, seconds: float) -> dict:
    """Batch rows/s at 2 connections and single-row requests/s at 8; errors must be none."""
    rows = len(json.loads(batch)["inputs"][0]["data"])
    batched = wrk_load(url, tmp, "POST", batch, seconds, 2)
    single = wrk_load(url, tmp, "POST", one, seconds, 8)
    assert not batched["errors"], (url, batched)
    assert not single["errors"], (url, single)
    return {
        f"batch_{rows}_tensor_2_connections": dict(
            batched, rows_per_second=round(batched["rps"] * rows)
        ),
        "single_row_8_connections": single,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--mlserver", type=Path, default=REPO / ".venv-mlserver/bin/mlserver")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results/peer.json")
    args = ap.parse_args(argv)
    if not shutil.which("wrk"):
        print("error: wrk is needed (apt-get install wrk)", file=sys.stderr)
        return 2
    result: dict = {"load_generator": "wrk", "rows": 1000}
    with tempfile.TemporaryDirectory(prefix="bench-peer-") as tmp_name:
        tmp = Path(tmp_name)
        ours = Server(tmp, {"FEATURE_STORE_URL": "none"})
        try:
            ours.wait_ready()
            rows = features(request(f"{ours.url}/sample-transaction")[1], 1000)
            infer = "/v2/models/fraud-detector/infer"
            ours_scores = scores(ours.url + infer, v2_body(rows, "features", "fraud_probability"))
            result["ours"] = measure(
                ours.url + infer,
                tmp,
                v2_body(rows, "features", "fraud_probability"),
                v2_body(rows[:1], "features", "fraud_probability"),
                args.seconds,
            )
            tx = request(f"{ours.url}/sample-transaction")[1]
            native = wrk_load(
                f"{ours.url}/predict/batch", tmp, "POST", batch_body(tx), args.seconds, 2
            )
            assert not native["errors"], native
            single = wrk_load(
                f"{ours.url}/predict", tmp, "POST", json.dumps(tx).encode(), args.seconds, 8
            )
            assert not single["errors"], single
            result["ours"] |= {
                "predict_batch_1000_2_connections": dict(
                    native, rows_per_second=round(native["rps"] * 1000)
                ),
                "predict_8_connections": single,
                "rss_per_worker_mib": worker_rss_mib(ours.proc.pid),
            }
        finally:
            ours.stop()
        proc, port = start_mlserver(args.mlserver, tmp)
        try:
            peer_url = f"http://127.0.0.1:{port}/v2/models/fraud-xgb/infer"
            peer_scores = scores(peer_url, v2_body(rows, "input-0", "predict"))
            result["max_abs_score_difference"] = max(
                abs(a - b) for a, b in zip(ours_scores, peer_scores, strict=True)
            )
            result["mlserver"] = measure(
                peer_url,
                tmp,
                v2_body(rows, "input-0", "predict"),
                v2_body(rows[:1], "input-0", "predict"),
                args.seconds,
            )
            result["mlserver"]["rss_main_mib"] = rss_mib(proc.pid)
            result["mlserver"]["rss_per_worker_mib"] = worker_rss_mib(proc.pid)
        except Exception:
            print((tmp / "mlserver.log").read_text()[-4000:], file=sys.stderr)
            raise
        finally:
            stop_group(proc)
    key = "batch_1000_tensor_2_connections"
    result["ours_over_mlserver_batch"] = round(
        result["ours"][key]["rps"] / max(result["mlserver"][key]["rps"], 1e-9), 3
    )
    write_result(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
