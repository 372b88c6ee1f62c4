"""The leaderboard's table: every complete pair against the baseline, per protocol, read from
``results.parquet`` and ``predictions.parquet`` exactly as :mod:`benchmark.results` documents
them; it only picks and combines the tests of the sibling modules."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from benchmark.stats.bootstrap import bootstrap_ci, paired_bootstrap_ci
from benchmark.stats.multiple_testing import holm
from benchmark.stats.paired_tests import corrected_resampled_ttest, mcnemar_exact

#: verdict vocabulary of :func:`compare_to_baseline`
VERDICTS = ("baseline", "better", "worse", "no evidence", "n/a")

#: columns of :func:`compare_to_baseline`, in order (documented there)
COMPARISON_COLUMNS = (
    "protocol",
    "feature_set",
    "family",
    "is_baseline",
    "n_folds",
    "accuracy",
    "accuracy_std",
    "balanced_accuracy",
    "macro_f1",
    "n_tracks",
    "oof_accuracy",
    "ci_low",
    "ci_high",
    "delta",
    "test",
    "t_stat",
    "p_value",
    "p_holm",
    "verdict",
    "n_common",
    "mcnemar_b",
    "mcnemar_c",
    "p_mcnemar",
    "delta_oof",
    "delta_ci_low",
    "delta_ci_high",
    "note",
)


_RESULT_NEEDS = (
    "feature_set",
    "family",
    "protocol",
    "fold",
    "status",
    "accuracy",
    "balanced_accuracy",
    "macro_f1",
    "n_train",
    "n_test",
)
_PRED_NEEDS = ("feature_set", "family", "protocol", "fold", "track_id")


def _baseline_key(baseline: tuple[str, str] | Sequence[str] | Mapping[str, str]) -> tuple[str, str]:
    if isinstance(baseline, Mapping):
        return (str(baseline["feature_set"]), str(baseline["family"]))
    fs, fam = baseline
    return (str(fs), str(fam))


def _correctness(preds: pd.DataFrame) -> pd.Series:
    if preds.empty:
        return pd.Series(False, index=preds.index, dtype=bool)
    if "correct" in preds.columns:
        return preds["correct"].astype(bool)
    return preds["y_true"].astype(str) == preds["y_pred"].astype(str)


def compare_to_baseline(
    results: pd.DataFrame,
    predictions: pd.DataFrame,
    baseline: tuple[str, str] | Mapping[str, str],
    *,
    n_boot: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Every complete pair against the baseline pair, per protocol: the leaderboard's numbers.

    ``results`` and ``predictions`` are ``results.parquet`` and ``predictions.parquet``
    (:mod:`benchmark.results`). A pair enters a protocol's comparison when it has a ``done`` row
    for every fold that protocol has in ``results``; other pairs are left out (the leaderboard
    lists them from :func:`benchmark.results.summarize_pairs`). ``baseline`` is
    ``(feature_set, family)`` or a mapping with those keys (``BenchmarkConfig.baseline``).

    The test behind ``p_value`` depends on the protocol: with >= 2 folds, the corrected
    resampled t-test on per-fold accuracies paired on fold index (Nadeau & Bengio, 2003), with
    ``n_train``/``n_test`` the pair's mean over folds; with 1 fold (the fault-filtered split),
    the exact McNemar test on per-track correctness. McNemar on the pooled out-of-fold tracks
    is reported for every protocol. Tracks are paired by ``(fold, track_id)`` on the tracks both
    scored, so a pair whose feature set lacks tracks is compared on the intersection. Holm's
    adjustment runs over the non-baseline pairs of each protocol.

    Columns (one row per protocol and pair, best mean accuracy first within a protocol):

    ``protocol, feature_set, family``; ``is_baseline``; ``n_folds``;
    ``accuracy, balanced_accuracy, macro_f1``: means over folds (from results);
    ``accuracy_std``: sample sd of fold accuracies (NaN for 1 fold);
    ``n_tracks``: OOF tracks scored; ``oof_accuracy``: pooled accuracy over them;
    ``ci_low, ci_high``: percentile bootstrap ``1 - alpha`` interval of ``oof_accuracy``;
    ``delta``: accuracy minus the baseline's, the quantity tested (mean per-fold difference for
    k-fold protocols, ``delta_oof`` for 1 fold; 0 for the baseline);
    ``test``: ``"corrected_t"``, ``"mcnemar"`` or ``""`` (baseline / no test possible);
    ``t_stat``: corrected t (NaN for McNemar); ``p_value``: raw p of ``test``;
    ``p_holm``: Holm-adjusted ``p_value``;
    ``verdict``: ``"better"``/``"worse"`` when ``p_holm < alpha`` (by the sign of ``delta``),
    ``"no evidence"`` otherwise, ``"baseline"`` for the baseline row, ``"n/a"`` when no test
    could be run (baseline incomplete under the protocol, or no track scored by both);
    ``n_common``: tracks scored by both; ``mcnemar_b``: of those, pair right / baseline wrong;
    ``mcnemar_c``: pair wrong / baseline right; ``p_mcnemar``: exact McNemar p on them;
    ``delta_oof``: accuracy difference on the common tracks;
    ``delta_ci_low, delta_ci_high``: paired bootstrap interval of ``delta_oof``;
    ``note``: why a value is missing, or that tracks were intersected.
    """
    missing = [c for c in _RESULT_NEEDS if c not in results.columns]
    if missing:
        raise ValueError(f"results table lacks columns {missing}")
    missing = [c for c in _PRED_NEEDS if c not in predictions.columns]
    has_correct = "correct" in predictions.columns or {"y_true", "y_pred"} <= set(
        predictions.columns
    )
    if not has_correct and len(predictions):  # an empty table (no predictions) is fine
        missing.append("correct")
    if missing:
        raise ValueError(f"predictions table lacks columns {missing}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    base_key = _baseline_key(baseline)

    preds = predictions.assign(_correct=_correctness(predictions))
    pred_groups = {
        key: g for key, g in preds.groupby(["protocol", "feature_set", "family"], sort=False)
    }
    empty_preds = preds.iloc[0:0]

    frames = []
    for proto, r in results.groupby("protocol", sort=True):
        folds = sorted(set(r["fold"]))
        complete: dict[tuple[str, str], pd.DataFrame] = {}
        for (fs, fam), g in r.groupby(["feature_set", "family"], sort=True):
            if not g["fold"].is_unique:
                raise ValueError(f"duplicate result rows for {fs} · {fam} · {proto}")
            if set(g["status"]) == {"done"} and sorted(g["fold"]) == folds:
                complete[(str(fs), str(fam))] = g.sort_values("fold")

        def oof(key: tuple[str, str], proto: Any = proto) -> pd.DataFrame:
            return pred_groups.get((proto, *key), empty_preds)

        base = complete.get(base_key)
        base_oof = oof(base_key)[["fold", "track_id", "_correct"]] if base is not None else None
        rows = []
        for key, g in complete.items():
            acc = g["accuracy"].to_numpy(dtype=float)
            own = oof(key)
            c_own = own["_correct"].to_numpy(dtype=bool)
            lo, hi = bootstrap_ci(c_own, n_boot, alpha, seed)
            row: dict[str, Any] = {
                "protocol": proto,
                "feature_set": key[0],
                "family": key[1],
                "is_baseline": key == base_key,
                "n_folds": len(folds),
                "accuracy": float(acc.mean()),
                "accuracy_std": float(acc.std(ddof=1)) if acc.size > 1 else math.nan,
                "balanced_accuracy": float(g["balanced_accuracy"].astype(float).mean()),
                "macro_f1": float(g["macro_f1"].astype(float).mean()),
                "n_tracks": int(c_own.size),
                "oof_accuracy": float(c_own.mean()) if c_own.size else math.nan,
                "ci_low": lo,
                "ci_high": hi,
                "delta": math.nan,
                "test": "",
                "t_stat": math.nan,
                "p_value": math.nan,
                "verdict": "n/a",
                "n_common": 0,
                "mcnemar_b": 0,
                "mcnemar_c": 0,
                "p_mcnemar": math.nan,
                "delta_oof": math.nan,
                "delta_ci_low": math.nan,
                "delta_ci_high": math.nan,
                "note": "" if c_own.size else "no predictions",
            }
            if key == base_key:
                row.update(delta=0.0, delta_oof=0.0, verdict="baseline", n_common=int(c_own.size))
            elif base is None or base_oof is None:
                row["note"] = "baseline not done on every fold of this protocol"
            else:
                _compare(row, g, acc, own, base, base_oof, folds, n_boot, alpha, seed)
            rows.append(row)
        if not rows:
            continue
        frame = pd.DataFrame(rows)
        tested = ~frame["is_baseline"]
        frame["p_holm"] = math.nan
        frame.loc[tested, "p_holm"] = holm(frame.loc[tested, "p_value"].to_numpy(dtype=float))
        for i in frame.index[tested]:
            p, d = frame.at[i, "p_holm"], frame.at[i, "delta"]
            if np.isnan(p):
                continue
            if p < alpha and d > 0:
                frame.at[i, "verdict"] = "better"
            elif p < alpha and d < 0:
                frame.at[i, "verdict"] = "worse"
            else:
                frame.at[i, "verdict"] = "no evidence"
        frame = frame.sort_values(
            ["accuracy", "feature_set", "family"], ascending=[False, True, True], kind="stable"
        )
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=list(COMPARISON_COLUMNS))
    out = pd.concat(frames, ignore_index=True)[list(COMPARISON_COLUMNS)]
    return out.astype({"n_common": int, "mcnemar_b": int, "mcnemar_c": int, "n_tracks": int})


