"""The online store behind a real gunicorn (2 workers), on both backends: replay parity with
the offline pipeline, and no lost update under concurrent requests for one card."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fraud.config import load_paths
from fraud.features.history import history_arrays
from fraud.runtime.artifact import load_artifact
from stages import materialize
from tests.service.test_server import Server, request
from tests.tiny_model import TinyModel

#: What a point of sale sends besides the amount and the time: the store computes the rest.
RAW_FIELDS = [
    "transaction_id",
    "user_id",
    "merchant_id",
    "device_id",
    "merchant_category",
    "transaction_type",
    "location",
    "device_type",
]


def raw_transactions(frame: pd.DataFrame) -> list[dict]:
    """Processed rows as raw /predict bodies (no history field), in the frame's order."""
    out = frame[RAW_FIELDS].to_dict("records")
    for body, amount, ts in zip(out, frame["amount"], frame["timestamp"], strict=True):
        body["amount"] = float(amount)
        body["timestamp"] = ts.isoformat()
    return out


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "redis":
        return request.getfixturevalue("redis_url")
    return f"sqlite:///{tmp_path}/features.db"


def serve(tmp_path: Path, store_url: str) -> Server:
    return Server.started(tmp_path, {"FEATURE_STORE_URL": store_url, "FEATURE_STORE_DEBUG": "1"})


def test_replaying_the_test_split_answers_the_offline_history(
    tiny_model: TinyModel, tmp_path: Path, store_url: str
) -> None:
    paths = load_paths(tiny_model.params)
    splits = {s: pd.read_parquet(getattr(paths.processed, s)) for s in ("train", "valid", "test")}
    code = materialize.main(
        ["--url", store_url, "--splits", "train", "valid", "--params", str(tiny_model.params)]
    )
    assert code == 0
    test = splits["test"].sort_values("timestamp", kind="stable").reset_index(drop=True)
    artifact, _ = load_artifact(tiny_model.manifest)
    state = artifact.feature_state
    # labels of test transactions would reach risk only after the label delay: none does here,
    # so the live service (which has no test labels) must answer exactly the offline history
    delay = pd.Timedelta(days=state.config.label_delay_days)
    assert test["timestamp"].max() - test["timestamp"].min() < delay
    everything = pd.concat([splits["train"], splits["valid"], test], ignore_index=True)
    offline = history_arrays(everything, state.config)
    want = {name: values[-len(test) :] for name, values in offline.items()}
    bodies = raw_transactions(test)
    server = serve(tmp_path, store_url)
    try:
        got: list[dict] = []
        for i in range(20):  # one by one, then in batches
            status, body = request(f"{server.url}/predict", bodies[i])
            assert status == 200, body
            got.append(body)
        for start in range(20, len(test), 250):
            items = bodies[start : start + 250]
            status, body = request(f"{server.url}/predict/batch", {"transactions": items})
            assert status == 200, body
            assert body["n_errors"] == 0, body
            got += body["results"]
    finally:
        server.stop()
    assert {g["history_source"] for g in got} == {"store"}
    for name in state.history_columns:
        values = np.array(
            [np.nan if g["history"][name] is None else g["history"][name] for g in got]
        )
        np.testing.assert_allclose(values, want[name], rtol=1e-9, atol=1e-9, err_msg=name)
    # and the scores are the model's on the offline features
    from fraud.runtime.scoring import RiskBands, Scorer

    scorer = Scorer(artifact, {}, RiskBands(0.3, 0.7), 0)
    records = [
        body | {"hour_of_day": int(h), "day_of_week": int(d)}
        for body, h, d in zip(bodies, test["hour_of_day"], test["day_of_week"], strict=True)
    ]
    expected = scorer.score_records(records, want)
    np.testing.assert_allclose(
        [g["fraud_probability"] for g in got],
        [e["fraud_probability"] for e in expected],
        rtol=1e-9,
        atol=1e-12,
    )


def test_concurrent_requests_for_one_card_lose_no_update(
    tiny_model: TinyModel, tmp_path: Path, store_url: str
) -> None:
    n = 120
    start = datetime(2026, 3, 1, tzinfo=UTC)
    base = {
        "user_id": "card-hot",
        "merchant_id": "m-hot",
        "device_id": "d-hot",
        "amount": 20.0,
        "merchant_category": "grocery",
        "transaction_type": "in_store",
        "location": "Miami",
        "device_type": "mobile",
    }
    bodies = [
        dict(base, transaction_id=f"c-{i}", timestamp=(start + timedelta(seconds=i)).isoformat())
        for i in range(n)
    ]
    server = serve(tmp_path, store_url)
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(lambda b: request(f"{server.url}/predict", b)[0], bodies))
        assert statuses == [200] * n
        later = dict(
            base, transaction_id="c-last", timestamp=(start + timedelta(hours=1)).isoformat()
        )
        status, body = request(f"{server.url}/predict", later)
        assert status == 200, body
        pids = server.log.read_text()
    finally:
        server.stop()
    history = body["history"]
    assert history["user_transaction_count"] == n, json.dumps(history)
    assert history["user_txn_count_24h"] == n
    assert history["merchant_txn_count_1d"] == n
    assert history["device_txn_count_1d"] == n
    assert pids.count("Booting worker") >= 2
