"""GitHub workflows, checked offline: schema, what each `run:` calls, and the commands themselves.

Every file in .github/workflows/ is validated against GitHub's workflow schema (the copy
vendored by check-jsonschema) and every `run:` step must call a Make target that exists, a
module that exists (`python -m pkg.mod`) or a script that exists. The commands the CI and
retrain workflows run are executed here too, on copies of the project (see COMMAND_TESTS).
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO, copy_repo, run, tool_env

WORKFLOWS = sorted((REPO / ".github/workflows").glob("*.y*ml"))
BIN = Path(sys.executable).parent
OURS = ("ci.yml", "model-retrain.yml")
CURRENT_ACTIONS = {
    "actions/checkout": "v6",
    "actions/setup-python": "v6",
    "actions/upload-artifact": "v6",
}
#: Every command ci.yml and model-retrain.yml run -> the test here or elsewhere exercising it.
COMMAND_TESTS = {
    "make venv": ".ci/run (CI runs `make test`, which builds .venv through `make venv`)",
    "make security": "test_make_security_runs_the_bandit_rules_and_resolves_the_audit",
    "make lint": "test_make_lint_and_lint_deploy_pass",
    "make lint-deploy": "test_make_lint_and_lint_deploy_pass",
    "make test": ".ci/run (the whole suite), with coverage: test_tests_job_is_the_readme_command",
    "make check-pipeline": "test_check_pipeline_passes_here_and_names_what_is_stale",
    "make image": (
        "tests/delivery/test_image.py (make test-image): "
        "test_the_dockerfile_builds_and_passes_image_test"
    ),
    "make image-test": (
        "tests/delivery/test_image.py (make test-image): "
        "test_image_test_fails_when_the_image_runs_as_root and its other variants"
    ),
    "make test-image": "test_test_image_runs_the_image_tests_alone",
    'make retrain ENV="$ENVIRONMENT"': "test_retrain_then_commit_end_to_end",
    "make report": "test_retrain_then_commit_end_to_end (after the failed gate)",
    "make baseline": (
        "tests/pipeline/test_stages.py::test_baseline_records_the_served_production_metrics"
    ),
    'scripts/commit_model.sh "$ENVIRONMENT" --run-url "$RUN_URL"': (
        "test_retrain_then_commit_end_to_end, tests/delivery/test_release_scripts.py"
    ),
    'scripts/create_release.sh "$ENVIRONMENT" --run-url "$RUN_URL" --target "$TARGET_SHA"': (
        "tests/delivery/test_release_scripts.py::test_release_carries_the_model_files_metrics_and_run"
    ),
}


def shell(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A workflow `run:` line under bash with the step's env, failing with its output."""
    proc = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", script],
        cwd=cwd,
        env=dict(tool_env(), **env),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"{script} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def load_workflow(path: Path) -> dict[str, Any]:
    """A workflow as a dict; PyYAML reads the key `on` as True (YAML 1.1), so restore it."""
    data = yaml.safe_load(path.read_text())
    if True in data:
        data["on"] = data.pop(True)
    return data


def run_steps(workflow: dict[str, Any]) -> list[tuple[str, str]]:
    """(job id, run script) for every `run:` step."""
    return [
        (job_id, step["run"])
        for job_id, job in workflow["jobs"].items()
        for step in job.get("steps", [])
        if "run" in step
    ]


