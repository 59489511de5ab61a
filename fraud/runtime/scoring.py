"""Scoring: a verified model artifact -> fraud probability, decision, risk level and reasons.

Pure (no web framework). One path over a feature matrix: ``fraud.features.transform`` builds
it from validated records (one record through the per-record fast path), so serving and
training share one feature code path, and the artifact's runtime (``fraud.runtime``) gives
probabilities and per-feature contributions, whatever the model kind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from fraud.features.state import FeatureState
from fraud.features.transform import transform_records, transform_with_warnings
from fraud.runtime.artifact import ModelArtifact

RISK_LOW = "low"
RISK_MEDIUM = "medium"
RISK_HIGH = "high"
#: The risk levels in order: ``RiskBands.codes`` indexes this tuple.
RISK_LEVELS: tuple[str, str, str] = (RISK_LOW, RISK_MEDIUM, RISK_HIGH)
#: Contributions (rows x features) up to which ``top_reasons`` sorts: below, a sort's fixed
#: cost is the lower (one request); above, ``argmax`` passes are (a batch, a file).
_SORT_CELLS = 4096


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

    def codes(self, probabilities: np.ndarray) -> np.ndarray:
        """The risk level of each probability as an index into ``RISK_LEVELS`` (int8): the
        same comparisons as ``level``, vectorised (NaN is low, as ``level`` has it)."""
        p = np.asarray(probabilities, dtype=np.float64)
        return np.add(p >= self.medium, p >= self.high, dtype=np.int8)


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


def transform_columns_of(
    columns: Mapping[str, Sequence[Any]],
    n: int,
    state: FeatureState,
    history: Mapping[str, np.ndarray] | None = None,
) -> tuple[np.ndarray, list[list[str]]]:
    """``transform_records`` of ``n`` records given as ``columns`` (field -> one value per
    record, none None), bit for bit: the same lists into ``transform``, an absent history
    field the same default, an unknown category the same warning (tested against it)."""
    given: dict[str, list[Any]] = {}
    for name in state.record_fields:
        if name not in columns:
            raise ValueError(f"missing field '{name}'")
        given[name] = list(columns[name])
    for name, default in state._history_plan:
        if history is not None:
            given[name] = history[name]
        else:
            given[name] = list(columns[name]) if name in columns else [default] * n
    return transform_with_warnings(given, state, n)


class Reasons(NamedTuple):
    """The top reasons of each row as (n, k) arrays, slot 0 the largest."""

    feature: np.ndarray  # intp: the feature's position in the model's feature names
    value: np.ndarray  # float64: the feature's value on the row
    contribution: np.ndarray  # float64: its contribution to the row's log-odds
    keep: np.ndarray  # bool: a reason; False for a zero or non-finite contribution


def top_reasons(x: np.ndarray, contributions: np.ndarray, k: int) -> Reasons:
    """The ``k`` largest |contribution| of each row of ``x``, largest first, ties in feature
    order: the order of a stable descending sort (an infinite contribution first, NaN last).
    Past ``_SORT_CELLS`` contributions it takes ``k`` ``argmax`` passes instead of the sort, a
    fifth of its time for a few reasons out of tens of features. A zero (feature not on the
    row's paths) or non-finite contribution is no reason (``keep`` False).
    """
    n, width = contributions.shape
    k = min(int(k), width)
    rows = np.arange(n)
    if n * width <= _SORT_CELLS:  # a few rows (a request): one sort has the lower fixed cost
        feature = np.argsort(-np.abs(contributions), axis=1, kind="stable")[:, :k]
    else:
        key = np.abs(contributions)
        key[np.isnan(key)] = -1.0  # after every number, before the slots already taken
        feature = np.empty((n, k), dtype=np.intp)
        for slot in range(k):
            best = key.argmax(axis=1)
            feature[:, slot] = best
            key[rows, best] = -np.inf
    picked = contributions[rows[:, None], feature]
    keep = (picked != 0.0) & np.isfinite(picked)
    return Reasons(feature, x[rows[:, None], feature], picked, keep)


class Scores(NamedTuple):
    """Scored rows, one array per answer field."""

    probability: np.ndarray  # float64 (n,): fraud probability
    is_fraud: np.ndarray  # bool (n,): probability >= the model's threshold
    risk: np.ndarray  # int8 (n,): the risk level, an index into ``RISK_LEVELS``
    reasons: Reasons  # (n, top_k)


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
        self._levels = np.array(RISK_LEVELS, dtype=object)
        self.threshold = float(artifact.threshold)
        self.version: str = str(self.manifest.get("sha256", ""))[:12]
        self._model = artifact.model

    def _predict(self, x: np.ndarray) -> tuple[np.ndarray, Reasons]:
        """Probabilities and top reasons of feature rows ``x``: one model call."""
        probabilities, contributions = self._model.predict(x)
        return probabilities, top_reasons(x, contributions, self.top_k)

    def score_matrix(self, x: np.ndarray) -> Scores:
        """Score feature rows ``x`` column by column (what the offline scorer,
        ``fraud.offline``, writes per row); ``score_records`` answers the same per record."""
        probabilities, reasons = self._predict(x)
        return Scores(
            probability=probabilities,
            is_fraud=probabilities >= self.threshold,
            risk=self.bands.codes(probabilities),
            reasons=reasons,
        )

    def reason_dicts(self, reasons: Reasons) -> list[list[dict[str, Any]]]:
        """Each row's reasons as the API gives them: feature, value, contribution, largest
        first; an empty slot is left out, a non-finite feature value (missing history) is null.

        One gather and one ``tolist`` per slot and array; Python only builds the dicts, slot
        by slot (one comprehension over the rows per slot, then the rows' lists by ``zip``: ~2x
        faster than a comprehension per row); a row with an empty slot drops it afterwards.
        One row (a /predict) takes the per-row comprehension: fewer ``tolist`` calls.
        """
        n, k = reasons.feature.shape
        if k == 0:
            return [[] for _ in range(n)]
        values = reasons.value
        finite = np.isfinite(values)
        values_out = values if finite.all() else np.where(finite, values, None)
        names = self._names[reasons.feature]
        if n == 1:
            return [
                [
                    {"feature": name, "value": value, "contribution": contribution}
                    for name, value, contribution, kept in zip(
                        names[0].tolist(),
                        values_out[0].tolist(),
                        reasons.contribution[0].tolist(),
                        reasons.keep[0].tolist(),
                        strict=True,
                    )
                    if kept
                ]
            ]
        contributions = reasons.contribution
        slots = [
            [
                {"feature": name, "value": value, "contribution": contribution}
                for name, value, contribution in zip(
                    names[:, j].tolist(),
                    values_out[:, j].tolist(),
                    contributions[:, j].tolist(),
                    strict=True,
                )
            ]
            for j in range(k)
        ]
        rows = list(map(list, zip(*slots, strict=True)))
        keep = reasons.keep
        partial = ~keep.all(axis=1)
        if partial.any():
            for i in np.flatnonzero(partial).tolist():
                rows[i] = [d for d, kept in zip(rows[i], keep[i].tolist(), strict=True) if kept]
        return rows

    def _results(self, x: np.ndarray, warnings: list[list[str]]) -> list[dict[str, Any]]:
        """Result dicts of rows ``x``: ``score_matrix``'s values, row by row. The decision and
        level: per row in Python for one row (cheaper than the vectorised pair), vectorised
        for more (the same comparisons, ``RiskBands.codes``)."""
        probabilities, reasons = self._predict(x)
        values = probabilities.tolist()
        if len(values) == 1:
            decisions, levels = [values[0] >= self.threshold], [self.bands.level(values[0])]
        else:
            decisions = (probabilities >= self.threshold).tolist()
            levels = self._levels[self.bands.codes(probabilities)].tolist()
        return [
            {
                "fraud_probability": p,
                "is_fraud": decision,
                "risk_level": level,
                "reasons": row_reasons,
                "warnings": w,
            }
            for p, decision, level, row_reasons, w in zip(
                values, decisions, levels, self.reason_dicts(reasons), warnings, strict=True
            )
        ]

    def score_records(
        self,
        records: list[Mapping[str, Any]],
        history: Mapping[str, np.ndarray] | None = None,
        columns: Mapping[str, Sequence[Any]] | None = None,
    ) -> list[dict[str, Any]]:
        """Score validated records in one model call: fraud_probability, is_fraud, risk_level,
        reasons and warnings per record. ``history``: the history columns computed by the
        online store (one value per record), instead of the records' history fields.
        ``columns``: the records' fields as columns (field -> one value per record, none
        None: a regular batch's, ``app.validation``), read instead of the records."""
        if not records:
            return []
        state = self.artifact.feature_state
        if columns is not None and len(records) > 1:
            x, warnings = transform_columns_of(columns, len(records), state, history)
        else:
            x, warnings = transform_records(records, state, history)
        return self._results(x, warnings)

    def score_record(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """``score_records([record])[0]``: the same path, one row."""
        return self.score_records([record])[0]
