"""A user's own transactions file: columns mapped, extras ignored, every error in one message."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from fraud.data.external import read_external
from fraud.data.synthetic.config import DataConfig
from fraud.data.synthetic.generate import generate_transactions
from fraud.data.validate import SchemaError, validate_transactions
from stages.generate import ingest
from tests.tiny_model import build

#: How a bank's export might name our columns.
FOREIGN = {
    "transaction_id": "TX_ID",
    "user_id": "CUSTOMER_ID",
    "timestamp": "TX_DATETIME",
    "amount": "TX_AMOUNT",
    "is_fraud": "TX_FRAUD",
}
#: Columns exports often carry that the pipeline computes itself or does not use.
EXTRA = ["hour_of_day", "day_of_week", "user_avg_amount", "user_transaction_count", "BRANCH"]


def export(rows: int = 8000) -> pd.DataFrame:
    """Synthetic transactions as a foreign export: other names, extra columns."""
    df = generate_transactions(DataConfig(n_transactions=rows, n_users=400, days=40), seed=3)
    df = df.drop(columns=["fraud_pattern"]).rename(columns=FOREIGN)
    df["user_avg_amount"] = 1.0
    df["user_transaction_count"] = 2
    df["BRANCH"] = "north"
    return df


def mapping_overrides() -> list[str]:
    return [f"data.columns.{ours}={theirs}" for ours, theirs in FOREIGN.items()]


def test_mapped_columns_and_extras(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    export(500).to_csv(path, index=False)
    frame, ignored = read_external(path, "csv", FOREIGN)
    assert ignored == EXTRA
    assert "user_id" in frame
    assert "CUSTOMER_ID" not in frame
    clean = validate_transactions(frame)
    assert len(clean) == 500


def test_parquet_is_read_as_stored(tmp_path: Path) -> None:
    path = tmp_path / "tx.parquet"
    export(300).to_parquet(path)
    frame, _ = read_external(path, "parquet", FOREIGN)
    assert len(validate_transactions(frame)) == 300
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    with pytest.raises(ValueError, match="cannot read parquet file"):
        read_external(bad, "parquet", {})


def test_a_mapped_name_missing_from_the_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    export(50).to_csv(path, index=False)
    with pytest.raises(SchemaError) as info:
        read_external(path, "csv", {**FOREIGN, "user_id": "CARD_NO", "amount": "AMT"})
    assert info.value.errors == [
        f"{path}: data.columns.user_id: no column 'CARD_NO' in the file",
        f"{path}: data.columns.amount: no column 'AMT' in the file",
    ]


def test_a_mapping_onto_a_name_the_file_has_too_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    frame = export(50)
    frame["amount"] = 1.0
    frame.to_csv(path, index=False)
    with pytest.raises(SchemaError) as info:
        read_external(path, "csv", FOREIGN)
    assert info.value.errors == [
        f"{path}: data.columns.amount: the file has a column 'amount' besides 'TX_AMOUNT'"
    ]


def test_missing_columns_and_bad_values_are_reported_together(tmp_path: Path) -> None:
    external = tmp_path / "external"
    external.mkdir()
    bad = external / "bad.csv"
    bad.write_text(
        "transaction_id,timestamp,amount,merchant_category,is_fraud\n"
        "t1,2026-01-01T10:00:00Z,-5,grocery,0\n"
        "t2,not-a-time,12.5,grocery,maybe\n"
    )
    with pytest.raises(SchemaError) as info:
        ingest(DataConfig(source="csv", path=str(bad)), external)
    assert info.value.errors == [
        f"{bad}: missing column 'user_id'",
        f"{bad}: column 'amount': 1 row not positive",
        f"{bad}: column 'timestamp': 1 row not a parseable time",
        f"{bad}: column 'is_fraud': 1 row not one of 0/1/true/false (e.g. 'maybe')",
    ]


def test_a_foreign_export_runs_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The export that used to crash featurize (its history-named extra columns) trains."""
    external = tmp_path / "data" / "external"
    external.mkdir(parents=True)
    export().to_csv(external / "tx.csv", index=False)
    model = build(
        tmp_path, ("data.source=csv", f"data.path={external / 'tx.csv'}", *mapping_overrides())
    )
    out = capsys.readouterr().out
    assert f"ignored {len(EXTRA)} unused column(s): {', '.join(EXTRA)}" in out
    manifest = json.loads(model.manifest.read_text())
    assert manifest["gate"]["passed"] is True
    assert set(manifest["test_metrics"]) >= {"roc_auc", "pr_auc", "card_precision_at_100"}


def test_ids_time_amount_and_label_are_enough_end_to_end(tmp_path: Path) -> None:
    """The shape of most card data (and of public benchmark sets), with a date split: it
    trains, writes the fraud-team metrics, and the service asks for exactly its fields."""
    from app import create_app
    from app.schemas import required_fields

    external = tmp_path / "data" / "external"
    external.mkdir(parents=True)
    df = generate_transactions(DataConfig(n_transactions=8000, n_users=400, days=40), seed=5)
    minimal = ["transaction_id", "user_id", "merchant_id", "timestamp", "amount", "is_fraud"]
    df[minimal].to_csv(external / "tx.csv", index=False)
    model = build(
        tmp_path,
        (
            "data.source=csv",
            f"data.path={external / 'tx.csv'}",
            "split=dates",
            "split.test_start=2026-02-03",
            "split.test_end=2026-02-10",
            "split.label_delay_days=7",
        ),
    )
    metrics = json.loads((tmp_path / "reports/metrics.json").read_text())
    assert {"roc_auc", "pr_auc", "card_precision_at_100"} <= set(metrics)
    app = create_app(model.app_config())
    fields = app.extensions["fraud"].validate.fields
    assert not {"merchant_category", "transaction_type", "location", "device_type"} & set(fields)
    assert required_fields(fields) == ["amount"]  # plus hour/day, or a timestamp
    names = json.loads(model.manifest.read_text())["features"]
    assert {"merchant_fraud_risk_7d", "merchant_txn_count_1d"} <= set(names)  # an entity
    assert not [n for n in names if n.startswith(("device_", "is_new_"))]
    assert {"merchant_labelled_count_7d", "merchant_fraud_count_7d"} <= set(fields)
    client = app.test_client()
    sample = client.get("/sample-transaction").get_json()
    assert "merchant_category" not in sample
    raw = {"amount": 42.0, "timestamp": "2026-02-05T03:00:00Z", "user_id": "u1"}
    response = client.post("/predict", json=raw)
    assert response.status_code == 422  # the store computes the history: it needs the ids
    assert [e["field"] for e in response.get_json()["details"]] == [
        "transaction_id",
        "merchant_id",
    ]
    response = client.post("/predict", json=raw | {"transaction_id": "t1", "merchant_id": "m1"})
    assert response.status_code == 200, response.get_json()
    assert 0.0 <= response.get_json()["fraud_probability"] <= 1.0
    assert response.get_json()["history_source"] == "store"
