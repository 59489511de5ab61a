"""Serving runtime: the model artifact, one runtime per model kind, and the scorer.

Owns: the artifact format (``artifact``: a verified zip of JSON and arrays plus its
manifest, and the atomic promotion of a set), the
``Runtime`` protocol with one implementation per model kind (``xgboost_model``: compiled trees
walked by the C kernel ``_treewalk.c`` via ``native``, or numpy; ``sklearn_model``), and
``scoring`` (probability, decision, risk level, reasons). The runtime is the object the
artifact holds, so it is chosen once, from the name the artifact's document records, when
it is loaded: nothing else asks which kind it holds.

May import: ``fraud.features`` (the per-record and batch feature paths), ``fraud.data.schema``,
``fraud.files``, numpy and joblib. Never training code (``fraud.model``), pandas, XGBoost or
scikit-learn at import: the serving image has none of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    import numpy as np


class Runtime(Protocol):
    """What a model kind implements to be trained, evaluated and served."""

    #: Distributions whose major.minor version must match training's to load and score.
    libraries: ClassVar[tuple[str, ...]]
    #: The name the artifact's document records (``artifact.RUNTIMES``).
    name: ClassVar[str]

    def to_files(self) -> tuple[dict[str, Any], dict[str, bytes]]:
        """JSON-ready scalars and named files that ``from_files`` restores the model from."""
        ...

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities (n,) and per-feature contributions (n, n_features) of a matrix."""
        ...

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Probabilities (n,) only: the cheap path for offline evaluation."""
        ...

    def feature_importance(self) -> np.ndarray:
        """Raw importance per feature (evaluation only; may import the kind's library)."""
        ...
