"""Facts about the committed model for the delivery scripts: run as ``python -m scripts.modelops``.

    python -m scripts.modelops paths                    # what retrain commits, rollback restores
    python -m scripts.modelops path model_dir           # one entry of params.yaml's paths
    python -m scripts.modelops branch --env production  # the git branch params.yaml deploys to
    python -m scripts.modelops verify                   # models/ loads; features file matches
    python -m scripts.modelops commit-message --env production --run-url URL
    python -m scripts.modelops release-tag --env production
    python -m scripts.modelops release-notes --env production --run-url URL

The shell scripts beside this module (commit_model.sh, create_release.sh, rollback_model.sh)
hold the git/gh plumbing; everything they need to know about the model comes from here, so the
workflow, the release and a rollback describe a model the same way. Errors name the file.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fraud.config import ENVIRONMENTS, PARAMS_FILE, ConfigError, PathsConfig, load_params
from fraud.config import load_paths as read_paths
from fraud.runtime.artifact import MANIFEST

#: Headline metrics in the commit subject, in this order.
HEADLINE = ("roc_auc", "pr_auc", "recall_at_1pct_fpr")


class ModelOpsError(Exception):
    """A file is missing or says something other than what the caller expects."""


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; ModelOpsError naming the file otherwise."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelOpsError(f"{path} not found") from None
    except (OSError, ValueError) as exc:
        raise ModelOpsError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ModelOpsError(f"{path} is not a JSON object")
    return data


def load_paths(root: Path) -> PathsConfig:
    """The ``paths`` section of ``root``'s params.yaml."""
    try:
        return read_paths(root / PARAMS_FILE)
    except ConfigError as exc:
        raise ModelOpsError(str(exc)) from None


def model_paths(root: Path) -> list[str]:
    """What a retrain commits and a rollback restores: the gated model, what describes it, and
    the pipeline record that produced it (so `dvc status` agrees with models/ after either)."""
    paths = load_paths(root)
    return [
        paths.model_dir,  # the whole set: publish removes the files of the previous one
        *_described_by(paths),
        paths.baseline,
        paths.plots,
        str(PARAMS_FILE),
        "dvc.lock",
    ]


def model_files(root: Path) -> list[str]:
    """The served set: the manifest, then the artifact and reference profile it names."""
    model_dir = Path(load_paths(root).model_dir)
    manifest = read_json(root / model_dir / MANIFEST)
    names = [manifest.get("artifact"), manifest.get("profile")]
    if not all(isinstance(n, str) and n and Path(n).name == n for n in names):
        raise ModelOpsError(f"{root / model_dir / MANIFEST} names no artifact and profile")
    return [str(model_dir / name) for name in (MANIFEST, *names)]


def release_assets(root: Path) -> list[str]:
    """Files attached to a release: the model set (first three), what describes it, its
    metrics and gate."""
    return [*model_files(root), *_described_by(load_paths(root))]


def _described_by(paths: PathsConfig) -> list[str]:
    """What describes the model: its features file, training summary, metrics and gate."""
    return [paths.selected_features, paths.training_summary, paths.metrics, paths.gate_report]


def path_of(root: Path, key: str) -> str:
    """The ``paths`` entry ``key`` (dotted, e.g. ``candidate.artifact``)."""
    value: Any = load_paths(root)
    for part in key.split("."):
        value = getattr(value, part, None)
    if not isinstance(value, str):
        raise ModelOpsError(f"params.yaml has no file at paths.{key}")
    return value


def deploy_branch(root: Path, env: str) -> str:
    """The branch ``env``'s model is committed to, after checking params and manifest agree."""
    params_file = root / PARAMS_FILE
    try:
        params = load_params(["base", "deploy"], params_file)
    except ConfigError as exc:
        raise ModelOpsError(str(exc)) from None
    recorded = params["base"].get("env")
    if recorded != env:
        raise ModelOpsError(f"{params_file} records env {recorded!r}, expected {env!r}")
    manifest_path = root / load_paths(root).model_dir / MANIFEST
    manifest = read_json(manifest_path)
    if manifest.get("env") != env:
        raise ModelOpsError(
            f"{manifest_path} is a {manifest.get('env')!r} model, expected {env!r}"
        )
    branch = params["deploy"].get("branch")
    if not isinstance(branch, str) or not branch:
        raise ModelOpsError(f"{params_file} has no deploy.branch")
    return branch


def verify(root: Path) -> str:
    """Load models/ through fraud.runtime.artifact (hash + versions) and check the features file.

    Returns the model version (the first 12 hex digits of its sha256), as the app reports it.
    """
    from fraud.runtime.artifact import ArtifactError, load_artifact, read_profile

    paths = load_paths(root)
    manifest_path = root / paths.model_dir / MANIFEST
    try:
        artifact, manifest = load_artifact(manifest_path)
        read_profile(manifest_path, manifest)
    except ArtifactError as exc:
        raise ModelOpsError(str(exc)) from None
    model_path = manifest_path.parent / manifest["artifact"]
    features_path = root / paths.selected_features
    features = read_json(features_path).get("features")
    if features != artifact.feature_names:
        raise ModelOpsError(f"{features_path} lists other features than {model_path} expects")
    return str(manifest["sha256"])[:12]


