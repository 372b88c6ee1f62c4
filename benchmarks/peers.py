"""genrebench against an off-the-shelf AutoML tool (FLAML) on the same splits and budget.

For every outer fold of a finished genrebench run (artist-grouped k-fold and the fault-filtered
test split), FLAML tunes on the outer training part of ``csv_30s`` with artist-grouped inner CV
(the same grouping genrebench's inner folds use) for as many seconds as genrebench spent on
``csv_30s`` in that fold (tuning + refit + predicting, summed over its families: one core each,
so FLAML gets one core too), then predicts the outer test part once. It prints FLAML's accuracy
next to genrebench's best ``csv_30s`` pair, best pair overall and best ensemble, per protocol.

    pip install "flaml[automl]"
    python benchmarks/peers.py --data-dir ../shared/datasets/gtzan --results results/quick

FLAML is an optional extra: the script says how to install it when it is missing.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.config import config_from_dict
from benchmark.data import Dataset
from benchmark.features import get_feature_set


def _budgets(results: pd.DataFrame, feature_set: str, scale: float, cap: float) -> pd.Series:
    """Seconds genrebench spent on ``feature_set`` per (protocol, fold)."""
    rows = results[(results["feature_set"] == feature_set) & (results["status"] == "done")]
    spent = rows[["tune_s", "fit_s", "predict_s"]].astype(float).sum(axis=1)
    per_fold = spent.groupby([rows["protocol"], rows["fold"]]).sum()
    return (per_fold * scale).clip(lower=5.0, upper=cap)


def _genrebench_best(results: pd.DataFrame, protocol: str) -> dict[str, tuple[str, float]]:
    done = results[(results["protocol"] == protocol) & (results["status"] == "done")]
    folds = done["fold"].nunique()
    means = done.groupby(["feature_set", "family"])["accuracy"].agg(["mean", "count"])
    means = means[means["count"] == folds]["mean"]
    out = {}
    for label, sel in (
        ("best csv_30s pair", means[means.index.get_level_values(0) == "csv_30s"]),
        ("best pair", means[means.index.get_level_values(0) != "ensemble"]),
        ("best ensemble", means[means.index.get_level_values(0) == "ensemble"]),
    ):
        if len(sel):
            key = sel.idxmax()
            out[label] = (f"{key[0]} · {key[1]}", float(sel.max()))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--results", required=True, help="results/<benchmark> of a finished run")
    parser.add_argument("--feature-set", default="csv_30s")
    parser.add_argument("--budget-scale", type=float, default=1.0, help="× genrebench's seconds")
    parser.add_argument("--max-budget", type=float, default=600.0, help="seconds per fold, at most")
    parser.add_argument("--folds", type=int, default=None, help="first N folds per protocol")
    args = parser.parse_args()
    try:
        from flaml import AutoML
    except ImportError:
        print('FLAML is not installed: pip install "flaml[automl]"', file=sys.stderr)
        return 2
    logging.getLogger("flaml.automl.logger").setLevel(logging.WARNING)

    results_dir = Path(args.results)
    results = pd.read_parquet(results_dir / "results.parquet")
    splits = pd.read_parquet(results_dir / "splits.parquet")
    run = json.loads((results_dir / "run.json").read_text())
    cfg = config_from_dict(run["config"], source=str(results_dir / "run.json"))
    ds = Dataset.open(args.data_dir, cfg.dataset)
    fm = get_feature_set(args.feature_set).load(ds, "tabular", results_dir.parent / "cache")
    X = pd.DataFrame(fm.X, index=fm.row_track, columns=fm.feature_names)
    y = pd.Series(ds.labels_of(fm.row_track), index=fm.row_track)
    budgets = _budgets(results, args.feature_set, args.budget_scale, args.max_budget)

    rows = []
    for protocol in [p for p in ("artist_kfold", "fault_filtered") if p in set(splits["protocol"])]:
        folds = sorted(set(splits.loc[splits["protocol"] == protocol, "fold"]))[: args.folds]
        for fold in folds:
            part = splits[(splits["protocol"] == protocol) & (splits["fold"] == fold)]
            train = [t for t in part.loc[part["part"] == "train", "track_id"] if t in X.index]
            test = [t for t in part.loc[part["part"] == "test", "track_id"] if t in X.index]
            groups = ds.artist_groups(np.asarray(train))
            budget = float(budgets.get((protocol, fold), 60.0))
            automl = AutoML()
            t0 = time.perf_counter()
            automl.fit(
                X.loc[train],
                y.loc[train],
                task="classification",
                metric="accuracy",
                time_budget=budget,
                eval_method="cv",
                n_splits=cfg.inner_folds,
                split_type="group",
                groups=groups,
                n_jobs=1,
                seed=cfg.seed,
                verbose=0,
            )
            wall = time.perf_counter() - t0
            acc = float(np.mean(automl.predict(X.loc[test]) == y.loc[test].to_numpy()))
            rows.append(
                {
                    "protocol": protocol,
                    "fold": fold,
                    "budget_s": budget,
                    "wall_s": wall,
                    "accuracy": acc,
                    "learner": automl.best_estimator,
                }
            )
            print(
                f"{protocol} fold {fold}: FLAML {acc:.3f} ({automl.best_estimator}, "
                f"budget {budget:.0f} s, {wall:.0f} s)",
                flush=True,
            )
    table = pd.DataFrame(rows)
    print("\nprotocol        | FLAML (same splits, budget) | genrebench")
    for protocol, g in table.groupby("protocol", sort=False):
        folds = sorted(g["fold"])
        sub = results[(results["protocol"] == protocol) & results["fold"].isin(folds)]
        best = _genrebench_best(sub, protocol)
        ours = "; ".join(f"{k}: {v[0]} {v[1]:.3f}" for k, v in best.items())
        print(
            f"{protocol:<15} | {g['accuracy'].mean():.3f} over {len(g)} fold(s), "
            f"{g['budget_s'].sum():.0f} s | {ours}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
