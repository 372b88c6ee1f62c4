"""The page's figures, drawn from the view model (:mod:`.view`) as inline SVG, so the page loads
nothing: the accuracy chart of each protocol, the optimisation histories of its best tuned pairs,
and the critical-difference diagram (matplotlib, through :func:`benchmark.stats.cd_diagram_svg`).
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from benchmark import stats
from benchmark.report.formatting import num, pct
from benchmark.report.settings import REFERENCE_NOTE, REFERENCES, Reference

__all__ = ["accuracy_chart_svg", "add_figures", "history_svg"]

_E = html.escape
VERDICT_COLOR = {
    "better": "#1a7f37",
    "worse": "#cf222e",
    "no evidence": "#57606a",
    "baseline": "#0969da",
    "n/a": "#8c959f",
}


#: accuracy chart layout (px): label column, plot width, right margin, row height, bottom margin
_LABEL_W, _PLOT_W, _RIGHT, _ROW_H, _BOTTOM = 260, 560, 24, 24, 40

_Scale = Callable[[float], float]


def accuracy_chart_svg(
    rows: Sequence[Mapping[str, Any]], protocol: str, references: Sequence[Reference]
) -> str:
    """Horizontal dot-and-whisker chart: pooled out-of-fold accuracy and its bootstrap CI per
    pair, coloured by verdict, with the references as dashed vertical lines."""
    if not rows:
        return ""
    top = 34 + 14 * len(references)
    height = top + _ROW_H * len(rows) + _BOTTOM
    width = _LABEL_W + _PLOT_W + _RIGHT
    lo, hi = _accuracy_range(rows, references)

    def x(v: float) -> float:
        return _LABEL_W + (v - lo) / (hi - lo) * _PLOT_W

    out = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" xmlns="http://www.w3.org/2000/svg">',
        "<title>"
        + _E(f"Accuracy per pair under {protocol}: pooled out-of-fold accuracy, 95 % bootstrap CI")
        + "</title>",
        f'<text x="{_LABEL_W}" y="14" class="axis-title">accuracy under {_E(protocol)} '
        "(pooled out-of-fold, 95 % bootstrap CI)</text>",
    ]
    for i in range(0, len(rows), 2):
        out.append(
            f'<rect x="0" y="{top + _ROW_H * i}" width="{width}" height="{_ROW_H}" class="stripe"/>'
        )
    for tick in _nice_ticks(lo, hi, target=8):
        xx = x(tick)
        out.append(
            f'<line x1="{xx:.1f}" y1="{top - 6}" x2="{xx:.1f}" y2="{height - _BOTTOM + 4}" '
            'class="grid"/>'
        )
        out.append(
            f'<text x="{xx:.1f}" y="{height - _BOTTOM + 18}" class="tick" '
            f'text-anchor="middle">{100 * tick:.0f}%</text>'
        )
    for i, ref in enumerate(references):
        if lo <= ref.accuracy <= hi:
            out += _reference_line(ref, i, x(ref.accuracy), width, height)
    for i, r in enumerate(rows):
        out += _pair_marks(r, top + _ROW_H * i + _ROW_H / 2, x, protocol)
    out.append(
        f'<text x="{_LABEL_W + _PLOT_W / 2}" y="{height - 6}" class="tick" text-anchor="middle">'
        f"colour: verdict against the baseline under {_E(protocol)}</text>"
    )
    out.append("</svg>")
    return "\n".join(out)


def _accuracy_range(
    rows: Sequence[Mapping[str, Any]], references: Sequence[Reference]
) -> tuple[float, float]:
    """The accuracy axis: every interval and reference, to the tenth, at least 20 points wide."""
    lows = [num(r["ci_low"]) for r in rows] + [num(r["oof_accuracy"]) for r in rows]
    highs = [num(r["ci_high"]) for r in rows] + [num(r["oof_accuracy"]) for r in rows]
    finite_lo = [v for v in lows if math.isfinite(v)] + [ref.accuracy for ref in references]
    finite_hi = [v for v in highs if math.isfinite(v)] + [ref.accuracy for ref in references]
    lo = max(0.0, math.floor((min(finite_lo, default=0.0) - 0.02) * 10) / 10)
    hi = min(1.0, math.ceil((max(finite_hi, default=1.0) + 0.02) * 10) / 10)
    if hi - lo < 0.2:
        hi = min(1.0, lo + 0.2)
        lo = max(0.0, hi - 0.2)
    return lo, hi


def _reference_line(ref: Reference, i: int, xx: float, width: int, height: int) -> list[str]:
    """A reference as a dashed line, labelled to its right (or left, where it would not fit)."""
    text = f"{ref.label} (random split?)"
    fits_right = xx + 4 + 6.2 * len(text) <= width  # ~6.2 px per character at 11 px
    anchor, dx = ("start", 4) if fits_right else ("end", -4)
    return [
        f'<line x1="{xx:.1f}" y1="{30 + 14 * i}" x2="{xx:.1f}" y2="{height - _BOTTOM + 4}" '
        f'class="ref-line"><title>{_E(ref.label)}: {_E(REFERENCE_NOTE)}</title></line>',
        f'<text x="{xx + dx:.1f}" y="{34 + 14 * i}" class="ref-label" '
        f'text-anchor="{anchor}">{_E(text)}</text>',
    ]


def _pair_marks(r: Mapping[str, Any], y: float, x: _Scale, protocol: str) -> list[str]:
    """One pair's row: its label, its CI whisker and its accuracy dot, coloured by verdict."""
    verdict = str(r.get("verdict", "n/a"))
    color = VERDICT_COLOR.get(verdict, "#57606a")
    name = f"{r['feature_set']} · {r['family']}"
    weight = ' font-weight="600"' if verdict == "baseline" else ""
    out = [
        f'<text x="{_LABEL_W - 10}" y="{y + 4:.1f}" class="row-label" '
        f'text-anchor="end"{weight}>{_E(name)}</text>'
    ]
    acc, cl, ch = num(r["oof_accuracy"]), num(r["ci_low"]), num(r["ci_high"])
    tip = (
        f"{name} under {protocol}: {pct(acc)} pooled out-of-fold, 95 % CI "
        f"[{pct(cl)}, {pct(ch)}]; verdict: {verdict}"
    )
    if math.isfinite(cl) and math.isfinite(ch):
        out.append(
            f'<line x1="{x(cl):.1f}" y1="{y:.1f}" x2="{x(ch):.1f}" y2="{y:.1f}" '
            f'stroke="{color}" stroke-width="2.5" stroke-linecap="round"/>'
        )
    if math.isfinite(acc):
        out.append(
            f'<circle cx="{x(acc):.1f}" cy="{y:.1f}" r="5" fill="{color}" stroke="white" '
            f'stroke-width="1.5"><title>{_E(tip)}</title></circle>'
        )
    return out


