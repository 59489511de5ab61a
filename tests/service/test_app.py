"""The scoring service through Flask's test client, with the committed (read-only) model."""

from __future__ import annotations

import json
import math
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.schemas import required_fields
from app.validation import TransactionValidator
from fraud.features.transform import transform_record
from fraud.runtime.artifact import ArtifactError
from fraud.runtime.scoring import RiskBands, Scorer
from fraud.runtime.sklearn_model import LogisticModel
from tests.conftest import REPO
from tests.tiny_model import TinyModel

MAX_BATCH = 5

VALID: dict[str, Any] = {
    "amount": 249.99,
    "merchant_category": "electronics",
    "transaction_type": "online",
    "location": "Miami",
    "device_type": "mobile",
    "hour_of_day": 3,
    "day_of_week": 5,
    "user_id": "u1",
    "transaction_id": "t-1",
    "user_transaction_count": 12,
    "user_avg_amount": 40.0,
    "user_std_amount": 10.0,
    "seconds_since_last_transaction": 60.0,
    "user_txn_count_1h": 3,
    "user_amount_sum_1h": 120.0,
    "user_txn_count_24h": 5,
    "user_amount_sum_24h": 260.0,
    "user_txn_count_7d": 11,
    "user_amount_sum_7d": 480.0,
    "is_new_device": True,
    "is_new_location": 1,
    "is_new_merchant_category": 0,
}


@pytest.fixture(scope="module")
def app() -> Flask:
    """The app serving the tiny model (tests/service/conftest.py) with a small MAX_BATCH."""
    return create_app({"MAX_BATCH": MAX_BATCH, "MAX_CONTENT_LENGTH": 64 * 1024})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="module")
def scorer(app: Flask) -> Scorer:
    return app.extensions["fraud"].scorer


def with_(**changes: Any) -> dict[str, Any]:
    """VALID with fields replaced; a value of ... deletes the field."""
    body = dict(VALID)
    for key, value in changes.items():
        if value is ...:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def error_fields(response: Any) -> list[str]:
    return [detail["field"] for detail in response.get_json()["details"]]


# --- /predict ------------------------------------------------------------------------------


def test_predict_matches_artifact(client: FlaskClient, scorer: Scorer) -> None:
    response = client.post("/predict", json=VALID)
    assert response.status_code == 200
    body = response.get_json()
    vector, _ = transform_record(VALID, scorer.artifact.feature_state)
    expected = float(scorer.artifact.model.predict_proba(vector[None])[0])
    assert abs(body["fraud_probability"] - expected) < 1e-6  # XGBoost rounds to float32
    assert body["is_fraud"] == (expected >= scorer.artifact.threshold)
    assert body["risk_level"] == scorer.bands.level(expected)
    assert body["model_version"] == scorer.manifest["sha256"][:12]
    assert body["transaction_id"] == "t-1"
    assert len(body["prediction_id"]) == 32
    int(body["prediction_id"], 16)
    assert body["timestamp"].endswith("+00:00")
    assert body["processing_time_ms"] >= 0
    assert body["warnings"] == []
    assert 1 <= len(body["reasons"]) <= 3
    contribs = [abs(r["contribution"]) for r in body["reasons"]]
    assert contribs == sorted(contribs, reverse=True)
    assert {r["feature"] for r in body["reasons"]} <= set(scorer.feature_names)


def test_partial_history_is_scored_with_defaults_and_a_warning(client: FlaskClient) -> None:
    partial = {k: v for k, v in VALID.items() if k not in ("user_std_amount", "user_txn_count_7d")}
    body = client.post("/predict", json=partial).get_json()
    assert body["warnings"] == [
        "partial user history: user_std_amount, user_txn_count_7d absent, each taken as for a "
        "user with no history; send every user history field, or none"
    ]
    assert body["history_source"] == "request"
    history = {k for k in VALID if k.startswith(("user_", "seconds_", "is_new_"))} - {"user_id"}
    none = {k: v for k, v in VALID.items() if k not in history}
    stateless = create_app({"FEATURE_STORE_URL": "none"}).test_client()
    body = stateless.post("/predict", json=none).get_json()
    assert body["history_source"] == "none"
    assert body["warnings"] == [
        "no history sent and no feature store configured: scored as the user's first transaction"
    ]


MERCHANT = {
    "merchant_txn_count_1d": 40,
    "merchant_amount_sum_1d": 3200.0,
    "merchant_txn_count_7d": 300,
    "merchant_amount_sum_7d": 24000.0,
    "merchant_labelled_count_1d": 35,
    "merchant_fraud_count_1d": 20,
    "merchant_labelled_count_7d": 280,
    "merchant_fraud_count_7d": 90,
}


