"""`make score`: a file of transactions scored offline like the pipeline and the service score.

Parity: the rows of the tiny model's test split, scored within the file of all its splits, get
exactly evaluate's probabilities, and exactly the service's answers (probability, decision,
risk level, reasons) when it is sent the same history. Then the file's order, its formats, the
unlabelled case, bad input (nothing written), atomic output, the progress bar and the target.
"""

from __future__ import annotations

import io
import math
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.csv as pcsv
import pytest
import yaml

from fraud.data import schema
from fraud.data.split import PARTS
from fraud.features.history import history_arrays
from fraud.features.transform import transform
from fraud.offline.score import load_scorer, output_columns, reason_columns
from fraud.runtime.artifact import ArtifactError
from fraud.runtime.scoring import RISK_LEVELS, Scorer
from stages import score
from tests.conftest import REPO
from tests.tiny_model import TinyModel

RAW = [c for c in schema.CORE_COLUMNS if c != schema.LABEL] + [schema.LABEL]


@pytest.fixture(scope="module")
def paths(tiny_model: TinyModel) -> dict[str, Any]:
    return yaml.safe_load(tiny_model.params.read_text())["paths"]


@pytest.fixture(scope="module")
def transactions(paths: dict[str, Any]) -> pd.DataFrame:
    """Every transaction the tiny pipeline saw, its parts in PARTS order (test rows last)."""
    parts = [pd.read_parquet(paths["processed"][name]) for name in PARTS]
    return pd.concat(parts, ignore_index=True)[RAW]


@pytest.fixture(scope="module")
def scorer(tiny_model: TinyModel) -> Scorer:
    return load_scorer(tiny_model.manifest)


def run_score(tiny_model: TinyModel, source: Path, out: Path) -> int:
    """``stages.score`` on the tiny model."""
    return score.main(
        [
            "--input", str(source), "--output", str(out), "--model-dir", str(tiny_model.model_dir),
            "--params", str(tiny_model.params),
        ]
    )  # fmt: skip


def read(path: Path) -> pd.DataFrame:
    """A scored file as pandas reads it (csv text parsed: the ids stay text)."""
    if path.suffix == ".csv":
        return pd.read_csv(path, dtype={"transaction_id": str})
    return pd.read_parquet(path)


@pytest.fixture(scope="module")
def scored(
    tiny_model: TinyModel, transactions: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory
) -> pd.DataFrame:
    """The whole file scored, written as CSV and read back."""
    root = tmp_path_factory.mktemp("score")
    transactions.to_csv(root / "tx.csv", index=False)
    assert run_score(tiny_model, root / "tx.csv", root / "scored.csv") == 0
    return read(root / "scored.csv")


def test_scores_are_evaluates(
    scored: pd.DataFrame, paths: dict[str, Any], scorer: Scorer, transactions: pd.DataFrame
) -> None:
    """The test split's rows get the probabilities the pipeline's evaluate computes from its
    features (history over every split, the labels behind the label delay), bit for bit."""
    features = pd.read_parquet(paths["features"]["test"])
    x = features[scorer.feature_names].to_numpy(dtype=np.float64)
    expected = scorer.artifact.model.predict_proba(x)
    test = scored.iloc[len(transactions) - len(features) :]
    np.testing.assert_array_equal(test[schema.LABEL], features[schema.LABEL])
    np.testing.assert_array_equal(test["fraud_probability"].to_numpy(), expected)
    flagged = expected >= scorer.threshold
    assert flagged.any(), "the tiny test split should hold flagged transactions"
    assert (test["decision"] == np.where(flagged, "fraud", "legit")).all()
    assert list(scored.columns) == [*RAW, *output_columns(scorer.top_k)]
    assert scored["transaction_id"].tolist() == transactions["transaction_id"].tolist()


