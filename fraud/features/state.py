"""The fitted feature state: vocabularies and smoothed fraud rates, fitted on train only.

``fit_state`` returns a picklable ``FeatureState`` that travels inside the model artifact; its
``_compile`` precomputes the per-record lookup plan the serving path uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from fraud.data import schema
from fraud.features.history import _require_columns
from fraud.features.spec import (
    UNKNOWN,
    EntityConfig,
    Feature,
    FeatureConfig,
    categorical_inputs,
    present_inputs,
    record_fields,
)

if TYPE_CHECKING:
    import pandas as pd
# pandas is imported inside fit_state only: a serving process that unpickles a FeatureState
# and scores records never loads it (~80 MB per worker).


@dataclass
class FeatureState:
    """Everything scoring needs, fitted on train only; plain data, picklable.

    ``vocabularies[col][0]`` is the unknown bucket; ``category_fraud_rates[col][i]`` is the
    smoothed train fraud rate of ``vocabularies[col][i]`` (the prior for the unknown bucket).
    ``inputs`` are the optional raw columns (``schema.FEATURE_INPUTS``) the training data had:
    the features, and the fields serving asks for, are those of these inputs.
    """

    config: FeatureConfig
    feature_names: list[str]
    vocabularies: dict[str, list[str]]
    category_fraud_rates: dict[str, list[float]]
    category_counts: dict[str, list[int]]
    fraud_prior: float
    n_train: int
    history_defaults: dict[str, float]
    inputs: list[str]
    #: ISO times of the first and last training transaction: what the model has seen.
    train_period: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        self._compile()

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the plain fields only; lookup caches are rebuilt on load."""
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._compile()

    def to_dict(self) -> dict[str, Any]:
        """The plain fields as JSON-ready data (the model artifact's document holds them)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureState:
        """The state ``to_dict`` gave (its lookup plan rebuilt)."""
        values = dict(data)
        config = dict(values.pop("config"))
        config["entities"] = {k: EntityConfig(**v) for k, v in config["entities"].items()}
        period = values.pop("train_period", None)
        return cls(
            config=FeatureConfig(**config),
            train_period=None if period is None else tuple(period),
            **values,
        )

    @property
    def history_columns(self) -> list[str]:
        """History fields the model reads (empty when ``use_history`` is off)."""
        if not self.config.use_history:
            return []
        return self.config.history_columns(self.inputs)

    @property
    def history_groups(self) -> dict[str, list[str]]:
        """Entity prefix -> the history fields of that entity the model reads."""
        if not self.config.use_history:
            return {}
        return self.config.history_groups(self.inputs)

    @property
    def record_fields(self) -> list[str]:
        """Raw fields every record scored with this state must carry."""
        return record_fields(self.inputs)

    def _compile(self) -> None:
        """Precompute the per-record plan: dict lookups, defaults and kept positions."""
        self._lookups: list[tuple[str, dict[str, tuple[float, float]], tuple[float, float]]] = []
        categorical = categorical_inputs(self.inputs)
        for col in categorical:
            vocab = self.vocabularies[col]
            rates = self.category_fraud_rates[col]
            table = {v: (float(i), float(rates[i])) for i, v in enumerate(vocab) if i > 0}
            self._lookups.append((col, table, (0.0, float(rates[0]))))
        self._history_plan: list[tuple[str, float]] = [
            (name, float(self.history_defaults[name])) for name in self.history_columns
        ]
        full = self.config.all_feature_names(self.config.use_history, self.inputs)
        position = {name: i for i, name in enumerate(full)}
        missing = [name for name in self.feature_names if name not in position]
        if missing:
            raise ValueError(f"feature state names unknown feature(s): {', '.join(missing)}")
        keep = [position[name] for name in self.feature_names]
        self._keep: np.ndarray | None = (
            None if keep == list(range(len(full))) else np.asarray(keep, dtype=np.intp)
        )
        # The history-based features in model order, and the same with history positions.
        self._features: list[Feature] = (
            self.config.feature_plan(self.inputs) if self.config.use_history else []
        )
        index = {name: i for i, (name, _) in enumerate(self._history_plan)}
        self._ops: list[tuple[str, tuple[int, ...]]] = [
            (f.op, tuple(index[a] for a in f.args)) for f in self._features
        ]
        smoothing = float(self.config.risk_smoothing)
        self._risk = (smoothing * float(self.fraud_prior), smoothing)
        self._floor = float(self.config.zscore_std_floor)


def fit_state(df: pd.DataFrame, cfg: FeatureConfig) -> FeatureState:
    """Fit vocabularies and smoothed per-category fraud rates on TRAIN rows only.

    The train fraud rate is also the prior the label-delayed risk features are smoothed to.
    Categories seen fewer than ``min_category_count`` times go to the unknown bucket (index 0),
    whose rate is the global train fraud rate.
    """
    return state_from_counts(train_counts(df), cfg)


#: What ``fit_state`` needs of the train rows, in a form whose parts add up (``merge_counts``):
#: the Dask engine counts each partition and merges them into the same numbers.
Counts = dict[str, Any]


def train_counts(df: pd.DataFrame) -> Counts:
    """Rows, frauds, (seen, frauds) per value of each categorical input, and the time span."""
    import pandas as pd

    _require_columns(df, [schema.LABEL], "fit_state")
    label = df[schema.LABEL]
    if label.isna().any() or not label.isin([0, 1]).all():
        raise ValueError(f"fit_state: {schema.LABEL} must be 0/1 with no missing values")
    y = label.to_numpy(dtype=np.float64)
    inputs = present_inputs(df.columns)
    categories: dict[str, dict[str, tuple[int, float]]] = {}
    for col in categorical_inputs(inputs):
        codes, uniques = pd.factorize(df[col])
        valid = codes >= 0
        n_seen = np.bincount(codes[valid], minlength=len(uniques))
        n_fraud = np.bincount(codes[valid], weights=y[valid], minlength=len(uniques))
        for value in uniques:
            if not isinstance(value, str):
                raise ValueError(f"fit_state: {col} has a non-string value {value!r}")
        categories[col] = {
            v: (int(s), float(f)) for v, s, f in zip(uniques, n_seen, n_fraud, strict=True)
        }
    return {
        "rows": len(df),
        "frauds": float(y.sum()),
        "inputs": inputs,
        "categories": categories,
        "period": _period(df),
    }


def merge_counts(a: Counts, b: Counts) -> Counts:
    """The counts of two disjoint sets of train rows with the same columns, added up."""
    categories = {}
    for col, left in a["categories"].items():
        merged = dict(left)
        for value, (seen, fraud) in b["categories"][col].items():
            was = merged.get(value, (0, 0.0))
            merged[value] = (was[0] + seen, was[1] + fraud)
        categories[col] = merged
    spans = [p for p in (a["period"], b["period"]) if p is not None]
    period = (min(p[0] for p in spans), max(p[1] for p in spans)) if spans else None
    return {
        "rows": a["rows"] + b["rows"],
        "frauds": a["frauds"] + b["frauds"],
        "inputs": a["inputs"],
        "categories": categories,
        "period": period,
    }


def state_from_counts(counts: Counts, cfg: FeatureConfig) -> FeatureState:
    """The fitted state from ``train_counts`` (of all train rows, merged)."""
    cfg.check()
    if counts["rows"] == 0:
        raise ValueError("fit_state: the training frame is empty")
    inputs, rows = counts["inputs"], counts["rows"]
    prior = counts["frauds"] / rows
    smoothing = float(cfg.category_smoothing)
    vocabularies: dict[str, list[str]] = {}
    rates: dict[str, list[float]] = {}
    category_counts: dict[str, list[int]] = {}
    for col, seen_fraud in counts["categories"].items():
        stats = {
            value: pair
            for value, pair in seen_fraud.items()
            if pair[0] >= cfg.min_category_count and value != UNKNOWN
        }
        vocab = sorted(stats)
        vocabularies[col] = [UNKNOWN, *vocab]
        rates[col] = [prior] + [
            (stats[v][1] + smoothing * prior) / (stats[v][0] + smoothing) for v in vocab
        ]
        category_counts[col] = [int(rows - sum(s for s, _ in stats.values()))] + [
            stats[v][0] for v in vocab
        ]
    return FeatureState(
        config=cfg,
        feature_names=cfg.feature_names(inputs),
        vocabularies=vocabularies,
        category_fraud_rates=rates,
        category_counts=category_counts,
        fraud_prior=prior,
        n_train=rows,
        history_defaults=cfg.history_defaults(inputs),
        inputs=inputs,
        train_period=counts["period"],
    )


def _period(df: pd.DataFrame) -> tuple[str, str] | None:
    """(first, last) timestamp of ``df`` in ISO 8601, or None without a usable timestamp."""
    if schema.TIMESTAMP not in df.columns:
        return None
    times = df[schema.TIMESTAMP]
    if times.dtype.kind != "M":
        return None
    first, last = times.min(), times.max()
    return (first.isoformat(), last.isoformat()) if first == first else None
