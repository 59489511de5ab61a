"""The HTML report built from small hand-made inputs: sections, values, escaping, no network."""

from __future__ import annotations

import re
from typing import Any

import pytest

from fraud.monitoring import figures
from fraud.monitoring.report import ReportData, card_precision_k, render_report

METRICS = {
    "roc_auc": 0.95,
    "pr_auc": 0.7,
    "recall_at_1pct_fpr": 0.6,
    "precision": 0.5,
    "recall": 0.8,
    "f1": 0.615385,
    "card_precision_at_5": 0.4,
    "expected_cost_per_txn": 0.03,
    "threshold": 0.05,
    "fraud_rate": 0.1,
    "n": 100,
    "positives": 10,
    "tp": 8,
    "fp": 8,
    "fn": 2,
    "tn": 82,
    "recall_by_pattern": {"card_testing": 1.0, "night_time": 0.5},
}
BASELINE = {**METRICS, "roc_auc": 0.96, "pr_auc": 0.65, "recall_by_pattern": {}}
GATE = {
    "passed": True,
    "checks": [
        {"metric": "roc_auc", "kind": "minimum", "value": 0.95, "bound": 0.9, "passed": True},
        {
            "metric": "roc_auc",
            "kind": "regression",
            "value": 0.95,
            "bound": 0.95,
            "baseline": 0.96,
            "tolerance": 0.01,
            "passed": True,
        },
    ],
}
PLOTS: dict[str, list[dict[str, Any]]] = {
    "roc": [
        {"fpr": 0.0, "tpr": 0.0, "threshold": 1.0},
        {"fpr": 0.01, "tpr": 0.6, "threshold": 0.3},
        {"fpr": 0.0889, "tpr": 0.8, "threshold": 0.05},
        {"fpr": 1.0, "tpr": 1.0, "threshold": 0.0},
    ],
    "pr": [
        {"recall": 0.6, "precision": 0.9, "threshold": 0.3},
        {"recall": 0.8, "precision": 0.5, "threshold": 0.05},
        {"recall": 1.0, "precision": 0.1, "threshold": 0.0},
    ],
    "calibration": [
        {
            "bin": 0,
            "lower": 0.0,
            "upper": 0.05,
            "mean_predicted": 0.01,
            "fraction_positive": 0.0238,
            "count": 84,
            "positives": 2,
        },
        {
            "bin": 1,
            "lower": 0.05,
            "upper": 0.3,
            "mean_predicted": 0.12,
            "fraction_positive": 0.0,
            "count": 6,
            "positives": 0,
        },
        {
            "bin": 2,
            "lower": 0.3,
            "upper": 1.0,
            "mean_predicted": 0.8,
            "fraction_positive": 0.8,
            "count": 10,
            "positives": 8,
        },
    ],
    "feature_importance": [
        {"feature": "amount", "importance": 0.7},
        {"feature": "hour<sin>", "importance": 0.3},
    ],
    "card_precision": [
        {"day": "2026-04-01", "card_precision": 0.4, "cards": 30},
        {"day": "2026-04-02", "card_precision": 0.4, "cards": 31},
    ],
    "confusion": [],
    "score_histogram": [
        {"bin": 0, "lower": 0.0, "upper": 0.01, "legit": 50, "fraud": 0},
        {"bin": 1, "lower": 0.01, "upper": 0.1, "legit": 35, "fraud": 2},
        {"bin": 2, "lower": 0.1, "upper": 1.0, "legit": 5, "fraud": 8},
    ],
}
DRIFT = {
    "verdict": "drift",
    "reasons": ["amount: PSI 0.30 >= 0.25"],
    "rows": {"current": 2000, "reference": 7000},
    "source": "synthetic <batch>",
    "drifted_features": ["amount"],
    "features": {
        "amount": {
            "kind": "numeric",
            "psi": 0.3,
            "js_distance": 0.2,
            "test": "ks",
            "p_value_adjusted": 0.0,
            "verdict": "drift (major)",
            "drifted": True,
            "mean": {"reference": 50.0, "current": 80.0},
            "bins": [
                {"bin": "[-inf, 20)", "reference_share": 0.5, "current_share": 0.2},
                {"bin": "[20, inf)", "reference_share": 0.5, "current_share": 0.8},
            ],
        },
        "hour_of_day": {
            "kind": "categorical",
            "psi": 0.01,
            "verdict": "none",
            "drifted": False,
            "unseen_categories": {},
            "bins": [
                {"bin": "10", "reference_share": 0.5, "current_share": 0.5},
                {"bin": "9", "reference_share": 0.5, "current_share": 0.5},
                {"bin": "__other__", "reference_share": 0.0, "current_share": 0.0},
            ],
        },
    },
    "score": {"available": False},
}


