"""scripts/drift_issue.py against a fake `gh` on PATH, and the drift-monitoring workflow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, fake_tool

SCRIPT = REPO / "scripts" / "drift_issue.py"
WORKFLOW = REPO / ".github" / "workflows" / "drift-monitoring.yml"
RUN_URL = "https://github.com/acme/fraud/actions/runs/42"

#: A fake GitHub CLI: records each call (argv, and the body file's text) as a JSON line, and
#: answers `issue list --json number` like the real one: [] until an issue was created.
FAKE_GH = """#!{python}
import json, os, sys
from pathlib import Path
state = Path(os.environ["FAKE_GH_STATE"])
args = sys.argv[1:]
call = {{"args": args}}
if "--body-file" in args:
    call["body"] = Path(args[args.index("--body-file") + 1]).read_text()
with open(state / "calls.jsonl", "a") as fh:
    fh.write(json.dumps(call) + "\\n")
issues = state / "issues.json"
created = json.loads(issues.read_text()) if issues.exists() else []
if args[:2] == ["issue", "list"]:
    print(json.dumps([{{"number": n}} for n in created]))
elif args[:2] == ["issue", "create"]:
    number = len(created) + 1
    issues.write_text(json.dumps(created + [number]))
    print(f"https://github.com/acme/fraud/issues/{{number}}")
elif args[:2] not in (["issue", "comment"], ["label", "create"]):
    print(f"fake gh: unexpected {{args}}", file=sys.stderr)
    sys.exit(1)
