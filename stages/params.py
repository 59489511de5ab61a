"""Validation of a whole params.yaml at composition time (stages/compose.py).

Each stage parses only the sections it declares in dvc.yaml, with the schema of the fraud/
module it calls; this module checks every section at once so a typo fails before any stage
runs. Only compose imports it, so stages do not depend on every fraud/ module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fraud.cluster.config import ComputeConfig
from fraud.config import BaseConfig, ConfigError, DeployConfig, PathsConfig, parse_checked
from fraud.data.split import parse_split_config
from fraud.data.synthetic.config import DataConfig
from fraud.features.spec import FeatureConfig
from fraud.model.gate import GateConfig
from fraud.model.metrics import EvaluateConfig
from fraud.model.train import TrainConfig, parse_model_config
from fraud.monitoring.config import DriftConfig, ProfileConfig
from fraud.monitoring.performance import PerformanceConfig
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
    "performance": PerformanceConfig,
    "serving": ServingConfig,
    "paths": PathsConfig,
    "compute": ComputeConfig,
}


def validate_params(params: Mapping[str, Any]) -> None:
    """Validate every section; unknown or missing top-level sections fail by name.

    ``model`` and ``split`` have no single schema: their ``name`` picks one.
    """
    unknown = sorted(set(params) - {*SCHEMAS, "model", "split"})
    if unknown:
        raise ConfigError(f"unknown config section(s): {', '.join(unknown)}")
    parsed = {
        name: parse_checked(params.get(name), schema, name) for name, schema in SCHEMAS.items()
    }
    model = parse_model_config(params.get("model"))
    split = parse_split_config(params.get("split"))
    features: FeatureConfig = parsed["features"]
    split_delay = getattr(split, "label_delay_days", None)
    if split_delay is not None and features.label_delay_days < split_delay:
        raise ConfigError(
            f"features.label_delay_days ({features.label_delay_days}) is shorter than "
            f"split.label_delay_days ({split_delay}): the risk features of the first test days "
            "would use labels the split says are not known yet; set them equal"
        )
    if parsed["compute"].distributed and model.name != "xgboost":
        raise ConfigError(
            f"invalid config 'compute': compute=dask trains XGBoost (xgboost.dask); "
            f"model={model.name} runs with compute=local"
        )
    constrained = getattr(model, "monotone_constraints", {})
    unknown = sorted(set(constrained) - set(features.all_feature_names()))
    if unknown:
        raise ConfigError(
            f"invalid config 'model.monotone_constraints': {', '.join(unknown)} is not a "
            "feature (see data/selected_features.json for the names)"
        )
