"""Deterministic, vectorised synthetic card transactions with labelled fraud patterns.

Users get stable profiles (home city, devices, typical spend, activity rate, favourite
merchant categories and their own shops in them); merchants have one category each and a
skewed popularity. Legitimate rows follow those profiles with realistic noise (night owls,
trips, replacement phones, splurges, quick successive purchases). Fraud events of six patterns
are then injected on victims that already have some history, so a model can learn fraud from
time, amount and point-in-time user- and merchant-history features, but not trivially.

Ids: users ``u_<n>``, merchants ``m_<n>`` (numbered in no particular order), transactions
``tx_<n>`` numbered in time order, devices
``d_<user n>_<k>`` where k=0 is the user's card (device type "pos", in-store purchases and cash
withdrawals), k=1..3 their own phones/computers, and higher k a device first seen later (a new
phone, a borrowed computer, or a fraudster's device).

Everything is drawn from one ``np.random.default_rng(seed)`` in a fixed order, with no Python
loop over rows or users: the same ``(DataConfig, seed)`` always yields the same table, and
1M rows take a few seconds.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from fraud.data import schema
from fraud.data.synthetic.config import PATTERNS, SECONDS_PER_DAY, DataConfig, start_date
from fraud.data.synthetic.merchants import _compromised_merchant, _make_merchants
from fraud.data.synthetic.patterns import (
    _account_takeover,
    _card_testing,
    _high_amount,
    _high_risk_merchant,
    _night_time,
    _plan,
    _Victims,
)
from fraud.data.synthetic.profiles import _legit, _make_users

# --------------------------------------------------------------------------- assembly


def _pad_ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    text = pc.utf8_lpad(pc.cast(pa.array(numbers, type=pa.int64()), pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, text, "")


def _lookup(values: tuple[str, ...] | list[str], codes: np.ndarray) -> pd.Series:
    return pa.array(list(values), type=pa.string()).take(pa.array(codes)).to_pandas()


def _assemble(
    rows: dict[str, np.ndarray], start_s: int, n_users: int, n_merchants: int
) -> pd.DataFrame:
    """Sort by time, number the transactions, and build the typed table (``rows["merchant"]``
    holds merchant id numbers)."""
    order = np.argsort(rows["sec"], kind="stable")
    rows = {k: np.asarray(v)[order] for k, v in rows.items()}
    n = len(order)
    epoch_s = start_s + rows["sec"].astype(np.int64)

    user_width = max(6, len(str(n_users - 1)))
    user_ids = _pad_ids("u_", np.arange(n_users), user_width)
    merchant_ids = _pad_ids("m_", np.arange(n_merchants), max(6, len(str(n_merchants - 1))))
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
        schema.MERCHANT_ID: merchant_ids.take(pa.array(rows["merchant"])).to_pandas(),
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
    merchants = _make_merchants(rng, cfg.merchant_count(), users)
    legit = _legit(rng, users, cfg.n_transactions - n_fraud, cfg.days, first.weekday())
    legit["merchant"] = merchants.for_users(rng, users, legit["user"], legit["cat"])
    victims = _Victims.from_legit(users, merchants, legit, cfg.days)

    p = cfg.patterns
    parts = [
        legit,
        _account_takeover(rng, victims, p.account_takeover, plan["account_takeover"]),
        _card_testing(rng, victims, p.card_testing, plan["card_testing"] - 1),
        _high_amount(rng, victims, p.high_amount, len(plan["high_amount"])),
        _night_time(rng, victims, p.night_time, len(plan["night_time"])),
        _high_risk_merchant(rng, victims, p.high_risk_merchant, len(plan["high_risk_merchant"])),
        _compromised_merchant(
            rng,
            merchants,
            users,
            legit,
            p.compromised_merchant,
            len(plan["compromised_merchant"]),
            cfg.days,
        ),
    ]
    rows = {key: np.concatenate([part[key] for part in parts]) for key in legit}
    rows["merchant"] = merchants.number[rows["merchant"]]
    return _assemble(rows, start_s, cfg.n_users, len(merchants.cat))
