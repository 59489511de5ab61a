"""The app's prediction log and GET /monitoring/drift, on a small Flask app of the test's own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from flask import Flask

from app.audit import PredictionLog
from app.monitoring import init_monitoring, log_predictions
from app.settings import resolve
from fraud.config import load_params
from fraud.data.synthetic.config import DataConfig
from fraud.data.synthetic.generate import generate_transactions
from fraud.files import dump_json, sha256_file
from fraud.monitoring.auditlog import read_window
from fraud.monitoring.config import SCORE, ProfileConfig
from fraud.monitoring.profile import build_profile
from tests.conftest import REPO

TOKEN = "s3cret-token"
FIELDS = ["amount", "merchant_category", "transaction_type", "location", "device_type"]
FIELDS += ["day_of_week", "hour_of_day"]
SHA = "a" * 64


@pytest.fixture(scope="module")
def transactions() -> list[dict[str, Any]]:
    frame = generate_transactions(DataConfig(n_transactions=12_000, n_users=600, days=30), 5)
    rows = frame[[*FIELDS, "user_id"]].to_dict("records")
    rng = np.random.default_rng(0)
    return [
        dict(r, fraud_probability=float(s))
        for r, s in zip(rows, rng.beta(0.5, 20, 12_000), strict=True)
    ]


@pytest.fixture(scope="module")
def profile_path(
    tmp_path_factory: pytest.TempPathFactory, transactions: list[dict[str, Any]]
) -> Path:
    columns = {name: [t[name] for t in transactions] for name in FIELDS}
    scores = [t[SCORE] for t in transactions]
    profile = build_profile(columns, scores, ProfileConfig(), {"sha256": SHA})
    path = tmp_path_factory.mktemp("profile") / "reference_profile.json"
    path.write_bytes(dump_json(profile))
    return path


def make_app(tmp_path: Path, profile_path: Path, **config: Any) -> Flask:
    """The monitoring blueprint alone, with a manifest naming ``profile_path``."""
    app = Flask(__name__)
    settings = {
        "PREDICTION_LOG_DIR": str(tmp_path / "log"),
        "PREDICTION_LOG_FLUSH_SECONDS": 0.0,
        "MONITORING_TOKEN": TOKEN,
    }
    app.config.update(resolve({**settings, **config}))
    manifest = {
        "sha256": SHA,
        "drift": load_params(["drift"], REPO / "params.yaml")["drift"],
        "profile": profile_path.name,
        "profile_sha256": sha256_file(profile_path) if profile_path.exists() else None,
    }
    manifest["threshold"] = 0.5
    app.extensions["fraud"] = SimpleNamespace(manifest=manifest)
    init_monitoring(app, profile_path.parent / "manifest.json", manifest)
    return app


def get_drift(app: Flask, token: str | None = TOKEN) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return app.test_client().get("/monitoring/drift", headers=headers)


@pytest.fixture(autouse=True)
def no_monitoring_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MONITORING_TOKEN", "PREDICTION_LOG_DIR", "MONITORING_WINDOW"):
        monkeypatch.delenv(name, raising=False)


# --------------------------------------------------------------------------- auth


def test_without_a_token_the_endpoint_is_404_and_nothing_is_logged(
    tmp_path: Path, profile_path: Path, transactions: list[dict[str, Any]]
) -> None:
    app = make_app(tmp_path, profile_path, MONITORING_TOKEN=None, PREDICTION_LOG_DIR=None)
    response = get_drift(app)
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"
    log_predictions(app, transactions[:10])
    assert not (tmp_path / "log").exists()


@pytest.mark.parametrize(
    "header", [None, "Bearer wrong", "Bearer", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "bearer"]
)
def test_a_missing_or_wrong_token_is_401(
    tmp_path: Path, profile_path: Path, header: str | None
) -> None:
    app = make_app(tmp_path, profile_path)
    headers = {"Authorization": header} if header is not None else {}
    response = app.test_client().get("/monitoring/drift", headers=headers)
    assert response.status_code == 401
    assert response.get_json() == {
        "error": "unauthorized",
        "message": "a valid bearer token is required",
    }
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


# --------------------------------------------------------------------------- reports


def test_the_report_covers_the_logged_window(
    tmp_path: Path, profile_path: Path, transactions: list[dict[str, Any]]
) -> None:
    app = make_app(tmp_path, profile_path, MONITORING_WINDOW=5_000)
    response = get_drift(app)
    assert response.status_code == 200
    assert response.get_json()["verdict"] == "insufficient_data"  # nothing logged yet

    for start in range(0, 8_000, 500):  # batches, like /predict/batch
        log_predictions(app, transactions[start : start + 500])
    report = get_drift(app).get_json()
    assert report["rows"]["current"] == 5_000
    assert report["verdict"] == "none", report["reasons"]
    assert report["score"]["available"] is True
    assert report["score"]["verdict"] == "none"

    shifted = [dict(t, amount=t["amount"] * 4, fraud_probability=0.9) for t in transactions]
    log_predictions(app, shifted[:3_000])
    report = get_drift(app).get_json()
    assert report["verdict"] == "drift"
    assert "amount" in report["drifted_features"]
    assert report["score"]["drifted"] is True


def test_log_lines_hold_the_logged_fields_and_the_model_only(
    tmp_path: Path, profile_path: Path, transactions: list[dict[str, Any]]
) -> None:
    app = make_app(tmp_path, profile_path)
    record = dict(transactions[0], api_key="never-log-me")
    log_predictions(app, [record])
    (file,) = (tmp_path / "log").glob("*.jsonl")
    line = json.loads(file.read_text())
    # no validator here: the monitored fields, the score, the time and the served model
    assert set(line) == {*FIELDS, SCORE, "logged_at", "model_version", "model_sha256", "threshold"}
    assert line["model_sha256"] == SHA
    assert line["model_version"] == SHA[:12]
    assert line["amount"] == record["amount"]
    assert abs(line["logged_at"] - time.time()) < 60


def test_a_profile_of_another_model_is_409(tmp_path: Path, profile_path: Path) -> None:
    app = make_app(tmp_path, profile_path)
    app.extensions["fraud"] = SimpleNamespace(manifest={"sha256": "b" * 64})
    response = get_drift(app)
    assert response.status_code == 409
    assert "built for model 'aaaa" in response.get_json()["message"]


def test_a_missing_profile_is_503(tmp_path: Path, profile_path: Path) -> None:
    app = make_app(tmp_path, tmp_path / "none.json")
    response = get_drift(app)
    assert response.status_code == 503
    assert "reference profile not found" in response.get_json()["message"]


# --------------------------------------------------------------------------- the log itself


WRITER = """
import sys
from app.audit import PredictionLog
log = PredictionLog(sys.argv[1], ["amount"], 1 << 20, 100, 3600.0)
log.write([{"amount": 2.0, "fraud_probability": 0.5}] * 600)
log.close()
"""


def test_the_window_is_the_most_recent_records_across_processes(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    mine = PredictionLog(directory, ["amount"], 1 << 20, 100, 0.0)
    mine.write([{"amount": 1.0, SCORE: 0.1}] * 600)
    time.sleep(0.05)
    subprocess.run([sys.executable, "-c", WRITER, str(directory)], cwd=REPO, check=True)
    files = sorted(directory.glob("*.jsonl"))
    assert len(files) == 2  # one file per process
    window = read_window(directory, 1_000)
    amounts = [r["amount"] for r in window]
    assert len(window) == 1_000
    assert amounts.count(2.0) == 600  # every record of the newer process
    assert amounts[:400] == [1.0] * 400  # and the newest 400 of the older one
    assert amounts[-1] == 2.0


def test_rotation_bounds_the_directory(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, ["amount"], max_bytes=2_000, max_files=3, flush_seconds=0.0)
    for i in range(300):
        log.write([{"amount": float(i), SCORE: 0.5}])
    log.close()
    files = list(tmp_path.glob("*.jsonl"))
    assert len(files) == 3
    assert all(f.stat().st_size < 2_000 + 100 for f in files)
    window = read_window(tmp_path, 10_000)
    assert window[-1]["amount"] == 299.0  # the newest records survive
    assert [r["amount"] for r in window] == sorted(r["amount"] for r in window)


def test_io_errors_never_break_scoring(
    tmp_path: Path, profile_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    app = make_app(tmp_path, profile_path, PREDICTION_LOG_DIR=str(blocker / "log"))
    log_predictions(app, [{"amount": 1.0, SCORE: 0.5}])  # cannot create the directory
    log_predictions(app, [{"amount": object(), SCORE: 0.5}])  # cannot encode the record
    log_predictions(app, [{"amount": 1.0}])  # no score
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "prediction log: " in messages
    assert "bytes dropped" in messages


def test_make_drift_reads_the_apps_log_directory(
    tmp_path: Path, profile_path: Path, transactions: list[dict[str, Any]]
) -> None:
    """`python -m stages.drift --current <log dir>`: the same log the endpoint reads."""
    app = make_app(tmp_path, profile_path)
    shifted = [dict(t, hour_of_day=(t["hour_of_day"] + 12) % 24) for t in transactions]
    log_predictions(app, shifted[:4_000])
    out = tmp_path / "report.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "stages.drift",
            "--current",
            str(tmp_path / "log"),
            "--reference",
            str(profile_path),
            "--json-out",
            str(out),
            "--md-out",
            str(tmp_path / "report.md"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    report = json.loads(out.read_text())
    assert report["rows"]["current"] == 4_000
    assert report["features"]["hour_of_day"]["severity"] == "major"
    assert report["score"]["available"] is True


def test_the_default_log_directory_is_private_to_this_user(
    tmp_path: Path, profile_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path))
    app = make_app(tmp_path, profile_path, PREDICTION_LOG_DIR=None)
    directory = tmp_path / f"fraud-predictions-{os.getuid()}"
    assert app.extensions["monitoring"].settings["PREDICTION_LOG_DIR"] == directory
    assert directory.stat().st_mode & 0o777 == 0o700
    directory.chmod(0o777)  # as a shared /tmp directory another account made would be
    with pytest.raises(RuntimeError, match=r"not a private directory .* mode 0o777"):
        make_app(tmp_path, profile_path, PREDICTION_LOG_DIR=None)
