"""Drift statistics, alert rule, scenarios, and the `python -m stages.drift` command."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fraud.data.synthetic.config import DataConfig
from fraud.data.synthetic.generate import generate_transactions
from fraud.files import dump_json
from fraud.monitoring.config import OTHER, AlertRule, DriftError, ProfileConfig, ScenarioConfig
from fraud.monitoring.drift import drift_report, exit_code
from fraud.monitoring.markdown import render_markdown
from fraud.monitoring.profile import build_profile, check_profile
from fraud.monitoring.scenarios import apply_scenario, production_config
from fraud.monitoring.stats import adjust_pvalues, psi
from tests.conftest import REPO, run
from tests.tiny_model import TinyModel

RULE = AlertRule()
DATA = DataConfig(n_transactions=40_000, n_users=2_000, days=60)
MODEL = {"sha256": "0" * 64, "kind": "test"}


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return generate_transactions(DATA, seed=11)


@pytest.fixture(scope="module")
def profile(reference: pd.DataFrame) -> dict:
    scores = np.random.default_rng(0).beta(0.5, 20, 5_000)
    return build_profile(reference, scores, ProfileConfig(), MODEL)


def numeric_profile_of(values: np.ndarray) -> dict:
    cfg = ProfileConfig(numeric=["x"], categorical=[])
    return build_profile({"x": values}, values, cfg, MODEL)


# --------------------------------------------------------------------------- statistics


def test_psi_matches_a_hand_computed_value() -> None:
    # reference a/b/c = 50/30/20, current 30/30/40; shares smoothed with 0.5 per bin:
    # r = (50.5, 30.5, 20.5) / 101.5, c = (30.5, 30.5, 40.5) / 101.5
    # PSI = (30.5-50.5)/101.5 * ln(30.5/50.5) + 0 + (40.5-20.5)/101.5 * ln(40.5/20.5)
    #     = -0.197044 * -0.504247 + 0.197044 * 0.680877 = 0.099359 + 0.134163 = 0.233522
    assert psi([50, 30, 20], [30, 30, 40], smoothing=0.5) == pytest.approx(0.233522, abs=1e-6)
    # Through a categorical profile the unseen-value bucket is a 4th bin (empty in both):
    # denominators become 102 and the shares 50.5/102 etc.; the ratios, hence the logs, stay.
    ref = {"c": ["a"] * 50 + ["b"] * 30 + ["c"] * 20}
    cur = {"c": ["a"] * 30 + ["b"] * 30 + ["c"] * 40}
    prof = build_profile(ref, [0.1, 0.2], ProfileConfig(numeric=[], categorical=["c"]), MODEL)
    rule = AlertRule(min_rows=1)
    got = drift_report(prof, cur, rule)["features"]["c"]["psi"]
    hand = -20 / 102 * math.log(30.5 / 50.5) + 20 / 102 * math.log(40.5 / 20.5)
    assert hand == pytest.approx(0.232377, abs=1e-6)
    assert got == pytest.approx(hand, abs=1e-12)


def test_holm_and_bonferroni_corrections() -> None:
    p = [0.01, 0.04, 0.03]
    # Holm: sorted 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> monotone 0.03, 0.06, 0.06
    assert adjust_pvalues(p, "holm") == pytest.approx([0.03, 0.06, 0.06])
    assert adjust_pvalues(p, "bonferroni") == pytest.approx([0.03, 0.12, 0.09])
    assert adjust_pvalues([0.9, 0.8], "bonferroni") == [1.0, 1.0]


def test_reference_against_itself_is_no_drift(reference: pd.DataFrame, profile: dict) -> None:
    report = drift_report(profile, reference, RULE)
    assert report["verdict"] == "none"
    assert exit_code(report) == 0
    for name, result in report["features"].items():
        assert result["psi"] == pytest.approx(0, abs=1e-12), name
        assert result["js_distance"] == pytest.approx(0, abs=1e-6), name
        assert result["p_value_adjusted"] > 0.5, name
    assert report["rows"] == {"reference": len(reference), "current": len(reference)}


def test_a_fresh_sample_of_the_same_distribution_is_no_drift(profile: dict) -> None:
    """Another seed, later dates: p-values may be small at this size, the verdict is none."""
    current = generate_transactions(production_config(DATA, 40_000), seed=12)
    assert current["timestamp"].min() >= pd.Timestamp("2026-03-02", tz="UTC")
    report = drift_report(profile, current, RULE)
    assert report["verdict"] == "none", report["reasons"]
    assert max(r["psi"] for r in report["features"].values()) < RULE.psi_moderate


def test_large_samples_with_trivial_shifts_are_significant_but_not_drift() -> None:
    rng = np.random.default_rng(1)
    prof = numeric_profile_of(rng.normal(0, 1, 200_000))
    report = drift_report(prof, {"x": rng.normal(0.05, 1, 200_000)}, RULE)
    result = report["features"]["x"]
    assert result["p_value_adjusted"] < 1e-6  # the KS test flags it...
    assert result["psi"] < 0.01  # ...the effect is negligible...
    assert report["verdict"] == "none"  # ...so no alert


def test_a_five_sigma_shift_is_drift() -> None:
    rng = np.random.default_rng(2)
    prof = numeric_profile_of(rng.normal(0, 1, 20_000))
    report = drift_report(prof, {"x": rng.normal(5, 1, 5_000)}, RULE)
    result = report["features"]["x"]
    assert result["severity"] == "major"
    assert result["statistic"] > 0.95  # KS statistic
    assert result["p_value_adjusted"] < 1e-12
    assert report["verdict"] == "drift"
    assert exit_code(report) == 1
    assert report["reasons"][0].startswith("x: PSI ")


def test_a_new_category_is_caught(reference: pd.DataFrame, profile: dict) -> None:
    current = reference.sample(10_000, random_state=3).copy()
    current.loc[current.index[:1_000], "merchant_category"] = "teleportation"
    report = drift_report(profile, current, RULE)
    result = report["features"]["merchant_category"]
    assert result["unseen_categories"] == {"teleportation": 1_000}
    assert result["unseen_share"] == pytest.approx(0.1)
    other = next(b for b in result["bins"] if b["bin"] == OTHER)
    assert other["reference_share"] == 0
    assert other["current_share"] == pytest.approx(0.1)
    assert result["verdict"] == "drift (major)"
    assert report["verdict"] == "drift"
    assert "teleportation (1000)" in render_markdown(report)


def test_a_tiny_sample_is_insufficient_data(reference: pd.DataFrame, profile: dict) -> None:
    shifted = reference.head(50).assign(amount=lambda d: d["amount"] * 10)
    report = drift_report(profile, shifted, RULE)
    assert report["verdict"] == "insufficient_data"
    assert exit_code(report) == 0
    assert "50 current rows < min_rows 1000" in report["reasons"][0]


def test_without_significance_a_large_psi_on_few_reference_rows_is_vetoed() -> None:
    prof = build_profile(
        {"c": ["a"] * 6 + ["b"] * 4}, [0.1], ProfileConfig(numeric=[], categorical=["c"]), MODEL
    )
    current = {"c": ["a"] * 300 + ["b"] * 700}  # PSI ~0.4, but 10 reference rows prove little
    rule = AlertRule(min_rows=100)
    result = drift_report(prof, current, rule)["features"]["c"]
    assert result["severity"] == "major"
    assert not result["significant"]
    assert result["verdict"] == "not_significant"
    relaxed = AlertRule(min_rows=100, require_significance=False)
    assert drift_report(prof, current, relaxed)["verdict"] == "drift"


def test_the_share_rule_needs_enough_moderate_features() -> None:
    rng = np.random.default_rng(4)
    cols = {f"x{i}": rng.normal(0, 1, 50_000) for i in range(4)}
    prof = build_profile(cols, [0.5], ProfileConfig(numeric=list(cols), categorical=[]), MODEL)
    rule = AlertRule(moderate_share=0.5)

    def shifted(names: tuple[str, ...]) -> dict[str, np.ndarray]:
        return {k: rng.normal(0.4 if k in names else 0, 1, 20_000) for k in cols}

    one = drift_report(prof, shifted(("x0",)), rule)
    assert 0.1 <= one["features"]["x0"]["psi"] < 0.25  # moderate, not major
    assert one["drifted_features"] == ["x0"]
    assert one["verdict"] == "none"  # 1 of 4 < 50%
    two = drift_report(prof, shifted(("x0", "x1")), rule)
    assert two["verdict"] == "drift"  # 2 of 4 >= 50%
    assert "2/4 features (50%) have PSI >= 0.1" in two["reasons"][0]


def test_model_scores_are_reported_separately(reference: pd.DataFrame, profile: dict) -> None:
    shifted_scores = np.random.default_rng(5).beta(2, 2, 5_000)
    report = drift_report(profile, reference, RULE, scores=shifted_scores)
    assert report["verdict"] == "none"
    assert report["score"]["available"] is True
    assert report["score"]["verdict"] == "drift (major)"
    assert drift_report(profile, reference, RULE)["score"] == {"available": False}


def test_missing_columns_are_all_named(reference: pd.DataFrame, profile: dict) -> None:
    with pytest.raises(DriftError, match="'location', 'device_type'"):
        drift_report(profile, reference.drop(columns=["location", "device_type"]), RULE)


def test_a_malformed_profile_is_refused(profile: dict) -> None:
    broken = json.loads(json.dumps(profile))
    del broken["features"]["amount"]["edges"]
    with pytest.raises(DriftError, match=r"'features.amount' lacks edges"):
        check_profile(broken)


def test_scenarios_shift_what_they_say(reference: pd.DataFrame) -> None:
    scenario = ScenarioConfig(
        amount_multiplier=2.0, night_share=0.3, online_share=0.5, new_category_share=0.1
    )
    out = apply_scenario(reference, scenario, np.random.default_rng(6))
    assert len(out) == len(reference)
    assert out["amount"].sum() == pytest.approx(2 * reference["amount"].sum(), rel=1e-3)
    assert (out["hour_of_day"] == out["timestamp"].dt.hour).all()
    assert out["timestamp"].is_monotonic_increasing
    night = out["hour_of_day"].isin(scenario.night_hours).mean()
    base_night = reference["hour_of_day"].isin(scenario.night_hours).mean()
    assert night == pytest.approx(base_night + 0.3 * (1 - base_night), abs=0.02)
    assert (out["transaction_type"] == "online").mean() > 0.5
    assert (out["merchant_category"] == scenario.new_category).mean() == pytest.approx(
        0.1, abs=0.01
    )
    unchanged = apply_scenario(reference, ScenarioConfig(), np.random.default_rng(6))
    pd.testing.assert_frame_equal(unchanged, reference)


# --------------------------------------------------------------------------- the command


def drift_cmd(*args: str | Path) -> tuple[int, str]:
    proc = run(["python", "-m", "stages.drift", *map(str, args)], REPO, check=False)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture
def files(tmp_path: Path, reference: pd.DataFrame, profile: dict) -> dict[str, Path]:
    (tmp_path / "profile.json").write_bytes(dump_json(profile))
    return {
        "profile": tmp_path / "profile.json",
        "json": tmp_path / "out" / "report.json",
        "md": tmp_path / "out" / "report.md",
    }


def test_command_exit_codes_and_reports(
    tmp_path: Path, reference: pd.DataFrame, files: dict[str, Path]
) -> None:
    same = tmp_path / "same.parquet"
    # Without user_id/device_id the file cannot be scored: the report has no model score.
    reference.sample(5_000, random_state=7).drop(columns=["user_id", "device_id"]).to_parquet(same)
    outs = ("--json-out", files["json"], "--md-out", files["md"])
    code, out = drift_cmd("--current", same, "--reference", files["profile"], *outs)
    assert code == 0, out
    report = json.loads(files["json"].read_text())
    assert report["verdict"] == "none"
    assert report["rows"]["current"] == 5_000
    assert report["score"]["available"] is False
    md = files["md"].read_text()
    assert "**Verdict: none**" in md
    assert "| amount | numeric |" in md
    assert "## hour_of_day" in md

    shifted = tmp_path / "shifted.csv"
    sample = reference.sample(5_000, random_state=8)
    sample.assign(amount=sample["amount"] * 3, fraud_probability=0.5).to_csv(shifted, index=False)
    code, out = drift_cmd("--current", shifted, "--reference", files["profile"], *outs)
    assert code == 1, out
    report = json.loads(files["json"].read_text())
    assert report["features"]["amount"]["verdict"] == "drift (major)"
    assert report["score"]["verdict"] == "drift (major)"  # the file's own score column

    broken = tmp_path / "broken.csv"
    sample.drop(columns=["device_type"]).to_csv(broken, index=False)
    code, out = drift_cmd("--current", broken, "--reference", files["profile"], *outs)
    assert code == 2
    assert "has no column(s) 'device_type'" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--current", "nowhere.csv"], "current data not found: nowhere.csv"),
        (["--scenario", "apocalypse"], "unknown scenario 'apocalypse'"),
        (["--current", "x.csv", "--scenario", "none"], "not allowed with argument"),
        (["--url", "ftp://example.com"], "--url must start with http"),
    ],
)
def test_command_errors_exit_2(args: list[str], message: str, files: dict[str, Path]) -> None:
    code, out = drift_cmd(*args, "--reference", files["profile"], "--json-out", files["json"])
    assert code == 2
    assert message in out


def test_command_refuses_a_profile_of_another_model(
    tmp_path: Path, files: dict[str, Path], tiny_model: TinyModel
) -> None:
    code, out = drift_cmd(
        "--params",
        tiny_model.params,
        "--scenario",
        "none",
        "--rows",
        "2000",
        "--reference",
        files["profile"],
        "--json-out",
        files["json"],
        "--md-out",
        files["md"],
    )
    assert code == 2
    assert f"reference profile was built for model '{'0' * 64}'" in out


@pytest.mark.parametrize(("scenario", "expected"), [("none", 0), ("severe", 1)])
def test_command_on_synthetic_scenarios_with_a_trained_model(
    scenario: str, expected: int, tmp_path: Path, tiny_model: TinyModel
) -> None:
    """A model and profile the stages made (its params.yaml names them) against a generated
    batch of the same world, after its training data."""
    out_json = tmp_path / "r.json"
    code, out = drift_cmd(
        "--params",
        tiny_model.params,
        "--scenario",
        scenario,
        "--rows",
        "20000",
        "--json-out",
        out_json,
        "--md-out",
        tmp_path / "r.md",
    )
    assert code == expected, out
    report = json.loads(out_json.read_text())
    assert report["rows"]["current"] == 20_000
    assert report["score"]["available"] is True
    assert f"scenario {scenario}" in report["source"]
    manifest = json.loads(tiny_model.manifest.read_text())
    assert report["model"]["sha256"] == manifest["sha256"]


def test_bad_current_data_is_reported_like_the_pipelines_schema_errors(
    tmp_path: Path, reference: pd.DataFrame, files: dict[str, Path]
) -> None:
    """Column, row count and file, every problem at once; nothing written."""
    outs = ("--reference", files["profile"], "--json-out", files["json"], "--md-out", files["md"])
    sample = reference.sample(200, random_state=9).reset_index(drop=True)
    bad = sample.assign(timestamp="2026-03-01T10:00:00Z", amount=sample["amount"].astype(object))
    bad.loc[[3, 4], "amount"] = "abc"
    bad.loc[[7], "amount"] = -2.5
    bad.loc[[9, 10, 11], "timestamp"] = "yesterday"
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    code, out = drift_cmd("--current", path, *outs)
    assert code == 2
    assert f"{path}: column 'amount': 2 rows not a finite number" in out
    assert f"{path}: column 'amount': 1 row not positive" in out
    assert f"{path}: column 'timestamp': 3 rows not a parseable time" in out
    assert not files["json"].exists()
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    code, out = drift_cmd("--current", empty, *outs)
    assert code == 2
    assert f"current data {empty}: the file is empty (no header, no rows)" in out
    header = tmp_path / "header.csv"
    sample.head(0).to_csv(header, index=False)
    code, out = drift_cmd("--current", header, *outs)
    assert code == 2
    assert f"{header}: the table has no rows" in out
    hours = tmp_path / "hours.csv"
    sample.drop(columns=["timestamp"]).assign(hour_of_day=25).to_csv(hours, index=False)
    code, out = drift_cmd("--current", hours, *outs)
    assert code == 2
    assert f"{hours}: column 'hour_of_day': 200 rows not an integer 0-23" in out


@pytest.mark.parametrize(
    ("lines", "want"),
    [
        ([b'{"a": 1}\n', b'{"b": 2}\n'], ([{"a": 1}, {"b": 2}], 0)),
        ([b'{"a": 1}\n', b'{"b": 2}, {"c": 3}\n', b"[1]\n", b"\n"], ([{"a": 1}], 3)),
        ([b'{"a": 1}\n', b'{"b": 2'], ([{"a": 1}], 1)),  # a writer mid-flush
        ([b"not json\n", b'{"a": 1}\n'], ([{"a": 1}], 1)),
        ([], ([], 0)),
    ],
)
def test_log_lines_parse_whole_objects_only(lines: list[bytes], want: tuple) -> None:
    from fraud.monitoring.auditlog import parse_log_lines

    assert parse_log_lines(lines) == want
