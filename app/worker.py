"""The gunicorn worker: gunicorn's sync worker with every wait on a client in one poll loop.

gunicorn's sync worker reads with blocking calls and lingers up to 2 s after answering: a
client that sends nothing, or less than its Content-Length, or never reads, holds a worker.

``ServiceWorker`` keeps the sync model (one request at a time, gunicorn's own parser and
WSGI code) and moves every wait on a client into one ``poll()`` loop per worker:

- a request reaches the app only once it is complete in memory: headers and the whole body
  (Content-Length, or chunked up to its last chunk); a client has ``CLIENT_REQUEST_SECONDS``
  (default 10) from connecting to send it, then gets a 408;
- the answer is sent without blocking; what a slow reader has not taken waits in the loop
  (``CLIENT_RESPONSE_SECONDS``, default 10) while the worker serves others;
- the socket is closed at once when the client left nothing unread (a FIN, no linger); when
  it did, the drain of at most 64 KiB and 2 s happens in the loop, not in the worker;
- a worker holds at most ``MAX_WAITING`` incomplete requests (then 503).

A body over ``MAX_CONTENT_LENGTH`` is not buffered (the app answers 413 from the headers).
The fast path costs one ``recv`` and one ``send``. SIGTERM drains (``DRAIN_SECONDS``, 5):
the worker keeps accepting and serving, queued connections included, while ``/ready``
answers 503; then it stops accepting, finishes what it holds and exits (gunicorn's own
SIGTERM drops the accept queue). SIGINT and SIGQUIT still stop at once.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import threading
import time
from typing import Any

from gunicorn import http
from gunicorn.workers.sync import SyncWorker

import app.api


def _seconds(name: str, default: float) -> float:
    value = float(os.environ.get(name) or default)
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


#: Seconds a worker keeps serving after SIGTERM, with /ready answering 503.
DRAIN_SECONDS = _seconds("DRAIN_SECONDS", 5)
#: Seconds a client has, from connecting, to send its whole request.
REQUEST_SECONDS = _seconds("CLIENT_REQUEST_SECONDS", 10)
#: Seconds a client has to read its answer.
RESPONSE_SECONDS = _seconds("CLIENT_RESPONSE_SECONDS", 10)
MAX_WAITING = 512  # incomplete requests a worker holds
#: Incomplete requests' bytes a worker holds at most, in MAX_CONTENT_LENGTH bodies.
BUFFER_BODIES = 4
MAX_HEAD, RECV_BYTES = 64 * 1024, 1024 * 1024
LINGER_SECONDS, LINGER_BYTES = 2.0, 64 * 1024
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
COMPLETE, PARTIAL, HEAD_TOO_LARGE = "complete", "partial", "head too large"
READ, WRITE = select.POLLIN, select.POLLOUT


def frame(data: bytes | bytearray, max_body: int) -> tuple[str, bool]:
    """(whether ``data`` holds a whole request, whether it expects a 100 Continue).

    Only the framing: headers up to the blank line, then Content-Length bytes or chunks up
    to the last. Everything else (and any framing this reads otherwise) is gunicorn's
    parser's to judge and answer. A body declared over ``max_body`` counts as complete
    with its headers: the app answers 413 without reading it.
    """
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return (HEAD_TOO_LARGE if len(data) > MAX_HEAD else PARTIAL), False
    head = bytes(data[:end]).lower()
    expects = b"\r\nexpect:" in head and b"100-continue" in head
    start = end + 4
    if b"chunked" in _header(head, b"transfer-encoding"):
        return _chunked(data, start, max_body), expects
    value = _header(head, b"content-length").strip()
    if not value.isdigit() or int(value) > max_body:
        return COMPLETE, expects
    return (COMPLETE if len(data) - start >= int(value) else PARTIAL), expects


def _header(head: bytes, name: bytes) -> bytes:
    """The first value of header ``name`` in the lower-cased ``head``; b"" without one."""
    at = head.find(b"\r\n" + name + b":")
    if at < 0:
        return b""
    at += len(name) + 3
    stop = head.find(b"\r\n", at)
    return head[at : stop if stop >= 0 else len(head)]


def _chunked(data: bytes | bytearray, at: int, max_body: int) -> str:
    """COMPLETE once the last chunk and the trailers' blank line are in ``data``."""
    start = at
    while True:
        eol = data.find(b"\r\n", at)
        if eol < 0:
            return PARTIAL if len(data) - at < 1024 else COMPLETE
        try:
            size = int(bytes(data[at:eol]).split(b";", 1)[0].strip(), 16)
        except ValueError:
            return COMPLETE  # the parser answers 400
        if size == 0:
            return COMPLETE if data.find(b"\r\n\r\n", eol) >= 0 else PARTIAL
        at = eol + 2 + size + 2
        if at - start > 2 * max_body:
            return COMPLETE  # the app reads past its limit and answers 413
        if at > len(data):
            return PARTIAL


