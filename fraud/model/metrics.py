"""Threshold choice and evaluation metrics (the plot data is ``plots``).

Everything here is a pure function of labels and scores (plus a typed config), so the train
and evaluate stages share one definition of "the threshold" and "the metrics".
A transaction is predicted fraud when ``score >= threshold``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fraud.model.behaviour import BehaviourConfig
from fraud.monitoring.performance import card_precision_codes

RULES = ("cost", "precision")
#: Metrics where higher is better, the only ones the gate can bound (and card_precision_at_<k>).
GATEABLE_METRICS = ("roc_auc", "pr_auc", "recall_at_1pct_fpr", "precision", "recall", "f1")
CARD_PRECISION = re.compile(r"card_precision_at_[1-9][0-9]*")


def is_gateable(name: str) -> bool:
    """Whether the gate can bound metric ``name`` (higher must be better)."""
    return name in GATEABLE_METRICS or CARD_PRECISION.fullmatch(name) is not None


@dataclass
class ScoreBins:
    """Log-spaced score bins: ``[0, min_edge)``, then ``per_decade`` bins per factor of 10 up
    to 1 (``fraud.model.plots.log_edges``)."""

    min_edge: float
    per_decade: int

    def check(self, where: str = "score_bins") -> None:
        """Raise ValueError naming the field when a value is not allowed."""
        if not (math.isfinite(self.min_edge) and 0 < self.min_edge < 1):
            raise ValueError(f"{where}.min_edge must be in (0, 1), got {self.min_edge}")
        if self.per_decade < 1:
            raise ValueError(f"{where}.per_decade must be >= 1, got {self.per_decade}")


@dataclass
class CalibrationConfig(ScoreBins):
    """Reliability-curve bins: the log grid of ``ScoreBins`` plus edges at the threshold, at
    ``threshold * sqrt(2)**±i`` (``i = 1..threshold_steps``) and at the risk bands."""

    threshold_steps: int

    def check(self, where: str = "calibration") -> None:
        """Raise ValueError naming the field when a value is not allowed."""
        super().check(where)
        if self.threshold_steps < 0:
            raise ValueError(f"{where}.threshold_steps must be >= 0, got {self.threshold_steps}")


@dataclass
class EvaluateConfig:
    """The ``evaluate`` section (conf/evaluate/): how the test split is measured."""

    card_precision_k: int  # cards a fraud team can investigate per day (Card Precision@k)
    calibration: CalibrationConfig
    score_bins: ScoreBins  # the score distribution by class (reports/plots/)
    behaviour: BehaviourConfig = field(default_factory=BehaviourConfig)

    def check(self) -> None:
        """Raise ValueError when k is not a positive number of cards or a check is unusable."""
        if self.card_precision_k < 1:
            raise ValueError(f"card_precision_k must be >= 1, got {self.card_precision_k}")
        self.calibration.check("evaluate.calibration")
        self.score_bins.check("evaluate.score_bins")
        self.behaviour.check()


LABELS = {0: "legit", 1: "fraud"}
_DECIMALS = 6
_SLACK = 1e-9  # float slack in gate comparisons; far below the 6-decimal metric resolution


@dataclass
class ThresholdConfig:
    """How the decision threshold is chosen on the validation split.

    ``rule="cost"`` minimises ``cost_false_negative * FN + cost_false_positive * FP``;
    ``rule="precision"`` takes the lowest threshold whose precision reaches ``target_precision``.
    """

    rule: str = "cost"
    cost_false_negative: float = 10.0
    cost_false_positive: float = 1.0
    target_precision: float = 0.8

    def check(self) -> None:
        """Raise ValueError naming the field when a value is not allowed."""
        if self.rule not in RULES:
            raise ValueError(f"threshold.rule must be one of {RULES}, got {self.rule!r}")
        for name in ("cost_false_negative", "cost_false_positive"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"threshold.{name} must be a finite number > 0, got {value}")
        if not 0 < self.target_precision < 1:
            raise ValueError(
                f"threshold.target_precision must be in (0, 1), got {self.target_precision}"
            )


# --------------------------------------------------------------------------- helpers


def _check_inputs(y_true: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate labels and scores; return them as 1-D int64 / float64 arrays."""
    y = np.asarray(y_true)
    s = np.asarray(scores)
    if y.ndim != 1:
        raise ValueError(f"y_true must be 1-D, got shape {y.shape}")
    if s.ndim != 1:
        raise ValueError(f"scores must be 1-D, got shape {s.shape}")
    if len(y) != len(s):
        raise ValueError(f"y_true and scores must have the same length, got {len(y)} and {len(s)}")
    if len(y) == 0:
        raise ValueError("y_true and scores are empty")
    try:
        s = s.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"scores must be numeric, got dtype {s.dtype}") from None
    try:
        bad_label = ~np.isin(y, [0, 1])
    except TypeError:
        bad_label = np.ones(len(y), dtype=bool)
    if bad_label.any():
        examples = sorted({repr(v) for v in y[bad_label][:1000].tolist()})[:5]
        raise ValueError(
            f"y_true must contain only 0/1 labels; {int(bad_label.sum())} value(s) are not, "
            f"e.g. {', '.join(examples)}"
        )
    y = y.astype(np.int64)
    n_bad = int((~np.isfinite(s)).sum())
    if n_bad:
        raise ValueError(f"scores must be finite; {n_bad} value(s) are NaN or infinite")
    positives = int(y.sum())
    if positives == 0 or positives == len(y):
        only = "1 (fraud)" if positives else "0 (legit)"
        raise ValueError(f"y_true must contain both classes 0 and 1, got only {only}")
    return y, s


