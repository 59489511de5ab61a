"""API keys for the scoring endpoints (``POST /predict``, ``POST /predict/batch``).

``API_KEYS`` lists the accepted keys by name and SHA-256, never the keys themselves:
``API_KEYS="pos-terminals:<sha256 hex>,batch-job:<sha256 hex>"``. A request then needs
``Authorization: Bearer <key>``; the digest of what it sends is compared with every stored
digest in constant time, and the key's *name* (never the key) is what logs and metrics see.
With no ``API_KEYS`` the endpoints are open, and each worker warns so at boot: fine on a
laptop, not on a public URL.

    python -m app.keys pos-terminals        # reads a key on stdin, prints name:sha256
"""

from __future__ import annotations

import hashlib
import hmac
import re
import sys

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def parse_api_keys(raw: str | None) -> dict[bytes, str]:
    """``API_KEYS`` as digest -> name; ValueError naming the bad entry (by position and name,
    never printing its digest)."""
    keys: dict[bytes, str] = {}
    for position, entry in enumerate((raw or "").split(","), start=1):
        entry = entry.strip()
        if not entry:
            continue
        name, _, digest = entry.partition(":")
        if not _NAME.match(name):
            raise ValueError(
                f"API_KEYS entry {position}: the name must match [A-Za-z0-9_.-]{{1,64}}"
            )
        if not _DIGEST.match(digest.lower()):
            raise ValueError(
                f"API_KEYS entry {position} ({name}): expected name:<sha256 of the key, 64 hex "
                "digits> (python -m app.keys NAME prints one)"
            )
        if name in keys.values():
            raise ValueError(f"API_KEYS entry {position}: the name {name} is used twice")
        keys[bytes.fromhex(digest)] = name
    return keys


def key_name(authorization: str, keys: dict[bytes, str]) -> str | None:
    """The name of the key a ``Bearer`` Authorization header carries, or None.

    Every stored digest is compared (``hmac.compare_digest``), so the time taken does not
    depend on which key, if any, matched.
    """
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    digest = hashlib.sha256(token.strip().encode("utf-8", "surrogatepass")).digest()
    found = None
    for stored, name in keys.items():
        if hmac.compare_digest(digest, stored):
            found = name
    return found


def main(argv: list[str] | None = None) -> int:
    """Print ``name:sha256`` of a key read from stdin, the form ``API_KEYS`` holds."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not _NAME.match(args[0]):
        print(
            "usage: python -m app.keys NAME < key  (NAME: [A-Za-z0-9_.-]{1,64})", file=sys.stderr
        )
        return 2
    key = sys.stdin.readline().strip()
    if len(key) < 16:
        print("error: a key must be at least 16 characters", file=sys.stderr)
        return 2
    print(f"{args[0]}:{hashlib.sha256(key.encode()).hexdigest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
