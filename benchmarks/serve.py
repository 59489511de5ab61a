"""Benchmark the scoring service: real gunicorn (2 sync workers) on loopback under load.

    python -m benchmarks.serve [--seconds 10] [--store none|sqlite|all]

Starts the real `gunicorn -c app/gunicorn.conf.py "app:create_app()"` on a free 127.0.0.1
port with the committed production model, then measures (client-side, same 2 cores):
sequential /predict latency, /health and /predict throughput at 8 concurrent connections,
/predict/batch transactions/s with 1,000 transactions per request (one connection per worker),
the same 1,000 as a V2 infer (``/v2/models/fraud-detector/infer``: the FP32 feature matrix,
and the raw fields as named tensors, JSON both), and RSS per worker - first stateless (the
request carries the history, no store), then with the online store (``--store``: the
embedded SQLite, and Redis on a real redis-server): the store is materialized from history +
train + valid, and the traffic is the production test split in time order, raw, each
request a distinct transaction. Throughput uses wrk (`apt-get install wrk`) when it is on
PATH - a C load generator takes far less of the shared cores than Python - else an asyncio
client; the result names which. Bounded in count and time;
writes benchmarks/results/serve.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.conftest import REPO
from tests.service.test_server import Server, request
from tests.service.test_store_server import raw_transactions

TARGETS = {
    "store_sqlite_predict_rps_8_connections": 1500,
    "store_sqlite_sequential_p50_ms": 1.5,
    "store_sqlite_batch_1000_transactions_per_second": 30_000,
    "store_redis_sequential_p50_ms": 2.0,
    "predict_rps_8_connections": 1500,
    "predict_over_health_ratio": 0.5,
    "sequential_p50_ms": 1.0,
    "sequential_p99_ms": 3.0,
    "batch_1000_transactions_per_second": 50_000,
    "rss_per_worker_mib": 200,
}


#: Sequential requests sent before latency is sampled.
WARMUP = 300


def raw_request(port: int, method: str, path: str, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


async def load(port: int, payload: bytes, seconds: float, connections: int = 8) -> dict:
    """Closed-loop load: each of ``connections`` tasks sends the next request on a new socket
    (gunicorn's sync workers close the connection after every response)."""
    deadline = time.perf_counter() + seconds
    ok = errors = 0

    async def worker() -> None:
        nonlocal ok, errors
        while time.perf_counter() < deadline:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(payload)
                await writer.drain()
                data = await reader.read()
                writer.close()
                if data.startswith(b"HTTP/1.1 200") or data.startswith(b"HTTP/1.0 200"):
                    ok += 1
                else:
                    errors += 1
            except OSError:
                errors += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - start
    return {"requests": ok, "errors": errors, "rps": round(ok / elapsed, 1)}


WRK_SCRIPT = """
wrk.method = "{method}"
wrk.body = io.open("{body}", "rb"):read()
wrk.headers["Content-Type"] = "application/json"
"""


def wrk_load(
    url: str, tmp: Path, method: str, body: bytes, seconds: float, connections: int
) -> dict:
    """Closed-loop load from wrk (one thread) repeating one body."""
    body_file, script = tmp / "body.json", tmp / "wrk.lua"
    body_file.write_bytes(body)
    script.write_text(WRK_SCRIPT.format(method=method, body=body_file))
    return wrk_run(url, script, seconds, connections)


def wrk_run(url: str, script: Path, seconds: float, connections: int) -> dict:
    """wrk with ``script``: successful requests/s and errors."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    ).stdout
    summary = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)\b", out)  # 60 s prints 1.00m
    secs = float(summary.group(2)) * {"ms": 0.001, "s": 1, "m": 60}[summary.group(3)]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    rejected = int(non_2xx.group(1)) if non_2xx else 0
    ok = int(summary.group(1)) - rejected
    errors = rejected
    socket_errors = re.search(r"Socket errors: (.*)", out)
    if socket_errors:  # connect, read, write, timeout counts
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
    return {"requests": ok, "errors": errors, "rps": round(ok / secs, 1)}


def exchange(port: int, payload: bytes) -> bytes:
    """One request on a fresh connection (as sync gunicorn closes it); the raw response."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(payload)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def sequential_latency(port: int, body: bytes, n: int) -> dict:
    """Client-measured latency of ``n`` sequential /predict requests of one body."""
    return sequential_bodies(port, [body] * (WARMUP + n))


def sequential_bodies(port: int, bodies: list[bytes]) -> dict:
    """Client-measured latency of sequential /predict requests, one per body, past the first
    ``WARMUP`` (steady state: both workers past their first requests). A lean socket client,
    so the number is the server's and the loopback's, not urllib's."""
    payloads = [raw_request(port, "POST", "/predict", body) for body in bodies]
    samples = []
    for i, payload in enumerate(payloads):
        start = time.perf_counter()
        response = exchange(port, payload)
        if i >= WARMUP:
            samples.append((time.perf_counter() - start) * 1000)
        assert response.startswith(b"HTTP/1.1 200"), response[:300]
    samples.sort()
    n = len(samples)
    return {
        "n": n,
        "p50_ms": round(statistics.median(samples), 3),
        "p99_ms": round(samples[int(0.99 * n) - 1], 3),
    }


def batch_body(tx: dict, size: int = 1000) -> bytes:
    """A batch of ``size`` distinct transactions (amounts and hours vary)."""
    items = [
        dict(tx, amount=round(5 + (i * 37.3) % 900, 2), hour_of_day=i % 24, transaction_id=f"t{i}")
        for i in range(size)
    ]
    return json.dumps({"transactions": items}).encode()


def feature_matrix(tx: dict, size: int = 1000) -> Any:
    """The FP32 features (``size`` x n_features, numpy) the service computes for
    ``batch_body``'s transactions."""
    import numpy as np

    from app import create_app
    from fraud.features.transform import transform_records

    items = json.loads(batch_body(tx, size))["transactions"]
    state = create_app({"FEATURE_STORE_URL": "none"}).extensions["fraud"]
    records = [state.validate(item)[0] for item in items]
    x, _ = transform_records(records, state.scorer.artifact.feature_state, None)
    return np.asarray(x, dtype=np.float32)


def v2_bodies(tx: dict, size: int = 1000) -> tuple[bytes, bytes]:
    """V2 infer bodies of ``batch_body``'s transactions (JSON tensors, JSON outputs): the
    precomputed FP32 feature matrix (as the service computes it), and the raw fields as
    named inputs."""
    import numpy as np

    items = json.loads(batch_body(tx, size))["transactions"]
    x = feature_matrix(tx, size)
    features = {"name": "features", "datatype": "FP32", "shape": list(x.shape)}
    matrix = {"inputs": [{**features, "data": np.where(np.isnan(x), None, x).tolist()}]}

    def datatype(value: object) -> str:
        if isinstance(value, bool):
            return "BOOL"
        if isinstance(value, int):
            return "INT64"
        return "FP64" if isinstance(value, float) else "BYTES"

    named = {
        "inputs": [
            {"name": k, "datatype": datatype(v), "shape": [size], "data": [i[k] for i in items]}
            for k, v in items[0].items()
        ]
    }
    return json.dumps(matrix).encode(), json.dumps(named).encode()


def write_result(path: Path, result: dict) -> None:
    """Write a benchmark's result as indented JSON to ``path`` and print it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def rss_mib(pid: int) -> float:
    """RSS of one process, MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
    return round(int(rss.split()[1]) / 1024, 1)


def worker_rss_mib(master_pid: int) -> list[float]:
    """RSS (MiB) of each child process of ``master_pid`` (the workers)."""
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    return [rss_mib(int(pid)) for pid in children]


def store_traffic(n: int) -> list[dict]:
    """The production test split's first ``n`` transactions in time order, as raw requests
    (no history: the service's store computes it), from data/processed/."""
    import pandas as pd

    test = pd.read_parquet(REPO / "data/processed/test.parquet").sort_values(
        "timestamp", kind="stable"
    )
    return raw_transactions(test.head(n))


WRK_CYCLE = """
local bodies, i = {{}}, 0
for line in io.lines("{body}") do bodies[#bodies + 1] = line end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
"""


def wrk_cycle(url: str, tmp: Path, bodies: list[bytes], seconds: float, connections: int) -> dict:
    """Closed-loop wrk load sending ``bodies`` in turn (distinct transactions)."""
    body_file, script = tmp / "bodies.jsonl", tmp / "cycle.lua"
    body_file.write_bytes(b"\n".join(bodies) + b"\n")
    script.write_text(WRK_CYCLE.format(body=body_file))
    return wrk_run(url, script, seconds, connections)


def batches_per_second(port: int, bodies: list[bytes], seconds: float) -> dict:
    """Distinct batches sent over 2 connections (one per worker) until ``seconds`` or the
    bodies run out."""
    from concurrent.futures import ThreadPoolExecutor

    deadline = time.perf_counter() + seconds
    queue = iter(bodies)
    ok = errors = 0

    def worker() -> None:
        nonlocal ok, errors
        for body in queue:
            if time.perf_counter() > deadline:
                return
            response = exchange(port, raw_request(port, "POST", "/predict/batch", body))
            if response.startswith(b"HTTP/1.1 200") and b'"n_errors":0' in response:
                ok += 1
            else:
                errors += 1

    start = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda _: worker(), range(2)))
    elapsed = time.perf_counter() - start
    return {"requests": ok, "errors": errors, "rps": round(ok / elapsed, 2)}


