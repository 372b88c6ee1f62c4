"""The critical-difference diagram as inline SVG; its own module so that matplotlib, imported
lazily here, stays out of every caller that only needs numbers."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from benchmark.stats.rank_tests import cd_groups

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _escape_mathtext(s: str) -> str:
    return s.replace("$", r"\$")


def cd_diagram_svg(
    avg_ranks: Mapping[str, float], cd: float, title: str = "", *, narrow: bool = False
) -> str:
    """Critical-difference diagram (Demšar, 2006, Fig. 1) as a self-contained inline SVG.

    A rank axis (1 = best, on the left), each family hanging from its average rank with its name
    (the better half on the left, the rest on the right), thick bars joining families that are
    not significantly different (:func:`cd_groups`), and the CD itself as a bar above the axis.
    Drawn on a bare matplotlib ``Figure`` (no pyplot state, no GUI backend), text kept as SVG
    text, no XML prolog or DOCTYPE, no clip paths: it can be pasted into an HTML page as is.
    """
    import matplotlib

    with matplotlib.rc_context(_CD_RC):
        fig = (_cd_figure_narrow if narrow else _cd_figure)(avg_ranks, cd, title)
        buf = io.StringIO()
        fig.savefig(
            buf,
            format="svg",
            metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
        )
    svg = buf.getvalue()
    return svg[svg.index("<svg") :].strip()


_CD_RC = {"svg.fonttype": "none", "svg.hashsalt": "genrebench", "font.size": 9}


def _ranked(
    avg_ranks: Mapping[str, float], cd: float
) -> tuple[list[tuple[str, float]], int, list[tuple[str, ...]]]:
    """The families best first, the last rank of the axis (it starts at 1), and the groups
    not significantly different."""
    if not avg_ranks:
        raise ValueError("no families to draw")
    items = sorted(((str(n), float(r)) for n, r in avg_ranks.items()), key=lambda kv: kv[1])
    hi = max(len(items), 2, math.ceil(max(r for _, r in items)))
    return items, hi, cd_groups(dict(items), cd)


def _cd_figure(avg_ranks: Mapping[str, float], cd: float, title: str) -> Figure:
    """Draw the CD diagram on a bare Figure; call it inside ``rc_context(_CD_RC)``."""
    from matplotlib.figure import Figure

    items, hi, groups = _ranked(avg_ranks, cd)
    k, lo = len(items), 1

    left_n = math.ceil(k / 2)
    longest = max(len(n) for n, _ in items) + 7  # " (1.23)"
    text_in = 0.35 + 0.08 * longest  # room for names on each side (9 pt, ~0.6 em per char)
    width = 2 * text_in + 4.5
    text_frac = text_in / width
    axis_y = 0.95 if title else 0.7
    group_step, name_step = 0.12, 0.24
    names_y = axis_y + 0.25 + group_step * len(groups) + 0.1
    height = names_y + name_step * max(left_n, k - left_n) + 0.15

    def x_of(rank: float) -> float:
        return text_frac + (rank - lo) / (hi - lo) * (1 - 2 * text_frac)

    line = {"color": "black", "linewidth": 0.9, "clip_on": False}
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.set_xlim(0, 1)
    ax.set_ylim(height, 0)

    if title:
        ax.text(0.5, 0.18, _escape_mathtext(title), ha="center", va="center", fontsize=11)
    # rank axis with ticks at integers and half ranks
    ax.plot([x_of(lo), x_of(hi)], [axis_y, axis_y], **line)
    for tick in np.arange(lo, hi + 0.25, 0.5):
        size = 0.08 if float(tick).is_integer() else 0.04
        ax.plot([x_of(tick)] * 2, [axis_y - size, axis_y], **line)
        if float(tick).is_integer():
            ax.text(x_of(tick), axis_y - 0.12, f"{int(tick)}", ha="center", va="bottom")
    # the CD bar, from rank 1
    if np.isfinite(cd) and cd > 0:
        cd_y = axis_y - 0.38
        end = min(lo + cd, hi)
        ax.plot([x_of(lo), x_of(end)], [cd_y, cd_y], color="black", linewidth=1.5, clip_on=False)
        for xx in (x_of(lo), x_of(end)):
            ax.plot([xx, xx], [cd_y - 0.04, cd_y + 0.04], **line)
        ax.text((x_of(lo) + x_of(end)) / 2, cd_y - 0.06, f"CD = {cd:.2f}", ha="center", va="bottom")
    # families
    for i, (name, rank) in enumerate(items):
        label = _escape_mathtext(f"{name} ({rank:.2f})")
        if i < left_n:
            y = names_y + name_step * i
            edge, ha, tx = text_frac - 0.02, "right", text_frac - 0.03
        else:
            y = names_y + name_step * (k - 1 - i)
            edge, ha, tx = 1 - text_frac + 0.02, "left", 1 - text_frac + 0.03
        ax.plot([x_of(rank), x_of(rank), edge], [axis_y, y, y], **line)
        ax.text(tx, y, label, ha=ha, va="center")
    # groups not significantly different
    for j, grp in enumerate(groups):
        r = dict(items)
        y = axis_y + 0.25 + group_step * j
        ax.plot(
            [x_of(r[grp[0]]) - 0.006, x_of(r[grp[-1]]) + 0.006],
            [y, y],
            color="black",
            linewidth=3,
            solid_capstyle="butt",
            clip_on=False,
        )
    return fig


def _cd_figure_narrow(avg_ranks: Mapping[str, float], cd: float, title: str) -> Figure:
    """The diagram on its side (rank 1 at the top), for a narrow screen; call it inside
    ``rc_context(_CD_RC)``. Names are listed in rank order on the right, each joined to its
    rank; groups not significantly different are thick bars beside the axis, the CD a bar on
    its left."""
    from matplotlib.figure import Figure

    items, hi, groups = _ranked(avg_ranks, cd)
    k, lo = len(items), 1
    ranks = dict(items)

    longest = max(len(n) for n, _ in items) + 7  # " (1.23)"
    axis_x = 0.55
    names_x = axis_x + 0.2 + 0.1 * len(groups) + 0.3
    width = names_x + 0.08 * longest + 0.1
    top = 0.7 if title else 0.45  # the title, then the CD label above rank 1
    span = max(0.24 * (k - 1), 1.6)  # rank 1 to the last rank, and the names' column
    height = top + span + 0.25

    def y_of(rank: float) -> float:
        return top + (rank - lo) / (hi - lo) * span

    line = {"color": "black", "linewidth": 0.9, "clip_on": False}
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)

    if title:
        ax.text(0.08, 0.22, _escape_mathtext(title), ha="left", va="center", fontsize=9, wrap=True)
    ax.plot([axis_x, axis_x], [y_of(lo), y_of(hi)], **line)
    for tick in np.arange(lo, hi + 0.25, 0.5):
        size = 0.08 if float(tick).is_integer() else 0.04
        ax.plot([axis_x - size, axis_x], [y_of(tick)] * 2, **line)
        if float(tick).is_integer():
            ax.text(axis_x - 0.11, y_of(tick), f"{int(tick)}", ha="right", va="center")
    if np.isfinite(cd) and cd > 0:  # the CD, from rank 1, left of the tick labels
        end = min(lo + cd, hi)
        ax.plot([0.12, 0.12], [y_of(lo), y_of(end)], color="black", linewidth=1.5, clip_on=False)
        for yy in (y_of(lo), y_of(end)):
            ax.plot([0.08, 0.16], [yy, yy], **line)
        ax.text(0.06, y_of(lo) - 0.14, f"CD = {cd:.2f}", ha="left", va="bottom")
    step = span / max(k - 1, 1)
    for i, (name, rank) in enumerate(items):
        y = top + step * i
        ax.plot([axis_x, names_x - 0.25, names_x - 0.06], [y_of(rank), y_of(rank), y], **line)
        label = _escape_mathtext(f"{name} ({rank:.2f})")
        ax.text(names_x, y, label, ha="left", va="center")
    for j, grp in enumerate(groups):
        x = axis_x + 0.15 + 0.1 * j
        ax.plot(
            [x, x],
            [y_of(ranks[grp[0]]) - 0.03, y_of(ranks[grp[-1]]) + 0.03],
            color="black",
            linewidth=3,
            solid_capstyle="butt",
            clip_on=False,
        )
    return fig
