"""Validation of a whole params.yaml at composition time (stages/compose.py).

Each stage parses only the sections it declares in dvc.yaml, with the schema of the fraud/
module it calls; this module checks every section at once so a typo fails before any stage
runs. Only compose imports it, so stages do not depend on every fraud/ module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fraud.config import BaseConfig, ConfigError, DeployConfig, PathsConfig, parse_checked
from fraud.data.split import parse_split_config
from fraud.data.synthetic.config import DataConfig
from fraud.features.spec import FeatureConfig
from fraud.model.gate import GateConfig
from fraud.model.metrics import EvaluateConfig
from fraud.model.train import TrainConfig, parse_model_config
from fraud.monitoring.config import DriftConfig, ProfileConfig
from fraud.runtime.scoring import ServingConfig

SCHEMAS: dict[str, type] = {
    "base": BaseConfig,
    "data": DataConfig,
    "features": FeatureConfig,
    "train": TrainConfig,
    "evaluate": EvaluateConfig,
    "gate": GateConfig,
    "deploy": DeployConfig,
    "drift_profile": ProfileConfig,
    "drift": DriftConfig,
    "serving": ServingConfig,
    "paths": PathsConfig,
}


def validate_params(params: Mapping[str, Any]) -> None:
    """Validate every section; unknown or missing top-level sections fail by name.

    ``model`` and ``split`` have no single schema: their ``name`` picks one.
    """
    unknown = sorted(set(params) - {*SCHEMAS, "model", "split"})
    if unknown:
        raise ConfigError(f"unknown config section(s): {', '.join(unknown)}")
    for name, schema in SCHEMAS.items():
        parse_checked(params.get(name), schema, name)
    parse_model_config(params.get("model"))
    parse_split_config(params.get("split"))
