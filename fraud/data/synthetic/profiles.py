"""Fixed profiles (categories, locations, hours) and the users and legitimate activity drawn
from them."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fraud.data import schema
from fraud.data.synthetic.config import SECONDS_PER_DAY

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
