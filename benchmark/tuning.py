"""Tuning and evaluation of one (feature set, family, protocol, outer fold): the unit of work.

The Optuna study sees only the outer *training* tracks: its objective is the inner-CV accuracy
over grouped inner folds of that part, reported after each inner fold so hopeless trials are
pruned. The best params are then refit on the whole outer training part and the outer test part
is predicted once. Nothing of the test part reaches tuning or preprocessing (the scaler and the
rest of the pipeline are fit inside each fit).

The study lives in an Optuna storage given by URL and is named deterministically, so a rerun
finds it: finished trials are kept, the budget counts them, and a finished fold's outcome is
stored on the study (``user_attrs["outcome"]``) and reused without any new work.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from benchmark.errors import GenrebenchError
from benchmark.models import get_family
from benchmark.results import FoldOutcome, PairKey
from benchmark.scoring import aggregate_tracks, align_proba, score_tracks
from benchmark.search_space import SearchSpace

__all__ = [
    "FoldJob",
    "OUTCOME_ATTR",
    "check_no_leak",
    "fail_stale_trials",
    "fit_final",
    "derive_seed",
    "open_storage",
    "run_fold",
    "study_name",
]

log = logging.getLogger(__name__)

OUTCOME_ATTR = "outcome"
#: trial states that count towards a study's budget (failed trials are retried)
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def study_name(benchmark: str, pair: PairKey, fold: int, config_digest: str) -> str:
    """Deterministic and unique per config: a changed config never resumes an old study."""
    return (
        f"{benchmark}:{pair.feature_set}:{pair.family}:{pair.protocol}:fold{fold}:{config_digest}"
    )


def derive_seed(seed: int, *parts: object) -> int:
    """A stable 31-bit seed from the benchmark seed and names (``hash()`` is salted per run)."""
    blob = ":".join(str(p) for p in (seed, *parts)).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:4], "big") & 0x7FFFFFFF


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """An Optuna storage from a URL; SQLite waits for a lock instead of failing at once, so
    several processes can share one file."""
    if url.startswith("sqlite:"):
        return optuna.storages.RDBStorage(
            url, engine_kwargs={"connect_args": {"timeout": 120}}, skip_compatibility_check=False
        )
    return optuna.storages.RDBStorage(url)


@dataclass(frozen=True)
class FoldJob:
    """Everything one (pair, outer fold) needs, picklable for a worker process.

    ``X``/``row_track``/``y`` are all rows of the feature set; the job selects rows by track id,
    so a track absent from the feature set is simply not there (coverage is reported).
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
    extra: dict[str, Any] = field(default_factory=dict)


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


def _rows(job: FoldJob, tracks: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.isin(job.row_track, tracks))


def _fit_predict(
    job: FoldJob, params: Mapping[str, Any], train: np.ndarray, test: np.ndarray
) -> tuple[Any, np.ndarray, float, float]:
    family = get_family(job.pair.family)
    model = family.build(dict(params), job.seed)
    t0 = time.perf_counter()
    model.fit(job.X[train], job.y[train])
    t1 = time.perf_counter()
    proba = align_proba(model.predict_proba(job.X[test]), model.classes_, len(job.classes))
    t2 = time.perf_counter()
    return model, proba, t1 - t0, t2 - t1


def _track_accuracy(job: FoldJob, proba: np.ndarray, rows: np.ndarray) -> float:
    pred = aggregate_tracks(proba, job.row_track[rows])
    y_track = _track_labels(job, pred.track_ids)
    return float(np.mean(pred.pred == y_track))


def _track_labels(job: FoldJob, track_ids: np.ndarray) -> np.ndarray:
    index = {c: i for i, c in enumerate(job.classes)}
    return np.array([index[str(t).split(".")[0]] for t in track_ids], dtype=np.int64)


def _objective(job: FoldJob, space: SearchSpace):
    inner = [(_rows(job, a), _rows(job, b)) for a, b in job.inner_splits]

    def objective(trial: optuna.Trial) -> float:
        params = space.suggest(trial)
        scores: list[float] = []
        for step, (train, valid) in enumerate(inner):
            try:
                _, proba, _, _ = _fit_predict(job, params, train, valid)
            except Exception as exc:
                # kept with the trial: the fold's error row can say why its trials failed
                trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:300])
                raise
            scores.append(_track_accuracy(job, proba, valid))
            trial.report(float(np.mean(scores)), step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return float(np.mean(scores))

    return objective


def _load_study(job: FoldJob, storage: optuna.storages.BaseStorage) -> optuna.Study:
    # seeded by what the study *is*, not by its name (which carries the config digest), so the
    # same pair and fold sample the same params whatever else the config runs
    pair = job.pair
    seed = derive_seed(job.seed, pair.feature_set, pair.family, pair.protocol, job.fold)
    sampler = optuna.samplers.TPESampler(seed=seed)
    # prune a trial whose running inner-CV mean falls below the median of earlier trials at the
    # same inner fold, once a few trials have completed
    pruner = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)
    return optuna.create_study(
        study_name=job.study_name,
        storage=storage,
        sampler=sampler,
        pruner=pruner,
        direction="maximize",
        load_if_exists=True,
    )


