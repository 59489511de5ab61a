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
from fraud.runtime.scoring import RiskBands, Scorer
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
