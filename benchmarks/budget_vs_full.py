"""A budgeted run against the unbudgeted run of the same config, side by side.

Prints, for two finished results folders (e.g. ``genrebench run --config full --budget 1h`` and
the same config without ``--budget``): wall time, trials, folds per status, the best pair and
its accuracy per protocol, and Kendall's tau between the two pair rankings (mean accuracy per
pair; a raced pair's mean over the folds it reached) for every k-fold protocol.

    python benchmarks/budget_vs_full.py results-budget/full results/full
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
from scipy.stats import kendalltau

from benchmark.results import read_table


def _summary(folder: Path) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    run = json.loads((folder / "run.json").read_text())
    res = read_table(folder / "results.parquet")
    pairs = res[res["feature_set"] != "ensemble"]
    done = pairs[pairs["status"] == "done"]
    means = done.groupby(["protocol", "feature_set", "family"])["accuracy"].mean()
    return run, pairs, means.rename("accuracy").reset_index()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("budgeted", type=Path)
    parser.add_argument("reference", type=Path)
    args = parser.parse_args()
    (run_b, pairs_b, mean_b), (run_r, pairs_r, mean_r) = (
        _summary(args.budgeted),
        _summary(args.reference),
    )
    print(f"{'':<34}{'budgeted':>22}{'reference':>22}")
    schedule = run_b.get("schedule", {})
    print(f"{'budget':<34}{str(schedule.get('budget_s', '-')):>22}{'-':>22}")
    print(f"{'wall time (s)':<34}{run_b['wall_s']:>22.0f}{run_r['wall_s']:>22.0f}")
    print(
        f"{'dry-run estimate (s)':<34}{schedule.get('estimated_wall_s', float('nan')):>22.0f}"
        f"{schedule.get('unbudgeted_wall_s', float('nan')):>22.0f}"
    )
    print(
        f"{'trials (complete + pruned)':<34}"
        f"{int((pairs_b['n_trials'] + pairs_b['n_pruned']).sum()):>22}"
        f"{int((pairs_r['n_trials'] + pairs_r['n_pruned']).sum()):>22}"
    )
    for status in sorted(set(pairs_b["status"]) | set(pairs_r["status"])):
        print(
            f"{'folds ' + status:<34}{int((pairs_b['status'] == status).sum()):>22}"
            f"{int((pairs_r['status'] == status).sum()):>22}"
        )
    for protocol in sorted(set(mean_r["protocol"])):
        b = mean_b[mean_b["protocol"] == protocol].set_index(["feature_set", "family"])
        r = mean_r[mean_r["protocol"] == protocol].set_index(["feature_set", "family"])
        best_b, best_r = b["accuracy"].idxmax(), r["accuracy"].idxmax()
        print(
            f"{'best ' + protocol:<34}{' · '.join(best_b) + f' {b.accuracy.max():.3f}':>22}"
            f"{' · '.join(best_r) + f' {r.accuracy.max():.3f}':>22}"
        )
        common = b.index.intersection(r.index)
        if len(common) > 2 and protocol != "fault_filtered":
            tau = kendalltau(b.loc[common, "accuracy"], r.loc[common, "accuracy"]).statistic
            print(f"{'Kendall tau ' + protocol + f' ({len(common)} pairs)':<34}{tau:>22.3f}")


if __name__ == "__main__":
    main()
