"""One outer fold tuned, refit and scored: the unit of work.

The Optuna study sees only the outer *training* tracks: its objective
(:mod:`benchmark.tuning.objective`) is the inner-CV accuracy over grouped inner folds of that
part. The best params are then refit on the whole outer training part and the outer test part
is predicted once. Nothing of the test part reaches tuning or preprocessing (the scaler and the
rest of the pipeline are fit inside each fit).

The study lives in an Optuna storage given by URL and is named deterministically, so a rerun
finds it: finished trials are kept and the budget counts them, so a fold run again adds no
trial and only refits. A finished fold's outcome is kept by the run that asked for it, with the
results (:mod:`benchmark.execution.fold_outcomes`), not in the study.

Which trials run and which count (the budget, a killed run's trials) is
:mod:`benchmark.tuning.trial_budget`'s; this module says what becomes of the best trial.
"""

from __future__ import annotations

import logging
import math
import time
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.trial import TrialState

from benchmark.errors import GenrebenchError
from benchmark.results import FoldOutcome
from benchmark.scoring import aggregate_tracks, score_tracks
from benchmark.storage import open_storage
from benchmark.tuning.job import (
    FoldJob,
    check_no_leak,
    derive_seed,
    fit_predict,
    fold_rows,
    job_family,
    track_labels,
)
from benchmark.tuning.objective import best_inner, inner_cv_objective, make_pruner
from benchmark.tuning.sampler_seeding import PositionSeededSampler, startup_trials
from benchmark.tuning.search_space import SearchSpace
from benchmark.tuning.study_labels import label_study
from benchmark.tuning.trial_budget import (
    FINISHED,
    budget_of,
    is_counted,
    past_deadline,
    recover_trials,
    run_trials,
)

__all__ = [
    "finished_trials",
    "fit_final",
    "inner_scores",
    "load_study",
    "refit",
    "run_fold",
    "satisfies",
    "trial_budget_reached",
    "tune_final",
]

log = logging.getLogger(__name__)


def run_fold(job: FoldJob) -> FoldOutcome:
    """Tune, refit and score one outer fold; a failure becomes an ``error`` outcome (unless
    ``fail_fast``), so one broken pair never stops the benchmark."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return _run_fold(job)
    except Exception as exc:
        if job.fail_fast:
            raise
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        log.warning("%s fold %d failed: %s", job.pair.label, job.fold, detail)
        return FoldOutcome(job.pair, job.fold, "error", detail, study_name=job.study_name)


def load_study(
    job: FoldJob, storage: optuna.storages.BaseStorage, salt: tuple[object, ...] = ()
) -> optuna.Study:
    # seeded by what the study *is*, not by its name (which carries the config digest), so the
    # same pair and fold sample the same params whatever else the config runs, and by each
    # trial's place among the counted ones, so a resumed study samples as an uninterrupted one;
    # a helper gets a salted seed, else it would propose the owner's params again
    pair = job.pair
    pruner = make_pruner(job.pruner, job_family(job).trains_in_epochs)
    study = optuna.create_study(
        study_name=job.study_name,
        storage=storage,
        sampler=optuna.samplers.TPESampler(seed=0),
        pruner=pruner,
        direction="maximize",
        load_if_exists=True,
    )
    label_study(study, pair, job.fold, job.n_trials)
    parts = (pair.feature_set, pair.family, pair.protocol, job.fold, *salt)
    seed = job.seed if job.search_seed is None else job.search_seed
    study.sampler = PositionSeededSampler(
        lambda k: derive_seed(seed, *parts, k),
        is_counted,
        startup_trials(job.n_trials, job.planned_trials),
    )
    return study


def satisfies(outcome: FoldOutcome, job: FoldJob) -> bool:
    """Whether a stored outcome answers ``job``: always, unless it was tuned with fewer trials
    than the job now plans (a study a run's budget ended early, or a rerun with a larger
    budget), in which case the study continues and the fold is refit."""
    if outcome.status != "done" or outcome.trial_budget is None:
        return True
    return outcome.trial_budget >= job.n_trials


def trial_budget_reached(job: FoldJob, trials: Sequence[optuna.trial.FrozenTrial]) -> int:
    """The trial budget a finished study satisfies: its plan, or what finished before the
    run's budget ended it."""
    budget = budget_of(trials, job.n_trials)
    if job.n_trials and not budget.done and past_deadline(job.deadline):
        return budget.finished
    return job.n_trials


def _stored_trials(
    storage: optuna.storages.BaseStorage, study_name: str, states: tuple[TrialState, ...]
) -> list[optuna.trial.FrozenTrial]:
    try:
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:
        return []
    return storage.get_all_trials(study_id, deepcopy=False, states=states)


def finished_trials(storage: optuna.storages.BaseStorage, study_name: str) -> int:
    """Complete and pruned trials a study has so far (0 before it exists): what a running
    fold has done, for the progress line."""
    return len(_stored_trials(storage, study_name, FINISHED))


def inner_scores(storage: optuna.storages.BaseStorage, study_name: str) -> list[float]:
    """The inner-CV accuracy of each complete trial of a study, in the order they were run
    (none before it exists): how its search went, with nothing of the outer test part."""
    trials = _stored_trials(storage, study_name, (TrialState.COMPLETE,))
    return [float(t.value) for t in sorted(trials, key=lambda t: t.number) if t.value is not None]


class _TimedOut(GenrebenchError):
    """No trial finished within the study's time budget."""


