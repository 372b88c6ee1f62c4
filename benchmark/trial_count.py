"""A study's trial budget, counted over every process that adds trials to it.

:mod:`benchmark.tuning` says what a trial computes; this module decides which trials run and
which count, so that a study ends with the same trials however its work was cut up:

* ``genrebench run`` owns its studies alone (the results folder's lock): a killed run's
  leftover ``RUNNING`` trials are failed on start, marked ``genrebench:killed`` (they count
  nowhere) and queued again as they were (:func:`fail_stale_trials`); every trial samples with
  a seed of its place among the counted trials (:mod:`benchmark.sampler_seeding`,
  :func:`is_counted`), so a resumed run is the run it would have been without the kill.
* Processes that share a study (:class:`Shared`; no engine does since Dask runs each study as
  one task at a time, issue 41) follow one rule that makes
  a study's budget global: a trial runs only if fewer than ``n_trials`` trials numbered before it
  are finished, running or waiting (Optuna numbers trials in creation order). Any number of
  processes may then add trials to one study: at most ``n_trials`` ever finish, and a trial that
  would exceed the budget is ended at once as ``FAIL`` with the system attribute
  ``genrebench:surplus`` (it counts nowhere). A dead worker's trial is failed once its heartbeat is
  stale (or its worker is gone, :func:`reap_trials`), and retried with the same params.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from benchmark.periodic import repeating
from benchmark.storage import open_storage, retry_callback_kwarg

__all__ = [
    "Budget",
    "Shared",
    "budget_of",
    "counted_trials",
    "fail_stale_trials",
    "is_counted",
    "past_deadline",
    "reap_trials",
    "recover_trials",
    "run_trial",
    "run_trials",
    "seconds_spent",
]

log = logging.getLogger(__name__)


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


def is_counted(trial: optuna.trial.FrozenTrial) -> bool:
    """Whether a trial counts anywhere (budget, sampling, MLflow, ``trials.parquet``): one ended
    unrun as surplus, or cut off by a kill and run again, is no trial."""
    attrs = trial.system_attrs
    return not (attrs.get(SURPLUS_ATTR) or attrs.get(KILLED_ATTR))


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

    @property
    def full(self) -> bool:
        """No trial may start now: none is queued, and the budget's places (or its attempts)
        are taken."""
        return self.waiting == 0 and (self.open_slots <= 0 or self.out_of_attempts)


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


def past_deadline(deadline: float | None) -> bool:
    """Whether a run's wall-clock budget ending at ``deadline`` (a ``time.time()``; None: no
    budget) is spent."""
    return deadline is not None and time.time() >= deadline


@dataclass
class Shared:
    """How a worker shares studies with other workers (``None`` in ``genrebench run``)."""

    worker: str
    storage: optuna.storages.BaseStorage  # opened once per worker, with heartbeats
    #: fail (and retry) the RUNNING trials of dead workers; returns how many
    reap: Callable[[optuna.Study], int]
    poll_s: float = 1.0


@contextlib.contextmanager
def _heartbeat(storage: optuna.storages.BaseStorage, trial_id: int) -> Iterator[None]:
    """Record the trial's heartbeat every interval while it runs (as ``Study.optimize``
    does), when the storage has heartbeats enabled."""
    from optuna.storages._heartbeat import is_heartbeat_enabled

    if not is_heartbeat_enabled(storage):
        yield
        return
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


def run_trial(
    study: optuna.Study,
    storage: optuna.storages.BaseStorage,
    objective: Callable[[optuna.Trial], float],
    n_trials: int,
    shared: Shared | None,
) -> TrialState:
    """Ask, run and tell one trial (as ``Study.optimize(n_trials=1)`` does), unless it would
    exceed the budget of ``n_trials``. Returns the trial's final state."""
    if shared is not None:
        _fail_stale(study)
    with warnings.catch_warnings():
        # Optuna warns that heartbeats are meant for Study.optimize: this loop records them too
        warnings.filterwarnings("ignore", message="Heartbeat of storage")
        trial = study.ask()
    with _heartbeat(storage, trial._trial_id):
        # genrebench run owns its studies (the results folder's lock, and it refuses a storage
        # live workers share): only shared studies can see another process's trials
        if shared is not None and _is_surplus(trial, study, storage, n_trials, shared.worker):
            study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            log.debug("%s: trial %d is surplus", study.study_name, trial.number)
            return TrialState.FAIL
        try:
            value: float | None = objective(trial)
            state = None
        except optuna.TrialPruned:
            value, state = None, TrialState.PRUNED
        except CATCH as exc:
            log.warning(
                "%s: trial %d failed (%s: %s)",
                study.study_name,
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
            study.study_name,
            trial.number,
        )
    return frozen.state


