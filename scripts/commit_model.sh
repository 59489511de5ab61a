#!/usr/bin/env bash
# Commit a freshly gated model to its environment's branch and push it.
#
#   scripts/commit_model.sh ENV [--run-url URL] [--remote NAME]
#
# Run after `make retrain ENV=...` (and, for production, `make baseline`). Refuses unless the
# last gate report passed and models/ verifies against its manifest; commits only the model
# files (python -m scripts.modelops paths) with "[skip ci]" and the metrics in the message;
# pushes HEAD to the branch params.yaml names (deploy.branch). Nothing changed -> exit 0, no
# commit. Writes committed=true|false and sha=... to $GITHUB_OUTPUT when that is set.
set -euo pipefail

usage() { echo "usage: $0 ENV [--run-url URL] [--remote NAME]" >&2; exit 2; }

[[ $# -ge 1 ]] || usage
env_name=$1
shift
run_url=""
remote="origin"
while [[ $# -gt 0 ]]; do
  case $1 in
    --run-url) run_url=${2:?--run-url needs a value}; shift 2 ;;
    --remote) remote=${2:?--remote needs a value}; shift 2 ;;
    *) usage ;;
  esac
done

cd "$(git rev-parse --show-toplevel)"
if [[ -x .venv/bin/python ]]; then python=${PYTHON:-.venv/bin/python}; else python=${PYTHON:-python3}; fi

output() {
  if [[ -n ${GITHUB_OUTPUT:-} ]]; then echo "$1" >>"$GITHUB_OUTPUT"; fi
}

# 1. The gate passed and the model verifies (stages.report exits 1 otherwise).
if ! "$python" -m stages.report; then
  echo "error: refusing to commit: the gate did not pass or models/ does not verify (above)" >&2
  exit 1
fi
# 2. params.yaml and the manifest are both for ENV; the branch comes from params.yaml.
branch=$("$python" -m scripts.modelops branch --env "$env_name")
current=$(git symbolic-ref --quiet --short HEAD || true)
if [[ -n $current && $current != "$branch" ]]; then
  echo "error: on branch '$current' but the $env_name model belongs on '$branch' (params.yaml deploy.branch)" >&2
  exit 1
fi

# 3. Stage the model files only; nothing else that may be in the tree.
mapfile -t paths < <("$python" -m scripts.modelops paths)
present=()
for path in "${paths[@]}"; do
  if [[ -e $path ]] || git ls-files --error-unmatch -- "$path" >/dev/null 2>&1; then
    present+=("$path")
  fi
done
git add -A -- "${present[@]}"
if git diff --cached --quiet -- "${present[@]}"; then
  echo "nothing to commit: $branch already holds this $env_name model"
  output "committed=false"
  exit 0
fi

message=$("$python" -m scripts.modelops commit-message --env "$env_name" ${run_url:+--run-url "$run_url"})
git commit --quiet -m "$message" -- "${present[@]}"
sha=$(git rev-parse HEAD)
echo "committed $sha: $(git log -1 --format=%s)"

if ! git push --quiet "$remote" "HEAD:refs/heads/$branch"; then
  echo "error: push of $sha to $remote/$branch was rejected (did $branch move since checkout?);" \
    "nothing was pushed, re-run the retrain on the new $branch" >&2
  exit 1
fi
echo "pushed $sha to $remote/$branch"
output "committed=true"
output "sha=$sha"
