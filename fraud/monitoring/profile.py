"""The reference profile fitted at training time: bin counts, ECDF sketch, category counts.

``build_profile`` summarises the training split's raw request fields (reference-quantile bin
counts and a quantile sketch of the ECDF for numeric fields, category counts for categorical
ones) and the candidate model's validation scores; ``check_profile`` validates one read back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from fraud.monitoring.config import (
    CATEGORICAL,
    MISSING,
    NUMERIC,
    PROFILE_FORMAT,
    SCORE,
    DriftError,
    ProfileConfig,
)

if TYPE_CHECKING:
    pass


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
