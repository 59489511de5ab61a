"""POST /feedback and GET /monitoring/performance: in process, then end to end on a real
gunicorn with the online store, numbers checked against values computed directly, and the
export of its audit log retrained by `dvc repro` in a temporary git repo."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from flask import Flask

from app import create_app
from fraud.config import load_paths
from fraud.model.metrics import card_precision_at_k
from stages import performance as performance_stage
from tests.conftest import REPO, copy_repo, run
from tests.service.test_app import VALID
from tests.service.test_server import Server, request
from tests.service.test_store_server import raw_transactions
from tests.tiny_model import TinyModel

TOKEN = "feedback-token-123"
MONITOR = "monitor-token-456"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def make_app(tmp_path: Path, **extra: Any) -> Flask:
    settings = {
        "FEEDBACK_TOKEN": TOKEN,
        "MONITORING_TOKEN": MONITOR,
        "PREDICTION_LOG_DIR": str(tmp_path / "audit"),
        "PREDICTION_LOG_FLUSH_SECONDS": 0.0,
        "FEATURE_STORE_URL": "none",
    }
    return create_app({**settings, **extra})


def scored(app: Flask, n: int) -> list[dict]:
    """``n`` transactions t-0.. scored through /predict/batch."""
    items = [dict(VALID, transaction_id=f"t-{i}", amount=10.0 + i) for i in range(n)]
    body = app.test_client().post("/predict/batch", json={"transactions": items}).get_json()
    assert body["n_scored"] == n
    return body["results"]


def send(app: Flask, body: Any, headers: dict | None = None) -> tuple[int, Any]:
    response = app.test_client().post("/feedback", json=body, headers=AUTH | (headers or {}))
    return response.status_code, response.get_json()


def test_without_a_token_feedback_is_404_and_a_wrong_token_401(tmp_path: Path) -> None:
    off = make_app(tmp_path, FEEDBACK_TOKEN=None)
    assert send(off, {"transaction_id": "t-0", "is_fraud": 1})[0] == 404
    app = make_app(tmp_path)
    for header in ({"Authorization": "Bearer nope"}, {"Authorization": ""}):
        status, body = send(app, {"transaction_id": "t-0", "is_fraud": 1}, header)
        assert (status, body["error"]) == (401, "unauthorized")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"is_fraud": 1}, "transaction_id"),
        ({"transaction_id": "", "is_fraud": 1}, "transaction_id"),
        ({"transaction_id": "t-0", "is_fraud": 2}, "is_fraud"),
        ({"transaction_id": "t-0", "is_fraud": "yes"}, "is_fraud"),
        ({"transaction_id": "t-0", "is_fraud": 1, "labelled_at": "yesterday"}, "labelled_at"),
        (
            {"transaction_id": "t-0", "is_fraud": 1, "labelled_at": "2999-01-01T00:00:00"},
            "labelled_at",
        ),
        ({"transaction_id": "t-0", "is_fraud": 1, "label": 1}, "label"),
        ([1, 2], "$"),
        ({"labels": []}, "labels"),
    ],
)
def test_bad_labels_are_422_naming_the_field(tmp_path: Path, body: Any, field: str) -> None:
    status, answer = send(make_app(tmp_path), body)
    assert status == 422, answer
    assert field in [d["field"] for d in answer["details"]]


def test_a_batch_validates_each_label_as_a_single_one() -> None:
    """The batch's quick checks (``validate_labels``) agree with ``validate_label`` on every
    kind of item, valid or not, including a labelled_at just inside and past the skew."""
    from datetime import UTC, datetime, timedelta

    from app.feedback import MAX_ID, MAX_SKEW_S, validate_label, validate_labels

    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    edge = now + timedelta(seconds=MAX_SKEW_S)
    items = [
        {"transaction_id": "t-0", "is_fraud": 1},
        {"transaction_id": "t-1", "is_fraud": False, "labelled_at": "2026-11-30T10:00:00"},
        {"transaction_id": "t-2", "is_fraud": True, "labelled_at": "2026-11-30T12:00:00+02:00"},
        {"transaction_id": "t-3", "is_fraud": 0, "labelled_at": edge.isoformat()},
        {
            "transaction_id": "t-4",
            "is_fraud": 0,
            "labelled_at": (edge + timedelta(1e-6)).isoformat(),
        },
        {"transaction_id": " ", "is_fraud": 1},
        {"transaction_id": "x" * (MAX_ID + 1), "is_fraud": 1},
        {"transaction_id": "t-5", "is_fraud": 1.0},
        {"transaction_id": "t-6", "is_fraud": 1, "labelled_at": 5},
        {"transaction_id": "t-7", "is_fraud": 1, "labelled_at": None},
        {"transaction_id": "t-8", "is_fraud": 1, "extra": 1},
        ["not", "a", "label"],
        {"transaction_id": "t-9", "is_fraud": 1, "labelled_at": "2026-11-30T10:00:00.5Z"},
        {"transaction_id": "t-a", "is_fraud": 1, "labelled_at": "2026-02-30T10:00:00"},
        {"transaction_id": "t-b", "is_fraud": 1, "labelled_at": "٢٠٢٦-11-30T10:00:00"},
    ]
    batch = validate_labels(items + items, now)  # a labelled_at seen twice: parsed once
    assert batch == [validate_label(item, now) for item in items + items]
    assert [bool(errors) for _, errors in batch[: len(items)]] == [
        *[False] * 4,
        *[True] * 5,
        False,
        True,
        True,
        False,
        True,
        True,
    ]
    assert batch[2][0]["labelled_at"] == "2026-11-30T10:00:00.000000+00:00"
    assert batch[12][0]["labelled_at"] == "2026-11-30T10:00:00.500000+00:00"


def test_malformed_json_wrong_type_and_oversized_batch(tmp_path: Path) -> None:
    app = make_app(tmp_path, MAX_BATCH=3)
    client = app.test_client()
    bad = client.post("/feedback", data=b"{", headers=AUTH | {"Content-Type": "application/json"})
    assert bad.status_code == 400
    text = client.post("/feedback", data=b"x", headers=AUTH | {"Content-Type": "text/plain"})
    assert text.status_code == 415
    big = {"labels": [{"transaction_id": "t", "is_fraud": 0}] * 4}
    assert send(app, big)[0] == 413


def test_last_label_wins_idempotent_and_unknown_ids_per_item(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    scored(app, 3)
    status, answer = send(app, {"transaction_id": "nope", "is_fraud": 1})
    assert (status, answer["error"]) == (404, "unknown_transaction")
    first = {"transaction_id": "t-0", "is_fraud": 1, "labelled_at": "2026-01-02T00:00:00Z"}
    status, answer = send(app, first)
    assert status == 200
    assert answer == {
        "transaction_id": "t-0",
        "status": "recorded",
        "is_fraud": True,
        "labelled_at": "2026-01-02T00:00:00.000000+00:00",
    }
    assert send(app, first)[1]["status"] == "unchanged"  # sent again: nothing changes
    older = dict(first, is_fraud=0, labelled_at="2026-01-01T00:00:00+00:00")
    status, answer = send(app, older)
    assert (answer["status"], answer["is_fraud"]) == ("superseded", True)
    batch = {
        "labels": [
            dict(first, is_fraud=0, labelled_at="2026-01-03T00:00:00"),  # later: wins
            {"transaction_id": "t-1", "is_fraud": False},
            {"transaction_id": "ghost", "is_fraud": 1},
            {"transaction_id": "t-2", "is_fraud": 7},
        ]
    }
    status, answer = send(app, batch)
    assert status == 200
    assert [r.get("status") for r in answer["results"]] == [
        "recorded",
        "recorded",
        "unknown",
        None,
    ]
    assert answer["results"][3] == {
        "index": 3,
        "errors": [{"field": "is_fraud", "message": "must be true, false, 0 or 1"}],
    }
    assert (answer["n_recorded"], answer["n_unknown"], answer["n_errors"]) == (2, 1, 1)
    # the label log holds the winners only; a new worker reading it agrees
    lines = [
        json.loads(line)
        for f in (tmp_path / "audit" / "labels").glob("*.jsonl")
        for line in f.read_text().splitlines()
    ]
    assert [(r["transaction_id"], r["is_fraud"]) for r in lines] == [
        ("t-0", 1),
        ("t-0", 0),
        ("t-1", 0),
    ]
    other = make_app(tmp_path)
    assert send(other, dict(first, is_fraud=0, labelled_at="2026-01-03"))[1]["status"] == (
        "unchanged"
    )


@pytest.mark.parametrize("max_ece", [0.0, 1.0])
def test_the_estimate_is_trusted_only_within_cbpe_max_ece(tmp_path: Path, max_ece: float) -> None:
    app = make_app(tmp_path, CBPE_MAX_ECE=max_ece)
    scored(app, 3)
    headers = {"Authorization": f"Bearer {MONITOR}"}
    estimate = app.test_client().get("/monitoring/performance", headers=headers).get_json()
    estimate = estimate["estimated"]
    ece = app.extensions["fraud"].manifest["test_metrics"]["expected_calibration_error"]
    assert 0 < ece < 0.1  # evaluate measured it on the tiny model's test split
    assert estimate["expected_calibration_error"] == ece
    assert estimate["trusted"] is (max_ece == 1.0)
    assert f"CBPE_MAX_ECE {max_ece}" in estimate["why"]
    assert ("within" in estimate["why"]) is estimate["trusted"]


def test_performance_endpoint_auth_and_values(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    client = app.test_client()
    assert client.get("/monitoring/performance").status_code == 401
    results = scored(app, 4)
    labels = [{"transaction_id": f"t-{i}", "is_fraud": int(i % 2)} for i in range(3)]
    assert send(app, {"labels": labels})[1]["n_recorded"] == 3
    headers = {"Authorization": f"Bearer {MONITOR}"}
    bad = client.get("/monitoring/performance?genuine_after_s=-1", headers=headers)
    assert bad.status_code == 400
    report = client.get("/monitoring/performance?genuine_after_s=none", headers=headers)
    assert report.status_code == 200
    realized = report.get_json()["realized"]
    assert (realized["predictions"], realized["labelled"], realized["positives"]) == (4, 3, 1)
    assert realized["label_coverage"] == 0.75
    threshold = app.extensions["fraud"].manifest["threshold"]
    flagged = [r["fraud_probability"] >= threshold for r in results[:3]]
    assert realized["tp"] == int(flagged[1])
    assert realized["fp"] == int(flagged[0]) + int(flagged[2])
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'fraud_model_performance{kind="realized",metric="label_coverage"} 0.75' in metrics
    assert 'fraud_feedback_labels_total{status="recorded"} 3.0' in metrics
    # make performance reads the same audit log: the same numbers, judged by conf bounds
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["performance"] |= {"min_labels": 2, "genuine_after_days": None}
    params["performance"]["min_metrics"] = {"recall": 1.0, "pr_auc": 0.0}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    out = tmp_path / "performance_report.json"
    argv = ["--log", str(tmp_path / "audit"), "--json-out", str(out)]
    argv += ["--md-out", str(tmp_path / "performance_report.md")]
    code = performance_stage.main([*argv, "--params", str(tmp_path / "params.yaml")])
    written = json.loads(out.read_text())
    assert {k: v for k, v in written["realized"].items()} == realized
    assert code == (1 if realized["recall"] < 1.0 else 0)
    assert written["verdict"] == ("below" if code else "ok")
    assert "| recall |" in (tmp_path / "performance_report.md").read_text()


@pytest.mark.slow
def test_end_to_end_traffic_labels_performance_export_retrain(
    tiny_model: TinyModel, tmp_path: Path
) -> None:
    """A real gunicorn (2 workers, SQLite store) scores the tiny data set in time order; labels
    for two thirds of it arrive by /feedback; /monitoring/performance equals the metrics
    computed here; the export of the audit log retrains through `dvc repro` and its gate in a
    temporary git repo."""
    paths = load_paths(tiny_model.params)
    store_url = f"sqlite:///{tmp_path}/features.db"
    splits = (paths.processed.train, paths.processed.valid, paths.processed.test)
    traffic = pd.concat([pd.read_parquet(p) for p in splits]).sort_values("timestamp")
    traffic = traffic.reset_index(drop=True)
    recent = set(pd.read_parquet(paths.processed.test)["transaction_id"])
    bodies = raw_transactions(traffic)
    audit = tmp_path / "audit"
    env = {
        "FEATURE_STORE_URL": store_url,
        "FEEDBACK_TOKEN": TOKEN,
        "MONITORING_TOKEN": MONITOR,
        "PREDICTION_LOG_DIR": str(audit),
        "PREDICTION_LOG_FLUSH_SECONDS": "0",
    }
    server = Server(tmp_path, env)
    try:
        server.wait_ready()
        scores: dict[str, float] = {}
        for start in range(0, len(bodies), 500):
            status, body = post(
                server, "/predict/batch", {"transactions": bodies[start : start + 500]}
            )
            assert status == 200, body
            assert body["n_errors"] == 0, body
            scores |= {r["transaction_id"]: r["fraud_probability"] for r in body["results"]}
        labelled = traffic.iloc[[i for i in range(len(traffic)) if i % 3]]
        labels = [
            {"transaction_id": t, "is_fraud": int(y), "labelled_at": "2026-01-01T00:00:00"}
            for t, y in zip(labelled["transaction_id"], labelled["is_fraud"], strict=True)
        ]
        for start in range(0, len(labels), 1000):
            status, body = post(
                server, "/feedback", {"labels": labels[start : start + 1000]}, TOKEN
            )
            assert status == 200, body
            assert body["n_recorded"] == len(labels[start : start + 1000]), body
        status, body = post(server, "/feedback", {"labels": labels[:200]}, TOKEN)
        assert body["n_unchanged"] == 200  # any worker knows what the other recorded
        status, report = get(server, "/monitoring/performance?genuine_after_s=none", MONITOR)
        assert status == 200, report
    finally:
        server.stop()
    # the labels reached the store's events of the risk entities (merchant, device)
    from fraud.store import open_backend
    from fraud.store.layout import EVENT, EVENT_PARTS, event_id

    stored = {}
    for key, part, data in open_backend(store_url).scan():
        if part in EVENT_PARTS and key.startswith("merchant:"):
            events = np.frombuffer(data, EVENT)
            stored |= dict(zip(events["id"].tolist(), events["label"].tolist(), strict=True))
    sent = dict(zip(labelled["transaction_id"], labelled["is_fraud"], strict=True))
    for t in recent:  # the newest events (older ones leave the store with their windows)
        assert stored[event_id(t)] == sent.get(t, -1), t
    realized = report["realized"]
    y = labelled["is_fraud"].to_numpy(dtype=np.int64)
    s = np.array([scores[t] for t in labelled["transaction_id"]])
    threshold = realized["threshold"]
    flagged = s >= threshold
    from sklearn.metrics import average_precision_score

    assert realized["predictions"] == len(traffic)
    assert realized["labelled"] == len(labelled)
    assert realized["label_coverage"] == round(len(labelled) / len(traffic), 6)
    assert realized["precision"] == round((flagged & (y == 1)).sum() / flagged.sum(), 6)
    assert realized["recall"] == round((flagged & (y == 1)).sum() / y.sum(), 6)
    assert realized["pr_auc"] == pytest.approx(average_precision_score(y, s), abs=2e-6)
    days = labelled["timestamp"].dt.strftime("%Y-%m-%d").to_numpy()
    cp, _ = card_precision_at_k(labelled["user_id"].to_numpy(), days, y, s, 100)
    assert realized["card_precision_at_100"] == cp
    estimate = report["estimated"]
    all_scores = np.array([scores[t] for t in traffic["transaction_id"]])
    high = all_scores >= threshold
    assert estimate["precision"] == round(all_scores[high].mean(), 6)
    assert estimate["recall"] == round(all_scores[high].sum() / all_scores.sum(), 6)
    retrain_on_the_export(tmp_path / "repo", audit, labelled, len(traffic))


def retrain_on_the_export(repo: Path, audit: Path, labelled: pd.DataFrame, n: int) -> None:
    """make export-production, then make retrain's compose + dvc repro on the export."""
    copy_repo(repo)
    out = run(["python", "-m", "stages.export", "--log", str(audit)], repo).stdout
    # everything was scored seconds ago: no unlabelled row is older than the 7-day delay
    assert f"export: {len(labelled):,} of {n:,} transactions" in out
    exported = pd.read_parquet(repo / "data/external/production.parquet")
    assert dict(zip(exported["transaction_id"], exported["is_fraud"], strict=True)) == dict(
        zip(labelled["transaction_id"], labelled["is_fraud"], strict=True)
    )
    overrides = [
        "env=development",
        "data.source=parquet",
        "data.path=data/external/production.parquet",
        "model.n_estimators=40",
        "gate.min_metrics.roc_auc=0.5",
        "gate.min_metrics.pr_auc=0.01",
        "gate.min_metrics.recall_at_1pct_fpr=0.0",
    ]
    run(["python", "-m", "stages.compose", *overrides], repo)
    proc = run(["dvc", "repro"], repo)
    assert f"generate: {len(labelled):,} transactions (parquet)" in proc.stdout
    assert "gate: passed" in proc.stdout
    manifest = json.loads((repo / "models/manifest.json").read_text())
    assert manifest["gate"]["passed"] is True
    assert manifest["test_metrics"]["expected_calibration_error"] >= 0
    raw = pd.read_parquet(repo / "data/raw/transactions.parquet")
    assert int(raw["is_fraud"].sum()) == int(labelled["is_fraud"].sum())


def post(server: Server, path: str, body: Any, token: str | None = None) -> tuple[int, Any]:
    return request(server.url + path, body, timeout=60, token=token)


def get(server: Server, path: str, token: str | None = None) -> tuple[int, Any]:
    return request(server.url + path, timeout=60, token=token)