def _canned(status: str, message: str) -> bytes:  # an answer the loop writes itself
    body = b'{"error": "' + message.encode() + b'"}'
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nConnection: close\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


class _Answer:
    """Where gunicorn writes one request's answer: memory, sent by the loop."""

    __slots__ = ("chunks",)

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.chunks.append(bytes(data))

    def send(self, data: bytes) -> int:
        # A 100 Continue now would follow the whole body: the loop sent one when it
        # waited for the body, or the client sent it without waiting (RFC 9110 10.1.1).
        if data != CONTINUE:
            self.chunks.append(bytes(data))
        return len(data)

    def gettimeout(self) -> float:
        return 0.0

    def setblocking(self, flag: bool) -> None:
        pass


class _Client:
    """A connection the loop holds: what came in, what is left to send, its deadline."""

    __slots__ = (
        "addr",
        "continued",
        "data",
        "deadline",
        "drained",
        "events",
        "listener",
        "out",
        "sock",
    )

    def __init__(self, sock: socket.socket, addr: Any, listener: socket.socket) -> None:
        self.sock, self.addr, self.listener = sock, addr, listener
        self.data: bytes | bytearray = b""
        self.out: memoryview | None = None
        self.deadline = 0.0
        self.events = 0  # what the loop polls it for; 0: not waiting
        self.drained = -1  # bytes read after the answer; -1: not shut down yet
        self.continued = False  # a 100 Continue was sent


