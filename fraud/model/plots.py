"""Plot data of the test split: curves, confusion, calibration and the score distribution.

Pure functions of labels and scores, like ``metrics``; the evaluate stage writes what they
return as DVC plot data, and the HTML report (fraud/monitoring/report.py) draws the same
files. Calibration and the score distribution use fixed bin edges rather than quantiles: with
a 1-2 % fraud rate, equal-count bins put nine of ten points below a score of 0.001 and none
near the decision threshold, which is where calibration matters.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fraud.model.metrics import (
    LABELS,
    CalibrationConfig,
    _check_inputs,
    _check_threshold,
    _curve,
    _r,
)

#: Significant digits of the log-spaced grid edges (1e-4, 3.16e-4, 1e-3, ...).
_GRID_DIGITS = 3


def _g(x: float) -> float:
    """``x`` to 6 significant digits: bin values span decades (1e-8 to 1), so a fixed number
    of decimals (``_r``) would write the low ones as 0."""
    return float(f"{float(x):.6g}")


def log_edges(min_edge: float, per_decade: int) -> list[float]:
    """Edges ``0, min_edge * 10**(k / per_decade) (< 1) ..., 1``, grid edges rounded to three
    significant digits: log-spaced bins over the probabilities, the first one ``[0, min_edge)``.
    """
    if not (math.isfinite(min_edge) and 0 < min_edge < 1):
        raise ValueError(f"min_edge must be in (0, 1), got {min_edge}")
    if per_decade < 1:
        raise ValueError(f"per_decade must be >= 1, got {per_decade}")
    n = math.ceil(round(-math.log10(min_edge) * per_decade, 9))  # grid points below 1
    grid = [float(f"{min_edge * 10 ** (k / per_decade):.{_GRID_DIGITS}g}") for k in range(n)]
    return [0.0, *(g for g in grid if g < 1), 1.0]


def _far_from(edges: Sequence[float], anchors: Sequence[float], log_gap: float) -> list[float]:
    """The ``edges`` at least ``log_gap`` (in log10) away from every anchor."""
    return [
        e for e in edges if all(abs(math.log10(e) - math.log10(a)) >= log_gap for a in anchors)
    ]


def calibration_edges(
    threshold: float, bands: Sequence[float], cfg: CalibrationConfig
) -> list[float]:
    """Bin edges for the reliability curve, ``0`` to ``1``, fine where decisions are made.

    Three kinds of inner edge, each kept only where it leaves no sliver of a bin:

    * the decision ``threshold`` and the risk ``bands`` (serving's medium and high), always;
    * ``threshold * sqrt(2)**±i`` for ``i = 1..cfg.threshold_steps``, except within half a
      step (a factor 2**0.25) of a threshold or band edge;
    * the log-spaced grid of ``cfg`` (``log_edges``), except within half a grid step (in
      log10) of any edge above.

    Edges outside ``(0, 1)`` are dropped. The threshold is an exact edge, so no bin mixes
    flagged and unflagged rows: the bin starting at the threshold holds only scores
    ``>= threshold``.
    """
    cfg.check()
    threshold = _check_threshold(threshold)
    inside = [e for e in [threshold, *map(float, bands)] if 0 < e < 1]
    steps = [i for i in range(-cfg.threshold_steps, cfg.threshold_steps + 1) if i]
    around = [threshold * 2.0 ** (i / 2) for i in steps]  # i = ±2: exactly half, twice
    anchors = inside + _far_from([a for a in around if 0 < a < 1], inside, math.log10(2) / 4)
    grid = log_edges(cfg.min_edge, cfg.per_decade)[1:-1]
    grid = _far_from(grid, anchors, 0.5 / cfg.per_decade)
    return [0.0, *sorted(set(grid) | set(anchors)), 1.0]


def _bin_index(scores: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Bin of each score: ``i`` for ``edges[i] <= s < edges[i + 1]``; the first and last bins are
    open (below 0 and from the last inner edge up, 1 included)."""
    inner = np.asarray(edges, dtype=np.float64)[1:-1]
    if len(edges) < 2 or np.any(np.diff(np.asarray(edges, dtype=np.float64)) <= 0):
        raise ValueError(f"bin edges must be at least two increasing values, got {list(edges)}")
    return np.searchsorted(inner, scores, side="right")


def calibration(
    y_true: np.ndarray, scores: np.ndarray, edges: Sequence[float]
) -> list[dict[str, Any]]:
    """The reliability curve on fixed ``edges``: one row per non-empty bin, in score order,
    ``{bin, lower, upper, mean_predicted, fraction_positive, count, positives}`` (``bin``
    indexes ``edges``, so an empty bin leaves a gap)."""
    y, s = _check_inputs(y_true, scores)
    index = _bin_index(s, edges)
    n_bins = len(edges) - 1
    count = np.bincount(index, minlength=n_bins)
    positives = np.bincount(index, weights=y, minlength=n_bins)
    total = np.bincount(index, weights=s, minlength=n_bins)
    return [
        {
            "bin": b,
            "lower": _g(edges[b]),
            "upper": _g(edges[b + 1]),
            "mean_predicted": _g(total[b] / count[b]),
            "fraction_positive": _g(positives[b] / count[b]),
            "count": int(count[b]),
            "positives": int(positives[b]),
        }
        for b in range(n_bins)
        if count[b]
    ]


def expected_calibration_error(
    y_true: np.ndarray, scores: np.ndarray, edges: Sequence[float]
) -> float:
    """Expected calibration error on the reliability curve's bins (``calibration``): the
    count-weighted mean of ``|mean_predicted - fraction_positive|``, i.e. the sum over bins of
    ``|sum of scores - frauds|`` divided by the rows; 0 for a perfectly calibrated model. The
    estimate of precision and recall from scores alone (CBPE) holds only when it is small."""
    y, s = _check_inputs(y_true, scores)
    index = _bin_index(s, edges)
    n_bins = len(edges) - 1
    gap = np.bincount(index, weights=s, minlength=n_bins) - np.bincount(
        index, weights=y, minlength=n_bins
    )
    return _r(np.abs(gap).sum() / len(y))


def score_histogram(
    y_true: np.ndarray, scores: np.ndarray, edges: Sequence[float]
) -> list[dict[str, Any]]:
    """Rows per class in each bin of ``edges`` (empty bins included, for a histogram):
    ``{bin, lower, upper, legit, fraud}``."""
    y, s = _check_inputs(y_true, scores)
    index = _bin_index(s, edges)
    n_bins = len(edges) - 1
    fraud = np.bincount(index[y == 1], minlength=n_bins)
    legit = np.bincount(index[y == 0], minlength=n_bins)
    return [
        {
            "bin": b,
            "lower": _g(edges[b]),
            "upper": _g(edges[b + 1]),
            LABELS[0]: int(legit[b]),
            LABELS[1]: int(fraud[b]),
        }
        for b in range(n_bins)
    ]


def _along_curve(x: np.ndarray, y: np.ndarray, max_points: int) -> np.ndarray:
    """Indices of at most ``max_points`` points spread evenly along the curve's length
    (|dx| + |dy|), first and last always kept: the knee of a good ROC curve, where nearly all
    of its length is, keeps its points, unlike points taken evenly by row."""
    if len(x) <= max_points:
        return np.arange(len(x))
    length = np.r_[0.0, np.cumsum(np.abs(np.diff(x)) + np.abs(np.diff(y)))]
    targets = np.linspace(0.0, length[-1], max_points)
    picked = np.searchsorted(length, targets, side="left").clip(0, len(x) - 1)
    return np.unique(np.r_[0, picked, len(x) - 1])


def plot_data(
    y_true: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    feature_importance: Mapping[str, float],
    edges: Sequence[float],
    max_points: int = 200,
) -> dict[str, list[dict[str, Any]]]:
    """JSON-ready rows for DVC plots and the report.

    Keys:
        ``roc``: {fpr, tpr, threshold} from (0, 0) to (1, 1), thresholds descending.
        ``pr``: {recall, precision, threshold}, one row per distinct score, recall ascending.
        ``confusion``: 4 rows {actual, predicted, count} with labels "legit"/"fraud".
        ``calibration``: the non-empty bins of ``edges`` (see :func:`calibration`).
        ``feature_importance``: {feature, importance}, descending (ties by name).
    ``roc`` and ``pr`` keep at most ``max_points`` rows, spread evenly along each curve and
    keeping both endpoints. The (0, 0) ROC point's infinite threshold is written as
    ``max(1.0, max score)``. Every value is a plain, finite Python float/int/str.
    """
    if max_points < 2:
        raise ValueError(f"max_points must be >= 2, got {max_points}")
    y, s = _check_inputs(y_true, scores)
    threshold = _check_threshold(threshold)
    positives = int(y.sum())
    negatives = len(y) - positives

    thresholds, tp, fp = _curve(y, s)
    top = max(1.0, float(thresholds[0]))
    roc_thr = np.r_[top, thresholds]
    tpr = np.r_[0, tp] / positives
    fpr = np.r_[0, fp] / negatives
    roc = [
        {"fpr": _g(fpr[i]), "tpr": _r(tpr[i]), "threshold": _r(roc_thr[i])}
        for i in _along_curve(fpr, tpr, max_points)
    ]
    precision = tp / (tp + fp)
    recall = tp / positives
    pr = [
        {"recall": _r(recall[i]), "precision": _r(precision[i]), "threshold": _r(thresholds[i])}
        for i in _along_curve(recall, precision, max_points)
    ]

    predicted = s >= threshold
    confusion = [
        {
            "actual": LABELS[actual],
            "predicted": LABELS[int(pred)],
            "count": int(np.sum((y == actual) & (predicted == pred))),
        }
        for actual in (0, 1)
        for pred in (False, True)
    ]

    importance = []
    for name, value in feature_importance.items():
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"feature_importance[{name!r}] must be finite, got {value}")
        importance.append({"feature": str(name), "importance": _r(value)})
    importance.sort(key=lambda row: (-row["importance"], row["feature"]))

    return {
        "roc": roc,
        "pr": pr,
        "confusion": confusion,
        "calibration": calibration(y, s, edges),
        "feature_importance": importance,
    }
