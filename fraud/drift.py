"""Data drift: a small reference profile fitted at training time, and a report against it.

``build_profile`` summarises the training split's raw request fields (reference-quantile bin
counts and a quantile sketch of the ECDF for numeric fields, category counts for categorical
ones) and the candidate model's validation scores. ``drift_report`` compares current data
with that profile and returns a plain dict:

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

Also here: the drift scenarios applied to a synthetic "production" batch, the generator
config of that batch, and the Markdown rendering of a report. Pure functions; numpy only at
import (scipy and pandas are imported where needed, so a serving process pays for them only
when a report is computed).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np

from fraud import schema

if TYPE_CHECKING:
    import pandas as pd

    from fraud.generate import DataConfig

PROFILE_FORMAT = 1
OTHER = "__other__"
MISSING = "__missing__"
NUMERIC = "numeric"
CATEGORICAL = "categorical"
SCORE = "fraud_probability"
VERDICTS = ("none", "drift", "insufficient_data")
SEVERITIES = ("none", "moderate", "major")
CORRECTIONS = ("holm", "bonferroni")


class DriftError(ValueError):
    """Drift cannot be computed: a missing column, a bad value or a malformed profile."""


# --------------------------------------------------------------------------- configuration


def _check_share(value: float, key: str) -> None:
    if not (math.isfinite(value) and 0 <= value <= 1):
        raise ValueError(f"{key} must be in [0, 1], got {value}")


@dataclass
class ProfileConfig:
    """The ``drift_profile`` section: what the reference profile records and how finely.

    Read by the train stage only, so tuning the alert rule never retrains the model.
    """

    numeric: list[str] = field(default_factory=lambda: [schema.AMOUNT])
    categorical: list[str] = field(
        default_factory=lambda: [
            "merchant_category",
            "transaction_type",
            "location",
            "device_type",
            schema.DAY,
            schema.HOUR,
        ]
    )
    bins: int = 10
    ecdf_points: int = 1000

    def check(self) -> None:
        """Raise ValueError naming the field when a value is nonsense."""
        names = [*self.numeric, *self.categorical]
        if not names:
            raise ValueError("numeric and categorical must not both be empty")
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"fields listed twice: {', '.join(repeated)}")
        if SCORE in names:
            raise ValueError(f"{SCORE} is profiled separately; do not list it as a feature")
        if not 2 <= self.bins <= 100:
            raise ValueError(f"bins must be in 2..100, got {self.bins}")
        if not 10 <= self.ecdf_points <= 10_000:
            raise ValueError(f"ecdf_points must be in 10..10000, got {self.ecdf_points}")


@dataclass
class AlertRule:
    """When a comparison is called drift. PSI thresholds are the usual 0.1 / 0.25 bands."""

    psi_major: float = 0.25
    psi_moderate: float = 0.10
    moderate_share: float = 0.25
    alpha: float = 0.01
    correction: str = "holm"
    require_significance: bool = True
    min_rows: int = 1000
    smoothing: float = 0.5

    def check(self) -> None:
        """Raise ValueError naming the field when a value is nonsense."""
        if not (math.isfinite(self.psi_moderate) and self.psi_moderate > 0):
            raise ValueError(f"rule.psi_moderate must be > 0, got {self.psi_moderate}")
        if not (math.isfinite(self.psi_major) and self.psi_major >= self.psi_moderate):
            raise ValueError(
                f"rule.psi_major must be >= rule.psi_moderate ({self.psi_moderate}), "
                f"got {self.psi_major}"
            )
        _check_share(self.moderate_share, "rule.moderate_share")
        if self.moderate_share == 0:
            raise ValueError("rule.moderate_share must be > 0")
        if not 0 < self.alpha < 1:
            raise ValueError(f"rule.alpha must be in (0, 1), got {self.alpha}")
        if self.correction not in CORRECTIONS:
            raise ValueError(
                f"rule.correction must be one of {CORRECTIONS}, got {self.correction}"
            )
        if self.min_rows < 1:
            raise ValueError(f"rule.min_rows must be >= 1, got {self.min_rows}")
        if not (math.isfinite(self.smoothing) and self.smoothing > 0):
            raise ValueError(f"rule.smoothing must be > 0, got {self.smoothing}")


@dataclass
class ScenarioConfig:
    """A drift applied to a synthetic production batch (all zero/one: no drift)."""

    amount_multiplier: float = 1.0
    night_share: float = 0.0
    night_hours: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    online_share: float = 0.0
    new_category_share: float = 0.0
    new_category: str = "buy_now_pay_later"

    def check(self, prefix: str = "scenario") -> None:
        """Raise ValueError naming the field when a value is nonsense."""
        m = self.amount_multiplier
        if not (math.isfinite(m) and 0.01 <= m <= 100):
            raise ValueError(f"{prefix}.amount_multiplier must be in [0.01, 100], got {m}")
        for name in ("night_share", "online_share", "new_category_share"):
            _check_share(getattr(self, name), f"{prefix}.{name}")
        bad = [h for h in self.night_hours if not 0 <= h <= 23]
        if not self.night_hours or bad:
            raise ValueError(f"{prefix}.night_hours must be a non-empty list in 0..23")
        if not self.new_category.strip():
            raise ValueError(f"{prefix}.new_category must not be empty")


@dataclass
class SyntheticConfig:
    """The synthetic production batch: its size and seed (different from the training seed)."""

    rows: int = 50_000
    seed: int = 2026

    def check(self) -> None:
        """Raise ValueError naming the field when a value is nonsense."""
        if self.rows < 1:
            raise ValueError(f"synthetic.rows must be >= 1, got {self.rows}")


@dataclass
class DriftConfig:
    """The ``drift`` section: the alert rule, the synthetic batch and the named scenarios."""

    rule: AlertRule = field(default_factory=AlertRule)
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    scenarios: dict[str, ScenarioConfig] = field(
        default_factory=lambda: {"none": ScenarioConfig()}
    )

    def check(self) -> None:
        """Check the rule, the batch and every scenario."""
        self.rule.check()
        self.synthetic.check()
        if not self.scenarios:
            raise ValueError("scenarios must name at least one scenario")
        for name, scenario in self.scenarios.items():
            scenario.check(f"scenarios.{name}")


# --------------------------------------------------------------------------- value handling


def _numeric(values: Any, name: str) -> np.ndarray:
    """Finite float64 values of a numeric column (missing ones dropped), or DriftError."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise DriftError(f"column {name!r} must be numeric") from None
    return arr[np.isfinite(arr)]


