"""A real headless Chromium for tests that look at a page as a person would, with no network.

``open_page`` runs the Debian ``chromium`` binary once per call (``--screenshot`` or
``--dump-dom``) with a scratch profile and a host resolver that resolves nothing but
127.0.0.1 (a test's own server), so a page that needed the network (a CDN script, a web font)
would render without it, as offline.
scripts/system_packages.sh installs the browser for `make test`.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

BINARIES = ("chromium", "chromium-browser", "google-chrome")
TIMEOUT_S = 120


def chromium() -> str:
    """The browser binary, or fail saying how to install it."""
    for name in BINARIES:
        if path := shutil.which(name):
            return path
    pytest.fail("chromium not found: apt-get install chromium (scripts/system_packages.sh does)")


def open_page(
    url: str,
    profile: Path,
    *,
    screenshot: Path | None = None,
    size: tuple[int, int] = (1200, 900),
    wait_ms: int | None = None,
) -> str:
    """Load ``url`` offline; save a ``screenshot`` (PNG) if given, else return the DOM.

    ``wait_ms`` lets the page's scripts run (and their fetches finish) for that much virtual
    time before the DOM is taken, for pages drawn by JavaScript.
    """
    args = [
        chromium(),
        "--headless",
        "--disable-gpu",
        "--no-sandbox",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--hide-scrollbars",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # loopback only
        f"--user-data-dir={profile}",
        f"--window-size={size[0]},{size[1]}",
        *([f"--virtual-time-budget={wait_ms}"] if wait_ms else []),
        f"--screenshot={screenshot}" if screenshot else "--dump-dom",
        url,
    ]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    if proc.returncode != 0 or (screenshot and not screenshot.exists()):
        raise AssertionError(f"chromium exited {proc.returncode}: {proc.stderr[-2000:]}")
    return proc.stdout