def test_each_entitys_history_is_taken_from_the_client(
    client: FlaskClient, scorer: Scorer
) -> None:
    """The merchant's history fields are the model's, scored exactly as transform_record does;
    a partial set is warned about per entity; a bad count is a 422 naming it."""
    state = scorer.artifact.feature_state
    assert set(MERCHANT) <= set(state.history_groups["merchant"])
    record = {**VALID, **MERCHANT}
    body = client.post("/predict", json=record).get_json()
    assert body["warnings"] == []
    vector, _ = transform_record(record, state)
    expected = float(scorer.artifact.model.predict_proba(vector[None])[0])
    assert abs(body["fraud_probability"] - expected) < 1e-6
    first = transform_record(VALID, state)[0]
    names = state.feature_names
    assert first[names.index("merchant_fraud_risk_7d")] == state.fraud_prior  # absent: new
    assert vector[names.index("merchant_fraud_risk_7d")] > 0.3
    partial = {k: v for k, v in record.items() if k != "merchant_fraud_count_7d"}
    assert client.post("/predict", json=partial).get_json()["warnings"] == [
        "partial merchant history: merchant_fraud_count_7d absent, each taken as for a merchant "
        "with no history; send every merchant history field, or none"
    ]
    bad = client.post("/predict", json={**record, "merchant_fraud_count_7d": -1})
    assert bad.status_code == 422
    assert [e["field"] for e in bad.get_json()["details"]] == ["merchant_fraud_count_7d"]
    schema = client.get("/openapi.json").get_json()
    documented = json.dumps(schema)
    assert "merchant_labelled_count_7d" in documented
    assert "before the label delay" in documented


def test_prediction_ids_unique(client: FlaskClient) -> None:
    ids = {client.post("/predict", json=VALID).get_json()["prediction_id"] for _ in range(20)}
    assert len(ids) == 20


def test_unknown_category_warns_and_scores(client: FlaskClient) -> None:
    response = client.post("/predict", json=with_(merchant_category="space_tourism"))
    assert response.status_code == 200
    warnings = response.get_json()["warnings"]
    assert any("merchant_category" in w and "space_tourism" in w for w in warnings)


def test_unknown_fields_ignored_with_warning(client: FlaskClient) -> None:
    response = client.post("/predict", json=with_(colour="red", extra={"a": [1]}))
    assert response.status_code == 200
    assert response.get_json()["warnings"] == ["ignored unknown field(s): colour, extra"]


def test_timestamp_overrides_hour_and_day(client: FlaskClient, scorer: Scorer) -> None:
    # 2026-03-07 is a Saturday; 23:30 at -05:00 is 04:30 UTC on Sunday.
    body = with_(timestamp="2026-03-07T23:30:00-05:00", hour_of_day=10, day_of_week=1)
    response = client.post("/predict", json=body)
    assert response.status_code == 200
    expected = scorer.score_record(with_(hour_of_day=4, day_of_week=6))
    got = response.get_json()
    assert got["fraud_probability"] == expected["fraud_probability"]
    assert any("hour_of_day: 10 replaced by 4" in w for w in got["warnings"])
    no_hour = with_(timestamp="2026-03-08T04:30:00Z", hour_of_day=..., day_of_week=...)
    response = client.post("/predict", json=no_hour)
    assert response.status_code == 200
    assert response.get_json()["fraud_probability"] == expected["fraud_probability"]


def test_absent_history_is_first_transaction(scorer: Scorer) -> None:
    client = create_app({"FEATURE_STORE_URL": "none"}).test_client()
    minimal = {k: VALID[k] for k in required_fields(scorer_fields(client))}
    minimal.update(hour_of_day=3, day_of_week=5)
    response = client.post("/predict", json=minimal)
    assert response.status_code == 200
    state = scorer.artifact.feature_state
    record = {**minimal, **state.history_defaults}
    vector, _ = transform_record(record, state)
    expected = float(scorer.artifact.model.predict_proba(vector[None])[0])
    assert abs(response.get_json()["fraud_probability"] - expected) < 1e-6


def scorer_fields(client: FlaskClient) -> dict[str, Any]:
    return client.application.extensions["fraud"].validate.fields


