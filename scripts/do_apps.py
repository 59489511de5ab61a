"""App Platform helpers for scripts/init_digitalocean_apps.sh: ``python -m scripts.do_apps``.

    python -m scripts.do_apps plan                       # env, app name, branch (one line each)
    python -m scripts.do_apps spec --env staging --repo OWNER/NAME > staging.yaml
    doctl apps list -o json | python -m scripts.do_apps find --name fraud-detection-api
    doctl apps get ID -o json | python -m scripts.do_apps url

The three apps come from the one spec, .do/app.yaml (the production app): staging and
development get the name ``<name>-staging`` / ``<name>-dev`` and the branch their
conf/env/<env>.yaml records under deploy.branch, so the branch a retrain commits to is the
branch its app deploys from.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from fraud.config import ENVIRONMENTS

ROOT = Path(__file__).resolve().parents[1]
#: The order apps are validated and created in: production first.
DEPLOY_ORDER = tuple(reversed(ENVIRONMENTS))
SUFFIX = {"production": "", "staging": "-staging", "development": "-dev"}
#: App Platform's rule for an app name: 2-32 lowercase letters, digits and dashes.
APP_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")
REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
#: The repository .do/app.yaml names until an operator's repository replaces it.
PLACEHOLDER_OWNER = "your-github-org/"


class SpecError(Exception):
    """The spec, an environment config or a doctl answer is not what the script needs."""


def load_spec(path: Path) -> dict[str, Any]:
    """The app spec, with the one ``api`` service the project deploys."""
    try:
        spec = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise SpecError(f"app spec not found: {path}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"app spec {path} is not valid YAML: {exc}") from None
    services = spec.get("services") if isinstance(spec, dict) else None
    if not services or not any(s.get("name") == "api" for s in services):
        raise SpecError(f"app spec {path} has no service named 'api'")
    if not isinstance(spec.get("name"), str):
        raise SpecError(f"app spec {path} has no app name")
    return spec


def env_branch(env: str, conf_dir: Path = ROOT / "conf") -> str:
    """deploy.branch of conf/env/<env>.yaml."""
    path = conf_dir / "env" / f"{env}.yaml"
    try:
        branch = (yaml.safe_load(path.read_text()) or {}).get("deploy", {}).get("branch")
    except FileNotFoundError:
        raise SpecError(f"environment config not found: {path}") from None
    if not isinstance(branch, str) or not branch:
        raise SpecError(f"{path} has no deploy.branch")
    return branch


def app_name(spec: dict[str, Any], env: str) -> str:
    """The app name of ``env``: the spec's name plus the environment's suffix."""
    name = spec["name"] + SUFFIX[env]
    if not APP_NAME.match(name):
        raise SpecError(f"app name {name!r} is not a valid App Platform name ({APP_NAME.pattern})")
    return name


def render(spec: dict[str, Any], env: str, repo: str | None) -> dict[str, Any]:
    """The spec of ``env``'s app: its name, and every github source on its branch (and repo)."""
    if repo is not None and not REPO.match(repo):
        raise SpecError(f"--repo {repo!r} is not OWNER/NAME")
    out = json.loads(json.dumps(spec))
    out["name"] = app_name(spec, env)
    branch = env_branch(env)
    for service in out.get("services", []):
        github = service.get("github")
        if github is not None:
            github["branch"] = branch
            if repo is not None:
                github["repo"] = repo
            elif str(github.get("repo", "")).startswith(PLACEHOLDER_OWNER):
                raise SpecError(
                    f"the spec names the placeholder repository {github.get('repo')!r}: "
                    "pass --repo OWNER/NAME (or add a GitHub 'origin' remote)"
                )
    return out


def _apps(text: str) -> list[dict[str, Any]]:
    """doctl's JSON output: a list of apps (list, create, get) or, defensively, one app."""
    try:
        data = json.loads(text or "[]")
    except ValueError as exc:
        raise SpecError(f"doctl did not answer JSON: {exc}: {text[:200]!r}") from None
    apps = data if isinstance(data, list) else [data]
    if not all(isinstance(app, dict) for app in apps):
        raise SpecError(f"doctl answered JSON that is not a list of apps: {text[:200]!r}")
    return apps


def find(text: str, name: str) -> str | None:
    """The id of the app named exactly ``name`` in ``doctl apps list -o json`` output."""
    ids = [a.get("id") for a in _apps(text) if a.get("spec", {}).get("name") == name]
    if len(ids) > 1:
        raise SpecError(f"{len(ids)} apps are named {name!r}: {ids}")
    return ids[0] if ids else None


def only_id(text: str) -> str:
    """The id of the one app in ``doctl apps create -o json`` output."""
    apps = _apps(text)
    if len(apps) != 1 or not apps[0].get("id"):
        raise SpecError(f"expected one created app with an id, got {text[:200]!r}")
    return str(apps[0]["id"])


def url(text: str) -> str:
    """The app's live URL (or its default ingress); empty before the first deployment."""
    apps = _apps(text)
    if not apps:
        return ""
    return str(apps[0].get("live_url") or apps[0].get("default_ingress") or "")


def main(argv: list[str] | None = None) -> int:
    """Dispatch a subcommand; doctl output comes on stdin."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", type=Path, default=ROOT / ".do/app.yaml")
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("plan", help="one line per environment: env, app name, branch")
    render_cmd = sub.add_parser("spec", help="the spec of one environment's app, as YAML")
    render_cmd.add_argument("--env", required=True, choices=ENVIRONMENTS)
    render_cmd.add_argument("--repo", default=None, help="GitHub OWNER/NAME")
    find_cmd = sub.add_parser("find", help="id of the app with exactly this name (stdin: list)")
    find_cmd.add_argument("--name", required=True)
    sub.add_parser("id", help="id of the app doctl just created (stdin)")
    sub.add_parser("url", help="live URL or default ingress of an app (stdin: get)")
    args = ap.parse_args(argv)
    try:
        if args.command == "plan":
            spec = load_spec(args.spec)
            for env in DEPLOY_ORDER:
                print(env, app_name(spec, env), env_branch(env))
        elif args.command == "spec":
            spec = render(load_spec(args.spec), args.env, args.repo)
            print(yaml.safe_dump(spec, sort_keys=False), end="")
        elif args.command == "find":
            print(find(sys.stdin.read(), args.name) or "")
        elif args.command == "id":
            print(only_id(sys.stdin.read()))
        else:
            print(url(sys.stdin.read()))
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
