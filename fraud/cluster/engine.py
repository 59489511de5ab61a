"""Open the cluster a stage runs on: a LocalCluster of ``compute.n_workers`` processes, or the
scheduler at ``compute.address``; closed (a LocalCluster stopped) when the stage ends."""

from __future__ import annotations

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
        yield client
    finally:
        client.close()


def shape(client: Client) -> tuple[int, int]:
    """(workers, threads per worker) of the cluster the client is connected to."""
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    threads = sorted({int(w["nthreads"]) for w in workers}) or [0]
    return len(workers), threads[0]


def record(cfg: ComputeConfig, client: Client | None) -> dict[str, Any]:
    """``cfg.record`` with the shape of the cluster actually used (None: the local engine)."""
    return cfg.record(*shape(client)) if client is not None else cfg.record()