def run_trials(
    study: optuna.Study,
    storage: optuna.storages.BaseStorage,
    objective: Callable[[optuna.Trial], float],
    n_trials: int,
    *,
    shared: Shared | None = None,
    timeout_s: float | None = None,
    deadline: float | None = None,
) -> None:
    """Run trials until ``n_trials`` have finished, ``timeout_s`` has passed (counting what the
    study's earlier trials ran, so a killed and resumed study tunes no longer than an
    uninterrupted one) or the run's ``deadline`` (a ``time.time()``) has, once the study has a
    finished trial.

    Finished trials of an earlier run count towards the budget, and so do those of other
    workers; failed trials (params the data cannot support, e.g. more neighbours than rows) do
    not, so the study tops up with at most as many extra attempts as its budget. When other
    workers' running trials fill the budget, a shared study waits for them (failing and
    retrying those whose worker died).
    """
    earlier_failures = _fresh_attempts(study, n_trials, shared)
    stop_at = None
    if timeout_s is not None:
        # a resumed study has its earlier trials' seconds spent already; shared studies'
        # trials overlap in time, so for workers the clock is each worker's own
        spent = 0.0 if shared is not None else seconds_spent(study.get_trials(deepcopy=False))
        stop_at = time.monotonic() + max(0.0, timeout_s - spent)
    while True:
        budget = budget_of(study.get_trials(deepcopy=False), n_trials)
        budget = replace(budget, attempts=budget.attempts - earlier_failures)
        if budget.done or (stop_at is not None and time.monotonic() >= stop_at):
            break
        if past_deadline(deadline) and budget.finished > 0:
            break  # a study that started gets its first trial (the defaults) at least
        if budget.full:
            if budget.running == 0 or shared is None:
                break
            # other workers' trials hold the rest of the budget: wait for them, or their death
            _fail_stale(study)
            if not shared.reap(study):
                time.sleep(shared.poll_s)
            continue
        run_trial(study, storage, objective, n_trials, shared)


def seconds_spent(trials: Sequence[optuna.trial.FrozenTrial]) -> float:
    """Seconds a study's counted, finished trials ran (failed ones too: they took the time):
    what ``timeout_s`` has already used when a killed run resumes the study."""
    return sum(
        t.duration.total_seconds()
        for t in trials
        if is_counted(t) and t.state.is_finished() and t.duration is not None
    )


def _fresh_attempts(study: optuna.Study, n_trials: int, shared: Shared | None) -> int:
    """How many earlier failed attempts not to count: all of them when an earlier run ran out
    of attempts (the cause, a missing package or a bug, may be fixed by now), none otherwise,
    so a run cut off half-way resumes with the budget an uninterrupted run has. Workers share
    studies: for them the count stays global."""
    start = budget_of(study.get_trials(deepcopy=False), n_trials)
    if shared is not None or not start.out_of_attempts or start.done:
        return 0
    return start.attempts - start.finished - start.running


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


def recover_trials(
    study: optuna.Study, storage: optuna.storages.BaseStorage, shared: Shared | None
) -> None:
    """Before a study goes on: queue again the trials a kill cut off (``genrebench run``), or
    those of dead workers (``shared``)."""
    if shared is not None:
        shared.reap(study)
        return
    stale = fail_stale_trials(study, storage)
    if stale:
        log.info("%s: %d trial(s) cut off by a kill queued again", study.study_name, stale)


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


def reap_trials(study: optuna.Study, alive: Callable[[str], bool], stale_after_s: float) -> int:
    """Fail the RUNNING trials of workers that are gone and queue each again with its params
    (the retry Optuna's heartbeat would make; needed where the storage has no heartbeat, e.g.
    a journal file, and for a worker killed between creating a trial and its first beat).
    ``alive(worker)`` says whether a worker still beats; a trial with no worker recorded is
    reaped once older than ``stale_after_s``. Returns how many trials were failed."""
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
