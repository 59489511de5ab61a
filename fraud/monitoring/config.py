"""Drift configuration: the reference profile's shape and the alert rule (conf/drift/)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fraud.data import schema

if TYPE_CHECKING:
    pass


PROFILE_FORMAT = 1
OTHER = "__other__"
MISSING = "__missing__"
NUMERIC = "numeric"
CATEGORICAL = "categorical"
SCORE = "fraud_probability"
VERDICTS = ("none", "drift", "insufficient_data")
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

    scenarios: dict[str, ScenarioConfig]  # no default: conf/drift/ names them
    rule: AlertRule = field(default_factory=AlertRule)
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)

    def check(self) -> None:
        """Check the rule, the batch and every scenario."""
        self.rule.check()
        self.synthetic.check()
        if not self.scenarios:
            raise ValueError("scenarios must name at least one scenario")
        for name, scenario in self.scenarios.items():
            scenario.check(f"scenarios.{name}")
