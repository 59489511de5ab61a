"""Train and score on Dask: ``xgboost.dask`` with the local engine's parameters, and the
artifact's own runtime scoring each partition where it lies.

XGBoost's distributed result depends on how the rows are spread over workers (each worker
sketches its quantiles and builds histograms from its own rows; the allreduce sums them), so
it differs from the single-machine model by a little and, for a fixed cluster shape and
partitioning, is the same bytes every run: the manifest records that shape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fraud.data import schema
from fraud.model.train import TrainConfig, XGBoostConfig, positive_weight
from fraud.runtime import Runtime

if TYPE_CHECKING:
    import dask.dataframe as dd
    from distributed import Client

SCORE = "score"


def fit_xgboost(
    client: Client,
    train: dd.DataFrame,
    valid: dd.DataFrame,
    names: list[str],
    model_cfg: XGBoostConfig,
    train_cfg: TrainConfig,
    seed: int,
) -> tuple[Runtime, dict[str, Any]]:
    """``XGBoostConfig.fit`` on the cluster: early stopping on valid PR-AUC, the booster
    truncated to its best iteration; ``nthread`` is each worker's thread count."""
    import dask
    import xgboost.dask as dxgb

    from fraud.cluster.engine import shape

    train_cfg.check()
    train, valid = _ordered(train), _ordered(valid)
    rows, positives = dask.compute(train.shape[0], train[schema.LABEL].sum())
    weight = positive_weight(int(rows), float(positives), train_cfg.imbalance)
    params = model_cfg.booster_params(weight, seed, names)
    params["nthread"] = shape(client)[1]
    # float32: what XGBoost stores a value as anyway, at half the memory on each worker.
    x_train, x_valid = train[names].astype(np.float32), valid[names].astype(np.float32)
    dtrain = dxgb.DaskQuantileDMatrix(
        client, x_train, label=train[schema.LABEL], max_bin=model_cfg.max_bin
    )
    dvalid = dxgb.DaskQuantileDMatrix(client, x_valid, label=valid[schema.LABEL], ref=dtrain)
    out = dxgb.train(
        client,
        params,
        dtrain,
        num_boost_round=model_cfg.n_estimators,
        evals=[(dvalid, "valid")],
        early_stopping_rounds=model_cfg.early_stopping_rounds,
        verbose_eval=False,
    )
    return model_cfg.finish(out["booster"], names)


def _ordered(frame: dd.DataFrame) -> dd.DataFrame:
    """The rows of each partition in ``transaction_id`` order (featurize writes them so;
    sorted again here so any input gives the same DMatrix)."""
    return frame.map_partitions(
        lambda pdf: pdf.sort_values(schema.TRANSACTION_ID, ignore_index=True)
    )


def _score(pdf: pd.DataFrame, model: Runtime, names: list[str], keep: list[str]) -> pd.DataFrame:
    out = pdf[keep].reset_index(drop=True)
    out[SCORE] = model.predict_proba(pdf[names].to_numpy(dtype=np.float64))
    return out


def scores(features: dd.DataFrame, model: Runtime, names: list[str]) -> pd.DataFrame:
    """``transaction_id``, label and the model's score of every row, scored on the workers
    and gathered (three columns), in ``transaction_id`` order."""
    keep = [schema.TRANSACTION_ID, schema.LABEL]
    meta = _score(features._meta, model, names, keep)
    scored = features.map_partitions(_score, model, names, keep, meta=meta).compute()
    return scored.sort_values(schema.TRANSACTION_ID, ignore_index=True)


def first_rows(features: dd.DataFrame, names: list[str], select: Any, limit: int) -> np.ndarray:
    """The feature rows (in ``names`` order) with the ``limit`` lowest ``transaction_id`` among
    those ``select(x)`` (a row mask of a partition's matrix) picks, gathered: at most ``limit``
    rows leave each partition."""
    cols = [*names, schema.TRANSACTION_ID]

    def pick(pdf: pd.DataFrame) -> pd.DataFrame:
        chosen = pdf[select(pdf[names].to_numpy(dtype=np.float64))]
        return chosen.sort_values(schema.TRANSACTION_ID).head(limit)

    picked = features[cols].map_partitions(pick, meta=features[cols]._meta).compute()
    picked = picked.sort_values(schema.TRANSACTION_ID).head(limit)
    return picked[names].to_numpy(dtype=np.float64)
