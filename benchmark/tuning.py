"""Tuning and evaluation of one (feature set, family, protocol, outer fold): the unit of work.

The Optuna study sees only the outer *training* tracks: its objective is the inner-CV accuracy
over grouped inner folds of that part, reported after each inner fold so hopeless trials are
pruned. The best params are then refit on the whole outer training part and the outer test part
is predicted once. Nothing of the test part reaches tuning or preprocessing (the scaler and the
rest of the pipeline are fit inside each fit).

The study lives in an Optuna storage given by URL and is named deterministically, so a rerun
finds it: finished trials are kept, the budget counts them, and a finished fold's outcome is
stored on the study (``user_attrs["outcome"]``) and reused without any new work.

Trials run one at a time through :func:`_run_trial`. ``genrebench run`` owns its studies alone
(the results folder's lock): a killed run's leftover ``RUNNING`` trials are failed on start,
marked ``genrebench:killed`` (they count nowhere) and run again as they were, and every trial
samples with a seed of its place among the counted trials (:mod:`benchmark.sampling`), so a
resumed run is the run it would have been without the kill.
Workers (:mod:`benchmark.worker`) share studies, with one rule that makes a study's budget
global: a trial runs only if fewer than ``n_trials`` trials numbered before it are finished,
running or waiting (Optuna numbers trials in creation order). Any number of processes may then
add trials to one study: at most ``n_trials`` ever finish, and a trial that would exceed the
budget is ended at once as ``FAIL`` with the system attribute ``genrebench:surplus`` (it counts
nowhere). A dead worker's trial is failed once its heartbeat is stale, and retried with the
same params.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import logging
import math
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.trial import TrialState

from benchmark.errors import GenrebenchError
from benchmark.models import get_family
from benchmark.results import FoldOutcome, PairKey
from benchmark.sampling import PositionSeededSampler
from benchmark.scoring import aggregate_tracks, align_proba, score_tracks
from benchmark.search_space import SearchSpace
from benchmark.storage import open_storage, retry_callback_kwarg

__all__ = [
    "Budget",
    "FoldJob",
    "KILLED_ATTR",
    "OUTCOME_ATTR",
    "SURPLUS_ATTR",
    "Shared",
    "WORKER_ATTR",
    "budget_of",
    "LostClaim",
    "help_study",
    "reap_trials",
    "run_fold_shared",
    "check_no_leak",
    "counted_trials",
    "is_counted",
    "fail_stale_trials",
    "fit_final",
    "refit",
    "tune_final",
    "derive_seed",
    "inner_predictions",
    "open_storage",
    "run_fold",
    "study_name",
]

log = logging.getLogger(__name__)

OUTCOME_ATTR = "outcome"
#: system attribute of a trial ended unrun because the budget was already taken
SURPLUS_ATTR = "genrebench:surplus"
#: system attribute of a trial cut off by a kill of ``genrebench run``: it counts nowhere, and
#: is run again as it was
KILLED_ATTR = "genrebench:killed"
#: system attribute of a killed trial's rerun: the number of the trial it replaces
RERUN_OF_ATTR = "genrebench:rerun_of"
#: system attribute: the worker that ran a trial (shared studies)
WORKER_ATTR = "genrebench:worker"
#: trial states that count towards a study's budget (failed trials are retried)
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
#: states of the trials that hold a place in the budget
LIVE = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
#: exceptions that fail one trial (params the data cannot support) without stopping the study
CATCH = (ValueError, ArithmeticError, np.linalg.LinAlgError)


def study_name(benchmark: str, pair: PairKey, fold: int, config_digest: str) -> str:
    """Deterministic and unique per config: a changed config never resumes an old study."""
    return (
        f"{benchmark}:{pair.feature_set}:{pair.family}:{pair.protocol}:fold{fold}:{config_digest}"
    )


def is_counted(trial: optuna.trial.FrozenTrial) -> bool:
    """Whether a trial counts anywhere (budget, sampling, MLflow, ``trials.parquet``): one ended
    unrun as surplus, or cut off by a kill and run again, is no trial."""
    attrs = trial.system_attrs
    return not (attrs.get(SURPLUS_ATTR) or attrs.get(KILLED_ATTR))


def derive_seed(seed: int, *parts: object) -> int:
    """A stable 31-bit seed from the benchmark seed and names (``hash()`` is salted per run)."""
    blob = ":".join(str(p) for p in (seed, *parts)).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:4], "big") & 0x7FFFFFFF


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
    #: the run's wall-clock budget ends at this ``time.time()``: no trial starts after it (the
    #: study keeps what finished and is refit); None: no budget
    deadline: float | None = None
    #: how hopeless trials are stopped early: median | successive_halving | hyperband | none
    pruner: str = "median"
    extra: dict[str, Any] = field(default_factory=dict)


def run_fold(job: FoldJob) -> FoldOutcome:
    """Tune, refit and score one outer fold; a failure becomes an ``error`` outcome (unless
    ``fail_fast``), so one broken pair never stops the benchmark."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return _run_fold(job)[0]
    except Exception as exc:
        if job.fail_fast:
            raise
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        log.warning("%s fold %d failed: %s", job.pair.label, job.fold, detail)
        return FoldOutcome(job.pair, job.fold, "error", detail, study_name=job.study_name)


