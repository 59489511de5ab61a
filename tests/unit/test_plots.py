"""Tests for fraud.model.plots: exact bin edges, calibration and histogram counts, curves."""

from __future__ import annotations

import json
import math
from itertools import pairwise

import numpy as np
import pytest

from fraud.config import parse_section
from fraud.model.metrics import CalibrationConfig, EvaluateConfig, ScoreBins
from fraud.model.plots import (
    calibration,
    calibration_edges,
    expected_calibration_error,
    log_edges,
    plot_data,
    score_histogram,
)
from fraud.runtime.scoring import ServingConfig
from tests.conftest import REPO
from tests.unit.test_metrics import BAD_INPUTS, S4, S6, Y4, Y6

# Nine scores over four bins [0, 1e-4) [1e-4, 0.05) [0.05, 0.3) [0.3, 1]:
#   bin 0: 0.0 legit, 5e-5 legit     bin 2: 0.05 fraud, 0.05 legit, 0.06 fraud
#   bin 1: 0.02 legit                bin 3: 0.5, 0.99, 1.0 fraud
EDGES = [0.0, 1e-4, 0.05, 0.3, 1.0]
Y9 = np.array([0, 0, 0, 1, 0, 1, 1, 1, 1])
S9 = np.array([0.0, 5e-5, 0.02, 0.05, 0.05, 0.06, 0.5, 0.99, 1.0])


def _all_plain_finite(rows: list[dict]) -> bool:
    for row in rows:
        for value in row.values():
            if type(value) not in (float, int, str):
                return False
            if isinstance(value, float) and not math.isfinite(value):
                return False
    return True


# --------------------------------------------------------------------------- bin edges


def test_log_edges_exact() -> None:
    assert log_edges(1e-4, 2) == [0.0, 1e-4, 3.16e-4, 1e-3, 3.16e-3, 0.01, 0.0316, 0.1, 0.316, 1.0]
    assert log_edges(1e-2, 1) == [0.0, 0.01, 0.1, 1.0]
    assert log_edges(0.1, 3) == [0.0, 0.1, 0.215, 0.464, 1.0]
    assert log_edges(0.5, 3) == [0.0, 0.5, 1.0]  # 0.5 * 10**(1/3) > 1


