"""Deterministic, vectorised synthetic card transactions with labelled fraud patterns.

Users get stable profiles (home city, devices, typical spend, activity rate, favourite
merchant categories); legitimate rows follow those profiles with realistic noise (night owls,
trips, replacement phones, splurges, quick successive purchases). Fraud events of five patterns
are then injected on victims that already have some history, so a model can learn fraud from
time, amount and point-in-time user-history features, but not trivially.

Ids: users ``u_<n>``, transactions ``tx_<n>`` numbered in time order, devices
``d_<user n>_<k>`` where k=0 is the user's card (device type "pos", in-store purchases and cash
withdrawals), k=1..3 their own phones/computers, and higher k a device first seen later (a new
phone, a borrowed computer, or a fraudster's device).

Everything is drawn from one ``np.random.default_rng(seed)`` in a fixed order, with no Python
loop over rows or users: the same ``(DataConfig, seed)`` always yields the same table, and
1M rows take a few seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from fraud import schema

SECONDS_PER_DAY = 86_400

#: The injected fraud patterns, in the order they are generated (and their codes 1..5).
PATTERNS: tuple[str, ...] = (
    "account_takeover",
    "card_testing",
    "high_amount",
    "night_time",
    "high_risk_merchant",
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

    weight: float = 0.12
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

    weight: float = 0.08
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

    weight: float = 0.25
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

    weight: float = 0.25
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

    weight: float = 0.25

    def check(self, prefix: str = "patterns.high_risk_merchant") -> None:
        """Raise ValueError naming the field when a value is nonsense."""
        _check_weight(self.weight, f"{prefix}.weight")


@dataclass
class PatternsConfig:
    """The fraud patterns; each pattern's number of events is proportional to its weight."""

    account_takeover: AccountTakeoverConfig = field(default_factory=AccountTakeoverConfig)
    card_testing: CardTestingConfig = field(default_factory=CardTestingConfig)
    high_amount: HighAmountConfig = field(default_factory=HighAmountConfig)
    night_time: NightTimeConfig = field(default_factory=NightTimeConfig)
    high_risk_merchant: HighRiskMerchantConfig = field(default_factory=HighRiskMerchantConfig)

    def configs(self) -> list[tuple[str, float]]:
        """(pattern name, weight) in generation order."""
        return [(name, float(getattr(self, name).weight)) for name in PATTERNS]

    def check(self, prefix: str = "patterns") -> None:
        """Check every pattern, and that at least one has a positive weight."""
        for name in PATTERNS:
            getattr(self, name).check(f"{prefix}.{name}")
        if not any(weight > 0 for _, weight in self.configs()):
            raise ValueError(f"{prefix}.*.weight: at least one pattern weight must be > 0")


@dataclass
class DataConfig:
    """Where transactions come from and, for synthetic data, their size, span and fraud mix."""

    source: str = "synthetic"
    path: str | None = None
    n_transactions: int = 100_000
    n_users: int = 5_000
    start: str = "2026-01-01"
    days: int = 90
    fraud_rate: float = 0.015
    patterns: PatternsConfig = field(default_factory=PatternsConfig)

    def check(self) -> None:
        """Raise ValueError naming the field when a value is nonsense."""
        if self.source not in ("synthetic", "csv"):
            raise ValueError(f"source must be 'synthetic' or 'csv', got {self.source!r}")
        if self.source == "csv" and not self.path:
            raise ValueError("path is required when source is 'csv'")
        _check_at_least(self.n_transactions, "n_transactions", 1)
        _check_at_least(self.n_users, "n_users", 1)
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

    validate = check


_LAST_ORDINAL = date(2262, 1, 1).toordinal()


def start_date(value: str) -> date:
    """Parse ``DataConfig.start``: a strict ISO date (never 'now'/'today': no wall clock)."""
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"start must be an ISO date like 2026-01-01, got {value!r}") from None


# --------------------------------------------------------------------------- fixed profiles


def _cdf(weights: np.ndarray | list[float]) -> np.ndarray:
    """Cumulative distribution of non-negative weights, ending at exactly 1."""
    cdf = np.cumsum(np.asarray(weights, dtype=float))
    cdf /= cdf[-1]
    cdf[-1] = 1.0
    return cdf