def data(**changes: Any) -> ReportData:
    base = {
        "metrics": METRICS,
        "gate": GATE,
        "baseline": BASELINE,
        "plots": PLOTS,
        "bands": (0.3, 0.7),
        "served": {"kind": "xgboost", "env": "production", "sha256": "ab" * 32},
        "drift": DRIFT,
        "sources": {"drift": "reports/drift/drift_report.json"},
    }
    return ReportData(**(base | changes))


@pytest.fixture(scope="module")
def page() -> str:
    """The page of the default inputs (rendering takes about a second)."""
    return render_report(data())


def test_every_section_and_figure_is_there(page: str) -> None:
    for element in (
        'id="gate-verdict"',
        'id="gate-checks"',
        'id="metrics-table"',
        'id="confusion"',
        'id="recall-by-pattern"',
        'id="fig-roc"',
        'id="fig-pr"',
        'id="fig-scores"',
        'id="fig-calibration"',
        'id="fig-card-precision"',
        'id="fig-importance"',
        'id="calibration-table"',
        'id="drift-verdict"',
        'id="drift-table"',
        'id="fig-drift-amount"',
        'id="fig-drift-hour-of-day"',
    ):
        assert element in page, element
    assert page.count("<svg") == 8  # six figures, two drift histograms
    assert "gate PASSED" in page
    assert "drift: drift" in page


def test_values_are_shown_exactly(page: str) -> None:
    # metrics against the baseline, with the change
    assert '<td>roc_auc</td><td>0.9500</td><td>0.9600</td><td class="fail">-0.0100</td>' in page
    assert '<td>pr_auc</td><td>0.7000</td><td>0.6500</td><td class="ok">+0.0500</td>' in page
    assert "<td>card_precision_at_5</td><td>0.4000</td><td>0.4000</td><td>+0.0000</td>" in page
    # the confusion matrix and the calibration bins
    assert "<td>legit</td><td>82</td><td>8</td>" in page
    assert "<td>fraud</td><td>2</td><td>8</td><td>80.00%</td>" in page
    assert "<td>[0.050000, 0.300000)</td><td>6</td><td>0</td>" in page
    # the drift table names the verdict per feature; the caption gives the means
    assert '<td class="fail">drift (major)</td>' in page
    assert "mean 50.0000 in training, 80.0000 now" in page


def test_text_is_escaped_and_nothing_is_fetched(page: str) -> None:
    assert "synthetic &lt;batch&gt;" in page
    assert "hour&lt;sin&gt;" in page  # a feature name inside the SVG
    assert "<batch>" not in page
    assert not re.search(r"<(script|link|img|iframe)\b", page)
    links = re.findall(r'(?:href|src)="([^"]*)"', page)
    assert links
    assert all(link.startswith("#") for link in links), {x for x in links if x[:1] != "#"}
    assert "url(http" not in page


def test_a_failed_gate_and_an_empty_baseline_say_so() -> None:
    failed = {**GATE, "passed": False, "checks": [{**GATE["checks"][0], "passed": False}]}
    page = render_report(data(gate=failed, baseline=None))
    assert "gate FAILED" in page
    assert '<td class="fail">FAILED</td>' in page
    assert "models/ still serves an earlier model." in page
    assert "The baseline holds no metrics yet." in page


def test_without_a_drift_report_the_page_says_how_to_make_one() -> None:
    page = render_report(data(drift=None))
    assert 'id="drift-missing"' in page
    assert "<code>make drift</code>" in page
    assert "fig-drift" not in page


def test_the_same_input_gives_the_same_page(page: str) -> None:
    assert render_report(data()) == page


def test_card_precision_k_is_read_from_the_metric_name() -> None:
    assert card_precision_k(METRICS) == 5
    assert card_precision_k({"roc_auc": 0.9}) is None


def test_drift_bins_put_integer_categories_in_numeric_order() -> None:
    bins = figures._drift_bins(DRIFT["features"]["hour_of_day"]["bins"])
    assert [b[0] for b in bins] == ["9", "10", "__other__"]
    numeric = figures._drift_bins([{"bin": "[2.063081e-06, 5.000131e-06)", **SHARES}])
    assert numeric[0][0] == "[2.06e-06, 5e-06)"


SHARES = {"reference_share": 0.5, "current_share": 0.5}


@pytest.mark.parametrize(("positives", "count"), [(0, 10), (3, 10), (10, 10)])
def test_wilson_interval_contains_the_fraction(positives: int, count: int) -> None:
    lo, hi = figures._wilson(positives, count)
    assert 0.0 <= lo <= positives / count <= hi <= 1.0
    assert hi - lo > 0
