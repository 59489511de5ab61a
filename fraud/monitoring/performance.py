"""Realized performance of the served model: its audit log joined with feedback labels.

Pure functions of plain records and arrays (numpy only: the service computes them too). The
join (``join``): each transaction's latest prediction, with its current label (the label with
the latest ``labelled_at``; on a tie the one received last: ``fraud.monitoring.auditlog``).
Optionally, as card issuers do, a prediction older than ``genuine_after_s`` (by the time it
was scored, against the newest prediction in the log) with no label counts as genuine: fraud
is reported within the label delay, or never. The metrics (``realized``): precision and
recall at the model's threshold, PR-AUC (average precision, as scikit-learn's), Card
Precision@k per day and label coverage. While labels lag, ``estimated`` gives CBPE-style
expected precision and recall from the scores alone, which holds only for a calibrated model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

_DECIMALS = 6


def _r(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), _DECIMALS)


@dataclass
class Joined:
    """Each transaction's latest prediction, in log order, with its label (-1: none)."""

    records: list[Mapping[str, Any]]
    scores: np.ndarray
    labels: np.ndarray  # int8: 1 fraud, 0 genuine, -1 unknown
    assumed: np.ndarray  # bool: genuine by the delay rule, not by a label
    threshold: float | None

    @property
    def labelled(self) -> np.ndarray:
        return self.labels >= 0


def join(
    predictions: Sequence[Mapping[str, Any]],
    labels: Mapping[str, tuple[str, int]],
    genuine_after_s: float | None = None,
) -> Joined:
    """``predictions`` (audit records, oldest first) with their labels; a transaction predicted
    more than once counts once, by its latest prediction; records without a transaction_id
    or score are left out."""
    latest: dict[str, Mapping[str, Any]] = {}
    for r in predictions:
        txn = r.get("transaction_id")
        if isinstance(txn, str) and isinstance(r.get("fraud_probability"), int | float):
            latest.pop(txn, None)
            latest[txn] = r
    records = list(latest.values())
    n = len(records)
    scores = np.fromiter((r["fraud_probability"] for r in records), np.float64, n)
    y = np.fromiter((labels.get(txn, ("", -1))[1] for txn in latest), np.int8, n)
    assumed = np.zeros(n, dtype=bool)
    if genuine_after_s is not None and n:
        logged = np.fromiter((float(r.get("logged_at", 0.0)) for r in records), np.float64, n)
        assumed = (y < 0) & (logged < logged.max() - genuine_after_s)
        y[assumed] = 0
    thresholds = [r.get("threshold") for r in records[-1:]]
    threshold = float(thresholds[0]) if thresholds and thresholds[0] is not None else None
    return Joined(records, scores, y, assumed, threshold)


