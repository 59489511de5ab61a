"""Scoring: a verified model artifact -> fraud probability, decision, risk level and reasons.

Pure (no web framework). One path over a feature matrix: ``fraud.features.transform`` builds
it from validated records (one record through the per-record fast path), so serving and
training share one feature code path, and the artifact's runtime (``fraud.runtime``) gives
probabilities and per-feature contributions, whatever the model kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from fraud.features.transform import transform_records
from fraud.runtime.artifact import ModelArtifact

RISK_LOW = "low"
RISK_MEDIUM = "medium"
RISK_HIGH = "high"


@dataclass(frozen=True)
class RiskBands:
    """Probability bands: low < ``medium`` <= medium < ``high`` <= high (conf/serving/)."""

    medium: float
    high: float

    def __post_init__(self) -> None:
        if not (0.0 <= self.medium <= self.high <= 1.0):
            raise ValueError(
                f"risk bands need 0 <= medium <= high <= 1, got medium={self.medium}, "
                f"high={self.high}"
            )

    def level(self, probability: float) -> str:
        """The risk level of one probability."""
        if probability >= self.high:
            return RISK_HIGH
        if probability >= self.medium:
            return RISK_MEDIUM
        return RISK_LOW


@dataclass
class ServingConfig:
    """The ``serving`` section (conf/serving/), shipped in the promoted manifest."""

    risk_medium: float
    risk_high: float
    top_reasons: int
    max_batch: int

    def check(self) -> None:
        """Raise ValueError naming the field when a value is not allowed."""
        RiskBands(self.risk_medium, self.risk_high)
        if self.top_reasons < 0:
            raise ValueError(f"top_reasons must be >= 0, got {self.top_reasons}")
        if self.max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {self.max_batch}")


class Scorer:
    """Scores raw transaction records with a loaded, verified ``ModelArtifact``."""

    def __init__(
        self,
        artifact: ModelArtifact,
        manifest: Mapping[str, Any],
        bands: RiskBands,
        top_k: int,
    ) -> None:
        if top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {top_k}")
        self.artifact = artifact
        self.manifest = dict(manifest)
        self.bands = bands
        self.top_k = int(top_k)
        self.feature_names: list[str] = artifact.feature_names
        self._names = np.array(self.feature_names, dtype=object)
        self.threshold = float(artifact.threshold)
        self.version: str = str(self.manifest.get("sha256", ""))[:12]
        self._model = artifact.model

    def _reasons(self, x: np.ndarray, contributions: np.ndarray) -> list[list[dict[str, Any]]]:
        """Top-``top_k`` reasons per row: the largest |contribution| first (stable order).

        Vectorised: one argsort, one gather and one ``tolist`` per column; Python only builds
        the dicts. A zero (feature not on the row's paths) or non-finite contribution is no
        reason; a non-finite feature value (missing history) is given as null.
        """
        if not self.top_k:
            return [[] for _ in range(len(x))]
        order = np.argsort(-np.abs(contributions), axis=1, kind="stable")[:, : self.top_k]
        rows = np.arange(len(x))[:, None]
        picked = contributions[rows, order]
        values = x[rows, order]
        finite = np.isfinite(values)
        values_out = (values if finite.all() else np.where(finite, values, None)).tolist()
        names = self._names[order].tolist()
        keep = (picked != 0.0) & np.isfinite(picked)
        return [
            [
                {"feature": n, "value": v, "contribution": c}
                for n, v, c, k in zip(ns, vs, cs, ks, strict=True)
                if k
            ]
            for ns, vs, cs, ks in zip(
                names, values_out, picked.tolist(), keep.tolist(), strict=True
            )
        ]

    def _results(
        self,
        x: np.ndarray,
        probabilities: np.ndarray,
        contributions: np.ndarray,
        warnings: list[list[str]],
    ) -> list[dict[str, Any]]:
        """Result dicts of rows ``x`` from their probabilities and contributions."""
        threshold, level = self.threshold, self.bands.level
        return [
            {
                "fraud_probability": p,
                "is_fraud": p >= threshold,
                "risk_level": level(p),
                "reasons": reasons,
                "warnings": w,
            }
            for p, reasons, w in zip(
                probabilities.tolist(), self._reasons(x, contributions), warnings, strict=True
            )
        ]

    def score_records(
        self,
        records: list[Mapping[str, Any]],
        history: Mapping[str, np.ndarray] | None = None,
    ) -> list[dict[str, Any]]:
        """Score validated records in one model call: fraud_probability, is_fraud, risk_level,
        reasons and warnings per record. ``history``: the history columns computed by the
        online store (one value per record), instead of the records' history fields."""
        if not records:
            return []
        x, warnings = transform_records(records, self.artifact.feature_state, history)
        return self._results(x, *self._model.predict(x), warnings)

    def score_record(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """``score_records([record])[0]``: the same path, one row."""
        return self.score_records([record])[0]
