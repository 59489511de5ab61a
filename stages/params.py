"""Typed access to params.yaml sections: one parser per section, shared by every stage.

A stage asks only for the sections it declares in dvc.yaml; ``validate_params`` checks the
whole file at composition time so a typo fails before any stage runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fraud.config import ConfigError, parse_section
from fraud.features import FeatureConfig
from fraud.generate import DataConfig
from fraud.metrics import GateConfig
from fraud.train import TrainConfig, parse_model_config
from fraud.validate import SplitConfig

ENVIRONMENTS = ("development", "staging", "production")


@dataclass
class BaseConfig:
    """What every run shares: the environment name it was composed for and the one seed."""

    env: str = "development"
    seed: int = 42


@dataclass
class DeployConfig:
    """Where an environment's model is committed: its git branch."""

    branch: str = "develop"


def _checked(obj: Any, name: str) -> Any:
    check = getattr(obj, "check", None) or getattr(obj, "validate", None)
    if check is not None:
        try:
            check()
        except ValueError as exc:
            raise ConfigError(f"invalid config '{name}': {exc}") from None
    return obj


def _base(section: Any) -> BaseConfig:
    cfg = parse_section(section, BaseConfig, "base")
    if cfg.env not in ENVIRONMENTS:
        raise ConfigError(f"invalid config 'base.env': {cfg.env!r} is not one of {ENVIRONMENTS}")
    return cfg


PARSERS: dict[str, Callable[[Any], Any]] = {
    "base": _base,
    "data": lambda s: _checked(parse_section(s, DataConfig, "data"), "data"),
    "split": lambda s: _checked(parse_section(s, SplitConfig, "split"), "split"),
    "features": lambda s: _checked(parse_section(s, FeatureConfig, "features"), "features"),
    "model": parse_model_config,
    "train": lambda s: _checked(parse_section(s, TrainConfig, "train"), "train"),
    "gate": lambda s: _checked(parse_section(s, GateConfig, "gate"), "gate"),
    "deploy": lambda s: parse_section(s, DeployConfig, "deploy"),
}


def section(params: Mapping[str, Any], name: str) -> Any:
    """Parse one section of ``params`` into its typed config."""
    return PARSERS[name](params.get(name))


def validate_params(params: Mapping[str, Any]) -> None:
    """Validate every section; unknown or missing top-level sections fail by name."""
    unknown = sorted(set(params) - set(PARSERS))
    if unknown:
        raise ConfigError(f"unknown config section(s): {', '.join(unknown)}")
    for name in PARSERS:
        section(params, name)