def _compare(
    row: dict[str, Any],
    g: pd.DataFrame,
    acc: np.ndarray,
    own: pd.DataFrame,
    base: pd.DataFrame,
    base_oof: pd.DataFrame,
    folds: list[Any],
    n_boot: int,
    alpha: float,
    seed: int,
) -> None:
    """Fill the comparison columns of one non-baseline row (see compare_to_baseline)."""
    notes = []
    merged = own[["fold", "track_id", "_correct"]].merge(
        base_oof, on=["fold", "track_id"], suffixes=("_a", "_b"), how="inner"
    )
    ca = merged["_correct_a"].to_numpy(dtype=bool)
    cb = merged["_correct_b"].to_numpy(dtype=bool)
    row["n_common"] = int(ca.size)
    if ca.size:
        b, c, p_mc = mcnemar_exact(ca, cb)
        lo, hi = paired_bootstrap_ci(ca, cb, n_boot, alpha, seed)
        row.update(
            mcnemar_b=b,
            mcnemar_c=c,
            p_mcnemar=p_mc,
            delta_oof=float(ca.mean() - cb.mean()),
            delta_ci_low=lo,
            delta_ci_high=hi,
        )
    else:
        notes.append("no track scored by both")
    intersected = 0 < ca.size and (ca.size < len(own) or ca.size < len(base_oof))
    if intersected:
        notes.append(f"tracks compared on the {ca.size} scored by both")
    if len(folds) >= 2:
        base_acc = base["accuracy"].to_numpy(dtype=float)
        n_train = float(g["n_train"].astype(float).mean())
        n_test = float(g["n_test"].astype(float).mean())
        if intersected:
            # per-fold accuracies of different track sets are not paired: rescore both on the
            # tracks they share in each fold (folds sharing none drop out)
            per = merged.groupby("fold")[["_correct_a", "_correct_b"]].mean()
            acc = per["_correct_a"].to_numpy(dtype=float)
            base_acc = per["_correct_b"].to_numpy(dtype=float)
            # n_test/n_train stays the protocol's split proportion, which the correction is about
            notes.append(f"t-test on per-fold accuracies of those tracks ({len(per)} folds)")
        row["delta"] = float((acc - base_acc).mean()) if len(acc) else math.nan
    if len(folds) >= 2 and len(acc) >= 2:
        if math.isfinite(n_train) and n_train > 0 and math.isfinite(n_test) and n_test >= 0:
            t, p = corrected_resampled_ttest(acc, base_acc, n_train, n_test)
            row.update(test="corrected_t", t_stat=t, p_value=p)
        else:
            notes.append("n_train/n_test missing: no corrected t-test")
    elif ca.size:
        row.update(test="mcnemar", p_value=row["p_mcnemar"], delta=row["delta_oof"])
    row["note"] = "; ".join(notes)
