"""App Platform: the spec's fields the project relies on, and the one-time init script.

scripts/init_digitalocean_apps.sh runs against a fake `doctl` on PATH: a small program that
records each call, keeps the account's apps in a JSON file and answers the subcommands the
script uses the way doctl does (`-o json` lists of apps; errors on stderr with exit 1).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from app.settings import SETTINGS
from tests.conftest import REPO, copy_repo, fake_tool, tool_env

SPEC = yaml.safe_load((REPO / ".do/app.yaml").read_text())
APP_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")
EXPECTED = {
    "production": ("fraud-detection-api", "master"),
    "staging": ("fraud-detection-api-staging", "staging"),
    "development": ("fraud-detection-api-dev", "develop"),
}


# --- the spec -----------------------------------------------------------------------------


def test_spec_names_one_api_service_deploying_master_on_push() -> None:
    assert APP_NAME.match(SPEC["name"])
    (service,) = SPEC["services"]
    assert service["name"] == "api"
    assert service["github"]["branch"] == "master"
    assert service["github"]["deploy_on_push"] is True
    assert re.fullmatch(r"[\w.-]+/[\w.-]+", service["github"]["repo"])
    assert (REPO / service["dockerfile_path"]).is_file()
    assert isinstance(service["instance_size_slug"], str)
    assert service["instance_count"] >= 1


def test_port_equals_the_gunicorn_bind_default() -> None:
    """With the image's HOST the app listens on App Platform's port on every interface;
    without it (``make serve`` on a laptop) on loopback only."""
    (service,) = SPEC["services"]
    code = "import importlib.util as u, sys; s = u.spec_from_file_location('g', sys.argv[1]); "
    code += "m = u.module_from_spec(s); s.loader.exec_module(m); print(m.bind)"
    env = {k: v for k, v in tool_env().items() if k not in ("PORT", "HOST")}

    def bind(extra: dict[str, str]) -> str:
        return subprocess.run(
            [sys.executable, "-c", code, str(REPO / "app/gunicorn.conf.py")],
            env={**env, **extra},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    assert bind({"HOST": "0.0.0.0"}) == f"0.0.0.0:{service['http_port']}"
    assert bind({}) == f"127.0.0.1:{service['http_port']}"
    assert service["http_port"] == 8000


def test_health_check_probes_the_readiness_endpoint_with_the_seed_timings() -> None:
    (service,) = SPEC["services"]
    check = service["health_check"]
    assert check == {
        "http_path": "/ready",
        "initial_delay_seconds": 60,
        "period_seconds": 30,
        "timeout_seconds": 10,
        "success_threshold": 1,
        "failure_threshold": 3,
    }
    from app import create_app

    client = create_app().test_client()
    response = client.get(check["http_path"])
    assert response.status_code == 200
    assert client.get("/no-such-path").status_code == 404


def test_env_vars_are_ones_the_app_reads_and_paths_are_the_apps_defaults() -> None:
    """No path is restated for the deployment: the app's defaults (conf/paths) apply."""
    (service,) = SPEC["services"]
    envs = {e["key"]: e for e in service["envs"]}
    assert set(envs) <= set(SETTINGS) | {"PORT", "WEB_CONCURRENCY"}
    dockerfile = (REPO / "Dockerfile").read_text()
    for key, (default, kind) in SETTINGS.items():
        if kind is Path:
            assert key not in envs
            assert f"{key}=" not in dockerfile
            if default is not None:
                assert (REPO / default).exists()


# --- the init script against a fake doctl ---------------------------------------------------


