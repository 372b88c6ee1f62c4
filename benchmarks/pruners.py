"""Median pruning against successive halving and Hyperband, on the same folds and trials.

Runs one small benchmark per pruner (config key ``pruner``: inner folds, or a network's epochs,
are the resource) into a temporary folder and prints, per pruner: mean artist-grouped accuracy,
trials completed and pruned, tuning seconds. Every other setting is the same, so the seeds and
folds are too; only the pruner (and so which trials are stopped) differs.

    python benchmarks/pruners.py --data-dir ../shared/datasets/gtzan \
        [--families logreg,svm_rbf,lightgbm] [--trials 20] [--inner 5] [--folds 5]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import pandas as pd

from benchmark.config import config_from_dict
from benchmark.execution.local import plan_and_run
from benchmark.execution.plan import RunOptions
from benchmark.tuning.objective import PRUNERS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("GENREBENCH_DATA"))
    parser.add_argument("--features", default="csv_30s")
    parser.add_argument("--families", default="logreg,svm_rbf,random_forest,lightgbm")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--inner", type=int, default=5)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--pruners", default=",".join(p for p in PRUNERS))
    args = parser.parse_args()
    print(
        f"{args.features} × {args.families}; artist_kfold {args.folds} folds, inner "
        f"{args.inner}-fold, {args.trials} trials/study, {args.n_jobs} processes"
    )
    print(f"{'pruner':<20}{'accuracy':>10}{'complete':>10}{'pruned':>8}{'tune s':>9}{'wall s':>8}")
    for pruner in args.pruners.split(","):
        cfg = config_from_dict(
            {
                "name": f"pruner_{pruner}",
                "feature_sets": args.features.split(","),
                "families": args.families.split(","),
                "protocols": {"artist_kfold": {"n_folds": args.folds}},
                "inner_folds": args.inner,
                "n_trials": args.trials,
                "n_jobs": args.n_jobs,
                "baseline": {"feature_set": args.features.split(",")[0], "family": "logreg"},
                "ensembles": False,
                "pruner": pruner,
            },
            source="benchmarks/pruners.py",
        )
        with tempfile.TemporaryDirectory() as tmp:
            opts = RunOptions(data_dir=args.data_dir, results_root=Path(tmp), track=False)
            result = plan_and_run(cfg, opts)
        res = result.results[result.results["status"] == "done"]
        print(_row(pruner, res, f"{result.wall_s:>8.0f}"))
        if res["family"].nunique() > 1:  # the baseline logreg always comes along
            for family, rows in res.groupby("family", sort=True):
                print(_row(f"  {family}", rows, ""))


def _row(label: str, res: pd.DataFrame, wall: str) -> str:
    """One line of the table: mean outer accuracy, trials completed and pruned, tuning seconds."""
    return (
        f"{label:<20}{res['accuracy'].mean():>10.3f}{int(res['n_trials'].sum()):>10}"
        f"{int(res['n_pruned'].sum()):>8}{res['tune_s'].sum():>9.0f}{wall}"
    )


if __name__ == "__main__":
    main()