def test_answers_are_the_services_given_the_same_history(
    tiny_model: TinyModel, scored: pd.DataFrame, scorer: Scorer, transactions: pd.DataFrame
) -> None:
    """/predict/batch, sent each row with the history the file gives it, answers what the file
    says: probability, decision, risk level and every reason (feature, value, contribution)."""
    from app import create_app

    state = scorer.artifact.feature_state
    frame = transactions.copy()
    history = history_arrays(frame, state.config)
    rows = np.flatnonzero(scored["decision"].to_numpy() == "fraud")[:60]
    rows = np.concatenate([rows, np.arange(len(frame) - 140, len(frame))])
    records = []
    for i in rows.tolist():
        record = {name: frame[name].iloc[i] for name in RAW if name != schema.LABEL}
        record["timestamp"] = record["timestamp"].isoformat()
        record["amount"] = float(record["amount"])
        for name, values in history.items():
            value = values[i].item()
            if not (isinstance(value, float) and math.isnan(value)):
                record[name] = value
        records.append(record)
    client = create_app(tiny_model.app_config(FEATURE_STORE_URL="none")).test_client()
    response = client.post("/predict/batch", json={"transactions": records})
    assert response.status_code == 200, response.get_json()
    answers = response.get_json()["results"]
    assert len(answers) == len(rows)
    for i, answer in zip(rows.tolist(), answers, strict=True):
        row = scored.iloc[i]
        assert answer["transaction_id"] == row["transaction_id"]
        assert answer["history_source"] == "request"
        assert answer["fraud_probability"] == row["fraud_probability"]
        assert answer["is_fraud"] == (row["decision"] == "fraud")
        assert answer["risk_level"] == row["risk_level"]
        assert answer["reasons"] == file_reasons(row, scorer.top_k)


def file_reasons(row: pd.Series, top_k: int) -> list[dict[str, Any]]:
    """A scored row's reason columns in the API's shape (an empty slot left out)."""
    reasons = []
    names = reason_columns(top_k)
    for feature, value, contribution in zip(names[::3], names[1::3], names[2::3], strict=True):
        if isinstance(row[feature], str):
            number = row[value]
            reasons.append(
                {
                    "feature": row[feature],
                    "value": None if pd.isna(number) else float(number),
                    "contribution": float(row[contribution]),
                }
            )
    return reasons


@pytest.mark.parametrize(("source", "target"), [("csv", "parquet"), ("parquet", "csv")])
def test_the_input_order_and_both_formats(
    tiny_model: TinyModel,
    transactions: pd.DataFrame,
    scored: pd.DataFrame,
    tmp_path: Path,
    source: str,
    target: str,
) -> None:
    """Shuffled rows come back in their own order with the scores they have in time order."""
    shuffled = transactions.sample(frac=1.0, random_state=3).reset_index(drop=True)
    path = tmp_path / f"tx.{source}"
    if source == "csv":
        shuffled.to_csv(path, index=False)
    else:
        shuffled.to_parquet(path, index=False)
    out = tmp_path / f"scored.{target}"
    assert run_score(tiny_model, path, out) == 0
    result = read(out)
    assert result["transaction_id"].tolist() == shuffled["transaction_id"].tolist()
    expected = scored.set_index("transaction_id").loc[shuffled["transaction_id"]]
    for name in ("fraud_probability", "reason_1_contribution"):
        np.testing.assert_array_equal(result[name].to_numpy(), expected[name].to_numpy())
    for name in ("decision", "risk_level", "reason_1"):
        assert result[name].astype(str).tolist() == expected[name].astype(str).tolist()


