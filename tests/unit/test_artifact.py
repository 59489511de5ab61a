"""The model artifact: atomic save, verified load, and refusal of anything tampered with."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fraud.data.synthetic.config import DataConfig
from fraud.data.synthetic.generate import generate_transactions
from fraud.features.history import compute_history
from fraud.features.spec import FeatureConfig
from fraud.features.state import fit_state
from fraud.features.transform import transform
from fraud.model.train import (
    LogisticRegressionConfig,
    RandomForestConfig,
    TrainConfig,
    XGBoostConfig,
    fit_model,
)
from fraud.runtime import artifact as artifact_module
from fraud.runtime.artifact import (
    ARTIFACT_FORMAT,
    MANIFEST,
    ArtifactError,
    ModelArtifact,
    check_versions,
    library_versions,
    load_artifact,
    publish,
    read_profile,
    save_artifact,
    serialize,
)
from fraud.runtime.sklearn_model import ForestModel, LogisticModel
from fraud.runtime.xgboost_model import XGBoostModel
from tests.conftest import REPO

RECORD = {
    "amount": 42.0,
    "merchant_category": "grocery",
    "transaction_type": "online",
    "location": "Chicago",
    "device_type": "mobile",
    "hour_of_day": 3,
    "day_of_week": 6,
}


@pytest.fixture(scope="module")
def artifact() -> ModelArtifact:
    df = generate_transactions(DataConfig(n_transactions=3000, n_users=200, days=20), seed=3)
    df = pd.concat([df, compute_history(df, FeatureConfig())], axis=1)
    state = fit_state(df, FeatureConfig())
    x, y = transform(df, state), df["is_fraud"].to_numpy()
    estimator, _ = fit_model(x, y, x, y, XGBoostConfig(n_estimators=5), TrainConfig(), seed=1)
    return ModelArtifact("xgboost", estimator, state, 0.5, {"env": "development"})


def test_round_trip_preserves_predictions(artifact: ModelArtifact, tmp_path: Path) -> None:
    manifest = save_artifact(artifact, tmp_path / "m.zip", tmp_path / "manifest.json")
    loaded, read = load_artifact(tmp_path / "manifest.json")
    assert read == manifest
    assert manifest["env"] == "development"
    assert manifest["features"] == artifact.feature_names
    assert manifest["library_versions"] == library_versions()
    x = np.random.default_rng(0).normal(size=(20, len(artifact.feature_names)))
    np.testing.assert_array_equal(loaded.model.predict_proba(x), artifact.model.predict_proba(x))


@pytest.mark.parametrize(
    "model_cfg",
    [
        XGBoostConfig(n_estimators=5),
        RandomForestConfig(n_estimators=5),
        LogisticRegressionConfig(),
    ],
    ids=lambda c: c.name,
)
def test_training_twice_gives_identical_bytes(artifact: ModelArtifact, model_cfg: object) -> None:
    """Same data, config and seed -> byte-identical artifact, for every model kind."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, len(artifact.feature_names)))
    x[rng.random(x.shape) < 0.1] = np.nan
    y = (x[:, 0] + rng.normal(size=600) > 1.5).astype(int)
    blobs = []
    for _ in range(2):
        estimator, _ = fit_model(x, y, x, y, model_cfg, TrainConfig(), seed=5)
        blobs.append(serialize(ModelArtifact("k", estimator, artifact.feature_state, 0.5)))
    assert blobs[0] == blobs[1]


def test_written_files_are_readable_by_others(artifact: ModelArtifact, tmp_path: Path) -> None:
    save_artifact(artifact, tmp_path / "m.zip", tmp_path / "manifest.json")
    for name in ("m.zip", "manifest.json"):
        assert (tmp_path / name).stat().st_mode & 0o044 == 0o044


def test_tampered_artifact_is_refused(artifact: ModelArtifact, tmp_path: Path) -> None:
    path, manifest = tmp_path / "m.zip", tmp_path / "manifest.json"
    save_artifact(artifact, path, manifest)
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=r"m\.zip sha256 .* does not match manifest"):
        load_artifact(manifest)


def test_corrupt_artifact_with_matching_hash_is_refused(tmp_path: Path) -> None:
    path, manifest = tmp_path / "m.zip", tmp_path / "manifest.json"
    path.write_bytes(b"not a zip file")
    import hashlib

    digest = hashlib.sha256(b"not a zip file").hexdigest()
    manifest.write_text(
        json.dumps(
            {
                "sha256": digest,
                "artifact": "m.zip",
                "format": ARTIFACT_FORMAT,
                "kind": "xgboost",
                "load_libraries": ["numpy"],
                "library_versions": library_versions(),
            }
        )
    )
    with pytest.raises(ArtifactError, match="is corrupt"):
        load_artifact(manifest)


@pytest.mark.parametrize("missing", ["artifact", "manifest"])
def test_missing_files_are_named(artifact: ModelArtifact, tmp_path: Path, missing: str) -> None:
    path, manifest = tmp_path / "m.zip", tmp_path / "manifest.json"
    save_artifact(artifact, path, manifest)
    (path if missing == "artifact" else manifest).unlink()
    with pytest.raises(
        ArtifactError, match=f"{missing if missing == 'manifest' else 'model artifact'} not found"
    ):
        load_artifact(manifest)