def _categories(values: Any) -> np.ndarray:
    """Category labels as strings: integers (hour, day) as "7", missing as ``MISSING``."""
    arr = np.asarray(values)
    if arr.dtype.kind in "iub":
        return arr.astype(np.int64).astype(str)
    if arr.dtype.kind == "f":
        finite = np.isfinite(arr)
        if np.all(arr[finite] == np.round(arr[finite])):
            out = np.full(arr.shape, MISSING, dtype=object)
            out[finite] = arr[finite].astype(np.int64).astype(str)
            return out.astype(str)
        return np.where(finite, arr.astype(str), MISSING)
    out = np.array(
        [MISSING if v is None or (isinstance(v, float) and v != v) else str(v) for v in arr],
        dtype=object,
    )
    return out.astype(str) if len(out) else np.array([], dtype=str)


def _counts(labels: np.ndarray) -> dict[str, int]:
    uniques, counts = np.unique(labels, return_counts=True)
    return {str(u): int(c) for u, c in zip(uniques, counts, strict=True)}


# --------------------------------------------------------------------------- reference profile


def numeric_profile(values: Any, bins: int, ecdf_points: int, name: str = "value") -> dict:
    """Reference-quantile bin edges and counts, an ECDF sketch, and summary statistics.

    Inner edges are the reference's ``1/bins ... (bins-1)/bins`` quantiles (repeated values
    collapsed); the outer bins are open, so every current value falls in some bin. The ECDF
    sketch holds ``F(x)`` exactly at ``ecdf_points + 1`` reference quantiles, which is what a
    KS statistic needs, at a fixed size whatever the training set's.
    """
    x = np.sort(_numeric(values, name))
    if len(x) == 0:
        raise DriftError(f"column {name!r} has no finite values to profile")
    edges = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1]))
    counts = np.bincount(np.searchsorted(edges, x, side="right"), minlength=len(edges) + 1)
    ecdf_x = np.unique(np.quantile(x, np.linspace(0, 1, ecdf_points + 1)))
    ecdf_p = np.searchsorted(x, ecdf_x, side="right") / len(x)
    return {
        "kind": NUMERIC,
        "n": len(x),
        "edges": edges.tolist(),
        "counts": counts.tolist(),
        "ecdf_x": ecdf_x.tolist(),
        "ecdf_p": ecdf_p.tolist(),
        "mean": float(x.mean()),
        "std": float(x.std()),
        "min": float(x[0]),
        "max": float(x[-1]),
    }


def categorical_profile(values: Any) -> dict:
    """Category counts (labels as strings), most frequent first."""
    counts = _counts(_categories(values))
    ordered = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return {"kind": CATEGORICAL, "n": int(sum(counts.values())), "counts": ordered}


