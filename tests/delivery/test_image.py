"""The image built and run for real (`make image`, `make image-test`), and the helpers behind it.

Fast tests (every run): how scripts/image_build.py reads a Dockerfile's base images and the
host's pip settings, how scripts/image_root.py resolves USER and ENV, what scripts/image_test.py
refuses in a root filesystem, and the scripts' usage errors.

Tests marked image (only with --image: `make test-image`, CI's image job) build variants of the
Dockerfile, each broken in one way, from copies in a temporary folder with this checkout as the
context (the layer cache keeps each build to seconds), and prove that the build or image-test
fails on each, naming the check; and that the Dockerfile as it is passes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from scripts import image_build, image_test
from tests.conftest import REPO
from tests.delivery.test_docker import DOCKERFILE, RUNTIME

SCRIPTS = REPO / "scripts"

# --- reading the Dockerfile and pip's settings ------------------------------------------


def test_the_dockerfile_starts_from_the_official_python_images() -> None:
    assert image_build.base_images(DOCKERFILE) == [
        "docker.io/library/python:3.11-bookworm",
        "docker.io/library/python:3.11-slim-bookworm",
    ]


def test_base_images_expand_arg_defaults_and_skip_stages() -> None:
    text = (
        "ARG V=3.12\nARG REG=ghcr.io/acme\n"
        "FROM --platform=$BUILDPLATFORM python:${V}-slim AS build\n"
        "FROM build AS test\nFROM scratch\n"
        "FROM $REG/base:1 \\\n  AS final\nFROM python:${V}-slim\n"
    )
    assert image_build.base_images(text) == [
        "docker.io/library/python:3.12-slim",
        "ghcr.io/acme/base:1",
    ]
    assert image_build.qualify("localhost/fraud-api") == "localhost/fraud-api"
    assert image_build.qualify("acme/tool:2") == "docker.io/acme/tool:2"
    with pytest.raises(ValueError, match="no FROM"):
        image_build.base_images("# nothing\nARG X=1\n")


def test_pip_settings_keep_where_packages_come_from_in_pips_order() -> None:
    listed = "\n".join(
        [
            "global.index-url='https://mirror.example/simple'",
            "global.cert='/etc/ssl/a.pem'",
            "global.cache-dir='/var/cache/pip'",  # not about the index: left out
            "install.extra-index-url='file:///opt/pypi/simple'",
            ":env:.cert='/etc/ssl/b.pem'",  # PIP_CERT wins over the files
            ":env:.default-timeout='180'",
        ]
    )
    assert image_build.pip_settings(listed) == {
        "index-url": "https://mirror.example/simple",
        "cert": "/etc/ssl/b.pem",
        "extra-index-url": "file:///opt/pypi/simple",
        "timeout": "180",
    }


def test_the_build_home_mounts_local_indexes_and_copies_single_files(tmp_path: Path) -> None:
    (tmp_path / "pypi/simple").mkdir(parents=True)
    (tmp_path / "wheels").mkdir()
    (tmp_path / "ca.pem").write_text("CERT")
    home = tmp_path / "home"
    settings = {
        "index-url": "https://user:token@mirror.example/simple",
        "extra-index-url": f"file://{tmp_path}/pypi/simple file:///nowhere/simple",
        "find-links": f"{tmp_path}/wheels",
        "cert": f"{tmp_path}/ca.pem",
    }
    mounts = image_build.write_pip_home(settings, home)
    assert mounts == [
        f"{home}:/root:ro",
        f"{tmp_path}/pypi:/root/.host-pip/1:ro",  # the index's parent: its ../../files links
        f"{tmp_path}/wheels:/root/.host-pip/2:ro",
    ]
    conf = (home / ".config/pip/pip.conf").read_text()
    assert conf == (
        "[global]\n"
        "index-url = https://user:token@mirror.example/simple\n"
        "extra-index-url = file:///root/.host-pip/1/simple file:///nowhere/simple\n"
        "find-links = /root/.host-pip/2\n"
        "cert = /root/.host-pip/3\n"
    )
    assert (home / ".host-pip/3").read_text() == "CERT"
    # mount points exist inside the read-only home, so buildah creates none in a layer
    assert (home / ".host-pip/1").is_dir()
    assert (home / ".config/pip/pip.conf").stat().st_mode & 0o777 == 0o600


def test_pip_home_reads_this_pips_settings(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_INDEX_URL="https://u:t@mirror.example/simple")
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / "image_build.py"), "pip-home", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [f"{tmp_path}:/root:ro"]
    conf = (tmp_path / ".config/pip/pip.conf").read_text()
    assert conf == "[global]\nindex-url = https://u:t@mirror.example/simple\n"


# --- running an image's command -----------------------------------------------------------


@pytest.fixture
def image_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/bash\napp:x:10001:10001::/home/app:/usr/sbin/nologin\n"
    )
    (root / "etc/group").write_text("root:x:0:\napp:x:10001:\nmetrics:x:2000:app,other\n")
    return root


@pytest.mark.parametrize(
    ("user", "uid", "gid", "groups", "home"),
    [
        ("10001:10001", 10001, 10001, (2000, 10001), "/home/app"),
        ("app", 10001, 10001, (2000, 10001), "/home/app"),
        ("app:root", 10001, 0, (0, 2000), "/home/app"),
        ("", 0, 0, (0,), "/root"),
        ("4242", 4242, 0, (0,), "/"),  # a uid without a passwd entry: group 0, HOME /, as runc
    ],
)
def test_user_resolves_as_docker_does(
    image_root: Path, user: str, uid: int, gid: int, groups: tuple[int, ...], home: str
) -> None:
    assert image_test.resolve_user(image_root, user) == image_test.Identity(uid, gid, groups, home)


@pytest.mark.parametrize(("user", "missing"), [("web", "user 'web'"), ("app:www", "group 'www'")])
def test_a_user_or_group_the_image_lacks_is_named(
    image_root: Path, user: str, missing: str
) -> None:
    with pytest.raises(LookupError, match=f"no {missing}"):
        image_test.resolve_user(image_root, user)


def test_the_command_gets_the_images_env_with_hostname_and_home() -> None:
    who = image_test.Identity(10001, 10001, (10001,), "/home/app")
    env = image_test.environment(["PATH=/opt/venv/bin:/usr/bin", "PORT=8000"], who, "box")
    assert env == {"PATH": "/opt/venv/bin:/usr/bin", "HOSTNAME": "box", "HOME": "/home/app",
                   "PORT": "8000"}  # fmt: skip
    assert image_test.environment([], who, "box")["PATH"].endswith("/usr/bin:/sbin:/bin")


def test_the_contents_check_names_what_must_not_be_in_the_image(image_root: Path) -> None:
    app = image_root / "app"
    (app / "fraud/runtime").mkdir(parents=True)
    (app / "fraud/runtime/_treewalk.so").write_bytes(b"\x7fELF")
    clean = image_test.Checks()
    image_test.check_contents(clean, image_root, "/app")
    assert clean.failed == []
    for rel in ("tests", "data/raw", "fraud/.git", "etc/xdg/pip"):
        (image_root / ("" if rel.startswith("etc") else "app") / rel).mkdir(parents=True)
    (app / "fraud/runtime/_treewalk.so").unlink()
    dirty = image_test.Checks()
    image_test.check_contents(dirty, image_root, "/app")
    assert dirty.failed == [
        f"no {', '.join(image_test.FORBIDDEN_PATHS)} in /app: tests, data/raw",
        "no .git or tests folder anywhere under /app: fraud/.git, tests",
        "no pip configuration from the build: /etc/xdg/pip",
        "/app/fraud/runtime/_treewalk.so is in the image",
    ]


def test_healthcheck_and_command_come_from_the_docker_config() -> None:
    docker = {"Cmd": ["gunicorn"], "Healthcheck": {"Test": ["CMD", "python", "h.py"]}}
    inspected = {"Docker": {"config": docker}, "OCIv1": {"config": {"Cmd": ["other"]}}}
    assert image_test.image_config(inspected) is docker
    assert image_test.image_config({"Docker": {}, "OCIv1": {"config": {"Cmd": ["x"]}}}) == {
        "Cmd": ["x"]
    }
    assert image_test.healthcheck_argv(docker) == ("python", "h.py")
    shell = {"Healthcheck": {"Test": ["CMD-SHELL", "curl -f localhost"]}}
    assert image_test.healthcheck_argv(shell) == ("/bin/sh", "-c", "curl -f localhost")
    assert image_test.healthcheck_argv({"Healthcheck": {"Test": ["NONE"]}}) is None
    assert image_test.healthcheck_argv({}) is None


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["base_image_standin.sh", "docker.io/library/python:3.12-alpine"], "no stand-in recipe"),
        (["build_image.sh", "--bogus"], "unknown option --bogus"),
        (["build_image.sh", "-f", "/nonexistent/Dockerfile"], "no Dockerfile at /nonexistent"),
        (["system_packages.sh", "--nope"], "usage:"),
        (["image_build.py", "frobnicate", "x"], "image_build.py bases Dockerfile"),
    ],
)
def test_the_image_scripts_name_a_wrong_call(command: list[str], message: str) -> None:
    script = [sys.executable] if command[0].endswith(".py") else []
    proc = subprocess.run(
        [*script, str(SCRIPTS / command[0]), *command[1:]], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert message in proc.stderr


# --- the image, for real (make test-image) ------------------------------------------------

SUDO = [] if os.geteuid() == 0 else ["sudo"]
#: the runtime stage's COPY lines: each is something the running app needs
RUNTIME_COPIES = [rest for keyword, rest in RUNTIME if keyword == "COPY"]


def without(line: str) -> str:
    """The Dockerfile with the runtime stage's line that starts with ``line`` removed."""
    lines = DOCKERFILE.splitlines(keepends=True)
    runtime = max(i for i, ln in enumerate(lines) if ln.startswith("FROM "))
    matches = [i for i, ln in enumerate(lines) if i > runtime and ln.startswith(line)]
    assert len(matches) == 1, line
    return "".join(lines[: matches[0]] + lines[matches[0] + 1 :])


