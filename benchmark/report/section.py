"""The view model of one protocol's section: its leaderboard rows, the pairs it could not rank
and why, the best pair in detail, the optimisation histories to draw, and the ensembles tested
against its best single pair. Plain dicts of numbers and text; drawing is :mod:`.figures`."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from benchmark import stats
from benchmark.ensembles import ENSEMBLE_FEATURE_SET, left_out_for_coverage, members_of
from benchmark.protocols import all_protocols
from benchmark.report.formatting import exact, fmt_param, num, p_is, pct, pp, pval, secs
from benchmark.report.inputs import Inputs, Trials
from benchmark.report.settings import ALPHA, N_BOOT

__all__ = ["protocol_order", "protocol_section"]

#: optimisation histories drawn per protocol (the best pairs that were tuned)
N_HISTORIES = 3
#: members listed per ensemble on the page (the rest are counted)
N_MEMBERS_SHOWN = 8

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

#: the comparison columns every leaderboard row carries as exact ``data-*`` values
EXACT_COLUMNS = (
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


def _of_pair(df: pd.DataFrame, fs: str, fam: str) -> pd.DataFrame:
    return df[(df["feature_set"].astype(str) == fs) & (df["family"].astype(str) == fam)]


@dataclass(frozen=True)
class _Protocol:
    """One protocol's rows of the results and prediction tables."""

    name: str
    results: pd.DataFrame
    predictions: pd.DataFrame
    #: tracks the protocol scores (its test parts); 0 when splits.parquet does not say
    n_tracks: int = 0

    def pair_rows(self, fs: str, fam: str) -> pd.DataFrame:
        return _of_pair(self.results, fs, fam)

    def pair_preds(self, fs: str, fam: str) -> pd.DataFrame:
        return self.predictions if self.predictions.empty else _of_pair(self.predictions, fs, fam)


def protocol_order(results: pd.DataFrame, run: Mapping[str, Any]) -> list[str]:
    """The protocols present, in the config's order, then the others by name."""
    present = [str(p) for p in pd.unique(results["protocol"].astype(str))]
    configured = list(((run.get("config") or {}).get("protocols") or {}).keys())
    order = [p for p in configured if p in present]
    return order + sorted(p for p in present if p not in order)


def protocol_section(
    protocol: str,
    inputs: Inputs,
    cmp: pd.DataFrame,
    summary: pd.DataFrame,
    studies: Trials,
) -> dict[str, Any]:
    """Everything the page shows under ``protocol`` (its figures are added by :mod:`.figures`)."""
    res = inputs.results[inputs.results["protocol"].astype(str) == protocol]
    rows_cmp = cmp[cmp["protocol"].astype(str) == protocol].reset_index(drop=True)
    summ = summary[summary["protocol"].astype(str) == protocol] if len(summary) else summary
    preds = inputs.predictions
    preds_p = preds[preds["protocol"].astype(str) == protocol] if len(preds) else preds
    part = _Protocol(protocol, res, preds_p, _protocol_tracks(protocol, inputs.splits))
    base_key = (inputs.baseline["feature_set"], inputs.baseline["family"])
    table = _leaderboard(part, rows_cmp)
    return {
        "info": _protocol_info(protocol, inputs.run, inputs.splits),
        "table": table,
        "ensembles": _ensemble_section(protocol, inputs, rows_cmp),
        "unranked": _unranked(res, table, summ),
        "warnings": _baseline_warnings(table, base_key, protocol),
        "best": _best_pair(part, table, base_key),
        "histories": _histories(part, table, studies),
        "all_params": _all_params(part, table),
        "holm_m": _holm_family_size(rows_cmp) if len(rows_cmp) else 0,
        # some pair scored fewer tracks than the protocol has: the page explains coverage
        "partial": any(t["n_tracks"] < part.n_tracks for t in table),
        "n_folds": int(res.loc[res["fold"] >= 0, "fold"].nunique()) if len(res) else 0,
    }