def test_a_file_without_labels_is_scored_as_unlabelled(
    tiny_model: TinyModel,
    transactions: pd.DataFrame,
    scored: pd.DataFrame,
    scorer: Scorer,
    tmp_path: Path,
) -> None:
    """Without is_fraud every row is unlabelled, as training treats unlabelled rows: the
    label-delayed risk features see no label (so some scores move)."""
    unlabelled = transactions.drop(columns=[schema.LABEL])
    unlabelled.to_csv(tmp_path / "tx.csv", index=False)
    times = unlabelled[schema.TIMESTAMP].dt
    unlabelled = unlabelled.assign(hour_of_day=times.hour, day_of_week=times.day_of_week)
    assert run_score(tiny_model, tmp_path / "tx.csv", tmp_path / "out.csv") == 0
    result = read(tmp_path / "out.csv")
    state = scorer.artifact.feature_state
    history = history_arrays(unlabelled, state.config)
    assert all((history[c] == 0).all() for c in history if "labelled_count" in c)
    x = transform({**dict(unlabelled.items()), **history}, state)
    np.testing.assert_array_equal(result["fraud_probability"], scorer.score_matrix(x).probability)
    assert (result["fraud_probability"] != scored["fraud_probability"]).any()


HEADER = "transaction_id,user_id,merchant_id,timestamp,amount,merchant_category,transaction_type,"
HEADER += "device_id,device_type,location\n"
ROW = "t{i},u1,m1,2026-03-01T10:0{i}:00Z,12.5,grocery,purchase,d1,pos,Boston\n"
GOOD = HEADER + ROW.format(i=1) + ROW.format(i=2)
NO_AMOUNT = GOOD.replace("amount,", "").replace(",12.5", "")
BAD_TIME = GOOD.replace("2026-03-01T10:02:00Z", "soon")
BAD_AMOUNTS = (
    HEADER + ROW.format(i=1).replace("12.5", "abc") + ROW.format(i=2).replace("12.5", "-1")
)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("tx.csv", NO_AMOUNT, "missing column 'amount'"),
        ("tx.csv", BAD_TIME, "column 'timestamp': 1 row not a parseable time"),
        ("tx.csv", BAD_AMOUNTS, "column 'amount': 1 row not a finite number"),
        ("tx.csv", BAD_AMOUNTS, "column 'amount': 1 row not positive"),
        ("tx.csv", HEADER + ROW.format(i=1) * 2, "column 'transaction_id': 2 rows share 1"),
        ("tx.csv", "", "the file is empty (no header, no rows)"),
        ("tx.csv", HEADER, "the table has no rows"),
        ("tx.json", GOOD, "unknown suffix '.json'; expected .csv or .parquet"),
        ("tx.parquet", GOOD, "cannot be read as parquet"),
    ],
)
def test_bad_input_names_the_file_and_writes_nothing(
    tiny_model: TinyModel, tmp_path: Path, name: str, text: str, message: str
) -> None:
    source = tmp_path / name
    source.write_text(text)
    out = tmp_path / "out" / "scored.csv"
    out.parent.mkdir()
    out.write_text("an older result\n")
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        run_score(tiny_model, source, out)
    assert str(source) in str(info.value)
    assert out.read_text() == "an older result\n"
    assert [p.name for p in out.parent.iterdir()] == ["scored.csv"]


def test_a_files_own_column_names_are_mapped_by_data_columns(
    tiny_model: TinyModel, transactions: pd.DataFrame, scored: pd.DataFrame, tmp_path: Path
) -> None:
    """``data.columns`` maps a file's names as for the pipeline's input; the output keeps the
    file's own names."""
    params = yaml.safe_load(tiny_model.params.read_text())
    params["data"]["columns"] |= {"user_id": "CARD_NO", "amount": "AMT"}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    export = transactions.rename(columns={"user_id": "CARD_NO", "amount": "AMT"})
    export.to_parquet(tmp_path / "export.parquet", index=False)
    args = ["--input", str(tmp_path / "export.parquet"), "--output", str(tmp_path / "out.csv")]
    args += ["--model-dir", str(tiny_model.model_dir)]
    assert score.main([*args, "--params", str(tmp_path / "params.yaml")]) == 0
    result = read(tmp_path / "out.csv")
    assert list(result.columns[:3]) == ["transaction_id", "CARD_NO", "merchant_id"]
    np.testing.assert_array_equal(result["fraud_probability"], scored["fraud_probability"])
    transactions.to_csv(tmp_path / "plain.csv", index=False)  # the canonical names
    args[1] = str(tmp_path / "plain.csv")
    with pytest.raises(ValueError, match=r"data\.columns\.user_id: no column 'CARD_NO'"):
        score.main([*args, "--params", str(tmp_path / "params.yaml")])


