"""Hostile clients for ``benchmarks.reliability``: a corpus of bad bodies, and slow clients.

Everything speaks raw HTTP/1.1 over a socket to 127.0.0.1, so the bytes on the wire are
exactly the corpus's (no client library re-encodes, fixes or refuses them).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

#: The POST endpoints every hostile body goes to.
ENDPOINTS = ("/predict", "/predict/batch", "/v2/models/fraud-detector/infer", "/feedback")
MIB = 1024 * 1024


def valid_bodies(tx: dict) -> dict[str, Any]:
    """A well-formed body per endpoint, built from the sample transaction."""
    inputs = [
        {"name": k, "datatype": "FP64" if isinstance(v, float) else "BYTES", "shape": [1]}
        | {"data": [v]}
        for k, v in tx.items()
        if isinstance(v, float | str)
    ]
    return {
        "/predict": tx,
        "/predict/batch": {"transactions": [tx, tx]},
        "/v2/models/fraud-detector/infer": {"inputs": inputs},
        "/feedback": {"transaction_id": "t-hostile", "is_fraud": 1},
    }


def _first_object(body: Any) -> dict:
    """The innermost first object (a batch's first item, V2's first input)."""
    for value in body.values():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            return _first_object(value[0])
    return body


def _with_key(body: Any, key: str) -> Any:
    copy = json.loads(json.dumps(body))
    _first_object(copy)[key] = 0
    copy[key] = 0
    return copy


def _with_value(body: Any, value: str) -> Any:
    copy = json.loads(json.dumps(body))
    target = _first_object(copy)
    name = next(k for k, v in target.items() if isinstance(v, str))
    target[name] = value
    return copy


def _with_number(body: Any, literal: bytes) -> bytes:
    """``body`` with its first numeric field (or list of numbers) set to ``literal``."""
    copy = json.loads(json.dumps(body))
    target = _first_object(copy)
    for name, value in target.items():
        numbers = value if isinstance(value, list) else [value]
        if numbers and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in numbers
        ):
            target[name] = "__NUMBER__"
            text = literal if value is numbers else b"[" + literal + b"]"
            return json.dumps(copy).encode().replace(b'"__NUMBER__"', text)
    raise ValueError("no numeric field")


def _escaped(obj: Any) -> bytes:
    return json.dumps(obj).encode()  # ensure_ascii: "\ud800" as a 6-character escape


def _raw(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8", "surrogatepass")  # ED A0 80


def corpus(body: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """(case name, request) pairs for one endpoint's valid ``body``. A request is a dict of
    ``body`` (bytes), optional ``content_type``, ``chunked``, ``declared`` (a Content-Length
    larger than the body) and ``expect`` (the status it must get; default any 4xx)."""
    good = _escaped(body)
    yield "lone surrogate key, raw bytes ED A0 80", {"body": _raw(_with_key(body, "\ud800"))}
    yield "lone surrogate key, \\ud800 escape", {"body": _escaped(_with_key(body, "\ud800"))}
    yield "lone surrogate value, raw bytes", {"body": _raw(_with_value(body, "a\ud800"))}
    yield "lone surrogate value, escape", {"body": _escaped(_with_value(body, "a\udfff"))}
    yield "deep nesting (100k arrays)", {"body": b"[" * 100_000 + b"]" * 100_000}
    deep = b'{"a":' * 20_000 + b"0" + b"}" * 20_000
    yield "deep nesting in a field", {"body": good[:-1] + b',"deep":' + deep + b"}"}
    for literal in (b"1e400", b"9" * 5000, b"NaN", b"Infinity", b"-Infinity"):
        yield f"number field = {literal[:8].decode()}", {"body": _with_number(body, literal)}
    for name, wrong in (("array", []), ("string", "x"), ("number", 1), ("null", None)):
        yield f"body is a JSON {name}", {"body": _escaped(wrong)}
    yield "a string field given an object", {"body": _escaped(_with_value(body, {"x": 1}))}  # type: ignore[arg-type]
    yield "truncated JSON", {"body": good[: len(good) // 2]}
    yield "text/plain", {"body": good, "content_type": "text/plain"}
    yield "form-encoded", {"body": b"a=1&b=2", "content_type": "application/x-www-form-urlencoded"}
    yield "no content type", {"body": good, "content_type": None}
    yield "empty body", {"body": b""}
    yield "duplicate keys", {"body": good.replace(b"{", b'{"dup":1,"dup":2,', 1), "accept": True}
    yield "non-UTF-8 (latin-1 byte E9)", {"body": good.replace(b"{", b'{"caf\xe9":"\xe9",', 1)}
    yield "overlong UTF-8 C0 AF", {"body": good.replace(b"{", b'{"x":"\xc0\xaf",', 1)}
    # JSON text may be UTF-16 (RFC 8259 8.1 asks for UTF-8; the fallback parser detects it)
    yield "UTF-16 body", {"body": good.decode().encode("utf-16"), "accept": True}
    yield "chunked body over 8 MiB", {"body": b" " * (9 * MIB), "chunked": True, "expect": 413}
    yield "Content-Length 9 MiB, 1 KB sent", {"body": good, "declared": 9 * MIB, "expect": 413}


def extra_cases() -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Cases for one endpoint only: /predict's own small body limit."""
    big = b'{"pad":"' + b"x" * (3 * MIB) + b'"}'
    yield "/predict", "3 MB body", {"body": big, "expect": 413}
    yield "/predict", "3 MB chunked body", {"body": big, "chunked": True, "expect": 413}


