"""The XGBoost runtime: a booster kept as its own UBJSON bytes plus its compiled trees."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from fraud.runtime.trees import CompiledTrees

if TYPE_CHECKING:
    import xgboost


@dataclass(frozen=True, eq=False)
class XGBoostModel:
    """A trained booster kept as XGBoost's own UBJSON bytes plus its compiled trees.

    Scoring uses the compiled trees only (the C kernel, or numpy), so loading an artifact and
    serving it never import XGBoost, which with the scikit-learn and scipy it pulls in costs
    ~200 MB per process. ``booster()`` restores the exact Booster where XGBoost itself is
    wanted (feature importance at evaluation, parity tests). ``fraud.model.compile`` builds one.
    """

    libraries: ClassVar[tuple[str, ...]] = ("numpy",)

    raw: bytes
    trees: CompiledTrees

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities (n,) and Saabas contributions (n, n_features) in log-odds, one walk."""
        probabilities, contributions = self.trees.predict_with_contributions(x)
        return probabilities, contributions[:, :-1]

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Probability per row (float64); XGBoost's own to within float32 rounding."""
        return self.trees.predict_proba(x)

    def feature_importance(self) -> np.ndarray:
        """Total gain per feature (imports XGBoost: evaluation only, never serving)."""
        scores = self.booster().get_score(importance_type="total_gain")
        return np.array([scores.get(f"f{i}", 0.0) for i in range(self.trees.n_features)])

    def booster(self) -> xgboost.Booster:
        """The original Booster (single-threaded), loaded from the stored bytes."""
        import xgboost as xgb

        booster = xgb.Booster(model_file=bytearray(self.raw))
        booster.set_param({"nthread": 1})
        return booster
