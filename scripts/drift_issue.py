#!/usr/bin/env python3
"""Open (or update) the monitoring issue from `make drift` and `make performance` reports.

    python scripts/drift_issue.py --report reports/drift/drift_report.json \
        --markdown reports/drift/drift_report.md --run-url "$RUN_URL" \
        [--performance reports/drift/performance_report.json]

No drift and no realized metric below its bound: prints the verdicts and exits 0. Otherwise:
makes sure the label exists, then comments on the open issue carrying the label, or opens one
if there is none, so a daily check never piles up duplicates. The issue holds the timestamp,
the run link, how to retrain and both reports. A missing or unreadable drift report (the
check itself failed) exits 2.
Needs `gh` on PATH with GH_TOKEN (and GH_REPO outside a checkout).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

#: GitHub refuses issue and comment bodies longer than 65,536 characters.
MAX_BODY = 60_000
LABEL_OPTIONS = ("--force", "--color", "D93F0B", "--description", "Data drift (daily check)")
#: The open drift issue, if any: `gh issue list` prints a JSON array (empty when none).
OPEN_ISSUE_QUERY = ("--state", "open", "--json", "number", "--limit", "1")


def gh(*args: str) -> str:
    """Run ``gh`` and return its stdout; a failure raises with gh's message."""
    proc = subprocess.run(["gh", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"gh {' '.join(args[:2])} failed ({proc.returncode}): {proc.stderr}")
    return proc.stdout


def issue_body(
    report: dict,
    markdown: str,
    run_url: str,
    env: str,
    now: datetime,
    performance: dict | None = None,
    performance_md: str = "",
) -> str:
    """The issue (or comment) text: when, where, why, how to retrain, then the reports."""
    drifted = ", ".join(report.get("drifted_features", [])) or "none"
    found = []
    if report.get("verdict") == "drift":
        found.append("Data drift")
    if performance is not None and performance.get("verdict") == "below":
        found.append("Realized performance below its bounds")
    header = "\n".join(
        [
            f"**{' and '.join(found) or 'Monitoring'}** at {now.strftime('%Y-%m-%d %H:%M UTC')}.",
            "",
            f"- Run: {run_url or 'local run'}",
            f"- Source: {report.get('source', 'unknown')}",
            f"- Drifted features: {drifted}",
            f"- Model score: {report.get('score', {}).get('verdict', 'n/a')}",
            *(f"- {reason}" for reason in report.get("reasons", [])),
            *(
                [f"- Realized performance: {performance.get('verdict')}"]
                + [f"- {reason}" for reason in performance.get("reasons", [])]
                if performance is not None
                else []
            ),
            "",
            "### How to retrain",
            "",
            '- On GitHub: run the "Model Retraining & Deployment" workflow (model-retrain.yml) '
            f"for the `{env}` environment.",
            f"- Locally: `make retrain ENV={env}`, then commit the gated model in `models/`.",
            "- Close this issue once a retrained model is deployed and the check is clean.",
            "",
            "---",
            "",
        ]
    )
    room = MAX_BODY - len(header)
    markdown = performance_md + "\n" + markdown if performance_md else markdown
    if len(markdown) > room:
        markdown = markdown[: room - 200] + "\n\n_(report truncated; see the run's artifacts)_\n"
    return header + markdown


def main(argv: list[str] | None = None) -> int:
    """File or update the drift issue when the report says drift."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--report", type=Path, required=True, help="drift_report.json")
    ap.add_argument("--markdown", type=Path, required=True, help="drift_report.md")
    ap.add_argument("--label", default="drift")
    ap.add_argument("--run-url", default="")
    ap.add_argument("--env", default="production", help="environment to retrain")
    ap.add_argument("--performance", type=Path, help="performance_report.json (and its .md)")
    args = ap.parse_args(argv)
    try:
        report = json.loads(args.report.read_text())
        markdown = args.markdown.read_text()
    except (OSError, ValueError) as exc:
        print(f"error: no drift report to act on ({exc}); see the drift step", file=sys.stderr)
        return 2
    performance, performance_md = None, ""
    if args.performance is not None:
        try:
            performance = json.loads(args.performance.read_text())
            performance_md = args.performance.with_suffix(".md").read_text()
        except (OSError, ValueError) as exc:
            print(f"::warning::no performance report ({exc}); drift only")
    verdict = report.get("verdict")
    realized = performance.get("verdict") if performance is not None else None
    if realized == "insufficient_data":
        print(f"::warning::performance check had too few labels: {performance.get('reasons')}")
    if verdict != "drift" and realized != "below":
        if verdict == "insufficient_data":
            print(f"::warning::drift check had too little data: {report.get('reasons')}")
        print(f"drift verdict: {verdict}; no issue filed (performance verdict: {realized})")
        return 0

    now = datetime.now(UTC)
    body = issue_body(report, markdown, args.run_url, args.env, now, performance, performance_md)
    with tempfile.NamedTemporaryFile("w", suffix=".md", delete=False) as fh:
        fh.write(body)
    body_file = fh.name
    try:
        gh("label", "create", args.label, *LABEL_OPTIONS)
        listed = gh("issue", "list", "--label", args.label, *OPEN_ISSUE_QUERY)
        issues = json.loads(listed or "[]")
        if issues:
            number = str(issues[0]["number"])
            gh("issue", "comment", number, "--body-file", body_file)
            print(f"drift: commented on issue #{number}")
        else:
            what = "Data drift" if verdict == "drift" else "Model performance below bounds"
            title = f"{what} detected ({now:%Y-%m-%d})"
            create = ("--title", title, "--label", args.label, "--body-file", body_file)
            url = gh("issue", "create", *create).strip()
            print(f"drift: opened {url}")
    except (RuntimeError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        Path(body_file).unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
