"""Typed validation of configuration sections.

Each fraud/ module declares the dataclass it is configured by; this module turns a plain
mapping (a params.yaml section) into that dataclass, failing with the dotted key's name on a
typo, a missing value or a wrong type. OmegaConf's structured configs do the checking.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

T = TypeVar("T")


PARAMS_FILE = Path("params.yaml")


class ConfigError(ValueError):
    """A configuration section is invalid; the message names the key and the problem."""


def load_params(names: list[str], path: Path = PARAMS_FILE) -> dict[str, Any]:
    """Return only the named top-level sections of params.yaml (a missing one is an error)."""
    try:
        params = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path} not found: run `make params` first") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(params, dict):
        raise ConfigError(f"{path} must hold a mapping of sections")
    missing = [n for n in names if n not in params]
    if missing:
        raise ConfigError(f"{path} has no section(s) {', '.join(missing)}")
    return {n: params[n] for n in names}


def parse_section(section: Mapping[str, Any] | None, schema: type[T], name: str) -> T:
    """Validate ``section`` against the dataclass ``schema`` and return an instance.

    Args:
        section: the raw mapping, e.g. ``params["data"]``.
        schema: a dataclass type; unknown keys, missing required values and wrong types fail.
        name: the section's name, used as the prefix of the key in error messages.
    """
    if section is None:
        raise ConfigError(f"missing config section '{name}'")
    if not isinstance(section, Mapping):
        raise ConfigError(
            f"config section '{name}' must be a mapping, got {type(section).__name__}"
        )
    try:
        base = OmegaConf.structured(schema)
        _clear_replaced_dicts(base, section)
        merged = OmegaConf.merge(base, dict(section))
        return OmegaConf.to_object(merged)  # type: ignore[return-value]
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or ""
        detail = str(exc).splitlines()[0]
        where = f"{name}.{key}" if key else name
        raise ConfigError(f"invalid config '{where}': {detail}") from None


def parse_checked(section: Mapping[str, Any] | None, schema: type[T], name: str) -> T:
    """``parse_section`` plus the dataclass's own ``check()`` of value ranges, if it has one."""
    cfg = parse_section(section, schema, name)
    check = getattr(cfg, "check", None)
    if check is not None:
        try:
            check()
        except ValueError as exc:
            raise ConfigError(f"invalid config '{name}': {exc}") from None
    return cfg


#: The environments, one overlay each in conf/env/ (a test holds the two equal), smallest first.
ENVIRONMENTS = ("development", "staging", "production")


@dataclass
class BaseConfig:
    """What every run shares: the environment name it was composed for and the one seed."""

    env: str  # no default: the env overlay sets it
    seed: int = 42

    def check(self) -> None:
        """Raise ValueError when ``env`` is not a known environment."""
        if self.env not in ENVIRONMENTS:
            raise ValueError(f"base.env {self.env!r} is not one of {ENVIRONMENTS}")


@dataclass
class DeployConfig:
    """Where an environment's model is committed: its git branch."""

    branch: str  # no default: the env overlay sets it


@dataclass
class SplitPaths:
    """One file per split."""

    train: str
    valid: str
    test: str


@dataclass
class ProcessedPaths(SplitPaths):
    """The splits of the clean table, and its history-only rows (the label-delay gap)."""

    history: str


@dataclass
class FeaturePaths(SplitPaths):
    """The featurized splits and the fitted feature state."""

    state: str


@dataclass
class ModelPaths:
    """A candidate model artifact, its manifest and its drift reference profile."""

    artifact: str
    manifest: str
    profile: str


@dataclass
class PathsConfig:
    """The ``paths`` section (conf/paths/): every file the pipeline and its shells use.

    No defaults: conf/paths/default.yaml is the one statement of each path.
    """

    external: str
    raw: str
    processed: ProcessedPaths
    features: FeaturePaths
    selected_features: str
    candidate: ModelPaths
    training_summary: str
    baseline: str
    metrics: str
    gate_report: str
    plots: str
    drift_reports: str
    report: str
    model_dir: str


def load_paths(path: Path = PARAMS_FILE) -> PathsConfig:
    """The validated ``paths`` section of a params file."""
    return parse_section(load_params(["paths"], path)["paths"], PathsConfig, "paths")


def _clear_replaced_dicts(base: DictConfig, section: Mapping[str, Any]) -> None:
    """Empty the schema's plain-dict defaults that ``section`` sets, so they are replaced.

    OmegaConf merges mappings key by key; for a field such as ``features.windows`` the value in
    params.yaml must be the whole truth, not the default plus whatever it adds.
    """
    for key, value in section.items():
        if not isinstance(value, Mapping) or key not in base:
            continue
        node = base._get_node(key)
        if not OmegaConf.is_dict(node):
            continue
        if OmegaConf.get_type(base, key) is dict:
            base[key] = {}
        else:
            _clear_replaced_dicts(node, value)  # type: ignore[arg-type]