def _rows(job: FoldJob, tracks: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.isin(job.row_track, tracks))


def _fit_predict(
    job: FoldJob,
    params: Mapping[str, Any],
    train: np.ndarray,
    test: np.ndarray,
    on_epoch: Callable[[int, Mapping[str, float]], None] | None = None,
) -> tuple[Any, np.ndarray, float, float]:
    family = get_family(job.pair.family)
    model = family.build(dict(params), job.seed)
    fit_params: dict[str, Any] = {}
    if family.trains_in_epochs:
        # segments of one track stay on one side of the network's early-stopping split
        fit_params["model__groups"] = job.row_track[train]
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
    return [(_rows(job, a), _rows(job, b)) for a, b in job.inner_splits]


def _inner_fold_frame(
    job: FoldJob, proba: np.ndarray, valid: np.ndarray, inner_fold: int
) -> pd.DataFrame:
    """Track-level predictions of one inner validation part (the ensembles' training rows)."""
    pred = aggregate_tracks(proba, job.row_track[valid])
    frame = pred.frame(_track_labels(job, pred.track_ids), job.classes)
    frame.insert(1, "inner_fold", inner_fold)
    return frame


def _objective(
    job: FoldJob, space: SearchSpace, inner_oof: dict[int, pd.DataFrame] | None = None
) -> Callable[[optuna.Trial], float]:
    """Inner-CV accuracy of a trial's params; a completed trial's inner out-of-fold
    predictions are kept in ``inner_oof`` (by trial number), so the best one needs no refit."""
    inner = _inner_rows(job)
    epochs = get_family(job.pair.family).trains_in_epochs

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


def _load_study(
    job: FoldJob, storage: optuna.storages.BaseStorage, salt: tuple[object, ...] = ()
) -> optuna.Study:
    # seeded by what the study *is*, not by its name (which carries the config digest), so the
    # same pair and fold sample the same params whatever else the config runs, and by each
    # trial's place among the counted ones, so a resumed study samples as an uninterrupted one;
    # a helper gets a salted seed, else it would propose the owner's params again
    pair = job.pair
    pruner = _pruner(job.pruner, get_family(pair.family).trains_in_epochs)
    study = optuna.create_study(
        study_name=job.study_name,
        storage=storage,
        sampler=optuna.samplers.TPESampler(seed=0),
        pruner=pruner,
        direction="maximize",
        load_if_exists=True,
    )
    parts = (pair.feature_set, pair.family, pair.protocol, job.fold, *salt)
    study.sampler = PositionSeededSampler(lambda k: derive_seed(job.seed, *parts, k), is_counted)
    return study


@dataclass(frozen=True)
class Budget:
    """Where a study stands against its trial budget (counted over every process)."""

    n_trials: int
    finished: int  # COMPLETE or PRUNED: what the budget counts
    running: int
    waiting: int  # queued: the defaults, retries of trials killed with their worker
    attempts: int  # trials started, less surplus ones and those retried

    @property
    def done(self) -> bool:
        return self.finished >= self.n_trials

    @property
    def open_slots(self) -> int:
        """Trials that may still be started without exceeding the budget."""
        return self.n_trials - self.finished - self.running - self.waiting

    @property
    def out_of_attempts(self) -> bool:
        """Failed trials (params the data cannot support) do not count: a study tops up with
        at most as many extra attempts as its budget."""
        return self.attempts >= 2 * self.n_trials


