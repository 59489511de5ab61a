"""Five of the injected fraud patterns (``merchants`` has the sixth) and the plan of how many
events of each."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fraud.data.synthetic.config import (
    PATTERNS,
    SECONDS_PER_DAY,
    AccountTakeoverConfig,
    CardTestingConfig,
    DataConfig,
    HighAmountConfig,
    HighRiskMerchantConfig,
    NightTimeConfig,
)
from fraud.data.synthetic.merchants import _Merchants
from fraud.data.synthetic.profiles import (
    _ATO_CATS,
    _CASHOUT_CATS,
    _CAT_AMOUNT,
    _CAT_CDF,
    _CAT_DIGITAL,
    _DESKTOP,
    _DIGITAL_TYPE_CDF,
    _DIGITAL_TYPES,
    _FLAT_HOURS,
    _HOUR_CDF,
    _MOBILE,
    _N_FAVOURITES,
    _ONLINE,
    _PROBE_CATS,
    _RISKY_CATS,
    _SPLURGE_CATS,
    _TRANSFER,
    _balanced_sizes,
    _cat,
    _cdf,
    _choice,
    _new_devices,
    _other_location,
    _pick,
    _round_amount,
    _rows,
    _sorted_offsets,
    _transaction_type,
    _Users,
    _usual_device,
)

# --------------------------------------------------------------------------- fraud events


@dataclass
class _Victims:
    """Who fraud events hit and when: just after one of their legit purchases (not the first
    two), so victims have history and fraud is spread over time like legit activity."""

    users: _Users
    merchants: _Merchants
    user: np.ndarray  # legit rows' users, grouped by user ...
    sec: np.ndarray  # ... in time order within each user
    next_sec: np.ndarray  # the same user's next legit purchase (or the end of the data)
    anchor_cdf: np.ndarray  # cumulative weight of the rows that may anchor a fraud event
    days: int

    @classmethod
    def from_legit(
        cls, users: _Users, merchants: _Merchants, legit: dict[str, np.ndarray], days: int
    ) -> _Victims:
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
        return cls(users, merchants, user, sec, next_sec, _cdf(weight), days)

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
        merchant=v.merchants.draw(rng, cat),
    )


def _card_testing(
    rng: np.random.Generator, v: _Victims, cfg: CardTestingConfig, probes: np.ndarray
) -> dict[str, np.ndarray]:
    """Small probes within minutes on a fresh device at one probe-friendly merchant, then one
    large cash-out purchase."""
    m = len(probes)
    victim, anchor = v.draw(rng, m)
    duration = cfg.burst_minutes * 60
    t0 = v.start(anchor, duration)
    device = _new_devices(v.users, victim)
    device_type = np.where(rng.random(m) < 0.6, _DESKTOP, _MOBILE)
    home = v.users.home[victim]
    loc = np.where(rng.random(m) < 0.4, _other_location(rng, home), home)
    probe_cat = _choice(rng, _PROBE_CATS, m)
    probe_merchant = v.merchants.probe[probe_cat, rng.integers(0, v.merchants.probe.shape[1], m)]
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
    merchant = np.where(is_last, v.merchants.draw(rng, cat), probe_merchant[event])
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
        merchant=merchant,
    )


def _single(
    rng: np.random.Generator,
    v: _Victims,
    name: str,
    sec: np.ndarray,
    victim: np.ndarray,
    cat: np.ndarray,
    merchant: np.ndarray,
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
        merchant=merchant,
    )


def _high_amount(
    rng: np.random.Generator, v: _Victims, cfg: HighAmountConfig, m: int
) -> dict[str, np.ndarray]:
    """A purchase far above the victim's norm, at a normal hour, on their own device at home."""
    victim, anchor = v.draw(rng, m)
    sec = v.at_hours(rng, anchor, _HOUR_CDF[0])
    favourite = v.users.favourites[victim, rng.integers(0, _N_FAVOURITES, m)]
    cat = np.where(rng.random(m) < 0.5, favourite, _choice(rng, _SPLURGE_CATS, m))
    merchant = v.merchants.for_users(rng, v.users, victim, cat)
    amount = v.users.spend[victim] * rng.uniform(cfg.multiplier_min, cfg.multiplier_max, m)
    return _single(rng, v, "high_amount", sec, victim, cat, merchant, amount, 0.0, 0.1)


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
    merchant = v.merchants.draw(rng, cat)
    return _single(rng, v, "night_time", sec, victim, cat, merchant, amount, 0.2, 0.35)


def _high_risk_merchant(
    rng: np.random.Generator, v: _Victims, cfg: HighRiskMerchantConfig, m: int
) -> dict[str, np.ndarray]:
    """A purchase at a merchant of a high-risk category at an elevated amount, at any hour."""
    victim, anchor = v.draw(rng, m)
    any_hour = rng.random(m) < 0.5
    sec = np.where(
        any_hour, v.at_hours(rng, anchor, _FLAT_HOURS), v.at_hours(rng, anchor, _HOUR_CDF[0])
    )
    cat = _choice(rng, _RISKY_CATS, m)
    amount = v.users.spend[victim] * _CAT_AMOUNT[cat] * rng.uniform(0.8, 2.5, m)
    merchant = v.merchants.draw(rng, cat)
    return _single(rng, v, "high_risk_merchant", sec, victim, cat, merchant, amount, 0.15, 0.2)


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
