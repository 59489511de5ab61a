"""Stage train: fit the configured model, choose the threshold on valid, write the candidate.

The candidate artifact (runtime + fitted feature state + threshold + metadata), its
manifest and its drift reference profile (raw request fields of the train split, model scores
on valid, tied to the artifact's sha256) go to the DVC cache; the promote stage gates them
before anything reaches models/. With ``compute=dask`` XGBoost trains on the cluster
(fraud/cluster/training.py) and the valid split is scored where it lies; the manifest and the
training summary record the engine and the cluster's shape (``compute``).
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from fraud.cluster.config import ComputeConfig
from fraud.config import BaseConfig, load_params, parse_checked
from fraud.data import schema
from fraud.files import sha256_path
from fraud.model.metrics import choose_threshold, evaluate
from fraud.model.train import ModelConfig, TrainConfig, fit_model, parse_model_config
from fraud.monitoring.config import ProfileConfig
from fraud.monitoring.profile import build_profile
from fraud.runtime import Runtime
from fraud.runtime.artifact import ModelArtifact, params_hash, save_artifact
from stages.common import parser, read_dataset, read_parquet, run, write_json


def xy(frame: pd.DataFrame, feature_names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Feature matrix (float64, in ``feature_names`` order) and label vector."""
    return (
        frame[feature_names].to_numpy(dtype="float64"),
        frame[schema.LABEL].to_numpy(dtype="int64"),
    )


def fit_local(
    args: Any, names: list[str], model_cfg: ModelConfig, train_cfg: TrainConfig, seed: int
) -> tuple[Runtime, dict[str, Any], np.ndarray, np.ndarray, np.ndarray, pd.DataFrame]:
    """Fit in this process: (model, fit info, train labels, valid labels, valid scores, raw
    train rows)."""
    x_train, y_train = xy(read_parquet(args.train), names)
    x_valid, y_valid = xy(read_parquet(args.valid), names)
    model, fit_info = fit_model(
        x_train, y_train, x_valid, y_valid, model_cfg, train_cfg, seed, names
    )
    return (
        model,
        fit_info,
        y_train,
        y_valid,
        model.predict_proba(x_valid),
        read_parquet(args.raw_train),
    )


def fit_dask(
    args: Any,
    names: list[str],
    model_cfg: Any,
    train_cfg: TrainConfig,
    seed: int,
    cfg: ComputeConfig,
    watched: set[str],
) -> tuple[Runtime, dict[str, Any], np.ndarray, np.ndarray, np.ndarray, pd.DataFrame, dict]:
    """``fit_local`` on the cluster (labels and scores gathered; of the raw train rows only
    the ``watched`` fields, which the drift profile needs), plus the engine's record."""
    from fraud.cluster.engine import cluster, record
    from fraud.cluster.training import SCORE, fit_xgboost, scores

    with cluster(cfg) as client:
        train, valid = read_dataset(args.train), read_dataset(args.valid)
        model, fit_info = fit_xgboost(client, train, valid, names, model_cfg, train_cfg, seed)
        scored = scores(valid, model, names)
        y_train = train[schema.LABEL].compute().to_numpy(dtype="int64")
        raw = read_dataset(args.raw_train)
        raw = raw[[c for c in raw.columns if c in watched]].compute()
        y_valid = scored[schema.LABEL].to_numpy(dtype="int64")
        return (
            model,
            fit_info,
            y_train,
            y_valid,
            scored[SCORE].to_numpy(),
            raw,
            record(cfg, client),
        )


def main(argv: list[str] | None = None) -> int:
    """Train, pick the threshold, and write the candidate artifact and training summary."""
    args = parser(
        __doc__.splitlines()[0],
        {
            "train": "train features parquet",
            "valid": "valid features parquet",
            "state": "fitted feature state (joblib)",
            "model": "candidate model artifact (a zip: fraud.runtime.artifact)",
            "manifest": "candidate manifest JSON",
            "summary": "training summary JSON",
            "raw_train": "train split of raw transactions (for the drift reference profile)",
            "profile": "candidate drift reference profile JSON",
        },
    ).parse_args(argv)
    params = load_params(["base", "model", "train", "drift_profile", "compute"], args.params)
    base = parse_checked(params["base"], BaseConfig, "base")
    model_cfg = parse_model_config(params["model"])
    train_cfg = parse_checked(params["train"], TrainConfig, "train")
    profile_cfg = parse_checked(params["drift_profile"], ProfileConfig, "drift_profile")
    compute = parse_checked(params["compute"], ComputeConfig, "compute")
    state = joblib.load(args.state)
    names = state.feature_names
    if compute.distributed:
        model, fit_info, y_train, y_valid, valid_scores, raw, engine = fit_dask(
            args, names, model_cfg, train_cfg, base.seed, compute,
            {*profile_cfg.numeric, *profile_cfg.categorical},
        )  # fmt: skip
    else:
        model, fit_info, y_train, y_valid, valid_scores, raw = fit_local(
            args, names, model_cfg, train_cfg, base.seed
        )
        engine = compute.record()
    # The sections that make the model; the Dask engine's cluster shape makes it too.
    hashed = {k: params[k] for k in ("base", "model", "train")}
    hashed |= {"compute": engine} if compute.distributed else {}
    threshold = choose_threshold(y_valid, valid_scores, train_cfg.threshold)
    valid_metrics = evaluate(y_valid, valid_scores, threshold, train_cfg.threshold)
    metadata = {
        "env": base.env,
        "seed": base.seed,
        # The model's own sections: the drift profile's settings do not change the model.
        "params_hash": params_hash(hashed),
        # The sections above cover this stage; the data lineage is the hash of its inputs.
        "inputs_sha256": {
            name: sha256_path(getattr(args, name)) for name in ("train", "valid", "state")
        },
        "model_config": asdict(model_cfg),
        "fit": fit_info,
        "rows": {"train": len(y_train), "valid": len(y_valid)},
        "valid_metrics": valid_metrics,
    }
    artifact = ModelArtifact(model_cfg.name, model, state, threshold, metadata)
    manifest = save_artifact(artifact, Path(args.model), Path(args.manifest), {"compute": engine})
    model_facts = {"sha256": manifest["sha256"], "kind": model_cfg.name, "env": base.env}
    # Monitor the configured fields the data has (a file without device_type has no drift in it)
    monitored = replace(
        profile_cfg,
        numeric=[c for c in profile_cfg.numeric if c in raw],
        categorical=[c for c in profile_cfg.categorical if c in raw],
    )
    write_json(build_profile(raw, valid_scores, monitored, model_facts), args.profile)
    write_json(
        {
            "model": model_cfg.name,
            "env": base.env,
            "threshold": threshold,
            "threshold_rule": asdict(train_cfg.threshold),
            "imbalance": train_cfg.imbalance,
            "fit": fit_info,
            "rows": metadata["rows"],
            "fraud_rate": {"train": float(y_train.mean()), "valid": float(y_valid.mean())},
            "n_features": len(state.feature_names),
            "valid_metrics": valid_metrics,
            "artifact_sha256": manifest["sha256"],
            "compute": engine,
        },
        args.summary,
    )
    print(
        f"train: {model_cfg.name} {fit_info}; threshold {threshold:.4f}; valid "
        f"pr_auc {valid_metrics['pr_auc']:.4f} roc_auc {valid_metrics['roc_auc']:.4f}"
    )
    return 0


if __name__ == "__main__":
    run(main)
