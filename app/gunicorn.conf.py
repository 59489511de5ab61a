# ruff: noqa: N999  (gunicorn looks for this file name)
"""gunicorn settings: ``gunicorn -c app/gunicorn.conf.py "app:create_app()"``.

Each worker loads and verifies the model itself (preload_app False), so a bad artifact makes
every worker fail to boot with the file named. The master imports the serving code (not the
model) and the C tree kernel, so a forked worker starts in about 0.15 s instead of 0.85 s,
which matters each time one is recycled. Prometheus runs in multiprocess mode: the metrics
directory is created clean at start and dead workers' files are marked on exit.

The workers are ``app.worker.ServiceWorker``: gunicorn's sync worker with every wait on a
client (an idle or slow sender, a slow reader, the closing linger) in one poll loop, so no
client can hold a worker, and a SIGTERM drain of ``DRAIN_SECONDS`` (see app/worker.py).
"""

from __future__ import annotations

import gc
import math
import os
import shutil
import tempfile
from typing import Any

# Loopback unless HOST says otherwise: `make serve` on a laptop is not open to its network;
# the image sets HOST=0.0.0.0 (App Platform routes to the container's port).
bind = f"{os.environ.get('HOST') or '127.0.0.1'}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY") or os.cpu_count() or 1)
timeout = 30
# Answers go through the worker's loop (app.worker), never straight to the socket.
sendfile = False
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
import app.api  # noqa: E402  (imported before the workers fork)
import app.predict  # noqa: E402, F401
import fraud.runtime.artifact  # noqa: E402  (the artifact format and its runtimes)
import fraud.runtime.scoring  # noqa: E402, F401
from fraud.runtime import native  # noqa: E402

# Load (or build) the C tree kernel once, before the workers fork; a warning says if numpy
# will be used instead.
native.kernel()


from app.worker import DRAIN_SECONDS, ServiceWorker  # noqa: E402

worker_class = ServiceWorker
# the drain, then the longest request (timeout), before the master kills a worker
graceful_timeout = math.ceil(DRAIN_SECONDS) + timeout


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
