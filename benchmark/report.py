"""The leaderboard: one self-contained HTML page answering "which pair is best, and is it real?".

:func:`write_report` reads only what a run wrote under ``results/<benchmark>/``
(``results.parquet``, ``predictions.parquet``, ``splits.parquet``, ``run.json``, see
:mod:`benchmark.results`) plus the Optuna storage for the optimisation histories, computes every
statistic through :mod:`benchmark.stats`, and renders ``leaderboard.html`` from the jinja2
template ``benchmark/templates/leaderboard.html.j2``.

The page needs no network: plots are inline SVG (drawn here, or by matplotlib for the
critical-difference diagram), styles and the small table-sorting script are inline, and nothing
is loaded from anywhere. Every number sits under a heading or caption that names its protocol.
Partial results (one protocol, one family, skipped or failed pairs, no baseline, no predictions,
no Optuna storage) still give a page; what could not be computed says why.

Machine-readable values for checks: every leaderboard row (``tr.pair-row``) carries
``data-protocol``, ``data-feature-set``, ``data-family`` and the exact floats (Python ``repr``)
of ``accuracy, oof_accuracy, ci_low, ci_high, delta, delta_ci_low, delta_ci_high, p_value,
p_holm`` as ``data-*`` attributes (``nan`` when missing), plus ``data-verdict``; each table
carries ``data-n-boot``, ``data-seed`` and ``data-alpha`` (the bootstrap and test settings).
"""

from __future__ import annotations

import html
import json
import logging
import math
import os
import re
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark import stats
from benchmark.ensembles import ENSEMBLE_FEATURE_SET, members_of
from benchmark.errors import GenrebenchError
from benchmark.results import summarize_pairs
from benchmark.storage import default_tracking_uri

__all__ = [
    "ALPHA",
    "DEFAULT_BASELINE",
    "LEADERBOARD",
    "MLFLOW_UI_ENV",
    "N_BOOT",
    "REFERENCES",
    "Reference",
    "build_context",
    "find_results_dir",
    "mlflow_ui_argv",
    "render",
    "write_report",
]

log = logging.getLogger(__name__)

LEADERBOARD = "leaderboard.html"
#: bootstrap resamples of every interval on the page
N_BOOT = 2000
#: significance level of every verdict (after Holm's adjustment)
ALPHA = 0.05
#: used only when run.json is missing (the config default)
DEFAULT_BASELINE = {"feature_set": "csv_30s", "family": "seed_mlp"}
#: optimisation histories drawn per protocol (the best pairs that were tuned)
N_HISTORIES = 3

#: what each known protocol means for the size of the numbers
PROTOCOL_KIND = {
    "stratified_kfold": (
        "optimistic",
        "random split: the same artists appear in training and test folds, which inflates "
        "accuracy on GTZAN",
    ),
    "artist_kfold": ("honest", "artist-grouped: every artist on one side of each split"),
    "fault_filtered": (
        "honest",
        "the fault-filtered split (Kereliuk, Sturm & Larsen 2015): one fixed test part, "
        "artists and repeated clips kept apart",
    ),
}


@dataclass(frozen=True)
class Reference:
    """A number reported elsewhere, drawn as a reference line (never rerun, never tested)."""

    key: str
    label: str
    accuracy: float
    feature_set: str
    detail: str


REFERENCES = (
    Reference(
        "seed_csv_mlp",
        "seed author: CSV MLP ≈ 60 %",
        0.60,
        "csv_30s",
        "5-layer tanh MLP (57→20→20→15→12→10) on features_30_sec.csv; rerun here as the "
        "baseline family seed_mlp under every protocol",
    ),
    Reference(
        "seed_cnn",
        "seed author: spectrogram CNN ≈ 40 %",
        0.40,
        "spectrogram_img",
        "a small CNN on the images_original spectrogram PNGs; not a family of this benchmark",
    ),
)

REFERENCE_NOTE = (
    "Reported by the seed author, not measured by this run. They were probably measured on a "
    "random train/test split, that is under the optimistic protocol (stratified_kfold: tracks "
    "of the same artist on both sides), so they are comparable with stratified_kfold numbers "
    "only; under artist_kfold or fault_filtered expect them to be lower (on features_30_sec.csv "
    "a random split gives ≈ 65–76 %, artist-grouped ≈ 49–55 %, fault-filtered ≈ 45–53 %)."
)

VERDICT_MARK = {
    "better": ("▲", "better", "significantly better than the baseline (Holm-adjusted p < α)"),
    "worse": ("▼", "worse", "significantly worse than the baseline (Holm-adjusted p < α)"),
    "no evidence": ("●", "no evidence", "no significant difference from the baseline"),
    "baseline": ("◆", "baseline", "the baseline pair every other pair is compared with"),
    "n/a": ("–", "n/a", "no test possible"),
}

TEST_LABEL = {
    "corrected_t": "corrected resampled t-test (Nadeau & Bengio 2003) on per-fold accuracies",
    "mcnemar": "exact McNemar test on per-track correctness",
    "": "",
}


# --------------------------------------------------------------------------------------------
# finding a results folder
# --------------------------------------------------------------------------------------------


def find_results_dir(path: str | Path | None = None, *, root: str | Path = "results") -> Path:
    """The benchmark folder to report on.

    ``path`` holding ``results.parquet`` is used as is; a folder of benchmark folders (or, with
    no ``path``, ``root``) gives its most recently written benchmark.
    """
    base = Path(path) if path is not None else Path(root)
    if (base / "results.parquet").is_file():
        return base
    if not base.is_dir():
        raise GenrebenchError(
            f"no results folder {base}: run `genrebench run` first, or name a results/<benchmark> "
            "folder"
        )
    candidates = [p.parent for p in base.glob("*/results.parquet")]
    if not candidates:
        raise GenrebenchError(
            f"no results.parquet in {base} or its subfolders: run `genrebench run` first"
        )
    return max(candidates, key=lambda p: ((p / "results.parquet").stat().st_mtime, str(p)))