def _fmt(value: Any) -> str:
    if isinstance(value, dict):  # e.g. recall_by_pattern
        return ", ".join(f"{k} {_fmt(v)}" for k, v in value.items())
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def commit_message(root: Path, env: str, run_url: str | None) -> str:
    """Subject with the environment and headline metrics, then the model facts and the run."""
    manifest = read_json(root / load_paths(root).model_dir / MANIFEST)
    metrics = manifest.get("test_metrics", {})
    headline = ", ".join(f"{k} {_fmt(metrics[k])}" for k in HEADLINE if k in metrics)
    lines = [
        f"Retrain {env} model: {headline} [skip ci]",
        "",
        f"Environment: {env}",
        f"Model: {manifest.get('kind')} {str(manifest['sha256'])[:12]} "
        f"(sha256 {manifest['sha256']})",
        "Test metrics: "
        + ", ".join(f"{k} {_fmt(v)}" for k, v in sorted(metrics.items()) if k not in HEADLINE),
        f"Gate: {'passed' if manifest.get('gate', {}).get('passed') else 'NOT passed'}",
    ]
    if run_url:
        lines.append(f"Run: {run_url}")
    return "\n".join(lines) + "\n"


def release_tag(env: str, now: datetime) -> str:
    """``model-<env>-<UTC timestamp>``: sortable, unique per run, valid as a git tag."""
    return f"model-{env}-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}"


def release_notes(root: Path, env: str, run_url: str | None) -> str:
    """Markdown: the model, its test metrics and gate checks, and where it came from."""
    manifest = read_json(root / load_paths(root).model_dir / MANIFEST)
    metrics = manifest.get("test_metrics", {})
    gate = manifest.get("gate", {})
    out = [
        f"# {env} model {str(manifest['sha256'])[:12]}",
        "",
        f"- kind: {manifest.get('kind')}",
        f"- sha256: `{manifest['sha256']}`",
        f"- params hash: `{manifest.get('params_hash')}`",
        f"- trained on: {' to '.join(map(str, manifest.get('train_period') or [])) or 'n/a'}",
        f"- gate: {'passed' if gate.get('passed') else 'NOT passed'}",
    ]
    if run_url:
        out.append(f"- workflow run: {run_url}")
    out += ["", "## Test metrics", "", "| metric | value |", "|---|---|"]
    out += [f"| {k} | {_fmt(v)} |" for k, v in sorted(metrics.items())]
    checks = gate.get("checks", [])
    if checks:
        out += ["", "## Gate", "", "| metric | check | value | bound | |", "|---|---|---|---|---|"]
        out += [
            f"| {c['metric']} | {c['kind']} | {_fmt(c['value'])} | {_fmt(c['bound'])} | "
            f"{'ok' if c['passed'] else 'FAIL'} |"
            for c in checks
        ]
    versions = manifest.get("library_versions", {})
    if versions:
        out += ["", "Built with " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Dispatch a subcommand; print its result; 2 with the reason on stderr on failure."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=Path(), help="repository root (default: .)")
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("paths", help="files a retrain commits and a rollback restores")
    sub.add_parser("assets", help="files a release carries (those that exist)")
    sub.add_parser("verify", help="verify models/ and print its version")
    path_cmd = sub.add_parser("path", help="one entry of params.yaml's paths, e.g. model_dir")
    path_cmd.add_argument("key")
    for name in ("branch", "commit-message", "release-tag", "release-notes"):
        cmd = sub.add_parser(name)
        cmd.add_argument("--env", required=True, choices=ENVIRONMENTS)
        if name in ("commit-message", "release-notes"):
            cmd.add_argument("--run-url", default=None)
        if name == "release-tag":
            cmd.add_argument("--now", type=datetime.fromisoformat, default=None)
    args = ap.parse_args(argv)
    root: Path = args.root
    try:
        if args.command == "paths":
            text = "\n".join(model_paths(root))
        elif args.command == "assets":
            text = "\n".join(p for p in release_assets(root) if (root / p).is_file())
        elif args.command == "verify":
            text = verify(root)
        elif args.command == "path":
            text = path_of(root, args.key)
        elif args.command == "branch":
            text = deploy_branch(root, args.env)
        elif args.command == "commit-message":
            text = commit_message(root, args.env, args.run_url).rstrip("\n")
        elif args.command == "release-tag":
            text = release_tag(args.env, args.now or datetime.now(UTC))
        else:
            text = release_notes(root, args.env, args.run_url).rstrip("\n")
    except ModelOpsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
