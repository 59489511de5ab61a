"""Tests for fraud.features: point-in-time history, train-only state, batch/record parity."""

from __future__ import annotations

import math
import pickle
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraud.config import ConfigError, parse_section
from fraud.data import schema
from fraud.features.history import compute_history
from fraud.features.spec import (
    BASE_COLUMNS,
    DERIVED_COLUMNS,
    UNKNOWN,
    EntityConfig,
    FeatureConfig,
    categorical_columns,
)
from fraud.features.state import FeatureState, fit_state
from fraud.features.transform import transform, transform_record, transform_records

T0 = pd.Timestamp("2024-03-01 00:00:00", tz="UTC")
WINDOWS = {"1h": 3600, "24h": 86400, "7d": 604800}


def user_cfg(windows: dict[str, int] = WINDOWS, **changes: object) -> FeatureConfig:
    """Only the user entity, with ``windows`` (the entity-level tests are in test_entities)."""
    return FeatureConfig(entities={"user_id": EntityConfig(dict(windows))}, **changes)  # type: ignore[arg-type]


def history_columns(windows: dict[str, int]) -> list[str]:
    return user_cfg(windows).history_columns()


USER = user_cfg()
HISTORY_COLUMNS = USER.history_columns()


def frame(rows: Sequence[dict[str, object]]) -> pd.DataFrame:
    """A processed-schema frame; each row gives user, t (seconds after T0), amount, extras."""
    records = []
    for i, row in enumerate(rows):
        ts = T0 + pd.Timedelta(seconds=float(row["t"]))  # type: ignore[arg-type]
        records.append(
            {
                "transaction_id": str(row.get("tid", f"t{i}")),
                "user_id": str(row["user"]),
                "timestamp": ts,
                "amount": float(row["amount"]),  # type: ignore[arg-type]
                "merchant_category": str(row.get("merchant", "grocery")),
                "transaction_type": str(row.get("type", "purchase")),
                "device_id": str(row.get("device", "d0")),
                "device_type": str(row.get("device_type", "mobile")),
                "location": str(row.get("location", "Boston")),
                "hour_of_day": ts.hour,
                "day_of_week": ts.day_of_week,
                "is_fraud": int(row.get("fraud", 0)),  # type: ignore[call-overload]
            }
        )
    df = pd.DataFrame.from_records(records)
    df["timestamp"] = pd.DatetimeIndex(df["timestamp"]).as_unit("ns")
    return df


def random_frame(n: int, n_users: int, seed: int, span_days: float = 30.0) -> pd.DataFrame:
    """A generated-like frame built with numpy: skewed users, ties, cents amounts, fraud labels."""
    rng = np.random.default_rng(seed)
    users = np.minimum(rng.zipf(1.6, n), n_users) - 1
    seconds = rng.integers(0, int(span_days * 86400), n)
    seconds[rng.random(n) < 0.05] = 3600  # force same-timestamp ties
    cats = np.array(schema.MERCHANT_CATEGORIES)
    df = pd.DataFrame(
        {
            "transaction_id": [f"tx{i}" for i in range(n)],
            "user_id": [f"u{u}" for u in users],
            "timestamp": pd.DatetimeIndex(T0 + pd.to_timedelta(seconds, unit="s")).as_unit("ns"),
            "amount": np.round(rng.lognormal(3.5, 1.3, n), 2) + 0.01,
            "merchant_category": cats[rng.integers(0, len(cats), n)],
            "transaction_type": np.array(schema.TRANSACTION_TYPES)[rng.integers(0, 4, n)],
            "device_id": [f"d{u}_{k}" for u, k in zip(users, rng.integers(0, 3, n), strict=True)],
            "merchant_id": [f"m{m}" for m in np.minimum(rng.zipf(1.4, n), 40)],
            "device_type": np.array(schema.DEVICE_TYPES)[rng.integers(0, 4, n)],
            "location": np.array(schema.LOCATIONS)[rng.integers(0, 8, n)],
            "is_fraud": (rng.random(n) < 0.1).astype(np.int64),
        }
    )
    df["hour_of_day"] = df["timestamp"].dt.hour.astype(np.int64)
    df["day_of_week"] = df["timestamp"].dt.day_of_week.astype(np.int64)
    return df