def budget_of(trials: Sequence[optuna.trial.FrozenTrial], n_trials: int) -> Budget:
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", ())}
    counted = [t for t in trials if is_counted(t)]
    return Budget(
        n_trials=n_trials,
        finished=sum(t.state in FINISHED for t in counted),
        running=sum(t.state == TrialState.RUNNING for t in counted),
        waiting=sum(t.state == TrialState.WAITING for t in counted),
        attempts=sum(t.state != TrialState.WAITING and t.number not in retried for t in counted),
    )


@dataclass
class Shared:
    """How a worker shares studies with other workers (``None`` in ``genrebench run``)."""

    worker: str
    storage: optuna.storages.BaseStorage  # opened once per worker, with heartbeats
    #: fail (and retry) the RUNNING trials of dead workers; returns how many
    reap: Callable[[optuna.Study], int]
    poll_s: float = 1.0


class LostClaim(GenrebenchError):
    """Another worker took this (pair, fold) over (ours had expired): nothing is written."""


@contextlib.contextmanager
def _heartbeat(storage: optuna.storages.BaseStorage, trial_id: int) -> Iterator[None]:
    """Record the trial's heartbeat every interval while it runs (as ``Study.optimize``
    does), when the storage has heartbeats enabled."""
    from optuna.storages._heartbeat import is_heartbeat_enabled

    if not is_heartbeat_enabled(storage):
        yield
        return
    from benchmark.claims import repeating

    beating: Any = storage  # a heartbeat-enabled storage (RDBStorage)
    beat = functools.partial(beating.record_heartbeat, trial_id)
    with repeating(beating.get_heartbeat_interval(), beat, first=True):
        yield


def _fail_stale(study: optuna.Study) -> None:
    """Optuna's own check: RUNNING trials whose heartbeat is older than the grace period are
    failed and (by the storage's callback) queued again with the same params."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def _is_surplus(
    trial: optuna.Trial,
    study: optuna.Study,
    storage: optuna.storages.BaseStorage,
    n_trials: int,
    worker: str,
) -> bool:
    """Name the trial's worker; mark it surplus if ``n_trials`` trials numbered before it
    already hold the budget (finished, running or queued)."""
    storage.set_trial_system_attr(trial._trial_id, WORKER_ATTR, worker)
    ahead = sum(t.number < trial.number for t in study.get_trials(deepcopy=False, states=LIVE))
    if ahead < n_trials:
        return False
    storage.set_trial_system_attr(trial._trial_id, SURPLUS_ATTR, True)
    return True


def _run_trial(
    job: FoldJob,
    study: optuna.Study,
    storage: optuna.storages.BaseStorage,
    objective: Callable[[optuna.Trial], float],
    shared: Shared | None,
) -> TrialState:
    """Ask, run and tell one trial (as ``Study.optimize(n_trials=1)`` does), unless it would
    exceed the budget. Returns the trial's final state."""
    if shared is not None:
        _fail_stale(study)
    with warnings.catch_warnings():
        # Optuna warns that heartbeats are meant for Study.optimize: this loop records them too
        warnings.filterwarnings("ignore", message="Heartbeat of storage")
        trial = study.ask()
    with _heartbeat(storage, trial._trial_id):
        # genrebench run owns its studies (the results folder's lock, and it refuses a storage
        # live workers share): only shared studies can see another process's trials
        if shared is not None and _is_surplus(trial, study, storage, job.n_trials, shared.worker):
            study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            log.debug("%s: trial %d is surplus", job.study_name, trial.number)
            return TrialState.FAIL
        try:
            value: float | None = objective(trial)
            state = None
        except optuna.TrialPruned:
            value, state = None, TrialState.PRUNED
        except CATCH as exc:
            log.warning(
                "%s: trial %d failed (%s: %s)",
                job.study_name,
                trial.number,
                type(exc).__name__,
                str(exc)[:200],
            )
            value, state = None, TrialState.FAIL
        except BaseException:
            with contextlib.suppress(Exception):
                study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            raise
    # a trial whose heartbeat came too late was failed (and queued again) by another worker:
    # its result is dropped, the retry counts
    frozen = study.tell(trial, value, state=state, skip_if_finished=True)
    if frozen.state == TrialState.FAIL and state != TrialState.FAIL:
        log.warning(
            "%s: trial %d was not recorded: another worker had failed it (late heartbeat?) "
            "and queued it again",
            job.study_name,
            trial.number,
        )
    return frozen.state