BAD_PAYLOADS = [
    pytest.param(with_(amount=...), ["amount"], id="missing-amount"),
    pytest.param(with_(amount=0), ["amount"], id="zero-amount"),
    pytest.param(with_(amount=-5), ["amount"], id="negative-amount"),
    pytest.param(with_(amount="12"), ["amount"], id="string-amount"),
    pytest.param(with_(amount=True), ["amount"], id="bool-amount"),
    pytest.param(with_(amount=10**30), ["amount"], id="huge-int-amount"),
    pytest.param(with_(amount=2e9), ["amount"], id="over-max-amount"),
    pytest.param(with_(amount=[1]), ["amount"], id="list-amount"),
    pytest.param(with_(hour_of_day=24), ["hour_of_day"], id="hour-24"),
    pytest.param(with_(hour_of_day=3.5), ["hour_of_day"], id="hour-fraction"),
    pytest.param(with_(hour_of_day="3"), ["hour_of_day"], id="hour-string"),
    pytest.param(with_(day_of_week=-1), ["day_of_week"], id="day-negative"),
    pytest.param(with_(hour_of_day=..., day_of_week=...), ["hour_of_day", "day_of_week"],
                 id="no-hour-no-timestamp"),
    pytest.param(with_(merchant_category=""), ["merchant_category"], id="empty-category"),
    pytest.param(with_(location="   "), ["location"], id="blank-location"),
    pytest.param(with_(device_type=7), ["device_type"], id="int-device"),
    pytest.param(with_(transaction_type="x" * 500), ["transaction_type"], id="long-string"),
    pytest.param(with_(location="bad\x00nul"), ["location"], id="control-char"),
    pytest.param(with_(user_id=5), ["user_id"], id="int-user-id"),
    pytest.param(with_(timestamp="yesterday"), ["timestamp"], id="bad-timestamp"),
    pytest.param(with_(timestamp=1700000000), ["timestamp"], id="numeric-timestamp"),
    pytest.param(with_(user_transaction_count=-1), ["user_transaction_count"], id="neg-count"),
    pytest.param(with_(user_txn_count_1h=1.5), ["user_txn_count_1h"], id="fraction-count"),
    pytest.param(with_(user_avg_amount=-3.0), ["user_avg_amount"], id="neg-avg"),
    pytest.param(with_(seconds_since_last_transaction="soon"),
                 ["seconds_since_last_transaction"], id="string-seconds"),
    pytest.param(with_(is_new_device=2), ["is_new_device"], id="flag-2"),
    pytest.param(with_(is_new_location="yes"), ["is_new_location"], id="flag-string"),
    pytest.param(with_(amount=..., location=..., hour_of_day=99),
                 ["hour_of_day", "amount", "location"], id="several-fields"),
    pytest.param([VALID], ["$"], id="array-body"),
    pytest.param("text", ["$"], id="string-body"),
    pytest.param(None, ["$"], id="null-body"),
]  # fmt: skip


@pytest.mark.parametrize(("payload", "fields"), BAD_PAYLOADS)
def test_predict_validation_errors(client: FlaskClient, payload: Any, fields: list[str]) -> None:
    response = client.post("/predict", data=json.dumps(payload), content_type="application/json")
    assert response.status_code == 422
    body = response.get_json()
    assert body["error"] == "validation_error"
    assert sorted(error_fields(response)) == sorted(fields)
    assert all(detail["message"] for detail in body["details"])


def test_error_messages_read_as_english(client: FlaskClient) -> None:
    response = client.post("/predict", json=with_(hour_of_day="3", amount="12"))
    messages = {d["field"]: d["message"] for d in response.get_json()["details"]}
    assert messages == {"amount": "must be a number", "hour_of_day": "must be an integer"}
    response = client.post("/predict", json=[VALID])
    assert response.get_json()["details"][0]["message"] == "request body must be a JSON object"
    response = client.post("/predict/batch", json={"transactions": [VALID, 7]})
    item = response.get_json()["results"][1]
    assert item["errors"][0]["message"] == "each transaction of the batch must be a JSON object"


RAW_BODIES = [
    pytest.param(b"{", 400, id="truncated"),
    pytest.param(b"", 400, id="empty"),
    pytest.param(b"   ", 400, id="whitespace"),
    pytest.param(b'{"amount": NaN}', 400, id="nan-literal"),
    pytest.param(b'{"amount": Infinity}', 400, id="infinity-literal"),
    pytest.param(b'{"amount": -Infinity}', 400, id="neg-infinity-literal"),
    pytest.param(b"[" * 30_000 + b"]" * 30_000, 400, id="deeply-nested"),
    pytest.param(b'{"amount": 1' + b"0" * 5000 + b"}", 400, id="5000-digit-int"),
    pytest.param(b"\xff\xfe\x00garbage", 400, id="invalid-utf8"),
    pytest.param(b'{"amount": 1e400}', 422, id="float-overflow"),
    pytest.param(json.dumps(with_(location="\ud800")).encode(), 422, id="lone-surrogate"),
    pytest.param(b"x" * (70 * 1024), 413, id="over-max-content-length"),
]


@pytest.mark.parametrize(("raw", "status"), RAW_BODIES)
def test_predict_raw_bodies_never_500(client: FlaskClient, raw: bytes, status: int) -> None:
    response = client.post("/predict", data=raw, content_type="application/json")
    assert response.status_code == status
    body = response.get_json()
    assert set(body) >= {"error", "message"}


def test_odd_unicode_scores(client: FlaskClient) -> None:
    response = client.post("/predict", json=with_(location="Zürich 🏙", transaction_id="ü-1"))
    assert response.status_code == 200
    assert response.get_json()["transaction_id"] == "ü-1"


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", ""]
)
def test_predict_wrong_content_type(client: FlaskClient, content_type: str) -> None:
    response = client.post("/predict", data=json.dumps(VALID), content_type=content_type)
    assert response.status_code == 415
    assert response.get_json()["error"] == "unsupported_media_type"


def test_json_content_type_with_charset(client: FlaskClient) -> None:
    response = client.post(
        "/predict", data=json.dumps(VALID), content_type="application/json; charset=utf-8"
    )
    assert response.status_code == 200