def fail_stale_trials(study: optuna.Study, storage: optuna.storages.BaseStorage) -> int:
    """Mark trials left RUNNING by a killed process as FAIL, so they are retried.

    Only safe where this process owns the study (``genrebench run`` holds the benchmark's lock).
    """
    stale = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.RUNNING]
    for t in stale:
        storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
    return len(stale)


def check_no_leak(job: FoldJob) -> None:
    """Refuse a job whose tuning could see the outer test part: the honesty rule, enforced
    where the work happens rather than trusted from the caller."""
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


class _TimedOut(GenrebenchError):
    """No trial finished within the study's time budget."""


def _prepare(job: FoldJob) -> tuple[optuna.Study, SearchSpace]:
    check_no_leak(job)
    storage = open_storage(job.storage_url)
    study = _load_study(job, storage)
    stale = fail_stale_trials(study, storage)
    if stale:
        log.info("%s: %d trial(s) of a killed run marked failed", job.study_name, stale)
    return study, SearchSpace.from_dict(job.space, source=f"{job.pair.family} (stored)")


def _tune(job: FoldJob, study: optuna.Study, space: SearchSpace) -> tuple[dict[str, Any], float]:
    """Run the study up to its budget; the best params and their inner-CV accuracy.

    Finished trials of an earlier run count towards the budget; failed trials (params the data
    cannot support, e.g. more neighbours than rows) do not, so the study tops up with at most
    as many extra attempts as its budget.
    """
    if space.fixed:
        return {}, math.nan
    trials = study.get_trials(deepcopy=False)
    finished = sum(t.state in FINISHED for t in trials)
    if not trials:
        study.enqueue_trial(space.defaults_for_trial())
    deadline = None if job.timeout_s is None else time.monotonic() + job.timeout_s
    attempts_left = 2 * job.n_trials
    while (remaining := job.n_trials - finished) > 0 and attempts_left > 0:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            break
        study.optimize(
            _objective(job, space),
            n_trials=min(remaining, attempts_left),
            timeout=left,
            catch=(ValueError, ArithmeticError, np.linalg.LinAlgError),
            gc_after_trial=False,
        )
        attempts_left -= remaining
        finished = sum(t.state in FINISHED for t in study.get_trials(deepcopy=False))
    trials = study.get_trials(deepcopy=False)
    if not any(t.state == TrialState.COMPLETE for t in trials):
        failed = [t for t in trials if t.state == TrialState.FAIL]
        if job.timeout_s is not None and not failed:
            raise _TimedOut(f"no trial finished within timeout_s={job.timeout_s}")
        reason = failed[-1].user_attrs.get("error", "") if failed else ""
        raise GenrebenchError(f"every trial failed: {reason or 'no completed trial'}")
    best = study.best_trial
    return dict(best.params), float(best.value)


def fit_final(job: FoldJob) -> tuple[Any, dict[str, Any], float]:
    """Tune on ``train_tracks`` (all of a benchmark's tracks) and refit there: the model a
    user gets. ``test_tracks`` must be empty: nothing is scored, so nothing is held out.
    Returns ``(fitted estimator, best params, inner-CV accuracy)``."""
    if len(job.test_tracks):
        raise GenrebenchError("a final model is fit on every track: test_tracks must be empty")
    study, space = _prepare(job)
    params, inner_accuracy = _tune(job, study, space)
    model = get_family(job.pair.family).build(dict(params), job.seed)
    rows = _rows(job, job.train_tracks)
    model.fit(job.X[rows], job.y[rows])
    return model, params, inner_accuracy


def _run_fold(job: FoldJob) -> FoldOutcome:
    study, space = _prepare(job)
    stored = study.user_attrs.get(OUTCOME_ATTR)
    if stored is not None:
        return FoldOutcome.from_json(stored)
    t_tune = time.perf_counter()
    status, message = "done", ""
    try:
        best_params, inner_accuracy = _tune(job, study, space)
    except _TimedOut as exc:
        return FoldOutcome(job.pair, job.fold, "timeout", str(exc), study_name=job.study_name)
    tune_s = time.perf_counter() - t_tune

    train = _rows(job, job.train_tracks)
    test = _rows(job, job.test_tracks)
    if len(test) == 0:
        raise GenrebenchError("the feature set has no rows for any track of the test part")
    _, proba, fit_s, predict_s = _fit_predict(job, best_params, train, test)
    pred = aggregate_tracks(proba, job.row_track[test])
    y_true = _track_labels(job, pred.track_ids)
    metrics = score_tracks(y_true, pred, len(job.classes))
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
        n_train=len(np.unique(job.row_track[train])),
        n_test=len(pred.track_ids),
        coverage=len(pred.track_ids) / max(1, len(job.test_tracks)),
        tune_s=tune_s,
        fit_s=fit_s,
        predict_s=predict_s,
        params=best_params,
        study_name=job.study_name,
        predictions=pred.frame(y_true, job.classes),
    )
    # the fold is finished only once its outcome is stored: a run killed before this line
    # redoes the refit (cheap) but keeps every trial
    study.set_user_attr(OUTCOME_ATTR, outcome.to_json())
    return outcome