def materialized(url: str) -> float:
    """Fill the store at ``url`` from train + valid for models/; seconds taken."""
    from stages import materialize

    started = time.perf_counter()
    assert materialize.main(["--url", url, "--splits", "history", "train", "valid"]) == 0
    return round(time.perf_counter() - started, 1)


def store_phase(tmp: Path, url: str, args: argparse.Namespace, full: bool) -> dict:
    """Sequential, 8-connection and batch numbers of the store path at ``url``."""
    filled = materialized(url)
    traffic = store_traffic(200_000)
    bodies = [json.dumps(tx).encode() for tx in traffic]
    server = Server(tmp, {"FEATURE_STORE_URL": url})
    try:
        server.wait_ready()
        first = WARMUP + args.sequential  # the transactions the sequential phase sends
        seq = sequential_bodies(server.port, bodies[:first])
        out: dict = {"materialize_seconds": filled, "sequential_predict": seq}
        if full:
            health = throughput_of(server, tmp, "GET", "/health", b"", 8, args)
            predict = wrk_cycle(
                server.url + "/predict", tmp, bodies[first:60_000], args.seconds, 8
            )
            batches = [
                json.dumps({"transactions": traffic[i : i + 1000]}).encode()
                for i in range(60_000, len(traffic) - 999, 1000)
            ]
            batch = batches_per_second(server.port, batches, args.seconds)
            out |= {
                "health_8_connections": health,
                "predict_8_connections": predict,
                "predict_over_health_ratio": round(predict["rps"] / health["rps"], 3),
                "batch_1000_2_connections": dict(
                    batch, transactions_per_second=round(batch["rps"] * 1000)
                ),
            }
    finally:
        server.stop()
    return out


