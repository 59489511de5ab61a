"""The XGBoost runtime: a booster kept as its own UBJSON bytes plus its compiled trees."""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar

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
    name: ClassVar[str] = "xgboost"

    raw: bytes
    trees: CompiledTrees

    def to_files(self) -> tuple[dict[str, Any], dict[str, bytes]]:
        """The trees' scalars, and their arrays as ``.npy`` files beside the booster's UBJSON."""
        scalars: dict[str, Any] = {}
        files = {"booster.ubj": bytes(self.raw)}
        for f in fields(self.trees):
            if not f.init:
                continue
            value = getattr(self.trees, f.name)
            if isinstance(value, np.ndarray):
                buffer = io.BytesIO()
                np.lib.format.write_array(buffer, value, allow_pickle=False)
                files[f"trees/{f.name}.npy"] = buffer.getvalue()
            else:
                scalars[f.name] = value
        return scalars, files

    @classmethod
    def from_files(cls, scalars: Mapping[str, Any], files: Mapping[str, bytes]) -> XGBoostModel:
        """The model ``to_files`` wrote; no pickle is read."""
        arrays = {
            name[len("trees/") : -len(".npy")]: np.lib.format.read_array(
                io.BytesIO(data), allow_pickle=False
            )
            for name, data in files.items()
            if name.startswith("trees/") and name.endswith(".npy")
        }
        return cls(raw=files["booster.ubj"], trees=CompiledTrees(**arrays, **scalars))

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
