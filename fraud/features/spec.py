"""The feature spec: which features exist, in which order, and the ``features`` config.

Pure data and names, no numpy work. Each entity (``features.entities``: the card, the merchant,
the device) gets point-in-time history per window (transaction count, amount sum and mean) and
a label-delayed fraud risk per risk window; the user also gets all-history statistics, novelty
flags and the amount z-score. ``feature_plan`` says how each history-based feature comes from
the history columns, once for both transform paths.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from fraud.data import schema

_LABEL_RE = re.compile(r"^[A-Za-z0-9]+$")  # no "_": feature names end in _<label>
#: Longest window or label delay (ten years): far past any use, far from int64 milliseconds.
MAX_SECONDS = 10 * 365 * 86400
UNKNOWN = "__unknown__"
USER_ID = schema.USER_ID

#: Window aggregates an entity may have: transaction count, amount sum, amount mean.
AGGREGATES: tuple[str, ...] = ("count", "sum", "mean")
#: The user's all-history columns, in feature order.
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
#: Features derived from the amount and the user's all-history statistics.
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


def sorted_windows(windows: Mapping[str, int], what: str = "window") -> list[tuple[str, int]]:
    """Validated windows as (label, seconds), shortest first, so feature order is stable."""
    items: list[tuple[str, int]] = []
    for label, seconds in dict(windows).items():
        if not isinstance(label, str) or not _LABEL_RE.match(label):
            raise ValueError(f"{what} label {label!r} must match [A-Za-z0-9]+")
        if isinstance(seconds, bool) or not isinstance(seconds, int | np.integer) or seconds <= 0:
            raise ValueError(f"{what} {label!r} must be a positive integer of seconds")
        if seconds > MAX_SECONDS:
            raise ValueError(f"{what} {label!r} must be at most {MAX_SECONDS} s (ten years)")
        items.append((label, int(seconds)))
    durations = [s for _, s in items]
    if len(set(durations)) != len(durations):
        raise ValueError(f"{what}s repeat a duration: {dict(items)}")
    return sorted(items, key=lambda item: (item[1], item[0]))


def entity_prefix(column: str) -> str:
    """The feature-name prefix of an entity column: user_id -> user, merchant_id -> merchant."""
    return column.removesuffix("_id")


def window_column(prefix: str, kind: str, label: str) -> str:
    """The one naming of an entity's per-window columns: ``<prefix>_<kind>_<label>``, kind
    ``txn_count`` / ``amount_sum`` (history), ``labelled_count`` / ``fraud_count`` (risk
    history), ``amount_mean`` / ``fraud_risk`` (features), e.g. merchant_fraud_count_7d."""
    return f"{prefix}_{kind}_{label}"


@dataclass
class EntityConfig:
    """One entity's point-in-time history (``features.entities.<id column>``).

    Per window: the entity's earlier transactions' count, amount sum and amount mean (the
    ``aggregates`` chosen). Per risk window: the smoothed share labelled fraud among the
    transactions in [t - label delay - window, t - label delay), whose labels are known at t.
    """

    windows: dict[str, int] = field(default_factory=dict)
    aggregates: list[str] = field(default_factory=lambda: ["count", "sum"])
    risk_windows: dict[str, int] = field(default_factory=dict)

    def window_columns(self) -> list[str]:
        """The history kinds each window needs for ``aggregates``: ``txn_count`` (count,
        mean) and ``amount_sum`` (sum, mean)."""
        wanted = set(self.aggregates)
        kinds = [("txn_count", {"count", "mean"}), ("amount_sum", {"sum", "mean"})]
        return [kind for kind, needs in kinds if wanted & needs]

    def check(self, column: str) -> None:
        """Raise ValueError naming the entity and the problem."""
        if column not in schema.ENTITY_COLUMNS:
            raise ValueError(
                f"entities.{column}: not an id column; entities may be "
                f"{', '.join(schema.ENTITY_COLUMNS)}"
            )
        where = f"entities.{column}"
        sorted_windows(self.windows, f"{where}.windows")
        sorted_windows(self.risk_windows, f"{where}.risk_windows")
        bad = [a for a in self.aggregates if a not in AGGREGATES]
        if bad or len(set(self.aggregates)) != len(self.aggregates):
            raise ValueError(
                f"{where}.aggregates must be distinct values of {', '.join(AGGREGATES)}, "
                f"got {self.aggregates}"
            )
        if column != USER_ID and not (self.windows and self.aggregates) and not self.risk_windows:
            raise ValueError(f"{where} has no window aggregates and no risk_windows")


def _default_entities() -> dict[str, EntityConfig]:
    day = 86400
    return {
        USER_ID: EntityConfig({"1h": 3600, "24h": day, "7d": 7 * day}, ["count", "sum"], {}),
        schema.MERCHANT_ID: EntityConfig(
            {"1d": day, "7d": 7 * day},
            ["count", "mean"],
            {"1d": day, "7d": 7 * day},
        ),
        schema.DEVICE_ID: EntityConfig({"1d": day}, ["count"], {"28d": 28 * day}),
    }


class Feature(NamedTuple):
    """A history-based feature: ``op`` over the history columns ``args``.

    ops: ``hist`` (the column itself), ``mean`` (sum / count), ``risk`` (smoothed fraud /
    labelled), ``zscore`` ((amount - avg) / max(std, floor)), ``ratio`` (amount / avg).
    """

    name: str
    op: str
    args: tuple[str, ...]


@dataclass
class FeatureConfig:
    """The ``features`` config section (conf/features/default.yaml)."""

    entities: dict[str, EntityConfig] = field(default_factory=_default_entities)
    label_delay_days: int = 7
    risk_smoothing: float = 10.0
    zscore_std_floor: float = 1.0
    category_smoothing: float = 20.0
    min_category_count: int = 1
    use_history: bool = True
    exclude: list[str] = field(default_factory=list)

    def check(self) -> None:
        """Raise ValueError naming the problem: bad entities, bounds, or unknown ``exclude``."""
        if USER_ID not in self.entities:
            raise ValueError(f"entities must include {USER_ID} (the card)")
        for column, entity in self.entities.items():
            entity.check(column)
        if not 0 <= self.label_delay_days <= MAX_SECONDS // 86400:
            most = MAX_SECONDS // 86400
            raise ValueError(f"label_delay_days must be in 0..{most}, got {self.label_delay_days}")
        if not (math.isfinite(self.risk_smoothing) and self.risk_smoothing >= 0):
            raise ValueError(f"risk_smoothing must be >= 0, got {self.risk_smoothing}")
        if not (math.isfinite(self.zscore_std_floor) and self.zscore_std_floor > 0):
            raise ValueError(f"zscore_std_floor must be > 0, got {self.zscore_std_floor}")
        if not (math.isfinite(self.category_smoothing) and self.category_smoothing >= 0):
            raise ValueError(f"category_smoothing must be >= 0, got {self.category_smoothing}")
        if self.min_category_count < 1:
            raise ValueError(f"min_category_count must be >= 1, got {self.min_category_count}")
        known = set(self.all_feature_names(use_history=True))
        unknown = sorted(set(self.exclude) - known)
        if unknown:
            raise ValueError(f"exclude names unknown feature(s): {', '.join(unknown)}")
        if not self.feature_names():
            raise ValueError("exclude removes every feature")

    def entities_of(self, inputs: Inputs = None) -> list[tuple[str, EntityConfig]]:
        """The declared entities the data has (``inputs``), the user first."""
        have = set(_inputs(inputs)) | {USER_ID}
        present = [(c, e) for c, e in self.entities.items() if c in have]
        return sorted(present, key=lambda item: item[0] != USER_ID)

    def history_groups(self, inputs: Inputs = None) -> dict[str, list[str]]:
        """Entity prefix (user, merchant, device) -> its history columns, in order."""
        groups: dict[str, list[str]] = {}
        for column, entity in self.entities_of(inputs):
            p = entity_prefix(column)
            cols = groups[p] = list(EXPANDING_COLUMNS) if column == USER_ID else []
            for label, _ in sorted_windows(entity.windows):
                cols += [window_column(p, kind, label) for kind in entity.window_columns()]
            for label, _ in sorted_windows(entity.risk_windows):
                cols += [
                    window_column(p, kind, label) for kind in ("labelled_count", "fraud_count")
                ]
            if column == USER_ID:
                cols += novelty_columns(inputs)
        return groups

    def history_columns(self, inputs: Inputs = None) -> list[str]:
        """The columns ``compute_history`` returns (and a client may send), in order."""
        return [name for cols in self.history_groups(inputs).values() for name in cols]

    def history_defaults(self, inputs: Inputs = None) -> dict[str, float]:
        """What a first-ever transaction gets: zero counts/sums, NaN statistics, new on flags."""
        nan_columns = set(EXPANDING_COLUMNS) - {"user_transaction_count"}
        return {
            name: math.nan if name in nan_columns else 1.0 if name in NOVELTY_COLUMNS else 0.0
            for name in self.history_columns(inputs)
        }

    def feature_plan(self, inputs: Inputs = None) -> list[Feature]:
        """Every history-based feature of ``inputs``, in model order (before ``exclude``)."""
        plan: list[Feature] = []
        for column, entity in self.entities_of(inputs):
            p = entity_prefix(column)
            if column == USER_ID:
                plan += [Feature(name, "hist", (name,)) for name in EXPANDING_COLUMNS]
            for label, _ in sorted_windows(entity.windows):
                count = window_column(p, "txn_count", label)
                total = window_column(p, "amount_sum", label)
                for aggregate in entity.aggregates:
                    if aggregate == "count":
                        plan.append(Feature(count, "hist", (count,)))
                    elif aggregate == "sum":
                        plan.append(Feature(total, "hist", (total,)))
                    else:
                        mean = window_column(p, "amount_mean", label)
                        plan.append(Feature(mean, "mean", (total, count)))
            for label, _ in sorted_windows(entity.risk_windows):
                args = (
                    window_column(p, "fraud_count", label),
                    window_column(p, "labelled_count", label),
                )
                plan.append(Feature(window_column(p, "fraud_risk", label), "risk", args))
            if column == USER_ID:
                plan += [Feature(name, "hist", (name,)) for name in novelty_columns(inputs)]
                avg, std = "user_avg_amount", "user_std_amount"
                zscore, ratio = DERIVED_COLUMNS
                plan += [Feature(zscore, "zscore", (avg, std)), Feature(ratio, "ratio", (avg,))]
        return plan

    def all_feature_names(self, use_history: bool = True, inputs: Inputs = None) -> list[str]:
        """Every feature the code can build from ``inputs``, before ``exclude``, in order."""
        names = [*BASE_COLUMNS, *categorical_columns(inputs)]
        if use_history:
            names += [f.name for f in self.feature_plan(inputs)]
        return names

    def feature_names(self, inputs: Inputs = None) -> list[str]:
        """The model's ordered feature names: those of ``inputs`` minus history (if off) and
        ``exclude``."""
        dropped = set(self.exclude)
        names = self.all_feature_names(self.use_history, inputs)
        return [name for name in names if name not in dropped]


def categorical_columns(inputs: Inputs = None) -> list[str]:
    """``<col>_code`` and ``<col>_fraud_rate`` for each categorical input, in feature order."""
    cols: list[str] = []
    for col in categorical_inputs(inputs):
        cols += [f"{col}_code", f"{col}_fraud_rate"]
    return cols


def is_count_column(name: str) -> bool:
    """Whether a history column is an integer count (the rest are amounts, times, flags)."""
    return name == "user_transaction_count" or any(
        f"_{kind}_count_" in name for kind in ("txn", "labelled", "fraud")
    )