def brute_force_history(df: pd.DataFrame, windows: dict[str, int]) -> pd.DataFrame:
    """The definition, row by row in Python: strictly earlier rows of the same user."""
    out = []
    t = (df["timestamp"] - T0).dt.total_seconds().to_numpy()
    for i in range(len(df)):
        prior = (df["user_id"].to_numpy() == df["user_id"].iat[i]) & (t < t[i])
        amounts = df["amount"].to_numpy()[prior]
        row: dict[str, float] = {
            "user_transaction_count": float(prior.sum()),
            "user_avg_amount": float(amounts.mean()) if amounts.size else math.nan,
            "user_std_amount": float(amounts.std()) if amounts.size else math.nan,
            "seconds_since_last_transaction": float(t[i] - t[prior].max())
            if amounts.size
            else math.nan,
        }
        for label, w in windows.items():
            inside = prior & (t >= t[i] - w)
            row[f"user_txn_count_{label}"] = float(inside.sum())
            row[f"user_amount_sum_{label}"] = float(df["amount"].to_numpy()[inside].sum())
        for name, col in (
            ("is_new_device", "device_id"),
            ("is_new_location", "location"),
            ("is_new_merchant_category", "merchant_category"),
        ):
            row[name] = float(df[col].iat[i] not in set(df[col].to_numpy()[prior]))
        out.append(row)
    return pd.DataFrame(out, index=df.index)[history_columns(windows)]


def with_history(df: pd.DataFrame, cfg: FeatureConfig | None = None) -> pd.DataFrame:
    """``df`` with the history of every entity it has (the default config's)."""
    return pd.concat([df, compute_history(df, cfg or FeatureConfig())], axis=1)


# --------------------------------------------------------------------------------------------
# compute_history
# --------------------------------------------------------------------------------------------


@pytest.fixture
def two_users() -> pd.DataFrame:
    """User a: 4 transactions at 0, 30 min, 1.5 h, 25 h; user b interleaved."""
    return frame(
        [
            {"tid": "a1", "user": "a", "t": 0, "amount": 10, "device": "d1", "location": "L1"},
            {"tid": "b1", "user": "b", "t": 900, "amount": 500, "device": "d1", "location": "L1"},
            {"tid": "a2", "user": "a", "t": 1800, "amount": 20, "device": "d1", "location": "L2"},
            {"tid": "b2", "user": "b", "t": 1800, "amount": 700, "device": "d9", "location": "L1"},
            {
                "tid": "a3",
                "user": "a",
                "t": 5400,
                "amount": 30,
                "device": "d2",
                "location": "L1",
            },
            {
                "tid": "a4",
                "user": "a",
                "t": 90000,
                "amount": 40,
                "device": "d1",
                "location": "L2",
                "merchant": "crypto",
            },
        ]
    )


def test_history_exact_values(two_users: pd.DataFrame) -> None:
    h = compute_history(two_users, USER).set_axis(two_users["transaction_id"])
    assert list(h.columns) == list(HISTORY_COLUMNS)
    nan = math.nan
    expected = {
        # count, avg, std, since, 1h n/sum, 24h n/sum, 7d n/sum, new device/location/merchant
        "a1": [0, nan, nan, nan, 0, 0, 0, 0, 0, 0, 1, 1, 1],
        "a2": [1, 10, 0, 1800, 1, 10, 1, 10, 1, 10, 0, 1, 0],
        # 1h window [1800, 5400) includes the boundary transaction at 1800
        "a3": [2, 15, 5, 3600, 1, 20, 2, 30, 2, 30, 1, 0, 0],
        # 24h window [3600, 90000) excludes the one at 1800
        "a4": [3, 20, math.sqrt(200 / 3), 84600, 0, 0, 1, 30, 3, 60, 0, 0, 1],
        "b1": [0, nan, nan, nan, 0, 0, 0, 0, 0, 0, 1, 1, 1],
        "b2": [1, 500, 0, 900, 1, 500, 1, 500, 1, 500, 1, 0, 0],
    }
    for tid, values in expected.items():
        np.testing.assert_allclose(h.loc[tid].to_numpy(dtype=float), values, rtol=1e-15)