def test_not_found_and_method_not_allowed_are_json(client: FlaskClient) -> None:
    response = client.get("/nope")
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"
    response = client.get("/predict")
    assert response.status_code == 405
    assert response.get_json()["error"] == "method_not_allowed"
    assert "POST" in response.headers["Allow"]


def test_unhandled_bug_is_json_500(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    scorer = app.extensions["fraud"].scorer

    def boom(records: Any, history: Any = None) -> dict:
        raise RuntimeError("bug")

    monkeypatch.setattr(scorer, "score_records", boom)
    response = app.test_client().post("/predict", json=VALID)
    assert response.status_code == 500
    assert response.get_json() == {"error": "internal_error", "message": "internal server error"}


# --- /predict/batch ------------------------------------------------------------------------


def test_batch_mixed_keeps_order(client: FlaskClient, scorer: Scorer) -> None:
    items = [VALID, with_(amount=-1), "not an object", with_(transaction_id="t-4", amount=5.0)]
    response = client.post("/predict/batch", json={"transactions": items})
    assert response.status_code == 200
    body = response.get_json()
    assert body["n_scored"] == 2
    assert body["n_errors"] == 2
    assert body["model_version"] == scorer.version
    results = body["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3]
    assert results[1]["errors"] == [{"field": "amount", "message": "must be > 0"}]
    assert [e["field"] for e in results[2]["errors"]] == ["$"]
    assert results[0]["transaction_id"] == "t-1"
    assert results[3]["transaction_id"] == "t-4"
    for i in (0, 3):
        assert (
            results[i]["fraud_probability"] == scorer.score_record(items[i])["fraud_probability"]
        )


def test_batch_equals_single(client: FlaskClient) -> None:
    items = [
        with_(amount=a, hour_of_day=h, merchant_category=m)
        for a, h, m in [(5.0, 1, "grocery"), (900.0, 2, "crypto"), (33.3, 23, "unknown_cat")]
    ]
    batch = client.post("/predict/batch", json={"transactions": items}).get_json()["results"]
    for item, result in zip(items, batch, strict=True):
        single = client.post("/predict", json=item).get_json()
        for key in ("fraud_probability", "is_fraud", "risk_level", "reasons", "warnings"):
            assert result[key] == single[key]


def test_prediction_fields_come_in_a_fixed_order(client: FlaskClient) -> None:
    # orjson writes keys in insertion order; clients and golden files may read them in order:
    # the OpenAPI document's required fields, then the optional transaction_id
    doc = client.get("/openapi.json").get_json()
    fields = [*doc["components"]["schemas"]["Prediction"]["required"], "transaction_id"]
    item = with_(transaction_id="t-1")
    single = client.post("/predict", json=item).get_json()
    assert list(single) == [*fields, "processing_time_ms"]
    (entry,) = client.post("/predict/batch", json={"transactions": [item]}).get_json()["results"]
    assert list(entry) == ["index", *fields]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"transactions": []}, 422, "transactions"),
        ({"transactions": "x"}, 422, "transactions"),
        ({}, 422, "transactions"),
        ([VALID], 422, "$"),
        ({"transactions": [VALID] * (MAX_BATCH + 1)}, 413, None),
    ],
)
def test_batch_errors(client: FlaskClient, body: Any, status: int, field: str | None) -> None:
    response = client.post("/predict/batch", json=body)
    assert response.status_code == status
    if field is not None:
        assert error_fields(response) == [field]
    else:
        assert response.get_json()["error"] == "payload_too_large"


def test_batch_max_size_accepted(client: FlaskClient) -> None:
    response = client.post("/predict/batch", json={"transactions": [VALID] * MAX_BATCH})
    assert response.status_code == 200
    assert response.get_json()["n_scored"] == MAX_BATCH


# --- other endpoints -----------------------------------------------------------------------


def test_health_and_ready(client: FlaskClient, scorer: Scorer) -> None:
    body = client.get("/health").get_json()
    assert body["status"] == "ok"
    assert body["model_loaded"] is True
    assert body["version"] == scorer.version
    assert body["uptime_seconds"] >= 0
    response = client.get("/ready")
    assert response.status_code == 200
    assert response.get_json()["ready"] is True


def test_model_info(client: FlaskClient, tiny_model: TinyModel) -> None:
    manifest = json.loads(tiny_model.manifest.read_text())
    body = client.get("/model/info").get_json()
    assert body["version"] == manifest["sha256"][:12]
    for key in ("kind", "env", "threshold", "features", "test_metrics", "params_hash"):
        assert body[key] == manifest[key]
    first, last = body["train_period"]  # the training data's time span (deterministic)
    assert "2026-01-01" <= first < last
    assert body["library_versions"] == manifest["library_versions"]


