"""How much MLflow tracking adds to a benchmark: milliseconds per trial child run and per fold.

    python benchmarks/tracking_overhead.py [--trials 100] [--folds 5] [--uri sqlite:///...]

Logs folds of a toy Optuna study (real FrozenTrials: params, 3 intermediate values, some pruned)
through :class:`benchmark.tracking.Tracker`, into a fresh SQLite store by default. A fold is timed
twice, once with its trials and once without, so that

* per trial = (fold with trials - fold without trials) / trials  (create_run + log_batch +
  set_terminated of one child run), and
* per fold = the fold without trials (parent lookups, fold metrics, the six artifacts including
  the confusion-matrix PNG, tags, parent status).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd

from benchmark.results import FoldOutcome, PairKey
from benchmark.storage import default_tracking_uri
from benchmark.tracking import Tracker

GENRES = (
    "blues",
    "classical",
    "country",
    "disco",
    "hiphop",
    "jazz",
    "metal",
    "pop",
    "reggae",
    "rock",
)


def toy_trials(n: int, seed: int) -> list[optuna.trial.FrozenTrial]:
    def objective(trial: optuna.Trial) -> float:
        c = trial.suggest_float("C", 1e-3, 1e3, log=True)
        trial.suggest_categorical("kernel", ["rbf", "poly", "sigmoid"])
        trial.suggest_int("degree", 2, 5)
        score = 1 / (1 + abs(np.log10(c)))
        for step in range(3):
            trial.report(score, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return score

    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5),
    )
    study.optimize(objective, n_trials=n)
    return study.get_trials()


def toy_outcome(pair: PairKey, fold: int, n_test: int = 100) -> FoldOutcome:
    rng = np.random.default_rng(fold)
    proba = rng.dirichlet(np.ones(len(GENRES)), size=n_test)
    y_true = [GENRES[i % len(GENRES)] for i in range(n_test)]
    y_pred = [GENRES[i] for i in proba.argmax(axis=1)]
    preds = pd.DataFrame(
        {
            "track_id": [f"{g}.{i:05d}" for i, g in enumerate(y_true)],
            "y_true": y_true,
            "y_pred": y_pred,
            "correct": [a == b for a, b in zip(y_true, y_pred, strict=True)],
        }
    )
    for j, g in enumerate(GENRES):
        preds[f"proba_{g}"] = proba[:, j]
    acc = float(preds["correct"].mean())
    return FoldOutcome(
        pair,
        fold,
        "done",
        metrics={"accuracy": acc, "balanced_accuracy": acc, "macro_f1": acc, "log_loss": 2.3},
        inner_accuracy=0.5,
        n_trials=10,
        n_test=n_test,
        fit_s=1.0,
        params={"C": 1.0, "kernel": "rbf"},
        study_name=f"overhead.{pair.slug}.fold{fold}",
        predictions=preds,
    )


def toy_split(fold: int, n: int = 1000) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "protocol": "random_kfold",
            "fold": fold,
            "track_id": [f"{GENRES[i % 10]}.{i:05d}" for i in range(n)],
            "part": ["test" if i % 10 == fold % 10 else "train" for i in range(n)],
        }
    )


SPACE = {"family": "svm", "params": {"C": {"type": "float", "low": 1e-3, "high": 1e3}}}


def time_log_fold(
    tracker: Tracker, n_trials: int, folds: int
) -> tuple[list[float], list[float], list[float]]:
    """Seconds per trial child run, per fold without trials, and CPU seconds per trial run in
    this process, one value per timed fold (each fold logged with and without its trials)."""
    pair = PairKey("csv_30s", "svm", "random_kfold")
    # warm-up: parent run creation, lazy imports (matplotlib)
    tracker.log_fold(
        toy_outcome(pair, 99), [], toy_split(99), protocol_description="warm-up", search_space=SPACE
    )
    per_trial, per_fold, cpu_trial = [], [], []
    for k in range(folds):
        trials = toy_trials(n_trials, seed=k)
        t0, c0 = time.perf_counter(), time.process_time()
        tracker.log_fold(
            toy_outcome(pair, 2 * k),
            trials,
            toy_split(2 * k),
            protocol_description="random 10-fold",
            search_space=SPACE,
        )
        with_trials, cpu_with = time.perf_counter() - t0, time.process_time() - c0
        t0, c0 = time.perf_counter(), time.process_time()
        tracker.log_fold(
            toy_outcome(pair, 2 * k + 1),
            [],
            toy_split(2 * k + 1),
            protocol_description="random 10-fold",
            search_space=SPACE,
        )
        without, cpu_without = time.perf_counter() - t0, time.process_time() - c0
        per_fold.append(without)
        per_trial.append((with_trials - without) / n_trials)
        cpu_trial.append((cpu_with - cpu_without) / n_trials)
    return per_trial, per_fold, cpu_trial


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100, help="trials per fold")
    parser.add_argument("--folds", type=int, default=5, help="folds timed")
    parser.add_argument("--uri", help="tracking URI (default: a new SQLite file)")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    with tempfile.TemporaryDirectory() as tmp:
        uri = args.uri or default_tracking_uri(Path(tmp))
        t0 = time.perf_counter()
        tracker = Tracker(uri, "overhead", {"seed": "0"})
        open_s = time.perf_counter() - t0
        pair = PairKey("csv_30s", "svm", "random_kfold")
        space = SPACE
        per_trial, per_fold, cpu_trial = time_log_fold(tracker, args.trials, args.folds)
        trials = toy_trials(args.trials, seed=0)
        # a fold already logged: only the idempotence check runs
        t0 = time.perf_counter()
        tracker.log_fold(
            toy_outcome(pair, 0),
            trials,
            toy_split(0),
            protocol_description="random 10-fold",
            search_space=space,
        )
        skip = time.perf_counter() - t0

    def ms(values: list[float]) -> str:
        return f"{1000 * statistics.median(values):.1f} ms (min {1000 * min(values):.1f})"

    print(f"tracking store: {uri if args.uri else 'sqlite (new file)'}")
    print(f"open store + experiment:         {1000 * open_s:.0f} ms (schema creation included)")
    print(
        f"per trial child run:             {ms(per_trial)}  [{args.trials} trials x "
        f"{args.folds} folds]"
    )
    print(
        f"  of which CPU in this process:  {ms(cpu_trial)}  (the rest: SQLite syncs, or "
        "waiting for a busy machine)"
    )
    print(f"per fold (metrics + artifacts):  {ms(per_fold)}")
    print(f"fold already logged (skipped):   {1000 * skip:.1f} ms")


if __name__ == "__main__":
    main()
