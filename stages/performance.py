"""Realized performance of the served model: its audit log joined with feedback labels.

    python -m stages.performance                         # PREDICTION_LOG_DIR's audit log
    python -m stages.performance --log /var/log/fraud    # another audit log directory
    python -m stages.performance --url https://my-app    # the deployed app (MONITORING_TOKEN)

Precision and recall at the model's threshold, PR-AUC, Card Precision@k and label coverage
over the latest ``performance.window`` predictions (``fraud.monitoring.performance``), with
the CBPE estimate from the scores; unlabelled predictions scored more than
``performance.genuine_after_days`` before the newest count as genuine. Writes
``<paths.drift_reports>/performance_report.json`` and ``.md``. Exit 0 (every bound of
``performance.min_metrics`` holds, or fewer than ``min_labels`` labels: "insufficient_data"),
1 (a metric is below its bound), 2 (an error).
"""

from __future__ import annotations

import argparse
import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from fraud.config import PARAMS_FILE, load_params, load_paths, parse_checked
from fraud.files import atomic_write_bytes, dump_json
from fraud.monitoring.auditlog import read_labels, read_window
from fraud.monitoring.performance import (
    PerformanceConfig,
    below,
    estimated,
    join,
    realized,
)
from stages.common import run

URL_TIMEOUT_S = 120


def from_log(directory: Path, cfg: PerformanceConfig) -> dict[str, Any]:
    """The report of an audit log directory (its ``labels/`` beside it)."""
    if not directory.is_dir():
        raise FileNotFoundError(f"audit log directory not found: {directory}")
    records = read_window(directory, cfg.window)
    labels = read_labels(directory)
    genuine = None if cfg.genuine_after_days is None else cfg.genuine_after_days * 86_400
    joined = join(records, labels, genuine)
    out = realized(joined, cfg.card_precision_k)
    return {
        "source": f"{directory}: the last {len(records):,} predictions (window {cfg.window:,}), "
        f"{len(labels):,} labelled transactions",
        "genuine_after_s": genuine,
        "realized": out,
        "estimated": estimated(joined.scores, out["threshold"]) if out["threshold"] else {},
    }


def from_url(url: str, token: str | None, cfg: PerformanceConfig) -> dict[str, Any]:
    """GET <url>/monitoring/performance with the bearer token; ValueError when it fails."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"--url must start with http:// or https://, got {url!r}")
    if not token:
        raise ValueError("--url needs the MONITORING_TOKEN environment variable")
    genuine = "none" if cfg.genuine_after_days is None else cfg.genuine_after_days * 86_400
    endpoint = f"{url.rstrip('/')}/monitoring/performance?genuine_after_s={genuine}"
    request = urllib.request.Request(endpoint, headers={"Authorization": f"Bearer {token}"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=URL_TIMEOUT_S) as response:  # noqa: S310
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:500].decode(errors="replace")
        raise ValueError(f"{endpoint} answered {exc.code}: {detail}") from None
    except (urllib.error.URLError, TimeoutError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read {endpoint}: {exc}") from None


def judge(report: dict[str, Any], cfg: PerformanceConfig) -> dict[str, Any]:
    """``report`` with its verdict (ok / below / insufficient_data) and reasons."""
    metrics = report["realized"]
    reasons = below(metrics, cfg.min_metrics, cfg.min_labels)
    if metrics.get("labelled", 0) < cfg.min_labels:
        verdict = "insufficient_data"
        reasons = [
            f"{metrics.get('labelled', 0):,} labelled predictions, fewer than {cfg.min_labels:,}"
        ]
    else:
        verdict = "below" if reasons else "ok"
    return {**report, "verdict": verdict, "reasons": reasons, "min_metrics": cfg.min_metrics}


def markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown table (the monitoring issue quotes it)."""
    r, e = report["realized"], report.get("estimated") or {}
    lines = [
        "## Realized performance",
        "",
        f"Verdict: **{report['verdict']}**. Source: {report['source']}.",
        *(f"- {reason}" for reason in report["reasons"]),
        "",
        "| metric | realized | estimated (CBPE) | minimum |",
        "|---|---|---|---|",
    ]
    for name in ("precision", "recall", "pr_auc", *[k for k in r if k.startswith("card_")]):
        bound = report["min_metrics"].get(name, "")
        lines.append(f"| {name} | {r.get(name)} | {e.get(name, '')} | {bound} |")
    lines += [
        "",
        f"Labelled {r['labelled']:,} of {r['predictions']:,} predictions (coverage "
        f"{r['label_coverage']}), {r['assumed_genuine']:,} of them genuine by the delay rule; "
        f"{r['positives']:,} fraud.",
    ]
    if "trusted" in e:
        lines.append(f"CBPE: {e.get('why', '')}.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    what = ap.add_mutually_exclusive_group()
    what.add_argument("--log", type=Path, help="audit log directory (default PREDICTION_LOG_DIR)")
    what.add_argument("--url", help="deployed app base URL (token in MONITORING_TOKEN)")
    ap.add_argument("--json-out", type=Path, help="default: <paths.drift_reports>/*.json")
    ap.add_argument("--md-out", type=Path, help="default: <paths.drift_reports>/*.md")
    ap.add_argument("--params", type=Path, default=PARAMS_FILE)
    args = ap.parse_args(argv)
    cfg = parse_checked(
        load_params(["performance"], args.params)["performance"], PerformanceConfig, "performance"
    )
    paths = load_paths(args.params)
    json_out = args.json_out or Path(paths.drift_reports) / "performance_report.json"
    md_out = args.md_out or Path(paths.drift_reports) / "performance_report.md"
    if args.url:
        report = from_url(args.url, os.environ.get("MONITORING_TOKEN"), cfg)
    else:
        directory = args.log or os.environ.get("PREDICTION_LOG_DIR")
        if not directory:
            ap.error("give --log DIR or --url URL (or set PREDICTION_LOG_DIR)")
        report = from_log(Path(directory), cfg)
    report = judge(report, cfg)
    atomic_write_bytes(json_out, dump_json(report))
    atomic_write_bytes(md_out, markdown(report).encode())
    r = report["realized"]
    print(
        f"performance: {report['verdict']} ({r['labelled']:,} of {r['predictions']:,} labelled; "
        f"precision {r['precision']}, recall {r['recall']}, pr_auc {r['pr_auc']}) -> {json_out}"
    )
    return 1 if report["verdict"] == "below" else 0


if __name__ == "__main__":
    run(main)
