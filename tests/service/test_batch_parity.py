"""The batch paths' shortcuts answer byte for byte what the item-by-item paths do.

A regular batch is validated column by column, its columns go to the features without the
records, its reasons are built slot by slot and its audit lines by quick paths; a float
tensor's JSON rows go to numpy as they are. Each is checked here against the general path it
stands in for: /predict for every item of regular and irregular batches (bad items, unknown
fields, timestamps, partial history, unknown categories, booleans as flags), ``transform_records``,
a per-row reason comprehension, a key-by-key audit line, the flattening tensor decoder.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.audit import PredictionLog
from app.tensors import TensorError, decode_inputs
from fraud.features.transform import transform_records
from fraud.runtime.scoring import Reasons, transform_columns_of

#: What differs between two answers to the same transaction: its id, the time, the duration.
VOLATILE = [
    (rb'"prediction_id":"[0-9a-f]{32}"', b'"prediction_id":"-"'),
    (rb'"timestamp":"[^"]*\+00:00"', b'"timestamp":"-"'),
]


def normal(entry: dict[str, Any]) -> bytes:
    """An answer's bytes without what differs between two answers to the same item."""
    data = orjson.dumps({k: v for k, v in entry.items() if k != "processing_time_ms"})
    for pattern, replacement in VOLATILE:
        data = re.sub(pattern, replacement, data)
    return data


@pytest.fixture(scope="module")
def app() -> Flask:
    return create_app({"FEATURE_STORE_URL": "none", "MAX_BATCH": 2000})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="module")
def sample(app: Flask) -> dict[str, Any]:
    return app.test_client().get("/sample-transaction").get_json()