def average_precision(y: np.ndarray, s: np.ndarray) -> float:
    """PR-AUC as scikit-learn's ``average_precision_score``: sum over distinct thresholds of
    (recall increase) x precision."""
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    ends = np.r_[np.flatnonzero(np.diff(s_sorted) != 0), len(s) - 1]
    tp = np.cumsum(y_sorted)[ends]
    fp = ends + 1 - tp
    if tp[-1] == 0:
        return math.nan
    precision = tp / (tp + fp)
    recall = tp / tp[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def card_precision_codes(
    day: np.ndarray, card: np.ndarray, y: np.ndarray, s: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Card Precision@k's core over integer codes (``day``: 0..D-1, ``card``: 0..C-1, codes in
    sorted order of the values): per day, the frauds among its ``k`` top cards (by their
    highest score that day; ties to the smaller card) and the number of its cards."""
    n_days = int(day.max()) + 1 if len(day) else 0
    n_cards = int(card.max()) + 1 if len(card) else 1
    pairs, pair = np.unique(day * n_cards + card, return_inverse=True)
    best = np.full(len(pairs), -np.inf)
    np.maximum.at(best, pair, s)
    fraud = np.zeros(len(pairs), dtype=np.int64)
    np.maximum.at(fraud, pair, y)
    pair_day, pair_card = pairs // n_cards, pairs % n_cards
    order = np.lexsort((pair_card, -best, pair_day))  # by day, then score down, then card
    first = np.searchsorted(pair_day[order], np.arange(n_days))
    rank = np.arange(len(order)) - first[pair_day[order]]
    top = order[rank < k]
    hits = np.bincount(pair_day[top], weights=fraud[top], minlength=n_days)
    return hits, np.bincount(pair_day, minlength=n_days)


def realized(joined: Joined, k: int, threshold: float | None = None) -> dict[str, Any]:
    """The realized metrics of the labelled predictions of ``joined`` (module docstring); a
    metric that needs both classes is None without them."""
    threshold = joined.threshold if threshold is None else threshold
    mask = joined.labelled
    y = joined.labels[mask].astype(np.int64)
    s = joined.scores[mask]
    n, n_labelled = len(joined.scores), int(mask.sum())
    positives = int(y.sum())
    out: dict[str, Any] = {
        "predictions": n,
        "labelled": n_labelled,
        "labelled_by_feedback": n_labelled - int(joined.assumed.sum()),
        "assumed_genuine": int(joined.assumed.sum()),
        "label_coverage": _r(n_labelled / n) if n else None,
        "positives": positives,
        "threshold": threshold,
        "precision": None,
        "recall": None,
        "pr_auc": None,
        f"card_precision_at_{k}": None,
    }
    if threshold is not None and n_labelled:
        flagged = s >= threshold
        tp = int((flagged & (y == 1)).sum())
        out |= {"tp": tp, "fp": int(flagged.sum()) - tp, "fn": positives - tp}
        out["precision"] = _r(tp / int(flagged.sum())) if flagged.any() else None
        out["recall"] = _r(tp / positives) if positives else None
    if 0 < positives < n_labelled:
        out["pr_auc"] = _r(average_precision(y, s))
        labelled = [r for r, m in zip(joined.records, mask.tolist(), strict=True) if m]
        days = np.array([_day(r) for r in labelled])
        cards = np.array([str(r.get("user_id", "")) for r in labelled])
        day = np.unique(days, return_inverse=True)[1]
        card = np.unique(cards, return_inverse=True)[1]
        hits, _ = card_precision_codes(day, card, y, s, k)
        out[f"card_precision_at_{k}"] = _r(float(np.mean(hits / k)))
    return out


def _day(record: Mapping[str, Any]) -> str:
    """The UTC day of a prediction's transaction (its timestamp, else when it was scored)."""
    ts = record.get("timestamp")
    if isinstance(ts, str) and len(ts) >= 10:
        return ts[:10]
    import time

    return time.strftime("%Y-%m-%d", time.gmtime(float(record.get("logged_at", 0.0))))


def estimated(scores: np.ndarray, threshold: float) -> dict[str, Any]:
    """CBPE-style expected precision and recall at ``threshold`` from the scores alone: a
    calibrated score is the probability of fraud, so the expected true positives are the sum
    of the flagged scores, the expected frauds the sum of all scores."""
    s = np.asarray(scores, dtype=np.float64)
    flagged = s >= threshold
    expected_tp = float(s[flagged].sum())
    expected_frauds = float(s.sum())
    return {
        "predictions": len(s),
        "flagged": int(flagged.sum()),
        "expected_frauds": _r(expected_frauds),
        "precision": _r(expected_tp / int(flagged.sum())) if flagged.any() else None,
        "recall": _r(expected_tp / expected_frauds) if expected_frauds > 0 else None,
    }


def below(report: Mapping[str, Any], minimum: Mapping[str, float], min_labels: int) -> list[str]:
    """Why the realized metrics fail their ``minimum`` bounds (empty: they pass, or fewer than
    ``min_labels`` labelled predictions to judge by)."""
    if report.get("labelled", 0) < min_labels:
        return []
    out = []
    for name, bound in minimum.items():
        value = report.get(name)
        if value is not None and value < bound:
            out.append(f"{name} {value:.4f} is below {bound}")
    return out


@dataclass
class PerformanceConfig:
    """The ``performance`` section (conf/drift/default.yaml): how ``make performance`` and the
    daily monitoring workflow judge the served model's realized performance."""

    window: int
    genuine_after_days: float | None
    min_labels: int
    card_precision_k: int
    min_metrics: dict[str, float]

    def check(self) -> None:
        """Raise ValueError naming the field when a value is nonsense."""
        if self.window < 1:
            raise ValueError(f"performance.window must be >= 1, got {self.window}")
        if self.genuine_after_days is not None and not self.genuine_after_days >= 0:
            raise ValueError(
                "performance.genuine_after_days must be >= 0 or null, "
                f"got {self.genuine_after_days}"
            )
        if self.min_labels < 0:
            raise ValueError(f"performance.min_labels must be >= 0, got {self.min_labels}")
        if self.card_precision_k < 1:
            raise ValueError(
                f"performance.card_precision_k must be >= 1, got {self.card_precision_k}"
            )
        known = {"precision", "recall", "pr_auc", f"card_precision_at_{self.card_precision_k}"}
        for name, bound in self.min_metrics.items():
            if name not in known:
                raise ValueError(f"performance.min_metrics.{name}: not one of {sorted(known)}")
            if not 0 <= bound <= 1:
                raise ValueError(f"performance.min_metrics.{name} must be in [0, 1], got {bound}")
