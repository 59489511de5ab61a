"""Drift statistics: PSI, Jensen-Shannon distance, KS against a sketch, chi-square, p-value
corrections, and the severity of an effect size under an alert rule."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fraud.monitoring.config import CORRECTIONS, AlertRule, DriftError

if TYPE_CHECKING:
    pass


def smoothed_shares(counts: Sequence[float], smoothing: float) -> np.ndarray:
    """``(count + smoothing) / (n + smoothing * bins)``: no empty bin, so logs stay finite."""
    c = np.asarray(counts, dtype=np.float64)
    return (c + smoothing) / (c.sum() + smoothing * len(c))


def psi(reference: Sequence[float], current: Sequence[float], smoothing: float = 0.5) -> float:
    """Population stability index ``sum((c - r) * ln(c / r))`` of two count vectors.

    Both are smoothed with ``smoothing`` pseudo-counts per bin (``smoothed_shares``).
    """
    if len(reference) != len(current) or len(reference) == 0:
        raise DriftError("psi needs two non-empty count vectors of the same length")
    r = smoothed_shares(reference, smoothing)
    c = smoothed_shares(current, smoothing)
    return float(np.sum((c - r) * np.log(c / r)))


def js_distance(
    reference: Sequence[float], current: Sequence[float], smoothing: float = 0.5
) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) of the smoothed shares of two count vectors."""
    from scipy.spatial.distance import jensenshannon

    r = smoothed_shares(reference, smoothing)
    c = smoothed_shares(current, smoothing)
    return float(jensenshannon(r, c, base=2.0))


def ks_against_sketch(profile: Mapping[str, Any], values: np.ndarray) -> tuple[float, float]:
    """Two-sample KS statistic and asymptotic p-value against a profile's ECDF sketch.

    The statistic is evaluated at the sketch's points, where the reference ECDF is exact, so it
    is a lower bound of the full two-sample statistic within one sketch step. The p-value is
    the same asymptotic two-sided formula scipy's ``ks_2samp(method="asymp")`` uses, with the
    effective size ``n * m / (n + m)``.
    """
    from scipy.stats import kstwo

    x = np.sort(values)
    points = np.asarray(profile["ecdf_x"], dtype=np.float64)
    f_ref = np.asarray(profile["ecdf_p"], dtype=np.float64)
    f_cur = np.searchsorted(x, points, side="right") / len(x)
    d = float(np.max(np.abs(f_cur - f_ref)))
    n, m = sorted([float(profile["n"]), float(len(x))], reverse=True)
    return d, float(kstwo.sf(d, np.round(n * m / (n + m))))


def chi_square(reference: Sequence[float], current: Sequence[float]) -> tuple[float, float]:
    """Chi-square test of homogeneity of two count vectors (bins empty in both dropped)."""
    from scipy.stats import chi2_contingency

    table = np.array([reference, current], dtype=np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 0.0, 1.0
    result = chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue)


def adjust_pvalues(pvalues: Sequence[float], method: str = "holm") -> list[float]:
    """Family-wise corrected p-values: Holm's step-down or Bonferroni."""
    p = np.asarray(pvalues, dtype=np.float64)
    m = len(p)
    if method == "bonferroni":
        return np.minimum(p * m, 1.0).tolist()
    if method != "holm":
        raise DriftError(f"unknown correction {method!r}; use one of {CORRECTIONS}")
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate(p[order] * (m - np.arange(m)))
    out = np.empty(m)
    out[order] = np.minimum(stepped, 1.0)
    return out.tolist()


def severity(value: float, rule: AlertRule) -> str:
    """'major' at or above ``psi_major``, 'moderate' at or above ``psi_moderate``, else 'none'."""
    if value >= rule.psi_major:
        return "major"
    if value >= rule.psi_moderate:
        return "moderate"
    return "none"