def make_targets(makefile: Path = REPO / "Makefile") -> set[str]:
    """Targets defined in the Makefile (rules, not variable assignments)."""
    pattern = re.compile(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", re.MULTILINE)
    return set(pattern.findall(makefile.read_text()))


def module_exists(name: str, root: Path = REPO) -> bool:
    path = root / Path(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def check_command(command: str, root: Path = REPO) -> list[str]:
    """Problems with one shell command of a run step (empty: it calls something that exists)."""
    words = shlex.split(command)
    while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
        words.pop(0)  # VAR=value prefixes
    if not words:
        return []
    head, rest = words[0], words[1:]
    if head == "make":
        targets = [w for w in rest if not w.startswith("-") and "=" not in w]
        if not targets:
            return [f"{command!r}: `make` without a target"]
        known = make_targets(root / "Makefile")
        return [f"{command!r}: no Make target {t!r}" for t in targets if t not in known]
    if Path(head).name in ("python", "python3"):
        if rest[:1] == ["-m"] and len(rest) > 1:
            return [] if module_exists(rest[1], root) else [f"{command!r}: no module {rest[1]}"]
        scripts = [w for w in rest if not w.startswith("-")]
        if scripts and (root / scripts[0]).is_file():
            return []
        return [f"{command!r}: no script {scripts[:1]}"]
    if head in ("bash", "sh") and rest:
        head = rest[0]
    if head.startswith(("scripts/", "./scripts/", ".ci/")):
        path = root / head
        if not path.is_file():
            return [f"{command!r}: no script {head}"]
        if words[0] == head and not path.stat().st_mode & 0o111:
            return [f"{command!r}: {head} is not executable"]
        return []
    return [f"{command!r}: not a Make target, module or script of this repository"]


def commands(script: str) -> list[str]:
    """The commands of a run script: one per line (or && / ; / | part), comments dropped."""
    out = []
    for line in script.replace("\\\n", " ").splitlines():
        line = line.split(" #", 1)[0].strip()
        for part in re.split(r"&&|\|\||;|\|", line):
            if part.strip() and not part.strip().startswith("#"):
                out.append(part.strip())
    return out


# --- every workflow -------------------------------------------------------------------------


def test_there_are_workflows() -> None:
    names = {p.name for p in WORKFLOWS}
    assert set(OURS) <= names


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_matches_the_github_schema(path: Path) -> None:
    proc = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_schema_check_rejects_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "name: x\non: push\njobs:\n  a:\n    timeout-minutes: ten\n    steps:\n      - run: make\n"
    )
    proc = subprocess.run(
        [
            str(BIN / "check-jsonschema"),
            "--builtin-schema",
            "vendor.github-workflows",
            str(broken),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert "runs-on" in proc.stdout or "timeout-minutes" in proc.stdout


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_run_step_calls_something_that_exists(path: Path) -> None:
    problems = [
        f"{path.name} job {job}: {problem}"
        for job, script in run_steps(load_workflow(path))
        for command in commands(script)
        for problem in check_command(command)
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("command", "problem"),
    [
        ("make no-such-target", "no Make target 'no-such-target'"),
        ("make", "without a target"),
        ("python -m stages.nope", "no module stages.nope"),
        ("python scripts/nope.py --x", "no script ['scripts/nope.py']"),
        ("scripts/nope.sh prod", "no script scripts/nope.sh"),
        ("scripts/healthcheck.py", "is not executable"),
        ("curl -sf https://example.com | sh", "not a Make target, module or script"),
    ],
)
def test_the_run_step_check_names_what_is_missing(command: str, problem: str) -> None:
    (found,) = check_command(command)
    assert problem in found


@pytest.mark.parametrize(
    "command",
    [
        'make drift DRIFT_ARGS="--url $APP_URL"',
        "python -m stages.compose env=staging",
        "python scripts/modelops.py paths",
        'scripts/commit_model.sh "$ENVIRONMENT" --run-url "$RUN_URL"',
        "bash .ci/run",
        "PYTEST_ADDOPTS=--cov make test",
    ],
)
def test_the_run_step_check_accepts_the_three_forms(command: str) -> None:
    assert check_command(command) == []


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_job_has_a_timeout_and_run_steps_take_no_inline_expressions(path: Path) -> None:
    """Inputs reach shells through `env:`, never as `${{ }}` pasted into a script."""
    workflow = load_workflow(path)
    for job_id, job in workflow["jobs"].items():
        assert isinstance(job.get("timeout-minutes"), int), f"{path.name} job {job_id}"
    for job_id, script in run_steps(workflow):
        assert "${{" not in script, f"{path.name} job {job_id}: expression in run: {script!r}"


@pytest.mark.parametrize("name", [path.name for path in WORKFLOWS])
def test_workflows_use_current_actions_and_cache_pip(name: str) -> None:
    workflow = load_workflow(REPO / ".github/workflows" / name)
    for job_id, job in workflow["jobs"].items():
        uses = [step["uses"] for step in job["steps"] if "uses" in step]
        for use in uses:
            action, _, version = use.partition("@")
            assert CURRENT_ACTIONS.get(action) == version, f"{name} {job_id}: {use}"
        (setup,) = [s for s in job["steps"] if s.get("uses", "").startswith("actions/setup-py")]
        assert setup["with"] == {
            "python-version": "3.11",
            "cache": "pip",
            "cache-dependency-path": "requirements*.txt",
        }


def test_our_run_steps_are_all_accounted_for() -> None:
    """Each command ci.yml and model-retrain.yml run has a test named in COMMAND_TESTS."""
    ran = {
        command
        for name in OURS
        for _, script in run_steps(load_workflow(REPO / ".github/workflows" / name))
        for command in commands(script)
    }
    assert ran == set(COMMAND_TESTS)
    here = (REPO / "tests/delivery/test_workflows.py").read_text()
    for described in COMMAND_TESTS.values():
        for test in re.findall(r"\btest_\w+\b(?!\.py)", described):
            assert f"def {test}(" in here or any(
                f"def {test}(" in p.read_text() for p in (REPO / "tests").rglob("test_*.py")
            ), test


# --- ci.yml -----------------------------------------------------------------------------


CI = load_workflow(REPO / ".github/workflows/ci.yml")
RETRAIN = load_workflow(REPO / ".github/workflows/model-retrain.yml")


def test_ci_runs_on_push_and_pull_request_to_the_three_branches() -> None:
    for event in ("push", "pull_request"):
        assert CI["on"][event]["branches"] == ["master", "staging", "develop"]
    assert CI["permissions"] == {"contents": "read"}
    assert set(CI["jobs"]) == {"security", "quality", "tests", "image", "pipeline"}
    jobs = {job_id: [c for _, s in run_steps({"jobs": {job_id: job}}) for c in commands(s)]
            for job_id, job in CI["jobs"].items()}  # fmt: skip
    assert jobs == {
        "security": ["make venv", "make security"],
        "quality": ["make venv", "make lint", "make lint-deploy"],
        "tests": ["make venv", "make test"],
        "image": ["make venv", "make image", "make image-test", "make test-image"],
        "pipeline": ["make venv", "make check-pipeline"],
    }


def test_test_image_runs_the_image_tests_alone() -> None:
    """`make test-image` builds the image, then runs only the tests marked image; `make test`
    runs none of them (they need buildah and root: CI's image job)."""
    recipe = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-n",
            "-o",
            ".venv/.installed",
            "-o",
            "image",
            "test-image",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "pytest --image tests/delivery/test_image.py" in recipe
    prerequisites = re.search(r"^test-image:([^#]*)##", (REPO / "Makefile").read_text(), re.M)
    assert prerequisites is not None
    assert "image" in prerequisites.group(1).split()
    listed = {
        flag: subprocess.run(
            [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
             *flag, "tests/delivery/test_image.py"],
            cwd=REPO,
            capture_output=True,
            text=True,
        ).stdout
        for flag in ((), ("--image",))
    }  # fmt: skip
    assert "test_image_test_fails_when_the_image_runs_as_root" not in listed[()]
    assert "test_pip_settings_keep_where_packages_come_from_in_pips_order" in listed[()]
    assert "test_image_test_fails_when_the_image_runs_as_root" in listed[("--image",)]
    assert (
        "test_pip_settings_keep_where_packages_come_from_in_pips_order"
        not in (listed[("--image",)])
    )


def test_tests_job_is_the_readme_command_with_coverage() -> None:
    readme = (REPO / "README.md").read_text()
    assert "make test       # runs the whole test suite" in readme
    (step,) = [s for s in CI["jobs"]["tests"]["steps"] if s.get("run") == "make test"]
    addopts = step["env"]["PYTEST_ADDOPTS"].split()
    assert "--cov" in addopts
    assert "--cov-report=xml" in addopts
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'source = ["app", "fraud", "stages", "scripts"]' in pyproject
    import pytest_cov  # noqa: F401 - the plugin --cov needs is installed from requirements-dev


def test_tests_job_is_the_readme_command() -> None:
    """Named in COMMAND_TESTS: `make test` is the Makefile's pytest run, as CI's .ci/run."""
    assert "\tmake test" in "\t" + (REPO / ".ci/run").read_text().splitlines()[-1]
    recipe = subprocess.run(
        ["make", "--no-print-directory", "-n", "-o", ".venv/.installed", "test"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "pytest -n 2 --dist loadfile" in recipe


def test_make_lint_and_lint_deploy_pass() -> None:
    for target in ("lint", "lint-deploy"):
        proc = subprocess.run(
            ["make", "--no-print-directory", "-o", ".venv/.installed", target],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok -- validation done" in proc.stdout


def test_make_lint_deploy_fails_on_a_bad_shell_script(tmp_path: Path) -> None:
    repo = copy_repo(tmp_path / "repo")
    (repo / ".venv").symlink_to(REPO / ".venv")
    (repo / "scripts/bad.sh").write_text("#!/usr/bin/env bash\nrm -rf $1/*\n")
    proc = run(["make", "-o", ".venv/.installed", "lint-deploy"], repo, check=False)
    assert proc.returncode != 0
    assert "SC2115" in proc.stdout or "SC2086" in proc.stdout


@pytest.mark.slow
def test_make_security_runs_the_bandit_rules_and_resolves_the_audit() -> None:
    """`make security`'s own commands; pip-audit with --dry-run (no advisory service here)."""
    recipe = subprocess.run(
        ["make", "--no-print-directory", "-n", "-o", ".venv/.installed", "security"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert len(recipe) == 2
    assert "ruff check --select S" in recipe[0]
    assert "pip-audit" in recipe[1]
    assert "-r requirements.txt -r requirements-serve.txt" in recipe[1]
    # --strict: a package the advisory service cannot look up fails the audit; without it,
    # pip-audit "passed" here having audited 0 of 113 packages.
    assert "--strict" in recipe[1]
    ruff = subprocess.run(shlex.split(recipe[0]), cwd=REPO, capture_output=True, text=True)
    assert ruff.returncode == 0, ruff.stdout
    audit = subprocess.run(
        [*shlex.split(recipe[1]), "--dry-run"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert re.search(r"Dry run: would have audited \d+ packages", audit.stderr), audit.stderr


def test_check_pipeline_passes_here_and_names_what_is_stale(tmp_path: Path) -> None:
    repo = copy_repo(tmp_path / "repo")
    proc = run(["scripts/check_pipeline.sh"], repo, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "params.yaml: a fresh composition of conf/ for env=production" in proc.stdout
    assert "dvc.lock: every stage up to date" in proc.stdout

    # params.yaml composed with an override is not "a fresh composition of its env".
    run([sys.executable, "-m", "stages.compose", "env=production", "model.max_depth=5"], repo)
    proc = run(["scripts/check_pipeline.sh"], repo, check=False)
    assert proc.returncode == 1
    assert "params.yaml differs from a fresh composition of conf/ for env=production" in (
        proc.stderr
    )
    assert "max_depth: 5" in proc.stderr
    run(["git", "checkout", "--", "params.yaml"], repo)

    # Code a stage depends on changed since dvc.lock: a stage would run.
    with open(repo / "fraud/files.py", "a") as fh:
        fh.write("# changed\n")
    proc = run(["scripts/check_pipeline.sh"], repo, check=False)
    assert proc.returncode == 1
    assert "dvc.lock" in proc.stderr
    assert "generate" in proc.stderr


# --- model-retrain.yml --------------------------------------------------------------------


def test_retrain_is_dispatched_with_an_environment_and_a_release_switch() -> None:
    inputs = RETRAIN["on"]["workflow_dispatch"]["inputs"]
    assert inputs["environment"]["type"] == "choice"
    assert inputs["environment"]["options"] == ["development", "staging", "production"]
    assert inputs["create_release"]["type"] == "boolean"
    assert set(RETRAIN["on"]) == {"workflow_dispatch"}
    assert RETRAIN["permissions"] == {}
    (job,) = RETRAIN["jobs"].values()
    assert job["permissions"] == {"contents": "write"}
    assert RETRAIN["concurrency"]["group"] == "model-retrain-${{ inputs.environment }}"
    assert RETRAIN["concurrency"]["cancel-in-progress"] is False
    assert job["env"]["ENVIRONMENT"] == "${{ inputs.environment }}"


def test_retrain_checks_out_the_branch_conf_records_for_the_environment() -> None:
    (job,) = RETRAIN["jobs"].values()
    ref = job["steps"][0]["with"]["ref"]
    mapping = json.loads(re.search(r"fromJSON\('(\{.*\})'\)", ref).group(1))
    conf = {
        env: yaml.safe_load((REPO / f"conf/env/{env}.yaml").read_text())["deploy"]["branch"]
        for env in ("production", "staging", "development")
    }
    assert (
        mapping == conf == {"production": "master", "staging": "staging", "development": "develop"}
    )
    assert ref.endswith("[inputs.environment] }}")


def test_retrain_steps_gate_then_baseline_then_commit_then_release() -> None:
    (job,) = RETRAIN["jobs"].values()
    steps = [s for s in job["steps"] if "run" in s]
    assert [s["run"].split()[0:2] for s in steps] == [
        ["make", "retrain"],
        ["make", "baseline"],
        ["scripts/commit_model.sh", '"$ENVIRONMENT"'],
        ["scripts/create_release.sh", '"$ENVIRONMENT"'],
        ["make", "report"],
    ]
    assert steps[1]["if"] == "inputs.environment == 'production'"
    assert steps[2]["id"] == "commit"
    assert "inputs.create_release" in steps[3]["if"]
    assert "steps.commit.outputs.committed == 'true'" in steps[3]["if"]
    assert steps[3]["env"]["TARGET_SHA"] == "${{ steps.commit.outputs.sha }}"
    assert steps[4]["if"] == "${{ !cancelled() }}"  # a failed gate's report is kept too
    assert job["env"]["RUN_URL"].endswith("/actions/runs/${{ github.run_id }}")


#: conf/env/development.yaml of the end-to-end copy: the same keys, a tiny dataset and model.
TINY_DEVELOPMENT = """# @package _global_
base:
  env: development
deploy:
  branch: develop
data:
  n_transactions: 12000
  n_users: 600
  days: 30
model:
  n_estimators: 60
gate:
  compare_to_baseline: false
  min_metrics:
    roc_auc: 0.75
    pr_auc: 0.2
    recall_at_1pct_fpr: 0.1
"""


@pytest.mark.slow
def test_retrain_then_commit_end_to_end(tmp_path: Path) -> None:
    """The retrain job's commands, verbatim, on a tiny development environment: a passing gate
    pushes a model commit to develop; then an impossible gate makes `make retrain` fail and
    nothing is pushed."""
    repo = copy_repo(tmp_path / "work")
    (repo / ".venv").symlink_to(REPO / ".venv")
    run(["git", "checkout", "-q", "-b", "develop"], repo)
    (repo / "conf/env/development.yaml").write_text(TINY_DEVELOPMENT)
    run(["git", "commit", "-qam", "tiny development environment"], repo)
    origin = tmp_path / "origin.git"
    run(["git", "init", "--bare", "-q", str(origin)], tmp_path)
    run(["git", "remote", "add", "origin", str(origin)], repo)
    run(["git", "push", "-q", "origin", "develop"], repo)
    base = run(["git", "rev-parse", "HEAD"], repo).stdout.strip()
    make = ["make", "--no-print-directory", "-o", ".venv/.installed"]

    env = {"ENVIRONMENT": "development", "RUN_URL": "https://ci/run/1"}
    proc = shell('make -o .venv/.installed retrain ENV="$ENVIRONMENT"', repo, env)
    assert "gate:  ok" in proc.stdout
    proc = shell('scripts/commit_model.sh "$ENVIRONMENT" --run-url "$RUN_URL"', repo, env)
    assert "pushed" in proc.stdout
    head = run(["git", "rev-parse", "refs/heads/develop"], origin).stdout.strip()
    assert run(["git", "rev-parse", f"{head}^"], origin).stdout.strip() == base
    subject = run(["git", "log", "-1", "--format=%s", head], origin).stdout
    assert subject.startswith("Retrain development model: roc_auc ")
    assert "[skip ci]" in subject
    changed = set(run(["git", "show", "--name-only", "--format=", head], origin).stdout.split())
    pushed = json.loads(run(["git", "show", f"{head}:models/manifest.json"], origin).stdout)
    model_files = {f"models/{pushed[k]}" for k in ("artifact", "profile")}
    assert {*model_files, "models/manifest.json", "params.yaml", "dvc.lock"} <= changed
    assert pushed["env"] == "development"
    # A clone of what was pushed is consistent: CI's pipeline job would pass on it.
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", "-b", "develop", str(origin), str(clone)], tmp_path)
    assert run(["scripts/check_pipeline.sh"], clone, check=False).returncode == 0

    failing = "model.n_estimators=1 gate.min_metrics.roc_auc=0.999"
    proc = run([*make, "retrain", "ENV=development", f"ARGS={failing}"], repo, check=False)
    assert proc.returncode != 0
    assert "gate: FAILED" in proc.stdout + proc.stderr
    # The workflow stops at the failed step; even if the commit step ran, it refuses.
    proc = run(["scripts/commit_model.sh", "development"], repo, check=False)
    assert proc.returncode == 1
    assert run(["git", "rev-parse", "refs/heads/develop"], origin).stdout.strip() == head
    # The report step still runs: its page shows the failed gate.
    shell("make -o .venv/.installed report", repo, env)
    page = (repo / "reports/index.html").read_text(encoding="utf8")
    assert 'id="gate-verdict">gate FAILED' in page