def counted_trials(
    storage: optuna.storages.BaseStorage | str, name: str
) -> list[optuna.trial.FrozenTrial]:
    """The trials of study ``name`` that count (a trial ended unrun because other workers had
    taken the budget is no trial); none if the study does not exist."""
    if not name:
        return []
    if isinstance(storage, str):
        storage = open_storage(storage)
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return []
    return [t for t in study.get_trials(deepcopy=False) if is_counted(t)]


def fail_stale_trials(study: optuna.Study, storage: optuna.storages.BaseStorage) -> int:
    """End the trials a killed process left RUNNING as killed ones (``FAIL`` marked
    :data:`KILLED_ATTR`: they count nowhere) and queue each again as it was: with the params it
    was queued with (the defaults), the others sampled again, the same since a trial's sampler
    is seeded by its place among the counted trials. Returns how many were ended.

    Each step can be cut off by another kill and is redone on the next start: a rerun is queued
    only once, the mark goes before the state (a finished trial takes no attributes).
    Only safe where this process owns the study (``genrebench run`` holds the benchmark's lock).
    """
    trials = study.get_trials(deepcopy=False)
    queued = {t.system_attrs.get(RERUN_OF_ATTR) for t in trials}
    stale = [t for t in trials if t.state == TrialState.RUNNING]
    for t in stale:
        fixed = t.system_attrs.get("fixed_params")
        if fixed is not None and t.number not in queued:
            rerun = {"fixed_params": fixed, RERUN_OF_ATTR: t.number}
            study.add_trial(optuna.trial.create_trial(state=TrialState.WAITING, system_attrs=rerun))
        storage.set_trial_system_attr(t._trial_id, KILLED_ATTR, True)
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


def past_deadline(job: FoldJob) -> bool:
    """Whether the run's wall-clock budget (if any) is spent."""
    return job.deadline is not None and time.time() >= job.deadline


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
    if job.n_trials and not budget.done and past_deadline(job):
        return budget.finished
    return job.n_trials


class _TimedOut(GenrebenchError):
    """No trial finished within the study's time budget."""


def _prepare(
    job: FoldJob,
    storage: optuna.storages.BaseStorage | None = None,
    shared: Shared | None = None,
) -> tuple[optuna.Study, SearchSpace, optuna.storages.BaseStorage]:
    check_no_leak(job)
    storage = storage or open_storage(job.storage_url)
    study = _load_study(job, storage)
    if shared is None:
        stale = fail_stale_trials(study, storage)
        if stale:
            log.info("%s: %d trial(s) cut off by a kill queued again", job.study_name, stale)
    else:
        shared.reap(study)
    space = SearchSpace.from_dict(job.space, source=f"{job.pair.family} (stored)")
    return study, space, storage


