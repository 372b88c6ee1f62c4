"""Evaluation of one (feature set, family, protocol, outer fold): the unit of work.

The Optuna study sees only the outer *training* tracks: its objective is the inner-CV accuracy
over grouped inner folds of that part, reported after each inner fold so hopeless trials are
pruned. The best params are then refit on the whole outer training part and the outer test part
is predicted once. Nothing of the test part reaches tuning or preprocessing (the scaler and the
rest of the pipeline are fit inside each fit).

The study lives in an Optuna storage given by URL and is named deterministically, so a rerun
finds it: finished trials are kept and the budget counts them, so a fold run again adds no
trial and only refits. A finished fold's outcome is kept by the run that asked for it, with the
results (:mod:`benchmark.execution.fold_outcomes`), not in the study.

Which trials run and which count (the budget, a killed run's trials, the trials of workers
sharing a study) is :mod:`benchmark.trial_count`'s; this module says what a trial computes
and what becomes of the best one.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.trial import TrialState

from benchmark.errors import GenrebenchError
from benchmark.models import Family, resolve_family
from benchmark.results import FoldOutcome, PairKey
from benchmark.sampler_seeding import PositionSeededSampler, startup_trials
from benchmark.scoring import aggregate_tracks, align_proba, score_tracks
from benchmark.search_space import SearchSpace
from benchmark.storage import open_storage
from benchmark.study_labels import label_study
from benchmark.trial_count import (
    FINISHED,
    budget_of,
    is_counted,
    past_deadline,
    recover_trials,
    run_trials,
)

__all__ = [
    "FOLD_STEP0",
    "FoldJob",
    "PRUNERS",
    "check_no_leak",
    "derive_seed",
    "finished_trials",
    "fold_rows",
    "inner_scores",
    "fit_final",
    "inner_cv_objective",
    "inner_predictions",
    "job_family",
    "load_study",
    "refit",
    "run_fold",
    "study_name",
    "tune_final",
]

log = logging.getLogger(__name__)


def study_name(benchmark: str, pair: PairKey, fold: int, config_digest: str) -> str:
    """Deterministic and unique per config: a changed config never resumes an old study."""
    return (
        f"{benchmark}:{pair.feature_set}:{pair.family}:{pair.protocol}:fold{fold}:{config_digest}"
    )


def derive_seed(seed: int, *parts: object) -> int:
    """A stable 31-bit seed from the benchmark seed and names (``hash()`` is salted per run)."""
    blob = ":".join(str(p) for p in (seed, *parts)).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:4], "big") & 0x7FFFFFFF


@dataclass(frozen=True)
class FoldJob:
    """Everything one (pair, outer fold) needs, picklable for a worker process.

    ``X``/``row_track``/``y`` are all rows of the feature set; the job selects rows by track id
    (:func:`fold_rows`), so a track absent from the feature set is simply not there (coverage is
    reported). ``row_copy`` marks the rows of augmented copies (``> 0``), which are trained on
    and never predicted or scored.
    """

    benchmark: str
    pair: PairKey
    fold: int
    X: np.ndarray
    row_track: np.ndarray
    y: np.ndarray
    classes: tuple[str, ...]
    train_tracks: np.ndarray
    test_tracks: np.ndarray
    inner_splits: Sequence[tuple[np.ndarray, np.ndarray]]
    space: Mapping[str, Any]
    storage_url: str
    study_name: str
    n_trials: int
    timeout_s: float | None
    seed: int
    fail_fast: bool = False
    #: the run's wall-clock budget ends at this ``time.time()``: no trial starts after it (the
    #: study keeps what finished and is refit); None: no budget
    deadline: float | None = None
    #: how hopeless trials are stopped early: median | successive_halving | hyperband | none
    pruner: str = "median"
    #: the study's trials without a run budget (None: ``n_trials``): a study the budget cuts
    #: short keeps the planned share of random start-up trials (:func:`startup_trials`)
    planned_trials: int | None = None
    #: the config's ``search_seed``: seeds the sampler instead of ``seed`` (None: ``seed``),
    #: so the same folds and models can be searched again with other luck
    search_seed: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: each row's copy number (0: the clip as found, k > 0: its k-th augmented copy, a
    #: training row only); None: the feature set has no augmented rows
    row_copy: np.ndarray | None = None


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


def job_family(job: FoldJob) -> Family:
    """The family that builds ``job``'s models: a registered one, or a config's variant of one
    (its search space names the base in ``of``, so a worker needs no config to build it)."""
    return resolve_family(job.pair.family, job.space.get("of"))


def fold_rows(job: FoldJob, tracks: np.ndarray, *, training: bool) -> np.ndarray:
    """The row indices of ``tracks``: the one place train and test rows are chosen, for the
    outer split, the inner folds, the refit and the final model alike.

    ``training``: every row of those tracks, augmented copies included (a copy carries its
    track's id, so it is on its track's side of every split). Otherwise (an outer test part,
    an inner validation fold: rows to predict and score) only the rows of the clips as found:
    an augmented copy is never predicted, so it reaches no score, no inner out-of-fold
    prediction and so no ensemble.
    """
    mask = np.isin(job.row_track, tracks)
    if not training and job.row_copy is not None:
        mask &= np.asarray(job.row_copy) == 0
    return np.flatnonzero(mask)


def _fit_predict(
    job: FoldJob,
    params: Mapping[str, Any],
    train: np.ndarray,
    test: np.ndarray,
    on_epoch: Callable[[int, Mapping[str, float]], None] | None = None,
) -> tuple[Any, np.ndarray, float, float]:
    family = job_family(job)
    model = family.build(dict(params), job.seed)
    fit_params: dict[str, Any] = {}
    if family.trains_in_epochs:
        # segments of one track stay on one side of the network's early-stopping split
        fit_params["model__groups"] = job.row_track[train]
        if job.row_copy is not None:  # augmented copies: never in its early-stopping split
            fit_params["model__train_only"] = np.asarray(job.row_copy)[train] > 0
        if on_epoch is not None:
            fit_params["model__epoch_callback"] = on_epoch
    t0 = time.perf_counter()
    model.fit(job.X[train], job.y[train], **fit_params)
    t1 = time.perf_counter()
    proba = align_proba(model.predict_proba(job.X[test]), model.classes_, len(job.classes))
    t2 = time.perf_counter()
    return model, proba, t1 - t0, t2 - t1


def _track_labels(job: FoldJob, track_ids: np.ndarray) -> np.ndarray:
    index = {c: i for i, c in enumerate(job.classes)}
    return np.array([index[str(t).split(".")[0]] for t in track_ids], dtype=np.int64)


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


#: the pruners a config may name (``pruner:``); each stops a trial at an inner fold (or, for a
#: network, an epoch of its first inner fit) where it trails the trials before it
PRUNERS = ("median", "successive_halving", "hyperband", "none")


def _pruner(name: str, family_trains_in_epochs: bool) -> optuna.pruners.BasePruner:
    """``median`` (the default): prune a trial whose running inner-CV mean falls below the
    median of earlier trials at the same inner fold, once a few trials have completed; a
    network also per epoch, after a few epochs of warm-up (early epochs say little about where
    a network ends). ``successive_halving`` / ``hyperband``: Optuna's asynchronous successive
    halving (and its brackets), with inner folds (or epochs) as the resource, keeping the best
    third at each rung."""
    warmup = 3 if family_trains_in_epochs else 0
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=warmup)
    if name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1 + warmup, reduction_factor=3)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1 + warmup, reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise GenrebenchError(f"unknown pruner {name!r}; known: {', '.join(PRUNERS)}")


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
    frame = pred.frame(_track_labels(job, pred.track_ids), job.classes)
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
                _, proba, _, _ = _fit_predict(job, params, train, valid, on_epoch)
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


def _best_inner(
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
        _, proba, _, _ = _fit_predict(job, params, train, valid)
        frames.append(_inner_fold_frame(job, proba, valid, k))
    return pd.concat(frames, ignore_index=True)


def load_study(
    job: FoldJob, storage: optuna.storages.BaseStorage, salt: tuple[object, ...] = ()
) -> optuna.Study:
    # seeded by what the study *is*, not by its name (which carries the config digest), so the
    # same pair and fold sample the same params whatever else the config runs, and by each
    # trial's place among the counted ones, so a resumed study samples as an uninterrupted one;
    # a helper gets a salted seed, else it would propose the owner's params again
    pair = job.pair
    pruner = _pruner(job.pruner, job_family(job).trains_in_epochs)
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


def check_no_leak(job: FoldJob) -> None:
    """Refuse a job whose tuning could see the outer test part: the honesty rule, enforced
    where the work happens rather than trusted from the caller."""
    if job.row_copy is not None and len(job.row_copy) != len(job.row_track):
        raise GenrebenchError(
            f"{job.study_name}: row_copy has {len(job.row_copy)} entries for "
            f"{len(job.row_track)} rows"
        )
    test = set(map(str, job.test_tracks))
    train = set(map(str, job.train_tracks))
    if train & test:
        raise GenrebenchError(
            f"{job.study_name}: {len(train & test)} track(s) on both sides of the outer split"
        )
    for k, (a, b) in enumerate(job.inner_splits):
        inner = set(map(str, a)) | set(map(str, b))
        if not inner <= train:
            raise GenrebenchError(
                f"{job.study_name}: inner fold {k} uses {len(inner - train)} track(s) outside "
                "the outer training part"
            )


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
    """Run the study up to its budget (:func:`benchmark.trial_count.run_trials`); the best
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
    inner = _best_inner(job, params, number, oof) if with_inner else None
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
    _, proba, fit_s, predict_s = _fit_predict(job, best_params, train, test)
    pred = aggregate_tracks(proba, job.row_track[test])
    y_true = _track_labels(job, pred.track_ids)
    metrics = score_tracks(y_true, pred, len(job.classes))
    inner = _best_inner(job, best_params, best_number, inner_oof)
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
