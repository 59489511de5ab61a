"""Behavioural checks: directional expectations of the model, beside its average metrics.

In the style of CheckList's directional tests: take real test rows, move one input in a
direction whose effect on fraud risk is known, and count the rows whose score moved the other
way. The evaluate stage reports each check in ``metrics.json``; the gate bounds the share of
rows that broke it (``gate.max_violation_rate``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fraud.features.state import FeatureState
from fraud.features.transform import with_amount

#: Checks by name, in report order.
CHECKS = ("amount_spike",)
#: A score this much lower still counts as unchanged (float noise, far below any decision).
_SLACK = 1e-9


@dataclass
class AmountSpikeConfig:
    """A returning user's amount raised to ``factor`` x their mean must not lower the score."""

    factor: float = 10.0
    min_history: int = 5  # a returning user: at least this many earlier transactions
    max_rows: int = 20_000  # the first qualifying test rows (deterministic, bounded time)

    def check(self) -> None:
        """Raise ValueError naming the field when a value is not usable."""
        if not (math.isfinite(self.factor) and self.factor > 1):
            raise ValueError(f"behaviour.amount_spike.factor must be > 1, got {self.factor}")
        if self.min_history < 1:
            raise ValueError(
                f"behaviour.amount_spike.min_history must be >= 1, got {self.min_history}"
            )
        if self.max_rows < 1:
            raise ValueError(f"behaviour.amount_spike.max_rows must be >= 1, got {self.max_rows}")


@dataclass
class BehaviourConfig:
    """The behavioural checks the evaluate stage runs (``evaluate.behaviour``)."""

    amount_spike: AmountSpikeConfig = field(default_factory=AmountSpikeConfig)

    def check(self) -> None:
        """Check every configured check."""
        self.amount_spike.check()


Predict = Callable[[np.ndarray], np.ndarray]


def amount_spike(
    x: np.ndarray, state: FeatureState, predict: Predict, cfg: AmountSpikeConfig
) -> dict[str, Any]:
    """Score the returning users' test rows again with amount = factor x their mean amount.

    Rows: at least ``min_history`` earlier transactions and an amount below the raised one.
    A violation is a row whose score went down. Returns rows, violations, violation_rate and
    the median score before and after; ``skipped`` (with the reason) when the model lacks the
    user's history features.
    """
    selected = spike_rows(x, state, cfg)
    if isinstance(selected, str):
        return {"skipped": selected}
    raised = cfg.factor * x[:, state.feature_names.index("user_avg_amount")]
    rows = np.flatnonzero(selected)[: cfg.max_rows]
    if not rows.size:
        return {"skipped": f"no test row of a user with >= {cfg.min_history} transactions"}
    try:
        changed = with_amount(x[rows], state, raised[rows])
    except ValueError as exc:  # an amount feature whose history input the model excludes
        return {"skipped": str(exc)}
    before = predict(x[rows])
    after = predict(changed)
    violations = int((after < before - _SLACK).sum())
    return {
        "rows": int(rows.size),
        "violations": violations,
        "violation_rate": round(violations / rows.size, 6),
        "median_score_before": round(float(np.median(before)), 6),
        "median_score_after": round(float(np.median(after)), 6),
    }


def spike_rows(x: np.ndarray, state: FeatureState, cfg: AmountSpikeConfig) -> np.ndarray | str:
    """Mask of the rows ``amount_spike`` may raise (before its ``max_rows`` cut), or why none
    can be: the model lacks a feature it needs."""
    position = {name: i for i, name in enumerate(state.feature_names)}
    needed = ("user_transaction_count", "user_avg_amount", "amount")
    absent = [name for name in needed if name not in position]
    if absent:
        return f"the model has no {', '.join(absent)} feature"
    count, mean, amount = (x[:, position[name]] for name in needed)
    return (count >= cfg.min_history) & (amount < cfg.factor * mean)


def run_checks(
    x: np.ndarray, state: FeatureState, predict: Predict, cfg: BehaviourConfig
) -> dict[str, dict[str, Any]]:
    """Every check's report, by name."""
    return {"amount_spike": amount_spike(x, state, predict, cfg.amount_spike)}