def test_history_same_timestamp_rows_do_not_see_each_other() -> None:
    df = frame(
        [
            {"tid": "x1", "user": "c", "t": 100, "amount": 5, "device": "dx"},
            {"tid": "x2", "user": "c", "t": 100, "amount": 7, "device": "dx"},
            {"tid": "x3", "user": "c", "t": 200, "amount": 9, "device": "dx"},
        ]
    )
    h = compute_history(df, USER).set_axis(df["transaction_id"])
    for tid in ("x1", "x2"):
        assert h.at[tid, "user_transaction_count"] == 0
        assert h.at[tid, "user_txn_count_1h"] == 0
        assert h.at[tid, "is_new_device"] == 1.0
        assert math.isnan(h.at[tid, "seconds_since_last_transaction"])
    assert h.at["x3", "user_transaction_count"] == 2
    assert h.at["x3", "user_amount_sum_1h"] == 12.0
    assert h.at["x3", "user_avg_amount"] == 6.0
    assert h.at["x3", "user_std_amount"] == 1.0
    assert h.at["x3", "seconds_since_last_transaction"] == 100.0
    assert h.at["x3", "is_new_device"] == 0.0


def test_history_matches_brute_force_definition() -> None:
    df = random_frame(400, 25, seed=3, span_days=3)
    windows = {"10m": 600, "1h": 3600, "1d": 86400}
    got = compute_history(df, user_cfg(windows))
    want = brute_force_history(df, windows)
    np.testing.assert_allclose(got.to_numpy(dtype=float), want.to_numpy(), rtol=1e-9, atol=1e-9)


def test_history_independent_of_input_order_and_index() -> None:
    df = random_frame(3000, 200, seed=5)
    base = compute_history(df, USER).set_axis(df["transaction_id"])
    shuffled = df.sample(frac=1.0, random_state=11)
    shuffled.index = [f"row{i}" for i in range(len(shuffled))]
    h = compute_history(shuffled, USER)
    assert list(h.index) == list(shuffled.index)
    pd.testing.assert_frame_equal(h.set_axis(shuffled["transaction_id"]).loc[base.index], base)


def test_history_columns_follow_window_duration_and_empty_input() -> None:
    cols = history_columns({"7d": 604800, "1h": 3600})
    assert cols[4:8] == [
        "user_txn_count_1h",
        "user_amount_sum_1h",
        "user_txn_count_7d",
        "user_amount_sum_7d",
    ]
    empty = compute_history(frame([{"user": "a", "t": 0, "amount": 1}]).iloc[:0], USER)
    assert list(empty.columns) == list(HISTORY_COLUMNS)
    assert len(empty) == 0


def test_history_rejects_missing_columns() -> None:
    df = frame([{"user": "a", "t": 0, "amount": 1}]).drop(columns=["amount"])
    with pytest.raises(ValueError, match="amount"):
        compute_history(df, USER)


def test_history_has_the_novelty_flags_of_the_columns_there() -> None:
    df = frame([{"user": "a", "t": 0, "amount": 1}, {"user": "a", "t": 5, "amount": 2}])
    without_device = compute_history(df.drop(columns=["device_id"]), USER)
    assert "is_new_device" not in without_device
    assert {"is_new_location", "is_new_merchant_category"} <= set(without_device)
    minimal = df.drop(columns=["device_id", "location", "merchant_category"])
    assert not [c for c in compute_history(minimal, USER) if c.startswith("is_new_")]


