"""`make report` end to end: the tiny model's pipeline outputs and a drift report, built into one
HTML page and looked at in a real headless Chromium with no network."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stages import drift, html_report
from tests.browser import open_page
from tests.conftest import REPO
from tests.tiny_model import TinyModel


@pytest.fixture(scope="module")
def report(tiny_model: TinyModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of the tiny model's run, with a drifted synthetic batch as the drift report."""
    out = tmp_path_factory.mktemp("report")
    code = drift.main(
        [
            *("--scenario", "severe", "--rows", "3000", "--params", str(tiny_model.params)),
            *("--json-out", str(out / "drift.json"), "--md-out", str(out / "drift.md")),
        ]
    )
    assert code == 1  # drift
    page = out / "index.html"
    args = ["--params", str(tiny_model.params), "--drift", str(out / "drift.json")]
    assert html_report.main([*args, "--out", str(page)]) == 0
    return page


def test_the_page_holds_every_section_with_the_runs_values(
    report: Path, tiny_model: TinyModel
) -> None:
    page = report.read_text()
    paths = yaml.safe_load(tiny_model.params.read_text())["paths"]
    metrics = json.loads(Path(paths["metrics"]).read_text())
    gate = json.loads(tiny_model.gate_report.read_text())
    assert f"gate {'PASSED' if gate['passed'] else 'FAILED'}" in page
    assert f"<td>roc_auc</td><td>{metrics['roc_auc']:.4f}</td>" in page
    assert f"<td>fraud</td><td>{metrics['fn']:,}</td><td>{metrics['tp']:,}</td>" in page
    calibration = json.loads((Path(paths["plots"]) / "calibration.json").read_text())
    assert sum(row["count"] for row in calibration) == metrics["n"]
    assert page.count("<tr>", page.index('id="calibration-table"')) >= len(calibration)
    drift_report = json.loads((report.parent / "drift.json").read_text())
    for name in drift_report["features"]:
        assert f'id="fig-drift-{name.replace("_", "-")}"' in page, name
    assert "drift: drift" in page
    assert len(page.encode()) < 1_000_000


def test_newest_drift_report_is_the_default(tmp_path: Path) -> None:
    (tmp_path / "old.json").write_text("{}")
    (tmp_path / "new.json").write_text("{}")
    os.utime(tmp_path / "old.json", (1_000, 1_000))
    assert html_report.latest_drift_report(tmp_path) == tmp_path / "new.json"
    assert html_report.latest_drift_report(tmp_path / "absent") is None


def test_a_missing_input_is_named_with_how_to_make_it(
    tiny_model: TinyModel, tmp_path: Path
) -> None:
    params = yaml.safe_load(tiny_model.params.read_text())
    params["paths"]["metrics"] = str(tmp_path / "no-metrics.json")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    proc = subprocess.run(
        [sys.executable, "-m", "stages.html_report", "--params", str(tmp_path / "params.yaml")],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert f"test metrics not found: {tmp_path / 'no-metrics.json'}" in proc.stderr
    assert "dvc repro" in proc.stderr


def test_chromium_renders_the_page_offline(report: Path, tmp_path: Path) -> None:
    """A real browser with no network: the screenshot is not blank, the DOM holds the figures."""
    import numpy as np
    from PIL import Image

    shot = tmp_path / "report.png"
    open_page(report.as_uri(), tmp_path / "profile", screenshot=shot, size=(1200, 2400))
    with Image.open(shot) as image:
        assert image.size == (1200, 2400)
        pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
    colors, counts = np.unique(pixels, axis=0, return_counts=True)
    drawn = 1 - counts.max() / len(pixels)  # share of pixels not of the background colour
    assert drawn > 0.1, f"only {drawn:.1%} of the screenshot differs from its background"
    assert len(colors) > 200  # text, curves, bars and shading, not a blank or error page

    dom = open_page(report.as_uri(), tmp_path / "profile")
    for figure in ("fig-roc", "fig-pr", "fig-scores", "fig-calibration", "fig-importance"):
        assert f'id="{figure}"' in dom, figure
    assert 'id="fig-card-precision"' in dom
    assert dom.count("<svg") >= 12  # six figures and one histogram per drift feature
    for label in ("ROC curve", "Precision-recall curve", "Test scores by class", "amount: PSI"):
        assert label in dom, label
    assert "Calibration: bins fixed around the threshold" in dom
    assert 'id="gate-verdict"' in dom


def test_dvc_plots_page_renders_offline_from_the_vendored_renderer(tmp_path: Path) -> None:
    """`dvc plots show` uses .dvc/plots/offline.html: no CDN script, and with no network a real
    Chromium draws every plot dvc.yaml declares (vega-embed adds one canvas per plot)."""
    out = tmp_path / "plots"
    dvc = Path(sys.executable).with_name("dvc")
    subprocess.run([dvc, "plots", "show", "-o", out], cwd=REPO, check=True, capture_output=True)
    page = (out / "index.html").read_text(encoding="utf8")
    assert "<script src=" not in page
    assert "cdn.jsdelivr" not in page
    declared = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf8"))["plots"]
    dom = open_page((out / "index.html").as_uri(), tmp_path / "profile", wait_ms=2000)
    drawn = re.findall(r'<canvas [^>]*class="marks"', dom)
    assert len(drawn) == len(declared), dom[-2000:]
