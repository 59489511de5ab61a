"""Merchants (terminals) and the compromised-merchant fraud pattern.

Each merchant belongs to one category; within a category, popularity is Zipf-like (a few
big shops, a long tail of small ones), and the number of merchants per category follows the
category's popularity. Every user has a few own shops in each favourite category and mostly
buys there, so users revisit merchants. A few small merchants per category are
"probe-friendly" (weak checks): card testers send their probes there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fraud.data.synthetic.config import PATTERNS, SECONDS_PER_DAY, CompromisedMerchantConfig
from fraud.data.synthetic.profiles import (
    _CAT_AMOUNT,
    _CAT_POPULARITY,
    _CATEGORIES,
    _cdf,
    _pick,
    _round_amount,
    _rows,
    _Users,
)

#: popularity of a category's k-th merchant ~ 1 / k**_ZIPF
_ZIPF = 1.1
#: own shops per favourite category, and how a user shares purchases among them
_OWN_SHOP_CDF = _cdf([0.6, 0.28, 0.12])
_N_OWN_SHOPS = len(_OWN_SHOP_CDF)
#: chance a purchase in a favourite category goes to one of the user's own shops
_P_OWN_SHOP = 0.8
#: probe-friendly merchants per category
_N_PROBE = 3
#: cells per category of the lookup grid that speeds up popularity-weighted draws
_GRID = 4096


@dataclass
class _Merchants:
    """Merchants grouped by category (index = position in that order); arrays per merchant
    unless said otherwise."""

    cat: np.ndarray  # category code
    first: np.ndarray  # (categories,) index of the category's first merchant
    count: np.ndarray  # (categories,) merchants in the category
    cdf: np.ndarray  # category code + cumulative popularity within the category
    number: np.ndarray  # the id number: shuffled, so an id does not give away the category
    probe: np.ndarray  # (categories, _N_PROBE) probe-friendly merchants
    own: np.ndarray  # (users, favourites, _N_OWN_SHOPS) each user's shops per favourite
    slot: np.ndarray  # (users, categories) the category's favourite slot, -1 if none
    grid: np.ndarray  # (categories, _GRID + 1) the merchant at each popularity grid point

    def draw(self, rng: np.random.Generator, cat: np.ndarray) -> np.ndarray:
        """A popularity-weighted merchant of each category in ``cat`` (exact: the grid only
        spares the binary search where a grid cell holds one merchant)."""
        u = rng.random(len(cat))
        cell = (u * _GRID).astype(np.int64)
        merchant = self.grid[cat, cell]
        ambiguous = np.flatnonzero(merchant != self.grid[cat, cell + 1])
        merchant[ambiguous] = np.searchsorted(
            self.cdf, cat[ambiguous] + u[ambiguous], side="right"
        )
        return np.clip(merchant, self.first[cat], self.first[cat] + self.count[cat] - 1)

    def for_users(
        self, rng: np.random.Generator, users: _Users, user: np.ndarray, cat: np.ndarray
    ) -> np.ndarray:
        """Mostly one of the user's own shops when ``cat`` is a favourite category of theirs,
        else a popularity-weighted merchant of ``cat``."""
        slot = self.slot[user, cat]
        own = (slot >= 0) & (rng.random(len(user)) < _P_OWN_SHOP)
        merchant = np.empty(len(user), dtype=np.int64)
        at = np.flatnonzero(own)
        shop = _pick(rng, _OWN_SHOP_CDF, len(at))
        merchant[at] = self.own[user[at], slot[at], shop]
        at = np.flatnonzero(~own)
        merchant[at] = self.draw(rng, cat[at])
        return merchant


def _merchant_counts(n_merchants: int) -> np.ndarray:
    """Merchants per category: one each, the rest by category popularity (largest remainder)."""
    extra = (n_merchants - len(_CATEGORIES)) * _CAT_POPULARITY
    count = np.floor(extra).astype(np.int64)
    left = n_merchants - len(_CATEGORIES) - int(count.sum())
    count[np.argsort(count - extra, kind="stable")[:left]] += 1
    return count + 1


def _make_merchants(rng: np.random.Generator, n_merchants: int, users: _Users) -> _Merchants:
    """Draw the merchants, their ids, the probe-friendly ones and every user's own shops."""
    count = _merchant_counts(n_merchants)
    first = np.cumsum(count) - count
    cat = np.repeat(np.arange(len(count)), count)
    weight = (np.arange(n_merchants) - first[cat] + 1.0) ** -_ZIPF
    total = np.bincount(cat, weights=weight)
    within = (np.cumsum(weight) - (np.cumsum(total) - total)[cat]) / total[cat]
    within[first + count - 1] = 1.0
    cdf = cat + np.minimum(within, 1.0)
    number = rng.permutation(n_merchants)
    # weak checks: small shops, drawn uniformly from the category's long tail
    probe = first[:, None] + (rng.random((len(count), _N_PROBE)) * count[:, None]).astype(np.int64)
    points = np.arange(len(count))[:, None] + np.arange(_GRID + 1) / _GRID
    grid = np.searchsorted(cdf, points, side="right")
    n_users, n_favourites = users.favourites.shape
    slot = np.full((n_users, len(count)), -1, dtype=np.int8)
    slot[np.arange(n_users)[:, None], users.favourites] = np.arange(n_favourites)
    merchants = _Merchants(cat, first, count, cdf, number, probe, np.empty(0), slot, grid)
    favourite = np.repeat(users.favourites.ravel(), _N_OWN_SHOPS)
    own = merchants.draw(rng, favourite)
    merchants.own = own.reshape(n_users, n_favourites, _N_OWN_SHOPS)
    return merchants