def test_metrics_count_requests(app: Flask) -> None:
    client = create_app().test_client()  # a fresh app: its own registry, counts start at 0
    for _ in range(3):
        client.post("/predict", json=VALID)
    client.post("/predict", json={})
    client.get("/health")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'fraud_http_requests_total{endpoint="/predict",status="200"} 3.0' in text
    assert 'fraud_http_requests_total{endpoint="/predict",status="422"} 1.0' in text
    assert 'fraud_http_requests_total{endpoint="/health",status="200"} 1.0' in text
    assert 'fraud_http_request_duration_seconds_count{endpoint="/predict",status="200"} 3.0' in (
        text
    )
    assert "fraud_score_count 3.0" in text
    assert "fraud_flagged_transactions_total" in text


#: Scores of each kind of edge: zero, bucket bounds (le is inclusive), just above them, one.
EDGE_SCORES = [0.0, 1e-9, 0.01, 0.0101, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.73, 0.9, 0.95]
EDGE_SCORES += [0.99, 0.999, 1.0]


def score_lines(text: str) -> tuple[list[str], float]:
    """The fraud_score lines of an exposition but its sum and created time, and its sum."""
    lines = [line for line in text.splitlines() if "fraud_score" in line]
    lines = [line for line in lines if "fraud_score_created" not in line]
    sums = [float(line.split()[-1]) for line in lines if line.startswith("fraud_score_sum ")]
    assert len(sums) == 1
    return [line for line in lines if not line.startswith("fraud_score_sum ")], sums[0]


def reference_histogram(batches: list[list[float]]) -> str:
    """What a prometheus_client Histogram observing every score once exposes."""
    from prometheus_client import CollectorRegistry, Histogram, generate_latest

    from app.metrics import SCORE_BUCKETS

    registry = CollectorRegistry()
    histogram = Histogram(
        "fraud_score",
        "Fraud probability of scored transactions",
        buckets=SCORE_BUCKETS,
        registry=registry,
    )
    for score in (score for batch in batches for score in batch):
        histogram.observe(score)
    return generate_latest(registry).decode()


def test_score_histogram_exposes_what_a_histogram_would() -> None:
    """Bulk (numpy) and small batches, through public Counters: the same exposition as
    ``Histogram.observe`` per score (which a prometheus_client upgrade cannot break)."""
    from prometheus_client import generate_latest

    from app.metrics import Metrics

    batches = [EDGE_SCORES, [0.3, 0.02], [], [0.5], EDGE_SCORES[::-1] * 3]
    metrics = Metrics()
    for batch in batches:
        metrics.observe_scores(batch, 1)
    text = generate_latest(metrics.registry).decode()
    reference = reference_histogram(batches)
    lines, total = score_lines(text)
    expected, expected_total = score_lines(reference)
    assert lines == expected
    assert total == pytest.approx(expected_total, abs=1e-12)
    assert 'fraud_score_bucket{le="0.01"} 12.0' in lines  # le is inclusive
    assert "# TYPE fraud_score histogram" in lines
    # The created time follows as in the text format, and the hidden counters never show.
    assert ("fraud_score_created" in text) == ("fraud_score_created" in reference)
    assert "fraud_score_observ" not in text
    assert "fraud_flagged_transactions_total 5.0" in text


def test_a_nan_score_is_in_no_bucket_as_with_a_histogram() -> None:
    from prometheus_client import generate_latest

    from app.metrics import Metrics

    batches = [[float("nan")], [0.5, float("nan"), *EDGE_SCORES]]  # small and bulk paths
    metrics = Metrics()
    for batch in batches:
        metrics.observe_scores(batch, 0)
    lines, total = score_lines(generate_latest(metrics.registry).decode())
    expected, _ = score_lines(reference_histogram(batches))
    assert lines == expected
    assert math.isnan(total)


def test_metrics_multiprocess_mode_aggregates_processes(tmp_path: Path) -> None:
    """Two processes write to PROMETHEUS_MULTIPROC_DIR; /metrics' renderer sums them."""
    script = (
        "import sys; from app.metrics import Metrics; m = Metrics(); "
        "m.observe_request('/predict', 200, 0.01); m.observe_scores([0.9], 1); "
        f"m.observe_scores({EDGE_SCORES!r}, 0); "
        "sys.stdout.buffer.write(m.render()[0])"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(REPO)}
    outputs = [
        subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        ).stdout
        for _ in range(2)
    ]
    assert 'fraud_http_requests_total{endpoint="/predict",status="200"} 1.0' in outputs[0]
    assert 'fraud_http_requests_total{endpoint="/predict",status="200"} 2.0' in outputs[1]
    assert "fraud_flagged_transactions_total 2.0" in outputs[1]
    # fraud_score: the histogram of both processes' scores, as a Histogram would give it.
    lines, total = score_lines(outputs[1])
    expected, expected_total = score_lines(reference_histogram([[0.9], EDGE_SCORES] * 2))
    assert sorted(lines) == sorted(expected)
    assert total == pytest.approx(expected_total, abs=1e-12)
    assert "fraud_score_observ" not in outputs[1]
    assert "fraud_score_created" not in outputs[1]  # as for a Histogram in multiprocess mode


