"""The scikit-learn runtimes: a fitted random forest or logistic-regression pipeline."""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import joblib
import numpy as np


@dataclass(frozen=True, eq=False)
class SklearnModel:
    """A fitted scikit-learn classifier; it gives no per-feature contributions (zeros)."""

    libraries: ClassVar[tuple[str, ...]] = ("numpy", "scikit-learn")
    name: ClassVar[str]

    estimator: Any

    def to_files(self) -> tuple[dict[str, Any], dict[str, bytes]]:
        """The fitted estimator as one joblib (pickle) file: scikit-learn has no other format,
        so loading a forest or logistic artifact unpickles it (an XGBoost one does not)."""
        buffer = io.BytesIO()
        joblib.dump(self.estimator, buffer, compress=3)
        return {}, {"estimator.joblib": buffer.getvalue()}

    @classmethod
    def from_files(cls, scalars: Mapping[str, Any], files: Mapping[str, bytes]) -> SklearnModel:
        """The model ``to_files`` wrote (unpickles the estimator)."""
        return cls(joblib.load(io.BytesIO(files["estimator.joblib"])))

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Fraud probability per row (float64, shape ``(n,)``)."""
        return np.asarray(self.estimator.predict_proba(x)[:, 1], dtype=np.float64)

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities (n,) and zero contributions (n, n_features): no reasons are given."""
        return self.predict_proba(x), np.zeros(np.shape(x), dtype=np.float64)


class ForestModel(SklearnModel):
    """A random forest; NaN history values are handled natively."""

    name: ClassVar[str] = "sklearn-forest"

    def feature_importance(self) -> np.ndarray:
        """The forest's impurity-based importances."""
        return np.asarray(self.estimator.feature_importances_, dtype=np.float64)


class LogisticModel(SklearnModel):
    """Imputation, scaling and logistic regression in one pipeline."""

    name: ClassVar[str] = "sklearn-logistic"

    def feature_importance(self) -> np.ndarray:
        """|coefficient| per feature (the imputer's missing-indicator columns left out)."""
        return np.abs(self.estimator[-1].coef_[0][: self.estimator.n_features_in_])