class ServiceWorker(SyncWorker):
    """A sync worker no client can hold, with a SIGTERM drain (see the module docstring)."""

    def init_process(self) -> None:
        self._clients: dict[int, _Client] = {}  # fd -> a client the loop waits on
        self._poll = select.poll()
        self._next_deadline = float("inf")
        self._inbox = memoryview(bytearray(RECV_BYTES))  # recv_into: no allocation per call
        super().init_process()

    def run(self) -> None:
        limit = getattr(self.wsgi, "config", {}).get("MAX_CONTENT_LENGTH")
        self._max_body = int(limit or 8 * 1024 * 1024)
        listeners = {s.fileno(): s for s in self.sockets}
        for s in self.sockets:
            s.setblocking(False)
            self._poll.register(s, select.POLLIN)
        self._poll.register(self.PIPE[0], select.POLLIN)
        accepting = True
        heartbeat = self.timeout or 0.5
        while self.alive or self._clients:
            self.notify()
            if accepting and not self.alive:  # drained, or max_requests: finish what is held
                accepting = False
                for fd in listeners:
                    self._poll.unregister(fd)
            if not self.is_parent_alive():
                break
            now = time.monotonic()
            if now >= self._next_deadline:
                self._expire(now)
            wait = min(heartbeat, max(0.0, self._next_deadline - now))
            try:
                events = self._poll.poll(wait * 1000)
            except InterruptedError:
                continue
            for fd, _ in events:
                if fd in listeners:
                    if accepting:
                        self._accept(listeners[fd])
                elif fd == self.PIPE[0]:
                    os.read(fd, 1)
                elif (client := self._clients.get(fd)) is not None:
                    self._progress(client)
        for client in list(self._clients.values()):
            self._close(client)

    def _accept(self, listener: socket.socket) -> None:
        """Take what waits in the accept queue (a bounded number: fair to held clients)."""
        for _ in range(16):
            try:
                sock, addr = listener.accept()
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                    return
                raise
            sock.setblocking(False)
            client = _Client(sock, addr, listener)
            client.deadline = time.monotonic() + REQUEST_SECONDS
            self._receive(client)
            if not self.alive:
                return

    def _progress(self, client: _Client) -> None:
        if client.out is None:
            self._receive(client)
        elif client.out:
            self._send(client)
        else:
            self._linger(client)

    def _receive(self, client: _Client) -> None:
        """Read what the client sent; serve the request once it is whole."""
        try:
            while True:
                n = client.sock.recv_into(self._inbox)
                if not n:
                    self._close(client)  # gone before its request was whole
                    return
                if not client.data:
                    client.data = bytes(self._inbox[:n])
                else:
                    if isinstance(client.data, bytes):
                        client.data = bytearray(client.data)
                    client.data += self._inbox[:n]
                if n < RECV_BYTES:
                    break
        except BlockingIOError:
            pass
        except OSError:
            self._close(client)
            return
        state, expects = frame(client.data, self._max_body)
        if state == PARTIAL:
            waiting = len(self._clients) - (client.events != 0)
            if waiting >= MAX_WAITING or self._buffered(client) > BUFFER_BODIES * self._max_body:
                message = "too many incomplete requests; retry"
                self._answer(client, _canned("503 Service Unavailable", message))
                return
            if expects and not client.continued:
                client.continued = True
                with contextlib.suppress(OSError):
                    client.sock.send(CONTINUE)
            if not client.events:
                self._wait(client, READ)
            return
        if state == HEAD_TOO_LARGE:
            message = f"request headers over {MAX_HEAD} bytes"
            self._answer(client, _canned("431 Request Header Fields Too Large", message))
            return
        self._answer(client, self._serve(client))

    def _buffered(self, client: _Client) -> int:
        held = sum(len(c.data) for c in self._clients.values() if c is not client)
        return held + len(client.data)

    def _serve(self, client: _Client) -> bytes:
        """gunicorn's SyncWorker.handle on the request in memory; the answer's bytes."""
        answer, req = _Answer(), None
        data = bytes(client.data)
        client.data = b""
        try:
            req = next(http.get_parser(self.cfg, [data], client.addr))
            self.handle_request(client.listener, req, answer, client.addr)
        except (http.errors.NoMoreData, StopIteration):
            pass
        except BaseException as exc:  # as gunicorn's handle: a 500, logged
            self.handle_error(req, answer, client.addr, exc)
        return b"".join(answer.chunks)

    def _answer(self, client: _Client, data: bytes) -> None:
        client.out = memoryview(data)
        client.deadline = time.monotonic() + RESPONSE_SECONDS
        self._send(client)

    def _send(self, client: _Client) -> None:
        out = client.out
        try:
            while out:
                out = out[client.sock.send(out) :]
        except BlockingIOError:
            client.out = out
            self._wait(client, WRITE)
            return
        except OSError:
            self._close(client)
            return
        client.out = memoryview(b"")
        self._linger(client)

    def _linger(self, client: _Client) -> None:
        """Close once nothing the client sent is left unread (else the kernel would send
        a RST that can cut the answer short): at once when nothing is, else after reading
        it, at most LINGER_BYTES within LINGER_SECONDS."""
        first = client.drained < 0
        if first:
            try:
                client.sock.shutdown(socket.SHUT_WR)
            except OSError:
                self._close(client)
                return
            client.drained = 0
            client.deadline = time.monotonic() + LINGER_SECONDS
        try:
            while client.drained < LINGER_BYTES:
                data = client.sock.recv(LINGER_BYTES)
                if not data:
                    break
                client.drained += len(data)
        except BlockingIOError:
            if first and client.drained == 0:
                self._close(client)  # nothing unread: a FIN, no linger
            else:
                self._wait(client, READ)
            return
        except OSError:
            pass
        self._close(client)

    def _wait(self, client: _Client, events: int) -> None:
        fd = client.sock.fileno()
        if client.events:
            self._poll.modify(fd, events)
        else:
            self._poll.register(fd, events)
            self._clients[fd] = client
        client.events = events
        self._next_deadline = min(self._next_deadline, client.deadline)

    def _close(self, client: _Client) -> None:
        if client.events:
            fd = client.sock.fileno()
            self._poll.unregister(fd)
            del self._clients[fd]
            client.events = 0
        client.sock.close()

    def _expire(self, now: float) -> None:
        """408 to clients still sending, close the rest past their deadline."""
        self._next_deadline = float("inf")
        for client in list(self._clients.values()):
            if client.deadline > now:
                self._next_deadline = min(self._next_deadline, client.deadline)
            elif client.out is None:
                message = f"request not received in full within {REQUEST_SECONDS:g} s"
                self._answer(client, _canned("408 Request Timeout", message))
            else:
                self._close(client)

    def handle_exit(self, sig: int, frame: Any) -> None:
        """SIGTERM: mark the app draining (``/ready`` 503) and stop after the grace period."""
        if app.api.DRAINING.is_set():
            return
        app.api.DRAINING.set()
        self.log.info("worker %s draining for %gs", self.pid, DRAIN_SECONDS)
        if DRAIN_SECONDS == 0:
            self.alive = False
            return
        timer = threading.Timer(DRAIN_SECONDS, self._stop)
        timer.daemon = True
        timer.start()

    def _stop(self) -> None:
        """End of the drain: leave the accept loop, waking it if it waits in poll()."""
        self.alive = False
        os.write(self.PIPE[1], b"1")