#: history chart layout (px)
_H_WIDTH, _H_HEIGHT = 520, 260
_H_LEFT, _H_RIGHT, _H_TOP, _H_BOTTOM = 52, 16, 44, 38


def history_svg(folds: Sequence[Mapping[str, Any]], title: str) -> str:
    """Optuna optimisation history of one pair: every trial's inner-CV accuracy (dots; hollow =
    pruned, at its last reported value) and the best value so far per outer fold (thin steps),
    with the mean of the per-fold best-so-far curves (thick)."""
    points = [(t["number"], t["value"]) for f in folds for t in f["trials"]]
    if not points:
        return ""
    pw, ph = _H_WIDTH - _H_LEFT - _H_RIGHT, _H_HEIGHT - _H_TOP - _H_BOTTOM
    n_max = max(n for n, _ in points) + 1
    lo, hi = _history_range([v for _, v in points])

    def x(n: float) -> float:
        return _H_LEFT + (n / max(n_max - 1, 1)) * pw if n_max > 1 else _H_LEFT + pw / 2

    def y(v: float) -> float:
        return _H_TOP + (hi - v) / (hi - lo) * ph

    out = _history_axes(title, lo, hi, n_max, x, y)
    best_curves: list[list[float]] = []
    for f in folds:
        marks, curve = _fold_marks(f, x, y)
        out += marks
        if curve:
            best_curves.append(curve)
    if best_curves:
        n = max(len(c) for c in best_curves)
        mean = [float(np.mean([c[i] for c in best_curves if i < len(c)])) for i in range(n)]
        pts = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(mean))
        # the mean is drawn at the trial index of each fold's curve (trial numbers may skip
        # failed trials; the per-fold steps use the true numbers)
        out.append(
            f'<polyline points="{pts}" class="best-mean"><title>mean over folds of the '
            "best inner-CV accuracy so far</title></polyline>"
        )
    out.append(
        f'<text x="{_H_LEFT}" y="30" class="tick">dots: trials (hollow: pruned) · '
        "thin: best so far per outer fold · thick: mean over folds</text>"
    )
    out.append("</svg>")
    return "\n".join(out)


def _history_range(vals: Sequence[float]) -> tuple[float, float]:
    """The accuracy axis of a history: the values padded by a tenth (at least 2 points)."""
    lo, hi = min(vals), max(vals)
    pad = max(0.02, (hi - lo) * 0.1)
    lo, hi = max(0.0, lo - pad), min(1.0, hi + pad)
    if hi - lo < 1e-9:
        lo, hi = max(0.0, lo - 0.05), min(1.0, hi + 0.05)
    return lo, hi


