"""What a trial computes: the inner-CV accuracy of its params, and when it is stopped early.

The objective fits the params on each grouped inner fold of the outer training part and reports
the running mean after each, so a pruner (:data:`PRUNERS`, by the name a config gives) can stop
a hopeless trial; a network also reports per epoch of its first inner fit. Nothing of the outer
test part is involved.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import numpy as np
import optuna
import pandas as pd

from benchmark.errors import GenrebenchError
from benchmark.scoring import aggregate_tracks
from benchmark.tuning.job import FoldJob, fit_predict, fold_rows, job_family, track_labels
from benchmark.tuning.search_space import SearchSpace

__all__ = [
    "FOLD_STEP0",
    "PRUNERS",
    "best_inner",
    "inner_cv_objective",
    "inner_predictions",
    "make_pruner",
]


#: step of the first inner-fold report for families that report epochs (steps below it are
#: the epochs of the first inner fit), so a step means the same thing in every trial
FOLD_STEP0 = 10_000


def _pruning_callback(trial: optuna.Trial) -> Callable[[int, Mapping[str, float]], None]:
    """Report a network's validation accuracy after each epoch of its first inner fit, and
    stop the trial there once it trails the median of earlier trials at that epoch."""

    def on_epoch(epoch: int, logs: Mapping[str, float]) -> None:
        accuracy = logs.get("val_accuracy", math.nan)
        if not math.isfinite(accuracy):
            return  # no early-stopping split: nothing to compare
        trial.report(float(accuracy), epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"epoch {epoch}: validation accuracy {accuracy:.3f}")

    return on_epoch


#: a pruner's factory: the warm-up steps (epochs of a network's first inner fit) in, the pruner out
PrunerFactory = Callable[[int], optuna.pruners.BasePruner]

#: the pruners a config may name (``pruner:``), by name, as ensembles' methods are; each stops a
#: trial at an inner fold (or, for a network, an epoch of its first inner fit) where it trails
#: the trials before it. ``median`` (the default): below the median of earlier trials at the
#: same step, once a few trials have completed. ``successive_halving`` / ``hyperband``: Optuna's
#: asynchronous successive halving (and its brackets), with inner folds (or epochs) as the
#: resource, keeping the best third at each rung. ``none``: every trial runs to the end.
PRUNERS: Mapping[str, PrunerFactory] = MappingProxyType(
    {
        "median": lambda warmup: optuna.pruners.MedianPruner(
            n_startup_trials=5, n_warmup_steps=warmup
        ),
        "successive_halving": lambda warmup: optuna.pruners.SuccessiveHalvingPruner(
            min_resource=1 + warmup, reduction_factor=3
        ),
        "hyperband": lambda warmup: optuna.pruners.HyperbandPruner(
            min_resource=1 + warmup, reduction_factor=3
        ),
        "none": lambda warmup: optuna.pruners.NopPruner(),
    }
)


def make_pruner(name: str, family_trains_in_epochs: bool) -> optuna.pruners.BasePruner:
    """The pruner ``name`` of :data:`PRUNERS`; a network's is also applied per epoch, after a
    few epochs of warm-up (early epochs say little about where a network ends)."""
    if name not in PRUNERS:
        raise GenrebenchError(f"unknown pruner {name!r}; known: {', '.join(PRUNERS)}")
    return PRUNERS[name](3 if family_trains_in_epochs else 0)


def _inner_rows(job: FoldJob) -> list[tuple[np.ndarray, np.ndarray]]:
    return [
        (fold_rows(job, a, training=True), fold_rows(job, b, training=False))
        for a, b in job.inner_splits
    ]


def _inner_fold_frame(
    job: FoldJob, proba: np.ndarray, valid: np.ndarray, inner_fold: int
) -> pd.DataFrame:
    """Track-level predictions of one inner validation part (the ensembles' training rows)."""
    pred = aggregate_tracks(proba, job.row_track[valid])
    frame = pred.frame(track_labels(job, pred.track_ids), job.classes)
    frame.insert(1, "inner_fold", inner_fold)
    return frame


def inner_cv_objective(
    job: FoldJob, space: SearchSpace, inner_oof: dict[int, pd.DataFrame] | None = None
) -> Callable[[optuna.Trial], float]:
    """Inner-CV accuracy of a trial's params; a completed trial's inner out-of-fold
    predictions are kept in ``inner_oof`` (by trial number), so the best one needs no refit."""
    inner = _inner_rows(job)
    epochs = job_family(job).trains_in_epochs

    def objective(trial: optuna.Trial) -> float:
        params = space.suggest(trial)
        scores: list[float] = []
        frames: list[pd.DataFrame] = []
        for step, (train, valid) in enumerate(inner):
            on_epoch = _pruning_callback(trial) if epochs and step == 0 else None
            try:
                _, proba, _, _ = fit_predict(job, params, train, valid, on_epoch)
            except optuna.TrialPruned:
                raise
            except Exception as exc:
                # kept with the trial: the fold's error row can say why its trials failed
                trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:300])
                raise
            frames.append(_inner_fold_frame(job, proba, valid, step))
            scores.append(float(np.mean(frames[-1]["correct"].to_numpy(dtype=bool))))
            trial.report(float(np.mean(scores)), FOLD_STEP0 + step if epochs else step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        if inner_oof is not None:
            inner_oof[trial.number] = pd.concat(frames, ignore_index=True)
        return float(np.mean(scores))

    return objective


def best_inner(
    job: FoldJob, params: Mapping[str, Any], number: int | None, kept: dict[int, pd.DataFrame]
) -> pd.DataFrame:
    """The best trial's inner OOF predictions: kept from its run in this process, else
    (it ran in an earlier process or another worker, or nothing was tuned) refit."""
    inner = kept.get(number) if number is not None else None
    return inner if inner is not None else inner_predictions(job, params)


def inner_predictions(job: FoldJob, params: Mapping[str, Any]) -> pd.DataFrame:
    """Out-of-fold predictions of ``params`` over the inner folds of the outer training part
    (one row per training track: ``track_id, inner_fold, y_true, …, proba_<class>``).

    What an ensemble may learn from: every row was predicted by a model that never saw it,
    and nothing of the outer test part is involved.
    """
    frames = []
    for k, (train, valid) in enumerate(_inner_rows(job)):
        _, proba, _, _ = fit_predict(job, params, train, valid)
        frames.append(_inner_fold_frame(job, proba, valid, k))
    return pd.concat(frames, ignore_index=True)