def test_openapi_from_validator_schema(client: FlaskClient) -> None:
    doc = client.get("/openapi.json").get_json()
    assert doc["openapi"].startswith("3.0")
    assert {"/predict", "/predict/batch"} <= set(doc["paths"])
    transaction = doc["components"]["schemas"]["Transaction"]
    fields = scorer_fields(client)
    assert transaction["required"] == required_fields(fields)
    assert set(transaction["properties"]) == set(fields)
    assert transaction["properties"]["hour_of_day"]["maximum"] == 23
    batch = doc["components"]["schemas"]["Batch"]
    assert batch["properties"]["transactions"]["maxItems"] == MAX_BATCH


def test_sample_transaction_is_valid(client: FlaskClient) -> None:
    sample = client.get("/sample-transaction").get_json()
    _, warnings, errors = TransactionValidator(scorer_fields(client))(sample)
    assert errors == []
    assert warnings == []
    assert client.post("/predict", json=sample).status_code == 200


# --- Scorer --------------------------------------------------------------------------------


def test_scorer_bands_and_top_k(app: Flask) -> None:
    base: Scorer = app.extensions["fraud"].scorer
    scorer = Scorer(base.artifact, base.manifest, bands=RiskBands(0.0, 1.0), top_k=5)
    result = scorer.score_record(VALID)
    assert result["risk_level"] == ("high" if result["fraud_probability"] >= 1.0 else "medium")
    assert len(result["reasons"]) == 5
    assert RiskBands(0.3, 0.7).level(0.3) == "medium"
    assert RiskBands(0.3, 0.7).level(0.7) == "high"
    assert RiskBands(0.3, 0.7).level(0.29) == "low"
    with pytest.raises(ValueError, match="medium <= high"):
        RiskBands(0.8, 0.2)


def test_scorer_contributions_sum_to_margin(scorer: Scorer) -> None:
    vector, _ = transform_record(VALID, scorer.artifact.feature_state)
    x = np.vstack([vector, vector])
    probabilities, contributions = scorer.artifact.model.predict(x)
    assert contributions.shape == x.shape
    assert np.max(np.abs(probabilities - scorer.artifact.model.predict_proba(x))) < 1e-6
    import xgboost

    full = scorer.artifact.model.booster().predict(
        xgboost.DMatrix(x), pred_contribs=True, approx_contribs=True
    )
    margin = np.log(probabilities / (1 - probabilities))
    np.testing.assert_allclose(full.sum(axis=1), margin, rtol=1e-4, atol=1e-4)


def test_scorer_non_xgboost_gives_no_reasons(scorer: Scorer) -> None:
    from dataclasses import replace

    class Opaque:  # an estimator without contributions, scoring like the real model
        def predict_proba(self, x: np.ndarray) -> np.ndarray:
            p = scorer.artifact.model.predict_proba(x)
            return np.column_stack([1 - p, p])

    opaque = LogisticModel(Opaque())  # the scikit-learn runtime: zero contributions
    artifact = replace(scorer.artifact, kind="logistic_regression", model=opaque)
    other = Scorer(artifact, scorer.manifest, scorer.bands, scorer.top_k)
    result = other.score_record(VALID)
    assert result["reasons"] == []
    assert (
        abs(result["fraud_probability"] - scorer.score_record(VALID)["fraud_probability"]) < 1e-6
    )


# --- startup refusals ----------------------------------------------------------------------


def copy_model(tiny_model: TinyModel, tmp_path: Path) -> tuple[Path, Path]:
    """The tiny model's directory copied; its artifact and the copy's directory."""
    models = tmp_path / "models"
    shutil.copytree(tiny_model.model_dir, models)
    return models / tiny_model.model.name, models


def test_tampered_artifact_refused(tiny_model: TinyModel, tmp_path: Path) -> None:
    model, models = copy_model(tiny_model, tmp_path)
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=str(model)):
        create_app({"MODEL_DIR": str(models)})


def test_missing_artifact_refused(tiny_model: TinyModel, tmp_path: Path) -> None:
    model, models = copy_model(tiny_model, tmp_path)
    model.unlink()
    with pytest.raises(ArtifactError, match="not found"):
        create_app({"MODEL_DIR": str(models)})


