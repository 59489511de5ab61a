"""Benchmark the scoring service: real gunicorn (2 sync workers) on loopback under load.

    python -m benchmarks.serve [--seconds 10]

Starts the real `gunicorn -c app/gunicorn.conf.py "app:create_app()"` on a free 127.0.0.1
port with the committed production model, then measures (client-side, same 2 cores):
sequential /predict latency, /health and /predict throughput at 8 concurrent connections,
/predict/batch rows/s with 1,000 transactions, and RSS per worker. Bounded in count and time;
writes benchmarks/results/serve.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.conftest import REPO
from tests.test_server import Server, request

TARGETS = {
    "predict_rps_8_connections": 1500,
    "predict_over_health_ratio": 0.5,
    "sequential_p50_ms": 1.0,
    "sequential_p99_ms": 3.0,
    "batch_1000_transactions_per_second": 50_000,
    "rss_per_worker_mib": 200,
}


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


def sequential_latency(server: Server, tx: dict, n: int) -> dict:
    for _ in range(50):
        request(f"{server.url}/predict", tx)
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        status, _ = request(f"{server.url}/predict", tx)
        samples.append((time.perf_counter() - start) * 1000)
        assert status == 200
    samples.sort()
    return {
        "n": n,
        "p50_ms": round(statistics.median(samples), 3),
        "p99_ms": round(samples[int(0.99 * n) - 1], 3),
    }


def batch_throughput(server: Server, tx: dict, size: int = 1000, n: int = 10) -> dict:
    body = {"transactions": [tx] * size}
    request(f"{server.url}/predict/batch", body)
    start = time.perf_counter()
    for _ in range(n):
        status, result = request(f"{server.url}/predict/batch", body, timeout=60)
        assert status == 200
        assert result["n_scored"] == size
    elapsed = time.perf_counter() - start
    return {"batch_size": size, "batches": n, "transactions_per_second": round(size * n / elapsed)}


def worker_rss_mib(master_pid: int) -> list[float]:
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    rss = []
    for pid in children:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss.append(round(int(line.split()[1]) / 1024, 1))
    return rss


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="duration of each load phase")
    ap.add_argument("--sequential", type=int, default=2000, help="sequential /predict requests")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results/serve.json")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        server = Server(Path(tmp))
        try:
            server.wait_ready()
            status, tx = request(f"{server.url}/sample-transaction")
            assert status == 200
            body = json.dumps(tx).encode()
            seq = sequential_latency(server, tx, args.sequential)
            health = asyncio.run(
                load(server.port, raw_request(server.port, "GET", "/health"), args.seconds)
            )
            predict = asyncio.run(
                load(server.port, raw_request(server.port, "POST", "/predict", body), args.seconds)
            )
            batch = batch_throughput(server, tx)
            rss = worker_rss_mib(server.proc.pid)
        finally:
            server.stop()
    result = {
        "workers": 2,
        "sequential_predict": seq,
        "health_8_connections": health,
        "predict_8_connections": predict,
        "predict_over_health_ratio": round(predict["rps"] / health["rps"], 3),
        "batch": batch,
        "rss_per_worker_mib": rss,
        "targets": TARGETS,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
