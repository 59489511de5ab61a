"""Benchmark the audit log and POST /feedback on a real gunicorn (2 sync workers), loopback.

    python -m benchmarks.audit [--seconds 10] [--rounds 2] [--out FILE]

1. ``/predict`` at 8 connections (and ``/health`` as the machine's yardstick) with the audit
   log off and on, interleaved (off, on, off, on, ...: the machine's speed drifts), stateless
   (the request carries its history, ``FEATURE_STORE_URL=none``) with the committed model;
   the ratio on/off per round. Target: on within 10 % of off.
2. ``POST /feedback`` with batches of 1,000 labels of logged predictions (each label with a
   ``labelled_at`` of its own), 2 connections, without a store and with the embedded SQLite
   store (each label then also reaches the stored events); ``/health`` of the same server
   beside it. Target: >= 20,000 labels/s.
3. The log's cost in process: microseconds per record, one record per call as /predict does.

Uses wrk when on PATH (as ``benchmarks.serve``), else an asyncio client. Bounded in count and
time; writes benchmarks/results/audit.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.serve import batch_body, throughput_of, write_result
from tests.conftest import REPO
from tests.service.test_server import Server, request

TARGETS = {"predict_audit_on_over_off": 0.9, "feedback_labels_per_second": 20_000}
FEEDBACK_TOKEN = "bench-feedback-token"


def start(tmp: Path, env: dict[str, str]) -> Server:
    tmp.mkdir(parents=True, exist_ok=True)
    return Server.started(tmp, {"FEATURE_STORE_URL": "none", **env})


def predict_round(tmp: Path, audit: bool, args: argparse.Namespace) -> dict[str, Any]:
    """/health and /predict throughput of one server, the audit log on or off."""
    env = {"PREDICTION_LOG_DIR": str(tmp / "audit")} if audit else {}
    server = start(tmp, env)
    try:
        status, tx = request(f"{server.url}/sample-transaction")
        assert status == 200
        body = json.dumps(tx).encode()
        health = throughput_of(server, tmp, "GET", "/health", b"", 8, args)
        predict = throughput_of(server, tmp, "POST", "/predict", body, 8, args)
    finally:
        server.stop()
    logged = sum(
        len(f.read_bytes().splitlines()) for f in (tmp / "audit").glob("*.jsonl") if audit
    )
    return {
        "audit_log": audit,
        "health_rps": health["rps"],
        "predict_rps": predict["rps"],
        "errors": health["errors"] + predict["errors"],
        "predict_over_health": round(predict["rps"] / health["rps"], 3),
        "lines_logged": logged,
    }


def feedback_phase(tmp: Path, store: str, args: argparse.Namespace) -> dict[str, Any]:
    """Labels/s of 1,000-label batches on 2 connections, for predictions already logged."""
    env = {
        "PREDICTION_LOG_DIR": str(tmp / f"audit-{store}"),
        "FEEDBACK_TOKEN": FEEDBACK_TOKEN,
        "FEATURE_STORE_URL": "none" if store == "none" else f"sqlite:///{tmp}/features.db",
    }
    server = start(tmp, env)
    try:
        status, tx = request(f"{server.url}/sample-transaction")
        n_tx = 20_000
        ids = []
        for start_at in range(0, n_tx, 1000):  # 20,000 predictions to label
            batch = json.loads(batch_body(tx))
            for k, item in enumerate(batch["transactions"]):
                item["transaction_id"] = f"bench-{start_at + k}"
                ids.append(item["transaction_id"])
                if store != "none":  # raw: the store computes (and keeps) the history
                    for name in ("user_id", "merchant_id", "device_id"):
                        item[name] = f"{name}-{(start_at + k) % 500}"
            status, out = request(f"{server.url}/predict/batch", batch, timeout=60)
            assert status == 200, out
        time.sleep(1.5)  # every worker's log flushed
        bodies = []
        for round_ in range(8):  # labels change each round (last label wins: all recorded)
            for start_at in range(0, n_tx, 1000):
                labels = [
                    {
                        "transaction_id": ids[i],
                        "is_fraud": (i + round_) % 2,
                        "labelled_at": f"2026-01-{round_ + 1:02d}T00:00:00.{i:06d}",
                    }
                    for i in range(start_at, start_at + 1000)
                ]
                bodies.append(json.dumps({"labels": labels}).encode())
        done: list[float] = []
        counts = {"recorded": 0, "other": 0}
        lock = threading.Lock()
        queue = list(reversed(bodies))

        def worker() -> None:
            while time.perf_counter() < deadline:
                with lock:
                    if not queue:
                        return
                    body = queue.pop()
                started = time.perf_counter()
                status, out = post(server, body)
                assert status == 200, out
                with lock:
                    done.append(time.perf_counter() - started)
                    counts["recorded"] += out["n_recorded"]
                    counts["other"] += 1000 - out["n_recorded"]

        post(server, bodies[0])  # the first request of each worker reads the audit log
        post(server, bodies[1])
        health = throughput_of(server, tmp, "GET", "/health", b"", 8, args)["rps"]
        began = time.perf_counter()
        deadline = began + args.seconds
        threads = [threading.Thread(target=worker) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - began
    finally:
        server.stop()
    return {
        "store": store,
        "batches": len(done),
        "labels_per_second": round(len(done) * 1000 / elapsed),
        "health_rps": health,
        "median_batch_ms": round(statistics.median(done) * 1000, 2),
        "recorded": counts["recorded"],
        "not_recorded": counts["other"],
    }


def post(server: Server, body: bytes) -> tuple[int, Any]:
    import urllib.request

    req = urllib.request.Request(f"{server.url}/feedback", data=body, method="POST")
    req.add_header("Content-Type", "application/json")
    req.add_header("Authorization", f"Bearer {FEEDBACK_TOKEN}")
    with urllib.request.urlopen(req, timeout=60) as resp:
        return resp.status, json.loads(resp.read())


def log_cost_us(tmp: Path, n: int = 20_000) -> float:
    """Microseconds per record of ``PredictionLog.write``, one record per call."""
    from app.audit import PredictionLog

    log = PredictionLog(tmp / "cost", None, 8 << 20, 16, 1.0, constant={"model_sha256": "a" * 64})
    record = {"prediction_id": "0" * 32, "amount": 12.5, "merchant_category": "grocery"}
    record |= {"fraud_probability": 0.01, "decision": "legit", "transaction_id": "t-1"}
    started = time.perf_counter()
    for _ in range(n):
        log.write([record])
    cost = (time.perf_counter() - started) / n * 1e6
    log.close()
    return round(cost, 2)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="duration of each load phase")
    ap.add_argument("--rounds", type=int, default=2, help="off/on pairs of /predict")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results/audit.json")
    ap.add_argument("--feedback-only", action="store_true", help="only the /feedback phase")
    args = ap.parse_args(argv)
    rounds = []
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as tmp:
        for k in range(0 if args.feedback_only else args.rounds):
            off = predict_round(Path(tmp) / f"off{k}", False, args)
            on = predict_round(Path(tmp) / f"on{k}", True, args)
            rounds.append(
                {
                    "off": off,
                    "on": on,
                    "predict_on_over_off": round(on["predict_rps"] / off["predict_rps"], 3),
                    "ratio_to_health_on_over_off": round(
                        on["predict_over_health"] / off["predict_over_health"], 3
                    ),
                }
            )
        feedback = [feedback_phase(Path(tmp), store, args) for store in ("none", "sqlite")]
        cost = log_cost_us(Path(tmp))
    result = {
        "workers": 2,
        "predict_audit_off_on": rounds,
        "feedback_1000_label_batches_2_connections": feedback,
        "audit_log_us_per_record": cost,
        "targets": TARGETS,
    }
    write_result(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
