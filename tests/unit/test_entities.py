"""Entity history (card, merchant, device) and label-delayed risk: the definition, brute force,
and the point-in-time properties a deployed system has."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraud.data import schema
from fraud.features.history import compute_history
from fraud.features.spec import EntityConfig, FeatureConfig
from fraud.features.state import fit_state
from fraud.features.transform import transform, transform_record
from tests.unit.test_features import T0, random_frame

DAY = 86400
#: Short windows and a one-day delay so that a few days of data exercise every boundary.
CFG = FeatureConfig(
    entities={
        "user_id": EntityConfig({"1h": 3600}, ["count", "sum", "mean"], {"2d": 2 * DAY}),
        "merchant_id": EntityConfig(
            {"6h": 6 * 3600, "1d": DAY}, ["count", "sum", "mean"], {"1d": DAY, "3d": 3 * DAY}
        ),
        "device_id": EntityConfig({"1d": DAY}, ["count"], {"2d": 2 * DAY}),
    },
    label_delay_days=1,
    risk_smoothing=4.0,
)


def brute_force(df: pd.DataFrame, cfg: FeatureConfig) -> pd.DataFrame:
    """The definition row by row: same entity, strictly earlier; risk over labels known at t."""
    t = (df["timestamp"] - T0).dt.total_seconds().to_numpy()
    amount = df["amount"].to_numpy()
    label = df["is_fraud"].to_numpy()
    delay = cfg.label_delay_days * DAY
    out: dict[str, list[float]] = {}
    for column, entity in cfg.entities_of(list(df.columns)):
        if column == "user_id":
            continue  # the user's columns are checked against their own brute force
        ids = df[column].to_numpy()
        p = column.removesuffix("_id")
        for i in range(len(df)):
            same = ids == ids[i]
            for label_, w in entity.windows.items():
                inside = same & (t < t[i]) & (t >= t[i] - w)
                if "txn_count" in entity.window_columns():
                    out.setdefault(f"{p}_txn_count_{label_}", []).append(inside.sum())
                if "amount_sum" in entity.window_columns():
                    out.setdefault(f"{p}_amount_sum_{label_}", []).append(amount[inside].sum())
            for label_, w in entity.risk_windows.items():
                known = same & (t < t[i] - delay) & (t >= t[i] - delay - w)
                out.setdefault(f"{p}_labelled_count_{label_}", []).append(known.sum())
                out.setdefault(f"{p}_fraud_count_{label_}", []).append(label[known].sum())
    return pd.DataFrame(out, index=df.index)


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    return random_frame(600, 30, seed=21, span_days=6)


def test_merchant_and_device_history_match_the_definition(df: pd.DataFrame) -> None:
    got = compute_history(df, CFG)
    want = brute_force(df, CFG)
    assert set(want.columns) < set(got.columns)
    assert "device_amount_sum_1d" not in got  # device aggregates: count only
    np.testing.assert_allclose(
        got[want.columns].to_numpy(dtype=float), want.to_numpy(dtype=float), rtol=1e-12
    )
    assert (got["merchant_labelled_count_3d"] > 0).mean() > 0.5  # the test sees real history
    assert (got["merchant_fraud_count_3d"] > 0).any()


def test_user_risk_uses_only_labels_older_than_the_delay() -> None:
    rows = pd.DataFrame(
        {
            "transaction_id": ["a", "b", "c", "d"],
            "user_id": ["u"] * 4,
            "timestamp": T0 + pd.to_timedelta([0, DAY - 1, DAY, 2 * DAY], unit="s"),
            "amount": [1.0, 2.0, 3.0, 4.0],
            "is_fraud": [1, 1, 0, 0],
        }
    )
    h = compute_history(rows, CFG).set_axis(rows["transaction_id"])
    # c (t = 1 d) knows the labels before t - 1 d = 0: none; d (t = 2 d) knows a's and b's
    assert h["user_labelled_count_2d"].tolist() == [0, 0, 0, 2]
    assert h["user_fraud_count_2d"].tolist() == [0, 0, 0, 2]
    state = fit_state(pd.concat([rows, h.reset_index(drop=True)], axis=1), CFG)
    assert state.fraud_prior == 0.5
    x = transform(
        pd.concat([rows, h.reset_index(drop=True)], axis=1).assign(hour_of_day=0, day_of_week=0),
        state,
    )
    risk = x[:, state.feature_names.index("user_fraud_risk_2d")]
    np.testing.assert_array_equal(risk, [0.5, 0.5, 0.5, (2 + 4 * 0.5) / (2 + 4)])


def test_entities_the_data_lacks_are_skipped(df: pd.DataFrame) -> None:
    h = compute_history(df.drop(columns=["merchant_id"]), CFG)
    merchant = ("merchant_txn", "merchant_amount", "merchant_labelled", "merchant_fraud")
    assert not [c for c in h if c.startswith(merchant)]
    assert [c for c in h if c.startswith("device_")]
    state = fit_state(pd.concat([df.drop(columns=["merchant_id"]), h], axis=1), CFG)
    assert not [n for n in state.feature_names if n.startswith(merchant)]
    assert "merchant_id" not in state.inputs


def test_without_labels_no_label_is_known(df: pd.DataFrame) -> None:
    h = compute_history(df.drop(columns=["is_fraud"]), CFG)
    risk = [c for c in h if "_labelled_count_" in c or "_fraud_count_" in c]
    assert risk
    assert (h[risk] == 0).all().all()


def test_every_entity_feature_agrees_between_batch_and_record(df: pd.DataFrame) -> None:
    full = pd.concat([df, compute_history(df, CFG)], axis=1)
    state = fit_state(full, CFG)
    assert {"merchant_amount_mean_6h", "merchant_fraud_risk_3d", "device_fraud_risk_2d"} <= set(
        state.feature_names
    )
    x = transform(full, state)
    rows = np.vstack([transform_record(r, state)[0] for r in full.to_dict("records")])
    np.testing.assert_array_equal(rows, x)
    # A record with no history at all is every entity's first transaction.
    first = transform_record({k: full[k].iat[0] for k in state.record_fields}, state)[0]
    names = state.feature_names
    assert first[names.index("merchant_fraud_risk_1d")] == state.fraud_prior
    assert np.isnan(first[names.index("merchant_amount_mean_1d")])
    assert first[names.index("device_txn_count_1d")] == 0.0


def _frame(rows: list[tuple[str, str, int, float, int]]) -> pd.DataFrame:
    """(user, merchant, seconds after T0, amount, label) rows."""
    return pd.DataFrame(
        {
            "transaction_id": [f"t{i}" for i in range(len(rows))],
            "user_id": [r[0] for r in rows],
            "merchant_id": [r[1] for r in rows],
            "device_id": [f"d{r[0]}" for r in rows],
            "timestamp": pd.DatetimeIndex(
                T0 + pd.to_timedelta([r[2] for r in rows], unit="s")
            ).as_unit("ns"),
            "amount": [r[3] for r in rows],
            "is_fraud": [r[4] for r in rows],
        }
    )


_rows = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.sampled_from(["m1", "m2"]),
        st.integers(0, 5 * DAY),
        st.sampled_from([0.1, 0.2, 0.3, 12.34, 1e6, 1 / 3]),
        st.integers(0, 1),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(base=_rows, later=_rows, seed=st.integers(0, 2**16))
def test_a_later_transaction_never_changes_an_earlier_feature(
    base: list[tuple[str, str, int, float, int]],
    later: list[tuple[str, str, int, float, int]],
    seed: int,
) -> None:
    t_max = max(r[2] for r in base)
    shifted = [(u, m, t_max + 1 + t, a, y) for u, m, t, a, y in later]
    before = compute_history(_frame(base), CFG)
    combined = _frame(base + shifted).sample(frac=1.0, random_state=seed)
    after = compute_history(combined, CFG).sort_index().iloc[: len(base)]
    pd.testing.assert_frame_equal(after, before, check_exact=True)


@settings(max_examples=60, deadline=None)
@given(rows=_rows, cut=st.integers(0, 5 * DAY), flips=st.lists(st.booleans(), min_size=40))
def test_flipping_a_label_inside_the_delay_or_later_never_changes_features_at_t(
    rows: list[tuple[str, str, int, float, int]], cut: int, flips: list[bool]
) -> None:
    """Flip any labels of transactions at or after ``cut - delay``: every row at t <= cut keeps
    its features (its known labels are those before t - delay <= cut - delay)."""
    df = _frame(rows)
    seconds = np.array([r[2] for r in rows])
    flip = (seconds >= cut - CFG.label_delay_days * DAY) & np.array(flips[: len(rows)])
    flipped = df.assign(is_fraud=np.where(flip, 1 - df["is_fraud"], df["is_fraud"]))
    at_or_before = seconds <= cut
    pd.testing.assert_frame_equal(
        compute_history(flipped, CFG)[at_or_before],
        compute_history(df, CFG)[at_or_before],
        check_exact=True,
    )


def test_risk_counts_are_integers_and_feature_names_are_stable() -> None:
    h = compute_history(_frame([("a", "m1", 0, 1.0, 1), ("a", "m1", 3 * DAY, 2.0, 0)]), CFG)
    for name in h:
        if "_count_" in name or name == "user_transaction_count":
            assert h[name].dtype == np.int64, name
    assert CFG.history_columns(list(schema.FEATURE_INPUTS))[:4] == [
        "user_transaction_count",
        "user_avg_amount",
        "user_std_amount",
        "seconds_since_last_transaction",
    ]


@pytest.mark.parametrize("top", [3, 70_000, 2**33])
def test_the_radix_sort_of_entity_codes_is_a_stable_argsort(top: int) -> None:
    from fraud.features.history import _stable_argsort

    codes = np.random.default_rng(top).integers(0, top, 5000).astype(np.int64)
    np.testing.assert_array_equal(_stable_argsort(codes), np.argsort(codes, kind="stable"))


def test_unknown_labels_are_not_counted_as_labelled(df: pd.DataFrame) -> None:
    """A live system's recent labels are partly missing: those rows are neither labelled nor
    fraud, and nothing turns into a garbage count."""
    partial = df.assign(is_fraud=df["is_fraud"].astype("float64"))
    partial.loc[partial.index % 3 == 0, "is_fraud"] = np.nan
    got = compute_history(partial, CFG)
    assert (got.filter(like="_count_") >= 0).all().all()
    frauds = brute_force(partial.assign(is_fraud=partial["is_fraud"].fillna(0)), CFG)
    # labelled = the brute-force "fraud" count of a label that is 1 wherever one is known
    labelled = brute_force(partial.assign(is_fraud=partial["is_fraud"].notna().astype(int)), CFG)
    for window in ("1d", "3d"):
        name = f"merchant_fraud_count_{window}"
        np.testing.assert_array_equal(got[name], frauds[name])
        np.testing.assert_array_equal(got[f"merchant_labelled_count_{window}"], labelled[name])
    assert (got["merchant_labelled_count_3d"] < frauds["merchant_labelled_count_3d"]).any()


def test_time_sorted_input_takes_the_fast_path_with_the_same_result(df: pd.DataFrame) -> None:
    ordered = df.sort_values("timestamp", kind="stable").reset_index(drop=True)
    got = compute_history(ordered, CFG)
    pd.testing.assert_frame_equal(
        got,
        compute_history(df, CFG)
        .set_axis(df.index)
        .loc[df.sort_values("timestamp", kind="stable").index]
        .reset_index(drop=True),
        check_exact=True,
    )
    want = brute_force(ordered, CFG)
    np.testing.assert_allclose(got[want.columns].to_numpy(float), want.to_numpy(float), rtol=1e-12)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"label_delay_days": 10**9}, "label_delay_days must be in 0..3650"),
        (
            {"entities": {"user_id": EntityConfig({"1h": 10**12})}},
            r"user_id\.windows '1h' must be at most",
        ),
        ({"entities": {"user_id": EntityConfig({"7_d": 604800})}}, r"\[A-Za-z0-9\]\+"),
    ],
)
def test_windows_and_delays_are_bounded_and_named(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FeatureConfig(**changes).check()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            [
                "split=dates",
                "split.test_start=2026-04-01",
                "split.test_end=2026-04-08",
                "split.label_delay_days=14",
            ],
            r"features.label_delay_days \(7\) is shorter than split.label_delay_days \(14\)",
        ),
        (["++model.monotone_constraints.amount_zscor=1"], "amount_zscor is not a feature"),
        (["++model.monotone_constraints.amount=2"], "must be -1, 0 or 1"),
    ],
)
def test_composition_refuses_inconsistent_delays_and_unknown_constraints(
    overrides: list[str], message: str
) -> None:
    from fraud.config import ConfigError
    from stages.compose import compose_params

    with pytest.raises(ConfigError, match=message):
        compose_params(["env=production", *overrides])