def http(port: int, path: str, case: dict[str, Any], token: str | None, timeout: float = 30):
    """Send one hostile request; (status, headers text, body bytes), status -1 if cut off."""
    body: bytes = case["body"]
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
    content_type = case.get("content_type", "application/json")
    if content_type:
        head += f"Content-Type: {content_type}\r\n"
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    if case.get("chunked"):
        head += "Transfer-Encoding: chunked\r\n"
        step = 256 * 1024
        wire = b"".join(
            b"%x\r\n%s\r\n" % (len(body[i : i + step]), body[i : i + step])
            for i in range(0, len(body), step)
        )
        wire += b"0\r\n\r\n"
    else:
        head += f"Content-Length: {case.get('declared', len(body))}\r\n"
        wire = body
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head.encode() + b"\r\n")
        try:
            sock.sendall(wire)
            if case.get("declared"):
                sock.shutdown(socket.SHUT_WR)  # the rest never comes
        except OSError:
            pass  # the server answered and closed before reading it all (a 413): read that
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except OSError:
            pass
    raw = b"".join(chunks)
    head_bytes, _, payload = raw.partition(b"\r\n\r\n")
    try:
        status = int(head_bytes.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return -1, head_bytes.decode("latin-1"), payload
    return status, head_bytes.decode("latin-1"), payload


def judge(status: int, headers: str, payload: bytes, case: dict[str, Any]) -> str | None:
    """None if the answer is right, else what is wrong with it."""
    if status == -1:
        return "no HTTP answer"
    if status >= 500:
        return f"server error {status}: {payload[:200]!r}"
    if "application/json" not in headers.lower():
        return f"{status} not JSON: {headers.splitlines()[1:4]}"
    try:
        answer = json.loads(payload)
    except ValueError:
        return f"{status} body is not JSON: {payload[:120]!r}"
    if "expect" in case and status != case["expect"]:
        return f"{status}, expected {case['expect']}: {payload[:200]!r}"
    if status < 400:
        if case.get("accept"):
            return None
        # a batch answers 200 with the bad item reported at its index
        errors = answer.get("n_errors") if isinstance(answer, dict) else None
        return None if errors else f"{status} accepted: {payload[:200]!r}"
    message = " ".join(str(answer.get(k, "")) for k in ("error", "message"))
    return None if message.strip() else f"{status} with no error message: {payload[:200]!r}"


def hostile_corpus(port: int, tx: dict, token: str | None) -> dict[str, Any]:
    """Every corpus case to every POST endpoint; failures listed with what went wrong."""
    cases = [
        (path, name, case)
        for path, body in valid_bodies(tx).items()
        for name, case in corpus(body)
    ]
    cases += list(extra_cases())
    failures, statuses = [], {}
    for path, name, case in cases:
        status, headers, payload = http(port, path, case, token)
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        wrong = judge(status, headers, payload, case)
        if wrong:
            failures.append({"endpoint": path, "case": name, "answer": wrong})
    return {"requests": len(cases), "statuses": statuses, "failures": failures}


class SlowClients:
    """Connections that hold a worker: idle, half headers, short body, unread answer."""

    def __init__(self, port: int, batch_body: bytes, counts: dict[str, int]) -> None:
        self.port, self.batch_body, self.counts = port, batch_body, counts
        self.socks: list[socket.socket] = []

    def _connect(self, rcvbuf: int | None = None) -> socket.socket:
        sock = socket.socket()
        if rcvbuf:  # a tiny receive window: the server's write blocks on an unread answer
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(5)
        sock.connect(("127.0.0.1", self.port))
        self.socks.append(sock)
        return sock

    def open(self) -> None:
        host = f"Host: 127.0.0.1:{self.port}\r\n"
        for _ in range(self.counts.get("idle", 0)):
            self._connect()
        for _ in range(self.counts.get("half_headers", 0)):
            self._connect().sendall(f"POST /predict HTTP/1.1\r\n{host}Content-Ty".encode())
        for _ in range(self.counts.get("short_body", 0)):
            self._connect().sendall(
                f"POST /predict HTTP/1.1\r\n{host}Content-Type: application/json\r\n"
                'Content-Length: 1000\r\n\r\n{"amount":'.encode()
            )
        for _ in range(self.counts.get("unread_answer", 0)):
            head = (
                f"POST /predict/batch HTTP/1.1\r\n{host}Content-Type: application/json\r\n"
                f"Content-Length: {len(self.batch_body)}\r\n\r\n"
            )
            sock = self._connect(rcvbuf=4096)
            threading.Thread(
                target=_send_quietly, args=(sock, head.encode() + self.batch_body), daemon=True
            ).start()

    def close(self) -> None:
        for sock in self.socks:
            sock.close()


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):  # closed at the end of the phase
        sock.sendall(data)


def probe_health(port: int, seconds: float, every: float, deadline_s: float) -> dict[str, Any]:
    """GET /health every ``every`` s for ``seconds``, each probe on its own thread (a slow
    answer does not delay the next probe); each probe's latency, None if there was no 200
    within ``deadline_s``."""
    payload = f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    latencies: list[float | None] = []

    def probe() -> None:
        started = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=deadline_s) as sock:
                sock.sendall(payload.encode())
                answer = sock.recv(64)
            took = time.monotonic() - started
            ok = answer.startswith(b"HTTP/1.1 200") and took <= deadline_s
            latencies.append(took if ok else None)
        except OSError:
            latencies.append(None)

    threads = []
    begin = time.monotonic()
    for i in range(round(seconds / every)):
        time.sleep(max(0.0, begin + i * every - time.monotonic()))
        threads.append(threading.Thread(target=probe, daemon=True))
        threads[-1].start()
    for thread in threads:
        thread.join(deadline_s + 5)
    answered = [x for x in latencies if x is not None]
    return {
        "probes": len(threads),
        "answered_within_deadline": len(answered),
        "max_latency_s": round(max(answered), 3) if answered else None,
    }
