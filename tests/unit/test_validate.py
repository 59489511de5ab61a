"""Schema validation errors and cleaning (fraud/data/validate.py), the out-of-time splits
(fraud/data/split.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fraud.data import schema
from fraud.data.split import DateSplitConfig, SplitConfig, date_split, time_split
from fraud.data.validate import SchemaError, validate_transactions


def raw_frame(n: int = 6) -> pd.DataFrame:
    """A small valid table as a CSV reader would give it: every value a string."""
    return pd.DataFrame(
        {
            "transaction_id": [f"t{i}" for i in range(n)],
            "user_id": ["u1", "u2"] * (n // 2),
            "merchant_id": [f"m{i % 3}" for i in range(n)],
            "timestamp": [f"2026-03-0{1 + i // 2}T1{i}:30:00Z" for i in range(n)],
            "amount": [f"{10 + i}.5" for i in range(n)],
            "merchant_category": ["grocery"] * n,
            "transaction_type": ["purchase"] * n,
            "device_id": ["d1"] * n,
            "device_type": ["pos"] * n,
            "location": ["Boston"] * n,
            "is_fraud": ["0", "1", "false", "TRUE", "0", "1"][:n],
        }
    )


def test_valid_table_is_typed_sorted_and_derives_hour_and_day() -> None:
    raw = raw_frame().iloc[::-1]  # reversed: the output is sorted by time
    out = validate_transactions(raw)
    assert list(out.columns) == list(schema.COLUMNS)
    assert out["transaction_id"].tolist() == [f"t{i}" for i in range(6)]
    assert out["is_fraud"].tolist() == [0, 1, 0, 1, 0, 1]
    assert out["amount"].tolist() == [10.5, 11.5, 12.5, 13.5, 14.5, 15.5]
    assert str(out["timestamp"].dtype) == "datetime64[ns, UTC]"
    # 2026-03-01 is a Sunday (6); 2026-03-02 a Monday (0).
    assert out["day_of_week"].tolist() == [6, 6, 0, 0, 1, 1]
    assert out["hour_of_day"].tolist() == [10, 11, 12, 13, 14, 15]


def test_naive_timestamps_are_utc_and_offsets_are_converted() -> None:
    raw = raw_frame(2)
    raw["timestamp"] = ["2026-03-01 23:30:00", "2026-03-01T23:30:00-02:00"]
    out = validate_transactions(raw)
    assert out["hour_of_day"].tolist() == [23, 1]
    assert out["day_of_week"].tolist() == [6, 0]


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [
        ("amount", ["abc", "1", "2", "3", "4", "5"], "column 'amount': 1 row not a finite number"),
        ("amount", ["0", "-3", "2", "3", "4", "5"], "column 'amount': 2 rows not positive"),
        ("amount", ["inf", "1", "2", "3", "4", "5"], "column 'amount': 1 row not a finite number"),
        (
            "timestamp",
            ["yesterday", "2026-01-01", "x", "2026-01-01", "2026-01-01", "2026-01-01"],
            "column 'timestamp': 2 rows not a parseable time",
        ),
        (
            "is_fraud",
            ["2", "0", "1", "yes", "0", "1"],
            "column 'is_fraud': 2 rows not one of 0/1/true/false (e.g. '2', 'yes')",
        ),
        (
            "transaction_id",
            ["a", "a", "b", "c", "c", "c"],
            "column 'transaction_id': 5 rows share 2 duplicated id(s)",
        ),
        ("user_id", ["", "u", " ", "u", "u", "u"], "column 'user_id': 2 rows empty or missing"),
    ],
)
def test_each_schema_error_names_column_and_count(
    column: str, values: list[str], message: str
) -> None:
    raw = raw_frame()
    raw[column] = values
    with pytest.raises(SchemaError) as info:
        validate_transactions(raw)
    assert message in info.value.errors


def test_missing_columns_are_all_named() -> None:
    raw = raw_frame().drop(columns=["amount", "user_id"])
    with pytest.raises(SchemaError) as info:
        validate_transactions(raw)
    assert info.value.errors == ["missing column 'user_id'", "missing column 'amount'"]


def test_only_the_required_columns_must_be_there() -> None:
    """Card data often has only ids, time, amount and label: the features follow it."""
    optional = [
        "merchant_id", "merchant_category", "transaction_type", "device_id", "device_type",
        "location",
    ]  # fmt: skip
    clean = validate_transactions(raw_frame().drop(columns=optional))
    assert list(clean.columns) == [
        "transaction_id", "user_id", "timestamp", "amount", "hour_of_day", "day_of_week",
        "is_fraud",
    ]  # fmt: skip


def test_several_problems_are_reported_together() -> None:
    raw = raw_frame()
    raw["amount"] = ["-1", "1", "2", "3", "4", "5"]
    raw["is_fraud"] = ["maybe", "0", "1", "0", "1", "0"]
    with pytest.raises(SchemaError) as info:
        validate_transactions(raw)
    assert len(info.value.errors) == 2
    assert "column 'amount'" in str(info.value)
    assert "column 'is_fraud'" in str(info.value)


def split_frame(n: int = 100) -> pd.DataFrame:
    raw = raw_frame(2).iloc[[0] * n].reset_index(drop=True)
    raw["transaction_id"] = [f"t{i:03d}" for i in range(n)]
    raw["timestamp"] = pd.date_range("2026-01-01", periods=n, freq="h", tz="UTC").astype(str)
    raw["is_fraud"] = ["1" if i % 5 == 0 else "0" for i in range(n)]
    return validate_transactions(raw)


def test_time_split_is_strictly_ordered_with_configured_shares() -> None:
    train, valid, test = time_split(split_frame(), SplitConfig(0.6, 0.2, 0.2))
    assert (len(train), len(valid), len(test)) == (60, 20, 20)
    assert train["timestamp"].max() < valid["timestamp"].min()
    assert valid["timestamp"].max() < test["timestamp"].min()


def test_time_split_never_cuts_through_a_timestamp() -> None:
    df = split_frame()
    df.loc[55:65, "timestamp"] = df.loc[55, "timestamp"]  # 11 rows share one time at the cut
    train, valid, test = time_split(df, SplitConfig(0.6, 0.2, 0.2))
    assert len(train) == 55
    assert train["timestamp"].max() < valid["timestamp"].min()
    assert len(train) + len(valid) + len(test) == 100


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (SplitConfig(0.7, 0.2, 0.2), "must be 1"),
        (SplitConfig(0.0, 0.5, 0.5), "split.train must be in (0, 1)"),
        (SplitConfig(0.8, 0.2, 1.0), "split.test must be in (0, 1)"),
    ],
)
def test_bad_split_config_fails_by_name(cfg: SplitConfig, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        time_split(split_frame(), cfg)


def test_split_with_a_single_class_fails() -> None:
    df = split_frame()
    df["is_fraud"] = 0
    with pytest.raises(ValueError, match="split 'train' has a single class"):
        time_split(df, SplitConfig())


# --- the date split -----------------------------------------------------------------------


def daily_frame(days: int = 30) -> pd.DataFrame:
    """One row every 6 hours from 2026-01-01, fraud every fifth row."""
    n = days * 4
    ts = pd.date_range("2026-01-01", periods=n, freq="6h", tz="UTC")
    return pd.DataFrame(
        {
            "transaction_id": [f"t{i:04d}" for i in range(n)],
            "user_id": "u",
            schema.TIMESTAMP: ts,
            schema.LABEL: (np.arange(n) % 5 == 0).astype("int64"),
        }
    )


def test_date_split_leaves_the_label_delay_as_history_only() -> None:
    cfg = DateSplitConfig("dates", "2026-01-25", "2026-01-29", label_delay_days=7, valid_days=5)
    parts = date_split(daily_frame(), cfg)
    ts = {name: part[schema.TIMESTAMP] for name, part in parts.items()}
    day = pd.Timestamp
    assert ts["train"].max() < day("2026-01-13", tz="UTC")  # cutoff 01-18 minus 5 valid days
    assert ts["valid"].min() == day("2026-01-13", tz="UTC")
    assert ts["valid"].max() < day("2026-01-18", tz="UTC")  # labels known by the test start
    assert ts["history"].min() == day("2026-01-18", tz="UTC")
    assert ts["history"].max() < day("2026-01-25", tz="UTC")
    assert ts["test"].min() == day("2026-01-25", tz="UTC")
    assert ts["test"].max() < day("2026-01-29", tz="UTC")  # test_end is exclusive
    assert sum(map(len, parts.values())) == 28 * 4  # the two days after test_end are unused
    assert len(parts["history"]) == 7 * 4


def test_date_split_names_what_is_empty() -> None:
    cfg = DateSplitConfig("dates", "2027-01-01", "2027-01-08", label_delay_days=7, valid_days=7)
    with pytest.raises(
        ValueError, match="split 'valid', 'test' empty: the data runs from 2026-01-01"
    ):
        date_split(daily_frame(), cfg)
    with pytest.raises(ValueError, match=r"split\.valid_days must be >= 1"):
        DateSplitConfig("dates", "2026-01-25", "2026-01-29", 7, 0).check()


def test_the_share_split_has_an_empty_history_part() -> None:
    parts = SplitConfig(0.6, 0.2, 0.2).split(split_frame())
    assert list(parts) == ["train", "valid", "history", "test"]
    assert parts["history"].empty
    assert list(parts["history"].columns) == list(parts["test"].columns)