# --- the protocol ---------------------------------------------------------------------------
def _protocol_info(name: str, run: Mapping[str, Any], splits: pd.DataFrame) -> dict[str, Any]:
    info = (run.get("protocols") or {}).get(name) or {}
    known = all_protocols().get(name)
    kind, kind_text = known.estimate if known is not None else ("", "")
    return {
        "name": name,
        "description": str(info.get("description", "")),
        "kind": kind,
        "kind_text": kind_text,
        "sizes": _split_sizes(name, splits),
        "anchor": "p-" + "".join(c if c.isalnum() else "-" for c in name),
    }


def _split_sizes(name: str, splits: pd.DataFrame) -> str:
    """The split sizes as one line (``3 outer folds; train 600 / test 300 tracks per fold
    (mean)``), or ``""`` when splits.parquet does not say."""
    if splits.empty or not {"protocol", "fold", "part"} <= set(splits.columns):
        return ""
    s = splits[splits["protocol"] == name]
    if not len(s):
        return ""
    n_folds = s["fold"].nunique()
    test = s[s["part"] == "test"].groupby("fold").size()
    train = s[s["part"] == "train"].groupby("fold").size()
    return (
        f"{n_folds} outer fold{'s' if n_folds > 1 else ''}; "
        f"train {int(train.mean()) if len(train) else 0} / "
        f"test {int(test.mean()) if len(test) else 0} tracks per fold (mean)"
    )


def _protocol_tracks(name: str, splits: pd.DataFrame) -> int:
    """Tracks in the protocol's test parts (every track for a k-fold, the test split's for
    a single split): what a pair's coverage is out of."""
    if splits.empty or not {"protocol", "part", "track_id"} <= set(splits.columns):
        return 0
    s = splits[(splits["protocol"] == name) & (splits["part"] == "test")]
    return int(s["track_id"].nunique())


def _holm_family_size(rows: pd.DataFrame) -> int:
    return int(rows.loc[~rows["is_baseline"], "p_value"].notna().sum())


# --- the leaderboard ------------------------------------------------------------------------
def _leaderboard(part: _Protocol, rows_cmp: pd.DataFrame) -> list[dict[str, Any]]:
    """One row per ranked pair, best first (``rows_cmp`` is sorted by accuracy)."""
    ranks = rows_cmp["accuracy"].rank(method="min", ascending=False)
    holm_m = _holm_family_size(rows_cmp)
    base = rows_cmp.loc[rows_cmp["is_baseline"], "n_tracks"]
    base_n = int(base.iloc[0]) if len(base) else 0
    return [_table_row(r, int(ranks[i]), part, holm_m, base_n) for i, r in rows_cmp.iterrows()]


def _coverage(n_scored: int, n_protocol: int) -> dict[str, str]:
    """A pair's coverage: tracks scored of the tracks the protocol scores (``115/1000``)."""
    if n_protocol <= 0:
        return {"text": str(n_scored), "exact": "nan", "title": f"{n_scored} tracks scored"}
    share = n_scored / n_protocol
    return {
        "text": f"{n_scored}/{n_protocol}",
        "exact": exact(share),
        "title": f"{n_scored} of the protocol's {n_protocol} tracks scored ({pct(share)})",
    }


def _common_tracks(r: pd.Series, base_n: int) -> str:
    """``on 115 common tracks`` when a pair and the baseline scored different tracks: the
    comparison is made on the tracks both scored only."""
    n = int(r["n_common"])
    if bool(r["is_baseline"]) or not n or (n >= int(r["n_tracks"]) and n >= base_n):
        return ""
    return f"on {n} common tracks"


def _costs(done: pd.DataFrame) -> tuple[int, int, float, float]:
    """Trials, pruned trials, mean refit seconds and total tuning seconds over done folds."""

    def col(name: str) -> Any:
        return pd.to_numeric(done.get(name), errors="coerce")

    return (
        int(col("n_trials").fillna(0).sum()),
        int(col("n_pruned").fillna(0).sum()),
        float(col("fit_s").mean()),
        float(col("tune_s").sum()),
    )


