"""The batch validator: column by column when a batch is regular, always equal to item by item."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import create_app
from app.schemas import FLAG, INTEGER, NUMBER, STRING, TIMESTAMP
from app.validation import TransactionValidator


@pytest.fixture(scope="module")
def validator() -> TransactionValidator:
    return create_app().extensions["fraud"].validate


@pytest.fixture(scope="module")
def sample(validator: TransactionValidator) -> dict[str, Any]:
    from app.schemas import sample_transaction

    return sample_transaction(validator.fields)


# Every kind of bad value (the valid ones come from the sample, see ``valid``).
INVALID = {
    NUMBER: [0, -3.5, 1e300, 10**400, True, "12", None],
    INTEGER: [-1, 24, 14.0, 1.5, False, "3", 10**30, None],
    STRING: ["", "  ", "a\x00b", "\ud800", "y" * 200, 5, None],
    FLAG: [2, 1.0, "1", -1, None],
    TIMESTAMP: ["not a time", "", 123, "2026-13-01T00:00:00Z", None],
}
TIMESTAMPS = [
    "2026-03-04T14:05:00Z",
    "2026-03-04T14:05:00+02:00",
    "2026-03-05T01:00:00",
    "2026-03-04 23:59:59.5-05:00",
]


def valid(kind: str, example: Any) -> list[Any]:
    """Valid values of a field, given the sample's."""
    if kind == NUMBER:
        return [example, example + 1.5, int(example) + 1]
    if kind == INTEGER:
        return [example, 0, 1, 5]
    if kind == STRING:
        return [example, "x", "Zürich"]
    if kind == FLAG:
        return [0, 1, True, False]
    return TIMESTAMPS


@st.composite
def batches(draw: st.DrawFn, sample: dict[str, Any], kinds: dict[str, str]) -> list[Any]:
    """1-6 items, mostly of one shape and often all valid (the column path), else spoiled:
    now and then a bad or null value, an item of its own shape, or an item not an object."""
    names = list(kinds)
    spoiled = draw(st.booleans())

    def shape() -> list[str]:
        dropped = set(draw(st.lists(st.sampled_from(names), max_size=3)))
        keys = [name for name in sample if name not in dropped]
        if draw(st.booleans()):
            keys.append("timestamp")
        if draw(st.integers(0, 4)) == 0:
            keys.append("unknown_field")
        return keys

    def value(name: str) -> Any:
        if name == "unknown_field":
            return draw(st.sampled_from([1, "x", None]))
        kind = kinds[name]
        if spoiled and draw(st.integers(0, 24)) == 0:
            return draw(st.sampled_from(INVALID[kind]))
        return draw(st.sampled_from(valid(kind, sample.get(name))))

    common = shape()
    n = draw(st.integers(1, 6))
    items: list[Any] = []
    for _ in range(n):
        keys = shape() if spoiled and draw(st.integers(0, 5)) == 0 else common
        items.append({key: value(key) for key in keys})
    if spoiled and draw(st.integers(0, 9)) == 0:
        items[draw(st.integers(0, n - 1))] = draw(st.sampled_from([[], "x", None, 3]))
    return items


def test_batch_equals_item_by_item(
    validator: TransactionValidator, sample: dict[str, Any]
) -> None:
    kinds = {name: spec.kind for name, spec in validator.fields.items()}

    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(batches(sample, kinds))
    def check(items: list[Any]) -> None:
        assert validator.batch(items) == [
            validator(item, "each transaction of the batch") for item in items
        ]

    check()


def regular(sample: dict[str, Any], n: int = 50) -> list[dict[str, Any]]:
    return [dict(sample, amount=10.0 + i, hour_of_day=i % 24) for i in range(n)]


def test_a_regular_batch_is_checked_by_column(
    validator: TransactionValidator, sample: dict[str, Any]
) -> None:
    items = regular(sample)
    items[3]["is_new_device"] = True  # a boolean flag becomes 1, as item by item
    items[4]["amount"] = 12  # an integer amount stays an integer
    for item in items:
        item["timestamp"] = "2026-03-04T23:30:00-02:00"  # 01:30 UTC on Thursday
        item["note"] = "ignored"
    result = validator._regular(items)
    assert result is not None
    assert result == [validator(item, "each transaction of the batch") for item in items]
    record, warnings, errors = result[3]
    assert errors == []
    assert record["is_new_device"] == 1
    assert type(record["is_new_device"]) is int
    assert (record["hour_of_day"], record["day_of_week"]) == (1, 3)
    assert record["timestamp"] == "2026-03-05T01:30:00+00:00"
    assert "note" not in record
    assert warnings == [
        "hour_of_day: 3 replaced by 1 from timestamp (UTC)",
        "day_of_week: 2 replaced by 3 from timestamp (UTC)",
        "ignored unknown field(s): note",
    ]