def test_the_default_xgboost_artifact_loads_without_unpickling(
    tiny_model: TinyModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every unpickling entry point fails: the XGBoost artifact is JSON and arrays."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("unpickled")

    for module, name in [(pickle, "loads"), (pickle, "load"), (pickle, "Unpickler")]:
        monkeypatch.setattr(module, name, refuse)
    monkeypatch.setattr(joblib, "load", refuse)
    client = create_app().test_client()
    assert client.post("/predict", json=VALID).status_code == 200


def test_a_copied_model_directory_serves(tiny_model: TinyModel, tmp_path: Path) -> None:
    _, models = copy_model(tiny_model, tmp_path)
    app = create_app({"MODEL_DIR": str(models)})
    assert app.config["MODEL_DIR"] == models
    assert app.test_client().post("/predict", json=VALID).status_code == 200


def test_features_mismatch_refused(tiny_model: TinyModel, tmp_path: Path) -> None:
    features = tmp_path / "selected_features.json"
    listed = json.loads(tiny_model.features.read_text())
    listed["features"] = listed["features"][:-1]
    features.write_text(json.dumps(listed))
    with pytest.raises(ArtifactError, match=str(features)):
        create_app({"FEATURES_PATH": str(features)})


def test_env_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_BATCH", "7")
    monkeypatch.setenv("RISK_HIGH", "0.9")
    app = create_app({"TOP_REASONS": 1})
    assert app.config["MAX_BATCH"] == 7
    assert app.extensions["fraud"].scorer.bands == RiskBands(0.3, 0.9)
    assert app.extensions["fraud"].scorer.top_k == 1


def test_scored_requests_reach_the_drift_window(tmp_path: Path) -> None:
    """Wiring: /predict and /predict/batch write what they scored to the audit log (one line
    per answer, with its prediction id); the drift endpoint reports on it."""
    app = create_app({"MONITORING_TOKEN": "s3cret", "PREDICTION_LOG_DIR": str(tmp_path)})
    client = app.test_client()
    one = client.post("/predict", json=VALID)
    assert one.status_code == 200
    batch = {"transactions": [VALID, {"amount": -1}, dict(VALID, amount=12.5)]}
    scored = client.post("/predict/batch", json=batch).get_json()
    assert scored["n_scored"] == 2
    answers = [one.get_json(), scored["results"][0], scored["results"][2]]
    assert client.get("/monitoring/drift").status_code == 401
    response = client.get("/monitoring/drift", headers={"Authorization": "Bearer s3cret"})
    report = response.get_json()
    assert response.status_code == 200
    assert report["rows"]["current"] == 3  # the invalid item is not logged
    assert report["verdict"] == "insufficient_data"
    lines = [
        json.loads(line) for f in tmp_path.glob("*.jsonl") for line in f.read_text().splitlines()
    ]
    assert sorted(line["amount"] for line in lines) == [12.5, VALID["amount"], VALID["amount"]]
    manifest = app.extensions["fraud"].manifest
    by_id = {line["prediction_id"]: line for line in lines}
    assert set(by_id) == {a["prediction_id"] for a in answers}
    for answer in answers:
        line = by_id[answer["prediction_id"]]
        assert line["fraud_probability"] == answer["fraud_probability"]
        assert line["decision"] == ("fraud" if answer["is_fraud"] else "legit")
        assert line["user_id"] == VALID["user_id"]  # the raw request fields
        assert line["model_sha256"] == manifest["sha256"]
        assert line["model_version"] == answer["model_version"]
        assert line["threshold"] == manifest["threshold"]
        assert line["history_source"] == answer["history_source"]


def test_scoring_errors_have_the_body_of_flasks_errors(client: FlaskClient) -> None:
    """The scoring endpoints answer in front of Flask; their errors look like Flask's."""
    ours = client.get("/predict/batch")  # a wrong method, answered by app.predict
    flask = client.post("/health")  # the same error, answered by Flask
    assert ours.status_code == flask.status_code == 405
    assert ours.headers["Content-Type"] == flask.headers["Content-Type"]
    assert set(ours.get_json()) == set(flask.get_json()) == {"error", "message"}
    assert ours.get_json()["error"] == flask.get_json()["error"] == "method_not_allowed"
    assert ours.headers["Allow"] == "OPTIONS, POST"
    options = client.options("/predict")
    assert options.status_code == 200
    assert options.headers["Allow"] == "OPTIONS, POST"


def test_a_non_ascii_content_length_is_a_400_not_a_500(app: Flask) -> None:
    from werkzeug.test import EnvironBuilder, run_wsgi_app

    environ = EnvironBuilder(path="/predict", method="POST", data=b"{}").get_environ()
    environ["CONTENT_TYPE"] = "application/json"
    environ["CONTENT_LENGTH"] = "\u00b2"  # str.isdigit() is true for a superscript two
    body, status, _ = run_wsgi_app(app.wsgi_app, environ)
    assert status.startswith("400")
    assert json.loads(b"".join(body))["error"] == "bad_request"


def test_a_chunked_body_is_read_and_bounded(app: Flask) -> None:
    """No Content-Length: the stream ends with the body (gunicorn's wsgi.input_terminated)."""
    from werkzeug.test import EnvironBuilder, run_wsgi_app

    def post(data: bytes) -> tuple[str, dict]:
        builder = EnvironBuilder(path="/predict", method="POST", data=data)
        environ = builder.get_environ()
        del environ["CONTENT_LENGTH"]
        environ["CONTENT_TYPE"] = "application/json"
        environ["wsgi.input_terminated"] = True
        body, status, _ = run_wsgi_app(app.wsgi_app, environ)
        return status, json.loads(b"".join(body))

    status, body = post(json.dumps(VALID).encode())
    assert status == "200 OK"
    assert 0.0 <= body["fraud_probability"] <= 1.0
    status, body = post(b" " * (64 * 1024 + 1))  # the app fixture's MAX_CONTENT_LENGTH + 1
    assert status == "413 Request Entity Too Large"
    assert body["error"] == "payload_too_large"


@pytest.mark.parametrize(
    ("content_type", "data", "status"),
    [
        ("application/json; charset=utf-8", json.dumps(VALID), 200),
        ("text/plain", json.dumps(VALID), 415),
        ("application/json", "{", 400),
        ("application/json", json.dumps({**VALID, "amount": 10**30}), 422),
        ("application/json", json.dumps([VALID]), 422),
    ],
)
def test_predict_answers_each_case_with_its_status(
    client: FlaskClient, content_type: str, data: str, status: int
) -> None:
    response = client.post("/predict", data=data, content_type=content_type)
    assert response.status_code == status
    assert response.is_json


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (json.dumps(VALID)[:-1] + ', "\\ud800": 0}', 400, None),  # a key: was a 500
        ((json.dumps(VALID)[:-1] + ', "').encode() + b"\xed\xa0\x80" + b'": 0}', 400, None),
        (json.dumps({**VALID, "location": "x"}).replace('"x"', '"\\udc00x"'), 422, "location"),
    ],
    ids=["escaped-key", "raw-bytes-key", "escaped-value"],
)
def test_a_lone_surrogate_is_never_a_500(
    client: FlaskClient, body: str | bytes, status: int, field: str | None
) -> None:
    text = body.decode("utf-8", "surrogatepass") if isinstance(body, bytes) else body
    batch = ('{"transactions": [' + text + "]}").encode("utf-8", "surrogatepass")
    for path, data in (("/predict", body), ("/predict/batch", batch)):
        response = client.post(path, data=data, content_type="application/json")
        answer = response.get_json()
        if path == "/predict/batch" and status == 422:  # the item is reported at its index
            assert response.status_code == 200
            assert answer["results"][0]["errors"][0]["field"] == field
            continue
        assert response.status_code == status, (path, response.get_data()[:200])
        if field is None:
            assert answer["message"] == "malformed JSON: lone surrogate \\ud800 in a key"
        else:
            assert [d["field"] for d in answer["details"]] == [field]
    pair = json.dumps({**VALID, "location": "x"}).replace('"x"', '"\\ud83d\\ude00"')
    assert client.post("/predict", data=pair, content_type="application/json").status_code == 200