def _compromised_merchant(
    rng: np.random.Generator,
    merchants: _Merchants,
    users: _Users,
    legit: dict[str, np.ndarray],
    cfg: CompromisedMerchantConfig,
    m: int,
    days: int,
) -> dict[str, np.ndarray]:
    """``m`` fraud rows at a few compromised merchants, each during its compromise.

    Every merchant gets a compromise window of ``days_min..days_max`` days; merchants are
    taken in a random order weighted by their traffic (busy terminals are worth attacking)
    until their quotas cover ``m``, a merchant's quota being ``fraud_share / (1 -
    fraud_share)`` x its legit rows in the window. Where the data allows, merchants whose
    quota exceeds m / 4 are skipped: several merchants, none a giant. Each fraud row charges
    a card used there in the window again, soon after (on the same device, in the same city,
    at an ordinary amount and hour).
    """
    span = days * SECONDS_PER_DAY
    n_m = len(merchants.cat)
    merchant, sec = legit["merchant"], legit["sec"]
    length = np.minimum(rng.integers(cfg.days_min, cfg.days_max + 1, n_m) * SECONDS_PER_DAY, span)
    # Windows start anywhere from `length` before the data to its end and are clipped to it:
    # every stretch of the data (the test period too) is as likely to hold a compromise.
    t0 = (rng.random(n_m) * (span + length)).astype(np.int64) - length
    t1 = np.minimum(t0 + length, span)
    t0 = np.maximum(t0, 0)
    with np.errstate(divide="ignore"):  # Gumbel keys: a random order weighted by traffic
        key = np.log(np.bincount(merchant, minlength=n_m)) + rng.gumbel(size=n_m)
    order = np.argsort(-key, kind="stable")
    if m == 0:
        return _rows(**{k: v[:0] for k, v in legit.items()})
    inside = (sec >= t0[merchant]) & (sec < t1[merchant] - 1)
    if not inside.any():  # tiny data: the compromise spans all of it
        t0[:], t1[:] = 0, span
        inside = sec < span - 1
    if not inside.any():  # every legit row in the last second: charged in that second too
        inside[:] = True
    capacity = np.bincount(merchant[inside], minlength=n_m)[order]
    quota = np.ceil(cfg.fraud_share / (1.0 - cfg.fraud_share) * capacity).astype(np.int64)
    for most in (m // 4, m):  # several merchants, none with more than its share
        fits = (quota > 0) & (quota <= max(most, 1))
        if quota[fits].sum() >= m:
            order, quota = order[fits], quota[fits]
            break
    else:  # small data: every merchant with traffic, at a higher share
        quota = np.ceil(quota * (m / quota.sum())).astype(np.int64)
    cum = np.cumsum(quota)
    k = int(np.searchsorted(cum, m)) + 1
    quota = quota[:k]
    quota[-1] -= int(cum[k - 1]) - m
    slot = np.full(n_m, -1)
    slot[order[:k]] = np.arange(k)

    # the victims: cards used at a chosen merchant inside its window, drawn with replacement
    candidates = np.flatnonzero(inside & (slot[merchant] >= 0))
    candidates = candidates[np.argsort(slot[merchant[candidates]], kind="stable")]
    per_slot = np.bincount(slot[merchant[candidates]], minlength=k)
    event = np.repeat(np.arange(k), quota)
    pick = (np.cumsum(per_slot) - per_slot)[event] + (rng.random(m) * per_slot[event]).astype(
        np.int64
    )
    row = candidates[pick]
    user = legit["user"][row]
    # again soon: minutes later, or the same time of day up to three days later
    room = t1[merchant[row]] - 1 - sec[row]
    jitter = np.minimum(1 + (rng.random(m) * 3599).astype(np.int64), room)
    later = np.minimum(rng.integers(0, 4, m), (room - jitter) // SECONDS_PER_DAY)
    cat = legit["cat"][row]
    amount = users.spend[user] * _CAT_AMOUNT[cat] * rng.lognormal(0.0, 0.5, m)
    return _rows(
        user=user,
        sec=sec[row] + jitter + later * SECONDS_PER_DAY,
        amount=_round_amount(amount),
        cat=cat,
        ttype=legit["ttype"][row],
        device=legit["device"][row],
        device_type=legit["device_type"][row],
        loc=legit["loc"][row],
        pattern=np.full(m, 1 + PATTERNS.index("compromised_merchant")),
        merchant=merchant[row],
    )