@pytest.fixture
def build(tmp_path: Path) -> Iterator[Callable[[str, str], subprocess.CompletedProcess[str]]]:
    """Build a Dockerfile text as fraud-api:test-<name> (this checkout the context); the tags
    are removed afterwards (the layers stay cached for the next build)."""
    tags: list[str] = []

    def run(name: str, text: str) -> subprocess.CompletedProcess[str]:
        tags.append(f"fraud-api:test-{name}")
        (tmp_path / f"{name}.Dockerfile").write_text(text)
        command = [str(SCRIPTS / "build_image.sh"), "-f", str(tmp_path / f"{name}.Dockerfile")]
        return subprocess.run(
            [*command, "-t", tags[-1], str(REPO)], capture_output=True, text=True, timeout=1800
        )

    yield run
    for tag in tags:
        subprocess.run([*SUDO, "buildah", "rmi", tag], capture_output=True, check=False)


def image_test_of(tag: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run scripts/image_test.py on ``tag``; also return the names of the checks that failed."""
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / "image_test.py"), tag],
        capture_output=True,
        text=True,
        timeout=600,
    )
    failed = [ln.split("FAIL  ", 1)[1] for ln in proc.stdout.splitlines() if "  FAIL  " in ln]
    return proc, failed


@pytest.mark.image
def test_the_dockerfile_builds_and_passes_image_test(build: Callable) -> None:
    built = build("as-is", DOCKERFILE)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    assert "built fraud-api:test-as-is with" in built.stdout
    proc, failed = image_test_of("fraud-api:test-as-is")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert failed == []
    for check in (
        "HEALTHCHECK python scripts/healthcheck.py passes",
        "POST /predict/batch scores 20",
        "server processes run as uid 10001, not root",
        "workers use the C kernel",
        "not importable: xgboost, pandas, sklearn, dvc, hydra",
        "no pip configuration from the build",
        "SIGTERM stops the server cleanly",
        "no process of the image is left",
    ):
        assert check in proc.stdout
    assert "checks of fraud-api:test-as-is passed" in proc.stdout


@pytest.mark.image
@pytest.mark.parametrize("copy", RUNTIME_COPIES, ids=lambda c: c.split()[-2])
def test_image_test_fails_without_any_copy_the_app_needs(build: Callable, copy: str) -> None:
    name = "no-" + copy.split()[-2].strip("/").replace("/", "-").replace("_", "-").lower()
    built = build(name, without(f"COPY {copy}"))
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    proc, failed = image_test_of(f"fraud-api:test-{name}")
    assert proc.returncode == 1, proc.stdout
    assert "image-test FAILED" in proc.stderr
    names = [re.sub(r"^\d+ ", "", f.split(": ")[0]) for f in failed]
    if copy.endswith("_treewalk.so"):  # the app runs, on numpy: the kernel checks say so
        assert names == [
            "/app/fraud/runtime/_treewalk.so is in the image",
            "workers use the C kernel",
            "no numpy fallback in the server log",
            "the C kernel loads (built from this source)",
        ]
    else:  # the server cannot become healthy
        assert names == ["HEALTHCHECK python scripts/healthcheck.py passes"]


@pytest.mark.image
def test_a_kernel_that_fails_to_build_fails_the_build(build: Callable) -> None:
    step = "RUN python -m fraud.runtime.native"
    assert step in DOCKERFILE
    built = build("kernel-fails", DOCKERFILE.replace(step, f"RUN CC=false {step[4:]}"))
    assert built.returncode != 0
    output = built.stdout + built.stderr
    assert "false failed to build /build/fraud/runtime/_treewalk.so" in output


@pytest.mark.image
def test_image_test_fails_when_the_image_runs_as_root(build: Callable) -> None:
    (user,) = [rest for keyword, rest in RUNTIME if keyword == "USER"]
    built = build("root", without(f"USER {user}"))
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    proc, failed = image_test_of("fraud-api:test-root")
    assert proc.returncode == 1
    assert failed[0] == "USER is not root: ''"
    assert re.match(r"all \d+ server processes run as uid 0, not root: pid \d+", failed[1])
    assert len(failed) == 2, failed  # everything else still works, as root
