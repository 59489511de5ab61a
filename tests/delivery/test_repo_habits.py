"""What users expect of a repository: a licence, pre-commit hooks in step with CI, dependabot."""

from __future__ import annotations

import re

import yaml

from tests.conftest import REPO


def test_the_licence_is_mit() -> None:
    text = (REPO / "LICENSE").read_text()
    assert text.startswith("MIT License")
    assert "Permission is hereby granted, free of charge" in text


def test_pre_commit_runs_the_ruff_ci_pins() -> None:
    config = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())
    (ruff,) = [r for r in config["repos"] if r["repo"].endswith("/ruff-pre-commit")]
    pinned = re.search(r"^ruff==(\S+)$", (REPO / "requirements-dev.txt").read_text(), re.M)
    assert pinned is not None
    assert ruff["rev"] == f"v{pinned.group(1)}"
    assert {hook["id"] for hook in ruff["hooks"]} == {"ruff", "ruff-format"}


def test_dependabot_watches_the_pins_and_the_actions() -> None:
    config = yaml.safe_load((REPO / ".github/dependabot.yml").read_text())
    ecosystems = {u["package-ecosystem"]: u for u in config["updates"]}
    assert set(ecosystems) == {"pip", "github-actions"}
    assert all(u["directory"] == "/" for u in ecosystems.values())
