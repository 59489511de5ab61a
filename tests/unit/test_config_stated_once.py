"""Every config value is stated once: a schema default equals its conf/ value, the shells'
path defaults equal conf/paths/, and the environments are the conf/env/ overlays."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from app.settings import SETTINGS
from fraud.cluster.config import ComputeConfig
from fraud.config import ENVIRONMENTS, BaseConfig, DeployConfig, PathsConfig, parse_section
from fraud.data.split import DateSplitConfig, SplitConfig
from fraud.data.synthetic.config import DataConfig
from fraud.features.spec import FeatureConfig
from fraud.model.gate import GateConfig
from fraud.model.metrics import EvaluateConfig
from fraud.model.train import (
    LogisticRegressionConfig,
    RandomForestConfig,
    TrainConfig,
    XGBoostConfig,
)
from fraud.monitoring.config import DriftConfig, ProfileConfig
from fraud.runtime.scoring import ServingConfig
from tests.conftest import REPO

CONF = REPO / "conf"
#: (group file, section inside it or None, schema). Every group option of conf/ is here.
GROUP_FILES = [
    ("data/synthetic.yaml", None, DataConfig),
    ("split/time.yaml", None, SplitConfig),
    ("split/dates.yaml", None, DateSplitConfig),
    ("features/default.yaml", None, FeatureConfig),
    ("model/xgboost.yaml", None, XGBoostConfig),
    ("model/random_forest.yaml", None, RandomForestConfig),
    ("model/logistic_regression.yaml", None, LogisticRegressionConfig),
    ("train/default.yaml", None, TrainConfig),
    ("gate/default.yaml", None, GateConfig),
    ("evaluate/default.yaml", None, EvaluateConfig),
    ("drift/default.yaml", "drift_profile", ProfileConfig),
    ("drift/default.yaml", "drift", DriftConfig),
    ("serving/default.yaml", None, ServingConfig),
    ("paths/default.yaml", None, PathsConfig),
    ("compute/local.yaml", None, ComputeConfig),
    ("compute/dask.yaml", None, ComputeConfig),
]


def section(rel: str, key: str | None) -> dict[str, Any]:
    data = OmegaConf.to_container(OmegaConf.load(CONF / rel), resolve=False)
    assert isinstance(data, dict)
    return data[key] if key else data


def test_every_group_option_is_checked() -> None:
    options = {p.relative_to(CONF).as_posix() for p in CONF.glob("*/*.yaml")}
    assert options - {f"env/{env}.yaml" for env in ENVIRONMENTS} == {f for f, _, _ in GROUP_FILES}


@pytest.mark.parametrize(("rel", "key", "schema"), GROUP_FILES, ids=lambda v: str(v))
def test_schema_defaults_equal_the_conf_values(rel: str, key: str | None, schema: type) -> None:
    """A schema field either has no default (conf/ states it) or the default conf/ states."""
    values = section(rel, key)
    defaults = OmegaConf.structured(schema)
    if "???" not in values.values():  # a complete section must also parse
        parse_section(values, schema, key or rel.split("/")[0])
    parsed = OmegaConf.to_container(OmegaConf.merge(OmegaConf.structured(schema), values))
    for name in values:
        if not OmegaConf.is_missing(defaults, name):
            assert OmegaConf.to_container(defaults)[name] == parsed[name], name


@pytest.mark.parametrize("schema", [BaseConfig, DeployConfig])
def test_root_sections_match_conf_config_yaml(schema: type) -> None:
    values = section("config.yaml", "base" if schema is BaseConfig else "deploy")
    defaults = OmegaConf.structured(schema)
    for name, value in values.items():
        if value == "???":  # set by each env overlay: the schema has no default either
            assert OmegaConf.is_missing(defaults, name), name
        else:
            assert defaults[name] == value, name


def test_environments_are_the_env_overlays() -> None:
    assert set(ENVIRONMENTS) == {p.stem for p in (CONF / "env").glob("*.yaml")}
    sizes = [section(f"env/{env}.yaml", None)["data"]["n_transactions"] for env in ENVIRONMENTS]
    assert sizes == sorted(sizes), "ENVIRONMENTS lists the smallest first"


def test_the_services_path_defaults_are_conf_paths() -> None:
    paths = section("paths/default.yaml", None)
    assert Path(SETTINGS["MODEL_DIR"][0]) == Path(paths["model_dir"])
    assert Path(SETTINGS["FEATURES_PATH"][0]) == Path(paths["selected_features"])
