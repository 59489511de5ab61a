#!/usr/bin/env bash
# Debian packages the tests start for real (redis-server for the Redis online store, chromium
# to look at the HTML report offline), installed only when missing: `make test` and .ci/run call
# this; a machine that has them changes nothing.
set -euo pipefail
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# Any Chromium build will do (tests/browser.py takes the first found): GitHub's Ubuntu runners
# ship google-chrome, where Ubuntu's own chromium package is only a snap wrapper.
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 &&
    ! command -v google-chrome >/dev/null 2>&1; then
    missing+=(chromium)
fi
if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: the tests need ${missing[*]}; install it with your package manager" >&2
    exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
    sudo=(sudo)
fi
echo "installing ${missing[*]} (Debian packages the tests run)"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
