"""The quality gate: minimum test metrics and no regression past tolerance against a baseline.

A pure function of metrics and a typed config: the promote stage's one definition of
"passed", tested apart from any file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fraud.model.behaviour import CHECKS
from fraud.model.metrics import _SLACK, GATEABLE_METRICS, is_gateable


@dataclass
class GateConfig:
    """Quality gate: absolute minimums, and maximum allowed drops below the baseline."""

    min_metrics: dict[str, float] = field(
        default_factory=lambda: {"roc_auc": 0.9, "pr_auc": 0.5, "recall_at_1pct_fpr": 0.5}
    )
    max_regression: dict[str, float] = field(
        default_factory=lambda: {"roc_auc": 0.01, "pr_auc": 0.03}
    )
    compare_to_baseline: bool = True
    #: behavioural check (``evaluate.behaviour``) -> the largest share of its rows that may
    #: break it
    max_violation_rate: dict[str, float] = field(default_factory=lambda: {"amount_spike": 0.0})

    def check(self) -> None:
        """Raise ValueError naming the key when a bound or tolerance is not a usable number.

        Only metrics where higher is better can be gated: a bound on a cost would be checked
        the wrong way round.
        """
        for section, names in (
            ("min_metrics", self.min_metrics),
            ("max_regression", self.max_regression),
        ):
            unknown = sorted(name for name in names if not is_gateable(name))
            if unknown:
                raise ValueError(
                    f"gate.{section} names {', '.join(unknown)}; gateable metrics are "
                    f"{', '.join(GATEABLE_METRICS)} and card_precision_at_<k>"
                )
        for name, bound in self.min_metrics.items():  # every gateable metric lies in [0, 1]
            if not (math.isfinite(bound) and 0 <= bound <= 1):
                raise ValueError(f"gate.min_metrics.{name} must be in [0, 1], got {bound}")
        for name, tolerance in self.max_regression.items():
            if not (math.isfinite(tolerance) and 0 <= tolerance <= 1):
                raise ValueError(f"gate.max_regression.{name} must be in [0, 1], got {tolerance}")
        for name, rate in self.max_violation_rate.items():
            if name not in CHECKS:
                raise ValueError(
                    f"gate.max_violation_rate names {name!r}; behavioural checks are "
                    f"{', '.join(CHECKS)}"
                )
            if not 0 <= rate <= 1:
                raise ValueError(f"gate.max_violation_rate.{name} must be in [0, 1], got {rate}")


@dataclass
class GateResult:
    """The gate's verdict; ``checks`` rows are JSON-ready dicts (see :func:`gate`)."""

    passed: bool
    checks: list[dict[str, Any]]

    def failures(self) -> list[str]:
        """One human-readable line per failed check, in check order."""
        lines = []
        for c in self.checks:
            if c["passed"]:
                continue
            if c["kind"] == "minimum":
                lines.append(f"{c['metric']} = {c['value']:.4f} < minimum {c['bound']:.4f}")
            elif c["kind"] == "behaviour":
                lines.append(
                    f"{c['metric']}: {c['violations']} of {c['rows']} rows broke it, "
                    f"{c['value']:.2%} > maximum {c['bound']:.2%}"
                )
            else:
                lines.append(
                    f"{c['metric']} = {c['value']:.4f} regressed below baseline "
                    f"{c['baseline']:.4f} - tolerance {c['tolerance']:.4f} = {c['bound']:.4f}"
                )
        return lines


def gate(
    metrics: Mapping[str, float], cfg: GateConfig, baseline: Mapping[str, float] | None
) -> GateResult:
    """Check ``metrics`` against the configured minimums and, optionally, the baseline.

    Each ``cfg.min_metrics`` entry passes when ``value >= bound``. Each ``cfg.max_regression``
    entry is checked only when ``cfg.compare_to_baseline`` is true, ``baseline`` is given and
    holds that metric; it passes when ``value >= baseline - tolerance``. Comparisons allow 1e-9
    of float slack. Check rows: {metric, kind ("minimum"/"regression"), value, bound, passed};
    regression rows also carry baseline and tolerance.

    Raises:
        ValueError: a configured metric is missing from ``metrics``, or a bound, tolerance,
            metric or baseline value is not a finite number; the message names it.
    """
    cfg.check()
    named = [*cfg.min_metrics, *cfg.max_regression]
    missing = sorted({name for name in named if name not in metrics})
    if missing:
        raise ValueError(
            f"gate config names metric(s) {', '.join(missing)} that are not among the "
            f"evaluated metrics ({', '.join(sorted(metrics))})"
        )

    def number(source: str, name: str, raw: Any) -> float:
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ValueError(f"{source} metric {name!r} is not a number: {raw!r}") from None
        if not math.isfinite(value):
            raise ValueError(f"{source} metric {name!r} must be finite, got {value}")
        return value

    checks: list[dict[str, Any]] = []
    for name, bound in cfg.min_metrics.items():
        value = number("evaluated", name, metrics[name])
        checks.append(
            {
                "metric": name,
                "kind": "minimum",
                "value": value,
                "bound": float(bound),
                "passed": value >= bound - _SLACK,
            }
        )
    if cfg.compare_to_baseline and baseline is not None:
        for name, tolerance in cfg.max_regression.items():
            if name not in baseline:
                continue
            value = number("evaluated", name, metrics[name])
            base = number("baseline", name, baseline[name])
            bound = round(base - tolerance, 12)
            checks.append(
                {
                    "metric": name,
                    "kind": "regression",
                    "value": value,
                    "bound": bound,
                    "passed": value >= bound - _SLACK,
                    "baseline": base,
                    "tolerance": float(tolerance),
                }
            )
    checks += _behaviour_checks(metrics.get("behaviour", {}), cfg)
    return GateResult(passed=all(c["passed"] for c in checks), checks=checks)


def _behaviour_checks(reports: Mapping[str, Any], cfg: GateConfig) -> list[dict[str, Any]]:
    """One row per bounded behavioural check; a check the model cannot run (``skipped``,
    e.g. no user history features) passes and says why."""
    rows: list[dict[str, Any]] = []
    for name, bound in cfg.max_violation_rate.items():
        report = reports.get(name)
        if not isinstance(report, Mapping):
            raise ValueError(f"gate.max_violation_rate names {name!r}, which evaluate did not run")
        row = {"metric": f"behaviour.{name}", "kind": "behaviour", "bound": float(bound)}
        if "skipped" in report:
            rows.append({**row, "value": 0.0, "passed": True, "skipped": report["skipped"]})
            continue
        rate = float(report["violation_rate"])
        rows.append(
            {
                **row,
                "value": rate,
                "passed": rate <= bound + _SLACK,
                "violations": int(report["violations"]),
                "rows": int(report["rows"]),
            }
        )
    return rows