def _column(frame: Mapping[str, Any], name: str, what: str) -> Any:
    if name not in frame:
        raise DriftError(f"{what} has no column {name!r}")
    return frame[name]


def build_profile(
    frame: Mapping[str, Any],
    scores: Any,
    cfg: ProfileConfig,
    model: Mapping[str, Any],
) -> dict:
    """The reference profile of ``frame`` (training rows) and ``scores`` (validation scores).

    Args:
        frame: the raw columns (a DataFrame or a mapping of column -> values).
        scores: the candidate model's fraud probabilities on the validation split.
        cfg: which fields, how many bins and ECDF points.
        model: facts that tie the profile to one model (sha256, kind, env).
    """
    cfg.check()
    missing = [n for n in (*cfg.numeric, *cfg.categorical) if n not in frame]
    if missing:
        raise DriftError(f"reference data has no column(s) {', '.join(map(repr, missing))}")
    features: dict[str, dict] = {}
    for name in cfg.numeric:
        features[name] = numeric_profile(frame[name], cfg.bins, cfg.ecdf_points, name)
    for name in cfg.categorical:
        features[name] = categorical_profile(frame[name])
    return {
        "format": PROFILE_FORMAT,
        "model": dict(model),
        "n_rows": len(np.asarray(frame[next(iter(features))])),
        "features": features,
        "score": numeric_profile(scores, cfg.bins, cfg.ecdf_points, SCORE),
    }


def check_profile(profile: Any, where: str = "reference profile") -> dict:
    """Return ``profile`` if it is a well-formed profile, else DriftError naming the key."""
    if not isinstance(profile, dict):
        raise DriftError(f"{where} must be a JSON object")
    if profile.get("format") != PROFILE_FORMAT:
        raise DriftError(
            f"{where}: format {profile.get('format')!r} is not {PROFILE_FORMAT}; "
            "rebuild it with the train stage"
        )
    features = profile.get("features")
    if not isinstance(features, dict) or not features:
        raise DriftError(f"{where}: 'features' must be a non-empty object")
    parts = {f"features.{k}": v for k, v in features.items()}
    parts["score"] = profile.get("score")
    for key, part in parts.items():
        if not isinstance(part, dict) or part.get("kind") not in (NUMERIC, CATEGORICAL):
            raise DriftError(f"{where}: '{key}' must be an object with kind numeric/categorical")
        required = ("n", "edges", "counts", "ecdf_x", "ecdf_p")
        needed = required if part["kind"] == NUMERIC else ("n", "counts")
        absent = [k for k in needed if k not in part]
        if absent:
            raise DriftError(f"{where}: '{key}' lacks {', '.join(absent)}")
        if part["kind"] == NUMERIC and len(part["counts"]) != len(part["edges"]) + 1:
            raise DriftError(f"{where}: '{key}.counts' must have one more entry than edges")
    return profile


# --------------------------------------------------------------------------- statistics


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


# --------------------------------------------------------------------------- comparison


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


# --------------------------------------------------------------------------- prediction log


def parse_log_lines(lines: Iterable[bytes]) -> tuple[list[dict], int]:
    """Records of a JSON-lines prediction log, and how many lines were skipped.

    A line without its newline (a writer mid-flush) or that is not a JSON object is skipped,
    never fatal: the log is monitoring data, not a ledger.
    """
    records: list[dict] = []
    skipped = 0
    for line in lines:
        if not line.endswith(b"\n"):
            skipped += bool(line.strip())
            continue
        try:
            record = json.loads(line)
        except ValueError:
            skipped += 1
            continue
        if isinstance(record, dict):
            records.append(record)
        else:
            skipped += 1
    return records, skipped


def columns_from_records(records: Sequence[Mapping[str, Any]], names: Iterable[str]) -> dict:
    """Column lists of ``names`` from log records; a column no record has is left out.

    With no records every column is an empty list (too little data, not a missing column).
    """
    out: dict[str, list] = {}
    for name in names:
        if not records or any(name in r for r in records):
            out[name] = [r.get(name) for r in records]
    return out


# --------------------------------------------------------------------------- synthetic batch


def production_config(data: DataConfig, rows: int) -> DataConfig:
    """Generator config of a "production" batch of ``rows`` rows after the training period.

    Same span and per-user activity as training (users scaled with rows), starting the day
    after the training data ends, so history features and scores look like serving's.
    """
    from fraud.generate import start_date

    users = max(1, round(data.n_users * rows / data.n_transactions))
    start = start_date(data.start) + timedelta(days=data.days)
    return replace(
        data,
        source="synthetic",
        path=None,
        n_transactions=rows,
        n_users=users,
        start=start.isoformat(),
    )


