"""The leaderboard: one self-contained HTML page answering "which pair is best, and is it real?".

:func:`write_report` reads only what a run wrote under ``results/<benchmark>/``
(``results.parquet``, ``predictions.parquet``, ``splits.parquet``, ``trials.parquet``,
``run.json``, see :mod:`benchmark.results`; :mod:`.inputs`), computes every statistic through
:mod:`benchmark.stats` into a view model of plain dicts (:mod:`.view`, one protocol's section in
:mod:`.section`), draws the figures from it (:mod:`.figures`) and renders ``leaderboard.html``
from the jinja2 template ``benchmark/templates/leaderboard.html.j2`` (:mod:`.page`).

The page needs no network: plots are inline SVG (drawn here, or by matplotlib for the
critical-difference diagram), styles and the small table-sorting script are inline, and nothing
is loaded from anywhere. Every number sits under a heading or caption that names its protocol.
Partial results (one protocol, one family, skipped or failed pairs, no baseline, no predictions,
no trials) still give a page; what could not be computed says why.

Machine-readable values for checks: every leaderboard row (``tr.pair-row``) carries
``data-protocol``, ``data-feature-set``, ``data-family`` and the exact floats (Python ``repr``)
of ``accuracy, oof_accuracy, ci_low, ci_high, delta, delta_ci_low, delta_ci_high, p_value,
p_holm`` as ``data-*`` attributes (``nan`` when missing), plus ``data-verdict``; each table
carries ``data-n-boot``, ``data-seed`` and ``data-alpha`` (the bootstrap and test settings).

The page fits any width: wide tables scroll in their own box with the pair's name pinned, figures
are drawn for a wide and a narrow screen; :mod:`.browser` measures that in headless Chromium.
"""

from __future__ import annotations

from benchmark.report.inputs import DEFAULT_BASELINE, find_results_dir
from benchmark.report.mlflow_ui import MLFLOW_UI_ENV, mlflow_ui_argv
from benchmark.report.page import LEADERBOARD, build_context, render, write_report
from benchmark.report.settings import ALPHA, N_BOOT, REFERENCES, Reference

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
