"""The retrain workflow's git plumbing and `make rollback`, in temporary git repositories.

Each test copies the project into a fresh repository whose ``origin`` is a local bare repo,
so commit_model.sh really commits and pushes, create_release.sh really calls a ``gh`` (a fake
on PATH that records its arguments and answers like the real one) and rollback_model.sh
really restores and commits. A "retrained" model is the committed one with another threshold,
written with fraud.runtime.artifact's own serializer, so it verifies like a model the pipeline
made.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fraud.files import sha256_bytes
from fraud.runtime.artifact import load_artifact, publish, read_profile, serialize
from scripts.modelops import model_paths
from tests.conftest import REPO, copy_repo, fake_tool, run, tool_env

RUN_URL = "https://github.com/acme/fraud/actions/runs/42"
#: The committed model, which every copy starts from.
COMMITTED = json.loads((REPO / "models/manifest.json").read_text())
VERSION = COMMITTED["sha256"][:12]
#: The versioned files of a published set, as (name prefix, extension).
NAMES = [("fraud_model", "zip"), ("reference_profile", "json")]
METRICS = COMMITTED["test_metrics"]
BRANCHES = {"production": "master", "staging": "staging", "development": "develop"}


def git(repo: Path, *args: str) -> str:
    return run(["git", *args], repo).stdout.strip()


def script(
    repo: Path, name: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run scripts/<name> of the copy with this interpreter's venv first on PATH."""
    full = dict(tool_env(), PYTHON=sys.executable, **(env or {}))
    return subprocess.run(
        [str(repo / "scripts" / name), *args],
        cwd=repo,
        env=full,
        capture_output=True,
        text=True,
        timeout=300,
    )


def new_model(repo: Path, threshold: float, env: str | None = None) -> str:
    """Publish a different, valid model into the copy's models/; return its sha256."""
    manifest_path = repo / "models/manifest.json"
    artifact, manifest = load_artifact(manifest_path)
    profile = json.loads(read_profile(manifest_path, manifest))
    artifact.threshold = threshold
    data = serialize(artifact)
    manifest = dict(manifest, sha256=sha256_bytes(data), size_bytes=len(data))
    manifest["threshold"] = threshold
    if env is not None:
        manifest["env"] = env
    profile["model"]["sha256"] = manifest["sha256"]
    publish(repo / "models", data, manifest, json.dumps(profile).encode())
    return manifest["sha256"]


def artifact_of(repo: Path) -> Path:
    """The artifact the copy's manifest names."""
    return repo / "models" / json.loads((repo / "models/manifest.json").read_text())["artifact"]


def commit_all(repo: Path, message: str) -> None:
    """Commit every change, new and removed files included (a published set renames files)."""
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)


@pytest.fixture
def remote_repo(tmp_path: Path) -> tuple[Path, Path]:
    """(working copy on branch master, bare origin holding master)."""
    repo = copy_repo(tmp_path / "work")
    git(repo, "branch", "-M", "master")
    origin = tmp_path / "origin.git"
    run(["git", "init", "--bare", "-q", str(origin)], tmp_path)
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "push", "-q", "origin", "master")
    return repo, origin


def remote_head(origin: Path, branch: str = "master") -> str:
    return git(origin, "rev-parse", f"refs/heads/{branch}")


def outputs(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines())


# --- commit_model.sh -----------------------------------------------------------------------


def test_commit_pushes_the_gated_model_with_skip_ci_metrics_and_run(
    remote_repo: tuple[Path, Path], tmp_path: Path
) -> None:
    repo, origin = remote_repo
    before = remote_head(origin)
    sha256 = new_model(repo, 0.061)
    (repo / "README.md").write_text("someone else's edit\n")  # must not ride along
    out_file = tmp_path / "github_output"
    proc = script(
        repo,
        "commit_model.sh",
        "production",
        "--run-url",
        RUN_URL,
        env={"GITHUB_OUTPUT": str(out_file)},
    )
    assert proc.returncode == 0, proc.stderr
    head = remote_head(origin)
    assert head != before
    assert git(origin, "rev-parse", f"{head}^") == before
    message = git(origin, "log", "-1", "--format=%B", head)
    subject = message.splitlines()[0]
    assert subject.startswith(
        f"Retrain production model: roc_auc {METRICS['roc_auc']:.4f}, "
        f"pr_auc {METRICS['pr_auc']:.4f}, recall_at_1pct_fpr {METRICS['recall_at_1pct_fpr']:.4f}"
    )
    assert subject.endswith("[skip ci]")
    assert "Environment: production" in message
    assert f"Run: {RUN_URL}" in message
    assert sha256 in message
    changed = git(origin, "diff", "--name-only", "--no-renames", before, head).splitlines()
    old, new = COMMITTED["sha256"][:12], sha256[:12]
    assert set(changed) == {
        "models/manifest.json",
        *(f"models/{name}-{v}.{ext}" for v in (old, new) for name, ext in NAMES),
    }
    assert all(any(p == m or p.startswith(m + "/") for m in model_paths(REPO)) for p in changed)
    pushed = json.loads(git(origin, "show", f"{head}:models/manifest.json"))
    assert pushed["sha256"] == sha256
    assert git(repo, "status", "--porcelain") == "M README.md"
    assert outputs(out_file) == {"committed": "true", "sha": head}