def apply_scenario(
    frame: pd.DataFrame, scenario: ScenarioConfig, rng: np.random.Generator
) -> pd.DataFrame:
    """A copy of a generated batch with ``scenario``'s drift applied.

    Amounts are multiplied (in cents, at least 0.01); a ``night_share`` of rows moves to a
    random night hour of the same day (timestamp and hour_of_day together); an
    ``online_share`` of rows becomes online transactions (card-present "pos" devices become
    "mobile"); a ``new_category_share`` of rows gets a merchant category training never saw.
    """
    import pandas as pd

    scenario.check()
    out = frame.copy()
    n = len(out)
    amount = np.round(
        out[schema.AMOUNT].to_numpy(dtype=np.float64) * scenario.amount_multiplier, 2
    )
    out[schema.AMOUNT] = np.maximum(amount, 0.01)

    night = rng.random(n) < scenario.night_share
    hours = np.asarray(scenario.night_hours, dtype=np.int64)[
        rng.integers(0, len(scenario.night_hours), n)
    ]
    old = out[schema.HOUR].to_numpy(dtype=np.int64)
    new = np.where(night, hours, old)
    out[schema.HOUR] = new
    if schema.TIMESTAMP in out:
        out[schema.TIMESTAMP] = out[schema.TIMESTAMP] + pd.to_timedelta((new - old) * 3600, "s")

    online = rng.random(n) < scenario.online_share
    out.loc[online, "transaction_type"] = "online"
    out.loc[online & (out["device_type"] == "pos").to_numpy(), "device_type"] = "mobile"

    novel = rng.random(n) < scenario.new_category_share
    out.loc[novel, "merchant_category"] = scenario.new_category
    if schema.TIMESTAMP in out:
        out = out.sort_values(schema.TIMESTAMP, kind="stable", ignore_index=True)
    return out


# --------------------------------------------------------------------------- markdown


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != 0 and abs(value) < 10**-digits:
            return f"{value:.2e}"
        return f"{value:.{digits}f}"
    return str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: Mapping[str, Any], title: str = "Drift report") -> str:
    """The report as Markdown: verdict, reasons, one summary table, one table per feature."""
    rule = report["rule"]
    rows = report["rows"]
    lines = [
        f"# {title}",
        "",
        f"**Verdict: {report['verdict']}**, {rows['current']:,} current rows vs "
        f"{rows['reference']:,} reference rows ({_cell(str(report.get('source', '')))}).",
        "",
        *(f"- {_cell(r)}" for r in report["reasons"]),
        "",
        f"Rule: drift when any feature's PSI >= {rule['psi_major']}, or when at least "
        f"{rule['moderate_share']:.0%} of features have PSI >= {rule['psi_moderate']}"
        + (
            f"; a feature counts only if its {rule['correction']}-corrected p-value < "
            f"{rule['alpha']}"
            if rule["require_significance"]
            else ""
        )
        + f"; fewer than {rule['min_rows']} rows: insufficient data.",
        "",
        "| feature | kind | PSI | threshold (moderate / major) | JS distance | test | "
        "statistic | p (corrected) | verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    parts = [*report["features"].items()]
    if report["score"].get("available"):
        parts.append((f"{SCORE} (model score, separate)", report["score"]))
    for name, r in parts:
        lines.append(
            f"| {_cell(name)} | {r['kind']} | {_fmt(r.get('psi'))} | "
            f"{rule['psi_moderate']} / {rule['psi_major']} | {_fmt(r.get('js_distance'))} | "
            f"{r.get('test', '')} | {_fmt(r.get('statistic'))} | "
            f"{_fmt(r.get('p_value_adjusted'))} | {r.get('verdict', '')} |"
        )
    if not report["score"].get("available"):
        lines += ["", "Model score: not available for this data."]
    for name, r in parts:
        lines += ["", f"## {_cell(name)}", ""]
        unseen = r.get("unseen_categories")
        if unseen:
            listed = ", ".join(f"{_cell(k)} ({v})" for k, v in unseen.items())
            lines += [f"Unseen categories ({r['unseen_share']:.2%} of rows): {listed}", ""]
        lines += [
            f"PSI {_fmt(r.get('psi'))} (threshold {rule['psi_moderate']} / "
            f"{rule['psi_major']}), verdict **{r.get('verdict', '')}**.",
            "",
            "| bin | reference share | current share | PSI contribution |",
            "|---|---|---|---|",
        ]
        for b in r.get("bins", []):
            lines.append(
                f"| {_cell(b['bin'])} | {b['reference_share']:.4f} | {b['current_share']:.4f} "
                f"| {_fmt(b['psi_contribution'])} |"
            )
    return "\n".join(lines) + "\n"
