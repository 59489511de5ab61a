"""The Markdown rendering of a drift report."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fraud.monitoring.config import SCORE

if TYPE_CHECKING:
    pass


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != 0 and abs(value) < 10**-digits:
            return f"{value:.2e}"
        return f"{value:.{digits}f}"
    return str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: Mapping[str, Any], title: str = "Drift report") -> str:
    """The report as Markdown: verdict, reasons, one summary table, one table per feature."""
    rule = report["rule"]
    rows = report["rows"]
    lines = [
        f"# {title}",
        "",
        f"**Verdict: {report['verdict']}**, {rows['current']:,} current rows vs "
        f"{rows['reference']:,} reference rows ({_cell(str(report.get('source', '')))}).",
        "",
        *(f"- {_cell(r)}" for r in report["reasons"]),
        "",
        f"Rule: drift when any feature's PSI >= {rule['psi_major']}, or when at least "
        f"{rule['moderate_share']:.0%} of features have PSI >= {rule['psi_moderate']}"
        + (
            f"; a feature counts only if its {rule['correction']}-corrected p-value < "
            f"{rule['alpha']}"
            if rule["require_significance"]
            else ""
        )
        + f"; fewer than {rule['min_rows']} rows: insufficient data.",
        "",
        "| feature | kind | PSI | threshold (moderate / major) | JS distance | test | "
        "statistic | p (corrected) | verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    parts = [*report["features"].items()]
    if report["score"].get("available"):
        parts.append((f"{SCORE} (model score, separate)", report["score"]))
    for name, r in parts:
        lines.append(
            f"| {_cell(name)} | {r['kind']} | {_fmt(r.get('psi'))} | "
            f"{rule['psi_moderate']} / {rule['psi_major']} | {_fmt(r.get('js_distance'))} | "
            f"{r.get('test', '')} | {_fmt(r.get('statistic'))} | "
            f"{_fmt(r.get('p_value_adjusted'))} | {r.get('verdict', '')} |"
        )
    if not report["score"].get("available"):
        lines += ["", "Model score: not available for this data."]
    for name, r in parts:
        lines += ["", f"## {_cell(name)}", ""]
        unseen = r.get("unseen_categories")
        if unseen:
            listed = ", ".join(f"{_cell(k)} ({v})" for k, v in unseen.items())
            lines += [f"Unseen categories ({r['unseen_share']:.2%} of rows): {listed}", ""]
        lines += [
            f"PSI {_fmt(r.get('psi'))} (threshold {rule['psi_moderate']} / "
            f"{rule['psi_major']}), verdict **{r.get('verdict', '')}**.",
            "",
            "| bin | reference share | current share | PSI contribution |",
            "|---|---|---|---|",
        ]
        for b in r.get("bins", []):
            lines.append(
                f"| {_cell(b['bin'])} | {b['reference_share']:.4f} | {b['current_share']:.4f} "
                f"| {_fmt(b['psi_contribution'])} |"
            )
    return "\n".join(lines) + "\n"