def test_staging_model_goes_to_the_staging_branch(tmp_path: Path) -> None:
    repo = copy_repo(tmp_path / "work")
    origin = tmp_path / "origin.git"
    run(["git", "init", "--bare", "-q", str(origin)], tmp_path)
    git(repo, "checkout", "-q", "-b", "staging")
    git(repo, "remote", "add", "origin", str(origin))
    run([sys.executable, "-m", "stages.compose", "env=staging"], repo)
    new_model(repo, 0.07, env="staging")
    proc = script(repo, "commit_model.sh", "staging")
    assert proc.returncode == 0, proc.stderr
    assert git(origin, "branch", "--format=%(refname:short)") == "staging"
    head = remote_head(origin, "staging")
    assert git(origin, "log", "-1", "--format=%s", head).startswith("Retrain staging model:")
    changed = set(git(origin, "show", "--name-only", "--format=", head).splitlines())
    assert "params.yaml" in changed
    assert "Run:" not in git(origin, "log", "-1", "--format=%B", head)


def test_nothing_to_commit_exits_cleanly(remote_repo: tuple[Path, Path], tmp_path: Path) -> None:
    repo, origin = remote_repo
    before = remote_head(origin)
    out_file = tmp_path / "github_output"
    proc = script(repo, "commit_model.sh", "production", env={"GITHUB_OUTPUT": str(out_file)})
    assert proc.returncode == 0, proc.stderr
    assert "nothing to commit: master already holds this production model" in proc.stdout
    assert remote_head(origin) == before
    assert git(repo, "rev-parse", "HEAD") == before
    assert outputs(out_file) == {"committed": "false"}


def test_failed_gate_commits_and_pushes_nothing(remote_repo: tuple[Path, Path]) -> None:
    repo, origin = remote_repo
    before = remote_head(origin)
    new_model(repo, 0.08)
    gate = json.loads((repo / "reports/gate.json").read_text())
    gate["passed"] = False
    gate["checks"][0]["passed"] = False
    (repo / "reports/gate.json").write_text(json.dumps(gate))
    proc = script(repo, "commit_model.sh", "production", "--run-url", RUN_URL)
    assert proc.returncode == 1
    assert "refusing to commit: the gate did not pass" in proc.stderr
    assert "gate: FAILED" in proc.stderr
    assert remote_head(origin) == before
    assert git(repo, "rev-parse", "HEAD") == before
    assert git(repo, "diff", "--cached", "--name-only") == ""


def test_tampered_model_commits_and_pushes_nothing(remote_repo: tuple[Path, Path]) -> None:
    repo, origin = remote_repo
    before = remote_head(origin)
    with open(artifact_of(repo), "ab") as fh:
        fh.write(b"\0")
    proc = script(repo, "commit_model.sh", "production")
    assert proc.returncode == 1
    assert "sha256" in proc.stderr
    assert remote_head(origin) == before


def test_a_model_of_another_environment_is_refused(remote_repo: tuple[Path, Path]) -> None:
    repo, origin = remote_repo
    before = remote_head(origin)
    proc = script(repo, "commit_model.sh", "staging")
    assert proc.returncode != 0
    assert "params.yaml records env 'production', expected 'staging'" in proc.stderr
    assert remote_head(origin) == before


def test_rejected_push_is_reported_and_the_remote_keeps_its_head(
    remote_repo: tuple[Path, Path], tmp_path: Path
) -> None:
    repo, origin = remote_repo
    other = tmp_path / "other"
    run(["git", "clone", "-q", str(origin), str(other)], tmp_path)
    (other / "NOTES.md").write_text("pushed meanwhile\n")
    git(other, "add", "NOTES.md")
    git(other, "commit", "-qm", "meanwhile")
    git(other, "push", "-q", "origin", "master")
    moved = remote_head(origin)
    new_model(repo, 0.062)
    proc = script(repo, "commit_model.sh", "production")
    assert proc.returncode == 1
    assert "was rejected" in proc.stderr
    assert "nothing was pushed" in proc.stderr
    assert remote_head(origin) == moved


