#!/usr/bin/env bash
# Build the Dockerfile into an image, the way App Platform does, on a machine without a Docker
# engine (buildah) or with one (docker). `make image` runs this.
#
#   scripts/build_image.sh [-t TAG] [-f DOCKERFILE] [--no-cache] [CONTEXT]
#
# With buildah, each base image the Dockerfile names is taken from local storage, else pulled,
# else (no registry reachable) made here as a stand-in from Debian packages by
# scripts/base_image_standin.sh, under the same name; the build then says which it used. pip
# in the build reaches the package index the way this host's pip does: scripts/image_build.py
# writes its settings to a temporary HOME mounted only while RUN steps run (nothing of it is
# committed). Layers are cached (--layers): a rebuild redoes only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

tag=fraud-api:latest
dockerfile=Dockerfile
context=.
cache=()
while [ "$#" -gt 0 ]; do
    case "$1" in
        -t | --tag) tag=${2:?"$1 needs a value"}; shift 2 ;;
        -f | --file) dockerfile=${2:?"$1 needs a value"}; shift 2 ;;
        --no-cache) cache=(--no-cache); shift ;;
        -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
        -*) echo "error: unknown option $1 (see $0 --help)" >&2; exit 2 ;;
        *) context=$1; shift ;;
    esac
done
[ -f "$dockerfile" ] || { echo "error: no Dockerfile at $dockerfile" >&2; exit 2; }
python=$(command -v python3 || command -v python) || {
    echo "error: python3 is needed to read the Dockerfile and pip's settings" >&2
    exit 1
}
sudo=()
if [ "$(id -u)" -ne 0 ]; then
    sudo=(sudo)
fi

engine=${IMAGE_ENGINE:-}
if [ -z "$engine" ]; then
    if command -v buildah >/dev/null 2>&1; then
        engine=buildah
    elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
        engine=docker
    else
        echo "error: no image builder: install buildah (make image-deps) or start a Docker engine" >&2
        exit 1
    fi
fi

start=$(date +%s)
if [ "$engine" = docker ]; then
    # No build-time mounts without `RUN --mount` in the Dockerfile: pip uses its defaults (PyPI).
    docker build "${cache[@]}" -f "$dockerfile" -t "$tag" "$context"
    echo "built $tag with docker in $(($(date +%s) - start)) s: $(docker image ls --format '{{.Size}}' "$tag")"
    exit 0
fi
[ "$engine" = buildah ] || { echo "error: IMAGE_ENGINE=$engine: use buildah or docker" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$python" scripts/image_build.py bases "$dockerfile" >"$work/bases"
mapfile -t bases <"$work/bases"
for base in "${bases[@]}"; do
    if "${sudo[@]}" buildah inspect --type image "$base" >/dev/null 2>&1; then
        made=$("${sudo[@]}" buildah inspect --type image \
            --format '{{index .OCIv1.Config.Labels "fraud-detection.stand-in"}}' "$base")
        if [ -n "$made" ] && [ "$made" != "<no value>" ]; then
            echo "base $base: the local stand-in ($made); buildah rmi $base to make it anew"
        else
            echo "base $base: from local storage"
        fi
    elif "${sudo[@]}" buildah pull --quiet "$base" >/dev/null 2>"$work/pull"; then
        echo "base $base: pulled"
    else
        echo "base $base: cannot be pulled ($(tail -n1 "$work/pull")); making a stand-in"
        "${sudo[@]}" scripts/base_image_standin.sh "$base"
    fi
done

# pip's settings for RUN steps, in a HOME of their own (scripts/image_build.py)
home=$work/home
mkdir "$home"
"$python" scripts/image_build.py pip-home "$home" >"$work/mounts"
mapfile -t mounts <"$work/mounts"
volumes=()
for mount in "${mounts[@]}"; do
    volumes+=(--volume "$mount")
done
# --format docker keeps HEALTHCHECK (the OCI format has no field for it); --force-rm: no
# working container is left behind by a failed step
"${sudo[@]}" buildah bud --isolation chroot --layers --force-rm --format docker "${cache[@]}" \
    "${volumes[@]}" -f "$dockerfile" -t "$tag" "$context"
size=$("${sudo[@]}" buildah images --format '{{.Size}}' "$tag" | head -n1)
echo "built $tag with buildah in $(($(date +%s) - start)) s: $size"
