"""Config composition: every environment composes and validates; bad overrides fail cleanly."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fraud.config import ENVIRONMENTS, ConfigError
from fraud.model.train import parse_model_config
from stages import compose
from stages.params import validate_params
from tests.conftest import REPO

BRANCHES = {"production": "master", "staging": "staging", "development": "develop"}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_environment_composes_and_validates(env: str) -> None:
    _, params = compose.compose_params([f"env={env}"])
    validate_params(params)
    assert params["base"]["env"] == env
    assert params["deploy"]["branch"] == BRANCHES[env]
    assert parse_model_config(params["model"]).name == "xgboost"


def test_environment_sizes() -> None:
    sizes = {
        env: compose.compose_params([f"env={env}"])[1]["data"]["n_transactions"]
        for env in ENVIRONMENTS
    }
    assert sizes["production"] >= 1_000_000
    assert sizes["development"] < sizes["staging"] < sizes["production"]
    assert compose.compose_params([])[1]["base"]["env"] == "development"


@pytest.mark.parametrize("model", ["xgboost", "random_forest", "logistic_regression"])
def test_each_model_group_composes_in_each_env(model: str) -> None:
    for env in ENVIRONMENTS:
        _, params = compose.compose_params([f"env={env}", f"model={model}"])
        assert parse_model_config(params["model"]).name == model


def test_overrides_reach_params() -> None:
    _, params = compose.compose_params(
        [
            "env=staging",
            "model=random_forest",
            "model.n_estimators=500",
            "split.train=0.8",
            "split.valid=0.1",
            "split.test=0.1",
        ]
    )
    assert params["model"]["n_estimators"] == 500
    assert params["model"]["name"] == "random_forest"
    assert params["split"] == {"name": "time", "train": 0.8, "valid": 0.1, "test": 0.1}


def test_the_date_split_composes_and_refuses_missing_or_bad_dates() -> None:
    dates = ["split=dates", "split.test_start=2018-08-08", "split.test_end=2018-08-15"]
    _, params = compose.compose_params(dates)
    assert params["split"] == {
        "name": "dates",
        "test_start": "2018-08-08",
        "test_end": "2018-08-15",
        "label_delay_days": 7,
        "valid_days": 7,
    }
    with pytest.raises(ConfigError, match="test_end"):
        compose.compose_params(dates[:2])
    with pytest.raises(ConfigError, match=r"split\.test_end 2018-08-01 must be after"):
        compose.compose_params([*dates[:2], "split.test_end=2018-08-01"])
    with pytest.raises(ConfigError, match=r"split\.test_start must be an ISO date"):
        compose.compose_params(["split=dates", "split.test_start=soon", dates[2]])


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (["model.max_depthh=8"], "max_depthh"),
        (["+model.colour=red"], "colour"),
        (["model.max_depth=deep"], "max_depth"),
        (["env=prod"], "prod"),
        (["model=catboost"], "catboost"),
        (["split.train=0.9"], "must be 1"),
        (["base.env=qa"], "base.env"),
        (["train.imbalance=smote"], "train.imbalance"),
        (["+extra=1"], "extra"),
        (["+gate.min_metrics.expected_cost_per_txn=0.1"], "gateable metrics are"),
        (["+data.columns.colour=COLOUR"], "columns names colour"),
        (["data.columns.user_id=ID", "data.columns.transaction_id=ID"], "onto one file column"),
        (["data.source=excel"], "source must be one of synthetic, csv, parquet"),
    ],
)
def test_invalid_overrides_fail_with_the_key_name(overrides: list[str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        compose.compose_params(overrides)


def test_failed_compose_leaves_params_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "params.yaml"
    assert compose.main(["env=staging", "--out", str(out)]) == 0
    before = out.read_bytes()
    assert compose.main(["env=staging", "model.max_depthh=3", "--out", str(out)]) == 2
    assert out.read_bytes() == before
    err = capsys.readouterr().err
    assert "max_depthh" in err
    assert "left unchanged" in err


def test_compose_says_which_overrides_it_applied(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "params.yaml"
    assert compose.main(["env=staging", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"{out}: env=staging, 0 override(s)"
    assert compose.main(["env=staging", "model.max_depth=8", "--out", str(out)]) == 0
    assert (
        capsys.readouterr().out.strip() == f"{out}: env=staging, 1 override(s): model.max_depth=8"
    )


def test_dvc_hydra_composition_writes_the_same_text(tmp_path: Path) -> None:
    """`dvc exp run -S env=staging -S model.max_depth=8` composes exactly what we compose."""
    from dvc.utils.hydra import compose_and_dump

    overrides = ["env=staging", "model.max_depth=8"]
    out = tmp_path / "params.yaml"
    compose_and_dump(out, str(REPO / "conf"), None, "config", "", overrides)
    text, params = compose.compose_params(overrides)
    assert out.read_text() == text
    assert params["model"]["max_depth"] == 8


def test_dvc_hydra_support_is_enabled() -> None:
    config = (REPO / ".dvc" / "config").read_text()
    assert "[hydra]" in config
    assert "enabled = true" in config
    assert "analytics = false" in config


def test_committed_params_equal_a_fresh_composition_of_their_env() -> None:
    committed = (REPO / "params.yaml").read_text()
    env = yaml.safe_load(committed)["base"]["env"]
    assert compose.compose_params([f"env={env}"])[0] == committed


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.max_depth=-3"], r"'model': max_depth must be >= 1, got -3"),
        (["model.n_estimators=0"], "n_estimators must be >= 1"),
        (["model.learning_rate=-1"], r"learning_rate must be > 0 and <= 1"),
        (["model.subsample=2"], r"subsample must be > 0 and <= 1"),
        (["gate.min_metrics.roc_auc=1.5"], r"gate.min_metrics.roc_auc must be in \[0, 1\]"),
        (["model=random_forest", "model.max_samples=0"], "max_samples must be > 0"),
        (["model=random_forest", "model.max_features=all"], "max_features must be sqrt or log2"),
        (["model=logistic_regression", "model.C=0"], "C must be > 0"),
    ],
)
def test_composition_refuses_impossible_model_and_gate_values_by_key(
    overrides: list[str], message: str
) -> None:
    """They used to pass composition and fail in the train stage, in XGBoost's words."""
    with pytest.raises(ConfigError, match=message):
        compose.compose_params(["env=staging", *overrides])