@pytest.mark.parametrize(
    ("args", "name"), [((0.0, 2), "min_edge"), ((1.0, 2), "min_edge"), ((1e-3, 0), "per_decade")]
)
def test_log_edges_bad_arguments_name_them(args: tuple, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        log_edges(*args)


def test_calibration_edges_exact() -> None:
    """Anchors at the threshold, threshold * sqrt(2)**±1 and the bands; the grid edge 0.1 lies
    within half a decade of 0.0707 and goes, 0.001 and 0.01 stay."""
    edges = calibration_edges(0.05, (0.3, 0.7), CalibrationConfig(1e-3, 1, 1))
    assert edges == pytest.approx(
        [0.0, 0.001, 0.01, 0.05 / math.sqrt(2), 0.05, 0.05 * math.sqrt(2), 0.3, 0.7, 1.0],
        rel=1e-12,
    )
    assert 0.05 in edges  # exactly: the bin from the threshold holds the flagged rows only


def test_calibration_edges_merge_duplicates_and_drop_anchors_outside_zero_one() -> None:
    assert calibration_edges(0.3, (0.3, 0.7), CalibrationConfig(0.01, 1, 0)) == [
        0.0,
        0.01,
        0.3,
        0.7,
        1.0,
    ]
    # a threshold of 2 has no anchor in (0, 1); the grid's 0.1 is within half a decade of 0.3
    assert calibration_edges(2.0, (0.3, 0.7), CalibrationConfig(0.01, 1, 1)) == [
        0.0,
        0.01,
        0.3,
        0.7,
        1.0,
    ]


@pytest.mark.parametrize("threshold", [0.005, 0.02, 0.0597, 0.1, 0.25, 0.5])
def test_the_configured_bins_resolve_the_threshold_region(threshold: float) -> None:
    """With conf/'s values, at least four bins lie between half and twice the threshold, and
    the risk bands are edges: what equal-count bins (nine of ten below 0.001) never gave."""
    import yaml

    conf = yaml.safe_load((REPO / "conf/evaluate/default.yaml").read_text())
    cfg = parse_section(conf, EvaluateConfig, "evaluate").calibration
    serving = yaml.safe_load((REPO / "conf/serving/default.yaml").read_text())
    bands = parse_section(serving, ServingConfig, "serving")
    edges = calibration_edges(threshold, (bands.risk_medium, bands.risk_high), cfg)
    assert threshold in edges
    assert {bands.risk_medium, bands.risk_high} <= set(edges)
    region = [e for e in edges if threshold / 2 <= e <= threshold * 2]
    assert len(region) - 1 >= 4, edges
    # no sliver: neighbouring edges differ by a factor >= 2**0.25, unless both are decision
    # edges (the threshold and a band may lie close)
    hard = {threshold, bands.risk_medium, bands.risk_high}
    assert all(b / a >= 2**0.25 or {a, b} <= hard for a, b in pairwise(edges[1:]))


@pytest.mark.parametrize(
    ("cfg", "name"),
    [
        (CalibrationConfig(0.0, 2, 2), "calibration.min_edge"),
        (CalibrationConfig(1.5, 2, 2), "calibration.min_edge"),
        (CalibrationConfig(1e-4, 0, 2), "calibration.per_decade"),
        (CalibrationConfig(1e-4, 2, -1), "calibration.threshold_steps"),
    ],
)
def test_bad_calibration_config_names_the_field(cfg: CalibrationConfig, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        calibration_edges(0.05, (0.3, 0.7), cfg)


def test_score_bins_check_names_the_section() -> None:
    with pytest.raises(ValueError, match=r"evaluate\.score_bins\.per_decade"):
        ScoreBins(1e-8, 0).check("evaluate.score_bins")


# --------------------------------------------------------------------------- counts


def test_calibration_counts_exact() -> None:
    assert calibration(Y9, S9, EDGES) == [
        {
            "bin": 0,
            "lower": 0.0,
            "upper": 0.0001,
            "mean_predicted": 2.5e-05,
            "fraction_positive": 0.0,
            "count": 2,
            "positives": 0,
        },
        {
            "bin": 1,
            "lower": 0.0001,
            "upper": 0.05,
            "mean_predicted": 0.02,
            "fraction_positive": 0.0,
            "count": 1,
            "positives": 0,
        },
        {
            "bin": 2,
            "lower": 0.05,
            "upper": 0.3,
            "mean_predicted": 0.0533333,
            "fraction_positive": 0.666667,
            "count": 3,
            "positives": 2,
        },
        {
            "bin": 3,
            "lower": 0.3,
            "upper": 1.0,
            "mean_predicted": 0.83,
            "fraction_positive": 1.0,
            "count": 3,
            "positives": 3,
        },
    ]


def test_expected_calibration_error_exact() -> None:
    # |sum s - frauds| per bin: 5e-5, 0.02, |0.16 - 2|, |2.49 - 3|; over 9 rows
    assert expected_calibration_error(Y9, S9, EDGES) == round(2.37005 / 9, 6)
    rows = calibration(Y9, S9, EDGES)  # the same as the plot's rows, count-weighted
    weighted = sum(r["count"] * abs(r["mean_predicted"] - r["fraction_positive"]) for r in rows)
    assert expected_calibration_error(Y9, S9, EDGES) == pytest.approx(weighted / 9, abs=1e-6)


def test_expected_calibration_error_of_calibrated_scores_is_small() -> None:
    rng = np.random.default_rng(0)
    s = rng.uniform(0, 1, 200_000)
    calibrated = (rng.uniform(0, 1, len(s)) < s).astype(int)
    edges = [0.0, 0.1, 0.2, 0.5, 0.8, 1.0]
    assert expected_calibration_error(calibrated, s, edges) < 0.01
    assert expected_calibration_error(calibrated, s**2, edges) > 0.1  # scores too low
    assert expected_calibration_error(np.array([0, 1]), np.array([0.5, 0.5]), EDGES) == 0.0


def test_calibration_leaves_out_empty_bins() -> None:
    rows = calibration(Y9, S9, [0.0, 1e-4, 0.01, 0.015, 0.05, 0.3, 1.0])
    assert [row["bin"] for row in rows] == [0, 3, 4, 5]  # [1e-4, 0.01), [0.01, 0.015) empty
    assert sum(row["count"] for row in rows) == len(S9)


def test_score_histogram_exact() -> None:
    assert score_histogram(Y9, S9, EDGES) == [
        {"bin": 0, "lower": 0.0, "upper": 0.0001, "legit": 2, "fraud": 0},
        {"bin": 1, "lower": 0.0001, "upper": 0.05, "legit": 1, "fraud": 0},
        {"bin": 2, "lower": 0.05, "upper": 0.3, "legit": 1, "fraud": 2},
        {"bin": 3, "lower": 0.3, "upper": 1.0, "legit": 0, "fraud": 3},
    ]
    empty_bins = score_histogram(Y9, S9, [0.0, 0.5, 0.9, 0.95, 1.0])
    assert [(r["legit"], r["fraud"]) for r in empty_bins] == [(4, 2), (0, 1), (0, 0), (0, 2)]


@pytest.mark.parametrize("edges", [[0.5, 0.2], [1.0], [0.0, 0.3, 0.3, 1.0]])
def test_bad_edges_raise(edges: list[float]) -> None:
    with pytest.raises(ValueError, match="bin edges"):
        calibration(Y9, S9, edges)
    with pytest.raises(ValueError, match="bin edges"):
        score_histogram(Y9, S9, edges)


@pytest.mark.parametrize(("y", "s", "message"), BAD_INPUTS)
def test_bad_inputs_raise_naming_the_problem(y: list, s: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plot_data(np.array(y), np.array(s), 0.5, {}, EDGES)
    with pytest.raises(ValueError, match=message):
        score_histogram(np.array(y), np.array(s), EDGES)


# --------------------------------------------------------------------------- plot_data


def test_plot_data_small_example_exact() -> None:
    plots = plot_data(Y4, S4, 0.35, {"amount": 0.2, "velocity": 0.5, "age": 0.2}, EDGES)
    assert set(plots) == {"roc", "pr", "confusion", "calibration", "feature_importance"}
    assert plots["roc"] == [
        {"fpr": 0.0, "tpr": 0.0, "threshold": 1.0},
        {"fpr": 0.0, "tpr": 0.5, "threshold": 0.8},
        {"fpr": 0.5, "tpr": 0.5, "threshold": 0.4},
        {"fpr": 0.5, "tpr": 1.0, "threshold": 0.35},
        {"fpr": 1.0, "tpr": 1.0, "threshold": 0.1},
    ]
    assert plots["pr"] == [
        {"recall": 0.5, "precision": 1.0, "threshold": 0.8},
        {"recall": 0.5, "precision": 0.5, "threshold": 0.4},
        {"recall": 1.0, "precision": 0.666667, "threshold": 0.35},
        {"recall": 1.0, "precision": 0.5, "threshold": 0.1},
    ]
    assert plots["confusion"] == [
        {"actual": "legit", "predicted": "legit", "count": 1},
        {"actual": "legit", "predicted": "fraud", "count": 1},
        {"actual": "fraud", "predicted": "legit", "count": 0},
        {"actual": "fraud", "predicted": "fraud", "count": 2},
    ]
    assert plots["feature_importance"] == [
        {"feature": "velocity", "importance": 0.5},
        {"feature": "age", "importance": 0.2},
        {"feature": "amount", "importance": 0.2},
    ]
    # bins 0 and 1 empty | 0.1 legit | 0.35 fraud, 0.4 legit, 0.8 fraud
    assert [(r["bin"], r["count"], r["positives"]) for r in plots["calibration"]] == [
        (2, 1, 0),
        (3, 3, 2),
    ]
    json.dumps(plots, allow_nan=False)


def test_plot_data_keeps_points_along_the_curve_and_its_endpoints() -> None:
    rng = np.random.default_rng(7)
    n = 5000
    y = (rng.random(n) < 0.1).astype(int)
    s = np.clip(rng.normal(0.3 + 0.4 * y, 0.2), 0, 1)
    plots = plot_data(y, s, 0.5, {"f": 1.0}, EDGES, max_points=50)
    roc, pr = plots["roc"], plots["pr"]
    assert 40 <= len(roc) <= 50
    assert 40 <= len(pr) <= 50
    assert (roc[0]["fpr"], roc[0]["tpr"]) == (0.0, 0.0)
    assert (roc[-1]["fpr"], roc[-1]["tpr"]) == (1.0, 1.0)
    assert pr[0]["threshold"] == round(float(s.max()), 6)
    assert pr[-1]["threshold"] == round(float(s.min()), 6)
    assert pr[-1]["recall"] == 1.0
    assert pr[-1]["precision"] == round(y.mean(), 6)
    # monotone along the curve; no gap along it much larger than an even share of its length
    assert all(a["fpr"] <= b["fpr"] and a["tpr"] <= b["tpr"] for a, b in pairwise(roc))
    assert all(a["threshold"] >= b["threshold"] for a, b in pairwise(roc))
    assert all(a["recall"] <= b["recall"] for a, b in pairwise(pr))
    gaps = [b["fpr"] - a["fpr"] + b["tpr"] - a["tpr"] for a, b in pairwise(roc)]
    assert max(gaps) <= 2 * 2 / 49
    assert plot_data(y, s, 0.5, {"f": 1.0}, EDGES, max_points=50) == plots  # deterministic
    assert sum(row["count"] for row in plots["confusion"]) == n
    assert sum(row["count"] for row in plots["calibration"]) == n
    for rows in plots.values():
        assert _all_plain_finite(rows)


def test_plot_data_resolves_the_knee_of_a_good_classifier() -> None:
    """A good model's ROC rises at FPR < 1%: points evenly by row would leave it nearly empty."""
    rng = np.random.default_rng(3)
    n = 100_000
    y = (rng.random(n) < 0.01).astype(int)
    s = 1 / (1 + np.exp(-(rng.normal(0, 1, n) + 6 * y - 5)))
    roc = plot_data(y, s, 0.5, {}, EDGES, max_points=200)["roc"]
    assert sum(row["fpr"] < 0.01 for row in roc) >= 40


def test_plot_data_no_downsampling_when_small_enough() -> None:
    plots = plot_data(Y6, S6, 0.5, {}, EDGES, max_points=7)
    assert len(plots["roc"]) == 7  # 6 distinct scores + the (0, 0) start
    assert len(plots["pr"]) == 6
    assert len(plot_data(Y6, S6, 0.5, {}, EDGES, max_points=2)["roc"]) == 2
    assert plots["feature_importance"] == []


def test_plot_data_scores_above_one_keep_start_threshold_above_all() -> None:
    s = np.array([0.5, 2.5, 1.5, 3.0])
    roc = plot_data(Y4, s, 2.0, {}, EDGES)["roc"]
    assert roc[0] == {"fpr": 0.0, "tpr": 0.0, "threshold": 3.0}


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"max_points": 1}, "max_points"),
        ({"threshold": float("nan")}, "threshold"),
        ({"feature_importance": {"amount": float("nan")}}, "amount"),
        ({"edges": [0.0]}, "bin edges"),
    ],
)
def test_plot_data_bad_arguments_raise_naming_them(kwargs: dict, name: str) -> None:
    args = {"threshold": 0.5, "feature_importance": {"f": 1.0}, "edges": EDGES} | kwargs
    with pytest.raises(ValueError, match=name):
        plot_data(Y4, S4, **args)