"""


@pytest.fixture
def gh_state(tmp_path: Path) -> Path:
    fake_tool(tmp_path, "gh", FAKE_GH)
    state = tmp_path / "state"
    state.mkdir()
    return state


def write_report(tmp_path: Path, verdict: str) -> tuple[Path, Path]:
    report = {
        "verdict": verdict,
        "reasons": ["amount: PSI 0.436 >= 0.25"],
        "source": "synthetic production batch, scenario severe",
        "drifted_features": ["amount", "hour_of_day"],
        "score": {"verdict": "drift (moderate)"},
    }
    json_path, md_path = tmp_path / "report.json", tmp_path / "report.md"
    json_path.write_text(json.dumps(report))
    md_path.write_text("# Drift report\n\n| feature | PSI |\n|---|---|\n| amount | 0.4356 |\n")
    return json_path, md_path


def run_script(gh_state: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, FAKE_GH_STATE=str(gh_state))
    env["PATH"] = f"{gh_state.parent / 'bin'}{os.pathsep}{env['PATH']}"
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def calls(gh_state: Path) -> list[dict]:
    path = gh_state / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_drift_opens_one_issue_then_comments_on_it(tmp_path: Path, gh_state: Path) -> None:
    report, md = write_report(tmp_path, "drift")
    args = ("--report", report, "--markdown", md, "--run-url", RUN_URL, "--env", "production")
    first = run_script(gh_state, *args)
    assert first.returncode == 0, first.stderr
    assert "opened https://github.com/acme/fraud/issues/1" in first.stdout
    made = calls(gh_state)
    assert [c["args"][:2] for c in made] == [
        ["label", "create"],
        ["issue", "list"],
        ["issue", "create"],
    ]
    assert made[0]["args"][2:4] == ["drift", "--force"]
    assert made[1]["args"][2:] == [
        "--label",
        "drift",
        "--state",
        "open",
        "--json",
        "number",
        "--limit",
        "1",
    ]
    create = made[2]["args"]
    assert create[create.index("--label") + 1] == "drift"
    assert create[create.index("--title") + 1].startswith("Data drift detected (")
    body = made[2]["body"]
    assert RUN_URL in body
    assert " UTC." in body  # the timestamp
    assert "Model Retraining & Deployment" in body
    assert "model-retrain.yml" in body
    assert "`make retrain ENV=production`" in body
    assert "| amount | 0.4356 |" in body  # the report itself
    assert "amount: PSI 0.436 >= 0.25" in body

    second = run_script(gh_state, *args)
    assert second.returncode == 0, second.stderr
    assert "commented on issue #1" in second.stdout
    made = calls(gh_state)[3:]
    assert [c["args"][:3] for c in made] == [
        ["label", "create", "drift"],
        ["issue", "list", "--label"],
        ["issue", "comment", "1"],
    ]
    assert "| amount | 0.4356 |" in made[2]["body"]
    assert json.loads((gh_state / "issues.json").read_text()) == [1]  # still one issue


@pytest.mark.parametrize("verdict", ["none", "insufficient_data"])
def test_no_drift_files_nothing(tmp_path: Path, gh_state: Path, verdict: str) -> None:
    report, md = write_report(tmp_path, verdict)
    proc = run_script(gh_state, "--report", report, "--markdown", md)
    assert proc.returncode == 0
    assert f"drift verdict: {verdict}; no issue filed" in proc.stdout
    assert calls(gh_state) == []


def test_a_missing_report_fails_without_calling_gh(tmp_path: Path, gh_state: Path) -> None:
    proc = run_script(gh_state, "--report", tmp_path / "absent.json", "--markdown", "x.md")
    assert proc.returncode == 2
    assert "no drift report to act on" in proc.stderr
    assert calls(gh_state) == []


def test_a_huge_report_is_truncated_to_fit_an_issue(tmp_path: Path, gh_state: Path) -> None:
    report, md = write_report(tmp_path, "drift")
    md.write_text("| row |\n" * 20_000)
    assert run_script(gh_state, "--report", report, "--markdown", md).returncode == 0
    body = calls(gh_state)[2]["body"]
    assert len(body) <= 60_000
    assert body.endswith("_(report truncated; see the run's artifacts)_\n")


def test_gh_failures_exit_2(tmp_path: Path, gh_state: Path) -> None:
    report, md = write_report(tmp_path, "drift")
    gh = gh_state.parent / "bin" / "gh"
    gh.write_text("#!/bin/sh\necho 'HTTP 403: Resource not accessible' >&2\nexit 1\n")
    proc = run_script(gh_state, "--report", report, "--markdown", md)
    assert proc.returncode == 2
    assert "HTTP 403" in proc.stderr


# --------------------------------------------------------------------------- the workflow


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def test_workflow_triggers_and_least_privilege(workflow: dict) -> None:
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as True
    assert triggers["schedule"] == [{"cron": "0 2 * * *"}]
    assert "workflow_dispatch" in triggers
    assert workflow["permissions"] == {"contents": "read", "issues": "write"}


def test_workflow_steps_call_make_drift_and_the_issue_script(workflow: dict) -> None:
    steps = workflow["jobs"]["drift"]["steps"]
    uses = [s["uses"] for s in steps if "uses" in s]
    assert "actions/checkout@v6" in uses
    assert "actions/setup-python@v6" in uses
    runs = {s.get("id", s.get("name")): s for s in steps if "run" in s}
    app, synthetic = runs["app"], runs["synthetic"]
    assert app["if"] == "vars.APP_URL != ''"
    assert synthetic["if"] == "vars.APP_URL == ''"
    assert app["run"].startswith("make drift ")
    assert "--url" in app["run"]
    assert app["env"]["MONITORING_TOKEN"] == "${{ secrets.MONITORING_TOKEN }}"
    assert synthetic["run"].startswith("make drift ")
    assert "--scenario" in synthetic["run"]
    for step in (app, synthetic):
        assert step["continue-on-error"] is True  # exit 1 = drift; the next step files it
    issue = next(s for s in steps if "drift_issue.py" in s.get("run", ""))
    assert issue["if"] == "${{ !cancelled() }}"
    assert issue["env"]["GH_TOKEN"] == "${{ github.token }}"
    assert "--run-url" in issue["run"]
    script = issue["run"].split()[1]
    assert (REPO / script).is_file()


def test_performance_below_its_bounds_files_the_issue_without_drift(
    tmp_path: Path, gh_state: Path
) -> None:
    report, md = write_report(tmp_path, "none")
    performance = tmp_path / "performance_report.json"
    performance.write_text(
        json.dumps({"verdict": "below", "reasons": ["recall 0.3100 is below 0.5"]})
    )
    performance.with_suffix(".md").write_text("## Realized performance\n\n| recall | 0.31 |\n")
    proc = run_script(gh_state, "--report", report, "--markdown", md, "--performance", performance)
    assert proc.returncode == 0, proc.stderr
    create = calls(gh_state)[2]
    assert create["args"][create["args"].index("--title") + 1].startswith(
        "Model performance below bounds detected ("
    )
    assert "Realized performance below its bounds" in create["body"]
    assert "recall 0.3100 is below 0.5" in create["body"]
    assert "| recall | 0.31 |" in create["body"]
    assert "| amount | 0.4356 |" in create["body"]  # the drift report too


def test_performance_ok_and_no_drift_files_nothing(tmp_path: Path, gh_state: Path) -> None:
    report, md = write_report(tmp_path, "none")
    performance = tmp_path / "performance_report.json"
    performance.write_text(json.dumps({"verdict": "ok", "reasons": []}))
    performance.with_suffix(".md").write_text("ok\n")
    proc = run_script(gh_state, "--report", report, "--markdown", md, "--performance", performance)
    assert proc.returncode == 0
    assert "no issue filed (performance verdict: ok)" in proc.stdout
    assert calls(gh_state) == []