_CATEGORIES = schema.MERCHANT_CATEGORIES
#: category -> (popularity among legit purchases, amount multiplier, share card-not-present)
_CATEGORY_PROFILE: dict[str, tuple[float, float, float]] = {
    "grocery": (0.20, 0.9, 0.05),
    "restaurant": (0.15, 0.6, 0.05),
    "gas_station": (0.09, 0.8, 0.0),
    "retail": (0.12, 1.3, 0.15),
    "online_retail": (0.14, 1.1, 1.0),
    "travel": (0.03, 4.0, 0.7),
    "entertainment": (0.06, 0.8, 0.4),
    "utilities": (0.05, 1.8, 0.9),
    "healthcare": (0.04, 1.6, 0.1),
    "electronics": (0.03, 3.0, 0.5),
    "jewelry": (0.006, 4.0, 0.2),
    "gift_cards": (0.012, 1.2, 0.7),
    "gambling": (0.008, 1.5, 0.8),
    "crypto": (0.006, 3.0, 1.0),
    "money_transfer": (0.03, 2.5, 0.6),
}
_PROFILE = np.array([_CATEGORY_PROFILE[c] for c in _CATEGORIES])
_CAT_POPULARITY = _PROFILE[:, 0] / _PROFILE[:, 0].sum()
_CAT_AMOUNT = _PROFILE[:, 1]
_CAT_DIGITAL = _PROFILE[:, 2]
_CAT_CDF = _cdf(_CAT_POPULARITY)
_HIGH_RISK = np.array([c in schema.HIGH_RISK_MERCHANT_CATEGORIES for c in _CATEGORIES])


def _cat(name: str) -> int:
    return _CATEGORIES.index(name)