def regular(sample: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """``n`` valid transactions of one shape, amounts and hours varied."""
    return [
        dict(
            sample,
            amount=round(5 + (i * 37.3) % 900, 2),
            hour_of_day=i % 24,
            transaction_id=f"t{i}",
        )
        for i in range(n)
    ]


def history_fields(sample: dict[str, Any]) -> list[str]:
    """The sample's history fields (those a client sends with the history)."""
    fields = create_app({"FEATURE_STORE_URL": "none"}).extensions["fraud"].validate.fields
    return [name for name in sample if fields[name].history]


def irregular(sample: dict[str, Any], n: int) -> list[Any]:
    """A mix of valid and bad items of many shapes."""
    history = history_fields(sample)
    items: list[Any] = []
    for i, item in enumerate(regular(sample, n)):
        kind = i % 13
        if kind == 1:
            item["amount"] = -1
        elif kind == 2:
            item = "not an object"
        elif kind == 3:
            item.pop(history[0])  # partial history
        elif kind == 4:
            item["merchant_category"] = "never_seen"
        elif kind == 5:
            item["location"] = None
        elif kind == 6:
            item = dict(reversed(list(item.items())))
        elif kind == 7:
            item["note"], item["extra"] = [1], {"a": 1}
        elif kind == 8:
            item = {k: v for k, v in item.items() if k not in history}
        elif kind == 9:
            item["is_new_device"] = True
        elif kind == 10:
            item["timestamp"] = "2026-03-04T23:30:00-02:00"
        elif kind == 11:
            item["user_txn_count_1h"] = "3"
        elif kind == 12:
            item["hour_of_day"] = 14.0
        items.append(item)
    return items


def single(client: FlaskClient, item: Any) -> dict[str, Any]:
    """/predict's answer to one item: the entry, or the errors of its 422."""
    response = client.post("/predict", json=item)
    body = response.get_json()
    if response.status_code == 422:
        return {"errors": body["details"]}
    assert response.status_code == 200, body
    return body


@pytest.mark.parametrize(
    "make",
    [
        lambda s: regular(s, 300),  # the column path (and the argmax reasons: > 4096 cells)
        lambda s: [dict(i, note="x", zz=1) for i in regular(s, 50)],  # unknown fields
        lambda s: [  # booleans as flags, timestamps: changed columns
            dict(i, is_new_device=bool(k % 2), timestamp=f"2026-03-0{1 + k % 9}T0{k % 10}:05:00Z")
            for k, i in enumerate(regular(s, 40))
        ],
        lambda s: irregular(s, 130),
    ],
    ids=["regular", "unknown-fields", "changed-columns", "irregular"],
)
def test_every_batch_entry_is_the_single_answer(
    client: FlaskClient, sample: dict[str, Any], make: Any
) -> None:
    items = make(sample)
    response = client.post("/predict/batch", json={"transactions": items})
    assert response.status_code == 200
    results = response.get_json()["results"]
    assert len(results) == len(items)
    for i, (item, entry) in enumerate(zip(items, results, strict=True)):
        assert entry.pop("index") == i
        if isinstance(item, dict):
            assert normal(entry) == normal(single(client, item)), i
        else:  # /predict words it for a request body
            message = "each transaction of the batch must be a JSON object"
            assert entry == {"errors": [{"field": "$", "message": message}]}


def test_bad_batches_are_clear_errors_never_a_500(client: FlaskClient) -> None:
    for body, status in [
        (b"", 400),
        (b"{", 400),
        (b"[]", 422),
        (b'{"transactions": []}', 422),
        (b'{"transactions": [1, null, {}, []]}', 200),
        (b'{"transactions": [{"amount": NaN}]}', 400),
        (b'{"transactions": [{"\\ud800": 1}]}', 400),
    ]:
        response = client.post("/predict/batch", data=body, content_type="application/json")
        assert response.status_code == status, body
        answer = response.get_json()
        if status == 200:
            assert answer["n_scored"] == 0
            assert all(r["errors"][0]["field"] for r in answer["results"])
        else:
            assert answer["message"]


def test_columns_make_the_matrix_and_warnings_of_the_records(
    app: Flask, sample: dict[str, Any]
) -> None:
    state = app.extensions["fraud"]
    feature_state = state.scorer.artifact.feature_state
    history = history_fields(sample)
    assert history
    batches = [
        regular(sample, 200),
        [
            dict(i, merchant_category="never_seen" if k % 3 else i["merchant_category"])
            for k, i in enumerate(regular(sample, 30))
        ],
        [{k: v for k, v in i.items() if k not in history} for i in regular(sample, 30)],
    ]
    for items in batches:
        validated, columns = state.validate.batch_columns(items)
        assert columns is not None
        records = [record for record, _, _ in validated]
        x, warnings = transform_records(records, feature_state)
        y, their = transform_columns_of(columns, len(records), feature_state)
        assert x.tobytes() == y.tobytes()
        assert warnings == their
    _, columns = state.validate.batch_columns(irregular(sample, 20))
    assert columns is None


def test_reasons_slot_by_slot_are_the_per_row_ones(app: Flask) -> None:
    scorer = app.extensions["fraud"].scorer
    width = len(scorer.feature_names)
    rng = np.random.default_rng(7)
    for n, k in [(1, 3), (50, 3), (50, 1), (20, 0), (1, 0)]:
        feature = np.stack([rng.permutation(width)[:k] for _ in range(n)]).reshape(n, k)
        value = rng.normal(size=(n, k))
        value[rng.random((n, k)) < 0.2] = np.nan
        contribution = rng.normal(size=(n, k))
        keep = rng.random((n, k)) < 0.8
        reasons = Reasons(feature, value, contribution, keep)
        expected = [
            [
                {
                    "feature": scorer.feature_names[feature[i, j]],
                    "value": None if np.isnan(value[i, j]) else float(value[i, j]),
                    "contribution": float(contribution[i, j]),
                }
                for j in range(k)
                if keep[i, j]
            ]
            for i in range(n)
        ]
        assert orjson.dumps(scorer.reason_dicts(reasons)) == orjson.dumps(expected), (n, k)


def test_audit_lines_by_the_quick_paths_are_the_key_by_key_ones(tmp_path: Path) -> None:
    fields = ["prediction_id", "fraud_probability", "decision", "a", "b", "c", "h"]
    log = PredictionLog(tmp_path, fields, 1 << 20, 4, 60.0, required=("fraud_probability",))
    in_order = {"prediction_id": "p", "fraud_probability": 0.5, "decision": "legit", "a": 1}
    batches = [
        [dict(in_order, a=i) for i in range(5)],  # in the log's order
        [
            {"a": i, "decision": "fraud", "fraud_probability": 0.1, "prediction_id": "q"}
            for i in range(5)
        ],
        [in_order, {**in_order, "b": "x"}, {"b": 1, **in_order}, {**in_order, "zz": 1}],
        [{**in_order, "zz": 1}, in_order],  # the first with an unlogged key
        [{k: v for k, v in in_order.items() if k != "a"} | {"c": None}, in_order],  # same size
        [in_order, {"prediction_id": "p", "decision": "legit", "a": 1, "b": 2}],  # no score
        [in_order, {**in_order, "fraud_probability": float("nan")}],
    ]
    for records in batches:
        expected = []
        for r in records:
            if "fraud_probability" not in r:
                expected = None
                break
            line = {name: r[name] for name in fields if name in r} | {"logged_at": 1.5}
            expected.append(orjson.dumps(line)[:-1] + log._tail + b"\n")
        if expected is None:
            with pytest.raises(KeyError):
                log._lines(records, 1.5)
        else:
            assert log._lines(records, 1.5) == expected, records


def test_float_rows_as_they_are_or_flattened_decode_alike() -> None:
    rows = [[1.5, 2, -0.0, 1e-45], [3.25, 1e38, 5e-324, 7]]

    def body(data: Any, datatype: str = "FP32") -> dict[str, Any]:
        return {"inputs": [{"name": "x", "datatype": datatype, "shape": [2, 4], "data": data}]}

    for datatype in ("FP32", "FP64"):
        request = body(rows, datatype)
        (quick,) = decode_inputs(request, b"", orjson.dumps(request))
        (general,) = decode_inputs(request, b"")
        assert quick.values.dtype == general.values.dtype
        assert quick.values.tobytes() == general.values.tobytes()
    for bad, message in [
        ([[1.5, True, 0, 0], [0, 0, 0, 0]], "must be numbers"),
        ([[1.5, "2", 0, 0], [0, 0, 0, 0]], "must be numbers"),
        ([[1.5, [2], 0, 0], [0, 0, 0, 0]], None),  # nested deeper: flattened
        ([[1.5, 0, 0], [0, 0, 0, 0, 0]], None),  # ragged, the right count: flattened
        ([[1.5, 0, 0], [0, 0, 0, 0]], "7 values"),
        ([[1.5, 10**400, 0, 0], [0, 0, 0, 0]], "out of range"),
    ]:
        request = body(bad)
        outcomes = []
        quick_text = b"{}" if message == "out of range" else orjson.dumps(request)  # 10**400
        for text in (quick_text, None):
            try:
                (tensor,) = decode_inputs(request, b"", text)
                outcomes.append(tensor.values.tobytes())
            except TensorError as exc:
                outcomes.append(str(exc))
        assert outcomes[0] == outcomes[1], bad
        if message is not None:
            assert message in outcomes[0]
    (nulls,) = decode_inputs(body([[None, 1, 2, 3], [4, 5, 6, 7]]), b"", b"{}")
    assert np.isnan(nulls.values[0])
    assert nulls.values[1] == 1
