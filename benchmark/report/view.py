"""The page's view model: every number, verdict and text the leaderboard shows, computed from the
results files alone (:mod:`.inputs`) through :mod:`benchmark.stats`, as plain dicts and lists.

:func:`build_view` is the whole page but its figures; :mod:`.figures` draws those from the same
dicts and :mod:`.page` renders the template.
"""

from __future__ import annotations

import json
import math
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark import stats
from benchmark.ensembles import ENSEMBLE_FEATURE_SET
from benchmark.report.formatting import exact, num, p_is, pct, short
from benchmark.report.inputs import Inputs, Trials, load_inputs
from benchmark.report.section import protocol_order, protocol_section
from benchmark.report.settings import ALPHA, N_BOOT, REFERENCE_NOTE, REFERENCES
from benchmark.results import summarize_pairs

__all__ = ["build_view", "compute_comparison"]


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


# --- families across feature sets: the critical-difference section ---------------------------
def cd_section(results: pd.DataFrame) -> dict[str, Any]:
    """The family × block score matrix and the Friedman/Nemenyi test on it, or why there is
    none. ``plot`` holds what the diagram is drawn from (``svg`` is filled by :mod:`.figures`)."""
    out: dict[str, Any] = {
        "svg": "",
        "svg_narrow": "",
        "reason": "",
        "result": None,
        "plot": None,
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
        (str(b), [pct(v) for v in matrix.loc[b].to_numpy(dtype=float)]) for b in matrix.index
    ]
    out["reason"] = _cd_refusal(matrix, len(complete))
    if out["reason"]:
        return out
    try:
        res = stats.friedman_nemenyi(matrix, alpha=ALPHA)
    except Exception as exc:
        out["reason"] = f"the Friedman test could not run: {exc}"
        return out
    out["plot"] = {"avg_ranks": res.avg_ranks.to_dict(), "cd": res.cd, "n_blocks": res.n_blocks}
    out["result"] = {
        "statistic": f"{res.statistic:.2f}",
        "pvalue": p_is(res.pvalue),
        "pvalue_exact": exact(res.pvalue),
        "n_blocks": res.n_blocks,
        "k": res.k,
        "cd": f"{res.cd:.2f}",
        "q": f"{res.q_alpha:.3f}",
        "ranks": [(str(n), f"{v:.2f}") for n, v in res.avg_ranks.items()],
        "groups": [" · ".join(g) for g in res.groups],
        "dropped": [str(b) for b in res.dropped_blocks],
    }
    return out


def _cd_refusal(matrix: pd.DataFrame, n_complete: int) -> str:
    """Why the Friedman test cannot be run on ``matrix`` ("" when it can)."""
    if matrix.shape[1] < 3:
        return (
            f"needs ≥ 3 model families, this run has {matrix.shape[1]} "
            f"({', '.join(map(str, matrix.columns))})"
        )
    if n_complete < 2:
        return (
            f"needs ≥ 2 blocks (feature set · protocol) in which every family is done, this run "
            f"has {n_complete}"
        )
    return ""


# --- provenance -----------------------------------------------------------------------------
def _provenance(inputs: Inputs) -> dict[str, Any]:
    """Where the numbers come from: run.json's facts, versions and config, and any mismatch
    between run.json and the rows of results.parquet."""
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
    wall = num(run.get("wall_s"))
    if math.isfinite(wall):
        add("wall time", f"{wall:.1f} s ({wall / 60:.1f} min)")
    add("host", run.get("host"))
    add("Optuna storage", run.get("storage"))
    versions = run.get("versions") or {}
    return {
        "items": items,
        "versions": sorted((str(k), str(v)) for k, v in versions.items()),
        "config": _config_text(run.get("config")),
        "checks": _consistency_checks(res, run),
    }


def _consistency_checks(res: pd.DataFrame, run: dict[str, Any]) -> list[str]:
    checks = []
    for col, label in (("config_digest", "config digests"), ("data_checksum", "data checksums")):
        if col in res.columns:
            vals = sorted({str(v) for v in res[col].dropna() if str(v)})
            if len(vals) > 1:
                checks.append(f"results.parquet mixes {len(vals)} {label}: {', '.join(vals)}")
            elif vals and run.get(col) and vals[0] != str(run.get(col)):
                checks.append(f"results.parquet {label[:-1]} {vals[0]} differs from run.json's")
    return checks


def _config_text(config: Any) -> str:
    if not config:
        return ""
    try:
        import yaml

        return yaml.safe_dump(config, sort_keys=False, allow_unicode=True).strip()
    except Exception:
        return json.dumps(config, indent=2, default=str)


