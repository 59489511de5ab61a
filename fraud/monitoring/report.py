"""The self-contained HTML report (`make report`): gate, metrics, curves, calibration, drift.

``render_report`` is a pure function of plain data, the JSON the pipeline and ``make drift``
write: the test metrics, the gate report, the production baseline, the plot data of the
evaluate stage and, when there is one, a drift report. The page needs no network: figures
are inline SVG (``figures``), styles are inline, there is no script.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fraud.monitoring import figures
from fraud.monitoring.config import SCORE

#: The metrics compared against the baseline, in display order (card_precision_at_<k> added).
COMPARED = ("roc_auc", "pr_auc", "recall_at_1pct_fpr", "precision", "recall", "f1")
#: Metrics where lower is better.
LOWER_IS_BETTER = ("expected_cost_per_txn",)
PLOTS = ("roc", "pr", "calibration", "feature_importance", "card_precision", "confusion")
SCORE_HISTOGRAM = "score_histogram"
_CARD_PRECISION = re.compile(r"card_precision_at_([1-9][0-9]*)")

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1d1d1f;
background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{margin:0 0 4px}h2{margin-top:36px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta{color:#555;margin:0 0 16px}
.verdict{display:inline-block;padding:6px 14px;border-radius:6px;font-weight:700;color:#fff}
.passed{background:#2e7d32}.failed{background:#c62828}.drift{background:#c62828}
.none{background:#2e7d32}.insufficient_data{background:#757575}
table{border-collapse:collapse;margin:8px 0 16px;background:#fff;font-size:14px}
th,td{border:1px solid #ddd;padding:4px 10px;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#eef0f3}
td.ok{color:#2e7d32;font-weight:600}td.fail{color:#c62828;font-weight:700}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:16px}
figure{margin:0;background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px}
figure svg{width:100%;height:auto}figcaption{font-size:13px;color:#444;margin-top:4px}
.note{background:#fff8e1;border:1px solid #ffe082;padding:8px 12px;border-radius:6px}
"""


@dataclass(frozen=True)
class ReportData:
    """Everything the report shows, as plain data read from the pipeline's files.

    Attributes:
        metrics: the candidate's test metrics (reports/metrics.json).
        gate: the gate report (reports/gate.json).
        baseline: the production baseline's metrics, or None when it holds none yet.
        plots: the evaluate stage's plot rows by name (``PLOTS`` and ``score_histogram``).
        bands: serving's risk bands (medium, high).
        served: the served model's manifest (models/manifest.json).
        drift: the latest drift report, or None.
        sources: file name of each input, shown at the foot of the page.
    """

    metrics: Mapping[str, Any]
    gate: Mapping[str, Any]
    baseline: Mapping[str, Any] | None
    plots: Mapping[str, Sequence[Mapping[str, Any]]]
    bands: tuple[float, float]
    served: Mapping[str, Any]
    drift: Mapping[str, Any] | None
    sources: Mapping[str, str]


def _e(value: Any) -> str:
    return html.escape(str(value))


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != 0 and abs(value) < 10**-digits:
            return f"{value:.2e}"
        return f"{value:.{digits}f}"
    return _e(value)


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], table_id: str = "") -> str:
    """An HTML table; cells are already HTML (escaped by the caller)."""
    attr = f' id="{table_id}"' if table_id else ""
    header = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(cell_html(c) for c in row) + "</tr>" for row in rows)
    return f"<table{attr}><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"


def cell_html(cell: str) -> str:
    """A ``<td>``; a cell starting with ``ok:`` or ``fail:`` gets that class."""
    for mark, css in (("ok:", "ok"), ("fail:", "fail")):
        if cell.startswith(mark):
            return f'<td class="{css}">{cell[len(mark) :]}</td>'
    return f"<td>{cell}</td>"


def card_precision_k(metrics: Mapping[str, Any]) -> int | None:
    """The ``k`` of the metrics' ``card_precision_at_<k>``, or None."""
    for name in metrics:
        if match := _CARD_PRECISION.fullmatch(name):
            return int(match.group(1))
    return None


def _gate_section(data: ReportData) -> str:
    gate = data.gate
    passed = bool(gate.get("passed"))
    rows = []
    for check in gate.get("checks", []):
        mark = "ok:passed" if check["passed"] else "fail:FAILED"
        if check.get("skipped"):
            mark = "not checked: " + _e(check["skipped"])
        if check["kind"] == "behaviour":
            broke = f"{check.get('violations', 0)} of {check.get('rows', 0)} rows"
            value = f"{_num(check.get('value'))} ({broke})"
        else:
            value = _num(check.get("value"))
        rows.append(
            [
                _e(check["metric"]),
                _e(check["kind"]),
                value,
                ("&le; " if check["kind"] == "behaviour" else "&ge; ") + _num(check.get("bound")),
                _num(check.get("baseline")),
                mark,
            ]
        )
    verdict = "passed" if passed else "failed"
    served = data.served.get("test_metrics") == dict(data.metrics)
    promoted = (
        "The candidate is the served model (models/)."
        if served
        else "models/ still serves an earlier model."
    )
    return (
        f'<h2 id="gate">Quality gate</h2><p><span class="verdict {verdict}" id="gate-verdict">'
        f"gate {verdict.upper()}</span> {promoted}</p>"
        + _table(
            ["metric", "check", "candidate", "bound", "baseline", "result"], rows, "gate-checks"
        )
    )


