"""What scripts/build_image.sh needs to know before it calls buildah: which base images the
Dockerfile starts from, and how the build's pip reaches the package index the way this host's does.

    python3 scripts/image_build.py bases Dockerfile     # one fully qualified image per line
    python3 scripts/image_build.py pip-home DIR          # fill DIR; print buildah --volume specs

The host's pip settings (``pip config list``: its files and PIP_* variables) that say where
packages come from are written to ``DIR/.config/pip/pip.conf``, and DIR is mounted read-only over
the build's HOME (/root, which every base image has, so no mount point is created in a layer).
Local paths those settings name (``file://`` indexes, find-links folders, the CA bundle, a
constraints file) are mounted or copied under ``/root/.host-pip/``. The mounts exist only while a
RUN step runs: nothing of the configuration, credentials in an index URL included, is committed.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = ["base_images", "pip_settings", "write_pip_home"]

#: HOME of the build's RUN steps (root's, in every Debian-based image).
BUILD_HOME = "/root"
HOST_PIP = f"{BUILD_HOME}/.host-pip"
#: pip settings that say where packages come from and how the index is reached.
INDEX_KEYS = (
    "index-url",
    "extra-index-url",
    "no-index",
    "find-links",
    "trusted-host",
    "cert",
    "client-cert",
    "proxy",
    "timeout",
    "retries",
    "constraint",
)
#: list-valued settings (whitespace-separated in pip.conf)
LIST_KEYS = {"extra-index-url", "find-links", "trusted-host", "constraint"}
#: pip's precedence: [global], then the command's section, then PIP_* variables
SCOPES = ("global", "install", ":env:")


def qualify(ref: str) -> str:
    """An image reference as Docker reads it: ``python:3.11`` is docker.io/library/python:3.11."""
    first, _, rest = ref.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return ref
    return f"docker.io/{ref}" if rest else f"docker.io/library/{ref}"


def base_images(dockerfile: str) -> list[str]:
    """The images the Dockerfile's stages start from (ARG defaults expanded, stages skipped)."""
    joined = re.sub(r"\\\n", " ", dockerfile)
    args: dict[str, str] = {}
    stages: set[str] = set()
    bases: list[str] = []
    for line in joined.splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        keyword = words[0].upper()
        if keyword == "ARG" and not bases and len(words) > 1:
            name, _, default = words[1].partition("=")
            args[name] = default
        elif keyword == "FROM":
            words = [w for w in words[1:] if not w.startswith("--")]
            image = re.sub(
                r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), ""), words[0] if words else ""
            )
            if image and image != "scratch" and image.lower() not in stages:
                ref = qualify(image)
                if ref not in bases:
                    bases.append(ref)
            if len(words) >= 3 and words[1].upper() == "AS":
                stages.add(words[2].lower())
    if not bases:
        raise ValueError("the Dockerfile has no FROM image")
    return bases


def pip_settings(config_list: str) -> dict[str, str]:
    """The index settings in ``pip config list`` output, merged in pip's order of precedence."""
    found: dict[tuple[str, str], str] = {}
    for line in config_list.splitlines():
        match = re.fullmatch(r"(:env:|[\w-]+)\.([\w-]+)=(.*)", line.strip())
        if match:
            scope, key, value = match.groups()
            found[scope, "timeout" if key == "default-timeout" else key] = ast.literal_eval(value)
    return {
        key: found[scope, key] for scope in SCOPES for key in INDEX_KEYS if (scope, key) in found
    }


def _local_path(value: str) -> Path | None:
    if value.startswith("file:"):
        return Path(unquote(urlsplit(value).path))
    return Path(value) if value.startswith("/") else None


def write_pip_home(settings: dict[str, str], home: Path) -> list[str]:
    """Write the build's pip.conf under ``home``; return the buildah ``--volume`` specs.

    A ``file://`` index is mounted from its parent folder (a PEP 503 index links its files as
    ``../../files/...``), a find-links folder as it is, and a single file (CA bundle,
    constraints) is copied in. Paths that do not exist on this host are passed as they are.
    """
    mounts = [f"{home}:{BUILD_HOME}:ro"]
    lines = ["[global]"]
    n = 0
    for key, raw in settings.items():
        values = raw.split() if key in LIST_KEYS else [raw]
        out = []
        for value in values:
            path = _local_path(value)
            if path is None or not path.exists():
                out.append(value)
                continue
            n += 1
            inside, here = f"{HOST_PIP}/{n}", home / ".host-pip" / str(n)
            here.parent.mkdir(parents=True, exist_ok=True)
            if path.is_file():
                shutil.copyfile(path, here)
                target = inside
            else:
                root = path.parent if key in ("index-url", "extra-index-url") else path
                here.mkdir()  # the mount point, inside home's read-only mount
                mounts.append(f"{root}:{inside}:ro")
                target = f"{inside}/{path.relative_to(root)}".removesuffix("/.")
            out.append(f"file://{target}" if value.startswith("file:") else target)
        lines.append(f"{key} = {' '.join(out)}")
    conf = home / ".config/pip/pip.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text("\n".join(lines) + "\n")
    conf.chmod(0o600)
    return mounts


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("bases", "pip-home"):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    command, path = argv
    if command == "bases":
        try:
            print("\n".join(base_images(Path(path).read_text())))
        except (OSError, ValueError) as exc:
            print(f"error: {path}: {exc}", file=sys.stderr)
            return 1
        return 0
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True
    )
    if listed.returncode != 0:
        print(f"error: pip config list failed: {listed.stderr.strip()}", file=sys.stderr)
        return 1
    settings = pip_settings(listed.stdout)
    print("\n".join(write_pip_home(settings, Path(path))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
