"""A budgeted run against the unbudgeted run of the same config, side by side.

Prints, for two finished results folders (e.g. ``genrebench run --config full --budget 1h`` and
the same config without ``--budget``): wall time, trials, folds per status, the best pair and
its accuracy per protocol, where the budgeted run's best pair stands in the reference (its
reference accuracy, against the reference best's 95 % interval over folds), and Kendall's tau
between the two pair rankings (mean accuracy per pair; a raced pair's mean over the folds it
reached) for every k-fold protocol, beside the yardstick of how far the reference agrees with
itself: the median (and 5-95 % range) of tau between its ranking and the ranking of its own
outer folds drawn again with replacement (a bootstrap over folds, paired across pairs). A
budgeted tau near that median is as close as the reference's folds can tell pairs apart.
Core-hours are the folds' own seconds (tune + refit + predict) summed: unlike a run's wall time
they add up over a reference resumed across sessions.
A reference still running (no ``results.parquet`` yet) is read from its Optuna storage: the folds
finished so far, labelled partial (means over fewer folds, no wall time).

``--also`` names more budgeted runs of the same folds searched with other luck (``--search-seed``):
for each, its best pair and its tau against the reference and against the first budgeted run,
so a tau can be read against how far two equally honest budgeted runs agree with each other.

    python benchmarks/budget_vs_full.py results-budget/full results/full
    python benchmarks/budget_vs_full.py b/full ref/full --also b-seed1/full --also b-seed2/full
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import kendalltau, t

from benchmark.execution.fold_outcomes import FoldOutcomes
from benchmark.results import read_table, results_frame


def _stored_outcomes(folder: Path) -> pd.DataFrame:
    """The folds a run still going has finished: their outcomes, stored in the results folder
    as each fold ends."""
    outcomes = FoldOutcomes(folder).all()
    return results_frame(o.row() for o in outcomes)


def _summary(folder: Path) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    if (folder / "results.parquet").exists():
        # run.json comes after the ensembles: until then, the folds' table without a wall time
        meta = folder / "run.json"
        run = json.loads(meta.read_text()) if meta.exists() else {"wall_s": float("nan")}
        res = read_table(folder / "results.parquet")
    else:
        res = _stored_outcomes(folder)
        run = {"wall_s": float("nan"), "partial": len(res)}
    pairs = res[res["feature_set"] != "ensemble"]
    done = pairs[pairs["status"] == "done"]
    means = done.groupby(["protocol", "feature_set", "family"])["accuracy"].agg(
        ["mean", "std", "count"]
    )
    means = means.rename(columns={"mean": "accuracy"}).reset_index()
    return run, pairs, means


def _core_hours(pairs: pd.DataFrame) -> float:
    seconds = pairs[["tune_s", "fit_s", "predict_s"]].apply(pd.to_numeric, errors="coerce")
    return float(seconds.fillna(0).to_numpy().sum()) / 3600


def _interval(row: pd.Series) -> tuple[float, float]:
    """95 % t interval of a pair's mean accuracy over its folds."""
    k = int(row["count"])
    half = t.ppf(0.975, k - 1) * row["std"] / math.sqrt(k) if k > 1 else float("nan")
    return row["accuracy"] - half, row["accuracy"] + half


def _self_tau(pairs: pd.DataFrame, protocol: str, draws: int = 2000) -> tuple[float, ...]:
    """Median, 5 % and 95 % of tau between the reference's pair ranking and the ranking of its
    outer folds resampled with replacement (a pair raced out keeps the folds it has; one with
    none of the drawn folds keeps its mean)."""
    done = pairs[(pairs["protocol"] == protocol) & (pairs["status"] == "done")]
    table = done.pivot_table(index="fold", columns=["feature_set", "family"], values="accuracy")
    full = table.mean()
    rng = np.random.default_rng(0)
    taus = []
    for _ in range(draws):
        drawn = table.iloc[rng.integers(0, len(table), len(table))].mean().fillna(full)
        taus.append(kendalltau(full, drawn[full.index]).statistic)
    return tuple(float(q) for q in np.nanquantile(taus, [0.5, 0.05, 0.95]))


def _pair_means(means: pd.DataFrame, protocol: str) -> pd.DataFrame:
    return means[means["protocol"] == protocol].set_index(["feature_set", "family"])


def _tau(a: pd.DataFrame, b: pd.DataFrame) -> tuple[float, int]:
    """Kendall's tau of two runs' pair rankings (mean accuracy) over the pairs both have."""
    common = a.index.intersection(b.index)
    if len(common) <= 2:
        return float("nan"), len(common)
    return float(kendalltau(a.loc[common, "accuracy"], b.loc[common, "accuracy"]).statistic), len(
        common
    )