def _p_title(r: pd.Series, holm_m: int, protocol: str) -> str:
    """The test behind a row's p-value, its raw p and, against the baseline, McNemar's counts."""
    test = str(r["test"])
    p_title = ""
    if test:
        p_title = (
            f"{TEST_LABEL.get(test, test)}; {p_is(r['p_value'], 'raw p')}; Holm over "
            f"{holm_m} pair(s) under {protocol}"
        )
        if test == "corrected_t" and math.isfinite(num(r["t_stat"])):
            p_title += f"; t = {num(r['t_stat']):.3f}"
    if int(r["n_common"]) and not bool(r["is_baseline"]):
        p_title += (
            f"; McNemar on {int(r['n_common'])} tracks: pair-only right {int(r['mcnemar_b'])},"
            f" baseline-only right {int(r['mcnemar_c'])}, {p_is(r['p_mcnemar'])}"
        )
    return p_title


def _delta_title(r: pd.Series) -> str:
    if not math.isfinite(num(r["delta_ci_low"])):
        return ""
    return (
        f"paired bootstrap 95 % CI of the accuracy difference on common tracks: "
        f"[{pp(r['delta_ci_low'])}, {pp(r['delta_ci_high'])}]"
    )


def _table_row(
    r: pd.Series, rank: int, part: _Protocol, holm_m: int, base_n: int = 0
) -> dict[str, Any]:
    fs, fam = str(r["feature_set"]), str(r["family"])
    g = part.pair_rows(fs, fam)
    n_trials, n_pruned, fit_s, tune_s = _costs(g[g["status"] == "done"])
    verdict = str(r["verdict"])
    mark, mark_text, mark_title = VERDICT_MARK.get(verdict, VERDICT_MARK["n/a"])
    std = num(r["accuracy_std"])
    return {
        "rank": rank,
        "feature_set": fs,
        "family": fam,
        "is_baseline": bool(r["is_baseline"]),
        "r": r,
        "exact": {k: exact(r[k]) for k in EXACT_COLUMNS},
        "accuracy": pct(r["accuracy"]),
        "accuracy_std": f"± {100 * std:.1f}" if math.isfinite(std) else "",
        "ci": f"{pct(r['ci_low'])} – {pct(r['ci_high'])}",
        "oof": pct(r["oof_accuracy"]),
        "balanced_accuracy": pct(r["balanced_accuracy"]),
        "macro_f1": pct(r["macro_f1"]),
        "fit_s": secs(fit_s),
        "fit_s_exact": exact(fit_s),
        "tune_s": secs(tune_s),
        "n_trials": n_trials,
        "n_pruned": n_pruned,
        "delta": "" if bool(r["is_baseline"]) else pp(r["delta"]),
        "delta_title": _delta_title(r),
        "p_holm": pval(r["p_holm"]),
        "p_title": _p_title(r, holm_m, part.name),
        "test": {"corrected_t": "t", "mcnemar": "McN"}.get(str(r["test"]), ""),
        "verdict": verdict,
        "mark": mark,
        "mark_text": mark_text,
        "mark_title": mark_title,
        "note": str(r["note"] or ""),
        "n_tracks": int(r["n_tracks"]),
        "coverage": _coverage(int(r["n_tracks"]), part.n_tracks),
        "common": _common_tracks(r, base_n),
    }


def _baseline_warnings(
    table: list[dict[str, Any]], base_key: tuple[str, str], protocol: str
) -> list[str]:
    if not table or any((t["feature_set"], t["family"]) == base_key for t in table):
        return []
    return [
        f"the baseline {base_key[0]} · {base_key[1]} is not done on every fold under "
        f"{protocol}: no pair can be tested against it here"
    ]


# --- pairs not ranked -----------------------------------------------------------------------
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


def _unranked(
    res: pd.DataFrame, table: list[dict[str, Any]], summ: pd.DataFrame
) -> list[dict[str, Any]]:
    """The pairs of the protocol that are not on the leaderboard, with their reasons."""
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
        reasons = _failure_reason(g) or [
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
                "status": str(status_row["status"].iloc[0]) if len(status_row) else "?",
                "folds": f"{done}/{n}",
                "reasons": reasons,
            }
        )
    return unranked


# --- the best pair --------------------------------------------------------------------------
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


def _genre_rows(preds: pd.DataFrame, base_pg: Mapping[str, float]) -> list[dict[str, Any]]:
    """Per-genre accuracy of a pair next to the baseline's (NaN where it has none)."""
    own_pg = _per_genre(preds)
    genres = []
    for genre in _classes(preds) if len(preds) else []:
        if genre not in own_pg:
            continue
        b = base_pg.get(genre, math.nan)
        genres.append(
            {
                "genre": genre,
                "acc": own_pg[genre],
                "acc_text": pct(own_pg[genre], 0),
                "base": b,
                "base_text": pct(b, 0),
                "delta_text": pp(own_pg[genre] - b, 0) if math.isfinite(b) else "",
            }
        )
    return genres


def _params_of(row: Mapping[str, Any]) -> dict[str, Any]:
    raw = row.get("params")
    if not isinstance(raw, str) or not raw:
        return {}
    try:
        val = json.loads(raw)
    except ValueError:
        return {"params": raw}
    return val if isinstance(val, dict) else {"params": val}


def _done_folds(part: _Protocol, fs: str, fam: str) -> pd.DataFrame:
    g = part.pair_rows(fs, fam)
    return g[g["status"] == "done"].sort_values("fold")


def _fold_params(done: pd.DataFrame) -> list[dict[str, Any]]:
    """The tuned parameters and inner/outer accuracy of each done fold."""
    return [
        {
            "fold": int(row["fold"]),
            "params": {k: fmt_param(v) for k, v in sorted(_params_of(row).items())},
            "inner": pct(row.get("inner_accuracy")),
            "outer": pct(row.get("accuracy")),
        }
        for _, row in done.iterrows()
    ]


def _best_pair(
    part: _Protocol, table: list[dict[str, Any]], base_key: tuple[str, str]
) -> dict[str, Any] | None:
    """The top pair in detail: confusion matrix, per-genre accuracy, parameters per fold."""
    if not table:
        return None
    top = table[0]
    fs, fam = top["feature_set"], top["family"]
    bp = part.pair_preds(fs, fam)
    base_pg = _per_genre(part.pair_preds(*base_key)) if not top["is_baseline"] else {}
    folds_params = _fold_params(_done_folds(part, fs, fam))
    return {
        "label": f"{fs} · {fam}",
        "row": top,
        "confusion": confusion(bp),
        "genres": _genre_rows(bp, base_pg),
        "base_label": f"{base_key[0]} · {base_key[1]}",
        "params": folds_params,
        "param_names": sorted({k for f in folds_params for k in f["params"]}),
    }