@pytest.mark.parametrize(
    "change",
    [
        {"amount": float("nan")},
        {"amount": 0},
        {"hour_of_day": 14.0},
        {"location": " "},
        {"device_type": "tab\tlet"},
        {"user_avg_amount": None},
        {"is_new_location": 2},
        {"timestamp": "yesterday"},
    ],
    ids=lambda change: f"{next(iter(change))}={next(iter(change.values()))!r}",
)
def test_one_odd_value_sends_the_batch_item_by_item(
    validator: TransactionValidator, sample: dict[str, Any], change: dict[str, Any]
) -> None:
    items = regular(sample)
    if "timestamp" in change:
        for item in items:
            item["timestamp"] = "2026-03-04T14:05:00Z"
    items[7].update(change)
    assert validator._regular(items) is None
    assert validator.batch(items) == [
        validator(item, "each transaction of the batch") for item in items
    ]


def test_a_missing_or_extra_key_in_one_item_sends_the_batch_item_by_item(
    validator: TransactionValidator, sample: dict[str, Any]
) -> None:
    items = [{**sample, "zz": 1, "aa": 2}, {**sample, "aa": 2, "zz": 1}]  # keys in another order
    assert validator._regular(items) is None
    assert validator.batch(items) == [
        validator(item, "each transaction of the batch") for item in items
    ]
    assert validator.batch(items)[1][1] == ["ignored unknown field(s): aa, zz"]
    items = regular(sample)
    del items[1]["amount"]
    assert validator._regular(items) is None
    items = regular(sample)
    items[1]["extra"] = 1
    assert validator._regular(items) is None


# Values of every JSON type and the edge cases of each rule, for every field's rule.
ODD_VALUES = [
    *(value for values in INVALID.values() for value in values),
    *TIMESTAMPS,
    *[0, 1, -1, 0.0, -0.0, 1.0, 0.5, 5e-324, 1e-320, 23, 6, 7, 125.5, 2**60 + 1],
    *[1e9, 1e9 + 1e-7, 10**9 + 1, 1e12, 10**12 + 1, -(10**400), 1.7976931348623157e308],
    *[float("nan"), float("inf"), float("-inf"), True, False, [], {}, [1]],
    *["x", "Zürich 🏙", "a\tb", "\x7f", "\xa0", "\u2028", " x ", "y" * 64, "y" * 65, "y" * 128],
    *["9999-12-31T23:59:59-01:00", "2026-03-04", "2026-03-04T14:05:00+25:00"],
]


def typed(value: Any) -> tuple[type, Any]:
    """A value with its type, so that 1, 1.0 and True differ."""
    return type(value), value


def test_what_a_fast_check_vouches_for_is_what_check_returns(
    validator: TransactionValidator,
) -> None:
    for name, rule in validator.rules.items():
        for value in ODD_VALUES:
            clean = rule.fast(value)
            if clean is not None:
                verdict = rule.check(value)
                assert typed(verdict[0]) == typed(clean), (name, value)
                assert verdict[1] == "", (name, value)


def test_every_sample_value_takes_the_fast_path(
    validator: TransactionValidator, sample: dict[str, Any]
) -> None:
    """The hot path: a plain valid request never needs ``check``."""
    for name, value in sample.items():
        assert validator.rules[name].fast(value) is not None, name
    assert validator.rules["timestamp"].fast(TIMESTAMPS[0]) is not None


def test_what_a_column_check_vouches_for_is_what_check_returns(
    validator: TransactionValidator, sample: dict[str, Any]
) -> None:
    @settings(max_examples=300, deadline=None)
    @given(
        st.sampled_from(sorted(validator.rules)),
        st.lists(st.sampled_from(ODD_VALUES), min_size=1, max_size=5),
    )
    def check(name: str, values: list[Any]) -> None:
        rule = validator.rules[name]
        clean = rule.column(tuple(values))
        if clean is not None:
            verdicts = [rule.check(value) for value in values]
            assert [typed(value) for value in clean] == [typed(v[0]) for v in verdicts]
            assert all(message == "" for _, message in verdicts)

    check()
    for name in [*sample, "timestamp"]:  # each field's valid values pass by column
        values = tuple(valid(validator.fields[name].kind, sample.get(name)))
        assert validator.rules[name].column(values) is not None, name
