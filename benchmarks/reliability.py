"""The service's reliability promises, each measured against a real gunicorn on 127.0.0.1.

    python -m benchmarks.reliability [--short] [--only 1,3] [--out FILE]

1. Schemathesis, every check, against the live ``/openapi.json``: 0 failures.
2. A corpus of hostile bodies (``benchmarks.hostile``) to every POST endpoint: 0 server errors,
   every answer JSON naming the problem (413 where a body is over its limit).
3. Saturation of ``/predict`` at 16 connections for 60 s (short: 10 s): 0 failed requests.
4. ``kill -9`` of a worker under that load: < 0.1 % failed requests.
5. SIGTERM to the master under load: 0 failed requests (the drain serves what is queued).
6. Slow and idle clients (8 idle, 8 half headers, 8 short bodies, 4 unread batch answers)
   while ``/health`` is probed every 100 ms for 10 s: every probe answered within 1 s.
7. RSS of each worker over 100k ``/predict`` requests (short: 20k), worker recycling off:
   growth after a warm-up of 10 % of them < 10 %.

Each promise runs on a fresh server (2 workers, the committed model, no online store); the
first two have API keys, FEEDBACK_TOKEN and MONITORING_TOKEN configured and send the token. Load
comes from wrk when on PATH, else an asyncio client (``benchmarks.serve``). Prints a table,
writes benchmarks/results/reliability.json and exits 1 if any promise fails. Bounded in count
and time (short form about 3 minutes, full about 8 on 2 shared cores).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.hostile import SlowClients, hostile_corpus, probe_health
from benchmarks.serve import batch_body, throughput_of, worker_rss_mib, write_result
from tests.conftest import REPO
from tests.service.test_server import Server, request

TOKEN = "reliability-suite-token"
ST_CONFIG = Path(__file__).with_name("schemathesis.toml")
#: A CPython 3.11.7 bug hypothesis can hit describing a lambda in schemathesis's coverage phase
#: (seen once, in a fresh venv): the run says so and is retried without that phase.
CPYTHON_AST_BUG = "SystemError: AST constructor recursion depth mismatch"
#: The API key, feedback and monitoring tokens of promise 1's server (all the same token).
AUTH_ENV = {
    "API_KEYS": f"reliability:{hashlib.sha256(TOKEN.encode()).hexdigest()}",
    "FEEDBACK_TOKEN": TOKEN,
    "MONITORING_TOKEN": TOKEN,
}
FORMS = {
    "full": {"examples": 30, "saturation_s": 60, "kill_s": 20, "drain_load_s": 8, "rss": 100_000},
    "short": {"examples": 5, "saturation_s": 10, "kill_s": 8, "drain_load_s": 5, "rss": 20_000},
}
CONNECTIONS = 16
SLOW_CLIENTS = {"idle": 8, "half_headers": 8, "short_body": 8, "unread_answer": 4}
HEALTH = {"seconds": 10.0, "every": 0.1, "deadline_s": 1.0}
MAX_KILL_FAILED = 0.001
MAX_RSS_GROWTH = 0.10


def start(tmp: Path, name: str, env: dict[str, str] | None = None) -> Server:
    (tmp / name).mkdir(parents=True, exist_ok=True)
    return Server.started(tmp / name, {"FEATURE_STORE_URL": "none", **(env or {})})


def sample(server: Server) -> dict:
    status, tx = request(f"{server.url}/sample-transaction")
    assert status == 200, tx
    return tx  # type: ignore[return-value]


def load(server: Server, tmp: Path, body: bytes, seconds: float) -> dict:
    """Closed-loop /predict load at ``CONNECTIONS`` connections (wrk or asyncio)."""
    args = argparse.Namespace(seconds=seconds)
    return throughput_of(server, tmp, "POST", "/predict", body, CONNECTIONS, args)


def failed_fraction(result: dict) -> float:
    return result["errors"] / max(1, result["requests"] + result["errors"])


def schemathesis(tmp: Path, form: dict) -> dict:
    """Promise 1: ``st run --checks all`` against the live schema."""
    server = start(tmp, "schemathesis", {**AUTH_ENV, "PREDICTION_LOG_DIR": str(tmp / "audit")})
    report = tmp / "schemathesis.json"
    command = [
        *(sys.executable, "-m", "schemathesis.cli", "--config-file", str(ST_CONFIG)),
        *("run", f"{server.url}/openapi.json"),
        *("-H", f"Authorization: Bearer {TOKEN}"),  # every check: benchmarks/schemathesis.toml
        *("--max-examples", str(form["examples"]), "--seed", "14", "--workers", "2"),
        *("--generation-database", "none", "--no-color", "--request-timeout", "30"),
        *("--report", "json", "--report-json-path", str(report)),
    ]
    skipped = ""
    try:
        run = subprocess.run(
            command, capture_output=True, text=True, timeout=900, check=False, cwd=tmp
        )  # cwd: its .schemathesis/ cache lands in the scratch directory
        if CPYTHON_AST_BUG in run.stdout:  # the tool crashed, not a finding: once more
            skipped = " (coverage phase skipped: CPython 3.11's ast.parse crashed in hypothesis)"
            command += ["--phases", "examples,fuzzing,stateful"]
            run = subprocess.run(
                command, capture_output=True, text=True, timeout=900, check=False, cwd=tmp
            )
    finally:
        server.stop()
    result = json.loads(report.read_text()) if report.exists() else {}
    failures = [
        {"check": f["code"], "title": f["title"], "operations": f["operations"]}
        for f in result.get("failures", [])
    ]
    cases = result.get("test_cases", {}).get("generated", 0)
    errors = result.get("errors", [])
    return {
        "measured": f"{len(failures)} failure kinds, {len(errors)} errors in {cases} cases"
        + skipped,
        "passed": run.returncode == 0 and not failures and not errors and cases > 0,
        "test_cases": cases,
        "failures": failures,
        "errors": errors,
        "output": _failures_section(run.stdout) if run.returncode else "",
    }


def _failures_section(stdout: str) -> str:
    """Schemathesis's FAILURES section (each failure with a curl to reproduce it), bounded."""
    start = stdout.find("= FAILURES =")
    lines = stdout[start if start >= 0 else -20_000 :].splitlines()
    return "\n".join(line[:300] for line in lines if line.strip())[:12_000]