def test_manifest_that_is_not_json_is_refused(artifact: ModelArtifact, tmp_path: Path) -> None:
    path, manifest = tmp_path / "m.zip", tmp_path / "manifest.json"
    save_artifact(artifact, path, manifest)
    manifest.write_text("{")
    with pytest.raises(ArtifactError, match=r"manifest\.json is not valid JSON"):
        load_artifact(manifest)


def test_version_mismatch_is_refused(artifact: ModelArtifact, tmp_path: Path) -> None:
    path, manifest_path = tmp_path / "m.zip", tmp_path / "manifest.json"
    manifest = save_artifact(artifact, path, manifest_path)
    manifest["library_versions"]["numpy"] = "1.26.4"
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=r"incompatible: numpy .* built with 1\.26\.4"):
        load_artifact(manifest_path)


def test_older_artifact_format_is_refused(artifact: ModelArtifact, tmp_path: Path) -> None:
    path, manifest_path = tmp_path / "m.zip", tmp_path / "manifest.json"
    manifest = save_artifact(artifact, path, manifest_path)
    manifest["format"] = 1
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=r"manifest\.json is format 1; .*\(make retrain\)"):
        load_artifact(manifest_path)


@pytest.mark.parametrize(
    ("runtime", "recorded", "problems"),
    [
        # XGBoost artifacts score with compiled numpy trees: only numpy matters.
        (XGBoostModel, {"xgboost": "2.1.0", "numpy": "2.4.0", "scikit-learn": "1.0.0"}, 0),
        (XGBoostModel, {"numpy": "1.26.4"}, 1),
        (ForestModel, {"numpy": "1.26.4", "scikit-learn": "1.5.0"}, 2),
        (LogisticModel, {"numpy": "2.4.1", "scikit-learn": "1.9.0"}, 0),
    ],
)
def test_check_versions_compares_major_minor(runtime: type, recorded: dict, problems: int) -> None:
    installed = {"xgboost": "3.2.0", "numpy": "2.4.6", "scikit-learn": "1.9.1"}
    assert len(check_versions(recorded, installed, runtime.libraries)) == problems


def test_missing_library_is_named() -> None:
    problems = check_versions({"scikit-learn": "1.9.1"}, {"numpy": "2.4.6"}, ForestModel.libraries)
    assert problems == ["scikit-learn is not installed, artifact built with 1.9.1"]


def test_loading_an_xgboost_artifact_imports_neither_xgboost_nor_pandas(
    artifact: ModelArtifact, tmp_path: Path
) -> None:
    """What a serving worker pays for: numpy and the compiled trees, not ~200 MB of libraries."""
    save_artifact(artifact, tmp_path / "m.zip", tmp_path / "manifest.json")
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from fraud.runtime.artifact import load_artifact\n"
        "from fraud.runtime.scoring import RiskBands, Scorer\n"
        f"a, m = load_artifact(Path({str(tmp_path / 'manifest.json')!r}))\n"
        "print(Scorer(a, m, RiskBands(0.3, 0.7), 3).score_records(["
        + repr(RECORD)
        + "])[0]['fraud_probability'])\n"
        "print(sorted({n.split('.')[0] for n in sys.modules} & "
        "{'xgboost', 'pandas', 'sklearn', 'scipy', 'pyarrow'}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert 0.0 < float(out[0]) < 1.0
    assert out[1] == "[]"


def test_logistic_regression_handles_missing_history(tmp_path: Path) -> None:
    """LR imputes NaN history (what a first transaction has) with values fitted on train."""
    df = generate_transactions(DataConfig(n_transactions=3000, n_users=200, days=20), seed=4)
    df = pd.concat([df, compute_history(df, FeatureConfig())], axis=1)
    state = fit_state(df, FeatureConfig())
    x, y = transform(df, state), df["is_fraud"].to_numpy()
    assert np.isnan(x).any()
    model, info = fit_model(x, y, x, y, LogisticRegressionConfig(), TrainConfig(), seed=1)
    scores = ModelArtifact("logistic_regression", model, state, 0.5).model.predict_proba(x)
    assert np.isfinite(scores).all()
    assert info["n_iter"] > 0


def test_forest_node_padding_is_zeroed() -> None:
    """Uninitialised padding in sklearn's node records would make pickles differ per process."""
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(400, 6)), rng.integers(0, 2, 400)
    model, _ = fit_model(x, y, x, y, RandomForestConfig(n_estimators=3), TrainConfig(), seed=2)
    for tree in model.estimator.estimators_:
        nodes = tree.tree_.__getstate__()["nodes"]
        rebuilt = np.zeros(nodes.shape, dtype=nodes.dtype)
        for name in nodes.dtype.names:
            rebuilt[name] = nodes[name]
        assert nodes.dtype.itemsize > sum(nodes.dtype[n].itemsize for n in nodes.dtype.names)
        assert nodes.tobytes() == rebuilt.tobytes()


