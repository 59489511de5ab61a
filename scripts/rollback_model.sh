#!/usr/bin/env bash
# Roll the served model back to the one committed at a git revision (`make rollback TO=REV`).
#
#   scripts/rollback_model.sh REV
#
# Restores the model files (python -m scripts.modelops paths: models/ with its manifest,
# features, summaries, gate report, baseline, params.yaml and dvc.lock) as they were at REV,
# verifies the artifact against its manifest (fraud.runtime.artifact.load_artifact), and commits
# "Roll back model to <short sha of REV> (VERSION)". Refuses on a dirty tree, a revision without a model, or a
# model of another environment than this branch serves. Push the commit to redeploy.
set -euo pipefail

[[ $# -eq 1 && -n $1 ]] || { echo "usage: $0 REV   (e.g. make rollback TO=HEAD~1)" >&2; exit 2; }
rev=$1

cd "$(git rev-parse --show-toplevel)"
if [[ -x .venv/bin/python ]]; then python=${PYTHON:-.venv/bin/python}; else python=${PYTHON:-python3}; fi

if ! sha=$(git rev-parse --verify --quiet "$rev^{commit}"); then
  echo "error: '$rev' is not a commit in this repository" >&2
  exit 1
fi
if ! git diff --quiet || ! git diff --cached --quiet; then
  echo "error: the working tree has uncommitted changes; commit or stash them first:" >&2
  git status --short --untracked-files=no >&2
  exit 1
fi
manifest_file="$("$python" -m scripts.modelops path model_dir)/manifest.json"
if ! git cat-file -e "$sha:$manifest_file" 2>/dev/null; then
  echo "error: revision '$rev' ($sha) has no $manifest_file" >&2
  exit 1
fi
manifest_env() { git show "$1:$manifest_file" | "$python" -c 'import json,sys; print(json.load(sys.stdin).get("env"))'; }
from_env=$(manifest_env "$sha")
here_env=$(manifest_env HEAD 2>/dev/null || echo "$from_env")
if [[ $from_env != "$here_env" ]]; then
  echo "error: revision '$rev' holds a $from_env model; this branch serves $here_env" >&2
  exit 1
fi

mapfile -t paths < <("$python" -m scripts.modelops paths)
restore=()
for path in "${paths[@]}"; do
  # A path in REV or tracked now: restored as in REV (removed if REV did not have it).
  if [[ -n $(git ls-tree -r --name-only "$sha" -- "$path") ]] || [[ -n $(git ls-files -- "$path") ]]; then
    restore+=("$path")
  fi
done
previous=$("$python" -m scripts.modelops verify 2>/dev/null || echo "unverified")
git restore --source="$sha" --staged --worktree -- "${restore[@]}"

if ! version=$("$python" -m scripts.modelops verify); then
  git restore --source=HEAD --staged --worktree -- "${restore[@]}"
  echo "error: the model at '$rev' does not verify (above); nothing changed" >&2
  exit 1
fi
if git diff --cached --quiet; then
  echo "nothing to roll back: HEAD already serves the model of '$rev' ($version)"
  exit 0
fi
short=$(git rev-parse --short "$sha")
git commit --quiet -F - <<EOF
Roll back model to $short ($version)

Restores the $from_env model committed at $sha (asked for as '$rev'),
replacing $previous: ${restore[*]}
EOF
echo "rolled back to $version from $sha in $(git rev-parse --short HEAD); push to redeploy"
