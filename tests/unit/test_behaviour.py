"""Behavioural checks and monotone constraints: the score moves the known way."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fraud.config import ConfigError
from fraud.features.history import compute_history
from fraud.features.spec import FeatureConfig
from fraud.features.state import fit_state
from fraud.features.transform import transform
from fraud.model.behaviour import AmountSpikeConfig, BehaviourConfig, amount_spike, run_checks
from fraud.model.train import TrainConfig, XGBoostConfig, fit_model, parse_model_config
from tests.unit.test_features import random_frame


@pytest.fixture(scope="module")
def fitted() -> tuple[np.ndarray, object]:
    df = random_frame(3000, 60, seed=4)
    full = pd.concat([df, compute_history(df, FeatureConfig())], axis=1)
    state = fit_state(full, FeatureConfig())
    return transform(full, state), state


def test_amount_spike_counts_rows_whose_score_went_down(fitted: tuple) -> None:
    x, state = fitted
    amount = state.feature_names.index("amount")
    cfg = AmountSpikeConfig(factor=10.0, min_history=5, max_rows=500)
    rising = amount_spike(x, state, lambda m: m[:, amount] / (1 + m[:, amount]), cfg)
    assert rising["rows"] == 500
    assert rising["violations"] == 0
    assert rising["median_score_after"] > rising["median_score_before"]
    falling = amount_spike(x, state, lambda m: 1 / (1 + m[:, amount]), cfg)
    assert falling["violations"] == falling["rows"]
    assert falling["violation_rate"] == 1.0
    names = state.feature_names
    count, mean = (x[:, names.index(n)] for n in ("user_transaction_count", "user_avg_amount"))
    eligible = int(((count >= 5) & (x[:, amount] < 10 * mean)).sum())
    unbounded = AmountSpikeConfig(factor=10.0, min_history=5, max_rows=10**6)
    assert 500 < eligible < len(x)
    assert amount_spike(x, state, lambda m: m[:, amount], unbounded)["rows"] == eligible


def test_amount_spike_is_skipped_without_user_history(fitted: tuple) -> None:
    df = random_frame(500, 20, seed=5)
    state = fit_state(df, FeatureConfig(use_history=False))
    report = run_checks(transform(df, state), state, lambda m: m[:, 0], BehaviourConfig())
    assert report == {
        "amount_spike": {
            "skipped": "the model has no user_transaction_count, user_avg_amount feature"
        }
    }


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"factor": 1.0}, "factor"),
        ({"min_history": 0}, "min_history"),
        ({"max_rows": 0}, "max_rows"),
    ],
)
def test_amount_spike_config_names_bad_values(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AmountSpikeConfig(**changes).check()


def test_monotone_constraints_hold_and_name_their_features() -> None:
    rng = np.random.default_rng(0)
    n = 4000
    amount = rng.uniform(1, 100, n)
    other = rng.normal(size=n)
    y = ((amount < 20) | (other > 1.5)).astype(np.int64)  # small amounts are fraud here
    x = np.column_stack([amount, other])
    grid = np.column_stack([np.linspace(1, 100, 200), np.zeros(200)])
    cfg = XGBoostConfig(n_estimators=30, monotone_constraints={"amount": 1, "absent": 1})
    model, info = fit_model(
        x, y, x, y, cfg, TrainConfig(), seed=1, feature_names=["amount", "other"]
    )
    assert info["monotone_constraints"] == {"amount": 1}
    assert (np.diff(model.predict_proba(grid)) >= 0).all()
    free, _ = fit_model(
        x,
        y,
        x,
        y,
        XGBoostConfig(n_estimators=30, monotone_constraints={}),
        TrainConfig(),
        1,
        ["amount", "other"],
    )
    assert (np.diff(free.predict_proba(grid)) < 0).any()  # the data alone says otherwise
    with pytest.raises(ConfigError, match=r"monotone_constraints\.amount must be -1, 0 or 1"):
        parse_model_config({"name": "xgboost", "monotone_constraints": {"amount": 2}})


def test_amount_spike_is_skipped_when_an_amount_feature_cannot_be_recomputed() -> None:
    df = random_frame(1500, 40, seed=6)
    full = pd.concat([df, compute_history(df, FeatureConfig())], axis=1)
    state = fit_state(full, FeatureConfig(exclude=["user_std_amount"]))
    report = amount_spike(transform(full, state), state, lambda m: m[:, 0], AmountSpikeConfig())
    assert report == {
        "skipped": "with_amount: user_std_amount must be among the model's features to "
        "recompute amount_zscore"
    }
