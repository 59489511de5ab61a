"""Tests for fraud.model.metrics and fraud.model.gate: exact values on tiny hand-made arrays."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from fraud.config import ConfigError, parse_section
from fraud.model.gate import GateConfig, GateResult, gate
from fraud.model.metrics import (
    ThresholdConfig,
    card_precision_at_k,
    choose_threshold,
    evaluate,
    recall_by_group,
)

# Six transactions, by descending score: fraud, fraud, legit, fraud, legit, legit.
Y6 = np.array([1, 1, 0, 1, 0, 0])
S6 = np.array([0.9, 0.8, 0.7, 0.6, 0.4, 0.2])
# Per candidate threshold:   0.9  0.8  0.7  0.6  0.4  0.2
#   TP                        1    2    2    3    3    3
#   FP                        0    0    1    1    2    3
#   precision                 1    1   2/3  3/4  3/5  1/2


def cost_cfg(fn: float, fp: float) -> ThresholdConfig:
    return ThresholdConfig(rule="cost", cost_false_negative=fn, cost_false_positive=fp)


def precision_cfg(target: float) -> ThresholdConfig:
    return ThresholdConfig(rule="precision", target_precision=target)


# --------------------------------------------------------------------------- choose_threshold


@pytest.mark.parametrize(
    ("fn_cost", "fp_cost", "expected"),
    [
        (10.0, 1.0, 0.6),  # costs 20, 10, 11, 1, 2, 3
        (1.0, 10.0, 0.8),  # costs 2, 1, 11, 10, 20, 30
        (1.0, 100.0, 0.8),  # costs 2, 1, 101, 100, 200, 300
        (100.0, 0.5, 0.6),  # costs 200, 100, 100.5, 0.5, 1, 1.5
    ],
)
def test_choose_threshold_cost_minimum(fn_cost: float, fp_cost: float, expected: float) -> None:
    threshold = choose_threshold(Y6, S6, cost_cfg(fn_cost, fp_cost))
    assert threshold == expected
    assert type(threshold) is float


def test_choose_threshold_cost_tie_takes_highest_threshold() -> None:
    # equal costs: 2, 1, 2, 1, 2, 3 -> 0.8 and 0.6 tie at 1; the higher one wins
    assert choose_threshold(Y6, S6, cost_cfg(1.0, 1.0)) == 0.8


def test_choose_threshold_cost_tie_with_inexact_float_costs() -> None:
    # by descending score: fraud, legit, fraud, fraud, fraud; cost 0.1 * FN + 0.3 * FP
    #   0.9: FN 3, FP 0 -> 0.1 * 3 = 0.30000000000000004
    #   0.8: 0.6   0.7: 0.5   0.6: 0.4
    #   0.5: FN 0, FP 1 -> 0.3 * 1 = 0.3   (equal in exact arithmetic: a tie -> 0.9)
    assert 0.1 * 3 != 0.3 * 1
    y = np.array([1, 0, 1, 1, 1])
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    assert choose_threshold(y, s, cost_cfg(0.1, 0.3)) == 0.9
    # a genuinely cheaper lower threshold still wins
    assert choose_threshold(y, s, cost_cfg(0.1, 0.29)) == 0.5


def test_choose_threshold_tied_scores_are_one_candidate() -> None:
    # scores 0.5 (fraud) and 0.5 (legit) cannot be split: threshold 0.5 flags both
    y = np.array([1, 0, 1, 0])
    s = np.array([0.5, 0.5, 0.2, 0.1])
    # 0.5: FN 1, FP 1 -> 11 ; 0.2: FN 0, FP 1 -> 1 ; 0.1: FN 0, FP 2 -> 2
    assert choose_threshold(y, s, cost_cfg(10.0, 1.0)) == 0.2
    # precision at 0.5 is 1/2, at 0.2 is 2/3
    assert choose_threshold(y, s, precision_cfg(0.6)) == 0.2


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (0.5, 0.2),  # every threshold reaches 1/2; the lowest is 0.2
        (0.7, 0.6),  # 3/4 at 0.6 is the lowest reaching 0.7
        (0.75, 0.6),  # exactly 3/4 counts as reaching it
        (0.76, 0.8),  # 0.6 falls short; the next lower reaching it is 0.8
        (0.99, 0.8),  # precision 1 at 0.9 and 0.8: the lowest is 0.8
    ],
)
def test_choose_threshold_precision(target: float, expected: float) -> None:
    assert choose_threshold(Y6, S6, precision_cfg(target)) == expected


def test_choose_threshold_precision_unreachable_takes_max_precision() -> None:
    # by descending score: legit, fraud, fraud, legit, fraud, fraud
    # precision per threshold: 0, 1/2, 2/3, 1/2, 3/5, 2/3 -> max 2/3 at 0.7 and 0.2 (lowest)
    y = np.array([0, 1, 1, 0, 1, 1])
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.4, 0.2])
    assert choose_threshold(y, s, precision_cfg(0.9)) == 0.2
    y = np.array([0, 1, 1, 0])
    s = np.array([0.9, 0.8, 0.7, 0.6])
    assert choose_threshold(y, s, precision_cfg(0.9)) == 0.7


def test_choose_threshold_accepts_bool_float_labels_and_lists() -> None:
    cfg = cost_cfg(10.0, 1.0)
    assert choose_threshold(Y6.astype(bool), S6, cfg) == 0.6
    assert choose_threshold(Y6.astype(float), S6, cfg) == 0.6
    assert choose_threshold(Y6.tolist(), S6.tolist(), cfg) == 0.6  # type: ignore[arg-type]


def test_choose_threshold_order_of_rows_does_not_matter() -> None:
    perm = np.random.default_rng(0).permutation(len(Y6))
    assert choose_threshold(Y6[perm], S6[perm], cost_cfg(10.0, 1.0)) == 0.6


BAD_INPUTS = [
    pytest.param([1, 0, 1], [0.1, 0.2], "same length", id="length"),
    pytest.param([], [], "empty", id="empty"),
    pytest.param([1, 0, 2], [0.1, 0.2, 0.3], "0/1", id="label-2"),
    pytest.param([1, 0, -1], [0.1, 0.2, 0.3], "0/1", id="label-negative"),
    pytest.param([1.0, 0.0, 0.5], [0.1, 0.2, 0.3], "0/1", id="label-fraction"),
    pytest.param([1.0, 0.0, np.nan], [0.1, 0.2, 0.3], "0/1", id="label-nan"),
    pytest.param(["1", "0"], [0.1, 0.2], "0/1", id="label-string"),
    pytest.param([1, 0, 1], [0.1, np.nan, 0.3], "finite", id="score-nan"),
    pytest.param([1, 0, 1], [0.1, np.inf, 0.3], "finite", id="score-inf"),
    pytest.param([1, 0, 1], ["a", "b", "c"], "numeric", id="score-text"),
    pytest.param([0, 0, 0], [0.1, 0.2, 0.3], "both classes", id="only-legit"),
    pytest.param([1, 1], [0.1, 0.2], "both classes", id="only-fraud"),
    pytest.param([[1, 0]], [[0.1, 0.2]], "y_true must be 1-D", id="labels-2d"),
    pytest.param([1, 0], [[0.1], [0.2]], "scores must be 1-D", id="scores-2d"),
]


@pytest.mark.parametrize(("y", "s", "message"), BAD_INPUTS)
def test_bad_inputs_raise_naming_the_problem(y: list, s: list, message: str) -> None:
    cfg = ThresholdConfig()
    with pytest.raises(ValueError, match=message):
        choose_threshold(np.array(y), np.array(s), cfg)
    with pytest.raises(ValueError, match=message):
        evaluate(np.array(y), np.array(s), 0.5, cfg)


@pytest.mark.parametrize(
    ("changes", "name"),
    [
        ({"rule": "f1"}, "rule"),
        ({"rule": "Cost"}, "rule"),
        ({"cost_false_negative": 0.0}, "cost_false_negative"),
        ({"cost_false_negative": float("inf")}, "cost_false_negative"),
        ({"cost_false_positive": -1.0}, "cost_false_positive"),
        ({"cost_false_positive": float("nan")}, "cost_false_positive"),
        ({"target_precision": 0.0}, "target_precision"),
        ({"target_precision": 1.0}, "target_precision"),
        ({"target_precision": float("nan")}, "target_precision"),
    ],
)
def test_bad_threshold_config_raises_naming_the_field(changes: dict, name: str) -> None:
    cfg = ThresholdConfig(**changes)
    with pytest.raises(ValueError, match=name):
        choose_threshold(Y6, S6, cfg)
    with pytest.raises(ValueError, match=name):
        evaluate(Y6, S6, 0.5, cfg)
    with pytest.raises(ValueError, match=name):
        cfg.check()


def test_configs_parse_as_structured_configs() -> None:
    assert parse_section({}, ThresholdConfig, "threshold") == ThresholdConfig()
    assert parse_section({}, GateConfig, "gate") == GateConfig()
    cfg = parse_section(
        {"min_metrics": {"roc_auc": 0.8}, "compare_to_baseline": False}, GateConfig, "gate"
    )
    assert cfg.min_metrics["roc_auc"] == 0.8
    assert cfg.compare_to_baseline is False
    with pytest.raises(ConfigError, match="cost_false_negative"):
        parse_section({"cost_false_negative": "lots"}, ThresholdConfig, "threshold")


# --------------------------------------------------------------------------- evaluate

# sklearn's documentation example: ROC AUC 0.75, average precision 0.8333...
Y4 = np.array([0, 0, 1, 1])
S4 = np.array([0.1, 0.4, 0.35, 0.8])


def test_evaluate_small_example_exact() -> None:
    m = evaluate(Y4, S4, 0.35, cost_cfg(10.0, 1.0))
    # flagged: 0.4 (legit), 0.35 (fraud), 0.8 (fraud) -> TP 2, FP 1, FN 0, TN 1
    assert m == {
        "roc_auc": 0.75,
        "pr_auc": 0.833333,
        "precision": 0.666667,
        "recall": 1.0,
        "f1": 0.8,
        "recall_at_1pct_fpr": 0.5,  # only FP = 0 is within 1% of 2 negatives: 0.8 -> TPR 1/2
        "expected_cost_per_txn": 0.25,  # (10 * 0 + 1 * 1) / 4
        "threshold": 0.35,
        "n": 4,
        "positives": 2,
        "tp": 2,
        "fp": 1,
        "fn": 0,
        "tn": 1,
        "fraud_rate": 0.5,
    }
    for key in ("n", "positives", "tp", "fp", "fn", "tn"):
        assert type(m[key]) is int
    for key in ("roc_auc", "pr_auc", "precision", "recall", "f1", "threshold"):
        assert type(m[key]) is float
    json.dumps(m, allow_nan=False)


def test_evaluate_nothing_flagged_has_zero_precision_and_f1() -> None:
    m = evaluate(Y4, S4, 0.9, cost_cfg(10.0, 1.0))
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (0, 0, 2, 2)
    assert m["precision"] == 0.0
    assert m["recall"] == 0.0
    assert m["f1"] == 0.0
    assert m["expected_cost_per_txn"] == 5.0  # 10 * 2 / 4


def test_evaluate_recall_at_1pct_fpr_and_cost() -> None:
    # 200 legit, 4 fraud. FPR <= 1% allows at most 2 false positives.
    # Top of the ranking: legit 0.99, fraud 0.95, legit 0.92, fraud 0.9, legit 0.789, ...
    legit = np.r_[0.99, 0.92, 0.001 + 0.004 * np.arange(198)]  # 0.001 ... 0.789
    fraud = np.array([0.95, 0.9, 0.5, 0.05])
    y = np.r_[np.zeros(200, dtype=int), np.ones(4, dtype=int)]
    s = np.r_[legit, fraud]
    m = evaluate(y, s, 0.5, cost_cfg(10.0, 1.0))
    assert m["recall_at_1pct_fpr"] == 0.5  # 2 of 4 fraud caught before the 3rd alarm
    # at 0.5: fraud 0.95, 0.9, 0.5 flagged; legit 0.99, 0.92 and 0.501 ... 0.789 (73) flagged
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (3, 75, 1, 125)
    assert m["precision"] == round(3 / 78, 6)
    assert m["recall"] == 0.75
    assert m["f1"] == round(2 * (3 / 78) * 0.75 / (3 / 78 + 0.75), 6)
    assert m["expected_cost_per_txn"] == round((10 * 1 + 1 * 75) / 204, 6)
    assert m["fraud_rate"] == round(4 / 204, 6)
    assert m["roc_auc"] == round(roc_auc_score(y, s), 6)
    assert m["pr_auc"] == round(average_precision_score(y, s), 6)
    # one more legit above 0.9 pushes the second fraud past the 1% budget
    s2 = s.copy()
    s2[2] = 0.999
    s2[3] = 0.998
    assert evaluate(y, s2, 0.5, cost_cfg(10.0, 1.0))["recall_at_1pct_fpr"] == 0.0


def test_evaluate_recall_at_1pct_fpr_exact_boundary_is_included() -> None:
    # 100 legit: exactly one false positive is FPR 1% and counts
    y = np.r_[np.zeros(100, dtype=int), 1, 1]
    s = np.r_[0.97, np.linspace(0.0, 0.5, 99), 0.99, 0.96]
    assert evaluate(y, s, 0.5, ThresholdConfig())["recall_at_1pct_fpr"] == 1.0


@pytest.mark.parametrize("threshold", [float("nan"), float("inf")])
def test_evaluate_rejects_non_finite_threshold(threshold: float) -> None:
    with pytest.raises(ValueError, match="threshold"):
        evaluate(Y4, S4, threshold, ThresholdConfig())


# --------------------------------------------------------------------------- gate

SPIKE_OK = {"rows": 40, "violations": 0, "violation_rate": 0.0}
GOOD = {
    "roc_auc": 0.95,
    "pr_auc": 0.70,
    "recall_at_1pct_fpr": 0.60,
    "f1": 0.5,
    "behaviour": {"amount_spike": SPIKE_OK},
}


def test_gate_passes_without_baseline() -> None:
    result = gate(GOOD, GateConfig(), None)
    assert result.passed
    assert result.failures() == []
    assert [(c["metric"], c["kind"]) for c in result.checks] == [
        ("roc_auc", "minimum"),
        ("pr_auc", "minimum"),
        ("recall_at_1pct_fpr", "minimum"),
        ("behaviour.amount_spike", "behaviour"),
    ]
    assert result.checks[0] == {
        "metric": "roc_auc",
        "kind": "minimum",
        "value": 0.95,
        "bound": 0.9,
        "passed": True,
    }
    json.dumps(result.checks, allow_nan=False)


def test_gate_fails_minimum_with_exact_text() -> None:
    result = gate(dict(GOOD, pr_auc=0.4123), GateConfig(), None)
    assert not result.passed
    assert result.failures() == ["pr_auc = 0.4123 < minimum 0.5000"]
    assert [c["passed"] for c in result.checks] == [True, False, True, True]


def test_gate_minimum_is_inclusive() -> None:
    assert gate(dict(GOOD, pr_auc=0.5), GateConfig(), None).passed


def test_gate_regression_against_baseline() -> None:
    baseline = {"roc_auc": 0.97, "pr_auc": 0.72}
    result = gate(GOOD, GateConfig(), baseline)
    regression = [c for c in result.checks if c["kind"] == "regression"]
    assert regression == [
        {
            "metric": "roc_auc",
            "kind": "regression",
            "value": 0.95,
            "bound": 0.96,
            "passed": False,
            "baseline": 0.97,
            "tolerance": 0.01,
        },
        {
            "metric": "pr_auc",
            "kind": "regression",
            "value": 0.7,
            "bound": 0.69,
            "passed": True,
            "baseline": 0.72,
            "tolerance": 0.03,
        },
    ]
    assert not result.passed
    assert result.failures() == [
        "roc_auc = 0.9500 regressed below baseline 0.9700 - tolerance 0.0100 = 0.9600"
    ]


def test_gate_regression_boundary_is_inclusive_despite_float_rounding() -> None:
    # 0.97 - 0.01 is not exactly 0.96 in binary floating point
    assert gate(dict(GOOD, roc_auc=0.96), GateConfig(), {"roc_auc": 0.97}).passed


def test_gate_lists_every_failure() -> None:
    metrics = dict(GOOD, roc_auc=0.85, pr_auc=0.4123, recall_at_1pct_fpr=0.6)
    result = gate(metrics, GateConfig(), {"roc_auc": 0.97, "pr_auc": 0.45})
    assert result.failures() == [
        "roc_auc = 0.8500 < minimum 0.9000",
        "pr_auc = 0.4123 < minimum 0.5000",
        "roc_auc = 0.8500 regressed below baseline 0.9700 - tolerance 0.0100 = 0.9600",
        "pr_auc = 0.4123 regressed below baseline 0.4500 - tolerance 0.0300 = 0.4200",
    ]


def test_gate_compare_to_baseline_false_ignores_baseline() -> None:
    cfg = GateConfig(compare_to_baseline=False)
    result = gate(GOOD, cfg, {"roc_auc": 0.999, "pr_auc": 0.999})
    assert result.passed
    assert {c["kind"] for c in result.checks} == {"minimum", "behaviour"}


def test_gate_skips_metrics_the_baseline_lacks() -> None:
    result = gate(GOOD, GateConfig(), {"pr_auc": 0.70})
    assert [(c["metric"], c["kind"]) for c in result.checks][3:-1] == [("pr_auc", "regression")]
    assert result.passed


def test_gate_with_no_checks_passes() -> None:
    cfg = GateConfig(min_metrics={}, max_regression={}, max_violation_rate={})
    assert gate({}, cfg, {"roc_auc": 1.0}) == GateResult(passed=True, checks=[])


def test_gate_bounds_the_behavioural_checks() -> None:
    broken = {"rows": 40, "violations": 3, "violation_rate": 0.075}
    result = gate(dict(GOOD, behaviour={"amount_spike": broken}), GateConfig(), None)
    assert not result.passed
    assert result.failures() == [
        "behaviour.amount_spike: 3 of 40 rows broke it, 7.50% > maximum 0.00%"
    ]
    lenient = GateConfig(max_violation_rate={"amount_spike": 0.1})
    assert gate(dict(GOOD, behaviour={"amount_spike": broken}), lenient, None).passed
    skipped = {"skipped": "the model has no user_avg_amount feature"}
    row = gate(dict(GOOD, behaviour={"amount_spike": skipped}), GateConfig(), None).checks[-1]
    assert row["passed"]
    assert row["skipped"] == skipped["skipped"]
    with pytest.raises(ValueError, match="evaluate did not run"):
        gate({k: v for k, v in GOOD.items() if k != "behaviour"}, GateConfig(), None)
    with pytest.raises(ValueError, match="behavioural checks are amount_spike"):
        GateConfig(max_violation_rate={"price_drop": 0.0}).check()
    with pytest.raises(ValueError, match=r"max_violation_rate\.amount_spike must be in \[0, 1\]"):
        GateConfig(max_violation_rate={"amount_spike": 1.5}).check()


@pytest.mark.parametrize(
    ("cfg", "name"),
    [
        (GateConfig(min_metrics={"recall_at_5pct_fpr": 0.5}), "recall_at_5pct_fpr"),
        (GateConfig(max_regression={"brier": 0.01}), "brier"),
        # a typo fails even when the baseline comparison is switched off
        (GateConfig(max_regression={"pr_acu": 0.01}, compare_to_baseline=False), "pr_acu"),
    ],
)
def test_gate_metric_missing_from_metrics_raises_naming_it(cfg: GateConfig, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        gate(GOOD, cfg, {"roc_auc": 0.9})


@pytest.mark.parametrize(
    ("metrics", "baseline", "cfg", "name"),
    [
        (GOOD, {"roc_auc": "high"}, GateConfig(), "roc_auc"),
        (GOOD, {"pr_auc": float("nan")}, GateConfig(), "pr_auc"),
        (dict(GOOD, roc_auc=None), None, GateConfig(), "roc_auc"),
        (GOOD, None, GateConfig(max_regression={"roc_auc": -0.01}), "max_regression.roc_auc"),
        (GOOD, None, GateConfig(min_metrics={"f1": float("inf")}), "min_metrics.f1"),
    ],
)
def test_gate_bad_values_raise_naming_them(
    metrics: dict, baseline: dict | None, cfg: GateConfig, name: str
) -> None:
    with pytest.raises(ValueError, match=name):
        gate(metrics, cfg, baseline)


def test_gate_on_evaluate_output() -> None:
    m = evaluate(Y4, S4, 0.35, ThresholdConfig())
    result = gate(m, GateConfig(max_violation_rate={}), None)
    assert not result.passed
    # recall_at_1pct_fpr is exactly at its minimum 0.5 and passes
    assert result.failures() == ["roc_auc = 0.7500 < minimum 0.9000"]


# --- Card Precision@k ------------------------------------------------------------------------


def test_card_precision_counts_cards_per_day_by_their_highest_score() -> None:
    # Day 1: card a (max 0.9, one fraud), b (0.8, legit), c (0.2, fraud). Top 2: a, b -> 1/2.
    # Day 2: card b (0.95, fraud), a (0.1). Top 2: b, a -> 1/2 (a's fraud on day 1 is not day 2).
    cards = np.array(["a", "a", "b", "c", "b", "a"])
    days = np.array(["d1", "d1", "d1", "d1", "d2", "d2"])
    y = np.array([0, 1, 0, 1, 1, 0])
    s = np.array([0.9, 0.3, 0.8, 0.2, 0.95, 0.1])
    mean, per_day = card_precision_at_k(cards, days, y, s, k=2)
    assert per_day == [
        {"day": "d1", "card_precision": 0.5, "cards": 3},
        {"day": "d2", "card_precision": 0.5, "cards": 2},
    ]
    assert mean == 0.5
    # k = 1: day 1 picks a (fraud on day 1) -> 1, day 2 picks b (fraud) -> 1
    assert card_precision_at_k(cards, days, y, s, k=1)[0] == 1.0
    # k beyond the cards of a day divides by k, as the Fraud Detection Handbook does
    assert card_precision_at_k(cards, days, y, s, k=4)[1][1]["card_precision"] == 0.25


def test_card_precision_breaks_score_ties_by_card_and_refuses_bad_input() -> None:
    cards, days = np.array(["b", "a"]), np.array(["d", "d"])
    assert card_precision_at_k(cards, days, np.array([1, 0]), np.array([0.5, 0.5]), 1)[0] == 0.0
    assert card_precision_at_k(cards, days, np.array([0, 1]), np.array([0.5, 0.5]), 1)[0] == 1.0
    with pytest.raises(ValueError, match="k must be >= 1"):
        card_precision_at_k(cards, days, np.array([0, 1]), np.array([0.5, 0.5]), 0)
    with pytest.raises(ValueError, match="cards"):
        card_precision_at_k(cards[:1], days, np.array([0, 1]), np.array([0.5, 0.5]), 1)


def test_the_gate_can_bound_card_precision() -> None:
    cfg = parse_section(
        {
            "min_metrics": {"card_precision_at_100": 0.2},
            "max_regression": {},
            "max_violation_rate": {},
        },
        GateConfig,
        "gate",
    )
    cfg.check()
    assert gate({"card_precision_at_100": 0.1}, cfg, None).passed is False
    assert gate({"card_precision_at_100": 0.3}, cfg, None).passed is True
    with pytest.raises(ValueError, match="card_precision_at_<k>"):
        GateConfig(min_metrics={"card_precision_at_x": 0.1}).check()


def test_recall_by_group_counts_each_patterns_caught_frauds() -> None:
    groups = np.array(["", "ato", "ato", "ato", "probe", "", "probe"])
    y = np.array([0, 1, 1, 1, 1, 0, 0])  # the last "probe" row is legitimate: not counted
    s = np.array([0.9, 0.8, 0.2, 0.6, 0.1, 0.0, 0.99])
    assert recall_by_group(groups, y, s, threshold=0.5) == {"ato": 0.666667, "probe": 0.0}
    with pytest.raises(ValueError, match="groups"):
        recall_by_group(groups[:3], y, s, 0.5)