def _metrics_section(data: ReportData) -> str:
    metrics, baseline = data.metrics, data.baseline or {}
    k = card_precision_k(metrics)
    names = [*COMPARED, *([f"card_precision_at_{k}"] if k else []), *LOWER_IS_BETTER, "threshold"]
    rows = []
    for name in names:
        value, base = metrics.get(name), baseline.get(name)
        delta = "n/a"
        if isinstance(value, (int, float)) and isinstance(base, (int, float)):
            diff = value - base
            better = diff < 0 if name in LOWER_IS_BETTER else diff > 0
            worse = diff > 0 if name in LOWER_IS_BETTER else diff < 0
            text = f"{diff:+.4f}"
            delta = (
                ("ok:" + text)
                if better
                else ("fail:" + text)
                if worse and name != "threshold"
                else text
            )
        rows.append([_e(name), _num(value), _num(base), delta])
    no_base = "" if data.baseline else '<p class="note">The baseline holds no metrics yet.</p>'
    tp, fp, fn, tn = (int(metrics.get(key, 0)) for key in ("tp", "fp", "fn", "tn"))
    confusion = _table(
        ["actual \\ predicted", "legit", "fraud", "recall"],
        [
            ["legit", f"{tn:,}", f"{fp:,}", f"{tn / max(tn + fp, 1):.2%} specificity"],
            ["fraud", f"{fn:,}", f"{tp:,}", f"{tp / max(tp + fn, 1):.2%}"],
        ],
        "confusion",
    )
    pattern_rows = [
        [_e(name), _num(value), _num((baseline.get("recall_by_pattern") or {}).get(name))]
        for name, value in (metrics.get("recall_by_pattern") or {}).items()
    ]
    patterns = (
        "<h3>Recall at the threshold by fraud pattern</h3>"
        + _table(["pattern", "candidate", "baseline"], pattern_rows, "recall-by-pattern")
        if pattern_rows
        else ""
    )
    summary = (
        f"<p>{_num(metrics.get('n'))} test transactions, {_num(metrics.get('positives'))} fraud "
        f"({_num(metrics.get('fraud_rate'), 4)}); decision threshold "
        f"{_num(metrics.get('threshold'), 6)}.</p>"
    )
    return (
        '<h2 id="metrics">Test metrics against the production baseline</h2>'
        + summary
        + no_base
        + _table(["metric", "candidate", "baseline", "change"], rows, "metrics-table")
        + "<h3>Confusion matrix at the threshold</h3>"
        + confusion
        + patterns
    )


def _figure(svg: str, fig_id: str, caption: str) -> str:
    return f'<figure id="{fig_id}">{svg}<figcaption>{caption}</figcaption></figure>'


def _curves_section(data: ReportData) -> str:
    m, plots = data.metrics, data.plots
    negatives = m.get("fp", 0) + m.get("tn", 0)
    fpr = m.get("fp", 0) / negatives if negatives else 0.0
    threshold = float(m["threshold"])
    k = card_precision_k(m)
    parts = [
        _figure(
            figures.roc_figure(plots["roc"], (fpr, m["recall"])),
            "fig-roc",
            f"ROC AUC {_num(m.get('roc_auc'))}; recall at 1 % FPR "
            f"{_num(m.get('recall_at_1pct_fpr'))}.",
        ),
        _figure(
            figures.pr_figure(plots["pr"], (m["recall"], m["precision"]), m["fraud_rate"]),
            "fig-pr",
            f"PR AUC (average precision) {_num(m.get('pr_auc'))}.",
        ),
    ]
    if SCORE_HISTOGRAM in plots:
        parts.append(
            _figure(
                figures.score_distribution_figure(plots[SCORE_HISTOGRAM], threshold, data.bands),
                "fig-scores",
                "Share of each class's test rows per score bin; dashed: the decision threshold; "
                "shaded: the medium and high risk bands.",
            )
        )
    parts.append(
        _figure(
            figures.calibration_figure(plots["calibration"], threshold, data.bands),
            "fig-calibration",
            "Observed fraud rate per bin of predicted score; bin edges at the threshold, "
            "around it and at the risk bands (table below).",
        )
    )
    if k:
        parts.append(
            _figure(
                figures.card_precision_figure(
                    plots["card_precision"], k, m[f"card_precision_at_{k}"]
                ),
                "fig-card-precision",
                f"Each test day the {k} cards with the highest scores are investigated; the bar "
                "is the share of them with a fraud that day.",
            )
        )
    parts.append(
        _figure(
            figures.importance_figure(plots["feature_importance"]),
            "fig-importance",
            "Normalised importance (gain for XGBoost, |coefficient| for logistic regression).",
        )
    )
    calibration_rows = [
        [
            f"[{_num(r['lower'], 6)}, {_num(r['upper'], 6)})",
            _num(r["count"]),
            _num(r["positives"]),
            _num(r["mean_predicted"], 6),
            _num(r["fraction_positive"], 6),
        ]
        for r in plots["calibration"]
    ]
    table = _table(
        ["score bin", "rows", "fraud", "mean predicted", "observed fraud rate"],
        calibration_rows,
        "calibration-table",
    )
    return (
        '<h2 id="curves">Curves, scores and calibration</h2><div class="grid">'
        + "".join(parts)
        + "</div><h3>Calibration bins</h3>"
        + table
    )