def _history_axes(title: str, lo: float, hi: float, n_max: int, x: _Scale, y: _Scale) -> list[str]:
    """The history's frame: title, accuracy grid, and the first, middle and last trial."""
    width, height, left = _H_WIDTH, _H_HEIGHT, _H_LEFT
    ph = height - _H_TOP - _H_BOTTOM
    pw = width - left - _H_RIGHT
    out = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{_E(title)}</title>",
        f'<text x="{left}" y="14" class="axis-title">{_E(title)}</text>',
    ]
    for v in _nice_ticks(lo, hi):
        out.append(
            f'<line x1="{left}" y1="{y(v):.1f}" x2="{width - _H_RIGHT}" y2="{y(v):.1f}" '
            'class="grid"/>'
        )
        out.append(
            f'<text x="{left - 6}" y="{y(v) + 4:.1f}" class="tick" text-anchor="end">'
            f"{100 * v:.0f}%</text>"
        )
    out.append(
        f'<text x="14" y="{_H_TOP + ph / 2:.1f}" class="tick" text-anchor="middle" '
        f'transform="rotate(-90 14 {_H_TOP + ph / 2:.1f})">inner-CV accuracy</text>'
    )
    for n in sorted({0, n_max - 1, (n_max - 1) // 2}):
        out.append(
            f'<text x="{x(n):.1f}" y="{height - _H_BOTTOM + 16}" class="tick" '
            f'text-anchor="middle">{n + 1}</text>'
        )
    out.append(
        f'<text x="{left + pw / 2}" y="{height - 6}" class="tick" text-anchor="middle">'
        "trial (per outer-fold study)</text>"
    )
    return out


def _fold_marks(f: Mapping[str, Any], x: _Scale, y: _Scale) -> tuple[list[str], list[float]]:
    """One outer fold's study: its best-so-far steps and trial dots, and the best-so-far curve."""
    trials = sorted(f["trials"], key=lambda t: t["number"])
    best = -math.inf
    curve: list[float] = []
    path: list[str] = []
    for t in trials:
        if t["state"] == "COMPLETE":
            best = max(best, t["value"])
        if math.isfinite(best):
            curve.append(best)
            if path:  # a step: along at the old best, then up to the new one
                path.append(f"{x(t['number']):.1f},{y(curve[-2]):.1f}")
            path.append(f"{x(t['number']):.1f},{y(best):.1f}")
    out = [f'<polyline points="{" ".join(path)}" class="best-fold"/>'] if len(path) > 1 else []
    for t in trials:
        cls = "trial" if t["state"] == "COMPLETE" else "trial pruned"
        tip = f"fold {f['fold']} trial {t['number'] + 1}: {pct(t['value'])} ({t['state']})"
        out.append(
            f'<circle cx="{x(t["number"]):.1f}" cy="{y(t["value"]):.1f}" r="2.6" '
            f'class="{cls}"><title>{_E(tip)}</title></circle>'
        )
    return out, curve


def _nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """Round tick values (steps of 1, 2, 2.5 or 5 x 10^k) covering ``[lo, hi]``."""
    span = hi - lo
    if not span > 0:
        return [lo]
    raw = span / target
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    out = []
    v = first
    while v <= hi + 1e-9:
        out.append(round(v, 10))
        v += step
    return out


def cd_svg(cd: dict[str, Any]) -> None:
    """Draw the critical-difference diagram of the view's ``cd`` section into ``cd["svg"]``; a
    diagram that cannot be drawn leaves the section without a result, saying why."""
    plot = cd["plot"]
    if plot is None:
        return
    try:
        svg = stats.cd_diagram_svg(
            plot["avg_ranks"],
            plot["cd"],
            title=f"average rank of each family over {plot['n_blocks']} blocks (1 = best)",
        )
    except Exception as exc:
        cd["reason"] = f"the Friedman test could not run: {exc}"
        cd["result"] = None
        return
    # matplotlib's inline style sheet starts with a universal selector, which inside an
    # HTML page would restyle every other plot: scope it to the diagram
    cd["svg"] = re.sub(r"(<style[^>]*>\s*)\*\s*\{", r"\1#cd-diagram svg *{", svg)


def add_figures(view: dict[str, Any]) -> dict[str, Any]:
    """The view with its figures: ``chart`` per protocol section, ``svg`` per history, and the
    critical-difference diagram (in place; returned for chaining)."""
    for sec in view["protocols"]:
        rows = [dict(t["r"]) for t in sec["table"]]
        sec["chart"] = accuracy_chart_svg(rows, sec["info"]["name"], REFERENCES)
        for h in sec["histories"]:
            h["svg"] = history_svg(h["folds"], h["title"]) if h["folds"] else ""
    cd_svg(view["cd"])
    return view
