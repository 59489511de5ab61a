"""The Dockerfile without a Docker engine: lint it, then run what it would run.

hadolint (from requirements-dev) lints the file; the rules the image relies on are asserted
directly. The image itself is reproduced as far as it can be here: a virtualenv built from
requirements-serve.txt alone, the files the runtime stage COPYs (filtered by .dockerignore)
laid out under a WORKDIR, the stage's ENV, and then its exact CMD and HEALTHCHECK commands.
The image itself is built and run by `make image-test` (scripts/image_test.py) and
tests/delivery/test_image.py (`make test-image`).
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

DOCKERFILE = (REPO / "Dockerfile").read_text()
BIN = Path(sys.executable).parent


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def stages(text: str) -> list[list[tuple[str, str]]]:
    """Instructions grouped by FROM (build stages)."""
    groups: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions(text):
        if keyword == "FROM":
            groups.append([])
        if groups:
            groups[-1].append((keyword, rest))
    return groups


RUNTIME = stages(DOCKERFILE)[-1]


def runtime(keyword: str) -> list[str]:
    return [rest for kw, rest in RUNTIME if kw == keyword]


def env_of_stage() -> dict[str, str]:
    """The runtime stage's ENV (KEY=value pairs; $PATH expansion left to the test)."""
    env: dict[str, str] = {}
    for rest in runtime("ENV"):
        for key, value in re.findall(r"(\w+)=(\S+)", rest):
            env[key] = value
    return env


