"""The report's figures: matplotlib (object API, no pyplot state) drawn as inline SVG text.

Each function takes plain rows, as the evaluate stage and ``make drift`` write them, and returns
an ``<svg>`` element that renders offline: text stays text (``svg.fonttype: none``), so the
page is small and its labels can be found in the DOM. Element ids are salted with the figure's
name, so several figures share one page without clashing, and the same input gives the same
bytes (no date in the metadata).
"""

from __future__ import annotations

import functools
import io
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ParamSpec

import matplotlib as mpl
from matplotlib.figure import Figure

from fraud.monitoring.config import OTHER

LEGIT, FRAUD = "#4c78a8", "#e45756"
REFERENCE, CURRENT = "#9d9d9d", "#f58518"
BAND_COLORS = {"medium": "#fdd49e", "high": "#fc8d59"}
THRESHOLD_STYLE = {"color": "#222222", "linestyle": "--", "linewidth": 1.2}
_RC = {
    "svg.fonttype": "none",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
P = ParamSpec("P")


def _styled(draw: Callable[P, str]) -> Callable[P, str]:
    """Run a figure function under the report's style (rcParams apply when artists are made,
    so the whole drawing, not only the saving, happens inside the context)."""

    @functools.wraps(draw)
    def styled(*args: P.args, **kwargs: P.kwargs) -> str:
        with mpl.rc_context(_RC):
            return draw(*args, **kwargs)

    return styled


def to_svg(fig: Figure, name: str, label: str) -> str:
    """``fig`` as an inline ``<svg>`` element with ``aria-label`` ``label``."""
    buffer = io.StringIO()
    with mpl.rc_context({**_RC, "svg.hashsalt": name}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    svg = text[text.index("<svg") :]
    escaped = label.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    return svg.replace("<svg", f'<svg role="img" aria-label="{escaped}"', 1)


def _figure(width: float = 6.0, height: float = 4.0) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def _bands(ax: Any, bands: Sequence[float], threshold: float, vertical: bool = True) -> None:
    """Shade the medium and high risk bands and draw the decision threshold."""
    medium, high = bands
    span = ax.axvspan if vertical else ax.axhspan
    span(medium, high, color=BAND_COLORS["medium"], alpha=0.35, lw=0, label=f"medium >= {medium}")
    span(high, 1.0, color=BAND_COLORS["high"], alpha=0.35, lw=0, label=f"high >= {high}")
    line = ax.axvline if vertical else ax.axhline
    line(threshold, **THRESHOLD_STYLE, label=f"threshold {threshold:.4g}")


@_styled
def roc_figure(roc: Sequence[Mapping[str, float]], point: tuple[float, float]) -> str:
    """ROC curve on a log FPR axis (alerts are costly, so the low-FPR end matters), with the
    operating point (FPR, TPR) at the threshold and the 1 % FPR line."""
    fig = _figure()
    ax = fig.add_subplot()
    fpr = [r["fpr"] for r in roc]
    tpr = [r["tpr"] for r in roc]
    positive = [f for f in fpr if f > 0]
    low = max(1e-5, 10 ** math.floor(math.log10(min(positive)))) if positive else 1e-5
    chance = [low * (1 / low) ** (i / 100) for i in range(101)]
    ax.plot(chance, chance, color="#bbbbbb", lw=1, label="chance")
    ax.plot([max(f, low) for f in fpr], tpr, color=LEGIT, lw=1.8, label="model")
    ax.axvline(0.01, color="#888888", lw=0.8, ls=":", label="FPR 1 %")
    ax.plot(
        *point, "o", color=FRAUD, ms=7, label=f"threshold: FPR {point[0]:.4f}, TPR {point[1]:.3f}"
    )
    ax.set(xscale="log", xlim=(low, 1), ylim=(0, 1.01), xlabel="false positive rate (log)")
    ax.set(ylabel="true positive rate (recall)", title="ROC curve")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return to_svg(fig, "roc", "ROC curve")


@_styled
def pr_figure(
    pr: Sequence[Mapping[str, float]], point: tuple[float, float], fraud_rate: float
) -> str:
    """Precision against recall, the operating point, and the no-skill line (the fraud rate)."""
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot([r["recall"] for r in pr], [r["precision"] for r in pr], color=LEGIT, lw=1.8)
    ax.axhline(fraud_rate, color="#bbbbbb", lw=1, label=f"no skill (fraud rate {fraud_rate:.2%})")
    ax.plot(
        *point,
        "o",
        color=FRAUD,
        ms=7,
        label=f"threshold: recall {point[0]:.3f}, precision {point[1]:.3f}",
    )
    ax.set(xlim=(0, 1.01), ylim=(0, 1.02), xlabel="recall", ylabel="precision")
    ax.set(title="Precision-recall curve")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    return to_svg(fig, "pr", "Precision-recall curve")


def _log_lower(rows: Sequence[Mapping[str, float]]) -> float:
    """Where to draw a first bin that starts at 0 on a log axis: one grid step below its top."""
    first = rows[0]["upper"]
    ratio = rows[1]["upper"] / rows[1]["lower"] if len(rows) > 1 and rows[1]["lower"] else 10
    return first / ratio


@_styled
def score_distribution_figure(
    histogram: Sequence[Mapping[str, float]], threshold: float, bands: Sequence[float]
) -> str:
    """Share of each class per score bin (log score axis), the threshold and the risk bands."""
    fig = _figure(7.0, 4.0)
    ax = fig.add_subplot()
    lows = [r["lower"] or _log_lower(histogram) for r in histogram]
    highs = [r["upper"] for r in histogram]
    _bands(ax, bands, threshold)
    for name, color in (("legit", LEGIT), ("fraud", FRAUD)):
        total = sum(r[name] for r in histogram) or 1
        shares = [r[name] / total for r in histogram]
        ax.stairs(shares, [*lows[:1], *highs], color=color, lw=1.8, label=f"{name} ({total:,})")
        ax.stairs(shares, [*lows[:1], *highs], color=color, alpha=0.15, fill=True)
    ax.set(xscale="log", xlim=(lows[0], 1), xlabel="fraud score (log; first bin from 0)")
    ax.set(ylabel="share of the class", title="Test scores by class")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper center", fontsize=8, ncols=2)
    return to_svg(fig, "scores", "Score distribution by class")


def _wilson(positives: int, count: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson interval of a fraction (honest at 0 and with few rows)."""
    p = positives / count
    centre = (p + z * z / (2 * count)) / (1 + z * z / count)
    half = z * math.sqrt(p * (1 - p) / count + z * z / (4 * count * count)) / (1 + z * z / count)
    return max(centre - half, 0.0), min(centre + half, 1.0)


@_styled
def calibration_figure(
    rows: Sequence[Mapping[str, float]], threshold: float, bands: Sequence[float]
) -> str:
    """Observed fraud rate against mean predicted score per bin, log-log, with 95 % Wilson
    intervals; a bin with no fraud is drawn hollow at its interval's top."""
    fig = _figure(7.0, 4.5)
    ax = fig.add_subplot()
    _bands(ax, bands, threshold)
    predicted = [r["mean_predicted"] for r in rows]
    low = min([p for p in predicted if p > 0] + [1e-4]) / 2
    ax.plot([low, 1], [low, 1], color="#bbbbbb", lw=1, label="perfectly calibrated")
    for r in rows:
        lo, hi = _wilson(r["positives"], r["count"])
        x = max(r["mean_predicted"], low)
        y = r["fraction_positive"]
        hollow = y == 0
        y = hi if hollow else y
        ax.plot([x, x], [max(lo, low), hi], color=LEGIT, lw=1, alpha=0.7)
        face = "white" if hollow else LEGIT
        ax.plot(x, max(y, low), "o", color=LEGIT, mfc=face, ms=5)
    ax.plot([], [], "o", color=LEGIT, label="bin (95 % interval)")
    ax.plot([], [], "o", color=LEGIT, mfc="white", label="bin without fraud (at upper bound)")
    ax.set(xscale="log", yscale="log", xlim=(low, 1.05), ylim=(low, 1.05))
    ax.set(xlabel="mean predicted score (log)", ylabel="observed fraud rate (log)")
    ax.set(title="Calibration: bins fixed around the threshold and the risk bands")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    return to_svg(fig, "calibration", "Calibration")


@_styled
def card_precision_figure(per_day: Sequence[Mapping[str, Any]], k: int, mean: float) -> str:
    """Card Precision@k of each test day, and its mean."""
    fig = _figure(7.0, 3.6)
    ax = fig.add_subplot()
    days = [str(r["day"]) for r in per_day]
    ax.bar(range(len(days)), [r["card_precision"] for r in per_day], color=LEGIT)
    ax.axhline(mean, color=FRAUD, lw=1.2, label=f"mean {mean:.3f}")
    step = max(1, len(days) // 12)
    ax.set_xticks(range(0, len(days), step), days[::step], rotation=45, ha="right")
    ax.set(ylim=(0, 1), ylabel=f"Card Precision@{k}", title=f"Card Precision@{k} per test day")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    return to_svg(fig, "card-precision", f"Card Precision@{k} per day")


@_styled
def importance_figure(rows: Sequence[Mapping[str, Any]], top: int = 25) -> str:
    """The ``top`` most important features, most important on top."""
    shown = list(rows[:top])[::-1]
    fig = _figure(7.0, 1.0 + 0.22 * max(len(shown), 1))
    ax = fig.add_subplot()
    ax.barh([r["feature"] for r in shown], [r["importance"] for r in shown], color=LEGIT)
    title = "Feature importance" + (f" (top {top} of {len(rows)})" if len(rows) > top else "")
    ax.set(xlabel="share of total importance", title=title)
    ax.grid(axis="x", alpha=0.3)
    return to_svg(fig, "importance", "Feature importance")


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def _drift_bins(bins: Sequence[Mapping[str, Any]]) -> list[tuple[str, float, float]]:
    """(label, reference share, current share) per bin: integer categories (hours, days) in
    numeric order, the bucket of unseen values last, numbers in labels to 3 digits."""
    rows = [(str(b["bin"]), b["reference_share"], b["current_share"]) for b in bins]
    known = [r for r in rows if r[0] != OTHER]
    if known and all(r[0].lstrip("-").isdigit() for r in known):
        rows = sorted(known, key=lambda r: int(r[0])) + [r for r in rows if r[0] == OTHER]
    return [(_NUMBER.sub(lambda m: f"{float(m.group()):.3g}", r[0]), r[1], r[2]) for r in rows]


@_styled
def drift_figure(name: str, result: Mapping[str, Any]) -> str:
    """Reference against current share per bin of one feature, titled with PSI and verdict."""
    bins = _drift_bins(result.get("bins", []))
    fig = _figure(7.0, 3.0 if len(bins) <= 12 else 3.4)
    ax = fig.add_subplot()
    x = list(range(len(bins)))
    reference = [b[1] for b in bins]
    current = [b[2] for b in bins]
    ax.bar([i - 0.2 for i in x], reference, 0.4, color=REFERENCE, label="reference (training)")
    ax.bar([i + 0.2 for i in x], current, 0.4, color=CURRENT, label="current")
    labels = [b[0] for b in bins]
    rotate = len(bins) > 12 or any(len(label) > 8 for label in labels)
    ax.set_xticks(x, labels, rotation=45 if rotate else 0, ha="right" if rotate else "center")
    psi = result.get("psi")
    psi_text = f"PSI {psi:.3f}" if isinstance(psi, (int, float)) else "PSI n/a"
    ax.set(ylabel="share of rows", title=f"{name}: {psi_text}, {result.get('verdict', '')}")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return to_svg(fig, f"drift-{name}", f"Drift of {name}")
