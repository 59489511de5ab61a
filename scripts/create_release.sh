#!/usr/bin/env bash
# Publish the committed model as a GitHub release: tag model-ENV-<UTC timestamp>, notes with
# the test metrics and gate checks, the model files as assets.
#
#   scripts/create_release.sh ENV [--run-url URL] [--target SHA]
#
# Needs the GitHub CLI (`gh`) with GH_TOKEN (the workflow passes github.token) and GH_REPO
# or a GitHub remote. The target defaults to HEAD, the commit scripts/commit_model.sh pushed.
set -euo pipefail

usage() { echo "usage: $0 ENV [--run-url URL] [--target SHA]" >&2; exit 2; }

[[ $# -ge 1 ]] || usage
env_name=$1
shift
run_url=""
target=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --run-url) run_url=${2:?--run-url needs a value}; shift 2 ;;
    --target) target=${2:?--target needs a value}; shift 2 ;;
    *) usage ;;
  esac
done

cd "$(git rev-parse --show-toplevel)"
if [[ -x .venv/bin/python ]]; then python=${PYTHON:-.venv/bin/python}; else python=${PYTHON:-python3}; fi
command -v gh >/dev/null || { echo "error: the GitHub CLI 'gh' is not on PATH" >&2; exit 1; }
target=${target:-$(git rev-parse HEAD)}

# The model must verify and belong to ENV before it is published.
version=$("$python" -m scripts.modelops verify)
"$python" -m scripts.modelops branch --env "$env_name" >/dev/null
tag=$("$python" -m scripts.modelops release-tag --env "$env_name")
mapfile -t assets < <("$python" -m scripts.modelops assets)

notes=$(mktemp)
trap 'rm -f "$notes"' EXIT
"$python" -m scripts.modelops release-notes --env "$env_name" ${run_url:+--run-url "$run_url"} >"$notes"

# Only production models are full releases; staging and development ones are pre-releases.
flags=()
[[ $env_name == production ]] || flags+=(--prerelease)
gh release create "$tag" "${assets[@]}" "${flags[@]}" \
  --title "$env_name model $version" \
  --notes-file "$notes" \
  --target "$target"
echo "released $tag ($env_name model $version at $target)"
