"""Run the built image and check it as App Platform would use it. `make image-test` runs this.

    python3 scripts/image_test.py [IMAGE]     # default fraud-api:latest; needs root and buildah

The image's root filesystem is mounted (``buildah from`` + ``buildah mount``) and its exact
CMD started in it as its USER, with its ENV and WORKDIR, as PID 1 of its own namespaces
(scripts/image_root.py), listening on a loopback interface only it and this test share. Checked:
the HEALTHCHECK command passes, ``/ready``, ``/model/info``, a ``/predict`` and a
``/predict/batch`` answer; every server process runs as USER (not root) and maps the C tree
kernel (no numpy fallback); the log has no error; SIGTERM stops it cleanly. In the image: no
xgboost, pandas, scikit-learn, DVC or Hydra importable; no tests, data/raw, .git, training code
or pip configuration. Every check is printed; the exit status is 1 when any failed, naming which.
The container, its mount and its processes are removed when the test ends (checked); if it
is killed with SIGKILL the processes still go, and the next run removes the container.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from image_root import Identity, Spec, end, environment, resolve_user, run_beside, start

__all__ = [
    "Checks",
    "Identity",
    "check_contents",
    "environment",
    "image_config",
    "main",
    "resolve_user",
]

FORBIDDEN_MODULES = ("xgboost", "pandas", "sklearn", "dvc", "hydra")
#: relative to WORKDIR: what the image must not carry (.dockerignore keeps them out)
FORBIDDEN_PATHS = ("tests", "data/raw", ".git", ".dvc", "stages", "fraud/model", "params.yaml")
#: where pip would find a configuration (the build's is mounted only while RUN steps run)
PIP_CONFIG = ("etc/pip.conf", "etc/xdg/pip", "root/.config/pip", "root/.pip", "root/.host-pip")
KERNEL = "fraud/runtime/_treewalk.so"
NAME_PREFIX = "fraud-image-test-"
CLONE_NEWNET = 0x40000000


class Checks:
    """Results in order; each printed as it is recorded."""

    def __init__(self) -> None:
        self.failed: list[str] = []
        self.passed = 0

    def record(self, ok: bool, name: str, detail: str = "") -> bool:
        print(f"  {'ok  ' if ok else 'FAIL'}  {name}{': ' + detail if detail else ''}", flush=True)
        if ok:
            self.passed += 1
        else:
            self.failed.append(f"{name}: {detail}" if detail else name)
        return ok


def buildah(*args: str, check: bool = True) -> str:
    done = subprocess.run(["buildah", *args], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise RuntimeError(f"buildah {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


def image_config(inspected: dict) -> dict:
    """The image's run configuration; the Docker format's, which keeps HEALTHCHECK."""
    docker = (inspected.get("Docker") or {}).get("config") or {}
    return (
        docker
        if docker.get("Cmd") or docker.get("Entrypoint")
        else (inspected.get("OCIv1", {}).get("config", {}))
    )


@contextlib.contextmanager
def mounted(image: str) -> Iterator[Path]:
    """A working container of ``image`` and its mounted root; both removed on exit."""
    for name in buildah("containers", "--format", "{{.ContainerName}}").split():
        pid = name.removeprefix(NAME_PREFIX)
        if name.startswith(NAME_PREFIX) and pid.isdigit() and not Path(f"/proc/{pid}").exists():
            buildah("rm", name, check=False)  # left by a run that was killed
    name = f"{NAME_PREFIX}{os.getpid()}"
    buildah("from", "--pull-never", "--name", name, image)
    try:
        yield Path(buildah("mount", name))
    finally:
        buildah("umount", name, check=False)
        buildah("rm", name, check=False)


def check_contents(checks: Checks, root: Path, workdir: str) -> None:
    """What must not be in the image: tests, raw data, git, training code, pip configuration."""
    app = root / workdir.lstrip("/")
    there = [rel for rel in FORBIDDEN_PATHS if (app / rel).exists()]
    checks.record(not there, f"no {', '.join(FORBIDDEN_PATHS)} in {workdir}", ", ".join(there))
    found = sorted(str(p.relative_to(app)) for p in app.rglob("*") if p.name in (".git", "tests"))
    checks.record(not found, f"no .git or tests folder anywhere under {workdir}", ", ".join(found))
    leaked = [f"/{rel}" for rel in PIP_CONFIG if (root / rel).exists()]
    checks.record(not leaked, "no pip configuration from the build", ", ".join(leaked))
    checks.record((app / KERNEL).is_file(), f"{workdir}/{KERNEL} is in the image")


def tree_size(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


@contextlib.contextmanager
def network_of(pid: int) -> Iterator[None]:
    """This thread in the network namespace of ``pid`` (its loopback), then back."""
    libc = ctypes.CDLL(None, use_errno=True)
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into the network of process {pid}")
        yield
    finally:
        libc.setns(home, CLONE_NEWNET)
        os.close(home)
        os.close(target)


def http(url: str, body: object | None = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST" if data else "GET")  # noqa: S310
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:  # noqa: S310 (loopback URL)
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")
    except (OSError, ValueError) as exc:
        return 0, {"error": str(exc)}


def processes(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{current}/task"):
                children = Path(f"/proc/{current}/task/{task}/children").read_text()
                todo.extend(int(c) for c in children.split())
    return found


def uids(pid: int) -> set[int]:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return {int(u) for u in line.split()[1:]}
    return set()


def namespace_init(unshare: subprocess.Popen[bytes]) -> int:
    """The host PID of the command unshare started (PID 1 of the namespaces)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and unshare.poll() is None:
        children = Path(f"/proc/{unshare.pid}/task/{unshare.pid}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.05)
    raise RuntimeError(f"unshare exited {unshare.poll()} before starting the image's command")


INSIDE = f"""
import importlib.util, json
found = {{m: importlib.util.find_spec(m) is not None for m in {FORBIDDEN_MODULES!r}}}
try:
    from fraud.runtime import native
    native.load()
    kernel = "ok"
except Exception as exc:
    kernel = repr(exc)
print(json.dumps({{"found": found, "kernel": kernel}}))
"""


def check_inside(checks: Checks, pid: int, spec: Spec) -> None:
    """Import checks by the image's python, as USER in WORKDIR with ENV, beside the server."""
    done = run_beside(pid, replace(spec, argv=("python", "-c", INSIDE)))
    try:
        report = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        checks.record(False, "the image's python runs", done.stderr.strip()[-500:])
        return
    present = [m for m, yes in report["found"].items() if yes]
    checks.record(
        not present, f"not importable: {', '.join(FORBIDDEN_MODULES)}", ", ".join(present)
    )
    checks.record(
        report["kernel"] == "ok",
        "the C kernel loads (built from this source)",
        "" if report["kernel"] == "ok" else report["kernel"],
    )


def healthcheck_argv(config: dict) -> tuple[str, ...] | None:
    test = (config.get("Healthcheck") or {}).get("Test") or []
    if test[:1] == ["CMD"]:
        return tuple(test[1:])
    if test[:1] == ["CMD-SHELL"]:
        return ("/bin/sh", "-c", test[1])
    return None


def wait_healthy(
    checks: Checks, pid: int, spec: Spec, unshare: subprocess.Popen[bytes], config: dict
) -> bool:
    """Run the HEALTHCHECK command until it passes, as Docker does: failures in the start
    period do not count; once the server answers GET /ready 200, ``Retries`` failures in a row
    mean the command itself is broken."""
    health = config.get("Healthcheck") or {}
    argv = healthcheck_argv(config)
    if not checks.record(argv is not None, "the image has a HEALTHCHECK command", str(argv)):
        return False
    name = f"HEALTHCHECK {' '.join(argv)} passes"
    timeout = health.get("Timeout", 30e9) / 1e9
    deadline = time.monotonic() + health.get("StartPeriod", 60e9) / 1e9 + timeout
    ready = f"http://127.0.0.1:{spec.env.get('PORT', '8000')}/ready"
    last, failed_when_ready = None, 0
    while time.monotonic() < deadline and unshare.poll() is None:
        last = run_beside(pid, replace(spec, argv=argv), timeout=timeout + 5)
        if last.returncode == 0:
            return checks.record(True, name)
        failed_when_ready = failed_when_ready + 1 if http(ready)[0] == 200 else 0
        if failed_when_ready >= health.get("Retries", 3):
            why = f"GET /ready answers 200, yet the command exits {last.returncode}"
            return checks.record(False, name, f"{why}: {last.stderr.strip()[-300:]}")
        time.sleep(0.5)
    why = f"the server exited {unshare.poll()}" if unshare.poll() is not None else "timed out"
    output = last.stderr.strip()[-300:] if last else "it never ran"
    return checks.record(False, name, f"{why}; last: {output}")


def check_serving(checks: Checks, root: Path, spec: Spec, port: str) -> None:
    """/ready, /model/info, /predict and /predict/batch on the server's loopback port."""
    url = f"http://127.0.0.1:{port}"
    status, _ = http(f"{url}/ready")
    checks.record(status == 200, "GET /ready answers 200", str(status))
    manifest = json.loads((root / spec.workdir.lstrip("/") / "models/manifest.json").read_text())
    status, info = http(f"{url}/model/info")
    version = info.get("version")
    checks.record(
        status == 200 and version == manifest["sha256"][:12],
        "GET /model/info names the image's model",
        f"{status} {version}",
    )
    status, sample = http(f"{url}/sample-transaction")
    status, scored = http(f"{url}/predict", sample)
    probability = scored.get("fraud_probability")
    checks.record(
        status == 200
        and isinstance(probability, float)
        and 0 <= probability <= 1
        and scored.get("risk_level") in ("low", "medium", "high"),
        "POST /predict scores the sample transaction",
        f"{status} {probability}",
    )
    status, batch = http(f"{url}/predict/batch", {"transactions": [sample] * 20})
    checks.record(
        status == 200 and batch.get("n_scored") == 20,
        "POST /predict/batch scores 20",
        f"{status} {batch.get('n_scored')}",
    )


def check_processes(checks: Checks, pid: int, spec: Spec, log: Path) -> None:
    """Every server process runs as USER, not root; every worker maps the C kernel."""
    tree = processes(pid)
    ids = {p: uids(p) for p in tree}
    rooted = [p for p, found in ids.items() if 0 in found or found != {spec.identity.uid}]
    checks.record(
        not rooted and spec.identity.uid != 0,
        f"all {len(tree)} server processes run as uid {spec.identity.uid}, not root",
        ", ".join(f"pid {p}: uids {sorted(ids[p])}" for p in rooted),
    )
    workers = tree[1:]
    without = [p for p in workers if KERNEL not in Path(f"/proc/{p}/maps").read_text()]
    checks.record(
        bool(workers) and not without,
        f"{len(workers)} workers use the C kernel",
        f"pids {without} do not map {KERNEL}" if without else "",
    )
    lines = log.read_text(errors="replace").splitlines()
    fallback = [ln for ln in lines if "using numpy" in ln]
    checks.record(not fallback, "no numpy fallback in the server log", "; ".join(fallback[:1]))
    errors = [ln for ln in lines if "[ERROR]" in ln or "Traceback" in ln]
    checks.record(not errors, "no errors in the server log", "; ".join(errors[:3]))


def run(image: str) -> int:
    checks = Checks()
    inspected = json.loads(buildah("inspect", "--type", "image", image))
    config = image_config(inspected)
    argv = tuple((config.get("Entrypoint") or []) + (config.get("Cmd") or []))
    workdir = config.get("WorkingDir") or "/"
    user = config.get("User") or "root"
    print(f"image-test {image}: CMD {list(argv)} as USER {user} in {workdir}")
    with mounted(image) as root:
        identity = resolve_user(root, config.get("User", ""))
        checks.record(identity.uid != 0, "USER is not root", f"{config.get('User')!r}")
        check_contents(checks, root, workdir)
        env = environment(config.get("Env") or [], identity, "image-test")
        spec = Spec(str(root), argv, env, workdir, identity)
        log = Path(f"/tmp/{NAME_PREFIX}{os.getpid()}.log")  # noqa: S108 (root-owned, pid-named)
        unshare, pid = start(spec, log), None
        try:
            pid = namespace_init(unshare)
            with network_of(pid):
                if wait_healthy(checks, pid, spec, unshare, config):
                    check_serving(checks, root, spec, env.get("PORT", "8000"))
                    check_processes(checks, pid, spec, log)
                    check_inside(checks, pid, spec)
                    os.kill(pid, signal.SIGTERM)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        unshare.wait(timeout=40)
                    checks.record(
                        unshare.poll() == 0,
                        "SIGTERM stops the server cleanly",
                        f"exit {unshare.poll()}",
                    )
        finally:
            gone = end(unshare, pid)
            if not gone:
                print(f"image-test: process {pid} of the image outlived the test", file=sys.stderr)
            tail = log.read_text(errors="replace").splitlines()[-40:]
            log.unlink(missing_ok=True)
        checks.record(gone, "no process of the image is left")
        venv, app = tree_size(root / "opt/venv"), tree_size(root / workdir.lstrip("/"))
        print(
            f"  size: {tree_size(root) / 1e6:.0f} MB in all; /opt/venv {venv / 1e6:.0f} MB, "
            f"{workdir} {app / 1e6:.1f} MB"
        )
    if checks.failed:
        print("server log (last lines):\n    " + "\n    ".join(tail), file=sys.stderr)
        print(
            f"image-test FAILED {len(checks.failed)} of {len(checks.failed) + checks.passed} "
            f"checks of {image}:\n  " + "\n  ".join(checks.failed),
            file=sys.stderr,
        )
        return 1
    print(f"image-test: all {checks.passed} checks of {image} passed")
    return 0


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the clean-up


def main(argv: list[str]) -> int:
    if len(argv) > 1 or argv[:1] in (["-h"], ["--help"]):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    if os.geteuid() != 0:  # chroot, namespaces and setuid need root
        os.execvp("sudo", ["sudo", sys.executable, os.path.abspath(__file__), *argv])  # noqa: S606
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)
    try:
        return run(argv[0] if argv else "fraud-api:latest")
    except (RuntimeError, LookupError, OSError) as exc:
        print(f"image-test: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