def _check_threshold(threshold: float) -> float:
    value = float(threshold)
    if not math.isfinite(value):
        raise ValueError(f"threshold must be finite, got {threshold}")
    return value


def _curve(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct thresholds (descending) with TP and FP counts of ``score >= threshold``."""
    order = np.argsort(s, kind="stable")[::-1]
    s_sorted = s[order]
    tp_cum = np.cumsum(y[order])
    # last position of each run of equal scores
    ends = np.r_[np.flatnonzero(np.diff(s_sorted) != 0), len(s_sorted) - 1]
    tp = tp_cum[ends]
    fp = ends + 1 - tp
    return s_sorted[ends], tp, fp


def _r(x: float) -> float:
    return round(float(x), _DECIMALS)


# --------------------------------------------------------------------------- public API


def choose_threshold(y_true: np.ndarray, scores: np.ndarray, cfg: ThresholdConfig) -> float:
    """Pick the decision threshold from the distinct ``scores`` according to ``cfg.rule``.

    ``"cost"``: minimise ``cost_false_negative * FN + cost_false_positive * FP`` over every
    distinct score as candidate; ties go to the highest threshold (fewest alerts).
    ``"precision"``: the lowest threshold whose precision is >= ``target_precision``; when no
    threshold reaches it, the threshold with the highest precision (the lowest such one on ties).
    Candidates are observed scores only, so at least one transaction is always flagged.

    Raises:
        ValueError: invalid labels/scores or config, naming the problem.
    """
    cfg.check()
    y, s = _check_inputs(y_true, scores)
    thresholds, tp, fp = _curve(y, s)
    if cfg.rule == "cost":
        fn = int(y.sum()) - tp
        cost = cfg.cost_false_negative * fn + cfg.cost_false_positive * fp
        best = cost.min()
        # thresholds are descending, so the first near-minimal candidate is the highest one
        k = int(np.flatnonzero(cost <= best + 1e-12 * max(1.0, abs(best)))[0])
    else:
        precision = tp / (tp + fp)
        reached = np.flatnonzero(precision >= cfg.target_precision - 1e-12)
        if len(reached):
            k = int(reached[-1])
        else:
            k = int(np.flatnonzero(precision == precision.max())[-1])
    return float(thresholds[k])


def evaluate(
    y_true: np.ndarray, scores: np.ndarray, threshold: float, cfg: ThresholdConfig
) -> dict[str, float]:
    """Ranking metrics plus the confusion matrix and cost at ``threshold``.

    Keys: roc_auc, pr_auc (average precision), precision, recall, f1, recall_at_1pct_fpr
    (max TPR over ROC points with FPR <= 1%), expected_cost_per_txn, threshold, fraud_rate
    (floats rounded to 6 decimals) and n, positives, tp, fp, fn, tn (ints). Precision is 0.0
    when nothing is flagged.
    """
    from sklearn.metrics import average_precision_score, roc_auc_score  # training-side only

    cfg.check()
    y, s = _check_inputs(y_true, scores)
    threshold = _check_threshold(threshold)
    n = len(y)
    positives = int(y.sum())
    negatives = n - positives

    predicted = s >= threshold
    tp = int(np.sum(predicted & (y == 1)))
    fp = int(np.sum(predicted & (y == 0)))
    fn = positives - tp
    tn = negatives - fp
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / positives
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0

    _, curve_tp, curve_fp = _curve(y, s)
    within = curve_fp * 100 <= negatives  # FPR <= 1%, in exact integer arithmetic
    recall_at_1pct = float(curve_tp[within].max()) / positives if within.any() else 0.0
    cost = cfg.cost_false_negative * fn + cfg.cost_false_positive * fp

    return {
        "roc_auc": _r(roc_auc_score(y, s)),
        "pr_auc": _r(average_precision_score(y, s)),
        "precision": _r(precision),
        "recall": _r(recall),
        "f1": _r(f1),
        "recall_at_1pct_fpr": _r(recall_at_1pct),
        "expected_cost_per_txn": _r(cost / n),
        "threshold": _r(threshold),
        "n": n,
        "positives": positives,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "fraud_rate": _r(positives / n),
    }


def card_precision_at_k(
    cards: np.ndarray, days: np.ndarray, y_true: np.ndarray, scores: np.ndarray, k: int
) -> tuple[float, list[dict[str, Any]]]:
    """Card Precision@k, as fraud teams measure it (Fraud Detection Handbook, chapter 4).

    Each day, a team investigates the ``k`` cards whose highest score that day is highest;
    CP@k of the day is the number of them with a fraudulent transaction that day, divided by
    ``k`` (as the handbook does: a day with fewer than ``k`` cards cannot reach 1). The result
    is the mean over the days, with the per-day values ``[{day, card_precision, cards}]`` for a
    plot. Ties in score go to the smaller card id, so the value is deterministic. Each day is
    judged on its own: unlike the handbook's ``remove_detected_compromised_cards`` option, a
    card caught on one day still counts on later days. The counting is
    ``fraud.monitoring.performance.card_precision_codes``, which the service runs on its audit
    log too: one definition of the metric.

    Args:
        cards: card (user) id per transaction.
        days: the transaction's day, any sortable value per row (a date string, or a
            ``datetime64[D]``, which is faster).
        y_true, scores: labels 0/1 and scores per transaction.
        k: cards investigated per day, >= 1.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    y, s = _check_inputs(y_true, scores)
    if not len(cards) == len(days) == len(y):
        raise ValueError(f"{len(cards)} cards and {len(days)} days for {len(y)} scores")
    import pandas as pd  # training-side only; its hash factorize is ~10x np.unique on strings

    day_values, day = np.unique(np.asarray(days), return_inverse=True)
    card = pd.factorize(np.asarray(cards, dtype=object), sort=True)[0]
    hits, n_cards = card_precision_codes(day, card, y, s, k)
    per_day = [
        {"day": str(d)[:10], "card_precision": _r(h / k), "cards": int(n)}
        for d, h, n in zip(day_values.tolist(), hits.tolist(), n_cards.tolist(), strict=True)
    ]
    return _r(float(np.mean(hits / k))), per_day


def recall_by_group(
    groups: np.ndarray, y_true: np.ndarray, scores: np.ndarray, threshold: float
) -> dict[str, float]:
    """Recall at ``threshold`` within each group of fraudulent rows (e.g. the generator's fraud
    pattern), by group name; rows whose group is empty (legitimate ones) are left out."""
    y, s = _check_inputs(y_true, scores)
    threshold = _check_threshold(threshold)
    names = np.asarray(groups, dtype=object)
    if len(names) != len(y):
        raise ValueError(f"{len(names)} groups for {len(y)} scores")
    out = {}
    for name in sorted({str(g) for g in names[y == 1] if g}):
        rows = (names == name) & (y == 1)
        out[name] = _r(float(np.mean(s[rows] >= threshold)))
    return out
