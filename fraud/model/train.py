"""Model configuration and fitting: XGBoost (default), random forest, logistic regression.

Each model kind has a typed config whose ``fit`` trains on the train split (with early
stopping on valid where the model supports it) and returns that kind's runtime
(``fraud.runtime``), which the artifact then holds. ``parse_model_config`` picks the config by
``model.name``: the one place a kind is chosen. Class-imbalance handling is a config choice,
not a code edit.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fraud.config import ConfigError, parse_checked
from fraud.model.metrics import ThresholdConfig
from fraud.runtime import Runtime
from fraud.runtime.sklearn_model import ForestModel, LogisticModel

#: The training data one ``fit`` sees: train features and labels, valid features and labels.
Splits = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
INF = math.inf


@dataclass
class XGBoostConfig:
    """Gradient-boosted trees (``hist``); ``n_estimators`` is the cap early stopping cuts."""

    name: str = "xgboost"
    n_estimators: int = 400
    max_depth: int = 6
    learning_rate: float = 0.1
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    min_child_weight: float = 1.0
    reg_lambda: float = 1.0
    max_bin: int = 256
    early_stopping_rounds: int = 30
    n_jobs: int = 2
    #: feature -> 1 (the score may only rise with it) or -1 (only fall); features the model
    #: does not have (excluded, or absent from the data) are left out
    monotone_constraints: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("amount", "log_amount", "amount_zscore", "amount_to_avg_ratio"), 1
        )
    )

    def check(self) -> None:
        """Raise ValueError naming a parameter out of range or a constraint not -1, 0, 1."""
        _check_bounds(
            self,
            {
                "n_estimators": (1, INF, False),
                "max_depth": (1, INF, False),
                "learning_rate": (0, 1, True),
                "subsample": (0, 1, True),
                "colsample_bytree": (0, 1, True),
                "min_child_weight": (0, INF, False),
                "reg_lambda": (0, INF, False),
                "max_bin": (2, INF, False),
                "early_stopping_rounds": (1, INF, False),
                "n_jobs": (1, INF, False),
            },
        )
        for name, direction in self.monotone_constraints.items():
            if isinstance(direction, bool) or direction not in (-1, 0, 1):
                raise ValueError(
                    f"monotone_constraints.{name} must be -1, 0 or 1, got {direction}"
                )

    def fit(
        self, data: Splits, positive_weight: float, seed: int, names: list[str] | None = None
    ) -> tuple[Runtime, dict[str, Any]]:
        """Train a Booster with early stopping on valid PR-AUC, truncated to its best
        iteration, and keep it as an ``XGBoostModel`` (its bytes plus compiled trees).
        ``names``: the feature names, which ``monotone_constraints`` refer to."""
        import xgboost as xgb

        x_train, y_train, x_valid, y_valid = data
        dtrain = xgb.QuantileDMatrix(x_train, label=y_train, max_bin=self.max_bin)
        dvalid = xgb.QuantileDMatrix(x_valid, label=y_valid, ref=dtrain)
        booster = xgb.train(
            self.booster_params(positive_weight, seed, names),
            dtrain,
            num_boost_round=self.n_estimators,
            evals=[(dvalid, "valid")],
            early_stopping_rounds=self.early_stopping_rounds,
            verbose_eval=False,
            callbacks=_progress(xgb, self.n_estimators),
        )
        return self.finish(booster, names)

    def booster_params(
        self, positive_weight: float, seed: int, names: list[str] | None
    ) -> dict[str, Any]:
        """XGBoost's training parameters (the local and the Dask engine train with these)."""
        params = {
            "objective": "binary:logistic",
            "eval_metric": "aucpr",
            "tree_method": "hist",
            "max_depth": self.max_depth,
            "learning_rate": self.learning_rate,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "min_child_weight": self.min_child_weight,
            "reg_lambda": self.reg_lambda,
            "max_bin": self.max_bin,
            "scale_pos_weight": positive_weight,
            "nthread": self.n_jobs,
            "seed": seed,
        }
        applied = self.applied_constraints(names)
        if applied:
            params["monotone_constraints"] = (
                "(" + ",".join(str(applied.get(name, 0)) for name in names or []) + ")"
            )
        return params

    def applied_constraints(self, names: list[str] | None) -> dict[str, int]:
        """The monotone constraints on features the model has."""
        return {n: d for n, d in self.monotone_constraints.items() if d and n in (names or [])}

    def finish(self, booster: Any, names: list[str] | None) -> tuple[Runtime, dict[str, Any]]:
        """The trained booster truncated to its best iteration, as an ``XGBoostModel``."""
        from fraud.model.compile import xgboost_model

        best = int(booster.best_iteration)
        applied = self.applied_constraints(names)
        info = {"best_iteration": best, "rounds": best + 1, "monotone_constraints": applied}
        return xgboost_model(booster[: best + 1]), info