# --- create_release.sh ---------------------------------------------------------------------


FAKE_GH = """#!{python}
# A stand-in for the GitHub CLI: records argv (and the notes file) and answers like gh.
import json, os, sys
args = sys.argv[1:]
record = {{"argv": args}}
if "--notes-file" in args:
    record["notes"] = open(args[args.index("--notes-file") + 1]).read()
with open(os.environ["FAKE_GH_LOG"], "a") as fh:
    fh.write(json.dumps(record) + "\\n")
if args[:2] == ["release", "create"]:
    print("https://github.com/acme/fraud/releases/tag/" + args[2])
    sys.exit(0)
print("unknown command " + " ".join(args), file=sys.stderr)
sys.exit(1)
"""


def fake_gh(tmp_path: Path) -> tuple[dict[str, str], Path]:
    bin_dir = fake_tool(tmp_path, "gh", FAKE_GH)
    log = tmp_path / "gh.jsonl"
    env = {"PATH": f"{bin_dir}{os.pathsep}{tool_env()['PATH']}", "FAKE_GH_LOG": str(log)}
    return env, log


def test_release_carries_the_model_files_metrics_and_run(
    remote_repo: tuple[Path, Path], tmp_path: Path
) -> None:
    repo, _ = remote_repo
    env, log = fake_gh(tmp_path)
    target = git(repo, "rev-parse", "HEAD")
    proc = script(repo, "create_release.sh", "production", "--run-url", RUN_URL, env=env)
    assert proc.returncode == 0, proc.stderr
    (call,) = [json.loads(line) for line in log.read_text().splitlines()]
    argv = call["argv"]
    assert argv[:2] == ["release", "create"]
    assert argv[2].startswith("model-production-")
    assert len(argv[2]) == len("model-production-20260101T000000Z")
    assets = ["models/manifest.json", *(f"models/{COMMITTED[k]}" for k in ("artifact", "profile"))]
    for asset in (*assets, "reports/metrics.json"):
        assert asset in argv
    assert argv[argv.index("--title") + 1] == f"production model {VERSION}"
    assert argv[argv.index("--target") + 1] == target
    assert "--prerelease" not in argv
    notes = call["notes"]
    assert f"# production model {VERSION}" in notes
    assert f"| roc_auc | {METRICS['roc_auc']:.4f} |" in notes
    assert f"| pr_auc | minimum | {METRICS['pr_auc']:.4f} |" in notes
    assert f"- workflow run: {RUN_URL}" in notes
    assert f"released {argv[2]}" in proc.stdout


def test_release_of_a_staging_model_is_a_prerelease(tmp_path: Path) -> None:
    repo = copy_repo(tmp_path / "work")
    run([sys.executable, "-m", "stages.compose", "env=staging"], repo)
    new_model(repo, 0.07, env="staging")
    env, log = fake_gh(tmp_path)
    proc = script(repo, "create_release.sh", "staging", env=env)
    assert proc.returncode == 0, proc.stderr
    argv = json.loads(log.read_text())["argv"]
    assert argv[2].startswith("model-staging-")
    assert "--prerelease" in argv


def test_release_without_gh_names_it(remote_repo: tuple[Path, Path]) -> None:
    repo, _ = remote_repo
    bare_path = f"{Path(sys.executable).parent}{os.pathsep}/usr/bin{os.pathsep}/bin"
    proc = script(repo, "create_release.sh", "production", env={"PATH": bare_path})
    assert proc.returncode == 1
    assert "the GitHub CLI 'gh' is not on PATH" in proc.stderr


# --- make rollback / rollback_model.sh ----------------------------------------------------


@pytest.fixture
def two_models(tmp_path: Path) -> tuple[Path, str, str]:
    """A copy whose HEAD commits a new model on top of the committed one: (repo, old, new)."""
    repo = copy_repo(tmp_path / "work")
    (repo / ".venv").symlink_to(REPO / ".venv")  # so `make` finds the project's venv
    old_rev = git(repo, "rev-parse", "HEAD")
    new_model(repo, 0.066)
    commit_all(repo, "Retrain production model [skip ci]")
    return repo, old_rev, git(repo, "rev-parse", "HEAD")


