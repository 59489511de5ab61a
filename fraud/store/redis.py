"""The shared online store: a Redis (or Valkey) server, for several service instances.

Each entity key is one hash (``fraud:fs:<key>``): a field per part and a version ``v``. A
read-compute-write loads the hashes in one pipelined round trip, computes, then saves with one
Lua script that checks every written key's version is still the one read and applies all
changes, or none (optimistic concurrency: on a conflict the batch is loaded and computed again).
Concurrent requests for one card from any number of instances lose no update.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from fraud.store.errors import StoreUnavailableError
from fraud.store.layout import Changes, Loaded

T = TypeVar("T")

PREFIX = "fraud:fs:"
#: Retries of a batch whose keys another writer changed between load and save.
MAX_CONFLICTS = 50

# KEYS: the written keys. ARGV per key: the version read, the number of changes, then
# (part, data) pairs, an empty data deleting the part. All checked first, then all applied.
_SAVE = """
local at = 1
for i = 1, #KEYS do
  local v = redis.call('HGET', KEYS[i], 'v') or '0'
  if v ~= ARGV[at] then return 0 end
  at = at + 2 + 2 * tonumber(ARGV[at + 1])
end
at = 1
for i = 1, #KEYS do
  local n = tonumber(ARGV[at + 1])
  at = at + 2
  for j = 1, n do
    if ARGV[at + 1] == '' then
      redis.call('HDEL', KEYS[i], ARGV[at])
    else
      redis.call('HSET', KEYS[i], ARGV[at], ARGV[at + 1])
    end
    at = at + 2
  end
  redis.call('HINCRBY', KEYS[i], 'v', 1)
end
return 1
"""


class RedisStore:
    """Parts of entity keys in Redis hashes; ``url`` is a redis-py URL."""

    def __init__(self, url: str, timeout_s: float = 2.0) -> None:
        import redis

        self._redis = redis
        self.url = url
        self.name = f"redis store {_safe(url)}"
        self.client = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self._save = self.client.register_script(_SAVE)

    def _load(self, keys: list[str]) -> tuple[dict[str, dict[int, bytes]], list[bytes]]:
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(PREFIX + key)
        loaded: dict[str, dict[int, bytes]] = {}
        versions: list[bytes] = []
        for key, fields in zip(keys, pipe.execute(), strict=True):
            versions.append(fields.pop(b"v", b"0"))
            if fields:
                loaded[key] = {int(part): data for part, data in fields.items()}
        return loaded, versions

    def transact(
        self,
        keys: list[str],
        compute: Callable[[Loaded], tuple[T, Changes]],
        optimistic: bool = True,
    ) -> T:
        """Load ``keys``' parts, ``compute`` (result, changes) and save the changes, atomically
        (again from the load while another writer got there first)."""
        try:
            for _ in range(MAX_CONFLICTS):
                loaded, versions = self._load(keys)
                result, changes = compute(loaded)
                if not changes:
                    return result
                version = dict(zip(keys, versions, strict=True))
                names, args = [], []
                for key, parts in changes.items():
                    names.append(PREFIX + key)
                    args += [version.get(key, b"0"), len(parts)]
                    for part, data in parts.items():
                        args += [part, b"" if data is None else data]
                if self._save(keys=names, args=args):
                    return result
        except self._redis.RedisError as exc:
            raise StoreUnavailableError(f"{self.name}: {exc}") from None
        raise StoreUnavailableError(
            f"{self.name}: {MAX_CONFLICTS} conflicting writes in a row on {len(keys)} key(s)"
        )

    def ping(self) -> None:
        """Raise StoreUnavailableError unless the server answers."""
        try:
            self.client.ping()
        except self._redis.RedisError as exc:
            raise StoreUnavailableError(f"{self.name}: {exc}") from None

    def scan(self) -> Iterable[tuple[str, int, bytes]]:
        """Every (key, part, data), for statistics."""
        for name in self.client.scan_iter(match=PREFIX + "*", count=1000):
            key = name.decode().removeprefix(PREFIX)
            for part, data in self.client.hgetall(name).items():
                if part != b"v":
                    yield key, int(part), data

    def clear(self) -> None:
        """Delete every key of the store (a fresh materialization)."""
        batch = []
        for name in self.client.scan_iter(match=PREFIX + "*", count=1000):
            batch.append(name)
            if len(batch) == 1000:
                self.client.delete(*batch)
                batch = []
        if batch:
            self.client.delete(*batch)

    def close(self) -> None:
        self.client.close()


def _safe(url: str) -> str:
    """``url`` without its password."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    return f"{scheme}{sep}{'***@' if at else ''}{host}" if credentials or at else url
