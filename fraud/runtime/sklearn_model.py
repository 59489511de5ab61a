"""The scikit-learn runtimes: a fitted random forest or logistic-regression pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np


@dataclass(frozen=True, eq=False)
class SklearnModel:
    """A fitted scikit-learn classifier; it gives no per-feature contributions (zeros)."""

    libraries: ClassVar[tuple[str, ...]] = ("numpy", "scikit-learn")

    estimator: Any

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Fraud probability per row (float64, shape ``(n,)``)."""
        return np.asarray(self.estimator.predict_proba(x)[:, 1], dtype=np.float64)

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities (n,) and zero contributions (n, n_features): no reasons are given."""
        return self.predict_proba(x), np.zeros(np.shape(x), dtype=np.float64)


class ForestModel(SklearnModel):
    """A random forest; NaN history values are handled natively."""

    def feature_importance(self) -> np.ndarray:
        """The forest's impurity-based importances."""
        return np.asarray(self.estimator.feature_importances_, dtype=np.float64)


class LogisticModel(SklearnModel):
    """Imputation, scaling and logistic regression in one pipeline."""

    def feature_importance(self) -> np.ndarray:
        """|coefficient| per feature (the imputer's missing-indicator columns left out)."""
        return np.abs(self.estimator[-1].coef_[0][: self.estimator.n_features_in_])
