#!/usr/bin/env bash
# Pipeline consistency (`make check-pipeline`, CI): the committed params.yaml is exactly a fresh
# composition of conf/ for the environment it records, and dvc.lock agrees with the code,
# params and committed outputs (`dvc repro --allow-missing --dry` would run no stage; generated
# data that is absent on a clean checkout does not count).
set -euo pipefail

cd "$(git rev-parse --show-toplevel)"
if [[ -x .venv/bin/python ]]; then bin=.venv/bin/; else bin=""; fi

env_name=$(sed -n 's/^  env: *//p' params.yaml | head -n1)
if [[ -z $env_name ]]; then
  echo "error: params.yaml records no base.env" >&2
  exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"${bin}python" -m stages.compose "env=$env_name" --out "$tmp/params.yaml" >/dev/null
if ! diff -u --label "params.yaml (committed)" --label "params.yaml (composed env=$env_name)" \
  params.yaml "$tmp/params.yaml" >&2; then
  echo "error: params.yaml differs from a fresh composition of conf/ for env=$env_name;" \
    "run 'make params ENV=$env_name' (or a retrain) and commit the result" >&2
  exit 1
fi
echo "params.yaml: a fresh composition of conf/ for env=$env_name"

if ! out=$("${bin}dvc" repro --allow-missing --dry 2>&1); then
  echo "$out" >&2
  echo "error: dvc.lock does not match the code, params or committed outputs;" \
    "a stage would run (above): retrain and commit dvc.lock" >&2
  exit 1
fi
if grep -q "^Running stage" <<<"$out"; then
  echo "$out" >&2
  echo "error: dvc repro --allow-missing --dry would run a stage (above): dvc.lock is stale" >&2
  exit 1
fi
echo "dvc.lock: every stage up to date (dvc repro --allow-missing --dry)"