def _all_params(part: _Protocol, table: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every ranked pair's tuned parameters per fold, as one line each."""
    all_params = []
    for t in table:
        per_fold = [
            (
                int(r["fold"]),
                ", ".join(f"{k}={fmt_param(v)}" for k, v in sorted(_params_of(r).items())),
            )
            for _, r in _done_folds(part, t["feature_set"], t["family"]).iterrows()
        ]
        all_params.append({"label": f"{t['feature_set']} · {t['family']}", "folds": per_fold})
    return all_params


# --- optimisation histories -----------------------------------------------------------------
def _histories(
    part: _Protocol, table: list[dict[str, Any]], studies: Trials
) -> list[dict[str, Any]]:
    """The trials of the best :data:`N_HISTORIES` tuned pairs, per outer-fold study."""
    histories: list[dict[str, Any]] = []
    for t in table:
        if len(histories) >= N_HISTORIES:
            break
        if t["n_trials"] + t["n_pruned"] == 0:
            continue
        histories.append(_history(part, t["feature_set"], t["family"], studies))
    return histories


def _history(part: _Protocol, fs: str, fam: str, studies: Trials) -> dict[str, Any]:
    g = part.pair_rows(fs, fam)
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
    label = f"{fs} · {fam}"
    return {
        "label": label,
        "title": f"{label} · {part.name}",
        "folds": folds,
        "n_studies": len(folds),
        "missing": ("" if folds else (studies.error or "its studies are not in trials.parquet")),
    }


# --- ensembles ------------------------------------------------------------------------------
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
    cmp = _against_best(protocol, inputs, best_key)
    return {
        "best_label": f"{best_key[0]} · {best_key[1]}",
        "best_accuracy": pct(best["accuracy"]),
        "rows": [_ensemble_row(r, res) for _, r in cmp[~cmp["is_baseline"]].iterrows()],
    }


def _ensemble_or(df: pd.DataFrame, protocol: str, key: tuple[str, str]) -> pd.Series:
    """Rows of ``protocol`` that are an ensemble or the pair ``key``."""
    fs = df["feature_set"].astype(str)
    return (df["protocol"].astype(str) == protocol) & (
        (fs == ENSEMBLE_FEATURE_SET) | ((fs == key[0]) & (df["family"].astype(str) == key[1]))
    )


def _against_best(protocol: str, inputs: Inputs, best_key: tuple[str, str]) -> pd.DataFrame:
    """The ensembles compared with ``best_key`` as if it were the baseline."""
    res, preds = inputs.results, inputs.predictions
    return stats.compare_to_baseline(
        res[_ensemble_or(res, protocol, best_key)],
        preds[_ensemble_or(preds, protocol, best_key)],
        best_key,
        n_boot=N_BOOT,
        seed=inputs.seed,
        alpha=ALPHA,
    )


def _mean_weights(folds: pd.DataFrame) -> list[tuple[float, str, int]]:
    """``(mean weight over the folds, member, folds it is in)``, heaviest first."""
    weights: dict[str, list[float]] = {}
    for _, row in folds.iterrows():
        for member, w in members_of(row).items():
            weights.setdefault(member, []).append(w)
    n = max(1, len(folds))
    return sorted(((sum(v) / n, k, len(v)) for k, v in weights.items()), reverse=True)


def _ensemble_row(r: pd.Series, res: pd.DataFrame) -> dict[str, Any]:
    fam = str(r["family"])
    folds = res[(res["feature_set"].astype(str) == ENSEMBLE_FEATURE_SET) & (res["family"] == fam)]
    mean = _mean_weights(folds)
    mark, mark_text, _ = VERDICT_MARK.get(str(r["verdict"]), VERDICT_MARK["n/a"])
    fewer = sorted({p for m in folds.get("message", []) for p in left_out_for_coverage(str(m))})
    return {
        "family": fam,
        "label": f"{ENSEMBLE_FEATURE_SET} · {fam}",
        "accuracy": pct(r["accuracy"]),
        "delta": pp(r["delta"]),
        "delta_sign": 0 if not math.isfinite(num(r["delta"])) else np.sign(r["delta"]),
        "exact_delta": exact(r["delta"]),
        "exact_p": exact(r["p_holm"]),
        "delta_title": (
            f"paired bootstrap 95 % CI on common tracks: [{pp(r['delta_ci_low'])}, "
            f"{pp(r['delta_ci_high'])}]"
        ),
        "p_holm": pval(r["p_holm"]),
        "p_title": f"{TEST_LABEL.get(str(r['test']), r['test'])}; {p_is(r['p_value'], 'raw p')}",
        "test": str(r["test"]),
        "verdict": str(r["verdict"]),
        "mark": mark,
        "verdict_text": mark_text,
        "members": [
            {"label": k, "weight": f"{w:.2f}", "folds": c} for w, k, c in mean[:N_MEMBERS_SHOWN]
        ],
        "more": max(0, len(mean) - N_MEMBERS_SHOWN),
        # one coverage group per ensemble: the pairs scored on fewer tracks are named
        "coverage_note": (
            f"built from the pairs scored on the same tracks; left out, scored on fewer: "
            f"{', '.join(fewer)}"
            if fewer
            else ""
        ),
    }
