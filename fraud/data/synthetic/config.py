"""The ``data`` config of the synthetic generator and its six fraud patterns (conf/data/)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date

from fraud.data import schema

SECONDS_PER_DAY = 86_400

#: The injected fraud patterns, in the order they are generated (and their codes 1..6).
PATTERNS: tuple[str, ...] = (
    "account_takeover",
    "card_testing",
    "high_amount",
    "night_time",
    "high_risk_merchant",
    "compromised_merchant",
)


# --------------------------------------------------------------------------- configuration


def _check_weight(value: float, key: str) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{key} must be a finite number >= 0, got {value}")


def _check_at_least(value: float, key: str, minimum: float) -> None:
    if not value >= minimum:
        raise ValueError(f"{key} must be >= {minimum}, got {value}")


def _check_range(low: float, high: float, key_low: str, key_high: str, minimum: float) -> None:
    _check_at_least(low, key_low, minimum)
    if not high >= low:
        raise ValueError(f"{key_high} must be >= {key_low} ({low}), got {high}")


@dataclass
class AccountTakeoverConfig:
    """A burst of purchases on a new device from a non-home city, at higher amounts."""

    weight: float = 0.10
    burst_min: int = 3
    burst_max: int = 8
    burst_minutes: int = 60

    def check(self, prefix: str = "patterns.account_takeover") -> None:
        """Raise ValueError naming the field when a value is nonsense."""
        _check_weight(self.weight, f"{prefix}.weight")
        _check_range(
            self.burst_min, self.burst_max, f"{prefix}.burst_min", f"{prefix}.burst_max", 1
        )
        _check_at_least(self.burst_minutes, f"{prefix}.burst_minutes", 1)


@dataclass
class CardTestingConfig:
    """Small probe charges within minutes on a new device, then one large charge."""

    weight: float = 0.07
    probes_min: int = 3
    probes_max: int = 8
    probe_max_amount: float = 5.0
    burst_minutes: int = 15

    def check(self, prefix: str = "patterns.card_testing") -> None:
        """Raise ValueError naming the field when a value is nonsense."""
        _check_weight(self.weight, f"{prefix}.weight")
        _check_range(
            self.probes_min, self.probes_max, f"{prefix}.probes_min", f"{prefix}.probes_max", 1
        )
        if not (math.isfinite(self.probe_max_amount) and self.probe_max_amount >= 0.01):
            raise ValueError(
                f"{prefix}.probe_max_amount must be >= 0.01, got {self.probe_max_amount}"
            )
        _check_at_least(self.burst_minutes, f"{prefix}.burst_minutes", 1)


@dataclass
class HighAmountConfig:
    """One purchase at ``multiplier`` x the victim's typical spend, on their usual device."""

    weight: float = 0.21
    multiplier_min: float = 3.0
    multiplier_max: float = 10.0

    def check(self, prefix: str = "patterns.high_amount") -> None:
        """Raise ValueError naming the field when a value is nonsense."""
        _check_weight(self.weight, f"{prefix}.weight")
        _check_range(
            self.multiplier_min,
            self.multiplier_max,
            f"{prefix}.multiplier_min",
            f"{prefix}.multiplier_max",
            1.0,
        )
        if not math.isfinite(self.multiplier_max):
            raise ValueError(f"{prefix}.multiplier_max must be finite, got {self.multiplier_max}")


@dataclass
class NightTimeConfig:
    """One purchase at one of ``hours`` (UTC), at an elevated amount, often from elsewhere."""

    weight: float = 0.21
    hours: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])

    def check(self, prefix: str = "patterns.night_time") -> None:
        """Raise ValueError naming the field when a value is nonsense."""
        _check_weight(self.weight, f"{prefix}.weight")
        if not self.hours:
            raise ValueError(f"{prefix}.hours must not be empty")
        bad = [h for h in self.hours if not 0 <= h <= 23]
        if bad:
            raise ValueError(f"{prefix}.hours must be in 0..23, got {bad}")


@dataclass
class HighRiskMerchantConfig:
    """One purchase in a high-risk merchant category at an elevated amount."""

    weight: float = 0.21

    def check(self, prefix: str = "patterns.high_risk_merchant") -> None:
        """Raise ValueError naming the field when a value is nonsense."""
        _check_weight(self.weight, f"{prefix}.weight")


@dataclass
class CompromisedMerchantConfig:
    """A merchant (terminal) compromised for a while: during it, ``fraud_share`` of its
    transactions are fraudulent charges on cards used there, ordinary in amount, hour and
    device, so only the merchant's own (label-delayed) history gives them away. Longer than
    the label delay, so a delayed merchant risk feature sees the compromise while it lasts."""

    weight: float = 0.15
    days_min: int = 14
    days_max: int = 28
    fraud_share: float = 0.5

    def check(self, prefix: str = "patterns.compromised_merchant") -> None:
        """Raise ValueError naming the field when a value is nonsense."""
        _check_weight(self.weight, f"{prefix}.weight")
        _check_range(self.days_min, self.days_max, f"{prefix}.days_min", f"{prefix}.days_max", 1)
        if not 0.01 <= self.fraud_share <= 0.9:
            raise ValueError(
                f"{prefix}.fraud_share must be in [0.01, 0.9], got {self.fraud_share}"
            )