def _prepare(job: FoldJob) -> tuple[optuna.Study, SearchSpace, optuna.storages.BaseStorage]:
    check_no_leak(job)
    storage = open_storage(job.storage_url)
    study = load_study(job, storage)
    recover_trials(study, storage)
    space = SearchSpace.from_dict(job.space, source=f"{job.pair.family} (stored)")
    return study, space, storage


def _tune(
    job: FoldJob,
    study: optuna.Study,
    space: SearchSpace,
    storage: optuna.storages.BaseStorage,
    inner_oof: dict[int, pd.DataFrame] | None = None,
) -> tuple[dict[str, Any], float, int | None]:
    """Run the study up to its budget (:func:`benchmark.tuning.trial_budget.run_trials`); the best
    params, their inner-CV accuracy and the best trial's number (None when nothing was tuned).
    Completed trials run here leave their inner out-of-fold predictions in ``inner_oof``."""
    if space.fixed:
        return {}, math.nan, None
    if job.n_trials == 0:  # untuned: the search space's defaults, nothing scored inside
        return space.defaults_for_trial(), math.nan, None
    if not any(is_counted(t) for t in study.get_trials(deepcopy=False)):
        study.enqueue_trial(space.defaults_for_trial())  # the first trial (killed ones aside)
    objective = inner_cv_objective(job, space, inner_oof)
    run_trials(
        study,
        storage,
        objective,
        job.n_trials,
        timeout_s=job.timeout_s,
        deadline=job.deadline,
    )
    trials = study.get_trials(deepcopy=False)
    if not any(t.state == TrialState.COMPLETE for t in trials):
        failed = [t for t in trials if t.state == TrialState.FAIL and is_counted(t)]
        if past_deadline(job.deadline) and not failed:
            raise _TimedOut("the run's budget ended before a trial of this study finished")
        if job.timeout_s is not None and not failed:
            raise _TimedOut(f"no trial finished within timeout_s={job.timeout_s}")
        reason = failed[-1].user_attrs.get("error", "") if failed else ""
        raise GenrebenchError(f"every trial failed: {reason or 'no completed trial'}")
    best = study.best_trial
    assert best.value is not None  # a COMPLETE trial has one
    return dict(best.params), float(best.value), best.number


def tune_final(
    job: FoldJob, *, with_inner: bool = False
) -> tuple[dict[str, Any], float, pd.DataFrame | None]:
    """Tune on ``train_tracks`` (all of a benchmark's tracks), nothing held out: the final
    model's study. Returns the best params, their inner-CV accuracy and, ``with_inner``, their
    inner out-of-fold predictions over every track (what a final ensemble is weighted on)."""
    if len(job.test_tracks):
        raise GenrebenchError("a final model is fit on every track: test_tracks must be empty")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study, space, storage = _prepare(job)
    oof: dict[int, pd.DataFrame] = {}
    params, inner_accuracy, number = _tune(job, study, space, storage, oof)
    inner = best_inner(job, params, number, oof) if with_inner else None
    return params, inner_accuracy, inner


def refit(job: FoldJob, params: Mapping[str, Any]) -> Any:
    """The family's estimator with ``params``, fit on every row of ``train_tracks``."""
    model = job_family(job).build(dict(params), job.seed)
    rows = fold_rows(job, job.train_tracks, training=True)
    model.fit(job.X[rows], job.y[rows])
    return model


def fit_final(job: FoldJob) -> tuple[Any, dict[str, Any], float]:
    """Tune on ``train_tracks`` (all of a benchmark's tracks) and refit there: the model a
    user gets. Returns ``(fitted estimator, best params, inner-CV accuracy)``."""
    params, inner_accuracy, _ = tune_final(job)
    return refit(job, params), params, inner_accuracy


def _run_fold(job: FoldJob) -> FoldOutcome:
    study, space, storage = _prepare(job)
    t_tune = time.perf_counter()
    status, message = "done", ""
    inner_oof: dict[int, pd.DataFrame] = {}
    try:
        best_params, inner_accuracy, best_number = _tune(job, study, space, storage, inner_oof)
    except _TimedOut as exc:
        return FoldOutcome(job.pair, job.fold, "timeout", str(exc), study_name=job.study_name)
    tune_s = time.perf_counter() - t_tune

    train = fold_rows(job, job.train_tracks, training=True)
    test = fold_rows(job, job.test_tracks, training=False)
    if len(test) == 0:
        raise GenrebenchError("the feature set has no rows for any track of the test part")
    _, proba, fit_s, predict_s = fit_predict(job, best_params, train, test)
    pred = aggregate_tracks(proba, job.row_track[test])
    y_true = track_labels(job, pred.track_ids)
    metrics = score_tracks(y_true, pred, len(job.classes))
    inner = best_inner(job, best_params, best_number, inner_oof)
    trials = study.get_trials(deepcopy=False)
    outcome = FoldOutcome(
        pair=job.pair,
        fold=job.fold,
        status=status,
        message=message,
        metrics=metrics,
        inner_accuracy=inner_accuracy,
        n_trials=sum(t.state == TrialState.COMPLETE for t in trials),
        n_pruned=sum(t.state == TrialState.PRUNED for t in trials),
        trial_budget=trial_budget_reached(job, trials),
        n_train=len(np.unique(job.row_track[train])),
        n_test=len(pred.track_ids),
        coverage=len(pred.track_ids) / max(1, len(job.test_tracks)),
        tune_s=tune_s,
        fit_s=fit_s,
        predict_s=predict_s,
        params=best_params,
        study_name=job.study_name,
        predictions=pred.frame(y_true, job.classes),
        inner_predictions=inner,
    )
    return outcome
