"""Featurize on Dask: the point-in-time functions of fraud.features, once per entity partition.

Each entity's history needs all of that entity's rows together, and nothing else: the rows are
hash-partitioned by the entity (the card first), ``history_arrays`` runs on each partition with
a config of that one entity, and the other entities' columns join back by ``transaction_id``.
Within a partition the functions see whole entity blocks in the same (entity, time, amount)
order as on one machine, so every value is the same bits (history.py's scan is per block). The
feature state is fitted from per-partition counts of the train rows (``train_counts``), merged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import reduce
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fraud.data import schema
from fraud.data.split import PARTS
from fraud.features.history import history_arrays
from fraud.features.spec import USER_ID, FeatureConfig, present_inputs
from fraud.features.state import (
    FeatureState,
    merge_counts,
    state_from_counts,
    train_counts,
)
from fraud.features.transform import transform_columns

if TYPE_CHECKING:
    import dask.dataframe as dd

#: The column saying which part (index in ``PARTS``) a row came from.
PART = "part"
#: What each non-card entity's history reads besides the entity itself.
_HISTORY_INPUTS = (schema.TRANSACTION_ID, USER_ID, schema.TIMESTAMP, schema.AMOUNT, schema.LABEL)


def _one_entity(pdf: pd.DataFrame, cfg: FeatureConfig, keep: list[str]) -> pd.DataFrame:
    """``keep`` columns of a partition plus its history columns (``cfg`` has one entity)."""
    history = history_arrays(pdf, cfg)
    out = pdf[keep].reset_index(drop=True)
    return out.assign(**history)


def _features(pdf: pd.DataFrame, state: FeatureState) -> pd.DataFrame:
    """The model's feature columns of a partition, its label, id and part, sorted by id."""
    columns = transform_columns(pdf, state)
    frame = pd.DataFrame(dict(zip(state.feature_names, columns, strict=True)))
    frame[schema.LABEL] = pdf[schema.LABEL].to_numpy(dtype="int64")
    frame[schema.TRANSACTION_ID] = pdf[schema.TRANSACTION_ID].reset_index(drop=True)
    frame[PART] = pdf[PART].reset_index(drop=True)
    return frame.sort_values(schema.TRANSACTION_ID, ignore_index=True)


def _on_meta(ddf: dd.DataFrame, function: Callable[..., pd.DataFrame], *args: Any) -> pd.DataFrame:
    """``function``'s output on the collection's empty frame: the partitions' columns and
    dtypes (history_arrays types its empty columns as it types full ones)."""
    return function(ddf._meta, *args)


def fit_train_state(train: dd.DataFrame, cfg: FeatureConfig) -> FeatureState:
    """``fit_state`` of the train rows, from per-partition counts merged on the client."""
    import dask

    counts = dask.compute(*[dask.delayed(train_counts)(part) for part in train.to_delayed()])
    return state_from_counts(reduce(merge_counts, counts), cfg)


def featurize(
    parts: dict[str, dd.DataFrame], cfg: FeatureConfig, partitions: int
) -> tuple[FeatureState, dd.DataFrame]:
    """The fitted state and one lazy frame of every train, valid and test row's features, with
    ``label``, ``transaction_id`` and ``PART``; history-only rows feed history and get none.

    ``partitions``: how many partitions each entity's rows are hashed into.
    """
    import dask.dataframe as dd

    state = fit_train_state(parts["train"], cfg)
    full = dd.concat(
        [parts[name].assign(**{PART: np.int8(PARTS.index(name))}) for name in PARTS],
        ignore_unknown_divisions=True,
    )
    inputs = present_inputs(full.columns)
    entities = cfg.entities_of(inputs)
    joined = None
    for column, entity in entities:
        one = replace(cfg, entities={column: entity})
        keep = list(full.columns) if column == USER_ID else [schema.TRANSACTION_ID]
        needed = list(full.columns) if column == USER_ID else [*_HISTORY_INPUTS, column]
        rows = full[[c for c in needed if c in full.columns]]
        shuffled = rows.shuffle(on=column, npartitions=partitions)
        meta = _on_meta(shuffled, _one_entity, one, keep)
        history = shuffled.map_partitions(_one_entity, one, keep, meta=meta)
        joined = (
            history
            if joined is None
            else joined.merge(
                history, on=schema.TRANSACTION_ID, how="inner", npartitions=partitions
            )
        )
    features = joined[joined[PART] != PARTS.index("history")]
    meta = _on_meta(features, _features, state)
    return state, features.map_partitions(_features, state, meta=meta)
