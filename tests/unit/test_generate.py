"""Tests of the synthetic transaction generator: determinism, schema, merchants, fraud patterns,
config."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fraud.config import parse_section
from fraud.data import schema
from fraud.data.synthetic.config import PATTERNS, DataConfig
from fraud.data.synthetic.generate import generate_transactions

N_ROWS, N_USERS, DAYS, SEED = 5_000, 300, 30, 11
SECOND = pd.Timedelta(seconds=1)


def small_config(**changes: object) -> DataConfig:
    """A small, fast configuration (5,000 rows, 300 users, 30 days)."""
    return dataclasses.replace(
        DataConfig(n_transactions=N_ROWS, n_users=N_USERS, days=DAYS), **changes
    )


@pytest.fixture(scope="module")
def cfg() -> DataConfig:
    return small_config()


@pytest.fixture(scope="module")
def df(cfg: DataConfig) -> pd.DataFrame:
    return generate_transactions(cfg, SEED)


@pytest.fixture(scope="module")
def legit(df: pd.DataFrame) -> pd.DataFrame:
    return df[df[schema.LABEL] == 0]


@pytest.fixture(scope="module")
def big() -> pd.DataFrame:
    """40,000 rows, 2,000 users (400 merchants), 30 days: enough for merchant statistics."""
    return generate_transactions(small_config(n_transactions=40_000, n_users=2_000), SEED)


def rows_of(df: pd.DataFrame, pattern: str) -> pd.DataFrame:
    return df[df[schema.FRAUD_PATTERN] == pattern]


# --------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_frame_and_parquet_bytes(
    cfg: DataConfig, df: pd.DataFrame, tmp_path: Path
) -> None:
    again = generate_transactions(cfg, SEED)
    pd.testing.assert_frame_equal(df, again)
    df.to_parquet(tmp_path / "a.parquet", index=False)
    again.to_parquet(tmp_path / "b.parquet", index=False)
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()


def test_different_seed_gives_different_data(cfg: DataConfig, df: pd.DataFrame) -> None:
    other = generate_transactions(cfg, SEED + 1)
    assert len(other) == len(df)
    assert not other[schema.AMOUNT].equals(df[schema.AMOUNT])
    assert not other[schema.TIMESTAMP].equals(df[schema.TIMESTAMP])


def test_config_is_not_mutated(cfg: DataConfig) -> None:
    before = dataclasses.asdict(cfg)
    generate_transactions(cfg, SEED)
    assert dataclasses.asdict(cfg) == before


# --------------------------------------------------------------------------- schema


@pytest.mark.parametrize(("n_rows", "n_users"), [(1, 1), (7, 50), (N_ROWS, N_USERS), (999, 5)])
def test_exact_row_count_and_range_index(n_rows: int, n_users: int) -> None:
    out = generate_transactions(small_config(n_transactions=n_rows, n_users=n_users), SEED)
    assert len(out) == n_rows
    assert out.index.equals(pd.RangeIndex(n_rows))


def test_columns_and_dtypes(df: pd.DataFrame) -> None:
    assert list(df.columns) == [*schema.COLUMNS, schema.FRAUD_PATTERN]
    assert str(df[schema.TIMESTAMP].dtype) == "datetime64[ns, UTC]"
    assert df[schema.AMOUNT].dtype == np.float64
    for col in (schema.HOUR, schema.DAY, schema.LABEL):
        assert df[col].dtype == np.int64, col
    for col in (
        "transaction_id",
        "user_id",
        schema.MERCHANT_ID,
        schema.DEVICE_ID,
        schema.FRAUD_PATTERN,
    ):
        assert pd.api.types.is_string_dtype(df[col]), col
    for col in schema.CATEGORICAL_COLUMNS:
        assert pd.api.types.is_string_dtype(df[col]), col
    assert df.drop(columns=schema.FRAUD_PATTERN).notna().all().all()


def test_category_values_come_from_the_schema(df: pd.DataFrame) -> None:
    assert set(df["merchant_category"]) == set(schema.MERCHANT_CATEGORIES)
    assert set(df["transaction_type"]) == set(schema.TRANSACTION_TYPES)
    assert set(df["device_type"]) == set(schema.DEVICE_TYPES)
    assert set(df["location"]) <= set(schema.LOCATIONS)
    assert set(df[schema.FRAUD_PATTERN]) == {"", *PATTERNS}


def test_hour_and_day_match_timestamp(df: pd.DataFrame) -> None:
    ts = df[schema.TIMESTAMP]
    assert (df[schema.HOUR] == ts.dt.hour).all()
    assert (df[schema.DAY] == ts.dt.day_of_week).all()
    assert df[schema.HOUR].between(0, 23).all()
    assert df[schema.DAY].between(0, 6).all()


def test_timestamps_in_window_and_sorted(cfg: DataConfig, df: pd.DataFrame) -> None:
    start = pd.Timestamp(cfg.start, tz="UTC")
    ts = df[schema.TIMESTAMP]
    assert ts.min() >= start
    assert ts.max() < start + pd.Timedelta(days=cfg.days)
    assert ts.is_monotonic_increasing
    assert df[schema.DAY].nunique() == 7


def test_transaction_ids_unique_and_increasing_with_time(df: pd.DataFrame) -> None:
    ids = df["transaction_id"]
    assert ids.is_unique
    assert ids.is_monotonic_increasing
    assert ids.iloc[0] == "tx_00000000"
    assert ids.iloc[-1] == f"tx_{len(df) - 1:08d}"
    assert df.sort_values([schema.TIMESTAMP, "transaction_id"]).index.equals(df.index)


def test_start_sets_the_clock() -> None:
    out = generate_transactions(small_config(n_transactions=500, start="2024-02-28", days=3), 1)
    assert out[schema.TIMESTAMP].min() >= pd.Timestamp("2024-02-28", tz="UTC")
    assert out[schema.TIMESTAMP].max() < pd.Timestamp("2024-03-02", tz="UTC")


def test_amounts_positive_and_in_cents(df: pd.DataFrame) -> None:
    amount = df[schema.AMOUNT].to_numpy()
    assert (amount > 0).all()
    np.testing.assert_allclose(amount * 100, np.round(amount * 100), atol=1e-6)


def test_user_ids_and_devices_belong_to_one_user(cfg: DataConfig, df: pd.DataFrame) -> None:
    assert df["user_id"].str.fullmatch(r"u_\d{6}").all()
    assert df["user_id"].nunique() <= cfg.n_users
    owner = df["device_id"].str.extract(r"^d_(\d+)_\d+$")[0]
    assert owner.notna().all()
    assert (("u_" + owner) == df["user_id"]).all()
    assert (df.groupby("device_id")["device_type"].nunique() == 1).all()


def test_schema_has_merchant_id_after_user_id() -> None:
    assert schema.COLUMNS[:3] == ("transaction_id", "user_id", schema.MERCHANT_ID)
    assert set(schema.CANONICAL_COLUMNS) == {*schema.COLUMNS} - {schema.HOUR, schema.DAY}
    assert schema.COLUMNS[-1] == schema.LABEL


# --------------------------------------------------------------------------- merchants


def test_every_row_has_a_merchant_of_its_category(cfg: DataConfig, df: pd.DataFrame) -> None:
    assert df[schema.MERCHANT_ID].str.fullmatch(r"m_\d{6}").all()
    assert df[schema.MERCHANT_ID].nunique() <= cfg.merchant_count() == N_USERS // 5
    per_merchant = df.groupby(schema.MERCHANT_ID)["merchant_category"].nunique()
    assert (per_merchant == 1).all()
    # every category has merchants, and fraud rows use the same merchants as legit ones
    assert set(df["merchant_category"]) == set(schema.MERCHANT_CATEGORIES)
    fraud = df[df[schema.LABEL] == 1]
    assert fraud[schema.MERCHANT_ID].isin(set(df.loc[df[schema.LABEL] == 0, "merchant_id"])).all()


@pytest.mark.parametrize(("n_users", "n_merchants", "expected"), [(300, None, 60), (5, None, 15),
                         (300, 15, 15), (300, 1_000, 1_000)])  # fmt: skip
def test_merchant_count_follows_users_or_the_knob(
    n_users: int, n_merchants: int | None, expected: int
) -> None:
    cfg = small_config(n_users=n_users, n_merchants=n_merchants)
    assert cfg.merchant_count() == expected
    out = generate_transactions(cfg, SEED)
    assert 0.5 * min(expected, 200) < out[schema.MERCHANT_ID].nunique() <= expected
    assert (out.groupby(schema.MERCHANT_ID)["merchant_category"].nunique() == 1).all()


def test_merchant_popularity_is_skewed_within_categories(big: pd.DataFrame) -> None:
    traffic = big[schema.MERCHANT_ID].value_counts()
    top = traffic.iloc[: len(traffic) // 10].sum() / len(big)
    assert top > 0.4  # the busiest 10% of merchants: over 40% of the rows (uniform: 10%)
    grocery = big[big["merchant_category"] == "grocery"][schema.MERCHANT_ID].value_counts()
    assert len(grocery) >= 20
    assert grocery.iloc[0] > 10 * grocery.median()


def test_users_revisit_their_own_merchants(big: pd.DataFrame) -> None:
    legit = big[big[schema.LABEL] == 0]
    rng = np.random.default_rng(0)
    # the null: the same rows with merchants shuffled within each category
    shuffled = (
        legit[schema.MERCHANT_ID]
        .groupby(legit["merchant_category"])
        .transform(lambda s: rng.permutation(s.to_numpy()))
    )

    def revisit(merchant: pd.Series) -> float:
        per_user = merchant.groupby(legit["user_id"]).agg(["size", "nunique"])
        heavy = per_user[per_user["size"] >= 20]
        return float((1 - heavy["nunique"] / heavy["size"]).median())

    assert revisit(legit[schema.MERCHANT_ID]) > 0.5
    assert revisit(legit[schema.MERCHANT_ID]) > revisit(shuffled) + 0.15
    # a user's busiest merchant takes a good share of their purchases
    top_share = legit.groupby("user_id")[schema.MERCHANT_ID].agg(
        lambda s: s.value_counts().iloc[0] / len(s)
    )
    assert top_share[legit.groupby("user_id").size() >= 20].median() > 0.15


def test_card_testing_probes_hit_few_merchants(big: pd.DataFrame) -> None:
    ct = rows_of(big, "card_testing")
    probes = ct.groupby("device_id").head(-1)  # all but the cash-out of each burst
    assert (probes.groupby("device_id")[schema.MERCHANT_ID].nunique() == 1).all()
    per_category = probes.groupby("merchant_category")[schema.MERCHANT_ID].nunique()
    assert (per_category <= 3).all()


# --------------------------------------------------------------------------- legit realism


def test_channel_consistent_with_type_and_category(df: pd.DataFrame) -> None:
    in_store = df["device_type"] == "pos"
    assert (in_store == df["transaction_type"].isin(["purchase", "withdrawal"])).all()
    assert not in_store[df["merchant_category"] == "online_retail"].any()
    assert (
        df.loc[df["transaction_type"] == "withdrawal", "merchant_category"] == "money_transfer"
    ).all()


def test_legit_rows_look_like_stable_profiles(legit: pd.DataFrame) -> None:
    night = legit[schema.HOUR].isin([0, 1, 2, 3, 4]).mean()
    assert 0.005 < night < 0.12  # mostly daytime, yet some legit night activity
    home = legit.groupby("user_id")["location"].transform(lambda s: s.value_counts().index[0])
    assert 0.8 < (legit["location"] == home).mean() < 0.98  # mostly home, some travel
    risky = legit["merchant_category"].isin(schema.HIGH_RISK_MERCHANT_CATEGORIES).mean()
    assert 0.01 < risky < 0.2  # legit high-risk purchases exist but are uncommon
    per_user = legit.groupby("user_id").size()
    assert per_user.max() > 4 * per_user.median()  # heavy and light users


# --------------------------------------------------------------------------- fraud


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("fraud_rate", [0.01, 0.015, 0.05])
def test_fraud_share_close_to_rate(seed: int, fraud_rate: float) -> None:
    out = generate_transactions(small_config(fraud_rate=fraud_rate), seed)
    share = out[schema.LABEL].mean()
    assert abs(share - fraud_rate) <= 0.1 * fraud_rate


def test_label_matches_pattern(df: pd.DataFrame) -> None:
    assert ((df[schema.LABEL] == 1) == (df[schema.FRAUD_PATTERN] != "")).all()
    assert set(df[schema.LABEL]) == {0, 1}


def test_every_weighted_pattern_appears(df: pd.DataFrame) -> None:
    counts = df[schema.FRAUD_PATTERN].value_counts()
    for pattern in PATTERNS:
        assert counts.get(pattern, 0) > 0, pattern


@pytest.mark.parametrize("off", PATTERNS)
def test_zero_weight_pattern_absent(off: str) -> None:
    cfg = small_config()
    getattr(cfg.patterns, off).weight = 0.0
    out = generate_transactions(cfg, SEED)
    present = set(out[schema.FRAUD_PATTERN]) - {""}
    assert present == set(PATTERNS) - {off}
    assert abs(out[schema.LABEL].mean() - cfg.fraud_rate) <= 0.1 * cfg.fraud_rate


def test_events_proportional_to_weight() -> None:
    cfg = small_config(n_transactions=40_000, n_users=2_000)
    cfg.patterns.high_amount.weight = 0.5
    cfg.patterns.night_time.weight = 0.25
    counts = generate_transactions(cfg, SEED)[schema.FRAUD_PATTERN].value_counts()
    assert counts["high_amount"] == pytest.approx(2 * counts["night_time"], rel=0.1)


def test_fraud_happens_after_victim_history(legit: pd.DataFrame, df: pd.DataFrame) -> None:
    first_legit = legit.groupby("user_id")[schema.TIMESTAMP].min()
    fraud = df[df[schema.LABEL] == 1]
    before = fraud[schema.TIMESTAMP] > fraud["user_id"].map(first_legit)
    assert before.all()


def test_account_takeover_is_a_burst_on_a_new_device_away_from_home(
    cfg: DataConfig, legit: pd.DataFrame, df: pd.DataFrame
) -> None:
    ato_cfg = cfg.patterns.account_takeover
    ato = rows_of(df, "account_takeover")
    legit_devices = set(zip(legit["user_id"], legit["device_id"], strict=True))
    assert not set(zip(ato["user_id"], ato["device_id"], strict=True)) & legit_devices
    bursts = ato.groupby("device_id")
    assert (bursts["user_id"].nunique() == 1).all()
    assert bursts.size().between(ato_cfg.burst_min, ato_cfg.burst_max).all()
    duration = bursts[schema.TIMESTAMP].max() - bursts[schema.TIMESTAMP].min()
    assert (duration < pd.Timedelta(minutes=ato_cfg.burst_minutes)).all()
    assert (bursts["location"].nunique() == 1).all()
    home = legit.groupby("user_id")["location"].agg(lambda s: s.value_counts().index[0])
    assert (ato["location"] != ato["user_id"].map(home)).mean() > 0.9
    assert (ato["device_type"] != "pos").all()
    assert ato[schema.AMOUNT].median() > legit[schema.AMOUNT].median()


def test_card_testing_probes_then_one_large_amount(
    cfg: DataConfig, legit: pd.DataFrame, df: pd.DataFrame
) -> None:
    ct_cfg = cfg.patterns.card_testing
    ct = rows_of(df, "card_testing")
    legit_devices = set(zip(legit["user_id"], legit["device_id"], strict=True))
    assert not set(zip(ct["user_id"], ct["device_id"], strict=True)) & legit_devices
    for _, burst in ct.groupby("device_id"):
        amounts = burst[schema.AMOUNT].to_numpy()  # df is in (timestamp, id) order
        assert ct_cfg.probes_min + 1 <= len(amounts) <= ct_cfg.probes_max + 1
        assert (amounts[:-1] <= ct_cfg.probe_max_amount).all()
        assert amounts[-1] > ct_cfg.probe_max_amount
        assert amounts[-1] > amounts[:-1].max()
        span = burst[schema.TIMESTAMP].max() - burst[schema.TIMESTAMP].min()
        assert span < pd.Timedelta(minutes=ct_cfg.burst_minutes)


def test_high_amount_is_far_above_the_users_norm(legit: pd.DataFrame, df: pd.DataFrame) -> None:
    ha = rows_of(df, "high_amount")
    usual = ha["user_id"].map(legit.groupby("user_id")[schema.AMOUNT].median())
    assert (ha[schema.AMOUNT] / usual).median() > 3
    legit_devices = set(zip(legit["user_id"], legit["device_id"], strict=True))
    own = [pair in legit_devices for pair in zip(ha["user_id"], ha["device_id"], strict=True)]
    assert np.mean(own) > 0.8


def test_night_time_rows_use_configured_hours(df: pd.DataFrame) -> None:
    assert rows_of(df, "night_time")[schema.HOUR].isin([0, 1, 2, 3, 4]).all()
    cfg = small_config()
    cfg.patterns.night_time.hours = [22, 23]
    night = rows_of(generate_transactions(cfg, SEED), "night_time")
    assert len(night) > 0
    assert night[schema.HOUR].isin([22, 23]).all()


def test_high_risk_merchant_rows_in_high_risk_categories(df: pd.DataFrame) -> None:
    hrm = rows_of(df, "high_risk_merchant")
    assert hrm["merchant_category"].isin(schema.HIGH_RISK_MERCHANT_CATEGORIES).all()


def _compromises(df: pd.DataFrame) -> pd.DataFrame:
    """Per compromised merchant: its first and last compromised-merchant fraud row."""
    cm = rows_of(df, "compromised_merchant")
    return cm.groupby(schema.MERCHANT_ID)[schema.TIMESTAMP].agg(["min", "max", "size"])


def _rows_within(df: pd.DataFrame, compromises: pd.DataFrame) -> pd.DataFrame:
    at = df.join(compromises, on=schema.MERCHANT_ID, how="inner")
    return at[at[schema.TIMESTAMP].between(at["min"], at["max"])]


def test_compromised_merchant_fraud_is_few_merchants_within_their_period(
    cfg: DataConfig, big: pd.DataFrame
) -> None:
    days_max = pd.Timedelta(days=cfg.patterns.compromised_merchant.days_max)
    compromises = _compromises(big)
    assert 1 <= len(compromises) <= 0.05 * big[schema.MERCHANT_ID].nunique()
    assert (compromises["max"] - compromises["min"] < days_max).all()
    short = small_config(n_transactions=40_000, n_users=2_000)
    short.patterns.compromised_merchant.days_min = 2
    short.patterns.compromised_merchant.days_max = 3
    spans = _compromises(generate_transactions(short, SEED))
    assert len(spans) > len(compromises)  # shorter compromises: more merchants for the rows
    assert (spans["max"] - spans["min"] < pd.Timedelta(days=3)).all()


def test_compromised_merchant_fraud_share_is_high_during_the_compromise(
    big: pd.DataFrame,
) -> None:
    within = _rows_within(big, _compromises(big))
    share = within[schema.LABEL].mean()
    assert share > max(0.3, 15 * big[schema.LABEL].mean())
    busiest = within.groupby(schema.MERCHANT_ID)[schema.LABEL].agg(["size", "mean"])
    assert busiest.sort_values("size")["mean"].iloc[-1] > 0.3
    # the same merchants outside their compromise: about the global rate
    outside = big[big[schema.MERCHANT_ID].isin(within[schema.MERCHANT_ID])].drop(within.index)
    assert outside[schema.LABEL].mean() < 0.1


def test_compromised_merchant_rows_look_ordinary(big: pd.DataFrame) -> None:
    """Own device, usual amount, daytime hours, a card used at that merchant just before."""
    legit = big[big[schema.LABEL] == 0]
    cm = rows_of(big, "compromised_merchant")
    assert len(cm) >= 30
    legit_devices = set(zip(legit["user_id"], legit["device_id"], strict=True))
    own = [pair in legit_devices for pair in zip(cm["user_id"], cm["device_id"], strict=True)]
    assert np.mean(own) == 1.0
    usual = cm["user_id"].map(legit.groupby("user_id")[schema.AMOUNT].median())
    assert 0.4 < (cm[schema.AMOUNT] / usual).median() < 2.5
    assert cm[schema.HOUR].isin([0, 1, 2, 3, 4]).mean() < 0.15
    first_visit = legit.groupby(["user_id", schema.MERCHANT_ID])[schema.TIMESTAMP].min()
    before = pd.MultiIndex.from_frame(cm[["user_id", schema.MERCHANT_ID]])
    visited = first_visit.reindex(before).to_numpy()
    assert (visited < cm[schema.TIMESTAMP].to_numpy()).all()


def test_compromised_merchants_several_at_scale() -> None:
    out = generate_transactions(DataConfig(n_transactions=200_000, n_users=10_000), SEED)
    compromises = _compromises(out)
    assert 3 <= len(compromises) <= 0.01 * out[schema.MERCHANT_ID].nunique()
    assert _rows_within(out, compromises)[schema.LABEL].mean() > 0.3


# --------------------------------------------------------------------------- config


def _set(path: str, value: object) -> Callable[[DataConfig], None]:
    def apply(cfg: DataConfig) -> None:
        *parents, name = path.split(".")
        target: object = cfg
        for parent in parents:
            target = getattr(target, parent)
        setattr(target, name, value)

    return apply


def _zero_all_weights(cfg: DataConfig) -> None:
    for name in PATTERNS:
        getattr(cfg.patterns, name).weight = 0.0


BAD_VALUES = [
    ("n_transactions", 0),
    ("n_users", 0),
    ("n_merchants", 14),
    ("n_merchants", 0),
    ("days", 0),
    ("fraud_rate", 0.0),
    ("fraud_rate", 0.5),
    ("fraud_rate", -0.1),
    ("fraud_rate", float("nan")),
    ("start", "not-a-date"),
    ("start", "now"),
    ("start", "2026-13-01"),
    ("source", "parquet"),
    ("patterns.account_takeover.weight", -1.0),
    ("patterns.card_testing.weight", float("inf")),
    ("patterns.account_takeover.burst_min", 0),
    ("patterns.account_takeover.burst_max", 2),
    ("patterns.account_takeover.burst_minutes", 0),
    ("patterns.card_testing.probes_min", 0),
    ("patterns.card_testing.probes_max", 1),
    ("patterns.card_testing.probe_max_amount", 0.0),
    ("patterns.card_testing.burst_minutes", 0),
    ("patterns.high_amount.multiplier_min", 0.5),
    ("patterns.high_amount.multiplier_max", 2.0),
    ("patterns.night_time.hours", [1, 24]),
    ("patterns.night_time.hours", [-1]),
    ("patterns.night_time.hours", []),
    ("patterns.high_risk_merchant.weight", -0.5),
    ("patterns.compromised_merchant.weight", -0.1),
    ("patterns.compromised_merchant.weight", float("nan")),
    ("patterns.compromised_merchant.days_min", 0),
    ("patterns.compromised_merchant.days_max", 13),
    ("patterns.compromised_merchant.fraud_share", 0.0),
    ("patterns.compromised_merchant.fraud_share", 0.95),
    ("patterns.compromised_merchant.fraud_share", float("nan")),
]


@pytest.mark.parametrize(("field", "value"), BAD_VALUES, ids=[f"{f}={v}" for f, v in BAD_VALUES])
def test_nonsense_values_raise_naming_the_field(field: str, value: object) -> None:
    cfg = small_config()
    _set(field, value)(cfg)
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        generate_transactions(cfg, SEED)


def test_all_zero_weights_rejected() -> None:
    cfg = small_config()
    _zero_all_weights(cfg)
    with pytest.raises(ValueError, match="weight"):
        cfg.check()


def test_burst_longer_than_data_rejected() -> None:
    cfg = small_config(days=1)
    cfg.patterns.account_takeover.burst_minutes = 24 * 60
    with pytest.raises(ValueError, match=r"patterns\.account_takeover\.burst_minutes"):
        cfg.check()


def test_csv_source_needs_a_path() -> None:
    with pytest.raises(ValueError, match="path"):
        DataConfig(source="csv").check()
    DataConfig(source="csv", path="data/external/tx.csv").check()


def test_defaults_are_valid_and_parse_as_structured_config() -> None:
    DataConfig().check()
    cfg = parse_section(
        {
            "n_transactions": 2_000,
            "patterns": {"night_time": {"hours": [1, 2]}, "card_testing": {"weight": 0}},
        },
        DataConfig,
        "data",
    )
    assert isinstance(cfg, DataConfig)
    assert cfg.patterns.night_time.hours == [1, 2]
    assert cfg.patterns.card_testing.weight == 0.0
    assert cfg.patterns.account_takeover == DataConfig().patterns.account_takeover
    out = generate_transactions(cfg, SEED)
    assert len(out) == 2_000
    assert "card_testing" not in set(out[schema.FRAUD_PATTERN])


def test_generation_is_fast() -> None:
    cfg = DataConfig(n_transactions=200_000, n_users=10_000)
    began = time.perf_counter()
    out = generate_transactions(cfg, SEED)
    assert time.perf_counter() - began < 4.0  # ~0.4 s here; 1M rows take ~2 s
    assert len(out) == 200_000


def test_risky_pattern_categories_are_high_risk_ones() -> None:
    """The high-risk-merchant pattern draws only categories the schema calls high risk."""
    from fraud.data.synthetic.profiles import _CATEGORIES, _RISKY_CATS

    drawn = [_CATEGORIES[i] for i in _RISKY_CATS[0]]
    assert drawn
    assert set(drawn) <= set(schema.HIGH_RISK_MERCHANT_CATEGORIES)