def _tune(
    job: FoldJob,
    study: optuna.Study,
    space: SearchSpace,
    storage: optuna.storages.BaseStorage,
    shared: Shared | None = None,
    inner_oof: dict[int, pd.DataFrame] | None = None,
) -> tuple[dict[str, Any], float, int | None]:
    """Run the study up to its budget; the best params, their inner-CV accuracy and the best
    trial's number (None when nothing was tuned). Completed trials run here leave their inner
    out-of-fold predictions in ``inner_oof``.

    Finished trials of an earlier run count towards the budget, and so do those of other
    workers; failed trials (params the data cannot support, e.g. more neighbours than rows) do
    not, so the study tops up with at most as many extra attempts as its budget. When other
    workers' running trials fill the budget, a shared study waits for them (failing and
    retrying those whose worker died).
    """
    if space.fixed:
        return {}, math.nan, None
    if job.n_trials == 0:  # untuned: the search space's defaults, nothing scored inside
        return space.defaults_for_trial(), math.nan, None
    if not any(is_counted(t) for t in study.get_trials(deepcopy=False)):
        study.enqueue_trial(space.defaults_for_trial())  # the first trial (killed ones aside)
    earlier_failures = _fresh_attempts(study, job.n_trials, shared)
    deadline = None if job.timeout_s is None else time.monotonic() + job.timeout_s
    objective = _objective(job, space, inner_oof)
    while True:
        budget = budget_of(study.get_trials(deepcopy=False), job.n_trials)
        budget = replace(budget, attempts=budget.attempts - earlier_failures)
        if budget.done or (deadline is not None and time.monotonic() >= deadline):
            break
        if past_deadline(job) and budget.finished > 0:
            break  # a study that started gets its first trial (the defaults) at least
        if budget.waiting == 0 and (budget.open_slots <= 0 or budget.out_of_attempts):
            if budget.running == 0 or shared is None:
                break
            # other workers' trials hold the rest of the budget: wait for them, or their death
            _fail_stale(study)
            if not shared.reap(study):
                time.sleep(shared.poll_s)
            continue
        _run_trial(job, study, storage, objective, shared)
    trials = study.get_trials(deepcopy=False)
    if not any(t.state == TrialState.COMPLETE for t in trials):
        failed = [t for t in trials if t.state == TrialState.FAIL and is_counted(t)]
        if past_deadline(job) and not failed:
            raise _TimedOut("the run's budget ended before a trial of this study finished")
        if job.timeout_s is not None and not failed:
            raise _TimedOut(f"no trial finished within timeout_s={job.timeout_s}")
        reason = failed[-1].user_attrs.get("error", "") if failed else ""
        raise GenrebenchError(f"every trial failed: {reason or 'no completed trial'}")
    best = study.best_trial
    assert best.value is not None  # a COMPLETE trial has one
    return dict(best.params), float(best.value), best.number


def _fresh_attempts(study: optuna.Study, n_trials: int, shared: Shared | None) -> int:
    """How many earlier failed attempts not to count: all of them when an earlier run ran out
    of attempts (the cause, a missing package or a bug, may be fixed by now), none otherwise,
    so a run cut off half-way resumes with the budget an uninterrupted run has. Workers share
    studies: for them the count stays global."""
    start = budget_of(study.get_trials(deepcopy=False), n_trials)
    if shared is not None or not start.out_of_attempts or start.done:
        return 0
    return start.attempts - start.finished - start.running


def help_study(job: FoldJob, shared: Shared) -> bool:
    """Run one trial of a study another worker owns, if its budget has room; False if not.

    The helper samples with its own seed (a second sampler seeded like the owner's would
    propose the owner's params again); the owner alone refits and scores the fold.
    """
    if job.n_trials == 0 or SearchSpace.from_dict(job.space, source=job.pair.family).fixed:
        return False
    study = _load_study(job, shared.storage, salt=("helper", shared.worker))
    if study.user_attrs.get(OUTCOME_ATTR) is not None:
        return False
    trials = study.get_trials(deepcopy=False)
    budget = budget_of(trials, job.n_trials)
    if not trials or budget.done:  # not started by its owner yet (it enqueues the defaults)
        return False
    if budget.waiting == 0 and (budget.open_slots <= 0 or budget.out_of_attempts):
        return False
    space = SearchSpace.from_dict(job.space, source=f"{job.pair.family} (stored)")
    _run_trial(job, study, shared.storage, _objective(job, space), shared)
    return True


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
    params, inner_accuracy, number = _tune(job, study, space, storage, None, oof)
    inner = _best_inner(job, params, number, oof) if with_inner else None
    return params, inner_accuracy, inner


def refit(job: FoldJob, params: Mapping[str, Any]) -> Any:
    """The family's estimator with ``params``, fit on every row of ``train_tracks``."""
    model = get_family(job.pair.family).build(dict(params), job.seed)
    rows = _rows(job, job.train_tracks)
    model.fit(job.X[rows], job.y[rows])
    return model


