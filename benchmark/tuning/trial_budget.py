"""A study's trial budget, counted over every process that adds trials to it.

:mod:`benchmark.tuning.fold` says what a trial computes; this module decides which trials run and
which count, so that a study ends with the same trials however its work was cut up:

* ``genrebench run`` owns its studies alone (the results folder's lock): a killed run's
  leftover ``RUNNING`` trials are failed on start, marked ``genrebench:killed`` (they count
  nowhere) and queued again as they were (:func:`fail_stale_trials`); every trial samples with
  a seed of its place among the counted trials (:mod:`benchmark.tuning.sampler_seeding`,
  :func:`is_counted`), so a resumed run is the run it would have been without the kill.
* One study is tuned by one task at a time (a Dask task that dies is run again elsewhere and
  finds its study as a killed run would). A ``genrebench:surplus`` trial of an older store, from
  the shared studies of the removed claims board, still counts nowhere.
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import optuna
from optuna.trial import TrialState

from benchmark.storage import open_storage
from benchmark.tuning.heartbeat import heartbeat

__all__ = [
    "Budget",
    "budget_of",
    "counted_trials",
    "fail_stale_trials",
    "is_counted",
    "past_deadline",
    "recover_trials",
    "run_trial",
    "run_trials",
    "seconds_spent",
]

log = logging.getLogger(__name__)


#: system attribute of a trial ended unrun because the budget was already taken (shared studies
#: of stores written before issue 41; no trial is marked so any more)
SURPLUS_ATTR = "genrebench:surplus"


#: system attribute of a trial cut off by a kill of ``genrebench run``: it counts nowhere, and
#: is run again as it was
KILLED_ATTR = "genrebench:killed"


#: system attribute of a killed trial's rerun: the number of the trial it replaces
RERUN_OF_ATTR = "genrebench:rerun_of"


#: trial states that count towards a study's budget (failed trials are retried)
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


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


def run_trial(
    study: optuna.Study,
    storage: optuna.storages.BaseStorage,
    objective: Callable[[optuna.Trial], float],
) -> TrialState:
    """Ask, run and tell one trial (as ``Study.optimize(n_trials=1)`` does). Returns the
    trial's final state."""
    with warnings.catch_warnings():
        # Optuna warns that heartbeats are meant for Study.optimize: this loop records them too
        warnings.filterwarnings("ignore", message="Heartbeat of storage")
        trial = study.ask()
    with heartbeat(storage, trial._trial_id):
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
    return study.tell(trial, value, state=state, skip_if_finished=True).state


def run_trials(
    study: optuna.Study,
    storage: optuna.storages.BaseStorage,
    objective: Callable[[optuna.Trial], float],
    n_trials: int,
    *,
    timeout_s: float | None = None,
    deadline: float | None = None,
) -> None:
    """Run trials until ``n_trials`` have finished, ``timeout_s`` has passed (counting what the
    study's earlier trials ran, so a killed and resumed study tunes no longer than an
    uninterrupted one) or the run's ``deadline`` (a ``time.time()``) has, once the study has a
    finished trial.

    Finished trials of an earlier run count towards the budget; failed trials (params the data
    cannot support, e.g. more neighbours than rows) do not, so the study tops up with at most as
    many extra attempts as its budget.
    """
    earlier_failures = _fresh_attempts(study, n_trials)
    stop_at = None
    if timeout_s is not None:
        # a resumed study has its earlier trials' seconds spent already
        spent = seconds_spent(study.get_trials(deepcopy=False))
        stop_at = time.monotonic() + max(0.0, timeout_s - spent)
    while True:
        budget = budget_of(study.get_trials(deepcopy=False), n_trials)
        budget = replace(budget, attempts=budget.attempts - earlier_failures)
        if budget.done or (stop_at is not None and time.monotonic() >= stop_at):
            break
        if past_deadline(deadline) and budget.finished > 0:
            break  # a study that started gets its first trial (the defaults) at least
        if budget.full:
            break
        run_trial(study, storage, objective)


def seconds_spent(trials: Sequence[optuna.trial.FrozenTrial]) -> float:
    """Seconds a study's counted, finished trials ran (failed ones too: they took the time):
    what ``timeout_s`` has already used when a killed run resumes the study."""
    return sum(
        t.duration.total_seconds()
        for t in trials
        if is_counted(t) and t.state.is_finished() and t.duration is not None
    )


def _fresh_attempts(study: optuna.Study, n_trials: int) -> int:
    """How many earlier failed attempts not to count: all of them when an earlier run ran out
    of attempts (the cause, a missing package or a bug, may be fixed by now), none otherwise,
    so a run cut off half-way resumes with the budget an uninterrupted run has."""
    start = budget_of(study.get_trials(deepcopy=False), n_trials)
    if not start.out_of_attempts or start.done:
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


def recover_trials(study: optuna.Study, storage: optuna.storages.BaseStorage) -> None:
    """Before a study goes on: queue again the trials a kill (of ``genrebench run``, or of the
    Dask worker that ran the fold before) cut off."""
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