def requirements(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            name, _, version = line.partition("==")
            assert version, f"{path.name}: {line!r} is not pinned with =="
            pins[name.lower()] = version
    return pins


def docker_pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex: `*` and `?` stay within a path segment, `**` spans
    segments (Go's filepath.Match plus Docker's `**`)."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def dockerignore_allows(rel: str, rules: list[str]) -> bool:
    """Docker's .dockerignore semantics: the last matching rule wins; a rule matching a parent
    directory matches everything under it; `!` re-includes."""
    parts = rel.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    included = True
    for rule in rules:
        negate = rule.startswith("!")
        regex = docker_pattern(rule.removeprefix("!").strip("/"))
        if any(regex.fullmatch(c) for c in candidates):
            included = negate
    return included


def dockerignore_rules() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def build_context() -> list[str]:
    """Files of this checkout a `docker build .` would send (git's view, then .dockerignore)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    rules = dockerignore_rules()
    return [p for p in listed if (REPO / p).is_file() and dockerignore_allows(p, rules)]


# --- lint and rules ------------------------------------------------------------------------


def test_hadolint_passes() -> None:
    proc = subprocess.run(
        [str(BIN / "hadolint"), "--failure-threshold", "info", "Dockerfile"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_catches_what_we_avoid(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nCMD gunicorn app\n")
    proc = subprocess.run([str(BIN / "hadolint"), str(bad)], capture_output=True, text=True)
    assert proc.returncode != 0
    for rule in ("DL3007", "DL3008", "DL3025"):  # :latest, unpinned apt, shell-form CMD
        assert rule in proc.stdout


def test_slim_python_311_multi_stage_non_root() -> None:
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", DOCKERFILE, re.MULTILINE))
    assert args == {"PYTHON_VERSION": "3.11"}
    # The builder is the same Python's full image (a C compiler for the tree kernel): its
    # venv and kernel must work in the slim runtime, so one version feeds both stages.
    froms = [rest for kw, rest in instructions(DOCKERFILE) if kw == "FROM"]
    assert froms == [
        "python:${PYTHON_VERSION}-bookworm AS builder",
        "python:${PYTHON_VERSION}-slim-bookworm AS runtime",
    ]
    (user,) = runtime("USER")
    assert user.split(":")[0] not in ("root", "0")
    kinds = [kw for kw, _ in RUNTIME]
    assert kinds.index("USER") < kinds.index("CMD")
    builder_runs = " ".join(rest for kw, rest in stages(DOCKERFILE)[0] if kw == "RUN")
    assert "pip install --no-cache-dir -r /tmp/requirements-serve.txt" in builder_runs
    assert NATIVE_BUILD in builder_runs
    assert NATIVE_COPY in runtime("COPY")
    assert "requirements.txt" not in DOCKERFILE.replace("requirements-serve.txt", "")


def test_cmd_is_the_projects_gunicorn_command_and_healthcheck_needs_no_curl() -> None:
    (cmd,) = runtime("CMD")
    assert json.loads(cmd) == ["gunicorn", "-c", "app/gunicorn.conf.py", "app:create_app()"]
    assert 'gunicorn -c app/gunicorn.conf.py "app:create_app()"' in (REPO / "Makefile").read_text()
    (health,) = runtime("HEALTHCHECK")
    assert "curl" not in health
    assert "wget" not in health
    assert health.endswith('CMD ["python", "scripts/healthcheck.py"]')
    env = env_of_stage()
    assert env["PORT"] == "8000"
    assert env["HOST"] == "0.0.0.0"  # the image listens on every interface; a laptop does not
    assert runtime("EXPOSE") == ["8000"]
    conf = (REPO / "app/gunicorn.conf.py").read_text()
    assert (
        "bind = f\"{os.environ.get('HOST') or '127.0.0.1'}:{os.environ.get('PORT', '8000')}\""
        in conf
    )


def test_serving_requirements_are_a_pinned_subset_of_requirements_txt() -> None:
    serve = requirements(REPO / "requirements-serve.txt")
    full = requirements(REPO / "requirements.txt")
    assert {name: full.get(name) for name in serve} == serve
    for heavy in ("xgboost", "xgboost-cpu", "pandas", "scikit-learn", "dvc", "hydra-core"):
        assert heavy not in serve


def test_image_gets_only_what_serving_reads() -> None:
    context = build_context()
    manifest = json.loads((REPO / "models/manifest.json").read_text())
    assert {f"models/{manifest[k]}" for k in ("artifact", "profile")} <= set(context)
    assert "models/manifest.json" in context
    assert "data/selected_features.json" in context
    for kept_out in (
        "dvc.lock",
        "params.yaml",
        "README.md",
        "stages/train.py",
        "tests/conftest.py",
        "fraud/model/train.py",
        "fraud/data/synthetic/generate.py",
        "fraud/monitoring/scenarios.py",
        "fraud/data/split.py",
        "fraud/data/external.py",
        "fraud/offline/score.py",
    ):
        assert kept_out not in context
    assert not [p for p in context if p.startswith((".venv/", ".git/", "data/raw/"))]
    assert not [p for p in context if "__pycache__" in p]
    tops = {p.split("/")[0] for p in context}
    assert tops == {
        "app",
        "fraud",
        "models",
        "data",
        "scripts",
        "requirements-serve.txt",
    }


def test_dockerignore_matcher_follows_docker_rules() -> None:
    rules = ["*", "!app/", "!data/keep.json", "**/__pycache__"]
    assert dockerignore_allows("app/api.py", rules)
    assert not dockerignore_allows("app/__pycache__/api.pyc", rules)
    assert dockerignore_allows("data/keep.json", rules)
    assert not dockerignore_allows("data/other.json", rules)
    assert not dockerignore_allows("README.md", rules)
    assert not dockerignore_allows("app/x/__pycache__/y.pyc", ["*", "!app/", "**/__pycache__"])
    assert dockerignore_allows("app/a.pyc", ["*", "!app/", "app/*.pyc", "!app/a.pyc"])


# --- the image, reproduced without an engine -----------------------------------------------


@pytest.fixture(scope="session")
def serve_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv from requirements-serve.txt alone (pip's own cache keeps reruns quick)."""
    venv = tmp_path_factory.mktemp("serve") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    proc = subprocess.run(
        [str(venv / "bin/pip"), "install", "--quiet", "-r", str(REPO / "requirements-serve.txt")],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return venv


#: The builder compiles the tree kernel (it has a compiler; the slim runtime has none) and
#: the runtime copies it in; lay_out_image reproduces the pair.
NATIVE_BUILD = "python -m fraud.runtime.native"
NATIVE_COPY = "--from=builder /build/fraud/runtime/_treewalk.so fraud/runtime/_treewalk.so"


def lay_out_image(root: Path, python: Path) -> Path:
    """Copy each runtime-stage COPY source from the build context to WORKDIR; return WORKDIR."""
    (workdir,) = runtime("WORKDIR")
    dest_root = root / workdir.lstrip("/")
    context = build_context()
    for rest in runtime("COPY"):
        if rest.startswith("--from="):
            # the venv is the serve venv built here; the kernel is built below
            assert rest in (NATIVE_COPY, "--from=builder /opt/venv /opt/venv"), rest
            continue
        src, dest = rest.split()
        matched = [p for p in context if p == src or p.startswith(src.rstrip("/") + "/")]
        assert matched, f"COPY {src}: nothing in the build context (.dockerignore?)"
        for rel in matched:
            target = (
                dest_root / dest / Path(rel).relative_to(src)
                if src.endswith("/")
                else (dest_root / dest)
            )
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, target)
    # The builder's `RUN python -m fraud.runtime.native` on the same fraud/, then the COPY --from.
    built = subprocess.run(
        [str(python), "-m", "fraud.runtime.native"], cwd=dest_root, capture_output=True, text=True
    )
    assert built.returncode == 0, built.stderr
    return dest_root


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(url: str, body: object | None = None, token: str | None = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    if data:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


@pytest.mark.slow
def test_the_images_command_serves_the_model_from_serving_requirements_alone(
    serve_venv: Path, tmp_path: Path
) -> None:
    installed = subprocess.run(
        [str(serve_venv / "bin/pip"), "list", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    names = {p["name"].lower() for p in json.loads(installed)}
    assert not names & {"xgboost", "xgboost-cpu", "pandas", "scikit-learn", "dvc"}

    workdir = lay_out_image(tmp_path / "image", serve_venv / "bin/python")
    assert not (workdir / "stages").exists()
    assert (workdir / "fraud/runtime/_treewalk.so").is_file()
    port = free_port()
    token = "t0ken"
    # The stage's ENV, with the builder's /opt/venv standing for the venv built here.
    stage_env = {
        key: value.replace("/opt/venv", str(serve_venv)).replace("$PATH", "/usr/bin:/bin")
        for key, value in env_of_stage().items()
    }
    assert stage_env["PATH"].startswith(f"{serve_venv}/bin:")
    env = {
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path),
        **stage_env,
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
        "MONITORING_TOKEN": token,
        "PREDICTION_LOG_FLUSH_SECONDS": "0",
        "CC": "/nonexistent/cc",  # the slim runtime has no compiler: the built kernel is used
    }
    (cmd,) = runtime("CMD")
    health = json.loads(runtime("HEALTHCHECK")[0].split(" CMD ", 1)[1])
    log = tmp_path / "gunicorn.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            json.loads(cmd), cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            probe = subprocess.run(health, cwd=workdir, env=env, capture_output=True, text=True)
            if probe.returncode == 0:
                break
            assert time.monotonic() < deadline, probe.stderr + log.read_text()
            time.sleep(0.3)
        url = f"http://127.0.0.1:{port}"
        status, info = http(f"{url}/model/info")
        assert status == 200
        manifest = json.loads((REPO / "models/manifest.json").read_text())
        assert info["version"] == manifest["sha256"][:12]
        status, sample = http(f"{url}/sample-transaction")
        assert status == 200
        status, scored = http(f"{url}/predict", sample)
        assert status == 200, scored
        assert 0.0 <= scored["fraud_probability"] <= 1.0
        assert scored["model_version"] == info["version"]
        assert scored["risk_level"] in ("low", "medium", "high")
        status, batch = http(f"{url}/predict/batch", {"transactions": [sample] * 20})
        assert status == 200
        assert batch["n_scored"] == 20
        # /docs: Swagger UI's files come with the serving requirements (no CDN)
        with urllib.request.urlopen(f"{url}/docs", timeout=10) as resp:
            page = resp.read().decode()
        bundle = re.search(r'src="(/docs/assets/[^"]+/swagger-ui-bundle.js)"', page)
        assert bundle, page
        with urllib.request.urlopen(f"{url}{bundle[1]}", timeout=10) as resp:
            assert resp.status == 200
            assert len(resp.read()) > 100_000
        # The monitoring endpoint computes its statistics with scipy, in this venv too.
        status, report = http(f"{url}/monitoring/drift", token=token)
        assert status == 200, report
        assert report["verdict"] == "insufficient_data"
        assert report["rows"]["current"] == 21
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=40) == 0, log.read_text()
    assert "using numpy" not in log.read_text()
    probe = subprocess.run(health, cwd=workdir, env=env, capture_output=True, text=True)
    assert probe.returncode == 1
    assert f"unhealthy: http://127.0.0.1:{port}/ready" in probe.stderr


def test_app_platform_port_matches_the_image() -> None:
    spec = yaml.safe_load((REPO / ".do/app.yaml").read_text())
    (service,) = spec["services"]
    assert service["http_port"] == int(env_of_stage()["PORT"])
    assert service["dockerfile_path"] == "Dockerfile"