@dataclass
class PatternsConfig:
    """The fraud patterns; each pattern's number of events is proportional to its weight."""

    account_takeover: AccountTakeoverConfig = field(default_factory=AccountTakeoverConfig)
    card_testing: CardTestingConfig = field(default_factory=CardTestingConfig)
    high_amount: HighAmountConfig = field(default_factory=HighAmountConfig)
    night_time: NightTimeConfig = field(default_factory=NightTimeConfig)
    high_risk_merchant: HighRiskMerchantConfig = field(default_factory=HighRiskMerchantConfig)
    compromised_merchant: CompromisedMerchantConfig = field(
        default_factory=CompromisedMerchantConfig
    )

    def configs(self) -> list[tuple[str, float]]:
        """(pattern name, weight) in generation order."""
        return [(name, float(getattr(self, name).weight)) for name in PATTERNS]

    def check(self, prefix: str = "patterns") -> None:
        """Check every pattern, and that at least one has a positive weight."""
        for name in PATTERNS:
            getattr(self, name).check(f"{prefix}.{name}")
        if not any(weight > 0 for _, weight in self.configs()):
            raise ValueError(f"{prefix}.*.weight: at least one pattern weight must be > 0")


#: Where transactions come from: generated, or a file under data/external/.
SOURCES = ("synthetic", "csv", "parquet")


@dataclass
class DataConfig:
    """Where transactions come from and, for synthetic data, their size, span and fraud mix."""

    source: str = "synthetic"
    path: str | None = None
    #: canonical column -> the file's own name for it (e.g. user_id: CUSTOMER_ID); None: same
    columns: dict[str, str | None] = field(
        default_factory=lambda: dict.fromkeys(schema.CANONICAL_COLUMNS)
    )
    n_transactions: int = 100_000
    n_users: int = 5_000
    #: merchants (terminals), each in one category; None: n_users / 5 (at least one per category)
    n_merchants: int | None = None
    start: str = "2026-01-01"
    days: int = 90
    fraud_rate: float = 0.015
    patterns: PatternsConfig = field(default_factory=PatternsConfig)

    def check(self) -> None:
        """Raise ValueError naming the field when a value is nonsense."""
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {self.source!r}")
        if self.source != "synthetic" and not self.path:
            raise ValueError(f"path is required when source is {self.source!r}")
        unknown = sorted(set(self.columns) - set(schema.CANONICAL_COLUMNS))
        if unknown:
            raise ValueError(
                f"columns names {', '.join(unknown)}; the columns a file can map are "
                f"{', '.join(schema.CANONICAL_COLUMNS)}"
            )
        names = list(self.renames().values())
        if len(set(names)) != len(names):
            raise ValueError(f"columns maps two columns onto one file column: {names}")
        _check_at_least(self.n_transactions, "n_transactions", 1)
        _check_at_least(self.n_users, "n_users", 1)
        n_categories = len(schema.MERCHANT_CATEGORIES)
        if self.n_merchants is not None and not self.n_merchants >= n_categories:
            raise ValueError(
                f"n_merchants must be >= {n_categories} (one per merchant category), "
                f"got {self.n_merchants}"
            )
        _check_at_least(self.days, "days", 1)
        if not 0 < self.fraud_rate < 0.5:
            raise ValueError(f"fraud_rate must be in (0, 0.5), got {self.fraud_rate}")
        first = start_date(self.start)
        if not (date(1678, 1, 1) <= first and first.toordinal() + self.days < _LAST_ORDINAL):
            raise ValueError(
                f"start + days must lie within 1678..2261, got {self.start} + {self.days}"
            )
        self.patterns.check("patterns")
        span_minutes = self.days * 24 * 60
        for name in ("account_takeover", "card_testing"):
            minutes = getattr(self.patterns, name).burst_minutes
            if minutes >= span_minutes:
                raise ValueError(
                    f"patterns.{name}.burst_minutes must be shorter than days ({span_minutes} "
                    f"minutes), got {minutes}"
                )

    def merchant_count(self) -> int:
        """``n_merchants``, or n_users / 5 when unset (at least one merchant per category)."""
        if self.n_merchants is not None:
            return self.n_merchants
        return max(self.n_users // 5, len(schema.MERCHANT_CATEGORIES))

    def renames(self) -> dict[str, str]:
        """canonical column -> the file's name, for the columns named otherwise in the file."""
        return {ours: theirs for ours, theirs in self.columns.items() if theirs is not None}


_LAST_ORDINAL = date(2262, 1, 1).toordinal()


def start_date(value: str) -> date:
    """Parse ``DataConfig.start``: a strict ISO date (never 'now'/'today': no wall clock)."""
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"start must be an ISO date like 2026-01-01, got {value!r}") from None