def test_predict_has_its_own_small_body_limit() -> None:
    app = create_app({"MAX_PREDICT_LENGTH": 4096, "MAX_CONTENT_LENGTH": 1 << 20})
    client = app.test_client()
    padded = json.dumps({**VALID, "pad": "x" * 5000})
    response = client.post("/predict", data=padded, content_type="application/json")
    assert response.status_code == 413
    assert "4096" in response.get_json()["message"]
    batch = client.post(
        "/predict/batch",
        data='{"transactions": [' + padded + "]}",
        content_type="application/json",
    )
    assert batch.status_code == 200
    assert batch.get_json()["n_scored"] == 1


def _json_schema(node: Any) -> Any:
    """An OpenAPI 3.0 schema object as JSON Schema (nullable, boolean exclusiveMinimum)."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _json_schema(v) for k, v in node.items() if k not in ("nullable", "example")}
    if out.get("exclusiveMinimum") is True:
        out["exclusiveMinimum"] = out.pop("minimum")
    return {"anyOf": [out, {"type": "null"}]} if node.get("nullable") else out


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"location": "  "},
        {"location": "Chi\x01cago"},
        {"location": " São Paulo "},
        {"day_of_week": None, "timestamp": "2026-03-04T14:05:00Z"},
        {"day_of_week": None},
        {"timestamp": None},
        {"timestamp": None, "hour_of_day": None, "day_of_week": None},
        {"amount": 0},
    ],
)
def test_the_openapi_schema_agrees_with_the_service(
    client: FlaskClient, changes: dict[str, Any]
) -> None:
    """What the document says is valid is what the service scores (200), and vice versa."""
    import jsonschema

    doc = client.get("/openapi.json").get_json()
    schema = _json_schema(doc["components"]["schemas"]["Transaction"])
    body = {**VALID, **changes}
    valid = jsonschema.Draft202012Validator(schema).is_valid(body)
    status = client.post("/predict", json=body).status_code
    assert status in (200, 422)
    assert valid == (status == 200), (changes, status)


def test_the_document_describes_metrics_as_text_and_the_drift_endpoint(
    client: FlaskClient,
) -> None:
    paths = client.get("/openapi.json").get_json()["paths"]
    assert set(paths["/metrics"]["get"]["responses"]["200"]["content"]) == {"text/plain"}
    assert client.get("/metrics").content_type.startswith("text/plain")
    drift = paths["/monitoring/drift"]["get"]
    assert drift["security"] == [{"bearer": []}]
    assert {"200", "401", "404"} <= set(drift["responses"])