_row = st.fixed_dictionaries(
    {
        "user": st.sampled_from(["a", "b", "c"]),
        "amount": st.one_of(
            st.sampled_from([0.1, 0.2, 0.3, 12.34, 1e6, 1 / 3]),
            st.floats(min_value=0.01, max_value=1e5, allow_nan=False),
        ),
        "device": st.sampled_from(["d1", "d2"]),
        "location": st.sampled_from(["L1", "L2"]),
        "merchant": st.sampled_from(["grocery", "crypto"]),
    }
)


@settings(max_examples=60, deadline=None)
@given(
    base=st.lists(st.tuples(_row, st.integers(0, 600)), min_size=1, max_size=25),
    later=st.lists(
        st.tuples(_row, st.integers(1, 600), st.sampled_from(["a", "b", "new1", "new2"])),
        min_size=1,
        max_size=15,
    ),
    seed=st.integers(0, 2**16),
)
def test_appending_later_transactions_never_changes_earlier_history(
    base: list[tuple[dict[str, object], int]],
    later: list[tuple[dict[str, object], int, str]],
    seed: int,
) -> None:
    windows = {"10s": 10, "1m": 60, "1h": 3600}
    rows = [{**r, "tid": f"b{i}", "t": t} for i, (r, t) in enumerate(base)]
    t_max = max(t for _, t in base)
    rows_later = [
        {**r, "tid": f"l{i}", "user": user, "t": t_max + dt}
        for i, (r, dt, user) in enumerate(later)
    ]
    before = compute_history(frame(rows), user_cfg(windows)).set_axis([r["tid"] for r in rows])
    combined = frame(rows + rows_later).sample(frac=1.0, random_state=seed)
    after = compute_history(combined, user_cfg(windows)).set_axis(
        combined["transaction_id"].to_numpy()
    )
    pd.testing.assert_frame_equal(after.loc[before.index], before, check_exact=True)


# --------------------------------------------------------------------------------------------
# Config and fitted state
# --------------------------------------------------------------------------------------------


def test_feature_order_and_history_switch() -> None:
    names = USER.feature_names()
    assert names == [
        *BASE_COLUMNS,
        *categorical_columns(),
        *HISTORY_COLUMNS,
        *DERIVED_COLUMNS,
    ]
    assert names[:8] == [
        "hour_of_day",
        "day_of_week",
        "hour_sin",
        "hour_cos",
        "is_night",
        "is_weekend",
        "amount",
        "log_amount",
    ]
    assert names[8:10] == ["merchant_category_code", "merchant_category_fraud_rate"]
    off = FeatureConfig(use_history=False).feature_names()
    assert FeatureConfig().feature_names()[: len(names)] == names  # other entities come after
    assert off == [*BASE_COLUMNS, *categorical_columns()]


def test_exclude_and_use_history_in_state(two_users: pd.DataFrame) -> None:
    df = with_history(two_users)
    cfg = FeatureConfig(exclude=["hour_sin", "user_std_amount", "location_code"])
    state = fit_state(df, cfg)
    full = FeatureConfig().feature_names(state.inputs)
    assert state.feature_names == [
        n for n in full if n not in {"hour_sin", "user_std_amount", "location_code"}
    ]
    x = transform(df, state)
    x_full = transform(df, fit_state(df, FeatureConfig()))
    keep = [full.index(n) for n in state.feature_names]
    np.testing.assert_array_equal(x, x_full[:, keep])

    no_hist = fit_state(two_users, FeatureConfig(use_history=False, exclude=["amount"]))
    assert no_hist.feature_names == [
        n for n in [*BASE_COLUMNS, *categorical_columns()] if n != "amount"
    ]
    assert transform(two_users, no_hist).shape == (len(two_users), len(no_hist.feature_names))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"exclude": ["amount", "not_a_feature", "bogus"]}, "bogus, not_a_feature"),
        ({"entities": {"user_id": EntityConfig({"1 h": 3600})}}, "1 h"),
        ({"entities": {"user_id": EntityConfig({"1h": 0})}}, r"user_id\.windows '1h'.*positive"),
        ({"entities": {"user_id": EntityConfig({"1h": 3600, "60m": 3600})}}, "repeat"),
        ({"entities": {"user_id": EntityConfig(risk_windows={"7d": -1})}}, "risk_windows"),
        ({"entities": {"user_id": EntityConfig(aggregates=["median"])}}, "aggregates"),
        ({"entities": {"user_id": EntityConfig(aggregates=["sum", "sum"])}}, "distinct"),
        ({"entities": {"merchant_id": EntityConfig({"1d": 86400})}}, "must include user_id"),
        ({"entities": {"user_id": EntityConfig(), "ip": EntityConfig()}}, "ip: not an id"),
        (
            {"entities": {"user_id": EntityConfig(), "merchant_id": EntityConfig()}},
            "merchant_id has no window aggregates and no risk_windows",
        ),
        ({"label_delay_days": -1}, "label_delay_days"),
        ({"risk_smoothing": -1.0}, "risk_smoothing"),
        ({"zscore_std_floor": 0.0}, "zscore_std_floor"),
        ({"category_smoothing": -1.0}, "category_smoothing"),
        ({"min_category_count": 0}, "min_category_count"),
    ],
)
def test_config_check_rejects_bad_values(changes: dict[str, object], message: str) -> None:
    cfg = FeatureConfig(**changes)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=message):
        cfg.check()
    with pytest.raises(ValueError, match=message):
        fit_state(frame([{"user": "a", "t": 0, "amount": 1}]), cfg)


