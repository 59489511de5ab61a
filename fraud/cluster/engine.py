"""Open the cluster a stage runs on: a LocalCluster of ``compute.n_workers`` processes, or the
scheduler at ``compute.address``; closed (a LocalCluster stopped) when the stage ends."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from fraud.cluster.config import ComputeConfig

if TYPE_CHECKING:
    from distributed import Client

#: Seconds to wait for a scheduler (and, on an address, for at least one worker).
CONNECT_TIMEOUT_S = 30


@contextmanager
def cluster(cfg: ComputeConfig) -> Iterator[Client]:
    """A ``distributed.Client`` for the configured cluster, closed afterwards.

    A LocalCluster listens on 127.0.0.1 only, without a dashboard (no fixed port to collide
    on); worker processes are started and stopped with it. With an address the client waits
    up to ``CONNECT_TIMEOUT_S`` for the scheduler and one worker, and fails naming the address.
    """
    from distributed import Client, LocalCluster

    # Each shuffle logs its start and end at WARNING level: noise in a stage's output.
    logging.getLogger("distributed.shuffle._scheduler_plugin").setLevel(logging.ERROR)
    if cfg.address is None:
        with (
            LocalCluster(
                n_workers=cfg.n_workers,
                threads_per_worker=cfg.threads_per_worker,
                memory_limit=cfg.memory_limit,
                processes=True,
                host="127.0.0.1",
                dashboard_address=":0",
            ) as local,
            Client(local) as client,
        ):
            yield client
        return
    try:
        client = Client(cfg.address, timeout=CONNECT_TIMEOUT_S)
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        raise OSError(
            f"compute.address {cfg.address}: no Dask scheduler with a worker answered within "
            f"{CONNECT_TIMEOUT_S} s ({exc})"
        ) from None
    try:
        _check_code(client, cfg.address)
        yield client
    finally:
        client.close()


def code_digest() -> str:
    """sha256 of this process's ``fraud`` package sources (names and contents)."""
    import hashlib
    from pathlib import Path

    import fraud

    root = Path(fraud.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _check_code(client: Client, address: str) -> None:
    """Fail naming the workers that cannot import ``fraud`` or run other sources of it: a
    cluster must run the revision the stage runs (the same image, or this checkout on its
    PYTHONPATH)."""
    ours = code_digest()
    try:
        theirs = client.run(code_digest)
    except ImportError as exc:
        raise OSError(
            f"compute.address {address}: the workers cannot import this project ({exc}); "
            "start them from the project's image or with its checkout on PYTHONPATH"
        ) from None
    stale = sorted(worker for worker, digest in theirs.items() if digest != ours)
    if stale:
        raise OSError(
            f"compute.address {address}: worker(s) {', '.join(stale)} run other fraud/ sources "
            "than this stage; restart them on this revision"
        )


def shape(client: Client) -> tuple[int, int]:
    """(workers, threads per worker) of the cluster the client is connected to."""
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    threads = sorted({int(w["nthreads"]) for w in workers}) or [0]
    return len(workers), threads[0]


def record(cfg: ComputeConfig, client: Client | None) -> dict[str, Any]:
    """``cfg.record`` with the shape of the cluster actually used (None: the local engine)."""
    return cfg.record(*shape(client)) if client is not None else cfg.record()
