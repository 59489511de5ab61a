#!/usr/bin/env bash
# Make a local stand-in for an official Python base image from Debian packages, under the
# official name, for a machine that cannot pull from Docker Hub (scripts/build_image.sh calls
# this when a pull fails). Run as root.
#
#   scripts/base_image_standin.sh docker.io/library/python:3.11-bookworm       # + gcc, headers
#   scripts/base_image_standin.sh docker.io/library/python:3.11-slim-bookworm  # Python only
#
# debootstrap --variant=minbase writes Debian 12 with its python3 (3.11) into an empty buildah
# container; python-is-python3 puts `python` on PATH and python3-venv makes `python -m venv`
# work, as the official images do (theirs live in /usr/local, these in /usr: the Dockerfile only
# calls `python`). The full image adds the builder's C compiler. The image carries the label
# fraud-detection.stand-in, so a build can say it used one. Downloaded packages are kept in
# $IMAGE_CACHE_DIR (default ~/.cache/fraud-image/debs). DEBIAN_MIRROR overrides the mirror read
# from this host's apt sources (default http://deb.debian.org/debian); apt's proxy is honoured.
set -euo pipefail

ref=${1:?"usage: $0 docker.io/library/python:<version>[-slim]-bookworm"}
if [[ ! "$ref" =~ ^docker\.io/library/python:([0-9]+\.[0-9]+)-(slim-)?bookworm$ ]]; then
    echo "error: no stand-in recipe for $ref (only python:<version>[-slim]-bookworm)" >&2
    exit 2
fi
version=${BASH_REMATCH[1]}
slim=${BASH_REMATCH[2]}
packages=python3,python3-venv,python-is-python3,ca-certificates
if [ -z "$slim" ]; then
    packages+=,gcc,libc6-dev,python3-dev
fi
for tool in buildah debootstrap; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "error: $tool is needed for a stand-in base image (make image-deps)" >&2
        exit 1
    }
done
[ "$(id -u)" -eq 0 ] || { echo "error: debootstrap needs root: sudo $0 $ref" >&2; exit 1; }

host_mirror() {
    # the first URI that serves bookworm (not the security archive) in this host's apt sources
    local file
    for file in /etc/apt/sources.list.d/*.sources; do
        [ -f "$file" ] || continue
        awk 'BEGIN { RS = ""; IGNORECASE = 1 }
             /(^|\n)Suites:[^\n]*[ \t]bookworm([ \t]|\n|$)/ && !/Enabled: *no/ {
                 if (match($0, /URIs:[ \t]*[^ \t\n]+/)) {
                     uri = substr($0, RSTART, RLENGTH); sub(/URIs:[ \t]*/, "", uri)
                     if (uri !~ /security/) { print uri; exit }
                 }
             }' "$file"
    done
    if [ -f /etc/apt/sources.list ]; then
        awk '$1 == "deb" && $3 == "bookworm" && $2 !~ /security/ { print $2; exit }' \
            /etc/apt/sources.list
    fi
}
mirror=${DEBIAN_MIRROR:-$(host_mirror | head -n1)}
mirror=${mirror:-http://deb.debian.org/debian}
if command -v apt-config >/dev/null 2>&1; then
    proxy=$(apt-config shell P Acquire::http::Proxy | sed -n "s/^P='\(.*\)'$/\1/p")
    if [ -n "$proxy" ] && [ -z "${http_proxy:-}" ]; then
        export http_proxy=$proxy
    fi
fi
cache=${IMAGE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fraud-image}/debs
log=${cache%/debs}/debootstrap.log
mkdir -p "$cache"

container=$(buildah from scratch)
trap 'buildah rm "$container" >/dev/null 2>&1 || true' EXIT
root=$(buildah mount "$container")
echo "debootstrap bookworm ($packages) from $mirror into a scratch image"
start=$(date +%s)
if ! debootstrap --variant=minbase --cache-dir="$cache" --include="$packages" \
    bookworm "$root" "$mirror" >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    echo "error: debootstrap failed for $ref from $mirror (log: $log;" \
        "set DEBIAN_MIRROR to a reachable mirror)" >&2
    exit 1
fi
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
got=$(chroot "$root" python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ "$got" != "$version" ]; then
    echo "error: bookworm's python3 is $got, not the $version that $ref names" >&2
    exit 1
fi
chroot "$root" python -m venv --help >/dev/null
if [ -z "$slim" ]; then
    chroot "$root" cc --version >/dev/null
fi
full=$(chroot "$root" python -c 'import platform; print(platform.python_version())')
buildah config \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 \
    --cmd python3 \
    --label "fraud-detection.stand-in=debootstrap bookworm, Python $full, $(date -u +%F)" \
    "$container"
buildah umount "$container" >/dev/null
buildah commit --quiet "$container" "$ref" >/dev/null
echo "made stand-in $ref (Debian bookworm, Python $full) in $(($(date +%s) - start)) s;" \
    "the official image could not be pulled"