def test_config_parses_from_a_params_section() -> None:
    section = {
        "entities": {
            "user_id": {"windows": {"1h": 3600}, "aggregates": ["count"], "risk_windows": {}},
            "merchant_id": {"risk_windows": {"7d": 604800}},
        },
        "label_delay_days": 3,
        "risk_smoothing": 1.5,
        "zscore_std_floor": 2.0,
        "category_smoothing": 5.0,
        "min_category_count": 3,
        "use_history": False,
        "exclude": ["hour_cos"],
    }
    cfg = parse_section(section, FeatureConfig, "features")
    entities = {
        "user_id": EntityConfig({"1h": 3600}, ["count"], {}),
        "merchant_id": EntityConfig(risk_windows={"7d": 604800}),
    }
    assert cfg == FeatureConfig(**{**section, "entities": entities})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"features\.min_category_count"):
        parse_section({"min_category_count": "many"}, FeatureConfig, "features")


def test_vocabularies_and_rates_fitted_on_train_only() -> None:
    rows = [
        {"user": "a", "t": 0, "amount": 1, "merchant": "grocery", "fraud": 0},
        {"user": "a", "t": 1, "amount": 1, "merchant": "grocery", "fraud": 1},
        {"user": "b", "t": 2, "amount": 1, "merchant": "crypto", "fraud": 1},
        {"user": "b", "t": 3, "amount": 1, "merchant": "travel", "fraud": 0},
    ]
    train = frame(rows)
    state = fit_state(train, FeatureConfig(category_smoothing=2.0, use_history=False))
    prior = 0.5
    assert state.fraud_prior == prior
    assert state.vocabularies["merchant_category"] == [UNKNOWN, "crypto", "grocery", "travel"]
    assert state.category_fraud_rates["merchant_category"] == pytest.approx(
        [prior, (1 + 2 * prior) / (1 + 2), (1 + 2 * prior) / (2 + 2), (0 + 2 * prior) / (1 + 2)]
    )
    test = frame([{"user": "z", "t": 9, "amount": 3, "merchant": "jewelry"}])
    x = transform(test, state)
    names = state.feature_names
    assert x[0, names.index("merchant_category_code")] == 0.0
    assert x[0, names.index("merchant_category_fraud_rate")] == prior
    record = {c: test[c].iat[0] for c in test.columns}
    vector, warnings = transform_record(record, state)
    np.testing.assert_array_equal(vector, x[0])
    assert warnings == [
        "merchant_category: value 'jewelry' was not seen in training; using unknown"
    ]

    strict = fit_state(train, FeatureConfig(min_category_count=2, use_history=False))
    assert strict.vocabularies["merchant_category"] == [UNKNOWN, "grocery"]
    crypto = frame([{"user": "a", "t": 5, "amount": 1, "merchant": "crypto"}])
    assert transform(crypto, strict)[0, names.index("merchant_category_code")] == 0.0
    assert strict.category_counts["merchant_category"] == [2, 2]