def _drift_caption(name: str, result: Mapping[str, Any]) -> str:
    """What the bars do not show: the means of a numeric field, unseen categories."""
    mean = result.get("mean")
    if isinstance(mean, Mapping):
        return (
            f"{_e(name)}: mean {_num(mean.get('reference'))} in training, "
            f"{_num(mean.get('current'))} now; bins are training deciles."
        )
    unseen = result.get("unseen_categories") or {}
    listed = ", ".join(f"{_e(k)} ({_num(v)})" for k, v in unseen.items())
    share = _num(result.get("unseen_share", 0.0))
    return f"{_e(name)}: unseen categories: {listed} (share {share})" if unseen else _e(name)


def _drift_section(data: ReportData) -> str:
    head = '<h2 id="drift">Drift: current data against the training reference</h2>'
    report = data.drift
    if report is None:
        return head + (
            '<p class="note" id="drift-missing">No drift report yet in '
            f"{_e(data.sources.get('drift', 'the drift reports directory'))}: run "
            '<code>make drift</code> (or <code>make drift DRIFT_ARGS="--current FILE"</code>), '
            "then <code>make report</code>.</p>"
        )
    rows, parts = [], []
    features = dict(report.get("features", {}))
    score = report.get("score", {})
    if score.get("available"):
        features[f"{SCORE} (model score)"] = score
    for name, result in features.items():
        rows.append(
            [
                _e(name),
                _e(result.get("kind", "")),
                _num(result.get("psi")),
                _num(result.get("js_distance")),
                _e(result.get("test", "")),
                _num(result.get("p_value_adjusted")),
                ("fail:" if result.get("drifted") else "") + _e(result.get("verdict", "")),
            ]
        )
        if result.get("bins"):
            slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
            svg = figures.drift_figure(name, result)
            parts.append(_figure(svg, f"fig-drift-{slug}", _drift_caption(name, result)))
    verdict = str(report.get("verdict", "unknown"))
    counts = report.get("rows", {})
    reasons = "".join(f"<li>{_e(r)}</li>" for r in report.get("reasons", []))
    return (
        head
        + f'<p><span class="verdict {_e(verdict)}" id="drift-verdict">drift: {_e(verdict)}</span> '
        f"{_num(counts.get('current'))} current rows against {_num(counts.get('reference'))} "
        f"reference rows; source: {_e(report.get('source', ''))} "
        f"({_e(data.sources.get('drift', ''))}).</p><ul>{reasons}</ul>"
        + _table(
            ["feature", "kind", "PSI", "JS distance", "test", "p (corrected)", "verdict"],
            rows,
            "drift-table",
        )
        + '<div class="grid">'
        + "".join(parts)
        + "</div>"
    )


def render_report(data: ReportData) -> str:
    """The whole page, as one HTML string with nothing to fetch."""
    served = data.served
    sha = str(served.get("sha256", ""))[:12]
    header = (
        "<h1>Fraud model report</h1>"
        f'<p class="meta">served model: {_e(served.get("kind", "?"))}, env '
        f"{_e(served.get('env', '?'))}, sha256 <code>{_e(sha)}</code>, trained on "
        f"{_e(' to '.join(map(str, served.get('train_period', []))) or 'n/a')}</p>"
    )
    sources = "".join(
        f"<li>{_e(what)}: <code>{_e(path)}</code></li>" for what, path in data.sources.items()
    )
    body = (
        header
        + _gate_section(data)
        + _metrics_section(data)
        + _curves_section(data)
        + _drift_section(data)
        + f'<h2 id="sources">Inputs</h2><ul>{sources}</ul>'
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Fraud model report</title><style>{CSS}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )
