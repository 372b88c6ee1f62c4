"""The page of ``genrebench evaluate``: a small self-contained HTML file in the leaderboard's
style (the same inline styles, ``benchmark/templates/_style.css.j2``; nothing loaded from the
network) showing the model, the protocol note, the metrics with their intervals, per-class
recall, the confusion matrix, the skipped labels and the failed files.

Machine-readable values for checks: the metrics table (``table#metrics``) carries one row per
score with ``data-metric`` and the exact ``data-value``, ``data-ci-low``, ``data-ci-high``
(Python ``repr``, ``nan`` when missing); the confusion matrix (``table#confusion``) one
``data-count`` per cell.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark.report.formatting import exact

if TYPE_CHECKING:
    from benchmark.inference.song_evaluation import Metric, SongEvaluation

__all__ = ["song_evaluation_context", "render_song_evaluation", "write_song_evaluation_page"]

_NAMES = {
    "accuracy": "Accuracy",
    "balanced_accuracy": "Balanced accuracy",
    "macro_f1": "Macro-F1",
}


def _metric(name: str, label: str, m: Metric, n: int) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "value": m.value,
        "ci_low": m.ci_low,
        "ci_high": m.ci_high,
        "exact": {k: exact(getattr(m, k)) for k in ("value", "ci_low", "ci_high")},
        "n": n,
    }


def _confusion(ev: SongEvaluation) -> list[dict[str, Any]]:
    """Rows of the confusion matrix, each cell shaded by its share of the row."""
    m = ev.metrics
    rows = []
    for label, counts in zip(m.labels, m.confusion, strict=True):
        total = max(sum(counts), 1)
        cells = []
        for pred, count in zip(m.predicted, counts, strict=True):
            share = count / total
            text = "#fff" if share > 0.55 else "#1f2328"
            cells.append(
                {
                    "count": count,
                    "diag": pred == label,
                    "style": f"background: rgba(19, 64, 116, {share:.3f}); color: {text}",
                }
            )
        rows.append({"label": label, "cells": cells, "total": sum(counts)})
    return rows


def song_evaluation_context(ev: SongEvaluation) -> dict[str, Any]:
    """What the page shows, as plain values."""
    from benchmark.inference.song_evaluation import PROTOCOL_NOTE

    m = ev.metrics
    overall = [_metric(k, v, getattr(m, k), m.n) for k, v in _NAMES.items()]
    recall = [_metric(f"recall_{c}", c, r, m.support[c]) for c, r in m.recall.items()]
    return {
        "model": ev.model_info(),
        "source": ev.source,
        "mapping": ev.mapping,
        "windows": ev.windows,
        "protocol_note": PROTOCOL_NOTE,
        "counts": {s: ev.count(s) for s in ("scored", "error", "skipped")},
        "n_files": len(ev.rows),
        "overall": overall,
        "recall": recall,
        "labels": m.labels,
        "predicted": m.predicted,
        "confusion": _confusion(ev),
        "skipped_labels": ev.skipped_labels,
        "failed": [
            {"file": r["file"], "label": r["label"], "error": r["error"]} for r in ev.failed
        ],
        "bootstrap": {"n_boot": m.n_boot, "seed": m.seed, "alpha": m.alpha},
        "tracking": ev.tracking,
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def render_song_evaluation(ev: SongEvaluation) -> str:
    """The page's HTML (everything escaped: it holds no markup of its own)."""
    from benchmark.report.page import _environment

    return (
        _environment().get_template("song_evaluation.html.j2").render(**song_evaluation_context(ev))
    )


def write_song_evaluation_page(ev: SongEvaluation, path: str | os.PathLike[str]) -> Path:
    """Write the page to ``path`` (atomically; its folder created); returns the path."""
    from benchmark.report.page import _atomic_write

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(out, render_song_evaluation(ev))
    return out