def test_fit_state_records_the_training_period(
    fitted: tuple[pd.DataFrame, FeatureState, np.ndarray],
) -> None:
    full, state, _ = fitted
    train = full[full["timestamp"] <= full["timestamp"].quantile(0.7)]
    assert state.train_period == (
        train["timestamp"].min().isoformat(),
        train["timestamp"].max().isoformat(),
    )
    assert fit_state(train.drop(columns=["timestamp"]), FeatureConfig()).train_period is None


def test_fit_state_requires_clean_labels() -> None:
    df = frame([{"user": "a", "t": 0, "amount": 1}])
    df["is_fraud"] = 2
    with pytest.raises(ValueError, match="is_fraud"):
        fit_state(df, FeatureConfig())
    with pytest.raises(ValueError, match="is_fraud"):
        fit_state(df.drop(columns=["is_fraud"]), FeatureConfig())


# --------------------------------------------------------------------------------------------
# transform / transform_record parity
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fitted() -> tuple[pd.DataFrame, FeatureState, np.ndarray]:
    """A few thousand generated-like rows; state fitted on the earliest 70% only."""
    df = random_frame(4000, 300, seed=7)
    late = df["timestamp"] > df["timestamp"].quantile(0.9)
    df.loc[late & (np.arange(len(df)) % 7 == 0), "location"] = "Atlantis"  # unseen in train
    df.loc[df.index[:3], "amount"] = [0.01, 1e6, 123456.78]
    full = with_history(df)
    train = full[full["timestamp"] <= full["timestamp"].quantile(0.7)]
    state = fit_state(train, FeatureConfig(zscore_std_floor=2.5))
    return full, state, transform(full, state)


def test_transform_shape_and_values(fitted: tuple[pd.DataFrame, FeatureState, np.ndarray]) -> None:
    full, state, x = fitted
    assert x.dtype == np.float64
    assert x.shape == (len(full), len(state.feature_names))
    assert x.flags.c_contiguous
    col = {n: x[:, i] for i, n in enumerate(state.feature_names)}
    hour = full["hour_of_day"].to_numpy()
    np.testing.assert_array_equal(col["hour_sin"], np.sin(2 * np.pi * hour / 24))
    np.testing.assert_array_equal(col["is_night"], (hour < 6).astype(float))
    np.testing.assert_array_equal(col["is_weekend"], (full["day_of_week"] >= 5).astype(float))
    np.testing.assert_array_equal(col["log_amount"], np.log1p(full["amount"].to_numpy()))
    avg, std = full["user_avg_amount"].to_numpy(), full["user_std_amount"].to_numpy()
    amount = full["amount"].to_numpy()
    np.testing.assert_array_equal(col["amount_zscore"], (amount - avg) / np.maximum(std, 2.5))
    np.testing.assert_array_equal(col["amount_to_avg_ratio"], amount / avg)
    first = full["user_transaction_count"].to_numpy() == 0
    assert np.isnan(col["amount_zscore"][first]).all()
    assert not np.isnan(col["amount_zscore"][~first]).any()
    unseen = (full["location"] == "Atlantis").to_numpy()
    assert unseen.any()
    assert (col["location_code"][unseen] == 0).all()
    assert (col["location_fraud_rate"][unseen] == state.fraud_prior).all()


def test_record_path_matches_batch_exactly(
    fitted: tuple[pd.DataFrame, FeatureState, np.ndarray],
) -> None:
    full, state, x = fitted
    records = full.to_dict("records")
    n_unknown = 0
    for i, record in enumerate(records):
        vector, warnings = transform_record(record, state)
        assert vector.dtype == np.float64
        np.testing.assert_array_equal(vector, x[i])
        n_unknown += len(warnings)
    assert n_unknown == int((full["location"] == "Atlantis").sum()) > 0


