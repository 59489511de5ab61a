"""Small, dependency-free file helpers: atomic writes, stable JSON, content hashes."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary file beside ``path`` to write, renamed onto ``path`` when the block ends,
    removed if it raises: readers see the old file or the whole new one, never half.

    For writers that want a file name (pyarrow's writers); the file gets the usual permissions
    (0666 less the umask), not mkstemp's owner-only 0600, so a server running as another user
    can read what the pipeline wrote, and is synced to disk before the rename.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and rename (``atomic_path``)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def dump_json(data: Any) -> bytes:
    """Pretty, stable JSON bytes (sorted keys, trailing newline)."""
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's content, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_path(path: Path) -> str:
    """``sha256_file`` of a file; of a directory (a partitioned dataset), the sha256 of its
    files' relative names and hashes, in name order."""
    path = Path(path)
    if not path.is_dir():
        return sha256_file(path)
    listing = "".join(
        f"{f.relative_to(path).as_posix()}\0{sha256_file(f)}\n"
        for f in sorted(path.rglob("*"))
        if f.is_file()
    )
    return sha256_bytes(listing.encode())
