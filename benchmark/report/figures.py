"""The page's figures, drawn from the view model (:mod:`.view`) as inline SVG, so the page loads
nothing: the accuracy chart of each protocol, the optimisation histories of its best tuned pairs,
and the critical-difference diagram (matplotlib, through :func:`benchmark.stats.cd_diagram_svg`).
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from benchmark import stats
from benchmark.report.formatting import num, pct
from benchmark.report.settings import REFERENCE_NOTE, REFERENCES, Reference

__all__ = ["NARROW", "WIDE", "ChartLayout", "accuracy_chart_svg", "add_figures", "history_svg"]

_E = html.escape
VERDICT_COLOR = {
    "better": "#1a7f37",
    "worse": "#cf222e",
    "no evidence": "#57606a",
    "baseline": "#0969da",
    "n/a": "#8c959f",
}


@dataclass(frozen=True)
class ChartLayout:
    """Where the accuracy chart puts things (px). Wide: names in a column left of the plot.
    Narrow (a phone): each name on its own line above its whisker, the plot the full width, so
    the chart is drawn near the size it is shown at and its text stays readable."""

    width: int
    label_w: int  # the names' column (0: names above the rows)
    right: int
    row_h: int
    bottom: int = 40
    ticks: int = 8

    @property
    def plot_w(self) -> int:
        return self.width - self.label_w - self.right - (_NARROW_LEFT if self.narrow else 0)

    @property
    def left(self) -> int:
        return _NARROW_LEFT if self.narrow else self.label_w

    @property
    def narrow(self) -> bool:
        return self.label_w == 0


_NARROW_LEFT = 10
#: estimated advance of one character of a 12 px row label (DejaVu Sans, the widest usual
#: fallback; 11 px reference labels scale with it), and the extra height of a second line
_CHAR_W, _LINE_H = 7.0, 15


def _name_lines(r: Mapping[str, Any], lay: ChartLayout) -> list[str]:
    """A pair's name as the chart writes it: one line, or in a narrow chart whose width it
    exceeds, the feature set and ``· family`` on two."""
    fs, fam = str(r["feature_set"]), str(r["family"])
    one = f"{fs} · {fam}"
    if not lay.narrow or _CHAR_W * len(one) <= lay.width - lay.left:
        return [one]
    return [fs, f"· {fam}"]


def _fit_names(lay: ChartLayout, rows: Sequence[Mapping[str, Any]]) -> ChartLayout:
    """A wide layout whose names' column holds the longest name (the plot keeps its width)."""
    if lay.narrow:
        return lay
    longest = max((len(f"{r['feature_set']} · {r['family']}") for r in rows), default=0)
    label_w = max(lay.label_w, min(int(_CHAR_W * longest) + 16, 480))
    return replace(lay, width=lay.width + label_w - lay.label_w, label_w=label_w)


WIDE = ChartLayout(width=844, label_w=260, right=24, row_h=24)
#: about a phone's content width (390 px less the page's margins): drawn near 1:1
NARROW = ChartLayout(width=340, label_w=0, right=14, row_h=36, bottom=44, ticks=5)

_Scale = Callable[[float], float]