# --- the page -------------------------------------------------------------------------------
def _note_marks(protocols: list[dict[str, Any]]) -> dict[str, str]:
    """Each section's distinct row notes, numbered once across the page (in place: ``notes``)."""
    note_marks: dict[str, str] = {}
    for sec in protocols:
        sec["notes"] = sorted({t["note"] for t in sec["table"] if t["note"]})
        for text in sec["notes"]:
            note_marks.setdefault(text, str(len(note_marks) + 1))
    return note_marks


def _headline(protocols: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per protocol with a leaderboard: its top pair, the baseline, how many pairs beat it."""
    headline = []
    for sec in protocols:
        if not sec["table"]:
            continue
        headline.append(
            {
                "protocol": sec["info"]["name"],
                "anchor": sec["info"]["anchor"],
                "kind": sec["info"]["kind"],
                "top": sec["table"][0],
                "base": next((t for t in sec["table"] if t["is_baseline"]), None),
                "n_better": sum(t["verdict"] == "better" for t in sec["table"]),
                "n_pairs": len(sec["table"]),
            }
        )
    return headline


def _benchmark_name(inputs: Inputs) -> str:
    res = inputs.results
    return str(
        inputs.run.get("benchmark")
        or (
            res["benchmark"].dropna().iloc[0]
            if "benchmark" in res and res["benchmark"].notna().any()
            else ""
        )
        or inputs.results_dir.name
    )


def progress_text(results: pd.DataFrame) -> str:
    """The header's count, each number naming what it counts: ``54 pair × protocol combinations,
    297 of 297 folds done``, then the other folds' statuses (``(3 error)``) and the pairs that
    never got a fold (a row with ``fold == -1``: ``; 2 pairs skipped``)."""
    if not len(results):
        return "no results yet"
    n_pairs = int(results.groupby(["feature_set", "family", "protocol"]).ngroups)
    whole = results["fold"] < 0
    folds, pairs = results.loc[~whole, "status"], results.loc[whole, "status"]
    others = ", ".join(f"{n} {s}" for s, n in sorted(folds.value_counts().items()) if s != "done")
    text = (
        f"{n_pairs} pair × protocol combination{'s' if n_pairs != 1 else ''}, "
        f"{int((folds == 'done').sum())} of {len(folds)} folds done"
    )
    text += f" ({others})" if others else ""
    for status, n in sorted(pairs.value_counts().items()):
        text += f"; {n} pair{'s' if n != 1 else ''} {_PAIR_STATUS.get(status, status)}"
    return text


#: how a pair that got no fold reads in the header (``status`` of its ``fold == -1`` row)
_PAIR_STATUS = {"skip": "skipped", "error": "failed before any fold"}


def build_view(results_dir: Path) -> dict[str, Any]:
    """Everything the template shows but the figures, from the files of ``results_dir``."""
    inputs = load_inputs(Path(results_dir))
    res = inputs.results
    cmp, stat_notes = compute_comparison(inputs)
    summary = summarize_pairs(res, inputs.baseline) if len(res) else pd.DataFrame()
    studies = Trials(inputs.results_dir)
    protocols = [
        protocol_section(p, inputs, cmp, summary, studies) for p in protocol_order(res, inputs.run)
    ]
    note_marks = _note_marks(protocols)
    return {
        "benchmark": _benchmark_name(inputs),
        "description": str((inputs.run.get("config") or {}).get("description", "")),
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "finished": str(inputs.run.get("finished_at", "")),
        "data_checksum": str(inputs.run.get("data_checksum", "")),
        "git_commit": short(inputs.run.get("git_commit", "")),
        "baseline": inputs.baseline,
        "baseline_label": f"{inputs.baseline['feature_set']} · {inputs.baseline['family']}",
        "seed": inputs.seed,
        "n_boot": N_BOOT,
        "alpha": ALPHA,
        "progress": progress_text(res),
        "protocols": protocols,
        "note_marks": note_marks,
        "headline": _headline(protocols),
        # families across feature sets: ensembles are no family
        "cd": cd_section(res[res["feature_set"].astype(str) != ENSEMBLE_FEATURE_SET]),
        "references": REFERENCES,
        "reference_note": REFERENCE_NOTE,
        "provenance": _provenance(inputs),
        "notes": list(inputs.notes) + stat_notes,
        "results_dir": str(inputs.results_dir),
        "storage_error": studies.error,
    }
