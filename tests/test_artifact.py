"""The model artifact: atomic save, verified load, and refusal of anything tampered with."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fraud.artifact import (
    ArtifactError,
    ModelArtifact,
    check_versions,
    library_versions,
    load_artifact,
    save_artifact,
    serialize,
)
from fraud.features import FeatureConfig, compute_history, fit_state, transform
from fraud.generate import DataConfig, generate_transactions
from fraud.train import LogisticRegressionConfig, TrainConfig, XGBoostConfig, fit_model


@pytest.fixture(scope="module")
def artifact() -> ModelArtifact:
    df = generate_transactions(DataConfig(n_transactions=3000, n_users=200, days=20), seed=3)
    df = pd.concat([df, compute_history(df, FeatureConfig().windows)], axis=1)
    state = fit_state(df, FeatureConfig())
    x, y = transform(df, state), df["is_fraud"].to_numpy()
    estimator, _ = fit_model(x, y, x, y, XGBoostConfig(n_estimators=5), TrainConfig(), seed=1)
    return ModelArtifact("xgboost", estimator, state, 0.5, {"env": "development"})


def test_round_trip_preserves_predictions(artifact: ModelArtifact, tmp_path: Path) -> None:
    manifest = save_artifact(artifact, tmp_path / "m.joblib", tmp_path / "manifest.json")
    loaded, read = load_artifact(tmp_path / "m.joblib", tmp_path / "manifest.json")
    assert read == manifest
    assert manifest["env"] == "development"
    assert manifest["features"] == artifact.feature_names
    assert manifest["library_versions"] == library_versions()
    x = np.random.default_rng(0).normal(size=(20, len(artifact.feature_names)))
    np.testing.assert_array_equal(loaded.predict_proba(x), artifact.predict_proba(x))


def test_serialization_is_deterministic(artifact: ModelArtifact) -> None:
    assert serialize(artifact) == serialize(artifact)


def test_tampered_artifact_is_refused(artifact: ModelArtifact, tmp_path: Path) -> None:
    path, manifest = tmp_path / "m.joblib", tmp_path / "manifest.json"
    save_artifact(artifact, path, manifest)
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=r"m\.joblib sha256 .* does not match manifest"):
        load_artifact(path, manifest)


def test_corrupt_artifact_with_matching_hash_is_refused(tmp_path: Path) -> None:
    path, manifest = tmp_path / "m.joblib", tmp_path / "manifest.json"
    path.write_bytes(b"not a joblib file")
    import hashlib

    digest = hashlib.sha256(b"not a joblib file").hexdigest()
    manifest.write_text(json.dumps({"sha256": digest, "library_versions": library_versions()}))
    with pytest.raises(ArtifactError, match="is corrupt"):
        load_artifact(path, manifest)


@pytest.mark.parametrize("missing", ["artifact", "manifest"])
def test_missing_files_are_named(artifact: ModelArtifact, tmp_path: Path, missing: str) -> None:
    path, manifest = tmp_path / "m.joblib", tmp_path / "manifest.json"
    save_artifact(artifact, path, manifest)
    (path if missing == "artifact" else manifest).unlink()
    with pytest.raises(
        ArtifactError, match=f"{missing if missing == 'manifest' else 'model artifact'} not found"
    ):
        load_artifact(path, manifest)


def test_manifest_that_is_not_json_is_refused(artifact: ModelArtifact, tmp_path: Path) -> None:
    path, manifest = tmp_path / "m.joblib", tmp_path / "manifest.json"
    save_artifact(artifact, path, manifest)
    manifest.write_text("{")
    with pytest.raises(ArtifactError, match=r"manifest\.json is not valid JSON"):
        load_artifact(path, manifest)


def test_version_mismatch_is_refused(artifact: ModelArtifact, tmp_path: Path) -> None:
    path, manifest_path = tmp_path / "m.joblib", tmp_path / "manifest.json"
    manifest = save_artifact(artifact, path, manifest_path)
    manifest["library_versions"]["scikit-learn"] = "0.24.2"
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=r"incompatible: scikit-learn .* built with 0\.24\.2"):
        load_artifact(path, manifest_path)


@pytest.mark.parametrize(
    ("recorded", "problems"),
    [
        ({"xgboost": "3.2.1", "numpy": "2.4.0"}, 0),
        ({"xgboost": "2.1.0"}, 1),
        ({"numpy": "1.26.4", "scikit-learn": "1.5.0"}, 2),
    ],
)
def test_check_versions_compares_major_minor(recorded: dict, problems: int) -> None:
    installed = {"xgboost": "3.2.0", "numpy": "2.4.6", "scikit-learn": "1.9.1"}
    assert len(check_versions(recorded, installed)) == problems


def test_logistic_regression_handles_missing_history(tmp_path: Path) -> None:
    """LR imputes NaN history (what a first transaction has) with values fitted on train."""
    df = generate_transactions(DataConfig(n_transactions=3000, n_users=200, days=20), seed=4)
    df = pd.concat([df, compute_history(df, FeatureConfig().windows)], axis=1)
    state = fit_state(df, FeatureConfig())
    x, y = transform(df, state), df["is_fraud"].to_numpy()
    assert np.isnan(x).any()
    estimator, info = fit_model(x, y, x, y, LogisticRegressionConfig(), TrainConfig(), seed=1)
    scores = ModelArtifact("logistic_regression", estimator, state, 0.5).predict_proba(x)
    assert np.isfinite(scores).all()
    assert info["n_iter"] > 0
