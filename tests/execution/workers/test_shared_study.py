"""Studies workers share, on SQLite (no server needed): the global trial budget (a surplus
trial counts nowhere, no room for a helper) and the retry of a dead worker's trial."""

from __future__ import annotations

import pytest
from helpers import fold_job
from optuna.trial import TrialState

from benchmark.execution.workers.shared_study import help_study, run_fold_shared
from benchmark.search_space import SearchSpace
from benchmark.storage import open_storage
from benchmark.trial_count import (
    SURPLUS_ATTR,
    WORKER_ATTR,
    Shared,
    budget_of,
    reap_trials,
    run_trial,
)
from benchmark.tuning import inner_cv_objective, load_study

# the tests ask() trials by hand, as Optuna's heartbeat warns against (the workers do not)
pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage")


def _shared(job, worker: str = "me", alive=lambda w: True) -> Shared:
    storage = open_storage(job.storage_url, heartbeat_interval=1, grace_period=2)
    return Shared(worker, storage, lambda study: reap_trials(study, alive, 60), poll_s=0.05)


def test_a_trial_beyond_the_global_budget_is_surplus_and_counts_nowhere(tmp_path) -> None:
    job = fold_job(tmp_path, n_trials=2)
    shared = _shared(job)
    study = load_study(job, shared.storage)
    for _ in range(2):  # two trials other workers are running
        study.ask()
    objective = inner_cv_objective(job, SearchSpace.from_dict(job.space))
    state = run_trial(study, shared.storage, objective, job.n_trials, shared)
    trials = study.get_trials()
    assert state == TrialState.FAIL and trials[-1].system_attrs[SURPLUS_ATTR] is True
    assert trials[-1].system_attrs[WORKER_ATTR] == "me"
    budget = budget_of(trials, 2)
    assert (budget.finished, budget.running, budget.attempts, budget.open_slots) == (0, 2, 2, 0)
    assert not help_study(job, shared)  # no room for a helper either


def test_a_dead_workers_trial_is_failed_and_retried_with_its_params(tmp_path) -> None:
    job = fold_job(tmp_path, n_trials=3)
    shared = _shared(job, alive=lambda w: w != "gone")
    study = load_study(job, shared.storage)
    trial = study.ask()
    SearchSpace.from_dict(job.space).suggest(trial)
    shared.storage.set_trial_system_attr(trial._trial_id, WORKER_ATTR, "gone")
    assert reap_trials(study, lambda w: w != "gone", 60) == 1
    trials = study.get_trials()
    assert trials[0].state == TrialState.FAIL
    assert trials[1].state == TrialState.WAITING and trials[1].params == trials[0].params
    out, fresh = run_fold_shared(job, shared)
    trials = study.get_trials()
    assert out.status == "done" and fresh
    assert trials[1].state in (TrialState.COMPLETE, TrialState.PRUNED)  # the retry ran
    assert budget_of(trials, 3).finished == 3 and budget_of(trials, 3).attempts == 3
