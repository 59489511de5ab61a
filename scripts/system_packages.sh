#!/usr/bin/env bash
# Debian packages the tests start for real, installed only when missing: `make test` and
# .ci/run call this; a machine that has them changes nothing.
#
#   scripts/system_packages.sh           # redis-server (the Redis online store's tests) and
#                                        # chromium (the HTML report and /docs, offline)
#   scripts/system_packages.sh --image   # what `make image` and `make image-test` use: buildah,
#                                        # debootstrap and Debian's keyring (stand-in base
#                                        # images), unshare/nsenter (util-linux), ip (iproute2)
set -euo pipefail
missing=()
case "${1:-}" in
    "")
        command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
        # Any Chromium build will do (tests/browser.py takes the first found): GitHub's Ubuntu
        # runners ship google-chrome, where Ubuntu's own chromium package is a snap wrapper.
        if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 &&
            ! command -v google-chrome >/dev/null 2>&1; then
            missing+=(chromium)
        fi
        ;;
    --image)
        command -v buildah >/dev/null 2>&1 || missing+=(buildah)
        command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
        [ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || missing+=(debian-archive-keyring)
        command -v nsenter >/dev/null 2>&1 || missing+=(util-linux)
        command -v ip >/dev/null 2>&1 || missing+=(iproute2)
        ;;
    *)
        echo "usage: $0 [--image]" >&2
        exit 2
        ;;
esac
if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: ${missing[*]} needed; install it with your package manager" >&2
    exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
    sudo=(sudo)
fi
echo "installing ${missing[*]} (Debian packages)"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