def fit_final(job: FoldJob) -> tuple[Any, dict[str, Any], float]:
    """Tune on ``train_tracks`` (all of a benchmark's tracks) and refit there: the model a
    user gets. Returns ``(fitted estimator, best params, inner-CV accuracy)``."""
    params, inner_accuracy, _ = tune_final(job)
    return refit(job, params), params, inner_accuracy


def run_fold_shared(
    job: FoldJob, shared: Shared, owns: Callable[[], bool] | None = None
) -> tuple[FoldOutcome, bool]:
    """:func:`run_fold` for a worker that claimed the (pair, fold): tunes with the other
    workers' help and writes the outcome only while ``owns()`` (its claim) holds; raises
    :class:`LostClaim` otherwise. Returns the outcome and whether it was computed here (else
    it was found stored)."""
    import sqlalchemy.exc

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return _run_fold(job, shared, owns)
    except (LostClaim, sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError):
        raise  # not the fold's fault: another worker (or this one, later) does it again
    except Exception as exc:
        if job.fail_fast:
            raise
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        log.warning("%s fold %d failed: %s", job.pair.label, job.fold, detail)
        return FoldOutcome(job.pair, job.fold, "error", detail, study_name=job.study_name), True


def _run_fold(
    job: FoldJob, shared: Shared | None = None, owns: Callable[[], bool] | None = None
) -> tuple[FoldOutcome, bool]:
    study, space, storage = _prepare(job, shared.storage if shared else None, shared)
    stored = study.user_attrs.get(OUTCOME_ATTR)
    if stored is not None and satisfies(FoldOutcome.from_json(stored), job):
        outcome = FoldOutcome.from_json(stored)
        if outcome.status == "done" and outcome.inner_predictions is None and shared is None:
            # stored by a genrebench from before inner predictions were kept: add them once
            outcome.inner_predictions = inner_predictions(job, outcome.params)
            study.set_user_attr(OUTCOME_ATTR, outcome.to_json())
        return outcome, False
    t_tune = time.perf_counter()
    status, message = "done", ""
    inner_oof: dict[int, pd.DataFrame] = {}
    try:
        best_params, inner_accuracy, best_number = _tune(
            job, study, space, storage, shared, inner_oof
        )
    except _TimedOut as exc:
        timeout = FoldOutcome(job.pair, job.fold, "timeout", str(exc), study_name=job.study_name)
        return timeout, True
    tune_s = time.perf_counter() - t_tune
    if owns is not None and not owns():
        raise LostClaim(f"{job.study_name}: claim taken over before the refit")

    train = _rows(job, job.train_tracks)
    test = _rows(job, job.test_tracks)
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
    if owns is not None and not owns():
        raise LostClaim(f"{job.study_name}: claim taken over during the refit")
    # the fold is finished only once its outcome is stored: a run killed before this line
    # redoes the refit (cheap) but keeps every trial
    study.set_user_attr(OUTCOME_ATTR, outcome.to_json())
    return outcome, True


def reap_trials(study: optuna.Study, alive: Callable[[str], bool], stale_after_s: float) -> int:
    """Fail the RUNNING trials of workers that are gone and queue each again with its params
    (the retry Optuna's heartbeat would make; needed where the storage has no heartbeat, e.g.
    a journal file, and for a worker killed between creating a trial and its first beat).
    ``alive(worker)`` says whether a worker still beats; a trial with no worker recorded is
    reaped once older than ``stale_after_s``. Returns how many trials were failed."""
    from datetime import datetime

    retry = retry_callback_kwarg().popitem()[1]
    storage = study._storage
    n = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = t.system_attrs.get(WORKER_ATTR)
        if worker is not None:
            if alive(worker):
                continue
        elif (
            t.datetime_start is None
            or (datetime.now() - t.datetime_start).total_seconds() < stale_after_s
        ):
            continue
        try:
            if not storage.set_trial_state_values(t._trial_id, TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker got there first
        retry(study, copy.deepcopy(storage.get_trial(t._trial_id)))
        log.info(
            "%s: trial %d of gone worker %s failed and queued again",
            study.study_name,
            t.number,
            worker or "?",
        )
        n += 1
    return n
