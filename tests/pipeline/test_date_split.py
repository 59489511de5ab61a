"""split=dates end to end: the stages, in process, on the tiny config with a test week."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

from tests.tiny_model import build

DATES = ("split=dates", "split.test_start=2026-02-03", "split.test_end=2026-02-10")


def test_a_date_split_trains_on_labels_known_at_the_test_start(tmp_path: Path) -> None:
    model = build(tmp_path, DATES)
    paths = yaml.safe_load(model.params.read_text())["paths"]["processed"]
    parts = {name: pd.read_parquet(path) for name, path in paths.items()}
    utc = "UTC"
    assert parts["train"]["timestamp"].max() < pd.Timestamp("2026-01-20", tz=utc)
    assert parts["valid"]["timestamp"].min() >= pd.Timestamp("2026-01-20", tz=utc)
    assert parts["valid"]["timestamp"].max() < pd.Timestamp("2026-01-27", tz=utc)
    assert parts["history"]["timestamp"].min() >= pd.Timestamp("2026-01-27", tz=utc)
    assert parts["test"]["timestamp"].min() >= pd.Timestamp("2026-02-03", tz=utc)
    assert parts["test"]["timestamp"].max() < pd.Timestamp("2026-02-10", tz=utc)
    assert len(parts["history"]) > 0
    metrics = json.loads((tmp_path / "reports/metrics.json").read_text())
    assert metrics["n"] == len(parts["test"])  # the gap is never scored as test
    per_day = json.loads((tmp_path / "reports/plots/card_precision.json").read_text())
    assert [d["day"] for d in per_day] == [f"2026-02-{d:02d}" for d in range(3, 10)]
    assert 0.0 <= metrics["card_precision_at_100"] <= 1.0
    assert json.loads(model.manifest.read_text())["gate"]["passed"] is True
