"""Operator commands around the pipeline: baseline, report, and the Makefile's help."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from stages import baseline, report
from tests.conftest import REPO
from tests.tiny_model import TinyModel


@pytest.fixture
def served(tmp_path: Path, tiny_model: TinyModel) -> Path:
    """A promoted (production) model, its manifest and gate report, in a scratch directory."""
    shutil.copytree(tiny_model.model_dir, tmp_path / "models")
    (tmp_path / "reports").mkdir()
    shutil.copy(tiny_model.gate_report, tmp_path / "reports/gate.json")
    return tmp_path


def test_baseline_records_the_served_production_metrics(served: Path) -> None:
    out = served / "baseline.json"
    assert baseline.main(["--model-dir", str(served / "models"), "--out", str(out)]) == 0
    manifest = json.loads((served / "models/manifest.json").read_text())
    written = json.loads(out.read_text())
    assert written["metrics"] == manifest["test_metrics"]
    assert written["sha256"] == manifest["sha256"]


def test_baseline_refuses_a_model_of_another_environment(
    served: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = served / "models/manifest.json"
    path.write_text(json.dumps(dict(json.loads(path.read_text()), env="staging")))
    out = served / "baseline.json"
    assert baseline.main(["--model-dir", str(served / "models"), "--out", str(out)]) == 2
    assert not out.exists()
    assert "env 'staging'" in capsys.readouterr().err


def report_args(root: Path) -> list[str]:
    return [
        "--gate-report", str(root / "reports/gate.json"),
        "--model-dir", str(root / "models"),
    ]  # fmt: skip


def test_report_passes_for_the_committed_model(
    served: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert report.main(report_args(served)) == 0
    out = capsys.readouterr().out
    assert "env production" in out
    assert "gate:  ok   roc_auc minimum" in out


def test_report_fails_on_a_failed_gate_or_a_tampered_model(
    served: Path, tiny_model: TinyModel
) -> None:
    gate_path = served / "reports/gate.json"
    gate_path.write_text(json.dumps(dict(json.loads(gate_path.read_text()), passed=False)))
    assert report.main(report_args(served)) == 1
    shutil.copy(tiny_model.gate_report, gate_path)
    (artifact,) = (served / "models").glob("fraud_model-*.zip")
    with open(artifact, "ab") as fh:
        fh.write(b"\0")
    assert report.main(report_args(served)) == 1


def test_make_lists_its_targets_by_default() -> None:
    out = subprocess.run(
        ["make", "--no-print-directory"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    for target in ("retrain", "params", "test", "repro", "bench-pipeline", "baseline"):
        assert f"  {target} " in out


def test_csv_schema_errors_name_the_users_file(tmp_path: Path) -> None:
    from fraud.data.synthetic.config import DataConfig
    from fraud.data.validate import SchemaError
    from stages.generate import ingest

    external = tmp_path / "external"
    external.mkdir()
    bad = external / "bad.csv"
    bad.write_text(
        "transaction_id,user_id,timestamp,amount,merchant_category,transaction_type,"
        "device_id,device_type,location,is_fraud\n"
        "t1,u1,2026-01-01T10:00:00Z,-5,grocery,purchase,d1,pos,Boston,0\n"
        "t2,u1,not-a-time,12.5,grocery,purchase,d1,pos,Boston,maybe\n"
    )
    with pytest.raises(SchemaError) as info:
        ingest(DataConfig(source="csv", path=str(bad)), external)
    assert info.value.errors == [
        f"{bad}: column 'amount': 1 row not positive",
        f"{bad}: column 'timestamp': 1 row not a parseable time",
        f"{bad}: column 'is_fraud': 1 row not one of 0/1/true/false (e.g. 'maybe')",
    ]