def _cat_weights(weights: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """(category codes, normalised probabilities) for a small category mixture."""
    codes = np.array([_cat(c) for c in weights])
    p = np.array(list(weights.values()), dtype=float)
    return codes, p / p.sum()


_ATO_CATS = _cat_weights(
    {
        "electronics": 0.25,
        "gift_cards": 0.2,
        "online_retail": 0.2,
        "crypto": 0.1,
        "money_transfer": 0.15,
        "jewelry": 0.1,
    }
)
_PROBE_CATS = _cat_weights({"online_retail": 0.5, "gift_cards": 0.3, "entertainment": 0.2})
_CASHOUT_CATS = _cat_weights(
    {"electronics": 0.35, "gift_cards": 0.25, "online_retail": 0.25, "jewelry": 0.15}
)
_MICRO_CATS = _cat_weights({"online_retail": 0.35, "entertainment": 0.45, "gift_cards": 0.2})
_SPLURGE_CATS = _cat_weights({"electronics": 0.4, "travel": 0.3, "jewelry": 0.15, "retail": 0.15})
_RISKY_CATS = _cat_weights(
    {
        "electronics": 0.25,
        "jewelry": 0.15,
        "gift_cards": 0.2,
        "gambling": 0.15,
        "crypto": 0.15,
        "money_transfer": 0.1,
    }
)

_N_LOC = len(schema.LOCATIONS)
_LOC_POPULARITY = 1.0 / np.arange(1, _N_LOC + 1) ** 0.9
_LOC_POPULARITY /= _LOC_POPULARITY.sum()

_MOBILE, _DESKTOP, _TABLET, _POS = (
    schema.DEVICE_TYPES.index(d) for d in ("mobile", "desktop", "tablet", "pos")
)
_DIGITAL_TYPES = np.array([_MOBILE, _DESKTOP, _TABLET])
_DIGITAL_TYPE_CDF = _cdf([0.6, 0.28, 0.12])
_PURCHASE, _ONLINE, _WITHDRAWAL, _TRANSFER = (
    schema.TRANSACTION_TYPES.index(t) for t in ("purchase", "online", "withdrawal", "transfer")
)

#: relative legit activity by UTC hour: quiet nights, lunch and evening peaks
_DAY_HOURS = np.array(
    [
        *(0.6, 0.35, 0.25, 0.2, 0.25, 0.5, 1.2, 2.5, 4.0, 5.0, 5.5, 6.5),
        *(7.5, 6.5, 6.0, 6.0, 6.5, 7.5, 8.0, 7.5, 6.0, 4.5, 3.0, 1.5),
    ]
)
#: night owls / shift workers: the same shape five hours later
_OWL_HOURS = np.roll(_DAY_HOURS, 5)
_HOUR_CDF = np.stack([_cdf(h) for h in (_DAY_HOURS, _OWL_HOURS)])
_FLAT_HOURS = _cdf(np.ones(24))
#: relative activity by weekday, Monday = 0
_WEEKDAY = np.array([0.95, 0.95, 1.0, 1.0, 1.15, 1.2, 0.9])

_FAVOURITE_SLOTS = _cdf([0.45, 0.3, 0.15, 0.1])
_N_FAVOURITES = len(_FAVOURITE_SLOTS)


# --------------------------------------------------------------------------- helpers


def _pick(rng: np.random.Generator, cdf: np.ndarray, size: int) -> np.ndarray:
    """Indices drawn from a (normalised) cumulative distribution."""
    idx = np.searchsorted(cdf, rng.random(size), side="right")
    return np.minimum(idx, len(cdf) - 1)


def _choice(
    rng: np.random.Generator, codes_p: tuple[np.ndarray, np.ndarray], size: int
) -> np.ndarray:
    codes, p = codes_p
    return codes[_pick(rng, _cdf(p), size)]


def _other_location(rng: np.random.Generator, home: np.ndarray) -> np.ndarray:
    """A location other than ``home``: half popularity-weighted, half uniform (anywhere)."""
    size = len(home)
    popular = _pick(rng, _cdf(_LOC_POPULARITY), size)
    uniform = rng.integers(0, _N_LOC, size)
    loc = np.where(rng.random(size) < 0.5, popular, uniform)
    clash = loc == home
    loc[clash] = (home[clash] + rng.integers(1, _N_LOC, int(clash.sum()))) % _N_LOC
    return loc


def _occurrence(keys: np.ndarray) -> np.ndarray:
    """For each element, how many earlier elements share its key (0 for the first)."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.r_[0, np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1]
    lengths = np.diff(np.r_[starts, len(keys)])
    rank_sorted = np.arange(len(keys)) - np.repeat(starts, lengths)
    rank = np.empty_like(rank_sorted)
    rank[order] = rank_sorted
    return rank


def _balanced_sizes(rng: np.random.Generator, low: int, high: int, count: int) -> np.ndarray:
    """``count`` integers spread evenly over low..high, shuffled: uniform without sum noise."""
    span = high - low + 1
    sizes = low + ((2 * np.arange(count) + 1) * span) // (2 * max(count, 1))
    return rng.permutation(sizes).astype(np.int64)


def _sorted_offsets(
    rng: np.random.Generator, sizes: np.ndarray, duration: int
) -> tuple[np.ndarray, np.ndarray]:
    """(event index per row, seconds offset per row) of bursts: first row at 0, sorted."""
    event = np.repeat(np.arange(len(sizes)), sizes)
    offset = rng.integers(0, duration, len(event))
    first = np.cumsum(sizes) - sizes
    offset[first[sizes > 0]] = 0
    order = np.argsort(event * duration + offset, kind="stable")
    return event, offset[order]


def _round_amount(amount: np.ndarray, minimum: float = 0.5) -> np.ndarray:
    return np.maximum(np.round(amount, 2), minimum)


@dataclass
class _Users:
    """Stable per-user profiles (arrays indexed by user number)."""

    home: np.ndarray
    second: np.ndarray  # a second city the user sometimes shops in
    spend: np.ndarray  # typical purchase amount
    activity: np.ndarray  # relative transaction rate (gamma: heavy tail of heavy users)
    n_digital: np.ndarray  # own digital devices 1..3
    device_type: np.ndarray  # (users, 5): type of device k; k=0 card (pos)
    owl: np.ndarray  # night-owl hour profile
    burstiness: np.ndarray  # chance a purchase quickly follows the previous one
    micro: np.ndarray  # buys apps / transit / games in small amounts
    favourites: np.ndarray  # (users, 4) favourite categories
    trip_start: np.ndarray  # seconds; trip_start == trip_end: no trip
    trip_end: np.ndarray
    trip_loc: np.ndarray
    phone_switch: np.ndarray  # seconds after which device 1 is replaced by a new phone
    next_device: np.ndarray  # first unused device number (mutated as devices are handed out)


def _make_users(rng: np.random.Generator, n_users: int, span: int) -> _Users:
    """Draw every user's stable profile."""
    u = n_users
    home = _pick(rng, _cdf(_LOC_POPULARITY), u)
    second = _other_location(rng, home)
    spend = np.exp(rng.normal(math.log(45.0), 0.7, u))
    activity = rng.gamma(0.8, 1.0, u)
    n_digital = _pick(rng, _cdf([0.5, 0.35, 0.15]), u) + 1
    device_type = _DIGITAL_TYPES[_pick(rng, _DIGITAL_TYPE_CDF, u * 5)].reshape(u, 5)
    device_type[:, 0] = _POS
    owl = rng.random(u) < 0.12
    micro = rng.random(u) < 0.12  # apps / games / transit: small amounts, in sprees
    burstiness = np.where(micro, rng.beta(3.0, 2.0, u), rng.beta(0.8, 3.0, u))

    # favourite categories: top-4 of popularity-weighted Gumbel keys over non-high-risk ones,
    # then a few gamblers / crypto fans / jewellers get a high-risk favourite (legit noise)
    safe = np.where(_HIGH_RISK, 0.0, _CAT_POPULARITY)
    with np.errstate(divide="ignore"):
        keys = np.log(safe) + rng.gumbel(size=(u, len(_CATEGORIES)))
    favourites = np.argsort(-keys, axis=1, kind="stable")[:, :_N_FAVOURITES]
    risky_fan = rng.random(u) < 0.10
    slot = rng.integers(1, _N_FAVOURITES, u)
    risky = _choice(rng, _RISKY_CATS, u)
    favourites[risky_fan, slot[risky_fan]] = risky[risky_fan]

    travels = rng.random(u) < 0.35
    trip_start = rng.integers(0, span, u)
    trip_len = rng.integers(2 * SECONDS_PER_DAY, 8 * SECONDS_PER_DAY, u)
    trip_end = np.where(travels, trip_start + trip_len, trip_start)
    trip_loc = _other_location(rng, home)
    switches = rng.random(u) < 0.20
    phone_switch = np.where(switches, rng.integers(0, span, u), np.iinfo(np.int64).max)
    return _Users(
        home=home,
        second=second,
        spend=spend,
        activity=activity,
        n_digital=n_digital,
        device_type=device_type,
        owl=owl,
        burstiness=burstiness,
        micro=micro,
        favourites=favourites,
        trip_start=trip_start,
        trip_end=trip_end,
        trip_loc=trip_loc,
        phone_switch=phone_switch,
        next_device=n_digital + 2,
    )


def _new_devices(users: _Users, owner: np.ndarray) -> np.ndarray:
    """Hand out unused device numbers (one per element of ``owner``)."""
    device = users.next_device[owner] + _occurrence(owner)
    users.next_device += np.bincount(owner, minlength=len(users.next_device))
    return device


def _usual_device(
    rng: np.random.Generator, users: _Users, user: np.ndarray, digital: np.ndarray, sec: np.ndarray
) -> np.ndarray:
    """The user's own device for a purchase: the card in store, else mostly the main device."""
    n_dig = users.n_digital[user]
    other = 1 + (rng.random(len(user)) * n_dig).astype(np.int64)
    device = np.where(rng.random(len(user)) < 0.75, 1, other)
    replaced = (device == 1) & (sec >= users.phone_switch[user])
    device = np.where(replaced, n_dig + 1, device)
    return np.where(digital, device, 0)


def _transaction_type(
    rng: np.random.Generator, cat: np.ndarray, digital: np.ndarray
) -> np.ndarray:
    """Type consistent with category and channel (cash withdrawals, bill and money transfers)."""
    ttype = np.where(digital, _ONLINE, _PURCHASE)
    money = cat == _cat("money_transfer")
    ttype = np.where(money, np.where(digital, _TRANSFER, _WITHDRAWAL), ttype)
    bill = (cat == _cat("utilities")) & digital & (rng.random(len(cat)) < 0.35)
    return np.where(bill, _TRANSFER, ttype)


def _rows(**columns: np.ndarray) -> dict[str, np.ndarray]:
    return columns


# --------------------------------------------------------------------------- legit rows


def _legit(
    rng: np.random.Generator, users: _Users, n_rows: int, days: int, weekday0: int
) -> dict[str, np.ndarray]:
    """Legitimate rows, grouped by user and in time order within each user.

    Purchases come in sessions (a purchase quickly following the previous one); a session
    may be a micro-payment spree, happen on a borrowed device, or in another city.
    """
    span = days * SECONDS_PER_DAY
    counts = rng.multinomial(n_rows, users.activity / users.activity.sum())
    user = np.repeat(np.arange(len(counts)), counts)

    day_p = _WEEKDAY[(weekday0 + np.arange(days)) % 7]
    day = _pick(rng, _cdf(day_p), n_rows)
    draw = rng.random(n_rows)
    hour_day = np.searchsorted(_HOUR_CDF[0], draw, side="right")
    hour_owl = np.searchsorted(_HOUR_CDF[1], draw, side="right")
    hour = np.minimum(np.where(users.owl[user], hour_owl, hour_day), 23)
    sec = day * SECONDS_PER_DAY + hour * 3600 + rng.integers(0, 3600, n_rows)
    sec = sec[np.argsort(user * span + sec, kind="stable")]  # time order within each user

    # sessions: a follow-up comes 30 s to ~half an hour after the previous purchase
    follow = np.r_[False, user[1:] == user[:-1]] & (rng.random(n_rows) < users.burstiness[user])
    gap = np.where(follow, 30 + rng.exponential(600.0, n_rows).astype(np.int64), 0)
    opener = np.flatnonzero(~follow)
    session = np.cumsum(~follow) - 1
    elapsed = np.cumsum(gap)
    sec = np.minimum(sec[opener][session] + elapsed - elapsed[opener][session], span - 1)
    n_sessions = len(opener)
    session_user = user[opener]

    slot = np.searchsorted(_FAVOURITE_SLOTS, rng.random(n_rows), side="right")
    favourite = users.favourites[user, np.minimum(slot, _N_FAVOURITES - 1)]
    background = _pick(rng, _CAT_CDF, n_rows)
    cat = np.where(rng.random(n_rows) < 0.85, favourite, background)
    micro = (users.micro[session_user] & (rng.random(n_sessions) < 0.4))[session]
    cat = np.where(micro, _choice(rng, _MICRO_CATS, n_rows), cat)

    digital = micro | (rng.random(n_rows) < _CAT_DIGITAL[cat])
    device = _usual_device(rng, users, user, digital, sec)
    device_type = users.device_type[user, np.minimum(device, 4)]
    # a friend's / work / hotel computer for one session; more likely while travelling
    on_trip = (sec >= users.trip_start[user]) & (sec < users.trip_end[user])
    borrowed = rng.random(n_sessions) < np.where(on_trip[opener], 0.12, 0.03)
    session_device = np.zeros(n_sessions, dtype=np.int64)
    session_device[borrowed] = _new_devices(users, session_user[borrowed])
    session_type = _DIGITAL_TYPES[_pick(rng, _DIGITAL_TYPE_CDF, n_sessions)]
    one_off = digital & borrowed[session]
    device = np.where(one_off, session_device[session], device)
    device_type = np.where(one_off, session_type[session], device_type)

    where = rng.random(n_rows)
    loc = np.where(where < 0.05, users.second[user], users.home[user])
    away = rng.random(n_sessions) < 0.006  # a day out in another city
    loc = np.where(away[session], _other_location(rng, users.home[session_user])[session], loc)
    loc = np.where(on_trip & (rng.random(n_rows) < 0.9), users.trip_loc[user], loc)

    amount = users.spend[user] * _CAT_AMOUNT[cat] * rng.lognormal(0.0, 0.5, n_rows)
    splurge = rng.random(n_rows) < 0.015
    amount = np.where(splurge, amount * rng.uniform(3.0, 10.0, n_rows), amount)
    amount = np.where(micro, rng.uniform(0.99, 9.99, n_rows), amount)

    order = np.argsort(user * span + sec, kind="stable")  # sessions may overrun the next row
    rows = _rows(
        user=user,
        sec=sec,
        amount=_round_amount(amount),
        cat=cat,
        ttype=_transaction_type(rng, cat, digital),
        device=device,
        device_type=device_type,
        loc=loc,
        pattern=np.zeros(n_rows, dtype=np.int64),
    )
    return {key: value[order] for key, value in rows.items()}


# --------------------------------------------------------------------------- fraud events


@dataclass
class _Victims:
    """Who fraud events hit and when: just after one of their legit purchases (not the first
    two), so victims have history and fraud is spread over time like legit activity."""

    users: _Users
    user: np.ndarray  # legit rows' users, grouped by user ...
    sec: np.ndarray  # ... in time order within each user
    next_sec: np.ndarray  # the same user's next legit purchase (or the end of the data)
    anchor_cdf: np.ndarray  # cumulative weight of the rows that may anchor a fraud event
    days: int

    @classmethod
    def from_legit(cls, users: _Users, legit: dict[str, np.ndarray], days: int) -> _Victims:
        """Eligible anchors: a user's third and later purchases, weighted per day so that
        fraud is as frequent early in the data as late (early days have fewer of them)."""
        user, sec = legit["user"], legit["sec"]
        n = len(user)
        first = np.r_[True, user[1:] != user[:-1]]
        last = np.r_[user[1:] != user[:-1], True]
        next_sec = np.where(last, days * SECONDS_PER_DAY, np.r_[sec[1:], 0])
        rank = np.arange(n) - np.flatnonzero(first)[np.cumsum(first) - 1]
        ok = rank >= 2
        if not ok.any():
            ok[:] = True
        day = sec // SECONDS_PER_DAY
        share = np.bincount(day, weights=ok, minlength=days) / np.maximum(
            np.bincount(day, minlength=days), 1
        )
        weight = np.where(ok, 1.0 / np.maximum(share[day], 1e-12), 0.0)
        return cls(users, user, sec, next_sec, _cdf(weight), days)

    def draw(self, rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
        """(victim, anchor time): a while after one of the victim's purchases, before the next
        (at most two days later)."""
        row = _pick(rng, self.anchor_cdf, count)
        gap = np.minimum(self.next_sec[row] - self.sec[row], 2 * SECONDS_PER_DAY)
        return self.user[row], self.sec[row] + (rng.random(count) * gap).astype(np.int64)

    def start(self, anchor: np.ndarray, duration: int) -> np.ndarray:
        """Burst start times: the anchor, moved back if the burst would end after the data."""
        return np.clip(anchor, 0, self.days * SECONDS_PER_DAY - duration - 1)

    def at_hours(
        self, rng: np.random.Generator, anchor: np.ndarray, hour_cdf: np.ndarray
    ) -> np.ndarray:
        """On the anchor's day (or the next one if that is earlier), at an hour of ``hour_cdf``."""
        count = len(anchor)
        day = anchor // SECONDS_PER_DAY
        in_day = _pick(rng, hour_cdf, count) * 3600 + rng.integers(0, 3600, count)
        later = (in_day < anchor - day * SECONDS_PER_DAY) & (day + 1 < self.days)
        return (day + later) * SECONDS_PER_DAY + in_day


def _account_takeover(
    rng: np.random.Generator, v: _Victims, cfg: AccountTakeoverConfig, sizes: np.ndarray
) -> dict[str, np.ndarray]:
    """Bursts on a fresh device from another city: risky online purchases at higher amounts."""
    m = len(sizes)
    victim, anchor = v.draw(rng, m)
    duration = cfg.burst_minutes * 60
    t0 = v.start(anchor, duration)
    device = _new_devices(v.users, victim)
    device_type = _DIGITAL_TYPES[_pick(rng, _DIGITAL_TYPE_CDF, m)]
    # not home: often the victim's second city (fraudsters proxy near the victim), else anywhere
    near = rng.random(m) < 0.4
    loc = np.where(near, v.users.second[victim], _other_location(rng, v.users.home[victim]))
    event, offset = _sorted_offsets(rng, sizes, duration)
    n = len(event)
    user = victim[event]
    cat = np.where(rng.random(n) < 0.4, _choice(rng, _ATO_CATS, n), _pick(rng, _CAT_CDF, n))
    amount = v.users.spend[user] * _CAT_AMOUNT[cat] * rng.uniform(0.7, 2.5, n)
    return _rows(
        user=user,
        sec=t0[event] + offset,
        amount=_round_amount(amount),
        cat=cat,
        ttype=np.where(cat == _cat("money_transfer"), _TRANSFER, _ONLINE),
        device=device[event],
        device_type=device_type[event],
        loc=loc[event],
        pattern=np.full(n, 1 + PATTERNS.index("account_takeover")),
    )


def _card_testing(
    rng: np.random.Generator, v: _Victims, cfg: CardTestingConfig, probes: np.ndarray
) -> dict[str, np.ndarray]:
    """Small probes within minutes on a fresh device, then one large cash-out purchase."""
    m = len(probes)
    victim, anchor = v.draw(rng, m)
    duration = cfg.burst_minutes * 60
    t0 = v.start(anchor, duration)
    device = _new_devices(v.users, victim)
    device_type = np.where(rng.random(m) < 0.6, _DESKTOP, _MOBILE)
    home = v.users.home[victim]
    loc = np.where(rng.random(m) < 0.4, _other_location(rng, home), home)
    probe_cat = _choice(rng, _PROBE_CATS, m)
    sizes = probes + 1
    event, offset = _sorted_offsets(rng, sizes, duration)
    n = len(event)
    user = victim[event]
    is_last = np.zeros(n, dtype=bool)
    is_last[np.cumsum(sizes) - 1] = True
    cat = np.where(is_last, _choice(rng, _CASHOUT_CATS, n), probe_cat[event])
    pmax = cfg.probe_max_amount
    probe = np.maximum(np.floor(rng.uniform(0.1 * pmax, pmax, n) * 100) / 100, 0.01)
    large = np.maximum(
        v.users.spend[user] * rng.uniform(2.0, 6.0, n), pmax * rng.uniform(4, 20, n)
    )
    amount = np.where(is_last, np.round(large, 2), probe)
    return _rows(
        user=user,
        sec=t0[event] + offset,
        amount=amount,
        cat=cat,
        ttype=np.full(n, _ONLINE),
        device=device[event],
        device_type=device_type[event],
        loc=loc[event],
        pattern=np.full(n, 1 + PATTERNS.index("card_testing")),
    )


def _single(
    rng: np.random.Generator,
    v: _Victims,
    name: str,
    sec: np.ndarray,
    victim: np.ndarray,
    cat: np.ndarray,
    amount: np.ndarray,
    p_new_device: float,
    p_away: float,
) -> dict[str, np.ndarray]:
    """One-row fraud events: own device/home city unless drawn new/away with the given odds."""
    m = len(victim)
    users = v.users
    digital = rng.random(m) < _CAT_DIGITAL[cat]
    device = _usual_device(rng, users, victim, digital, sec)
    device_type = users.device_type[victim, np.minimum(device, 4)]
    fresh = rng.random(m) < p_new_device
    device[fresh] = _new_devices(users, victim[fresh])
    device_type[fresh] = _DIGITAL_TYPES[_pick(rng, _DIGITAL_TYPE_CDF, int(fresh.sum()))]
    digital |= fresh
    away = rng.random(m) < p_away
    loc = np.where(away, _other_location(rng, users.home[victim]), users.home[victim])
    return _rows(
        user=victim,
        sec=sec,
        amount=_round_amount(amount),
        cat=cat,
        ttype=_transaction_type(rng, cat, digital),
        device=device,
        device_type=device_type,
        loc=loc,
        pattern=np.full(m, 1 + PATTERNS.index(name)),
    )


def _high_amount(
    rng: np.random.Generator, v: _Victims, cfg: HighAmountConfig, m: int
) -> dict[str, np.ndarray]:
    """A purchase far above the victim's norm, at a normal hour, on their own device at home."""
    victim, anchor = v.draw(rng, m)
    sec = v.at_hours(rng, anchor, _HOUR_CDF[0])
    favourite = v.users.favourites[victim, rng.integers(0, _N_FAVOURITES, m)]
    cat = np.where(rng.random(m) < 0.5, favourite, _choice(rng, _SPLURGE_CATS, m))
    amount = v.users.spend[victim] * rng.uniform(cfg.multiplier_min, cfg.multiplier_max, m)
    return _single(rng, v, "high_amount", sec, victim, cat, amount, 0.0, 0.1)


def _night_time(
    rng: np.random.Generator, v: _Victims, cfg: NightTimeConfig, m: int
) -> dict[str, np.ndarray]:
    """A purchase in the configured night hours at an elevated amount, often from elsewhere."""
    victim, anchor = v.draw(rng, m)
    hours = np.zeros(24)
    hours[np.asarray(cfg.hours, dtype=np.int64)] = 1.0
    sec = v.at_hours(rng, anchor, _cdf(hours))
    cat = _pick(rng, _CAT_CDF, m)
    amount = v.users.spend[victim] * _CAT_AMOUNT[cat] * rng.uniform(0.8, 2.5, m)
    return _single(rng, v, "night_time", sec, victim, cat, amount, 0.2, 0.35)


def _high_risk_merchant(
    rng: np.random.Generator, v: _Victims, cfg: HighRiskMerchantConfig, m: int
) -> dict[str, np.ndarray]:
    """A purchase in a high-risk category at an elevated amount, at any hour."""
    victim, anchor = v.draw(rng, m)
    any_hour = rng.random(m) < 0.5
    sec = np.where(
        any_hour, v.at_hours(rng, anchor, _FLAT_HOURS), v.at_hours(rng, anchor, _HOUR_CDF[0])
    )
    cat = _choice(rng, _RISKY_CATS, m)
    amount = v.users.spend[victim] * _CAT_AMOUNT[cat] * rng.uniform(0.8, 2.5, m)
    return _single(rng, v, "high_risk_merchant", sec, victim, cat, amount, 0.15, 0.2)


def _plan(rng: np.random.Generator, cfg: DataConfig) -> tuple[dict[str, np.ndarray], int]:
    """Per pattern, the row count of each event; events proportional to weight, rows ≈ rate.

    Every pattern with a positive weight gets at least one event; then (tiny tables only)
    events of the largest pattern are dropped until fraud rows are at most 1.5 x the target
    and half of the table.
    """
    p = cfg.patterns
    ato, ct = p.account_takeover, p.card_testing
    mean_rows = {
        "account_takeover": (ato.burst_min + ato.burst_max) / 2,
        "card_testing": (ct.probes_min + ct.probes_max) / 2 + 1,
    }
    weights = p.configs()
    target = cfg.fraud_rate * cfg.n_transactions
    per_weight = target / sum(w * mean_rows.get(name, 1.0) for name, w in weights)
    counts = {name: max(round(w * per_weight), 1) if w > 0 else 0 for name, w in weights}
    sizes = {
        "account_takeover": _balanced_sizes(
            rng, ato.burst_min, ato.burst_max, counts["account_takeover"]
        ),
        "card_testing": _balanced_sizes(rng, ct.probes_min, ct.probes_max, counts["card_testing"])
        + 1,
    }
    plan = {name: sizes.get(name, np.ones(counts[name], dtype=np.int64)) for name, _ in weights}
    cap = min(cfg.n_transactions // 2, max(math.ceil(1.5 * target), 1))
    total = sum(int(s.sum()) for s in plan.values())
    while total > cap:
        name = max(PATTERNS, key=lambda k: (int(plan[k].sum()), -PATTERNS.index(k)))
        total -= int(plan[name][-1])
        plan[name] = plan[name][:-1]
    return plan, total


# --------------------------------------------------------------------------- assembly


def _pad_ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    text = pc.utf8_lpad(pc.cast(pa.array(numbers, type=pa.int64()), pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, text, "")


def _lookup(values: tuple[str, ...] | list[str], codes: np.ndarray) -> pd.Series:
    return pa.array(list(values), type=pa.string()).take(pa.array(codes)).to_pandas()


def _assemble(rows: dict[str, np.ndarray], start_s: int, n_users: int) -> pd.DataFrame:
    """Sort by time, number the transactions, and build the typed table."""
    order = np.argsort(rows["sec"], kind="stable")
    rows = {k: np.asarray(v)[order] for k, v in rows.items()}
    n = len(order)
    epoch_s = start_s + rows["sec"].astype(np.int64)

    user_width = max(6, len(str(n_users - 1)))
    user_ids = _pad_ids("u_", np.arange(n_users), user_width)
    base = int(rows["device"].max()) + 1
    unique_dev, dev_inverse = np.unique(rows["user"] * base + rows["device"], return_inverse=True)
    device_ids = pc.binary_join_element_wise(
        _pad_ids("d_", unique_dev // base, user_width),
        pc.cast(pa.array(unique_dev % base), pa.string()),
        "_",
    )

    timestamp = pa.array(epoch_s * 1_000_000_000, type=pa.int64()).cast(
        pa.timestamp("ns", tz="UTC")
    )
    columns = {
        "transaction_id": _pad_ids("tx_", np.arange(n), max(8, len(str(n - 1)))).to_pandas(),
        "user_id": user_ids.take(pa.array(rows["user"])).to_pandas(),
        schema.TIMESTAMP: timestamp.to_pandas(),
        schema.AMOUNT: pd.Series(rows["amount"].astype(np.float64)),
        "merchant_category": _lookup(schema.MERCHANT_CATEGORIES, rows["cat"]),
        "transaction_type": _lookup(schema.TRANSACTION_TYPES, rows["ttype"]),
        schema.DEVICE_ID: device_ids.take(pa.array(dev_inverse.ravel())).to_pandas(),
        "device_type": _lookup(schema.DEVICE_TYPES, rows["device_type"]),
        "location": _lookup(schema.LOCATIONS, rows["loc"]),
        schema.HOUR: pd.Series((epoch_s // 3600) % 24, dtype=np.int64),
        schema.DAY: pd.Series((epoch_s // SECONDS_PER_DAY + 3) % 7, dtype=np.int64),
        schema.LABEL: pd.Series((rows["pattern"] > 0).astype(np.int64)),
        schema.FRAUD_PATTERN: _lookup(["", *PATTERNS], rows["pattern"]),
    }
    return pd.DataFrame({name: columns[name] for name in (*schema.COLUMNS, schema.FRAUD_PATTERN)})


def generate_transactions(cfg: DataConfig, seed: int) -> pd.DataFrame:
    """Generate ``cfg.n_transactions`` rows (columns ``schema.COLUMNS`` + ``fraud_pattern``).

    Deterministic in ``(cfg, seed)``; sorted by timestamp with transaction ids increasing in
    time; timestamps lie in ``[start, start + days)`` UTC.
    """
    cfg.check()
    rng = np.random.default_rng(seed)
    first = start_date(cfg.start)
    start_s = int((datetime(first.year, first.month, first.day, tzinfo=UTC)).timestamp())
    span = cfg.days * SECONDS_PER_DAY

    plan, n_fraud = _plan(rng, cfg)
    users = _make_users(rng, cfg.n_users, span)
    legit = _legit(rng, users, cfg.n_transactions - n_fraud, cfg.days, first.weekday())
    victims = _Victims.from_legit(users, legit, cfg.days)

    p = cfg.patterns
    parts = [
        legit,
        _account_takeover(rng, victims, p.account_takeover, plan["account_takeover"]),
        _card_testing(rng, victims, p.card_testing, plan["card_testing"] - 1),
        _high_amount(rng, victims, p.high_amount, len(plan["high_amount"])),
        _night_time(rng, victims, p.night_time, len(plan["night_time"])),
        _high_risk_merchant(rng, victims, p.high_risk_merchant, len(plan["high_risk_merchant"])),
    ]
    rows = {key: np.concatenate([part[key] for part in parts]) for key in legit}
    return _assemble(rows, start_s, cfg.n_users)