@pytest.mark.parametrize(
    "dropped",
    [
        ["device_id"],
        ["device_type", "transaction_type"],
        ["merchant_category", "transaction_type", "device_id", "device_type", "location"],
    ],
    ids=["no-device-id", "two-categoricals-fewer", "ids-time-amount-label-only"],
)
def test_features_follow_the_columns_there_and_both_paths_agree(dropped: list[str]) -> None:
    """A table without some inputs: no features of theirs, and record == batch bit for bit."""
    df = random_frame(1500, 120, seed=3).drop(columns=dropped)
    full = with_history(df)
    state = fit_state(full, FeatureConfig())
    assert state.inputs == [c for c in schema.FEATURE_INPUTS if c not in dropped]
    assert not [n for n in state.feature_names if any(n.startswith(d) for d in dropped)]
    x = transform(full, state)
    records = full.to_dict("records")
    np.testing.assert_array_equal(np.vstack([transform_record(r, state)[0] for r in records]), x)
    np.testing.assert_array_equal(transform_records(records, state)[0], x)


def test_records_path_matches_record_path_with_absent_history_and_unknowns(
    fitted: tuple[pd.DataFrame, FeatureState, np.ndarray],
) -> None:
    """transform_records (serving's batch path) = transform_record row by row, warnings too."""
    full, state, x = fitted
    records = full.to_dict("records")
    history = state.history_columns
    for i in range(0, len(records), 5):  # some records carry no history, some null history
        records[i] = {k: v for k, v in records[i].items() if k not in history}
    for i in range(1, len(records), 7):
        records[i] = {**records[i], "user_avg_amount": None, "merchant_category": None}
    matrix, warnings = transform_records(records, state)
    singles = [transform_record(record, state) for record in records]
    np.testing.assert_array_equal(matrix, np.vstack([vector for vector, _ in singles]))
    assert warnings == [w for _, w in singles]
    assert sum(map(len, warnings)) > len(records) // 7
    untouched = [i for i in range(len(records)) if i % 5 and i % 7 != 1]
    np.testing.assert_array_equal(matrix[untouched], x[untouched])
    with pytest.raises(ValueError, match="missing field 'amount'"):
        transform_records([{k: v for k, v in records[2].items() if k != "amount"}], state)


def test_record_without_history_equals_a_first_ever_transaction(
    fitted: tuple[pd.DataFrame, FeatureState, np.ndarray],
) -> None:
    full, state, x = fitted
    first_rows = np.flatnonzero(full["user_transaction_count"].to_numpy() == 0)
    assert len(first_rows) > 10
    history = set(state.history_columns)
    first_rows = [
        i
        for i in first_rows
        if full.iloc[i][[h for h in history if h.startswith(("merchant_", "device_"))]].eq(0).all()
    ]
    assert len(first_rows) > 10
    for i in first_rows:
        record = {k: v for k, v in full.iloc[i].to_dict().items() if k not in history}
        vector, _ = transform_record(record, state)
        np.testing.assert_array_equal(vector, x[i])
    assert state.history_defaults == FeatureConfig().history_defaults(state.inputs)
    none_valued = {**full.iloc[first_rows[0]].to_dict(), "user_avg_amount": None}
    np.testing.assert_array_equal(transform_record(none_valued, state)[0], x[first_rows[0]])


