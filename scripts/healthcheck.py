"""Container health check without curl: exit 0 when GET /ready on $PORT answers 200, else 1.

Used by the Dockerfile's HEALTHCHECK (the slim image has no curl); /ready is 200 only once a
worker has loaded and verified the model, the same probe App Platform uses (.do/app.yaml).
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    """Probe the local server; print why it is unhealthy."""
    url = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/ready"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"unhealthy: {url} answered {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