@pytest.mark.parametrize(
    "model_cfg",
    [RandomForestConfig(n_estimators=5), LogisticRegressionConfig()],
    ids=lambda c: c.name,
)
def test_scikit_learn_kinds_round_trip(
    artifact: ModelArtifact, model_cfg: object, tmp_path: Path
) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, len(artifact.feature_names)))
    y = (x[:, 0] > 1).astype(int)
    estimator, _ = fit_model(x, y, x, y, model_cfg, TrainConfig(), seed=2)
    save_artifact(
        ModelArtifact("k", estimator, artifact.feature_state, 0.5),
        tmp_path / "m.zip",
        tmp_path / "manifest.json",
    )
    loaded, _ = load_artifact(tmp_path / "manifest.json")
    assert type(loaded.model) is type(estimator)
    # a forest with n_jobs=2 sums its trees in the order threads finish: equal to rounding
    np.testing.assert_allclose(
        loaded.model.predict_proba(x), estimator.predict_proba(x), rtol=0, atol=1e-12
    )


def test_the_xgboost_artifact_is_json_and_arrays(artifact: ModelArtifact) -> None:
    """No pickle inside: a document, the booster's UBJSON and .npy arrays (no object dtype)."""
    with zipfile.ZipFile(io.BytesIO(serialize(artifact))) as archive:
        names = archive.namelist()
        arrays = [
            np.lib.format.read_array(io.BytesIO(archive.read(n)), allow_pickle=False)
            for n in names
            if n.endswith(".npy")
        ]
    assert names[:2] == ["artifact.json", "booster.ubj"]
    assert {n for n in names if n.endswith(".npy")} == {
        f"trees/{name}.npy"
        for name in (
            "feature", "threshold", "left", "right", "default_left", "leaf_value", "cover", "roots"
        )
    }  # fmt: skip
    assert len(names) == 10
    assert all(a.dtype != object for a in arrays)


def publish_one(artifact: ModelArtifact, tmp_path: Path, threshold: float) -> dict:
    """Save a candidate with ``threshold`` and publish it with a profile into tmp/models."""
    candidate = tmp_path / f"candidate-{threshold}"
    candidate.mkdir()
    changed = ModelArtifact(artifact.kind, artifact.model, artifact.feature_state, threshold)
    manifest = save_artifact(changed, candidate / "m.zip", candidate / "manifest.json")
    profile = json.dumps({"model": {"sha256": manifest["sha256"]}}).encode()
    return publish(tmp_path / "models", (candidate / "m.zip").read_bytes(), manifest, profile)


def test_publish_switches_the_whole_set_and_removes_the_old_one(
    artifact: ModelArtifact, tmp_path: Path
) -> None:
    first = publish_one(artifact, tmp_path, 0.4)
    models = tmp_path / "models"
    loaded, manifest = load_artifact(models / MANIFEST)
    assert loaded.threshold == 0.4
    assert manifest["artifact"] == f"fraud_model-{first['sha256'][:12]}.zip"
    assert json.loads(read_profile(models / MANIFEST))["model"]["sha256"] == first["sha256"]
    (models / "fraud_model.joblib").write_bytes(b"format 5")  # a pre-format-6 leftover
    second = publish_one(artifact, tmp_path, 0.6)
    assert sorted(p.name for p in models.iterdir()) == sorted(
        [MANIFEST, second["artifact"], second["profile"]]
    )
    assert load_artifact(models / MANIFEST)[0].threshold == 0.6


def test_a_crash_before_the_switch_leaves_the_old_set_serving(
    artifact: ModelArtifact, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish_one(artifact, tmp_path, 0.4)
    real = artifact_module.atomic_write_bytes

    def crash_on_manifest(path: Path, data: bytes) -> None:
        if path.name == MANIFEST:
            raise OSError("disk full")
        real(path, data)

    monkeypatch.setattr(artifact_module, "atomic_write_bytes", crash_on_manifest)
    with pytest.raises(OSError, match="disk full"):
        publish_one(artifact, tmp_path, 0.6)
    loaded, manifest = load_artifact(tmp_path / "models" / MANIFEST)
    assert loaded.threshold == 0.4
    read_profile(tmp_path / "models" / MANIFEST, manifest)  # its own profile, still there


def test_a_profile_that_does_not_match_its_manifest_is_refused(
    artifact: ModelArtifact, tmp_path: Path
) -> None:
    manifest = publish_one(artifact, tmp_path, 0.4)
    (tmp_path / "models" / manifest["profile"]).write_text("{}")
    with pytest.raises(ArtifactError, match="does not match manifest"):
        read_profile(tmp_path / "models" / MANIFEST)


def test_publish_refuses_bytes_other_than_the_manifests(
    artifact: ModelArtifact, tmp_path: Path
) -> None:
    manifest = save_artifact(artifact, tmp_path / "m.zip", tmp_path / "manifest.json")
    with pytest.raises(ArtifactError, match="do not match"):
        publish(tmp_path / "models", b"other", manifest, b"{}")
    assert not (tmp_path / "models").exists()