# --------------------------------------------------------------------------------------------
# reading the files
# --------------------------------------------------------------------------------------------


@dataclass
class Inputs:
    results_dir: Path
    results: pd.DataFrame
    predictions: pd.DataFrame
    splits: pd.DataFrame
    run: dict[str, Any]
    baseline: dict[str, str]
    seed: int
    notes: list[str] = field(default_factory=list)


def _read_parquet(path: Path, notes: list[str], what: str) -> pd.DataFrame | None:
    if not path.is_file():
        notes.append(f"{path.name} is missing: {what}")
        return None
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # a corrupt file must not take the whole page down
        notes.append(f"{path.name} could not be read ({type(exc).__name__}: {exc}): {what}")
        return None


def load_inputs(results_dir: Path) -> Inputs:
    """The results files of one benchmark; only ``results.parquet`` is required."""
    results_dir = Path(results_dir)
    path = results_dir / "results.parquet"
    if not path.is_file():
        raise GenrebenchError(f"no results.parquet in {results_dir}: run `genrebench run` first")
    try:
        results = pd.read_parquet(path)
    except Exception as exc:
        raise GenrebenchError(f"cannot read {path}: {type(exc).__name__}: {exc}") from exc
    notes: list[str] = []
    for col in ("feature_set", "family", "protocol", "fold", "status"):
        if col not in results.columns:
            raise GenrebenchError(f"{path} lacks the column {col!r}: not a genrebench results file")
    for col in ("accuracy", "balanced_accuracy", "macro_f1", "n_train", "n_test", "message"):
        if col not in results.columns:
            results[col] = math.nan if col != "message" else ""
            notes.append(f"results.parquet lacks {col!r}")
    predictions = _read_parquet(
        results_dir / "predictions.parquet",
        notes,
        "no confidence intervals, McNemar tests or confusion matrices",
    )
    if predictions is None:
        predictions = pd.DataFrame(
            columns=["feature_set", "family", "protocol", "fold", "track_id", "correct"]
        )
    splits = _read_parquet(results_dir / "splits.parquet", notes, "split sizes unknown")
    run: dict[str, Any] = {}
    run_path = results_dir / "run.json"
    if run_path.is_file():
        try:
            run = json.loads(run_path.read_text())
        except (OSError, ValueError) as exc:
            notes.append(f"run.json could not be read ({exc}): provenance unknown")
    else:
        notes.append("run.json is missing: provenance unknown (was the run interrupted?)")
    baseline = dict(DEFAULT_BASELINE)
    cfg_base = (run.get("config") or {}).get("baseline")
    if isinstance(cfg_base, Mapping) and {"feature_set", "family"} <= set(cfg_base):
        baseline = {"feature_set": str(cfg_base["feature_set"]), "family": str(cfg_base["family"])}
    elif run:
        notes.append(f"run.json names no baseline: assuming {baseline}")
    seed = run.get("seed", (run.get("config") or {}).get("seed", 0))
    try:
        seed = int(seed)
    except (TypeError, ValueError):
        seed = 0
    return Inputs(
        results_dir=results_dir,
        results=results,
        predictions=predictions,
        splits=splits if splits is not None else pd.DataFrame(),
        run=run,
        baseline=baseline,
        seed=seed,
        notes=notes,
    )


def compute_comparison(inputs: Inputs) -> tuple[pd.DataFrame, list[str]]:
    """:func:`benchmark.stats.compare_to_baseline` on the files, with the page's settings
    (``N_BOOT`` resamples, the benchmark's seed, ``ALPHA``). Tests recompute it this way."""
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", stats.StatsWarning)
        try:
            cmp = stats.compare_to_baseline(
                inputs.results,
                inputs.predictions,
                inputs.baseline,
                n_boot=N_BOOT,
                seed=inputs.seed,
                alpha=ALPHA,
            )
        except ValueError as exc:  # malformed tables: show what is there, say why no stats
            notes.append(f"no comparison with the baseline could be computed: {exc}")
            cmp = pd.DataFrame(columns=list(stats.COMPARISON_COLUMNS))
    for w in caught:
        if issubclass(w.category, stats.StatsWarning):
            notes.append(str(w.message))
    return cmp, sorted(set(notes))


# --------------------------------------------------------------------------------------------
# formatting
# --------------------------------------------------------------------------------------------