def _progress(xgb: Any, rounds: int, stream: Any = None, every_s: float = 5.0) -> list[Any]:
    """A callback printing the round and the validation PR-AUC every ``every_s`` seconds to
    ``stream`` (stderr) while training, when that is a terminal (quiet in CI and logs). It
    only reads the evaluation log, so the model is the same with or without it."""
    stream = sys.stderr if stream is None else stream
    if not (hasattr(stream, "isatty") and stream.isatty()):
        return []

    class Progress(xgb.callback.TrainingCallback):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            self.started = self.shown = time.monotonic()

        def after_iteration(self, model: Any, epoch: int, evals_log: dict) -> bool:
            now = time.monotonic()
            if now - self.shown >= every_s:
                self.shown = now
                scores = evals_log.get("valid", {}).get("aucpr", [])
                best = max(scores) if scores else float("nan")
                latest = scores[-1] if scores else float("nan")
                print(
                    f"train: round {epoch + 1}/{rounds}, valid pr_auc {latest:.4f} "
                    f"(best {best:.4f}), {now - self.started:.0f} s",
                    file=stream,
                    flush=True,
                )
            return False

    return [Progress()]


@dataclass
class RandomForestConfig:
    """Scikit-learn random forest; NaN history values are handled natively."""

    name: str = "random_forest"
    n_estimators: int = 200
    max_depth: int | None = 14
    min_samples_leaf: int = 5
    max_features: str = "sqrt"
    max_samples: float | None = 0.5
    n_jobs: int = 2

    def check(self) -> None:
        """Raise ValueError naming a parameter out of range."""
        _check_bounds(
            self,
            {
                "n_estimators": (1, INF, False),
                "max_depth": (1, INF, False),
                "min_samples_leaf": (1, INF, False),
                "max_samples": (0, 1, True),
                "n_jobs": (1, INF, False),
            },
        )
        if self.max_features not in ("sqrt", "log2"):
            raise ValueError(f"max_features must be sqrt or log2, got {self.max_features!r}")

    def fit(
        self, data: Splits, positive_weight: float, seed: int, names: list[str] | None = None
    ) -> tuple[Runtime, dict[str, Any]]:
        """Fit on train (valid is not used: a forest has no early stopping)."""
        from sklearn.ensemble import RandomForestClassifier

        x_train, y_train, _, _ = data
        forest = RandomForestClassifier(
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features,
            max_samples=self.max_samples,
            n_jobs=self.n_jobs,
            random_state=seed,
        )
        forest.fit(x_train, y_train, sample_weight=_sample_weight(y_train, positive_weight))
        _zero_tree_padding(forest)
        return ForestModel(forest), {"n_estimators": self.n_estimators}


@dataclass
class LogisticRegressionConfig:
    """Median imputation (with missing indicators), standard scaling, then logistic regression."""

    name: str = "logistic_regression"
    C: float = 1.0
    max_iter: int = 1000

    def check(self) -> None:
        """Raise ValueError naming a parameter out of range."""
        _check_bounds(self, {"C": (0, INF, True), "max_iter": (1, INF, False)})

    def fit(
        self, data: Splits, positive_weight: float, seed: int, names: list[str] | None = None
    ) -> tuple[Runtime, dict[str, Any]]:
        """Fit the pipeline on train (valid is not used)."""
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        x_train, y_train, _, _ = data
        pipeline = make_pipeline(
            SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
            StandardScaler(),
            LogisticRegression(C=self.C, max_iter=self.max_iter, random_state=seed),
        )
        weight = _sample_weight(y_train, positive_weight)
        pipeline.fit(x_train, y_train, logisticregression__sample_weight=weight)
        return LogisticModel(pipeline), {"n_iter": int(pipeline[-1].n_iter_[0])}