def corpus(tmp: Path, form: dict) -> dict:
    """Promise 2: the hostile corpus, with authentication (so bodies reach the parsers)."""
    server = start(tmp, "corpus", {**AUTH_ENV, "PREDICTION_LOG_DIR": str(tmp / "audit")})
    try:
        out = hostile_corpus(server.port, sample(server), TOKEN)
        alive = request(f"{server.url}/health")[0] == 200
    finally:
        server.stop()
    fives = sum(n for status, n in out["statuses"].items() if int(status) >= 500)
    return {
        "measured": f"{len(out['failures'])} wrong answers ({fives} 5xx) of {out['requests']}",
        "passed": not out["failures"] and alive,
        **out,
    }


def saturation(tmp: Path, form: dict) -> dict:
    """Promise 3: /predict saturated at ``CONNECTIONS`` connections."""
    server = start(tmp, "saturation")
    try:
        result = load(server, tmp, json.dumps(sample(server)).encode(), form["saturation_s"])
    finally:
        server.stop()
    return {
        "measured": f"{result['errors']} failed of {result['requests'] + result['errors']} "
        f"({result['rps']} req/s, {form['saturation_s']} s)",
        "passed": result["errors"] == 0 and result["requests"] > 0,
        **result,
    }


def kill_worker(tmp: Path, form: dict) -> dict:
    """Promise 4: SIGKILL one worker a third of the way into the load."""
    server = start(tmp, "kill")
    try:
        body = json.dumps(sample(server)).encode()
        before = children(server)
        out: dict = {}
        thread = threading.Thread(
            target=lambda: out.update(load(server, tmp, body, form["kill_s"]))
        )
        thread.start()
        time.sleep(form["kill_s"] / 3)
        os.kill(before[0], signal.SIGKILL)
        thread.join()
        after = children(server)
    finally:
        server.stop()
    fraction = failed_fraction(out)
    return {
        "measured": f"{out['errors']} failed of {out['requests'] + out['errors']} "
        f"({fraction:.3%}); workers {len(before)} -> {len(after)}",
        "passed": fraction < MAX_KILL_FAILED and before[0] not in after and len(after) == 2,
        "killed": before[0],
        **out,
    }


def children(server: Server) -> list[int]:
    pid = server.proc.pid
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def sigterm(tmp: Path, form: dict) -> dict:
    """Promise 5: SIGTERM to the master 1.5 s into the load; the drain outlasts the load."""
    seconds = form["drain_load_s"]
    server = start(tmp, "sigterm", {"DRAIN_SECONDS": str(seconds + 2)})
    try:
        body = json.dumps(sample(server)).encode()
        out: dict = {}
        thread = threading.Thread(target=lambda: out.update(load(server, tmp, body, seconds)))
        thread.start()
        time.sleep(1.5)
        server.proc.send_signal(signal.SIGTERM)
        thread.join()
        code = server.proc.wait(timeout=seconds + 60)
    finally:
        server.stop()
    log = server.log.read_text().splitlines()
    first = next((i for i, line in enumerate(log) if "draining for" in line), len(log))
    during = sum('"POST /predict HTTP' in line and '" 200 ' in line for line in log[first:])
    return {
        "measured": f"{out['errors']} failed of {out['requests'] + out['errors']}, "
        f"{during} answered 200 after SIGTERM, exit {code}",
        "passed": out["errors"] == 0 and during > 0 and code == 0,
        "served_after_sigterm": during,
        "exit_code": code,
        **out,
    }


