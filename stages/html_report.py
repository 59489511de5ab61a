"""The HTML report (`make report`): one self-contained page from the pipeline's outputs.

    python -m stages.html_report                      # -> paths.report (reports/index.html)
    python -m stages.html_report --drift FILE.json    # a chosen drift report

Not a DVC stage: it reads what `dvc repro` writes (the test metrics, the gate report, the
plot data, the baseline and the served manifest) and, when `make drift` has written one, the
newest drift report in paths.drift_reports, which no DVC stage produces. Each input comes
from params.yaml's `paths`; the risk bands from its `serving` section.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from fraud.config import PARAMS_FILE, load_params, load_paths, parse_checked
from fraud.files import atomic_write_bytes
from fraud.monitoring.report import PLOTS, SCORE_HISTOGRAM, ReportData, render_report
from fraud.runtime.artifact import MANIFEST
from fraud.runtime.scoring import ServingConfig
from stages.common import read_json as common_read_json
from stages.common import run


def read_json(path: Path, what: str, hint: str = "run `dvc repro` first") -> Any:
    """``stages.common.read_json``, saying how to make a missing file (dvc repro by default)."""
    return common_read_json(path, what, hint)


def latest_drift_report(directory: Path) -> Path | None:
    """The most recently written ``*.json`` drift report in ``directory``, or None."""
    reports = sorted(Path(directory).glob("*.json"), key=lambda p: (p.stat().st_mtime, p.name))
    return reports[-1] if reports else None


def read_baseline(path: Path) -> dict[str, Any] | None:
    """The baseline's metrics; None when the file is absent or holds none yet (as the gate)."""
    if not Path(path).exists():
        return None
    baseline = read_json(path, "baseline")
    if not isinstance(baseline, dict) or not isinstance(baseline.get("metrics", {}), dict):
        raise ValueError(f"baseline {path} must be an object whose 'metrics' is an object")
    return baseline.get("metrics") or None


def read_drift(path: Path) -> dict[str, Any]:
    """A drift report written by `make drift`, checked to be one."""
    report = read_json(path, "drift report", "make drift writes it")
    if not isinstance(report, dict) or "verdict" not in report or "features" not in report:
        raise ValueError(f"{path} is not a drift report (no verdict and features)")
    return report


def collect(args: argparse.Namespace) -> ReportData:
    """Read every input the report shows, the pipeline's first (a missing one is named)."""
    paths = load_paths(args.params)
    serving = load_params(["serving"], args.params)["serving"]
    serving = parse_checked(serving, ServingConfig, "serving")
    metrics = read_json(Path(paths.metrics), "test metrics")
    gate = read_json(Path(paths.gate_report), "gate report")
    plots_dir = Path(paths.plots)
    plots = {
        name: read_json(plots_dir / f"{name}.json", f"plot data {name}")
        for name in (*PLOTS, SCORE_HISTOGRAM)
    }
    served_manifest = Path(paths.model_dir) / MANIFEST
    served = read_json(served_manifest, "served manifest")
    drift_dir = Path(paths.drift_reports)
    drift_path = args.drift or latest_drift_report(drift_dir)
    sources = {
        "test metrics": paths.metrics,
        "gate report": paths.gate_report,
        "baseline": paths.baseline,
        "plot data": f"{paths.plots}/",
        "served manifest": str(served_manifest),
        "drift": str(drift_path) if drift_path else f"{drift_dir}/",
    }
    return ReportData(
        metrics=metrics,
        gate=gate,
        baseline=read_baseline(Path(paths.baseline)),
        plots=plots,
        bands=(serving.risk_medium, serving.risk_high),
        served=served,
        drift=read_drift(drift_path) if drift_path else None,
        sources=sources,
    )


def main(argv: list[str] | None = None) -> int:
    """Write the report; print where it is, its size and the time it took."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--drift", type=Path, help="drift report JSON (default: newest in paths)")
    ap.add_argument("--out", type=Path, help="default: paths.report")
    ap.add_argument("--params", type=Path, default=PARAMS_FILE)
    args = ap.parse_args(argv)
    started = time.perf_counter()
    out = args.out or Path(load_paths(args.params).report)
    page = render_report(collect(args)).encode()
    atomic_write_bytes(out, page)
    print(
        f"report: {out} ({len(page) / 1024:.0f} KB, self-contained) in "
        f"{time.perf_counter() - started:.1f} s; open file://{out.resolve()}"
    )
    return 0


if __name__ == "__main__":
    run(main)