def _check_bounds(cfg: Any, bounds: Mapping[str, tuple[float, float, bool]]) -> None:
    """ValueError naming the first field outside (low, high] (open low) or [low, high]; None
    (an optional field left unset) passes."""
    for name, (low, high, open_low) in bounds.items():
        value = getattr(cfg, name)
        if value is None:
            continue
        above = value > low if open_low else value >= low
        if not (math.isfinite(value) and above and value <= high):
            lower = f"> {low:g}" if open_low else f">= {low:g}"
            upper = "" if high == INF else f" and <= {high:g}"
            raise ValueError(f"{name} must be {lower}{upper}, got {value}")


ModelConfig = XGBoostConfig | RandomForestConfig | LogisticRegressionConfig
_MODELS: dict[str, type] = {
    "xgboost": XGBoostConfig,
    "random_forest": RandomForestConfig,
    "logistic_regression": LogisticRegressionConfig,
}


@dataclass
class TrainConfig:
    """How to train whatever model is chosen: imbalance handling and the threshold rule."""

    imbalance: str = "none"  # "none" or "balanced" (reweight positives by neg/pos)
    threshold: ThresholdConfig = field(default_factory=ThresholdConfig)

    def check(self) -> None:
        """Raise ValueError naming the field when a value is not allowed."""
        if self.imbalance not in ("none", "balanced"):
            raise ValueError(
                f"train.imbalance must be 'none' or 'balanced', got {self.imbalance!r}"
            )
        self.threshold.check()


def parse_model_config(section: Mapping[str, Any] | None) -> ModelConfig:
    """Pick the model config class by ``name`` and validate the section against it."""
    if not isinstance(section, Mapping) or "name" not in section:
        raise ConfigError("invalid config 'model': a mapping with a 'name' key is required")
    name = section["name"]
    if name not in _MODELS:
        raise ConfigError(f"invalid config 'model.name': {name!r} is not one of {sorted(_MODELS)}")
    return parse_checked(section, _MODELS[name], "model")


def positive_weight(rows: int, positives: float, imbalance: str) -> float:
    """XGBoost's ``scale_pos_weight`` (and the forest's sample weight) for ``imbalance``."""
    return (rows - positives) / positives if imbalance == "balanced" and positives else 1.0


def _sample_weight(y: np.ndarray, positive_weight: float) -> np.ndarray:
    return np.where(y == 1, positive_weight, 1.0)


def fit_model(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_valid: np.ndarray,
    y_valid: np.ndarray,
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    seed: int,
    feature_names: list[str] | None = None,
) -> tuple[Runtime, dict[str, Any]]:
    """Fit the configured model; return ``(runtime, info)`` where info records iterations
    (and, for XGBoost, the monotone constraints applied to ``feature_names``)."""
    train_cfg.check()
    weight = positive_weight(len(y_train), float(y_train.sum()), train_cfg.imbalance)
    return model_cfg.fit((x_train, y_train, x_valid, y_valid), weight, seed, feature_names)


def _zero_tree_padding(forest: Any) -> None:
    """Make a fitted forest pickle to the same bytes every time.

    Each tree's node array is a record array with alignment padding that scikit-learn leaves
    uninitialised; pickling copies it as-is, so identical forests differ byte for byte. Copying
    the fields into a zeroed array fixes the padding without changing any value.
    """
    for tree in forest.estimators_:
        state = tree.tree_.__getstate__()
        nodes = state["nodes"]
        clean = np.zeros(nodes.shape, dtype=nodes.dtype)
        for name in nodes.dtype.names:
            clean[name] = nodes[name]
        state["nodes"] = clean
        tree.tree_.__setstate__(state)


def feature_importance(model: Runtime, feature_names: list[str]) -> dict[str, float]:
    """Importance per feature, normalised to sum to 1 (gain for XGBoost, |coef| for LR)."""
    raw = model.feature_importance()
    total = float(raw.sum()) or 1.0
    return {name: round(float(v) / total, 6) for name, v in zip(feature_names, raw, strict=True)}