def accuracy_chart_svg(
    rows: Sequence[Mapping[str, Any]],
    protocol: str,
    references: Sequence[Reference],
    layout: ChartLayout = WIDE,
) -> str:
    """Horizontal dot-and-whisker chart: pooled out-of-fold accuracy and its bootstrap CI per
    pair, coloured by verdict, with the references as dashed vertical lines."""
    if not rows:
        return ""
    lay = _fit_names(layout, rows)
    title_lines = (
        [f"accuracy under {protocol}", "pooled out-of-fold, 95 % bootstrap CI"]
        if lay.narrow
        else [f"accuracy under {protocol} (pooled out-of-fold, 95 % bootstrap CI)"]
    )
    ref_top = 16 + 16 * len(title_lines)
    top = ref_top + 4 + 14 * len(references)
    # a row whose name does not fit one line of a narrow chart takes two
    lines = [len(_name_lines(r, lay)) for r in rows]
    row_tops = [
        top + sum(lay.row_h + _LINE_H * (n - 1) for n in lines[:i]) for i in range(len(rows))
    ]
    height = top + sum(lay.row_h + _LINE_H * (n - 1) for n in lines) + lay.bottom
    width = lay.width
    lo, hi = _accuracy_range(rows, references)

    def x(v: float) -> float:
        return lay.left + (v - lo) / (hi - lo) * lay.plot_w

    out = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" xmlns="http://www.w3.org/2000/svg">',
        "<title>"
        + _E(f"Accuracy per pair under {protocol}: pooled out-of-fold accuracy, 95 % bootstrap CI")
        + "</title>",
    ]
    for i, line in enumerate(title_lines):
        out.append(f'<text x="{lay.left}" y="{14 + 16 * i}" class="axis-title">{_E(line)}</text>')
    for i in range(0, len(rows), 2):
        h = lay.row_h + _LINE_H * (lines[i] - 1)
        out.append(f'<rect x="0" y="{row_tops[i]}" width="{width}" height="{h}" class="stripe"/>')
    for tick in _nice_ticks(lo, hi, target=lay.ticks):
        xx = x(tick)
        out.append(
            f'<line x1="{xx:.1f}" y1="{top - 6}" x2="{xx:.1f}" y2="{height - lay.bottom + 4}" '
            'class="grid"/>'
        )
        out.append(
            f'<text x="{xx:.1f}" y="{height - lay.bottom + 18}" class="tick" '
            f'text-anchor="middle">{100 * tick:.0f}%</text>'
        )
    for i, ref in enumerate(references):
        if lo <= ref.accuracy <= hi:
            out += _reference_line(
                ref, ref_top + 14 * i, x(ref.accuracy), width, height - lay.bottom
            )
    for r, row_top in zip(rows, row_tops, strict=True):
        out += _pair_marks(r, row_top, x, protocol, lay)
    out.append(
        f'<text x="{lay.left + lay.plot_w / 2}" y="{height - 6}" class="tick" '
        f'text-anchor="middle">colour: verdict against the baseline under {_E(protocol)}</text>'
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


def _reference_line(ref: Reference, y: float, xx: float, width: int, bottom: float) -> list[str]:
    """A reference as a dashed line, labelled to its right, else to its left, else as far
    right as the whole label fits."""
    text = f"{ref.label} (random split?)"
    text_w = 0.9 * _CHAR_W * len(text)  # 11 px
    if xx + 4 + text_w <= width:
        anchor, tx = "start", xx + 4
    elif xx - 4 - text_w >= 0:
        anchor, tx = "end", xx - 4
    else:
        anchor, tx = "start", max(0.0, width - text_w)
    return [
        f'<line x1="{xx:.1f}" y1="{y - 4}" x2="{xx:.1f}" y2="{bottom + 4}" '
        f'class="ref-line"><title>{_E(ref.label)}: {_E(REFERENCE_NOTE)}</title></line>',
        f'<text x="{tx:.1f}" y="{y}" class="ref-label" text-anchor="{anchor}">{_E(text)}</text>',
    ]


def _pair_marks(
    r: Mapping[str, Any], row_top: float, x: _Scale, protocol: str, lay: ChartLayout
) -> list[str]:
    """One pair's row: its label, its CI whisker and its accuracy dot, coloured by verdict."""
    verdict = str(r.get("verdict", "n/a"))
    color = VERDICT_COLOR.get(verdict, "#57606a")
    name = f"{r['feature_set']} · {r['family']}"
    weight = ' font-weight="600"' if verdict == "baseline" else ""
    if lay.narrow:  # the name on its own line(s), the whisker below it
        parts = _name_lines(r, lay)
        y = row_top + lay.row_h - 10 + _LINE_H * (len(parts) - 1)
        out = [
            f'<text x="{lay.left}" y="{row_top + 13 + _LINE_H * i:.1f}" class="row-label"'
            f"{weight}>{_E(part)}</text>"
            for i, part in enumerate(parts)
        ]
    else:
        y = row_top + lay.row_h / 2
        out = [
            f'<text x="{lay.label_w - 10}" y="{y + 4:.1f}" class="row-label" '
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
#: (420 wide: drawn near 1:1 in a phone's column too, its text stays readable)
_H_WIDTH, _H_HEIGHT = 420, 280
_H_LEFT, _H_RIGHT, _H_TOP, _H_BOTTOM = 52, 16, 72, 38


def _wrap(text: str, max_chars: float) -> list[str]:
    """``text`` on at most two lines, broken after a `` · `` where it is too long for one."""
    if len(text) <= max_chars or " · " not in text:
        return [text]
    parts = text.split(" · ")
    cut = max(
        (i for i in range(1, len(parts)) if len(" · ".join(parts[:i])) <= max_chars), default=1
    )
    return [" · ".join(parts[:cut]) + " ·", " · ".join(parts[cut:])]


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
    for i, line in enumerate(
        (
            "dots: trials (hollow: pruned) · thin: best so far per",
            "outer fold · thick: mean over folds",
        )
    ):
        out.append(f'<text x="{_H_LEFT}" y="{46 + 13 * i}" class="tick">{line}</text>')
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
    ]
    for i, line in enumerate(_wrap(title, (width - 8) / (_CHAR_W + 0.5))):  # 12 px, semibold
        out.append(f'<text x="4" y="{14 + 15 * i}" class="axis-title">{_E(line)}</text>')
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
    """Draw the critical-difference diagram of the view's ``cd`` section into ``cd["svg"]``, and
    on its side for a phone into ``cd["svg_narrow"]``; a diagram that cannot be drawn leaves the
    section without a result, saying why."""
    plot = cd["plot"]
    if plot is None:
        return
    title = f"average rank of each family over {plot['n_blocks']} blocks (1 = best)"
    try:
        svgs = [
            stats.cd_diagram_svg(plot["avg_ranks"], plot["cd"], title=title, narrow=narrow)
            for narrow in (False, True)
        ]
    except Exception as exc:
        cd["reason"] = f"the Friedman test could not run: {exc}"
        cd["result"] = None
        return
    # matplotlib's inline style sheet starts with a universal selector, which inside an
    # HTML page would restyle every other plot: scope it to the diagram
    cd["svg"], cd["svg_narrow"] = (
        re.sub(r"(<style[^>]*>\s*)\*\s*\{", r"\1#cd-diagram svg *{", svg) for svg in svgs
    )


def add_figures(view: dict[str, Any]) -> dict[str, Any]:
    """The view with its figures: ``chart`` and ``chart_narrow`` (a phone's) per protocol
    section, ``svg`` per history, and the critical-difference diagram (in place; returned for
    chaining)."""
    for sec in view["protocols"]:
        rows = [dict(t["r"]) for t in sec["table"]]
        sec["chart"] = accuracy_chart_svg(rows, sec["info"]["name"], REFERENCES, WIDE)
        sec["chart_narrow"] = accuracy_chart_svg(rows, sec["info"]["name"], REFERENCES, NARROW)
        for h in sec["histories"]:
            h["svg"] = history_svg(h["folds"], h["title"]) if h["folds"] else ""
    cd_svg(view["cd"])
    return view