def slow_clients(tmp: Path, form: dict) -> dict:
    """Promise 6: /health probed while slow and idle clients hold connections."""
    server = start(tmp, "slow")
    clients = SlowClients(server.port, batch_body(sample(server)), SLOW_CLIENTS)
    try:
        clients.open()
        time.sleep(0.5)
        probes = probe_health(server.port, **HEALTH)
    finally:
        clients.close()
        server.stop()
    return {
        "measured": f"{probes['answered_within_deadline']} of {probes['probes']} probes "
        f"answered within {HEALTH['deadline_s']:g} s "
        + (f"(max {probes['max_latency_s']} s)" if probes["max_latency_s"] else "(none answered)"),
        "passed": probes["probes"] > 0 and probes["answered_within_deadline"] == probes["probes"],
        "clients": SLOW_CLIENTS,
        **probes,
    }


def rss(tmp: Path, form: dict) -> dict:
    """Promise 7: per-worker RSS after a 10 % warm-up and at the end of ``form['rss']``
    requests, in 2 s rounds of load; worker recycling (max_requests) off."""
    total = form["rss"]
    server = start(tmp, "rss", {"GUNICORN_CMD_ARGS": "--max-requests 0"})
    samples: list[dict] = []
    try:
        body = json.dumps(sample(server)).encode()
        served = errors = 0
        baseline = pids = None
        while served < total:
            result = load(server, tmp, body, 2)
            served, errors = served + result["requests"], errors + result["errors"]
            if baseline is None and served >= total // 10:
                pids, baseline = children(server), worker_rss_mib(server.proc.pid)
                samples.append({"requests": served, "rss_mib": baseline})
        final_pids, final = children(server), worker_rss_mib(server.proc.pid)
        samples.append({"requests": served, "rss_mib": final})
    finally:
        server.stop()
    growth = max((f - b) / b for b, f in zip(baseline, final, strict=True))
    return {
        "measured": f"{baseline} -> {final} MiB per worker over {served} requests "
        f"(max growth {growth:+.1%}), {errors} failed",
        "passed": growth < MAX_RSS_GROWTH and final_pids == pids and errors == 0,
        "criterion": f"growth after the first 10 % of requests < {MAX_RSS_GROWTH:.0%}, "
        "same workers throughout",
        "samples": samples,
    }


PROMISES = {
    1: ("Schemathesis, every check, on /openapi.json: 0 failures", schemathesis),
    2: ("Hostile bodies to every POST endpoint: 0 server errors, JSON errors", corpus),
    3: (f"/predict saturated at {CONNECTIONS} connections: 0 failed", saturation),
    4: ("kill -9 of a worker under load: < 0.1% failed", kill_worker),
    5: ("SIGTERM to the master under load: 0 failed (drain)", sigterm),
    6: ("Slow/idle clients: every /health probe answered within 1 s", slow_clients),
    7: ("Worker RSS over the run: growth after warm-up < 10%", rss),
}


def table(rows: list[dict]) -> str:
    lines = [f"{'#':<2} {'promise':<68} {'result':<6} measured"]
    for row in rows:
        verdict = "PASS" if row["passed"] else "FAIL"
        lines.append(f"{row['id']:<2} {row['promise']:<68} {verdict:<6} {row['measured']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--short", action="store_true", help="the CI form (shorter load phases)")
    ap.add_argument("--only", default="", help="comma-separated promise numbers (default all)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results/reliability.json")
    args = ap.parse_args(argv)
    name = "short" if args.short else "full"
    wanted = [int(n) for n in args.only.split(",") if n.strip()] or list(PROMISES)
    rows = []
    with tempfile.TemporaryDirectory(prefix="reliability-") as tmp:
        for number in wanted:
            promise, check = PROMISES[number]
            started = time.perf_counter()
            try:
                row = check(Path(tmp), FORMS[name])
            except Exception as exc:  # a promise that cannot be measured fails
                row = {"measured": f"could not run: {exc!r:.300}", "passed": False}
            row = {"id": number, "promise": promise, **row}
            row["seconds"] = round(time.perf_counter() - started, 1)
            rows.append(row)
            verdict = "PASS" if row["passed"] else "FAIL"
            print(f"[{number}] {verdict} {row['measured']}", flush=True)
    result = {
        "form": name,
        "load_generator": "wrk" if shutil.which("wrk") else "python-asyncio",
        "workers": 2,
        "connections": CONNECTIONS,
        "passed": all(row["passed"] for row in rows),
        "promises": rows,
    }
    write_result(args.out, result)
    print(table(rows))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