def _num(value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return math.nan
    return v


def _exact(value: Any) -> str:
    """A float as a data attribute: ``repr`` round-trips exactly; NaN is ``nan``."""
    v = _num(value)
    return "nan" if math.isnan(v) else repr(v)


def _pct(value: Any, digits: int = 1) -> str:
    v = _num(value)
    return "–" if math.isnan(v) else f"{100 * v:.{digits}f} %"


def _pp(value: Any, digits: int = 1) -> str:
    """A difference of accuracies in percentage points."""
    v = _num(value)
    if math.isnan(v):
        return "–"
    return f"{100 * v:+.{digits}f} pp".replace("-", "−")


def _pval(value: Any) -> str:
    v = _num(value)
    if math.isnan(v):
        return "–"
    if v < 0.001:
        return "< 0.001"
    return f"{v:.3f}"


def _secs(value: Any) -> str:
    v = _num(value)
    if math.isnan(v):
        return "–"
    if v >= 100:
        return f"{v:.0f} s"
    if v >= 1:
        return f"{v:.1f} s"
    return f"{v:.2f} s"


def _short(text: Any, n: int = 12) -> str:
    s = str(text or "")
    return s[:n]


# --------------------------------------------------------------------------------------------
# inline SVG plots
# --------------------------------------------------------------------------------------------

_E = html.escape
VERDICT_COLOR = {
    "better": "#1a7f37",
    "worse": "#cf222e",
    "no evidence": "#57606a",
    "baseline": "#0969da",
    "n/a": "#8c959f",
}


def accuracy_chart_svg(
    rows: Sequence[Mapping[str, Any]], protocol: str, references: Sequence[Reference]
) -> str:
    """Horizontal dot-and-whisker chart: pooled out-of-fold accuracy and its bootstrap CI per
    pair, coloured by verdict, with the references as dashed vertical lines."""
    if not rows:
        return ""
    label_w, plot_w, right = 260, 560, 24
    row_h, bottom = 24, 40
    top = 34 + 14 * len(references)
    height = top + row_h * len(rows) + bottom
    width = label_w + plot_w + right
    lows = [_num(r["ci_low"]) for r in rows] + [_num(r["oof_accuracy"]) for r in rows]
    highs = [_num(r["ci_high"]) for r in rows] + [_num(r["oof_accuracy"]) for r in rows]
    finite_lo = [v for v in lows if math.isfinite(v)] + [ref.accuracy for ref in references]
    finite_hi = [v for v in highs if math.isfinite(v)] + [ref.accuracy for ref in references]
    lo = max(0.0, math.floor((min(finite_lo, default=0.0) - 0.02) * 10) / 10)
    hi = min(1.0, math.ceil((max(finite_hi, default=1.0) + 0.02) * 10) / 10)
    if hi - lo < 0.2:
        hi = min(1.0, lo + 0.2)
        lo = max(0.0, hi - 0.2)

    def x(v: float) -> float:
        return label_w + (v - lo) / (hi - lo) * plot_w

    out = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" xmlns="http://www.w3.org/2000/svg">',
        "<title>"
        + _E(f"Accuracy per pair under {protocol}: pooled out-of-fold accuracy, 95 % bootstrap CI")
        + "</title>",
        f'<text x="{label_w}" y="14" class="axis-title">accuracy under {_E(protocol)} '
        "(pooled out-of-fold, 95 % bootstrap CI)</text>",
    ]
    for i in range(0, len(rows), 2):
        out.append(
            f'<rect x="0" y="{top + row_h * i}" width="{width}" height="{row_h}" class="stripe"/>'
        )
    # grid
    for tick in _nice_ticks(lo, hi, target=8):
        xx = x(tick)
        out.append(
            f'<line x1="{xx:.1f}" y1="{top - 6}" x2="{xx:.1f}" y2="{height - bottom + 4}" '
            'class="grid"/>'
        )
        out.append(
            f'<text x="{xx:.1f}" y="{height - bottom + 18}" class="tick" '
            f'text-anchor="middle">{100 * tick:.0f}%</text>'
        )
    # references
    for i, ref in enumerate(references):
        if not lo <= ref.accuracy <= hi:
            continue
        xx = x(ref.accuracy)
        out.append(
            f'<line x1="{xx:.1f}" y1="{30 + 14 * i}" x2="{xx:.1f}" y2="{height - bottom + 4}" '
            f'class="ref-line"><title>{_E(ref.label)}: {_E(REFERENCE_NOTE)}</title></line>'
        )
        text = f"{ref.label} (random split?)"
        fits_right = xx + 4 + 6.2 * len(text) <= width  # ~6.2 px per character at 11 px
        anchor, dx = ("start", 4) if fits_right else ("end", -4)
        out.append(
            f'<text x="{xx + dx:.1f}" y="{34 + 14 * i}" class="ref-label" '
            f'text-anchor="{anchor}">{_E(text)}</text>'
        )
    # rows
    for i, r in enumerate(rows):
        y = top + row_h * i + row_h / 2
        verdict = str(r.get("verdict", "n/a"))
        color = VERDICT_COLOR.get(verdict, "#57606a")
        name = f"{r['feature_set']} · {r['family']}"
        weight = ' font-weight="600"' if verdict == "baseline" else ""
        out.append(
            f'<text x="{label_w - 10}" y="{y + 4:.1f}" class="row-label" '
            f'text-anchor="end"{weight}>{_E(name)}</text>'
        )
        acc, cl, ch = _num(r["oof_accuracy"]), _num(r["ci_low"]), _num(r["ci_high"])
        tip = (
            f"{name} under {protocol}: {_pct(acc)} pooled out-of-fold, 95 % CI "
            f"[{_pct(cl)}, {_pct(ch)}]; verdict: {verdict}"
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
    out.append(
        f'<text x="{label_w + plot_w / 2}" y="{height - 6}" class="tick" text-anchor="middle">'
        f"colour: verdict against the baseline under {_E(protocol)}</text>"
    )
    out.append("</svg>")
    return "\n".join(out)


def history_svg(folds: Sequence[Mapping[str, Any]], title: str) -> str:
    """Optuna optimisation history of one pair: every trial's inner-CV accuracy (dots; hollow =
    pruned, at its last reported value) and the best value so far per outer fold (thin steps),
    with the mean of the per-fold best-so-far curves (thick)."""
    points = [(t["number"], t["value"]) for f in folds for t in f["trials"]]
    if not points:
        return ""
    width, height = 520, 260
    left, right, top, bottom = 52, 16, 44, 38
    pw, ph = width - left - right, height - top - bottom
    n_max = max(n for n, _ in points) + 1
    vals = [v for _, v in points]
    lo, hi = min(vals), max(vals)
    pad = max(0.02, (hi - lo) * 0.1)
    lo, hi = max(0.0, lo - pad), min(1.0, hi + pad)
    if hi - lo < 1e-9:
        lo, hi = max(0.0, lo - 0.05), min(1.0, hi + 0.05)

    def x(n: float) -> float:
        return left + (n / max(n_max - 1, 1)) * pw if n_max > 1 else left + pw / 2

    def y(v: float) -> float:
        return top + (hi - v) / (hi - lo) * ph

    out = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{_E(title)}</title>",
        f'<text x="{left}" y="14" class="axis-title">{_E(title)}</text>',
    ]
    for v in _nice_ticks(lo, hi):
        out.append(
            f'<line x1="{left}" y1="{y(v):.1f}" x2="{width - right}" y2="{y(v):.1f}" class="grid"/>'
        )
        out.append(
            f'<text x="{left - 6}" y="{y(v) + 4:.1f}" class="tick" text-anchor="end">'
            f"{100 * v:.0f}%</text>"
        )
    out.append(
        f'<text x="14" y="{top + ph / 2:.1f}" class="tick" text-anchor="middle" '
        f'transform="rotate(-90 14 {top + ph / 2:.1f})">inner-CV accuracy</text>'
    )
    ticks = sorted({0, n_max - 1, (n_max - 1) // 2})
    for n in ticks:
        out.append(
            f'<text x="{x(n):.1f}" y="{height - bottom + 16}" class="tick" '
            f'text-anchor="middle">{n + 1}</text>'
        )
    out.append(
        f'<text x="{left + pw / 2}" y="{height - 6}" class="tick" text-anchor="middle">'
        "trial (per outer-fold study)</text>"
    )
    best_curves: list[list[float]] = []
    for f in folds:
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
        if len(path) > 1:
            out.append(f'<polyline points="{" ".join(path)}" class="best-fold"/>')
        if curve:
            best_curves.append(curve)
        for t in trials:
            cls = "trial" if t["state"] == "COMPLETE" else "trial pruned"
            tip = f"fold {f['fold']} trial {t['number'] + 1}: {_pct(t['value'])} ({t['state']})"
            out.append(
                f'<circle cx="{x(t["number"]):.1f}" cy="{y(t["value"]):.1f}" r="2.6" '
                f'class="{cls}"><title>{_E(tip)}</title></circle>'
            )
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
        f'<text x="{left}" y="30" class="tick">dots: trials (hollow: pruned) · '
        "thin: best so far per outer fold · thick: mean over folds</text>"
    )
    out.append("</svg>")
    return "\n".join(out)


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


# --------------------------------------------------------------------------------------------
# Optuna
# --------------------------------------------------------------------------------------------


class _Trials:
    """The trials of named studies, from ``trials.parquet`` (the report never opens the
    Optuna storage: the results files are its whole input)."""

    def __init__(self, results_dir: Path) -> None:
        path = Path(results_dir) / "trials.parquet"
        self.error = ""
        self._by_study: dict[str, pd.DataFrame] = {}
        if not path.is_file():
            self.error = "no trials.parquet (written by genrebench run; `genrebench report "
            self.error += "--storage URL` writes it from the Optuna storage)"
            return
        try:
            table = pd.read_parquet(path)
        except Exception as exc:
            self.error = f"trials.parquet could not be read: {type(exc).__name__}: {exc}"[:300]
            return
        self._by_study = {str(k): g for k, g in table.groupby("study_name", sort=False)}

    def trials(self, name: str) -> list[dict[str, Any]] | None:
        """Finished trials of a study as ``{number, value, state}``; None if unavailable."""
        g = self._by_study.get(name)
        if g is None:
            return None
        out = []
        for t in g.sort_values("number").itertuples():
            if t.state == "COMPLETE" and math.isfinite(t.value):
                value = float(t.value)
            elif t.state == "PRUNED":
                steps = json.loads(t.intermediate or "{}")
                if not steps:
                    continue
                value = float(steps[max(steps, key=int)])
            else:
                continue
            if math.isfinite(value):
                out.append({"number": int(t.number), "value": value, "state": str(t.state)})
        return out


# --------------------------------------------------------------------------------------------
# the page's content
# --------------------------------------------------------------------------------------------


def _per_genre(preds: pd.DataFrame) -> dict[str, float]:
    if preds.empty or "y_true" not in preds.columns:
        return {}
    correct = (
        preds["correct"].astype(bool)
        if "correct" in preds.columns
        else preds["y_true"].astype(str) == preds["y_pred"].astype(str)
    )
    return {
        str(k): float(v) for k, v in correct.groupby(preds["y_true"].astype(str)).mean().items()
    }


def _classes(preds: pd.DataFrame) -> list[str]:
    classes = [c.removeprefix("proba_") for c in preds.columns if c.startswith("proba_")]
    seen = set(map(str, preds.get("y_true", []))) | set(map(str, preds.get("y_pred", [])))
    return classes + sorted(seen - set(classes))


def confusion(preds: pd.DataFrame) -> dict[str, Any] | None:
    """Pooled confusion matrix (rows = true genre) with row-normalised shading."""
    if preds.empty or not {"y_true", "y_pred"} <= set(preds.columns):
        return None
    classes = _classes(preds)
    cm = pd.crosstab(preds["y_true"].astype(str), preds["y_pred"].astype(str)).reindex(
        index=classes, columns=classes, fill_value=0
    )
    rows = []
    for true in classes:
        total = int(cm.loc[true].sum())
        cells = []
        for pred in classes:
            n = int(cm.at[true, pred])
            share = n / total if total else 0.0
            cells.append({"n": n, "share": share, "diag": true == pred})
        rows.append({"genre": true, "cells": cells, "total": total})
    return {"classes": classes, "rows": rows, "n": int(cm.to_numpy().sum())}


def _failure_reason(g: pd.DataFrame) -> list[dict[str, str]]:
    """Why a pair is not ranked: its non-done folds, grouped by status and message."""
    parts = []
    bad = g[g["status"] != "done"]
    for (status, message), h in bad.groupby(["status", "message"], sort=False, dropna=False):
        folds = sorted(int(f) for f in h["fold"] if int(f) >= 0)
        where = (
            f" on fold{'s' if len(folds) > 1 else ''} {', '.join(map(str, folds))}" if folds else ""
        )
        text = str(message) if isinstance(message, str) and message else "(no message)"
        parts.append({"status": str(status), "where": where, "message": text})
    return parts


def _params_of(row: Mapping[str, Any]) -> dict[str, Any]:
    raw = row.get("params")
    if not isinstance(raw, str) or not raw:
        return {}
    try:
        val = json.loads(raw)
    except ValueError:
        return {"params": raw}
    return val if isinstance(val, dict) else {"params": val}


def _fmt_param(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _protocol_order(results: pd.DataFrame, run: Mapping[str, Any]) -> list[str]:
    present = [str(p) for p in pd.unique(results["protocol"].astype(str))]
    configured = list(((run.get("config") or {}).get("protocols") or {}).keys())
    order = [p for p in configured if p in present]
    return order + sorted(p for p in present if p not in order)


def _protocol_info(name: str, run: Mapping[str, Any], splits: pd.DataFrame) -> dict[str, Any]:
    info = (run.get("protocols") or {}).get(name) or {}
    kind, kind_text = PROTOCOL_KIND.get(name, ("", ""))
    sizes = ""
    if not splits.empty and {"protocol", "fold", "part"} <= set(splits.columns):
        s = splits[splits["protocol"] == name]
        if len(s):
            n_folds = s["fold"].nunique()
            test = s[s["part"] == "test"].groupby("fold").size()
            train = s[s["part"] == "train"].groupby("fold").size()
            sizes = (
                f"{n_folds} outer fold{'s' if n_folds > 1 else ''}; "
                f"train {int(train.mean()) if len(train) else 0} / "
                f"test {int(test.mean()) if len(test) else 0} tracks per fold (mean)"
            )
    return {
        "name": name,
        "description": str(info.get("description", "")),
        "kind": kind,
        "kind_text": kind_text,
        "sizes": sizes,
        "anchor": "p-" + "".join(c if c.isalnum() else "-" for c in name),
    }


def _holm_family_size(rows: pd.DataFrame) -> int:
    return int(rows.loc[~rows["is_baseline"], "p_value"].notna().sum())


def _protocol_section(
    protocol: str,
    inputs: Inputs,
    cmp: pd.DataFrame,
    summary: pd.DataFrame,
    studies: _Trials,
) -> dict[str, Any]:
    res = inputs.results[inputs.results["protocol"].astype(str) == protocol]
    rows_cmp = cmp[cmp["protocol"].astype(str) == protocol].reset_index(drop=True)
    summ = summary[summary["protocol"].astype(str) == protocol] if len(summary) else summary
    preds = inputs.predictions
    preds_p = preds[preds["protocol"].astype(str) == protocol] if len(preds) else preds
    info = _protocol_info(protocol, inputs.run, inputs.splits)

    def pair_rows(fs: str, fam: str) -> pd.DataFrame:
        return res[(res["feature_set"].astype(str) == fs) & (res["family"].astype(str) == fam)]

    def pair_preds(fs: str, fam: str) -> pd.DataFrame:
        if preds_p.empty:
            return preds_p
        return preds_p[
            (preds_p["feature_set"].astype(str) == fs) & (preds_p["family"].astype(str) == fam)
        ]

    ranks = rows_cmp["accuracy"].rank(method="min", ascending=False)
    table = []
    for i, r in rows_cmp.iterrows():
        fs, fam = str(r["feature_set"]), str(r["family"])
        g = pair_rows(fs, fam)
        done = g[g["status"] == "done"]
        n_trials = int(pd.to_numeric(done.get("n_trials"), errors="coerce").fillna(0).sum())
        n_pruned = int(pd.to_numeric(done.get("n_pruned"), errors="coerce").fillna(0).sum())
        fit_s = float(pd.to_numeric(done.get("fit_s"), errors="coerce").mean())
        tune_s = float(pd.to_numeric(done.get("tune_s"), errors="coerce").sum())
        verdict = str(r["verdict"])
        mark, mark_text, mark_title = VERDICT_MARK.get(verdict, VERDICT_MARK["n/a"])
        test = str(r["test"])
        p_title = ""
        if test:
            p_title = (
                f"{TEST_LABEL.get(test, test)}; raw p = {_pval(r['p_value'])}; Holm over "
                f"{_holm_family_size(rows_cmp)} pair(s) under {protocol}"
            )
            if test == "corrected_t" and math.isfinite(_num(r["t_stat"])):
                p_title += f"; t = {_num(r['t_stat']):.3f}"
        if int(r["n_common"]) and not bool(r["is_baseline"]):
            p_title += (
                f"; McNemar on {int(r['n_common'])} tracks: pair-only right {int(r['mcnemar_b'])},"
                f" baseline-only right {int(r['mcnemar_c'])}, p = {_pval(r['p_mcnemar'])}"
            )
        delta_title = ""
        if math.isfinite(_num(r["delta_ci_low"])):
            delta_title = (
                f"paired bootstrap 95 % CI of the accuracy difference on common tracks: "
                f"[{_pp(r['delta_ci_low'])}, {_pp(r['delta_ci_high'])}]"
            )
        table.append(
            {
                "rank": int(ranks[i]),
                "feature_set": fs,
                "family": fam,
                "is_baseline": bool(r["is_baseline"]),
                "r": r,
                "exact": {
                    k: _exact(r[k])
                    for k in (
                        "accuracy",
                        "accuracy_std",
                        "oof_accuracy",
                        "ci_low",
                        "ci_high",
                        "balanced_accuracy",
                        "macro_f1",
                        "delta",
                        "delta_ci_low",
                        "delta_ci_high",
                        "p_value",
                        "p_holm",
                        "p_mcnemar",
                    )
                },
                "accuracy": _pct(r["accuracy"]),
                "accuracy_std": (
                    f"± {100 * _num(r['accuracy_std']):.1f}"
                    if math.isfinite(_num(r["accuracy_std"]))
                    else ""
                ),
                "ci": f"{_pct(r['ci_low'])} – {_pct(r['ci_high'])}",
                "oof": _pct(r["oof_accuracy"]),
                "balanced_accuracy": _pct(r["balanced_accuracy"]),
                "macro_f1": _pct(r["macro_f1"]),
                "fit_s": _secs(fit_s),
                "fit_s_exact": _exact(fit_s),
                "tune_s": _secs(tune_s),
                "n_trials": n_trials,
                "n_pruned": n_pruned,
                "delta": "" if bool(r["is_baseline"]) else _pp(r["delta"]),
                "delta_title": delta_title,
                "p_holm": _pval(r["p_holm"]),
                "p_title": p_title,
                "test": {"corrected_t": "t", "mcnemar": "McN"}.get(test, ""),
                "verdict": verdict,
                "mark": mark,
                "mark_text": mark_text,
                "mark_title": mark_title,
                "note": str(r["note"] or ""),
                "n_tracks": int(r["n_tracks"]),
            }
        )

    ranked = {(t["feature_set"], t["family"]) for t in table}
    unranked = []
    for (fs, fam), g in res.groupby(["feature_set", "family"], sort=True):
        if (str(fs), str(fam)) in ranked:
            continue
        done = int((g["status"] == "done").sum())
        n = int(len(g[g["fold"] >= 0])) or len(g)
        status_row = (
            summ[(summ["feature_set"] == fs) & (summ["family"] == fam)] if len(summ) else summ
        )
        status = str(status_row["status"].iloc[0]) if len(status_row) else "?"
        reasons = _failure_reason(g)
        if not reasons:
            reasons = [
                {
                    "status": "incomplete",
                    "where": "",
                    "message": "not done on every fold this protocol has",
                }
            ]
        unranked.append(
            {
                "feature_set": str(fs),
                "family": str(fam),
                "status": status,
                "folds": f"{done}/{n}",
                "reasons": reasons,
            }
        )

    base_key = (inputs.baseline["feature_set"], inputs.baseline["family"])
    base_ok = any((t["feature_set"], t["family"]) == base_key for t in table)
    warnings_: list[str] = []
    if table and not base_ok:
        warnings_.append(
            f"the baseline {base_key[0]} · {base_key[1]} is not done on every fold under "
            f"{protocol}: no pair can be tested against it here"
        )

    chart_rows = [dict(t["r"]) for t in table]
    chart = accuracy_chart_svg(chart_rows, protocol, REFERENCES)

    best = None
    if table:
        top = table[0]
        fs, fam = top["feature_set"], top["family"]
        bp = pair_preds(fs, fam)
        base_pg = _per_genre(pair_preds(*base_key)) if not top["is_baseline"] else {}
        own_pg = _per_genre(bp)
        genres = []
        for genre in _classes(bp) if len(bp) else []:
            if genre not in own_pg:
                continue
            b = base_pg.get(genre, math.nan)
            genres.append(
                {
                    "genre": genre,
                    "acc": own_pg[genre],
                    "acc_text": _pct(own_pg[genre], 0),
                    "base": b,
                    "base_text": _pct(b, 0),
                    "delta_text": _pp(own_pg[genre] - b, 0) if math.isfinite(b) else "",
                }
            )
        g = pair_rows(fs, fam)
        done = g[g["status"] == "done"].sort_values("fold")
        folds_params: list[dict[str, Any]] = []
        for _, row in done.iterrows():
            folds_params.append(
                {
                    "fold": int(row["fold"]),
                    "params": {k: _fmt_param(v) for k, v in sorted(_params_of(row).items())},
                    "inner": _pct(row.get("inner_accuracy")),
                    "outer": _pct(row.get("accuracy")),
                }
            )
        best = {
            "label": f"{fs} · {fam}",
            "row": top,
            "confusion": confusion(bp),
            "genres": genres,
            "base_label": f"{base_key[0]} · {base_key[1]}",
            "params": folds_params,
            "param_names": sorted({k for f in folds_params for k in f["params"]}),
        }

    histories: list[dict[str, Any]] = []
    for t in table:
        if len(histories) >= N_HISTORIES:
            break
        if t["n_trials"] + t["n_pruned"] == 0:
            continue
        g = pair_rows(t["feature_set"], t["family"])
        names = [
            (int(r["fold"]), str(r["study_name"]))
            for _, r in g.sort_values("fold").iterrows()
            if isinstance(r.get("study_name"), str) and r.get("study_name")
        ]
        folds = []
        for fold, name in names:
            trials = studies.trials(name)
            if trials:
                folds.append({"fold": fold, "trials": trials})
        label = f"{t['feature_set']} · {t['family']}"
        title = f"{label} · {protocol}"
        histories.append(
            {
                "label": label,
                "svg": history_svg(folds, title) if folds else "",
                "n_studies": len(folds),
                "missing": (
                    "" if folds else (studies.error or "its studies are not in trials.parquet")
                ),
            }
        )

    all_params = []
    for t in table:
        g = pair_rows(t["feature_set"], t["family"])
        done = g[g["status"] == "done"].sort_values("fold")
        per_fold = [
            (
                int(r["fold"]),
                ", ".join(f"{k}={_fmt_param(v)}" for k, v in sorted(_params_of(r).items())),
            )
            for _, r in done.iterrows()
        ]
        all_params.append({"label": f"{t['feature_set']} · {t['family']}", "folds": per_fold})

    return {
        "info": info,
        "table": table,
        "ensembles": _ensemble_section(protocol, inputs, rows_cmp),
        "unranked": unranked,
        "warnings": warnings_,
        "chart": chart,
        "best": best,
        "histories": histories,
        "all_params": all_params,
        "holm_m": _holm_family_size(rows_cmp) if len(rows_cmp) else 0,
        "n_folds": int(res.loc[res["fold"] >= 0, "fold"].nunique()) if len(res) else 0,
    }


#: members listed per ensemble on the page (the rest are counted)
N_MEMBERS_SHOWN = 8


def _ensemble_section(
    protocol: str, inputs: Inputs, rows_cmp: pd.DataFrame
) -> dict[str, Any] | None:
    """Every ensemble of a protocol tested against the protocol's best single pair (paired,
    same folds and tracks: corrected t-test on k folds, McNemar on a single split), with its
    members' mean weights over the folds."""
    is_ens = rows_cmp["feature_set"].astype(str) == ENSEMBLE_FEATURE_SET
    if not is_ens.any() or is_ens.all():
        return None
    best = rows_cmp[~is_ens].iloc[0]  # rows_cmp is sorted by accuracy, best first
    best_key = (str(best["feature_set"]), str(best["family"]))
    res = inputs.results[inputs.results["protocol"].astype(str) == protocol]
    keep = (res["feature_set"].astype(str) == ENSEMBLE_FEATURE_SET) | (
        (res["feature_set"].astype(str) == best_key[0]) & (res["family"].astype(str) == best_key[1])
    )
    preds = inputs.predictions
    pkeep = (preds["protocol"].astype(str) == protocol) & (
        (preds["feature_set"].astype(str) == ENSEMBLE_FEATURE_SET)
        | (
            (preds["feature_set"].astype(str) == best_key[0])
            & (preds["family"].astype(str) == best_key[1])
        )
    )
    cmp = stats.compare_to_baseline(
        res[keep], preds[pkeep], best_key, n_boot=N_BOOT, seed=inputs.seed, alpha=ALPHA
    )
    rows = []
    for _, r in cmp[~cmp["is_baseline"]].iterrows():
        fam = str(r["family"])
        folds = res[
            (res["feature_set"].astype(str) == ENSEMBLE_FEATURE_SET) & (res["family"] == fam)
        ]
        weights: dict[str, list[float]] = {}
        for _, row in folds.iterrows():
            for member, w in members_of(row).items():
                weights.setdefault(member, []).append(w)
        n = max(1, len(folds))
        mean = sorted(((sum(v) / n, k, len(v)) for k, v in weights.items()), reverse=True)
        mark, mark_text, _ = VERDICT_MARK.get(str(r["verdict"]), VERDICT_MARK["n/a"])
        rows.append(
            {
                "family": fam,
                "label": f"{ENSEMBLE_FEATURE_SET} · {fam}",
                "accuracy": _pct(r["accuracy"]),
                "delta": _pp(r["delta"]),
                "delta_sign": 0 if not math.isfinite(_num(r["delta"])) else np.sign(r["delta"]),
                "exact_delta": _exact(r["delta"]),
                "exact_p": _exact(r["p_holm"]),
                "delta_title": (
                    f"paired bootstrap 95 % CI on common tracks: [{_pp(r['delta_ci_low'])}, "
                    f"{_pp(r['delta_ci_high'])}]"
                ),
                "p_holm": _pval(r["p_holm"]),
                "p_title": f"{TEST_LABEL.get(str(r['test']), r['test'])}; raw p = "
                f"{_pval(r['p_value'])}",
                "test": str(r["test"]),
                "verdict": str(r["verdict"]),
                "mark": mark,
                "verdict_text": mark_text,
                "members": [
                    {"label": k, "weight": f"{w:.2f}", "folds": c}
                    for w, k, c in mean[:N_MEMBERS_SHOWN]
                ],
                "more": max(0, len(mean) - N_MEMBERS_SHOWN),
            }
        )
    return {
        "best_label": f"{best_key[0]} · {best_key[1]}",
        "best_accuracy": _pct(best["accuracy"]),
        "rows": rows,
    }


def _cd_section(results: pd.DataFrame) -> dict[str, Any]:
    out: dict[str, Any] = {
        "svg": "",
        "reason": "",
        "result": None,
        "blocks": [],
        "families": [],
        "matrix": [],
    }
    try:
        matrix = stats.family_score_matrix(results)
    except Exception as exc:  # the page must render whatever the table holds
        out["reason"] = f"could not build the family × block score matrix: {exc}"
        return out
    if matrix.empty:
        out["reason"] = "no pair is done on every fold of its protocol"
        return out
    complete = matrix.dropna()
    out["blocks"] = [str(b) for b in complete.index]
    out["families"] = [str(c) for c in matrix.columns]
    out["matrix"] = [
        (str(b), [_pct(v) for v in matrix.loc[b].to_numpy(dtype=float)]) for b in matrix.index
    ]
    if matrix.shape[1] < 3:
        out["reason"] = (
            f"needs ≥ 3 model families, this run has {matrix.shape[1]} "
            f"({', '.join(map(str, matrix.columns))})"
        )
        return out
    if len(complete) < 2:
        out["reason"] = (
            f"needs ≥ 2 blocks (feature set · protocol) in which every family is done, this run "
            f"has {len(complete)}"
        )
        return out
    try:
        res = stats.friedman_nemenyi(matrix, alpha=ALPHA)
        svg = stats.cd_diagram_svg(
            res.avg_ranks.to_dict(),
            res.cd,
            title=f"average rank of each family over {res.n_blocks} blocks (1 = best)",
        )
        # matplotlib's inline style sheet starts with a universal selector, which inside an
        # HTML page would restyle every other plot: scope it to the diagram
        out["svg"] = re.sub(r"(<style[^>]*>\s*)\*\s*\{", r"\1#cd-diagram svg *{", svg)
    except Exception as exc:
        out["reason"] = f"the Friedman test could not run: {exc}"
        return out
    out["result"] = {
        "statistic": f"{res.statistic:.2f}",
        "pvalue": _pval(res.pvalue),
        "pvalue_exact": _exact(res.pvalue),
        "n_blocks": res.n_blocks,
        "k": res.k,
        "cd": f"{res.cd:.2f}",
        "q": f"{res.q_alpha:.3f}",
        "ranks": [(str(n), f"{v:.2f}") for n, v in res.avg_ranks.items()],
        "groups": [" · ".join(g) for g in res.groups],
        "dropped": [str(b) for b in res.dropped_blocks],
    }
    return out


def _provenance(inputs: Inputs) -> dict[str, Any]:
    run = inputs.run
    res = inputs.results
    items: list[tuple[str, str]] = []

    def add(label: str, value: Any) -> None:
        if value not in (None, "", {}):
            items.append((label, str(value)))

    add(
        "benchmark",
        run.get("benchmark")
        or ", ".join(map(str, pd.unique(res.get("benchmark", pd.Series(dtype=str)).dropna()))),
    )
    add("config digest", run.get("config_digest"))
    add("seed", run.get("seed"))
    add("dataset", run.get("dataset"))
    add("data folder", run.get("data_dir"))
    add("data checksum", run.get("data_checksum"))
    add("tracks", run.get("n_tracks"))
    add("git commit", run.get("git_commit"))
    add("finished", run.get("finished_at"))
    wall = _num(run.get("wall_s"))
    if math.isfinite(wall):
        add("wall time", f"{wall:.1f} s ({wall / 60:.1f} min)")
    add("host", run.get("host"))
    add("Optuna storage", run.get("storage"))
    versions = run.get("versions") or {}
    checks = []
    for col, label in (("config_digest", "config digests"), ("data_checksum", "data checksums")):
        if col in res.columns:
            vals = sorted({str(v) for v in res[col].dropna() if str(v)})
            if len(vals) > 1:
                checks.append(f"results.parquet mixes {len(vals)} {label}: {', '.join(vals)}")
            elif vals and run.get(col) and vals[0] != str(run.get(col)):
                checks.append(f"results.parquet {label[:-1]} {vals[0]} differs from run.json's")
    config = run.get("config")
    config_text = ""
    if config:
        try:
            import yaml

            config_text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True).strip()
        except Exception:
            config_text = json.dumps(config, indent=2, default=str)
    return {
        "items": items,
        "versions": sorted((str(k), str(v)) for k, v in versions.items()),
        "config": config_text,
        "checks": checks,
    }


def build_context(results_dir: Path) -> dict[str, Any]:
    """Everything the template shows, from the files of ``results_dir``."""
    inputs = load_inputs(Path(results_dir))
    res = inputs.results
    notes = list(inputs.notes)
    cmp, stat_notes = compute_comparison(inputs)
    notes += stat_notes
    summary = summarize_pairs(res, inputs.baseline) if len(res) else pd.DataFrame()
    studies = _Trials(inputs.results_dir)
    protocols = [
        _protocol_section(p, inputs, cmp, summary, studies)
        for p in _protocol_order(res, inputs.run)
    ]
    note_marks: dict[str, str] = {}
    for sec in protocols:
        sec["notes"] = sorted({t["note"] for t in sec["table"] if t["note"]})
        for text in sec["notes"]:
            note_marks.setdefault(text, str(len(note_marks) + 1))
    headline = []
    for sec in protocols:
        if not sec["table"]:
            continue
        top = sec["table"][0]
        base = next((t for t in sec["table"] if t["is_baseline"]), None)
        better = [t for t in sec["table"] if t["verdict"] == "better"]
        headline.append(
            {
                "protocol": sec["info"]["name"],
                "anchor": sec["info"]["anchor"],
                "kind": sec["info"]["kind"],
                "top": top,
                "base": base,
                "n_better": len(better),
                "n_pairs": len(sec["table"]),
            }
        )
    counts = res["status"].value_counts().to_dict() if len(res) else {}
    benchmark_name = str(
        inputs.run.get("benchmark")
        or (
            res["benchmark"].dropna().iloc[0]
            if "benchmark" in res and res["benchmark"].notna().any()
            else ""
        )
        or inputs.results_dir.name
    )
    return {
        "benchmark": benchmark_name,
        "description": str((inputs.run.get("config") or {}).get("description", "")),
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "finished": str(inputs.run.get("finished_at", "")),
        "data_checksum": str(inputs.run.get("data_checksum", "")),
        "git_commit": _short(inputs.run.get("git_commit", "")),
        "baseline": inputs.baseline,
        "baseline_label": f"{inputs.baseline['feature_set']} · {inputs.baseline['family']}",
        "seed": inputs.seed,
        "n_boot": N_BOOT,
        "alpha": ALPHA,
        "counts": sorted(counts.items()),
        "n_pairs": int(res.groupby(["feature_set", "family", "protocol"]).ngroups)
        if len(res)
        else 0,
        "protocols": protocols,
        "note_marks": note_marks,
        "headline": headline,
        # families across feature sets: ensembles are no family
        "cd": _cd_section(res[res["feature_set"].astype(str) != ENSEMBLE_FEATURE_SET]),
        "references": REFERENCES,
        "reference_note": REFERENCE_NOTE,
        "provenance": _provenance(inputs),
        "notes": notes,
        "results_dir": str(inputs.results_dir),
        "storage_error": studies.error,
    }


# --------------------------------------------------------------------------------------------
# rendering
# --------------------------------------------------------------------------------------------


def _environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("benchmark", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = _pct
    env.filters["pval"] = _pval
    return env


def render(context: Mapping[str, Any]) -> str:
    from markupsafe import Markup

    ctx = dict(context)
    ctx["cd"] = dict(ctx["cd"], svg=Markup(ctx["cd"]["svg"]))
    for sec in ctx["protocols"]:
        sec["chart"] = Markup(sec["chart"])
        for h in sec["histories"]:
            h["svg"] = Markup(h["svg"])
    return _environment().get_template("leaderboard.html.j2").render(**ctx)


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".html.tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_report(results_dir: Path) -> Path:
    """Write ``<results_dir>/leaderboard.html`` from the results files; returns its path."""
    results_dir = Path(results_dir)
    page = render(build_context(results_dir))
    path = results_dir / LEADERBOARD
    _atomic_write(path, page)
    return path


# --------------------------------------------------------------------------------------------
# MLflow UI
# --------------------------------------------------------------------------------------------


#: environment of ``genrebench ui``: no usage telemetry, and no background job runner (MLflow 3
#: otherwise starts a job runner with seven queue consumers, which a local browsing session
#: never uses and which triples the start-up time)
MLFLOW_UI_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
}


def mlflow_ui_argv(results_dir: Path, port: int, python: str) -> list[str]:
    """``mlflow ui`` on 127.0.0.1 against the benchmark's SQLite tracking store (one worker:
    one local user; run it with :data:`MLFLOW_UI_ENV` added to the environment)."""
    db = Path(results_dir) / "mlflow.db"
    if not db.is_file():
        raise GenrebenchError(
            f"no MLflow tracking store {db}: the run was made with --no-tracking or with "
            "--tracking-uri (open that server instead)"
        )
    return [
        python,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        default_tracking_uri(Path(results_dir)),
        "--artifacts-destination",
        (Path(results_dir) / "mlartifacts").resolve().as_uri(),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