FAKE_DOCTL = r'''#!{python}
"""Fake doctl: records argv, keeps apps in $FAKE_DOCTL_STATE, answers like doctl 1.14x."""
import json, os, sys, uuid

import yaml

args = sys.argv[1:]
state_path = os.environ["FAKE_DOCTL_STATE"]
with open(os.environ["FAKE_DOCTL_LOG"], "a") as fh:
    fh.write(json.dumps(args) + "\n")
state = json.load(open(state_path))


def fail(message):
    print("Error: " + message, file=sys.stderr)
    sys.exit(1)


def option(name):
    return args[args.index(name) + 1] if name in args else None


if args[:1] == ["version"]:
    print("doctl version 1.146.0-release")
elif args[:2] == ["account", "get"]:
    if not state.get("authenticated"):
        fail("Unable to initialize DigitalOcean API client: access token is required. "
             "(hint: run 'doctl auth init')")
    print("ops@example.com")
elif args[:3] == ["apps", "spec", "validate"]:
    spec = yaml.safe_load(open(args[3]))
    service = spec["services"][0]
    if "your-github-org" in service["github"]["repo"] or "http_port" not in service:
        fail("POST https://api.digitalocean.com/v2/apps/propose: 400 invalid spec")
    print(yaml.safe_dump(spec))
elif args[:2] == ["apps", "list"]:
    print(json.dumps(state["apps"], indent=2))
elif args[:2] == ["apps", "create"]:
    spec = yaml.safe_load(open(option("--spec")))
    app = {{"id": str(uuid.uuid4()), "spec": spec, "default_ingress": "",
            "live_url": "", "created_at": "2026-11-28T17:00:00Z"}}
    state["apps"].append(app)
    json.dump(state, open(state_path, "w"))
    print(json.dumps([app], indent=2))
elif args[:2] == ["apps", "get"]:
    found = [a for a in state["apps"] if a["id"] == args[2]]
    if not found:
        fail("GET https://api.digitalocean.com/v2/apps/" + args[2] + ": 404 app not found")
    print(json.dumps(found, indent=2))
else:
    fail("unknown command " + " ".join(args))
'''


@pytest.fixture
def doctl(tmp_path: Path) -> dict[str, Path]:
    """A fake doctl on PATH; returns its state file, call log and bin directory."""
    bin_dir = fake_tool(tmp_path, "doctl", FAKE_DOCTL)
    state = tmp_path / "doctl.json"
    state.write_text(json.dumps({"authenticated": True, "apps": []}))
    return {"bin": bin_dir, "state": state, "log": tmp_path / "doctl.jsonl"}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = copy_repo(tmp_path / "repo")
    subprocess.run(
        ["git", "remote", "add", "origin", "git@github.com:acme/fraud-detection.git"],
        cwd=repo,
        check=True,
    )
    return repo


def init(
    repo: Path, doctl: dict[str, Path], *args: str, path: str | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    env = dict(
        tool_env(),
        PYTHON=sys.executable,
        FAKE_DOCTL_STATE=str(doctl["state"]),
        FAKE_DOCTL_LOG=str(doctl["log"]),
    )
    env["PATH"] = path if path is not None else f"{doctl['bin']}{os.pathsep}{env['PATH']}"
    return subprocess.run(
        ["scripts/init_digitalocean_apps.sh", *args],
        cwd=repo,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def calls(doctl: dict[str, Path]) -> list[list[str]]:
    if not doctl["log"].exists():
        return []
    return [json.loads(line) for line in doctl["log"].read_text().splitlines()]


def apps(doctl: dict[str, Path]) -> list[dict]:
    return json.loads(doctl["state"].read_text())["apps"]


def read_env_file(path: Path) -> dict[str, str]:
    lines = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]
    return dict(ln.split("=", 1) for ln in lines)


def test_creates_three_apps_from_one_spec_and_records_them(
    repo: Path, doctl: dict[str, Path]
) -> None:
    proc = init(repo, doctl, "--yes")
    assert proc.returncode == 0, proc.stderr
    created = {a["spec"]["name"]: a for a in apps(doctl)}
    assert set(created) == {name for name, _ in EXPECTED.values()}
    for env, (name, branch) in EXPECTED.items():
        spec = created[name]["spec"]
        (service,) = spec["services"]
        assert service["github"] == {
            "repo": "acme/fraud-detection",
            "branch": branch,
            "deploy_on_push": True,
        }
        assert service["health_check"]["http_path"] == "/ready"
        assert spec["region"] == SPEC["region"]
        assert f"{env}: created app {name} ({created[name]['id']}) deploying branch {branch}" in (
            proc.stdout
        )
    commands = [c[:3] for c in calls(doctl)]
    assert commands[0] == ["account", "get", "--format"]
    assert commands.count(["apps", "spec", "validate"]) == 3
    assert commands.count(["apps", "list", "-o"]) == 1
    assert [c for c in commands if c[1] == "create"] == [["apps", "create", "--spec"]] * 3
    first_create = commands.index(["apps", "create", "--spec"])
    assert max(i for i, c in enumerate(commands) if c[2] == "validate") < first_create
    recorded = read_env_file(repo / ".env.digitalocean")
    assert recorded["PRODUCTION_APP_ID"] == created["fraud-detection-api"]["id"]
    assert recorded["STAGING_APP_NAME"] == "fraud-detection-api-staging"
    assert recorded["DEVELOPMENT_BRANCH"] == "develop"
    assert recorded["PRODUCTION_APP_URL"] == ""  # no deployment has finished yet
    assert oct((repo / ".env.digitalocean").stat().st_mode & 0o777) == "0o600"
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", ".env.digitalocean"], cwd=repo, check=False
    )
    assert ignored.returncode == 0
    assert "Next steps:" in proc.stdout


