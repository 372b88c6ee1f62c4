"""A study a budget cuts short: TPE's default 10-trial random start against the planned share.

Runs one pair's studies on every outer fold of the named protocols with ``--trials`` trials (a
budget's cut) twice, on the same folds and seeds: once with TPE's default 10 random start-up
trials (what a budgeted study had before ``FoldJob.planned_trials``), once with the planned
study's share of them (``ceil(10 * trials / planned)``,
:func:`benchmark.tuning.sampler_seeding.startup_trials`),
and prints the mean outer and inner (tuning) accuracy of each. Inner accuracy is the less noisy
figure: it says how well the few trials searched; outer accuracy adds the fold's test noise.

    python benchmarks/tpe_startup.py --data-dir ../shared/datasets/gtzan \
        --features spectrogram_img --family svm_sigmoid --trials 15 \
        [--protocols artist_kfold,stratified_kfold] [--n-jobs 2]

Measured on the shared GTZAN copy (2026-12, ``full`` config's folds; planned 40 / 30 trials):
spectrogram svm_sigmoid, 15 trials, inner accuracy 0.463 -> 0.479 (artist-grouped) and
0.582 -> 0.601 (stratified); csv_30s svm_rbf, 11 trials: 0.553 -> 0.552.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmark.config import load_config
from benchmark.data import Dataset
from benchmark.execution.plan import RunOptions, make_plan
from benchmark.tuning.fold import run_fold
from benchmark.tuning.job import FoldJob
from benchmark.tuning.sampler_seeding import startup_trials


def _score(job: FoldJob) -> tuple[float, float]:
    outcome = run_fold(job)
    return outcome.metrics.get("accuracy", float("nan")), outcome.inner_accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("GENREBENCH_DATA"))
    parser.add_argument("--config", default="full")
    parser.add_argument("--features", default="spectrogram_img")
    parser.add_argument("--family", default="svm_sigmoid")
    parser.add_argument("--trials", type=int, default=15)
    parser.add_argument("--protocols", default="artist_kfold")
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args()
    cfg = load_config(args.config).with_overrides(
        feature_sets=[args.features], families=[args.family]
    )
    planned = cfg.trials_for(args.family)
    with tempfile.TemporaryDirectory() as tmp:
        opts = RunOptions(data_dir=args.data_dir, results_root=Path(tmp), track=False)
        dataset = Dataset.open(opts.data_dir, cfg.dataset)
        plan = make_plan(
            cfg, dataset, opts, f"sqlite:///{tmp}/plan.db", [(args.features, args.family)]
        )
        jobs = [j for j in plan.jobs if j.pair.protocol in args.protocols.split(",")]
        variants = {"default start": None, "planned share": planned}
        work = [
            replace(
                j,
                n_trials=args.trials,
                planned_trials=p,
                timeout_s=None,
                storage_url=f"sqlite:///{tmp}/{k}_{j.pair.protocol}_{j.fold}.db",
            )
            for k, p in enumerate(variants.values())
            for j in jobs
        ]
        with ProcessPoolExecutor(args.n_jobs) as pool:
            scores = list(pool.map(_score, work))
    print(
        f"{args.features} · {args.family}: {args.trials} of {planned} planned trials, "
        f"{len(jobs)} folds ({args.protocols})"
    )
    print(f"{'':<16}{'start-up':>9}{'outer acc':>11}{'inner acc':>11}")
    for k, (label, p) in enumerate(variants.items()):
        outer, inner = np.array(scores[k * len(jobs) : (k + 1) * len(jobs)]).T
        start = startup_trials(args.trials, p)
        print(f"{label:<16}{start:>9}{np.nanmean(outer):>11.3f}{np.nanmean(inner):>11.3f}")


if __name__ == "__main__":
    main()
