"""Data drift: a report of current data against the reference profile, as a plain dict.

* effect sizes drive the verdict: the population stability index (PSI) on the reference bins
  (categories; values the reference never saw share one "other" bucket) and the
  Jensen-Shannon distance on the same bins;
* two-sample tests are supporting evidence: Kolmogorov-Smirnov (numeric, against the
  reference ECDF sketch) and chi-square (categorical), their p-values corrected (Holm or
  Bonferroni) for the number of features. With tens of thousands of rows they flag trivial
  shifts, so on their own they never raise an alert; with ``require_significance`` they veto
  an alert a small sample's noise would otherwise raise;
* below ``min_rows`` current rows the verdict is "insufficient_data", not a guess;
* the model's score distribution gets the same statistics and its own verdict, reported
  separately from the feature verdict.

Numpy only at import (scipy is imported where
needed, so a serving process pays for it only when a report is computed).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np

from fraud.monitoring.config import (
    CATEGORICAL,
    MISSING,
    NUMERIC,
    OTHER,
    SCORE,
    VERDICTS,
    AlertRule,
    DriftError,
)
from fraud.monitoring.profile import _categories, _counts, _numeric, check_profile
from fraud.monitoring.stats import (
    adjust_pvalues,
    chi_square,
    js_distance,
    ks_against_sketch,
    psi,
    severity,
    smoothed_shares,
)

if TYPE_CHECKING:
    pass


def _bin_rows(labels: list[str], ref: np.ndarray, cur: np.ndarray, smoothing: float) -> list:
    r = smoothed_shares(ref, smoothing)
    c = smoothed_shares(cur, smoothing)
    ref_n, cur_n = max(ref.sum(), 1), max(cur.sum(), 1)
    return [
        {
            "bin": label,
            "reference_share": float(ref[i] / ref_n),
            "current_share": float(cur[i] / cur_n),
            "psi_contribution": float((c[i] - r[i]) * math.log(c[i] / r[i])),
        }
        for i, label in enumerate(labels)
    ]


_EMPTY = {"psi": None, "js_distance": None, "statistic": None, "p_value": None}


def _numeric_labels(edges: list[float]) -> list[str]:
    bounds = ["-inf", *(f"{e:.6g}" for e in edges), "inf"]
    return [f"[{lo}, {hi})" for lo, hi in pairwise(bounds)]


def compare_numeric(profile: Mapping[str, Any], values: Any, rule: AlertRule, name: str) -> dict:
    """PSI and JS on the reference bins, KS against the ECDF sketch, for one numeric field."""
    x = _numeric(values, name)
    missing = len(np.asarray(values)) - len(x)
    edges = np.asarray(profile["edges"], dtype=np.float64)
    ref = np.asarray(profile["counts"], dtype=np.float64)
    cur = np.bincount(np.searchsorted(edges, x, side="right"), minlength=len(ref)).astype(float)
    out: dict[str, Any] = {"kind": NUMERIC, "n": len(x), "missing": int(missing)}
    if len(x) == 0:
        return out | _EMPTY | {"test": "ks"}
    stat, p = ks_against_sketch(profile, x)
    return out | {
        "psi": psi(ref, cur, rule.smoothing),
        "js_distance": js_distance(ref, cur, rule.smoothing),
        "test": "ks",
        "statistic": stat,
        "p_value": p,
        "mean": {"reference": profile.get("mean"), "current": float(x.mean())},
        "bins": _bin_rows(_numeric_labels(profile["edges"]), ref, cur, rule.smoothing),
    }


def compare_categorical(
    profile: Mapping[str, Any], values: Any, rule: AlertRule, name: str
) -> dict:
    """PSI and JS on the reference categories plus "other", and a chi-square test."""
    labels = _categories(values)
    counts = _counts(labels)
    known = list(profile["counts"])
    ref = np.array([*(profile["counts"][k] for k in known), 0], dtype=np.float64)
    unseen = {k: v for k, v in counts.items() if k not in profile["counts"]}
    cur = np.array([*(counts.get(k, 0) for k in known), sum(unseen.values())], dtype=float)
    out: dict[str, Any] = {
        "kind": CATEGORICAL,
        "n": len(labels),
        "missing": counts.get(MISSING, 0),
    }
    if len(labels) == 0:
        return out | _EMPTY | {"test": "chi2"}
    stat, p = chi_square(ref, cur)
    top_unseen = dict(sorted(unseen.items(), key=lambda kv: (-kv[1], kv[0]))[:10])
    return out | {
        "psi": psi(ref, cur, rule.smoothing),
        "js_distance": js_distance(ref, cur, rule.smoothing),
        "test": "chi2",
        "statistic": stat,
        "p_value": p,
        "unseen_categories": top_unseen,
        "unseen_share": float(cur[-1] / len(labels)),
        "bins": _bin_rows([*known, OTHER], ref, cur, rule.smoothing),
    }


def _compare(profile: Mapping[str, Any], values: Any, rule: AlertRule, name: str) -> dict:
    if profile["kind"] == NUMERIC:
        return compare_numeric(profile, values, rule, name)
    return compare_categorical(profile, values, rule, name)


def _judge(result: dict, p_adjusted: float | None, rule: AlertRule) -> None:
    """Add severity, significance and the per-field verdict to one comparison, in place."""
    value = result.get("psi")
    result["p_value_adjusted"] = p_adjusted
    result["significant"] = p_adjusted is not None and p_adjusted < rule.alpha
    result["severity"] = "none" if value is None else severity(value, rule)
    vetoed = rule.require_significance and not result["significant"]
    if result["severity"] == "none":
        result["verdict"] = "none"
    elif vetoed:
        result["verdict"] = "not_significant"
    else:
        result["verdict"] = f"drift ({result['severity']})"
    result["drifted"] = result["verdict"].startswith("drift")


def _rule_dict(rule: AlertRule) -> dict:
    return {
        "psi_major": rule.psi_major,
        "psi_moderate": rule.psi_moderate,
        "moderate_share": rule.moderate_share,
        "alpha": rule.alpha,
        "correction": rule.correction,
        "require_significance": rule.require_significance,
        "min_rows": rule.min_rows,
        "smoothing": rule.smoothing,
    }


def require_columns(profile: Mapping[str, Any], current: Any, source: str) -> None:
    """DriftError naming every profiled column ``current`` lacks."""
    missing = [name for name in profile["features"] if name not in current]
    if missing:
        raise DriftError(f"{source} has no column(s) {', '.join(map(repr, missing))}")


def drift_report(
    profile: Mapping[str, Any],
    current: Mapping[str, Any],
    rule: AlertRule,
    scores: Any | None = None,
    source: str = "current data",
) -> dict:
    """Compare ``current`` (columns by name) and optional ``scores`` with ``profile``.

    Returns a JSON-able dict: ``verdict`` ("none" | "drift" | "insufficient_data"),
    ``reasons``, per-feature results, and the separate ``score`` result.

    Raises:
        DriftError: ``current`` lacks a profiled column (all missing ones are named).
    """
    rule.check()
    check_profile(profile)
    require_columns(profile, current, source)
    features = profile["features"]
    n_rows = len(np.asarray(current[next(iter(features))]))
    results = {name: _compare(part, current[name], rule, name) for name, part in features.items()}
    tested = [name for name, r in results.items() if r["p_value"] is not None]
    corrected = adjust_pvalues([results[n]["p_value"] for n in tested], rule.correction)
    adjusted = dict(zip(tested, corrected, strict=True))
    for name, result in results.items():
        _judge(result, adjusted.get(name), rule)

    major = [n for n, r in results.items() if r["drifted"] and r["severity"] == "major"]
    moderate = [n for n, r in results.items() if r["drifted"]]
    share = len(moderate) / len(results)
    reasons: list[str] = []
    if n_rows < rule.min_rows:
        verdict = "insufficient_data"
        reasons.append(f"{n_rows} current rows < min_rows {rule.min_rows}: no verdict")
    else:
        for name in major:
            reasons.append(f"{name}: PSI {results[name]['psi']:.3f} >= {rule.psi_major}")
        if share >= rule.moderate_share:
            reasons.append(
                f"{len(moderate)}/{len(results)} features ({share:.0%}) have PSI >= "
                f"{rule.psi_moderate} (share threshold {rule.moderate_share:.0%})"
            )
        verdict = "drift" if reasons else "none"
        if not reasons:
            reasons.append("no feature reaches the alert rule")

    score_result: dict[str, Any] = {"available": scores is not None}
    if scores is not None:
        score_result |= compare_numeric(profile["score"], scores, rule, SCORE)
        _judge(score_result, score_result["p_value"], rule)
        if score_result["n"] < rule.min_rows:
            score_result["verdict"] = "insufficient_data"
            score_result["drifted"] = False
    return {
        "verdict": verdict,
        "reasons": reasons,
        "source": source,
        "rows": {"reference": int(profile.get("n_rows", 0)), "current": n_rows},
        "rule": _rule_dict(rule),
        "drifted_features": moderate,
        "model": dict(profile.get("model", {})),
        "features": results,
        "score": score_result,
    }


EXIT_CODES = {"none": 0, "insufficient_data": 0, "drift": 1}


def exit_code(report: Mapping[str, Any]) -> int:
    """0 for no drift (or too little data to say), 1 for drift."""
    verdict = report.get("verdict")
    if verdict not in EXIT_CODES:
        raise DriftError(f"report verdict {verdict!r} is not one of {VERDICTS}")
    return EXIT_CODES[verdict]


def columns_from_records(records: Sequence[Mapping[str, Any]], names: Iterable[str]) -> dict:
    """Column lists of ``names`` from log records; a column no record has is left out.

    With no records every column is an empty list (too little data, not a missing column).
    """
    out: dict[str, list] = {}
    for name in names:
        if not records or any(name in r for r in records):
            out[name] = [r.get(name) for r in records]
    return out