def test_the_output_suffix_is_checked_before_any_work(
    tiny_model: TinyModel, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=r"output .*scored\.xlsx: unknown suffix '\.xlsx'"):
        run_score(tiny_model, tmp_path / "missing.csv", tmp_path / "scored.xlsx")
    with pytest.raises(FileNotFoundError, match="input not found"):
        run_score(tiny_model, tmp_path / "missing.csv", tmp_path / "scored.csv")
    with pytest.raises(ValueError, match="is the input file"):
        run_score(tiny_model, tmp_path / "tx.csv", tmp_path / "tx.csv")


def test_an_unpromoted_or_tampered_model_is_refused(
    tiny_model: TinyModel, paths: dict[str, Any], tmp_path: Path
) -> None:
    with pytest.raises(ArtifactError, match="no serving section"):
        load_scorer(Path(paths["candidate"]["manifest"]))
    models = tmp_path / "models"
    shutil.copytree(tiny_model.model_dir, models)
    with open(models / tiny_model.model.name, "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ArtifactError, match="does not match manifest"):
        load_scorer(models / "manifest.json")


def test_a_failed_write_leaves_no_partial_file(
    tiny_model: TinyModel,
    transactions: pd.DataFrame,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    transactions.to_csv(tmp_path / "tx.csv", index=False)
    out_dir = tmp_path / "out"
    out_dir.mkdir()

    def half(table: Any, sink: Any, options: Any = None) -> None:
        sink.write(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pcsv, "write_csv", half)
    with pytest.raises(ValueError, match="cannot be written: No space left on device"):
        run_score(tiny_model, tmp_path / "tx.csv", out_dir / "scored.csv")
    assert list(out_dir.iterdir()) == []


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_only() -> None:
    terminal = Terminal()
    progress = score.Progress(terminal, after_s=0.0, every_s=0.0)
    progress.step("reading tx.csv")
    progress.rows(500, 1000)
    progress.rows(1000, 1000)
    progress.close()
    text = terminal.getvalue()
    assert "score: reading tx.csv" in text
    assert "[###############...............] 500/1,000 rows" in text
    assert "[##############################] 1,000/1,000 rows" in text
    assert text.endswith("\n")
    quiet = io.StringIO()
    progress = score.Progress(quiet, after_s=0.0, every_s=0.0)
    progress.rows(1000, 1000)
    progress.close()
    assert quiet.getvalue() == ""


def test_make_score(tiny_model: TinyModel, transactions: pd.DataFrame, tmp_path: Path) -> None:
    transactions.head(500).to_parquet(tmp_path / "tx.parquet", index=False)
    make = ["make", "--no-print-directory", "-o", ".venv/.installed", "score"]
    args = f"ARGS=--model-dir {tiny_model.model_dir} --params {tiny_model.params}"
    proc = subprocess.run(
        [*make, f"INPUT={tmp_path / 'tx.parquet'}", f"OUTPUT={tmp_path / 'out.csv'}", args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "score: 500 transactions in " in proc.stdout
    assert proc.stderr == ""  # not a terminal: no progress bar
    result = read(tmp_path / "out.csv")
    assert len(result) == 500
    assert set(result["risk_level"]) <= set(RISK_LEVELS)
    usage = subprocess.run(make, cwd=REPO, capture_output=True, text=True, check=False)
    assert usage.returncode == 2
    assert "usage: make score INPUT=" in usage.stderr