def throughput_of(
    server: Server, tmp: Path, method: str, path: str, body: bytes, connections: int, args
) -> dict:
    if shutil.which("wrk"):
        return wrk_load(server.url + path, tmp, method, body, args.seconds, connections)
    payload = raw_request(server.port, method, path, body)
    return asyncio.run(load(server.port, payload, args.seconds, connections))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="duration of each load phase")
    ap.add_argument("--sequential", type=int, default=2000, help="sequential /predict requests")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results/serve.json")
    ap.add_argument(
        "--store",
        choices=["none", "sqlite", "all"],
        default="all",
        help="also measure the online store: sqlite, or sqlite and redis (needs redis-server)",
    )
    args = ap.parse_args(argv)
    generator = "wrk" if shutil.which("wrk") else "python-asyncio"
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        server = Server(Path(tmp), {"FEATURE_STORE_URL": "none"})
        try:
            server.wait_ready()
            status, tx = request(f"{server.url}/sample-transaction")
            assert status == 200
            status, scored = request(f"{server.url}/predict/batch", json.loads(batch_body(tx)))
            assert status == 200, scored
            assert scored["n_scored"] == 1000, scored
            seq = sequential_latency(server.port, json.dumps(tx).encode(), args.sequential)
            health = throughput_of(server, Path(tmp), "GET", "/health", b"", 8, args)
            predict = throughput_of(
                server, Path(tmp), "POST", "/predict", json.dumps(tx).encode(), 8, args
            )
            batch = throughput_of(
                server, Path(tmp), "POST", "/predict/batch", batch_body(tx), 2, args
            )
            infer = "/v2/models/fraud-detector/infer"
            matrix, named = v2_bodies(tx)
            v2_matrix = throughput_of(server, Path(tmp), "POST", infer, matrix, 2, args)
            v2_named = throughput_of(server, Path(tmp), "POST", infer, named, 2, args)
            rss = worker_rss_mib(server.proc.pid)
        finally:
            server.stop()
        stores: dict = {}
        if args.store != "none":
            stores["sqlite"] = store_phase(
                Path(tmp), f"sqlite:///{tmp}/features.db", args, full=True
            )
        if args.store == "all":
            from tests.conftest import RedisServer

            redis = RedisServer(Path(tmp))
            try:
                stores["redis"] = store_phase(Path(tmp), redis.url, args, full=True)
            finally:
                redis.stop()
    result = {
        "workers": 2,
        "load_generator": generator,
        "stateless": "history fields in the request, FEATURE_STORE_URL=none",
        "sequential_predict": seq,
        "health_8_connections": health,
        "predict_8_connections": predict,
        "predict_over_health_ratio": round(predict["rps"] / health["rps"], 3),
        "batch_1000_2_connections": dict(
            batch, transactions_per_second=round(batch["rps"] * 1000)
        ),
        "v2_features_fp32_1000_2_connections": dict(
            v2_matrix, transactions_per_second=round(v2_matrix["rps"] * 1000)
        ),
        "v2_named_fields_1000_2_connections": dict(
            v2_named, transactions_per_second=round(v2_named["rps"] * 1000)
        ),
        "rss_per_worker_mib": rss,
        "store": {
            "traffic": "the production test split in time order, raw (no history fields), "
            "after materializing history + train + valid for models/",
            **stores,
        },
        "targets": TARGETS,
    }
    write_result(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
