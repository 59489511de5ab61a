#!/usr/bin/env bash
# One-time setup: the production, staging and development apps on DigitalOcean App Platform,
# all from .do/app.yaml, each deploying its own branch on push.
#
#   scripts/init_digitalocean_apps.sh [--yes] [--repo OWNER/NAME] [--spec PATH] [--env-file PATH]
#
#   environment   app                           branch (conf/env/<env>.yaml deploy.branch)
#   production    fraud-detection-api           master
#   staging       fraud-detection-api-staging   staging
#   development   fraud-detection-api-dev       develop
#
# Checks doctl is installed and authenticated and that each app's spec validates before it
# creates anything; an app that already exists (exact name) is reused, not duplicated. Writes
# the ids and URLs to .env.digitalocean (git-ignored) and prints the next steps. --yes skips
# the confirmation (needed when stdin is not a terminal). --repo defaults to the GitHub repo
# of the 'origin' remote.
set -euo pipefail

usage() {
  echo "usage: $0 [--yes] [--repo OWNER/NAME] [--spec PATH] [--env-file PATH]" >&2
  exit 2
}

assume_yes=false
repo=""
spec=.do/app.yaml
env_file=.env.digitalocean
while [[ $# -gt 0 ]]; do
  case $1 in
    -y | --yes) assume_yes=true; shift ;;
    --repo) repo=${2:?--repo needs OWNER/NAME}; shift 2 ;;
    --spec) spec=${2:?--spec needs a path}; shift 2 ;;
    --env-file) env_file=${2:?--env-file needs a path}; shift 2 ;;
    -h | --help) usage ;;
    *) echo "error: unknown argument '$1'" >&2; usage ;;
  esac
done

cd "$(dirname "$0")/.."
if [[ -x .venv/bin/python ]]; then python=${PYTHON:-.venv/bin/python}; else python=${PYTHON:-python3}; fi
helper() { "$python" -m scripts.do_apps --spec "$spec" "$@"; }

die() { echo "error: $*" >&2; exit 1; }

# --- prerequisites -----------------------------------------------------------------------
command -v doctl >/dev/null ||
  die "doctl is not installed (https://docs.digitalocean.com/reference/doctl/how-to/install/)"
if ! account=$(doctl account get --format Email --no-header 2>&1); then
  die "doctl is not authenticated (run 'doctl auth init'): $account"
fi
[[ -f $spec ]] || die "app spec not found: $spec"
if [[ -z $repo ]]; then
  origin=$(git remote get-url origin 2>/dev/null || true)
  if [[ $origin =~ github\.com[:/]([^/]+/[^/]+)$ ]]; then
    repo=${BASH_REMATCH[1]%.git}
  fi
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mapfile -t plan < <(helper plan)
[[ ${#plan[@]} -eq 3 ]] || die "could not read the three environments from $spec and conf/env/"
for line in "${plan[@]}"; do
  read -r env_name name branch <<<"$line"
  helper spec --env "$env_name" ${repo:+--repo "$repo"} >"$tmp/$env_name.yaml"
  if ! out=$(doctl apps spec validate "$tmp/$env_name.yaml" 2>&1); then
    die "the $env_name app spec (from $spec) does not validate: $out"
  fi
done
echo "doctl authenticated as $account; the app specs validate (repo ${repo:-as in $spec})"

# --- confirmation ------------------------------------------------------------------------
echo "Apps (existing ones are reused):"
for line in "${plan[@]}"; do
  read -r env_name name branch <<<"$line"
  printf '  %-12s %-32s branch %s\n' "$env_name" "$name" "$branch"
done
if ! $assume_yes; then
  [[ -t 0 ]] || die "stdin is not a terminal: pass --yes to run non-interactively"
  read -r -p "Create the missing apps? [y/N] " reply
  [[ $reply =~ ^[Yy]$ ]] || { echo "aborted; nothing created"; exit 0; }
fi

# --- create or reuse ---------------------------------------------------------------------
apps=$(doctl apps list -o json)
declare -A ids urls
for line in "${plan[@]}"; do
  read -r env_name name branch <<<"$line"
  id=$(helper find --name "$name" <<<"$apps")
  if [[ -n $id ]]; then
    echo "$env_name: reusing app $name ($id)"
  else
    if ! created=$(doctl apps create --spec "$tmp/$env_name.yaml" -o json 2>&1); then
      die "could not create the $env_name app $name: $created"
    fi
    id=$(helper id <<<"$created")
    echo "$env_name: created app $name ($id) deploying branch $branch"
  fi
  ids[$env_name]=$id
  urls[$env_name]=$(doctl apps get "$id" -o json | helper url)
done

# --- record and report -------------------------------------------------------------------
{
  echo "# DigitalOcean App Platform apps (scripts/init_digitalocean_apps.sh); git-ignored."
  for line in "${plan[@]}"; do
    read -r env_name name branch <<<"$line"
    upper=${env_name^^}
    echo "${upper}_APP_NAME=$name"
    echo "${upper}_APP_ID=${ids[$env_name]}"
    echo "${upper}_APP_URL=${urls[$env_name]}"
    echo "${upper}_BRANCH=$branch"
  done
} >"$env_file"
chmod 600 "$env_file"
echo "wrote $env_file"

cat <<EOF

Next steps:
  1. Create the branches the apps deploy from, if missing:
       git push origin HEAD:refs/heads/staging HEAD:refs/heads/develop
  2. Pushing a branch (or running the "Model Retrain" workflow) deploys its app; watch with
       doctl apps list-deployments ${ids[production]}
  3. For the daily drift check against production, set the repository variable APP_URL to
       ${urls[production]:-<the production URL once deployed>}
     and the same MONITORING_TOKEN as a repository secret and an encrypted app env var.
  4. Give each client an API key and set the app's encrypted API_KEYS to their
     name:sha256 entries (python -m app.keys NAME < key prints one); until then the
     scoring endpoints are open.
  5. Create a managed Redis / Valkey (doctl databases create fraud-features --engine valkey),
     set each app's encrypted FEATURE_STORE_URL to its rediss:// URL, and fill it once:
       make materialize ARGS="--url <that URL>"
     (without it every deploy starts an empty embedded store and scores returning cards as new)
  6. URLs are empty until an app's first deployment finishes: doctl apps get <id>
EOF
