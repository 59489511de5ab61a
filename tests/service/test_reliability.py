"""The short form of ``make reliability`` (benchmarks/reliability.py): every promise holds.

One run of the suite (about 3 minutes on 2 shared cores) against real gunicorn servers on
127.0.0.1 serving the tiny model; each promise is then its own test, so a failure names it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks import reliability
from tests.tiny_model import TinyModel

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(serve_tiny_model: TinyModel, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("reliability") / "reliability.json"
    code = reliability.main(["--short", "--out", str(out)])
    result = json.loads(Path(out).read_text())
    result["exit_code"] = code
    return result


@pytest.mark.parametrize("number", list(reliability.PROMISES))
def test_promise_holds(run: dict[str, Any], number: int) -> None:
    row = next(row for row in run["promises"] if row["id"] == number)
    assert row["passed"], json.dumps(row, indent=1)[:6000]


def test_every_promise_was_measured_and_the_exit_code_says_so(run: dict[str, Any]) -> None:
    assert run["form"] == "short"
    assert [row["id"] for row in run["promises"]] == list(reliability.PROMISES)
    assert all(
        row["measured"] and not row["measured"].startswith("could not") for row in run["promises"]
    )
    assert run["exit_code"] == (0 if run["passed"] else 1)
    assert run["passed"] == all(row["passed"] for row in run["promises"])
