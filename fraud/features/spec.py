"""The feature spec: which features exist, in which order, and the ``features`` config.

Pure data and names, no numpy work: history columns per window, what a first-ever transaction
gets, the fixed model order, and ``FeatureConfig`` (conf/features/), which validates itself.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from fraud.data import schema

_LABEL_RE = re.compile(r"^[A-Za-z0-9_]+$")
UNKNOWN = "__unknown__"
USER_ID = schema.USER_ID

#: Default history windows, label -> seconds (the conf/features default).
DEFAULT_WINDOWS: dict[str, int] = {"1h": 3600, "24h": 86400, "7d": 604800}

#: Expanding (all prior history) columns, in feature order.
EXPANDING_COLUMNS: tuple[str, ...] = (
    "user_transaction_count",
    "user_avg_amount",
    "user_std_amount",
    "seconds_since_last_transaction",
)
#: Novelty flags: history column -> the raw column whose prior use it checks.
NOVELTY_COLUMNS: dict[str, str] = {
    "is_new_device": schema.DEVICE_ID,
    "is_new_location": "location",
    "is_new_merchant_category": "merchant_category",
}
#: Features derived from the amount and the user's history (need history).
DERIVED_COLUMNS: tuple[str, ...] = ("amount_zscore", "amount_to_avg_ratio")
#: Features of the transaction itself, before the categorical block.
BASE_COLUMNS: tuple[str, ...] = (
    schema.HOUR,
    schema.DAY,
    "hour_sin",
    "hour_cos",
    "is_night",
    "is_weekend",
    schema.AMOUNT,
    "log_amount",
)
#: The optional raw columns features may use (``schema.FEATURE_INPUTS``); a function given
#: ``inputs`` builds only the features of the inputs a table has (None: all of them).
Inputs = Sequence[str] | None


def present_inputs(columns: Iterable[str]) -> list[str]:
    """The feature inputs among ``columns``, in schema order."""
    have = set(columns)
    return [name for name in schema.FEATURE_INPUTS if name in have]


def _inputs(inputs: Inputs) -> list[str]:
    return list(schema.FEATURE_INPUTS) if inputs is None else list(inputs)


def novelty_columns(inputs: Inputs = None) -> dict[str, str]:
    """Novelty flags whose raw column is among ``inputs``: flag -> raw column."""
    have = set(_inputs(inputs))
    return {flag: raw for flag, raw in NOVELTY_COLUMNS.items() if raw in have}


def categorical_inputs(inputs: Inputs = None) -> list[str]:
    """The categorical columns among ``inputs``, in schema order."""
    have = set(_inputs(inputs))
    return [c for c in schema.CATEGORICAL_COLUMNS if c in have]


def record_fields(inputs: Inputs = None) -> list[str]:
    """Raw fields every record / frame passed to ``transform`` must carry."""
    return [schema.AMOUNT, schema.HOUR, schema.DAY, *categorical_inputs(inputs)]


def _default_windows() -> dict[str, int]:
    return dict(DEFAULT_WINDOWS)


def _sorted_windows(windows: Mapping[str, int]) -> list[tuple[str, int]]:
    """Validated windows as (label, seconds), shortest first, so feature order is stable."""
    items: list[tuple[str, int]] = []
    for label, seconds in dict(windows).items():
        if not isinstance(label, str) or not _LABEL_RE.match(label):
            raise ValueError(f"window label {label!r} must match [A-Za-z0-9_]+")
        if isinstance(seconds, bool) or not isinstance(seconds, int | np.integer) or seconds <= 0:
            raise ValueError(f"window {label!r} must be a positive integer of seconds")
        items.append((label, int(seconds)))
    durations = [s for _, s in items]
    if len(set(durations)) != len(durations):
        raise ValueError(f"windows repeat a duration: {dict(items)}")
    return sorted(items, key=lambda item: (item[1], item[0]))


def history_columns(windows: Mapping[str, int], inputs: Inputs = None) -> list[str]:
    """The columns ``compute_history`` returns for ``windows``, in feature order."""
    cols = list(EXPANDING_COLUMNS)
    for label, _ in _sorted_windows(windows):
        cols += [f"user_txn_count_{label}", f"user_amount_sum_{label}"]
    return cols + list(novelty_columns(inputs))


#: History columns for the default windows (use ``history_columns(windows)`` for others).
HISTORY_COLUMNS: tuple[str, ...] = tuple(history_columns(DEFAULT_WINDOWS))


def history_defaults(windows: Mapping[str, int], inputs: Inputs = None) -> dict[str, float]:
    """What a first-ever transaction gets: zero counts/sums, NaN statistics, new on all flags."""
    nan_columns = {"user_avg_amount", "user_std_amount", "seconds_since_last_transaction"}
    out: dict[str, float] = {}
    for name in history_columns(windows, inputs):
        if name in nan_columns:
            out[name] = math.nan
        elif name in NOVELTY_COLUMNS:
            out[name] = 1.0
        else:
            out[name] = 0.0
    return out


def categorical_columns(inputs: Inputs = None) -> list[str]:
    """``<col>_code`` and ``<col>_fraud_rate`` for each categorical input, in feature order."""
    cols: list[str] = []
    for col in categorical_inputs(inputs):
        cols += [f"{col}_code", f"{col}_fraud_rate"]
    return cols


def all_feature_names(
    windows: Mapping[str, int], use_history: bool = True, inputs: Inputs = None
) -> list[str]:
    """Every feature the code can build from ``inputs``, before ``exclude``, in model order."""
    names = [*BASE_COLUMNS, *categorical_columns(inputs)]
    if use_history:
        names += [*history_columns(windows, inputs), *DERIVED_COLUMNS]
    return names


@dataclass
class FeatureConfig:
    """The ``features`` config section (conf/features/default.yaml)."""

    windows: dict[str, int] = field(default_factory=_default_windows)
    zscore_std_floor: float = 1.0
    category_smoothing: float = 20.0
    min_category_count: int = 1
    use_history: bool = True
    exclude: list[str] = field(default_factory=list)

    def check(self) -> None:
        """Raise ValueError naming the problem: bad windows, bounds, or unknown ``exclude``."""
        _sorted_windows(self.windows)
        if not (math.isfinite(self.zscore_std_floor) and self.zscore_std_floor > 0):
            raise ValueError(f"zscore_std_floor must be > 0, got {self.zscore_std_floor}")
        if not (math.isfinite(self.category_smoothing) and self.category_smoothing >= 0):
            raise ValueError(f"category_smoothing must be >= 0, got {self.category_smoothing}")
        if self.min_category_count < 1:
            raise ValueError(f"min_category_count must be >= 1, got {self.min_category_count}")
        known = set(all_feature_names(self.windows, use_history=True))
        unknown = sorted(set(self.exclude) - known)
        if unknown:
            raise ValueError(f"exclude names unknown feature(s): {', '.join(unknown)}")
        if not self.feature_names():
            raise ValueError("exclude removes every feature")

    def feature_names(self, inputs: Inputs = None) -> list[str]:
        """The model's ordered feature names: those of ``inputs`` minus history (if off) and
        ``exclude``."""
        dropped = set(self.exclude)
        names = all_feature_names(self.windows, self.use_history, inputs)
        return [name for name in names if name not in dropped]
