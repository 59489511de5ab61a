"""Serving parity: the single-record path, the batch path and XGBoost agree on a test set."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fraud.data.synthetic.config import DataConfig
from fraud.data.synthetic.generate import generate_transactions
from fraud.features.history import compute_history
from fraud.features.transform import transform, transform_record
from fraud.runtime.artifact import load_artifact
from fraud.runtime.scoring import RISK_LEVELS, RiskBands, Scorer, top_reasons
from tests.tiny_model import TinyModel


@pytest.fixture(scope="module")
def scorer(tiny_model: TinyModel) -> Scorer:
    artifact, manifest = load_artifact(tiny_model.manifest)
    return Scorer(artifact, manifest, RiskBands(0.3, 0.7), 3)


@pytest.fixture(scope="module")
def test_set(scorer: Scorer) -> pd.DataFrame:
    """Realistic transactions with their point-in-time history, as the pipeline builds them."""
    df = generate_transactions(DataConfig(n_transactions=3000, n_users=150, days=20), seed=11)
    state = scorer.artifact.feature_state
    return pd.concat([df, compute_history(df, state.config)], axis=1)


def test_single_batch_and_xgboost_agree_on_every_row(
    scorer: Scorer, test_set: pd.DataFrame
) -> None:
    state = scorer.artifact.feature_state
    x_batch = transform(test_set, state)
    records = test_set.drop(columns=["timestamp"]).to_dict("records")
    singles = [scorer.score_record(r) for r in records]
    vectors = np.vstack([transform_record(r, state)[0] for r in records])
    np.testing.assert_array_equal(vectors, x_batch)  # identical feature vectors
    batch = scorer.score_records(records)
    assert [s["fraud_probability"] for s in singles] == [b["fraud_probability"] for b in batch]
    assert [s["reasons"] for s in singles] == [b["reasons"] for b in batch]
    reference = scorer.artifact.model.booster().inplace_predict(x_batch)  # XGBoost's own
    single = np.array([s["fraud_probability"] for s in singles])
    assert np.max(np.abs(single - reference)) < 1e-6
    flagged = single >= scorer.threshold
    assert flagged.sum() > 0, "the test set should contain flagged transactions"
    assert [s["is_fraud"] for s in singles] == flagged.tolist()


def test_reasons_are_the_largest_contributions(scorer: Scorer, test_set: pd.DataFrame) -> None:
    record = test_set.drop(columns=["timestamp"]).iloc[-1].to_dict()
    result = scorer.score_record(record)
    contributions = [abs(r["contribution"]) for r in result["reasons"]]
    assert len(contributions) == scorer.top_k
    assert contributions == sorted(contributions, reverse=True)
    assert {r["feature"] for r in result["reasons"]} <= set(scorer.feature_names)


def argsort_reasons(contributions: np.ndarray, k: int) -> np.ndarray:
    """The reference order ``top_reasons`` reproduces: a stable sort by -|contribution|."""
    return np.argsort(-np.abs(contributions), axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize("k", [0, 1, 3, 8, 50])
@pytest.mark.parametrize("rows", [40, 2000])  # below and above _SORT_CELLS: sort and argmax
def test_top_reasons_take_a_stable_sorts_order(k: int, rows: int) -> None:
    """Ties (zeros, equal magnitudes of either sign), infinities and NaN come in the order
    of the stable descending sort the service used before: inf first, NaN last, ties by
    feature position."""
    rng = np.random.default_rng(k)
    values = [0.0, -0.0, 0.5, -0.5, 1.25, -2.0, np.inf, -np.inf, np.nan]
    contributions = rng.choice(values, (rows, 9))
    contributions[: rows // 4] = rng.normal(size=(rows // 4, 9))
    x = rng.normal(size=contributions.shape)
    reasons = top_reasons(x, contributions, k)
    expected = argsort_reasons(contributions, k)
    np.testing.assert_array_equal(reasons.feature, expected)
    at = np.arange(len(x))[:, None]
    np.testing.assert_array_equal(reasons.contribution, contributions[at, expected])
    np.testing.assert_array_equal(reasons.value, x[at, expected])
    picked = contributions[at, expected]
    np.testing.assert_array_equal(reasons.keep, (picked != 0) & np.isfinite(picked))


def test_risk_codes_are_the_levels_of_each_probability() -> None:
    bands = RiskBands(0.3, 0.7)
    p = np.array([0.0, 0.29, 0.3, 0.5, 0.6999, 0.7, 1.0, np.nan])
    assert [RISK_LEVELS[c] for c in bands.codes(p)] == [bands.level(v) for v in p]
    same = RiskBands(0.5, 0.5)
    assert [RISK_LEVELS[c] for c in same.codes(p)] == [same.level(v) for v in p]


def test_score_matrix_is_what_score_records_answers(
    scorer: Scorer, test_set: pd.DataFrame
) -> None:
    """The columnar scores (what ``make score`` writes) and the service's answers agree."""
    x = transform(test_set, scorer.artifact.feature_state)
    scores = scorer.score_matrix(x)
    answers = scorer.score_records(test_set.drop(columns=["timestamp"]).to_dict("records"))
    assert scores.probability.tolist() == [a["fraud_probability"] for a in answers]
    assert scores.is_fraud.tolist() == [a["is_fraud"] for a in answers]
    assert [RISK_LEVELS[c] for c in scores.risk] == [a["risk_level"] for a in answers]
    assert scorer.reason_dicts(scores.reasons) == [a["reasons"] for a in answers]