def test_reuses_apps_that_exist_by_exact_name(repo: Path, doctl: dict[str, Path]) -> None:
    existing = {
        "id": "6f0e0b4a-0000-4000-8000-000000000001",
        "spec": {"name": "fraud-detection-api"},
        "live_url": "https://fraud-detection-api-abcde.ondigitalocean.app",
        "default_ingress": "https://fraud-detection-api-abcde.ondigitalocean.app",
    }
    lookalike = {
        "id": "6f0e0b4a-0000-4000-8000-000000000002",
        "spec": {"name": "fraud-detection-api-staging-old"},
        "live_url": "https://old.ondigitalocean.app",
    }
    doctl["state"].write_text(json.dumps({"authenticated": True, "apps": [existing, lookalike]}))
    proc = init(repo, doctl, "--yes", "--repo", "acme/other")
    assert proc.returncode == 0, proc.stderr
    names = [a["spec"]["name"] for a in apps(doctl)]
    assert names.count("fraud-detection-api") == 1
    assert "fraud-detection-api-staging" in names  # the lookalike did not count
    assert f"production: reusing app fraud-detection-api ({existing['id']})" in proc.stdout
    assert sum(c[:2] == ["apps", "create"] for c in calls(doctl)) == 2
    recorded = read_env_file(repo / ".env.digitalocean")
    assert recorded["PRODUCTION_APP_ID"] == existing["id"]
    assert recorded["PRODUCTION_APP_URL"] == existing["live_url"]
    created = [a for a in apps(doctl) if a["spec"]["name"] == "fraud-detection-api-dev"]
    assert created[0]["spec"]["services"][0]["github"]["repo"] == "acme/other"
    # Running it again creates nothing more.
    again = init(repo, doctl, "--yes")
    assert again.returncode == 0, again.stderr
    assert len(apps(doctl)) == 4
    assert again.stdout.count("reusing app") == 3


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("no-doctl", "doctl is not installed"),
        ("logged-out", "doctl is not authenticated (run 'doctl auth init')"),
        ("no-spec", "app spec not found: .do/missing.yaml"),
        ("no-repo", "placeholder repository"),
        ("invalid-spec", "the production app spec (from .do/app.yaml) does not validate"),
    ],
)
def test_prerequisites_fail_before_anything_is_created(
    repo: Path, doctl: dict[str, Path], setup: str, message: str
) -> None:
    args = ["--yes"]
    path = None
    if setup == "no-doctl":
        path = f"{Path(sys.executable).parent}{os.pathsep}/usr/bin{os.pathsep}/bin"
    elif setup == "logged-out":
        doctl["state"].write_text(json.dumps({"authenticated": False, "apps": []}))
    elif setup == "no-spec":
        args += ["--spec", ".do/missing.yaml"]
    elif setup == "no-repo":
        subprocess.run(["git", "remote", "remove", "origin"], cwd=repo, check=True)
    elif setup == "invalid-spec":
        spec = (repo / ".do/app.yaml").read_text().replace("http_port: 8000", "")
        (repo / ".do/app.yaml").write_text(spec)
    proc = init(repo, doctl, *args, path=path)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert not [c for c in calls(doctl) if c[:2] == ["apps", "create"]]
    assert not (repo / ".env.digitalocean").exists()


def test_without_yes_it_asks_and_refuses_a_non_terminal(
    repo: Path, doctl: dict[str, Path]
) -> None:
    proc = init(repo, doctl, stdin="y\n")
    assert proc.returncode == 1
    assert "pass --yes to run non-interactively" in proc.stderr
    assert apps(doctl) == []


def test_init_script_is_shellcheck_clean() -> None:
    shellcheck = Path(sys.executable).parent / "shellcheck"
    scripts = sorted(str(p) for p in (REPO / "scripts").glob("*.sh"))
    proc = subprocess.run([str(shellcheck), *scripts], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout
    for script in scripts:
        assert "set -euo pipefail" in Path(script).read_text(), script