def _other_searches(
    folders: list[Path], mean_b: pd.DataFrame, mean_r: pd.DataFrame, first: str
) -> None:
    """Each other budgeted run against the reference and against the first budgeted run."""
    protocols = sorted(set(mean_r["protocol"]) & set(mean_b["protocol"]) - {"fault_filtered"})
    taus: dict[str, list[float]] = {p: [] for p in protocols}
    for folder in folders:
        run, _, mean_o = _summary(folder)
        config = run.get("config", {})
        seed = config.get("search_seed")
        print(f"\n{folder} (search seed {seed if seed is not None else config.get('seed', '-')})")
        for protocol in protocols:
            o = _pair_means(mean_o, protocol)
            if o.empty:
                continue
            vs_ref, n = _tau(o, _pair_means(mean_r, protocol))
            vs_first, _ = _tau(o, _pair_means(mean_b, protocol))
            taus[protocol].append(vs_ref)
            best = o["accuracy"].idxmax()
            print(
                f"  {protocol:<18} best {' · '.join(best)} {o.accuracy.max():.3f}; Kendall tau "
                f"({n} pairs) vs reference {vs_ref:.3f}, vs {first} {vs_first:.3f}"
            )
    for protocol, values in taus.items():
        tau_b, _ = _tau(_pair_means(mean_b, protocol), _pair_means(mean_r, protocol))
        every = [tau_b, *values]
        print(
            f"{protocol}: tau vs reference over {len(every)} budgeted runs: mean "
            f"{np.mean(every):.3f}, range [{min(every):.3f}, {max(every):.3f}]"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("budgeted", type=Path)
    parser.add_argument("reference", type=Path)
    parser.add_argument(
        "--also",
        type=Path,
        action="append",
        default=[],
        help="another budgeted run of the same folds (another --search-seed); repeatable",
    )
    args = parser.parse_args()
    (run_b, pairs_b, mean_b), (run_r, pairs_r, mean_r) = (
        _summary(args.budgeted),
        _summary(args.reference),
    )
    partial = f" (partial: {run_r['partial']} folds)" if "partial" in run_r else ""
    reference = "reference" + partial
    print(f"{'':<34}{'budgeted':>32}{reference:>32}")
    schedule = run_b.get("schedule", {})
    print(f"{'budget':<34}{str(schedule.get('budget_s', '-')):>32}{'-':>32}")
    print(f"{'wall time (s)':<34}{run_b['wall_s']:>32.0f}{run_r['wall_s']:>32.0f}")
    print(
        f"{'dry-run estimate (s)':<34}{schedule.get('estimated_wall_s', float('nan')):>32.0f}"
        f"{schedule.get('unbudgeted_wall_s', float('nan')):>32.0f}"
    )
    print(f"{'fold core-hours':<34}{_core_hours(pairs_b):>32.2f}{_core_hours(pairs_r):>32.2f}")
    print(
        f"{'trials (complete + pruned)':<34}"
        f"{int((pairs_b['n_trials'] + pairs_b['n_pruned']).sum()):>32}"
        f"{int((pairs_r['n_trials'] + pairs_r['n_pruned']).sum()):>32}"
    )
    for status in sorted(set(pairs_b["status"]) | set(pairs_r["status"])):
        print(
            f"{'folds ' + status:<34}{int((pairs_b['status'] == status).sum()):>32}"
            f"{int((pairs_r['status'] == status).sum()):>32}"
        )
    for protocol in sorted(set(mean_r["protocol"]) & set(mean_b["protocol"])):
        b, r = _pair_means(mean_b, protocol), _pair_means(mean_r, protocol)
        best_b, best_r = b["accuracy"].idxmax(), r["accuracy"].idxmax()
        print(
            f"{'best ' + protocol:<34}{' · '.join(best_b) + f' {b.accuracy.max():.3f}':>32}"
            f"{' · '.join(best_r) + f' {r.accuracy.max():.3f}':>32}"
        )
        if best_b in r.index and protocol != "fault_filtered":
            lo, hi = _interval(r.loc[best_r])
            there = r.loc[best_b, "accuracy"]
            inside = "inside" if lo <= there <= hi else "outside"
            print(
                f"{'  budgeted best in the reference':<34}{there:>32.3f}"
                f"{f'{inside} [{lo:.3f}, {hi:.3f}]':>32}"
            )
        tau, n = _tau(b, r)
        if n > 2 and protocol != "fault_filtered":
            med, lo, hi = _self_tau(pairs_r, protocol)
            print(
                f"{'Kendall tau ' + protocol + f' ({n} pairs)':<34}{tau:>32.3f}"
                f"  reference vs itself, folds resampled {med:.3f} [{lo:.3f}, {hi:.3f}]"
            )
    if args.also:
        _other_searches(args.also, mean_b, mean_r, str(args.budgeted))


if __name__ == "__main__":
    main()
