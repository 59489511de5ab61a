"""make export-production: the audit log joined with feedback labels as a training set the
own-data path ingests, under the stated rule for unlabelled rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from fraud.data.external import read_external
from fraud.data.validate import validate_transactions
from stages import export as export_stage
from tests.conftest import REPO

DAY = 86_400.0
NEWEST = 100 * DAY


def tx(txn: str, logged_at: float, **extra: object) -> dict:
    """An audit line as the service writes it (raw fields, score, decision, model)."""
    return {
        "prediction_id": f"p-{txn}-{logged_at}",
        "transaction_id": txn,
        "user_id": "u1",
        "merchant_id": "m1",
        "device_id": "d1",
        "timestamp": "2026-03-01T10:00:00+00:00",
        "amount": 12.5,
        "merchant_category": "grocery",
        "hour_of_day": 10,
        "user_avg_amount": 3.0,
        "fraud_probability": 0.2,
        "decision": "legit",
        "history_source": "store",
        "logged_at": logged_at,
        "model_sha256": "a" * 64,
        "threshold": 0.5,
    } | extra


def write_lines(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + '{"partial": ')


def label(txn: str, y: int, at: str) -> dict:
    return {"transaction_id": txn, "is_fraud": y, "labelled_at": at, "logged_at": 1.0}


@pytest.fixture
def audit(tmp_path: Path) -> Path:
    directory = tmp_path / "audit"
    old = NEWEST - 8 * DAY  # older than the 7-day rule
    write_lines(
        directory / "00000000000000000001-1.jsonl",
        [
            tx("t-fraud", old),
            tx("t-twice", old, amount=5.0),
            tx("t-old-unlabelled", old, amount=7.0),
            tx("t-incomplete", old, user_id=None),
        ],
    )
    write_lines(
        directory / "00000000000000000002-2.jsonl",
        [
            tx("t-twice", NEWEST - DAY, amount=6.0),  # the latest prediction counts
            tx("t-recent-unlabelled", NEWEST - DAY),
            tx("t-new-device", NEWEST, device_id=None),
        ],
    )
    write_lines(
        directory / "labels" / "00000000000000000003-1.jsonl",
        [
            label("t-fraud", 0, "2026-03-02T00:00:00.000000+00:00"),
            label("t-fraud", 1, "2026-03-05T00:00:00.000000+00:00"),  # the last label wins
            label("t-twice", 0, "2026-03-02T00:00:00.000000+00:00"),
            label("t-incomplete", 1, "2026-03-02T00:00:00.000000+00:00"),
            label("t-new-device", 0, "2026-03-02T00:00:00.000000+00:00"),
            label("t-never-scored", 1, "2026-03-02T00:00:00.000000+00:00"),
        ],
    )
    return directory


def params(tmp_path: Path, genuine_after_days: float | None) -> Path:
    data = yaml.safe_load((REPO / "params.yaml").read_text())
    data["performance"]["genuine_after_days"] = genuine_after_days
    data["paths"]["external"] = str(tmp_path / "external")
    data["paths"]["drift_reports"] = str(tmp_path / "reports")
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_export_joins_labels_under_the_delay_rule(
    audit: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--log", str(audit), "--params", str(params(tmp_path, 7))]
    assert export_stage.main(argv) == 0
    out = tmp_path / "external" / "production.parquet"
    frame, ignored = read_external(out, "parquet", {})
    assert ignored == []
    clean = validate_transactions(frame, source=str(out))  # what data.source=parquet does
    values = zip(clean["amount"], clean["is_fraud"], strict=True)
    rows = dict(zip(clean["transaction_id"], values, strict=True))
    assert rows == {
        "t-fraud": (12.5, 1),
        "t-twice": (6.0, 0),
        "t-old-unlabelled": (7.0, 0),
        "t-new-device": (12.5, 0),
    }
    # a column some row lacks is left out rather than half empty; extras are never written
    assert list(frame.columns) == [
        "transaction_id",
        "user_id",
        "merchant_id",
        "timestamp",
        "amount",
        "merchant_category",
        "is_fraud",
    ]
    summary = json.loads((tmp_path / "reports" / "production_export.json").read_text())
    assert {k: summary[k] for k in summary if k not in ("rule", "source", "out")} == {
        "genuine_after_s": 7 * DAY,
        "transactions": 6,
        "rows": 4,
        "frauds": 1,
        "labelled_by_feedback": 3,
        "assumed_genuine": 1,
        "left_out_unlabelled": 1,
        "left_out_incomplete": 1,
        "columns": list(frame.columns),
        "columns_left_out": ["transaction_type", "device_id", "device_type", "location"],
    }
    assert "604800 s before the newest prediction: genuine" in summary["rule"]
    printed = capsys.readouterr().out
    assert "export: 4 of 6 transactions" in printed
    assert "export: rule: " in printed


def test_without_the_rule_only_labelled_rows(audit: Path, tmp_path: Path) -> None:
    argv = ["--log", str(audit), "--params", str(params(tmp_path, None))]
    assert export_stage.main(argv) == 0
    frame, _ = read_external(tmp_path / "external" / "production.parquet", "parquet", {})
    assert sorted(frame["transaction_id"]) == ["t-fraud", "t-new-device", "t-twice"]


def test_no_log_or_no_rows_is_an_error_naming_it(tmp_path: Path) -> None:
    path = params(tmp_path, 7)
    with pytest.raises(FileNotFoundError, match="audit log directory not found"):
        export_stage.main(["--log", str(tmp_path / "nope"), "--params", str(path)])
    write_lines(tmp_path / "recent" / "1-1.jsonl", [tx("t-1", NEWEST)])
    with pytest.raises(ValueError, match="no transaction to train on"):
        export_stage.main(["--log", str(tmp_path / "recent"), "--params", str(path)])
    assert not (tmp_path / "external" / "production.parquet").exists()
