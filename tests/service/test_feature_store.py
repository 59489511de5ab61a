"""Raw transactions in: the service computes every history field from its online store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from app import create_app
from tests.conftest import free_port

RAW: dict[str, Any] = {
    "transaction_id": "t-1",
    "user_id": "card-1",
    "merchant_id": "m-1",
    "device_id": "d-1",
    "timestamp": "2026-03-02T10:00:00Z",
    "amount": 40.0,
    "merchant_category": "grocery",
    "transaction_type": "in_store",
    "location": "Miami",
    "device_type": "mobile",
}


def raw(**changes: Any) -> dict[str, Any]:
    return {k: v for k, v in {**RAW, **changes}.items() if v is not ...}


@pytest.fixture
def client(tmp_path: Path) -> FlaskClient:
    app = create_app(
        {
            "FEATURE_STORE_URL": f"sqlite:///{tmp_path}/features.db",
            "FEATURE_STORE_DEBUG": 1,
            "FEATURE_STORE_MAX_LATENESS": 3600,
            "MAX_BATCH": 10,
        }
    )
    return app.test_client()


def post(client: FlaskClient, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = client.post("/predict", json=body)
    return response.status_code, response.get_json()


def test_history_comes_from_the_store_as_of_each_transaction(client: FlaskClient) -> None:
    status, first = post(client, raw())
    assert status == 200, first
    assert first["history_source"] == "store"
    assert first["history"]["user_transaction_count"] == 0
    assert first["history"]["user_avg_amount"] is None  # NaN: no past, as in training
    assert first["history"]["is_new_device"] == 1.0
    _, second = post(client, raw(transaction_id="t-2", timestamp="2026-03-02T10:30:00Z"))
    h = second["history"]
    assert h["user_transaction_count"] == 1
    assert h["user_txn_count_1h"] == 1
    assert h["user_amount_sum_1h"] == 40.0
    assert h["seconds_since_last_transaction"] == 1800.0
    assert h["merchant_txn_count_1d"] == 1
    assert h["device_txn_count_1d"] == 1
    assert h["is_new_device"] == 0.0
    # a re-sent transaction is scored as of its time again, never counted twice
    _, again = post(client, raw(transaction_id="t-2", timestamp="2026-03-02T10:30:00Z"))
    assert again["history"] == h
    assert (
        "transaction_id was already recorded: scored again, not counted twice" in again["warnings"]
    )
    _, third = post(client, raw(transaction_id="t-3", timestamp="2026-03-02T11:45:00Z"))
    assert third["history"]["user_transaction_count"] == 2
    assert third["history"]["user_txn_count_1h"] == 0  # 10:30 is 75 min before
    # an older transaction (within the lateness allowed) is computed as of its own time
    _, older = post(client, raw(transaction_id="t-0", timestamp="2026-03-02T11:00:00Z"))
    assert older["history"]["user_transaction_count"] == 2
    assert older["history"]["user_txn_count_1h"] == 2  # 10:00 and 10:30


def test_history_fields_sent_take_precedence_and_leave_the_store_alone(
    client: FlaskClient,
) -> None:
    _, stateless = post(client, raw(user_transaction_count=5))
    assert stateless["history_source"] == "request"
    assert "history" not in stateless
    _, stored = post(client, raw(transaction_id="t-9", timestamp="2026-03-02T10:05:00Z"))
    assert stored["history"]["user_transaction_count"] == 0  # the stateless one was not recorded


@pytest.mark.parametrize("absent", ["transaction_id", "timestamp", "user_id", "merchant_id"])
def test_store_mode_needs_ids_and_time(client: FlaskClient, absent: str) -> None:
    body = raw(**{absent: ...})
    if absent == "timestamp":
        body |= {"hour_of_day": 10, "day_of_week": 0}
    status, answer = post(client, body)
    assert status == 422
    assert answer["details"] == [
        {
            "field": absent,
            "message": "is required when the service computes the history (no history field sent)",
        }
    ]


def test_future_and_too_late_transactions_are_refused(client: FlaskClient) -> None:
    status, answer = post(client, raw(timestamp="2099-01-01T00:00:00Z"))
    assert status == 422
    assert answer["details"][0]["field"] == "timestamp"
    assert "ahead of the server's clock" in answer["details"][0]["message"]
    for before_1970 in ("1969-12-31T23:59:59Z", "0001-01-01T00:00:00Z"):
        status, answer = post(client, raw(timestamp=before_1970))
        assert status == 422, answer
        assert answer["details"] == [
            {"field": "timestamp", "message": "must be after 1970-01-01T00:00:00Z"}
        ]
    response = client.post(
        "/predict/batch",
        json={
            "transactions": [raw(), raw(timestamp="1900-01-01T00:00:00Z", transaction_id="t-x")]
        },
    )
    assert response.status_code == 200
    assert response.get_json()["results"][1]["errors"][0]["field"] == "timestamp"
    assert post(client, raw(timestamp="2026-01-01T00:00:00Z"))[0] == 200
    assert post(client, raw(transaction_id="t-2", timestamp="2026-03-20T00:00:00Z"))[0] == 200
    # January is folded: the device keeps 35 days (its 28-day risk after the 7-day label
    # delay) plus an hour late, so a transaction weeks older than its latest cannot be computed
    status, answer = post(client, raw(transaction_id="t-old", timestamp="2026-01-02T00:00:00Z"))
    assert status == 422
    assert answer["details"][0]["field"] == "timestamp"
    assert "older than the feature store keeps" in answer["details"][0]["message"]


def test_a_batch_sees_its_own_earlier_items_and_reports_each(client: FlaskClient) -> None:
    items = [
        raw(transaction_id="b-2", timestamp="2026-03-02T10:20:00Z"),
        raw(transaction_id="b-1", timestamp="2026-03-02T10:10:00Z"),
        raw(transaction_id="b-x", merchant_id=...),
        raw(transaction_id="b-3", user_transaction_count=0),
    ]
    response = client.post("/predict/batch", json={"transactions": items})
    body = response.get_json()
    assert response.status_code == 200
    assert (body["n_scored"], body["n_errors"]) == (3, 1)
    r = body["results"]
    assert r[0]["history"]["user_transaction_count"] == 1  # b-1 is 10 minutes older
    assert r[1]["history"]["user_transaction_count"] == 0
    assert r[2]["errors"][0]["field"] == "merchant_id"
    assert r[3]["history_source"] == "request"
    assert [x.get("history_source") for x in r] == ["store", "store", None, "request"]


def test_an_unreachable_store_is_a_503_naming_it(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    app = create_app({"FEATURE_STORE_URL": f"redis://:secret@127.0.0.1:{port}/0"})
    client = app.test_client()
    ready = client.get("/ready")
    assert ready.status_code == 503
    assert ready.get_json()["feature_store"] == f"redis store redis://***@127.0.0.1:{port}/0"
    assert "secret" not in ready.get_data(as_text=True)
    status, answer = post(client, raw())
    assert status == 503
    assert answer["error"] == "feature_store_unavailable"
    assert f"127.0.0.1:{port}" in answer["message"]
    assert "secret" not in answer["message"]
    assert post(client, raw(user_transaction_count=3))[0] == 200  # the request's history


def test_an_unusable_sqlite_file_is_a_503(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    app = create_app({"FEATURE_STORE_URL": f"sqlite:///{blocker}/features.db"})
    client = app.test_client()
    assert client.get("/ready").status_code == 503
    status, answer = post(client, raw())
    assert status == 503
    assert str(blocker) in answer["message"]


def test_a_bad_store_url_stops_the_boot() -> None:
    from fraud.runtime.artifact import ArtifactError

    with pytest.raises(ArtifactError, match=r"FEATURE_STORE_URL: .*must start with sqlite:///"):
        create_app({"FEATURE_STORE_URL": "postgres://db"})


def test_the_sample_is_a_raw_transaction_the_store_scores(client: FlaskClient) -> None:
    sample = client.get("/sample-transaction").get_json()
    state = client.application.extensions["fraud"]
    assert not set(sample) & set(state.scorer.artifact.feature_state.history_columns)
    assert {"transaction_id", "user_id", "merchant_id", "device_id", "timestamp"} <= set(sample)
    assert "hour_of_day" not in sample
    status, answer = post(client, sample)
    assert status == 200, answer
    assert answer["history_source"] == "store"
    assert (
        client.get("/sample-transaction").get_json()["transaction_id"] != sample["transaction_id"]
    )


def test_metrics_count_store_results_and_history_sources(client: FlaskClient) -> None:
    post(client, raw())
    post(client, raw())  # a duplicate
    post(client, raw(transaction_id="t-2", timestamp="2026-03-02T10:01:00Z"))
    post(client, raw(transaction_id="t-3", user_transaction_count=1))  # the request's history
    text = client.get("/metrics").get_data(as_text=True)
    assert 'fraud_feature_store_transactions_total{result="recorded"} 2.0' in text
    assert 'fraud_feature_store_transactions_total{result="duplicate"} 1.0' in text
    assert 'fraud_history_source_transactions_total{source="store"} 3.0' in text
    assert 'fraud_history_source_transactions_total{source="request"} 1.0' in text
    assert 'fraud_feature_store_duration_seconds_count{outcome="ok"} 3.0' in text


def test_an_unreachable_store_is_counted(tmp_path: Path) -> None:
    app = create_app({"FEATURE_STORE_URL": f"redis://127.0.0.1:{free_port()}/0"})
    client = app.test_client()
    assert post(client, raw())[0] == 503
    text = client.get("/metrics").get_data(as_text=True)
    assert 'fraud_feature_store_duration_seconds_count{outcome="unavailable"} 1.0' in text
