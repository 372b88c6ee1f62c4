"""Per-fit cost of every classic family, and the wall time of a benchmark config.

Prints, for each family with its search space's defaults, the seconds of one fit on 900 rows
of a feature set (one outer training part of a 10-fold split) and of predicting the other 100,
with the thread settings the harness uses. Then, with ``--config``, runs that benchmark into a
temporary folder and prints its wall time and the tuning seconds per family.

    python benchmarks/fit_cost.py --data-dir ../shared/datasets/gtzan [--config quick]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmark.config import load_config
from benchmark.data import Dataset
from benchmark.execution.local import plan_and_run
from benchmark.execution.plan import RunOptions
from benchmark.features import get_feature_set
from benchmark.models import all_families
from benchmark.tuning.search_space import load_search_space


def fit_costs(dataset: Dataset, feature_set: str, repeats: int) -> None:
    fm = get_feature_set(feature_set).load(dataset, "tabular", Path("results") / "cache")
    y = dataset.labels_of(fm.row_track)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    train, test = order[: int(0.9 * len(y))], order[int(0.9 * len(y)) :]
    print(
        f"\n{feature_set}: fit on {len(train)} rows x {fm.X.shape[1]} features, "
        f"predict {len(test)} (median of {repeats})"
    )
    print(f"{'family':<15}{'fit s':>9}{'predict s':>11}{'accuracy':>10}")
    for name, family in all_families().items():
        if family.input_kind != "tabular" or family.skip_reason():
            continue
        params = load_search_space(name).defaults_for_trial()
        fits, preds = [], []
        for _ in range(repeats):
            model = family.build(params, 0)
            t0 = time.perf_counter()
            model.fit(fm.X[train], y[train])
            t1 = time.perf_counter()
            proba = model.predict_proba(fm.X[test])
            fits.append(t1 - t0)
            preds.append(time.perf_counter() - t1)
        acc = float(np.mean(model.classes_[proba.argmax(axis=1)] == y[test]))
        print(f"{name:<15}{np.median(fits):>9.3f}{np.median(preds):>11.4f}{acc:>10.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("GENREBENCH_DATA"))
    parser.add_argument("--features", default="csv_30s,spectrogram_img")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--config", help="also time this benchmark config end to end")
    args = parser.parse_args()
    dataset = Dataset.open(args.data_dir)
    for fs in args.features.split(","):
        fit_costs(dataset, fs, args.repeats)
    if args.config:
        cfg = load_config(args.config)
        with tempfile.TemporaryDirectory() as tmp:
            opts = RunOptions(data_dir=args.data_dir, results_root=Path(tmp))
            result = plan_and_run(cfg, opts)
        res = result.results
        print(
            f"\nconfig {cfg.name}: {len(res)} rows, {result.counts}, wall {result.wall_s:.0f} s "
            f"with n_jobs={cfg.n_jobs} on {os.cpu_count()} cores"
        )
        per = res.groupby("family")[["tune_s", "fit_s"]].sum().sort_values("tune_s")
        print(per.round(1).to_string())


if __name__ == "__main__":
    main()
