"""Run a command of an image the way a container engine would, without one (no OCI runtime).

The image's root filesystem is a ``buildah mount``; scripts/image_test.py starts the image's
command with ``start`` and runs more of its commands beside it with ``run_beside`` (as
``docker exec`` does). ``start`` puts the process in new mount, PID and network namespaces
(``unshare``): the command is PID 1 and its port is on a loopback interface no other process of
the host can reach; /proc, /sys and a minimal /dev are mounted inside the root only in that
namespace. Then, as Docker does: chroot to the root, chdir to WORKDIR, drop to USER (its
numeric uid and gid, resolved in the image's /etc/passwd and /etc/group), exec the command with
the image's ENV plus HOSTNAME and HOME, searching the image's PATH.

    python3 scripts/image_root.py SPEC_JSON   # the step inside the namespaces (root only)
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
from dataclasses import asdict, dataclass, replace
from pathlib import Path

__all__ = ["Identity", "Spec", "end", "resolve_user", "run_beside", "start"]

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")


@dataclass(frozen=True)
class Identity:
    """Who the image's processes run as: USER resolved against the image's own files."""

    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str


def _table(path: Path) -> list[list[str]]:
    try:
        return [line.split(":") for line in path.read_text().splitlines() if line.count(":")]
    except FileNotFoundError:
        return []


def resolve_user(root: Path, user: str) -> Identity:
    """Docker's USER rules: ``name``, ``uid``, ``name:group`` or ``uid:gid``; empty is root.

    A numeric uid need not be in /etc/passwd (its group is then 0 unless given, as in runc); a
    name must. Supplementary groups are the user's memberships in /etc/group.
    """
    name, _, group = (user or "0").partition(":")
    passwd = _table(root / "etc/passwd")
    groups = _table(root / "etc/group")
    entry = next((e for e in passwd if name in (e[0], e[2]) and len(e) >= 6), None)
    if entry is None and not name.isdigit():
        raise LookupError(f"USER {user}: no user {name!r} in the image's /etc/passwd")
    uid = int(entry[2]) if entry else int(name)
    gid = int(entry[3]) if entry else 0
    if group:
        match = next((g for g in groups if group in (g[0], g[2])), None)
        if match is None and not group.isdigit():
            raise LookupError(f"USER {user}: no group {group!r} in the image's /etc/group")
        gid = int(match[2]) if match else int(group)
    login = entry[0] if entry else None
    extra = tuple(int(g[2]) for g in groups if login and len(g) >= 4 and login in g[3].split(","))
    home = entry[5] if entry and entry[5] else "/"
    return Identity(uid, gid, tuple(sorted({gid, *extra})), home)


@dataclass(frozen=True)
class Spec:
    """One command of the image: where its root is, who runs it, in which folder, with what."""

    root: str
    argv: tuple[str, ...]
    env: dict[str, str]
    workdir: str
    identity: Identity
    setup: bool = False  # mount /proc, /sys and /dev (the first process of the namespaces)


def environment(image_env: list[str], identity: Identity, hostname: str) -> dict[str, str]:
    """The image's ENV as a container gets it: HOSTNAME and HOME (from /etc/passwd) added."""
    env = {"PATH": DEFAULT_PATH, "HOSTNAME": hostname, "HOME": identity.home}
    for item in image_env:
        key, _, value = item.partition("=")
        env[key] = value
    return env


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True)


def _set_up(root: Path) -> None:
    """Loopback up; /proc, /sys (read-only) and a minimal /dev inside root (this namespace)."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    for sub in ("proc", "sys", "dev"):
        (root / sub).mkdir(exist_ok=True)
    _mount("-t", "proc", "-o", "nosuid,nodev,noexec", "proc", str(root / "proc"))
    _mount("-t", "sysfs", "-o", "ro,nosuid,nodev,noexec", "sysfs", str(root / "sys"))
    _mount("-t", "tmpfs", "-o", "nosuid,mode=755", "tmpfs", str(root / "dev"))
    for name in DEVICES:
        if Path("/dev", name).exists():
            (root / "dev" / name).touch()
            _mount("--bind", f"/dev/{name}", str(root / "dev" / name))
    (root / "dev/shm").mkdir()
    _mount("-t", "tmpfs", "-o", "nosuid,nodev,mode=1777", "tmpfs", str(root / "dev/shm"))
    (root / "dev/fd").symlink_to("/proc/self/fd")
    for fd, name in enumerate(("stdin", "stdout", "stderr")):
        (root / "dev" / name).symlink_to(f"/proc/self/fd/{fd}")


def enter(spec: Spec) -> None:
    """Become the image's process: chroot, chdir WORKDIR, drop to USER, exec (never returns)."""
    if spec.setup:
        _set_up(Path(spec.root))
    os.chroot(spec.root)
    os.chdir(spec.workdir or "/")
    os.setgroups(list(spec.identity.groups))
    os.setgid(spec.identity.gid)
    os.setuid(spec.identity.uid)
    _die_with_parent()  # setuid cleared it: the command still ends with unshare or nsenter
    os.execvpe(spec.argv[0], list(spec.argv), spec.env)  # noqa: S606 (the image's own CMD)


def _command(spec: Spec) -> list[str]:
    return [sys.executable, "-I", __file__, json.dumps(asdict(spec))]


def start(spec: Spec, log: Path) -> subprocess.Popen[bytes]:
    """Start ``spec`` as PID 1 of new namespaces; its output goes to ``log``.

    unshare ends if this process dies (PR_SET_PDEATHSIG), and the command, PID 1 of the
    namespaces, if unshare does (set again after setuid, which clears it); when PID 1 ends, the
    kernel ends every other process of its namespace. ``end`` stops it all on purpose.
    """
    with open(log, "wb") as out:
        return subprocess.Popen(
            [
                "unshare",
                "--mount",
                "--pid",
                "--net",
                "--fork",
                "--kill-child",
                *_command(replace(spec, setup=True)),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )


def end(unshare: subprocess.Popen[bytes], init: int | None) -> bool:
    """Kill the namespaces' PID 1 (``init``, the host PID; every process of the namespace goes
    with it) and unshare; True once none of them is left."""
    if unshare.poll() is None:  # else init has exited already (unshare waits for it)
        if init is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(init, signal.SIGKILL)
        unshare.kill()
    unshare.wait()
    deadline = time.monotonic() + 10
    while init is not None and Path(f"/proc/{init}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return init is None or not Path(f"/proc/{init}").exists()


def run_beside(pid: int, spec: Spec, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``spec`` in the namespaces of process ``pid`` (``docker exec``)."""
    return subprocess.run(
        ["nsenter", f"--target={pid}", "--mount", "--pid", "--net", "--", *_command(spec)],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def _die_with_parent() -> None:
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def main(argv: list[str]) -> int:
    if len(argv) != 1 or os.geteuid() != 0:
        print(__doc__.rsplit("\n\n", 1)[1], file=sys.stderr)
        return 2
    raw = json.loads(argv[0])
    raw["identity"] = Identity(**{**raw["identity"], "groups": tuple(raw["identity"]["groups"])})
    raw["argv"] = tuple(raw["argv"])
    try:
        enter(Spec(**raw))
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"error: cannot start {raw['argv']} in {raw['root']}: {exc}", file=sys.stderr)
        return 127
    return 0  # not reached: enter() execs


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
