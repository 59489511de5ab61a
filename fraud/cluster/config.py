"""The ``compute`` config section (conf/compute/): which engine runs the stages, and its shape."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

ENGINES = ("local", "dask")
_MEMORY = re.compile(r"^\d+(\.\d+)?\s*([KMGT]i?B)?$|^auto$", re.IGNORECASE)


@dataclass
class ComputeConfig:
    """``local`` runs in-process; ``dask`` on a LocalCluster (``address`` null) or a scheduler."""

    name: str  # no default: each option of conf/compute/ names itself
    address: str | None = None
    n_workers: int = 2
    threads_per_worker: int = 1
    memory_limit: str = "4GiB"
    partition_rows: int = 250_000

    def check(self) -> None:
        """Raise ValueError naming the field of a bad value."""
        if self.name not in ENGINES:
            raise ValueError(f"compute.name must be one of {ENGINES}, got {self.name!r}")
        if self.address is not None and not re.match(r"^(tcp|tls|inproc)://\S+$", self.address):
            raise ValueError(
                f"compute.address must look like tcp://host:8786 (or be null), got "
                f"{self.address!r}"
            )
        for name in ("n_workers", "threads_per_worker"):
            if getattr(self, name) < 1:
                raise ValueError(f"compute.{name} must be >= 1, got {getattr(self, name)}")
        if self.partition_rows < 1000:
            raise ValueError(f"compute.partition_rows must be >= 1000, got {self.partition_rows}")
        if not _MEMORY.match(str(self.memory_limit)):
            raise ValueError(
                f"compute.memory_limit must be like 4GiB or auto, got {self.memory_limit!r}"
            )

    @property
    def distributed(self) -> bool:
        """Whether the stages run on Dask."""
        return self.name == "dask"

    def partitions(self, rows: int) -> int:
        """How many partitions ``rows`` rows get (``partition_rows`` each, at least one)."""
        return max(1, -(-int(rows) // self.partition_rows))

    def record(self, workers: int | None = None, threads: int | None = None) -> dict[str, Any]:
        """What the manifest records: the engine, and for Dask the cluster shape it ran on."""
        if not self.distributed:
            return {"engine": "local"}
        return {
            "engine": "dask",
            "n_workers": self.n_workers if workers is None else workers,
            "threads_per_worker": self.threads_per_worker if threads is None else threads,
            "partition_rows": self.partition_rows,
        }