def test_record_with_partial_history_uses_defaults_for_the_rest(
    fitted: tuple[pd.DataFrame, FeatureState, np.ndarray],
) -> None:
    _, state, _ = fitted
    record = {
        "amount": 150.0,
        "hour_of_day": 3,
        "day_of_week": 6,
        "merchant_category": "crypto",
        "transaction_type": "online",
        "device_type": "mobile",
        "location": "Chicago",
        "user_avg_amount": 50.0,
        "user_transaction_count": 12,
    }
    vector, warnings = transform_record(record, state)
    value = dict(zip(state.feature_names, vector, strict=True))
    assert warnings == []
    assert value["user_transaction_count"] == 12.0
    assert value["user_txn_count_24h"] == 0.0
    assert value["is_new_device"] == 1.0
    assert math.isnan(value["user_std_amount"])
    assert math.isnan(value["amount_zscore"])  # std unknown -> no z-score, as in training
    assert value["amount_to_avg_ratio"] == 3.0
    assert value["is_night"] == 1.0
    assert value["is_weekend"] == 1.0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"hour_of_day": 24}, "hour_of_day"),
        ({"hour_of_day": 2.5}, "hour_of_day"),
        ({"hour_of_day": True}, "hour_of_day"),
        ({"day_of_week": -1}, "day_of_week"),
        ({"amount": 0.0}, "amount"),
        ({"amount": math.nan}, "amount"),
        ({"amount": "12"}, "amount"),
        ({"user_avg_amount": "lots"}, "user_avg_amount"),
        ({"device_type": None, "location": 7}, None),
    ],
)
def test_record_path_rejects_bad_fields(
    fitted: tuple[pd.DataFrame, FeatureState, np.ndarray],
    changes: dict[str, object],
    message: str | None,
) -> None:
    _, state, _ = fitted
    record = {
        "amount": 10.0,
        "hour_of_day": 12,
        "day_of_week": 2,
        "merchant_category": "grocery",
        "transaction_type": "purchase",
        "device_type": "pos",
        "location": "Chicago",
        **changes,
    }
    if message is None:  # wrong-typed categoricals are unknown values, reported as warnings
        _, warnings = transform_record(record, state)
        assert warnings == [
            "device_type: value None was not seen in training; using unknown",
            "location: value 7 was not seen in training; using unknown",
        ]
        return
    with pytest.raises(ValueError, match=message):
        transform_record(record, state)


@pytest.mark.parametrize("field", ["amount", "hour_of_day", "merchant_category"])
def test_record_path_requires_fields(
    fitted: tuple[pd.DataFrame, FeatureState, np.ndarray], field: str
) -> None:
    full, state, _ = fitted
    record = full.iloc[0].to_dict()
    del record[field]
    with pytest.raises(ValueError, match=f"missing field '{field}'"):
        transform_record(record, state)


def test_transform_rejects_missing_history_and_bad_hours(
    fitted: tuple[pd.DataFrame, FeatureState, np.ndarray],
) -> None:
    full, state, _ = fitted
    with pytest.raises(ValueError, match="user_std_amount"):
        transform(full.drop(columns=["user_std_amount"]), state)
    bad = full.head(5).copy()
    bad["hour_of_day"] = [1, 2, 3, 24, 5]
    with pytest.raises(ValueError, match=r"hour_of_day .* got 24$"):
        transform(bad, state)


def test_state_pickles_as_plain_data(
    fitted: tuple[pd.DataFrame, FeatureState, np.ndarray],
) -> None:
    full, state, x = fitted
    payload = pickle.dumps(state)
    assert b"_lookups" not in payload
    restored = pickle.loads(payload)
    assert pickle.dumps(restored) == payload
    assert restored.feature_names == state.feature_names
    for i in (0, 17, 999):
        np.testing.assert_array_equal(transform_record(full.iloc[i].to_dict(), restored)[0], x[i])
    np.testing.assert_array_equal(transform(full.head(50), restored), x[:50])


def test_with_amount_equals_transform_of_the_changed_amount(
    fitted: tuple[pd.DataFrame, FeatureState, np.ndarray],
) -> None:
    from fraud.features.transform import with_amount

    full, state, x = fitted
    new = np.where(np.arange(len(full)) % 2, full["amount"] * 10, 3.5)
    np.testing.assert_array_equal(
        with_amount(x, state, new), transform(full.assign(amount=new), state)
    )
    lean = fit_state(full, FeatureConfig(exclude=["user_std_amount"]))
    with pytest.raises(ValueError, match="user_std_amount must be among"):
        with_amount(transform(full, lean), lean, new)
