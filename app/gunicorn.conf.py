# ruff: noqa: N999  (gunicorn looks for this file name)
"""gunicorn settings: ``gunicorn -c app/gunicorn.conf.py "app:create_app()"``.

Each worker loads and verifies the model itself (preload_app False), so a bad artifact makes
every worker fail to boot with the file named. The master imports the serving code (not the
model) and the C tree kernel, so a forked worker starts in about 0.15 s instead of 0.85 s,
which matters each time one is recycled. Prometheus runs in multiprocess mode: the metrics
directory is created clean at start and dead workers' files are marked on exit.

SIGTERM drains (``DrainingWorker``): for ``DRAIN_SECONDS`` (default 5) each worker keeps
accepting and serving, connections already queued included, while ``/ready`` answers 503 so
a load balancer stops sending; then it finishes its request and exits. gunicorn's own
SIGTERM closes the listening socket at once, dropping what waits in its accept queue.
SIGINT and SIGQUIT still stop at once.
"""

from __future__ import annotations

import gc
import math
import os
import shutil
import tempfile
import threading
from typing import Any

from gunicorn.workers.sync import SyncWorker

# Loopback unless HOST says otherwise: `make serve` on a laptop is not open to its network;
# the image sets HOST=0.0.0.0 (App Platform routes to the container's port).
bind = f"{os.environ.get('HOST') or '127.0.0.1'}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY") or os.cpu_count() or 1)
timeout = 30
#: Seconds a worker keeps serving after SIGTERM, with /ready answering 503.
DRAIN_SECONDS = float(os.environ.get("DRAIN_SECONDS") or 5)
if DRAIN_SECONDS < 0:
    raise ValueError(f"DRAIN_SECONDS must be >= 0, got {DRAIN_SECONDS}")
# the drain, then the longest request (timeout), before the master kills a worker
graceful_timeout = math.ceil(DRAIN_SECONDS) + timeout
max_requests = 50000
max_requests_jitter = 5000
preload_app = False
accesslog = "-"
errorlog = "-"
# No control socket (gunicornc): by default gunicorn makes one in $HOME/.gunicorn/, and the
# image's user has no home directory, so every start logged "Control server error" (seen by
# make image-test); nothing here drives gunicorn through it.
control_socket_disable = True

_OWN_METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
if _OWN_METRICS_DIR:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.path.join(
        tempfile.gettempdir(), f"fraud-prometheus-{os.getpid()}"
    )
METRICS_DIR = os.environ["PROMETHEUS_MULTIPROC_DIR"]

# After PROMETHEUS_MULTIPROC_DIR is set: prometheus_client picks its value store on import.
import app.api  # noqa: E402
import app.predict  # noqa: E402
import fraud.runtime.artifact  # noqa: E402  (the artifact format and its runtimes)
import fraud.runtime.scoring  # noqa: E402, F401
from fraud.runtime import native  # noqa: E402

# Load (or build) the C tree kernel once, before the workers fork; a warning says if numpy
# will be used instead.
native.kernel()


class DrainingWorker(SyncWorker):
    """A sync worker whose SIGTERM starts a drain of ``DRAIN_SECONDS`` instead of stopping."""

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
        """End of the drain: leave the accept loop, waking it if it waits in select()."""
        self.alive = False
        os.write(self.PIPE[1], b"1")


worker_class = DrainingWorker


def on_starting(server: Any) -> None:
    """Start from an empty metrics directory (stale files would skew counters)."""
    shutil.rmtree(METRICS_DIR, ignore_errors=True)
    os.makedirs(METRICS_DIR, exist_ok=True)


#: Young-generation threshold of the cyclic GC in workers (CPython's default is 700).
GC_GEN0_THRESHOLD = 7000


def post_worker_init(worker: Any) -> None:
    """Keep the cyclic GC off the loaded app's objects and out of the scoring path.

    A batch of 1,000 allocates ~30k containers that reference counting frees; with the
    defaults that still triggered ~21 collections per request, scanning the app's ~57k
    long-lived objects, 4.7 ms of a ~27 ms request. After ``gc.freeze()`` (the app's objects
    are never scanned again) and a young threshold of 7,000: one collection, 0.4 ms.
    A frozen object that later becomes cyclic garbage is never freed; the app's objects live
    as long as the worker, which ``max_requests`` recycles anyway.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])


def child_exit(server: Any, worker: Any) -> None:
    """Mark a dead worker's live metrics files so gauges stop counting it."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    """Remove the metrics directory this config created."""
    if _OWN_METRICS_DIR:
        shutil.rmtree(METRICS_DIR, ignore_errors=True)