def make_rollback(repo: Path, rev: str) -> subprocess.CompletedProcess[str]:
    """`make rollback TO=rev`, without re-checking the (shared, symlinked) venv's install."""
    return run(["make", "-o", ".venv/.installed", "rollback", f"TO={rev}"], repo, check=False)


def test_make_rollback_restores_verifies_and_commits(two_models: tuple[Path, str, str]) -> None:
    repo, old_rev, new_rev = two_models
    proc = make_rollback(repo, "HEAD~1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    short = git(repo, "rev-parse", "--short", old_rev)
    assert git(repo, "log", "-1", "--format=%s") == f"Roll back model to {short} ({VERSION})"
    body = git(repo, "log", "-1", "--format=%b")
    assert f"committed at {old_rev} (asked for as 'HEAD~1')" in body
    assert git(repo, "rev-parse", "HEAD~1") == new_rev
    assert git(repo, "rev-parse", "HEAD:models") == git(repo, "rev-parse", f"{old_rev}:models")
    _, manifest = load_artifact(repo / "models/manifest.json")
    assert manifest["sha256"] == COMMITTED["sha256"]
    assert git(repo, "status", "--porcelain", "--untracked-files=no") == ""
    again = make_rollback(repo, old_rev)
    assert again.returncode == 0
    assert "nothing to roll back" in again.stdout


def test_make_rollback_needs_a_revision(two_models: tuple[Path, str, str]) -> None:
    repo, _, new_rev = two_models
    proc = make_rollback(repo, "")
    assert proc.returncode != 0
    assert "usage: make rollback TO=<git-rev>" in proc.stderr
    assert git(repo, "rev-parse", "HEAD") == new_rev


def test_rollback_refuses_a_dirty_tree(two_models: tuple[Path, str, str]) -> None:
    repo, old_rev, new_rev = two_models
    (repo / "README.md").write_text("work in progress\n")
    proc = script(repo, "rollback_model.sh", old_rev)
    assert proc.returncode == 1
    assert "uncommitted changes" in proc.stderr
    assert "README.md" in proc.stderr
    assert git(repo, "rev-parse", "HEAD") == new_rev


@pytest.mark.parametrize(
    ("rev", "message"),
    [
        ("no-such-rev", "'no-such-rev' is not a commit"),
        ("EMPTY", "has no models/manifest.json"),
    ],
)
def test_rollback_refuses_a_revision_without_a_model(
    two_models: tuple[Path, str, str], rev: str, message: str
) -> None:
    repo, _, new_rev = two_models
    if rev == "EMPTY":
        empty_tree = git(repo, "hash-object", "-t", "tree", "/dev/null")
        rev = git(repo, "commit-tree", empty_tree, "-m", "no model here")
    proc = script(repo, "rollback_model.sh", rev)
    assert proc.returncode == 1
    assert message in proc.stderr
    assert git(repo, "rev-parse", "HEAD") == new_rev


def test_rollback_refuses_a_model_that_does_not_verify(
    two_models: tuple[Path, str, str],
) -> None:
    repo, _, _ = two_models
    with open(artifact_of(repo), "ab") as fh:
        fh.write(b"tampered")
    commit_all(repo, "a bad model")
    bad_rev = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "HEAD~1", "--", "models")
    new_model(repo, 0.067)
    commit_all(repo, "a good model again")
    head = git(repo, "rev-parse", "HEAD")
    proc = script(repo, "rollback_model.sh", bad_rev)
    assert proc.returncode == 1
    assert "does not verify" in proc.stderr
    assert "sha256" in proc.stderr
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "status", "--porcelain", "--untracked-files=no") == ""


def test_rollback_refuses_a_model_of_another_environment(
    two_models: tuple[Path, str, str],
) -> None:
    repo, _, _ = two_models
    new_model(repo, 0.068, env="staging")
    commit_all(repo, "a staging model on this branch")
    staging_rev = git(repo, "rev-parse", "HEAD")
    new_model(repo, 0.069, env="production")
    commit_all(repo, "production again")
    proc = script(repo, "rollback_model.sh", staging_rev)
    assert proc.returncode == 1
    assert "holds a staging model; this branch serves production" in proc.stderr


def test_model_paths_are_tracked_files_of_this_repository() -> None:
    """Every path a retrain commits and a rollback restores exists in git here."""
    tracked = set(
        subprocess.run(
            ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.splitlines()
    )
    for path in model_paths(REPO):
        assert path in tracked or any(t.startswith(path + "/") for t in tracked), path
