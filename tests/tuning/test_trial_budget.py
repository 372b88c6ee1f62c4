"""A study's trial budget (:mod:`benchmark.tuning.trial_budget`), counted on real Optuna studies in
SQLite: which trials count, where a study stands, topping up failed trials, the trials a kill
left running, and the counted trials a later stage reads."""

from __future__ import annotations

import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from benchmark.storage import open_storage
from benchmark.tuning.trial_budget import (
    KILLED_ATTR,
    RERUN_OF_ATTR,
    SURPLUS_ATTR,
    budget_of,
    counted_trials,
    fail_stale_trials,
    is_counted,
    past_deadline,
    run_trials,
)


def _study(tmp_path: Path, name: str = "s") -> tuple[optuna.Study, optuna.storages.BaseStorage]:
    storage = open_storage(f"sqlite:///{tmp_path / 'optuna.db'}")
    study = optuna.create_study(study_name=name, storage=storage, load_if_exists=True)
    return study, storage


def _ask(study: optuna.Study, storage, attr: str | None = None) -> optuna.Trial:
    trial = study.ask()
    trial.suggest_float("x", 0, 1)
    if attr:
        storage.set_trial_system_attr(trial._trial_id, attr, True)
    return trial


def test_a_study_s_standing_counts_every_state_and_leaves_out_surplus_and_killed(
    tmp_path: Path,
) -> None:
    study, storage = _study(tmp_path)
    for value in (0.1, 0.2):
        study.tell(_ask(study, storage), value)
    study.tell(_ask(study, storage), state=TrialState.PRUNED)
    study.tell(_ask(study, storage), state=TrialState.FAIL)  # params the data cannot support
    study.tell(_ask(study, storage, SURPLUS_ATTR), state=TrialState.FAIL)
    study.tell(_ask(study, storage, KILLED_ATTR), state=TrialState.FAIL)
    _ask(study, storage)  # running
    study.enqueue_trial({"x": 0.5})  # waiting
    trials = study.get_trials()
    assert [is_counted(t) for t in trials] == [True] * 4 + [False, False] + [True] * 2
    budget = budget_of(trials, 6)
    assert (budget.finished, budget.running, budget.waiting, budget.attempts) == (3, 1, 1, 5)
    assert budget.open_slots == 1 and not budget.done and not budget.full
    assert not budget_of(trials, 4).full  # no place left, but a queued trial may always start
    assert budget_of([t for t in trials if t.state != TrialState.WAITING], 4).full
    assert budget_of(trials, 3).done and not budget_of(trials, 4).done
    assert budget_of(trials, 2).out_of_attempts and not budget_of(trials, 3).out_of_attempts


def test_run_trials_finishes_the_budget_and_tops_up_failed_trials(tmp_path: Path) -> None:
    study, storage = _study(tmp_path, "ok")
    run_trials(study, storage, lambda t: t.suggest_float("x", 0, 1), 4)
    assert [t.state for t in study.get_trials()] == [TrialState.COMPLETE] * 4
    run_trials(study, storage, lambda t: t.suggest_float("x", 0, 1), 4)  # already done
    assert len(study.get_trials()) == 4

    def sometimes(trial: optuna.Trial) -> float:
        if trial.number % 2:
            raise ValueError("more neighbours than rows")
        return trial.suggest_float("x", 0, 1)

    mixed, _ = _study(tmp_path, "mixed")
    run_trials(mixed, storage, sometimes, 3)
    states = [t.state for t in mixed.get_trials()]
    assert states.count(TrialState.COMPLETE) == 3 and states.count(TrialState.FAIL) == 2

    def never(trial: optuna.Trial) -> float:
        raise ValueError("no params fit")

    failing, _ = _study(tmp_path, "failing")
    run_trials(failing, storage, never, 3)  # at most as many extra attempts as the budget
    assert [t.state for t in failing.get_trials()] == [TrialState.FAIL] * 6


def test_other_errors_fail_the_trial_and_stop_the_study(tmp_path: Path) -> None:
    study, storage = _study(tmp_path)

    def broken(trial: optuna.Trial) -> float:
        raise KeyError("a bug, not bad params")

    with pytest.raises(KeyError):
        run_trials(study, storage, broken, 3)
    assert [t.state for t in study.get_trials()] == [TrialState.FAIL]


def test_a_deadline_ends_a_study_once_it_has_a_finished_trial(tmp_path: Path) -> None:
    study, storage = _study(tmp_path)
    run_trials(study, storage, lambda t: t.suggest_float("x", 0, 1), 5, deadline=time.time() - 1)
    assert len(study.get_trials()) == 1  # the first trial (the defaults) runs even so
    assert past_deadline(time.time() - 1) and not past_deadline(time.time() + 60)
    assert not past_deadline(None)


def test_trials_a_kill_left_running_are_marked_and_queued_again_once(tmp_path: Path) -> None:
    study, storage = _study(tmp_path)
    study.enqueue_trial({"x": 0.25})
    queued = _ask(study, storage)  # the defaults, cut off by a kill
    _ask(study, storage)  # a sampled trial, cut off too
    assert fail_stale_trials(study, storage) == 2
    trials = study.get_trials()
    assert [t.state for t in trials[:2]] == [TrialState.FAIL] * 2
    assert all(t.system_attrs[KILLED_ATTR] for t in trials[:2]) and not any(
        map(is_counted, trials[:2])
    )
    (rerun,) = trials[2:]  # only the queued one is queued again: a sampled one is resampled
    assert rerun.state == TrialState.WAITING and rerun.system_attrs[RERUN_OF_ATTR] == queued.number
    assert rerun.system_attrs["fixed_params"] == {"x": 0.25}
    assert fail_stale_trials(study, storage) == 0 and len(study.get_trials()) == 3


def test_counted_trials_are_read_by_study_name(tmp_path: Path) -> None:
    study, storage = _study(tmp_path)
    study.tell(_ask(study, storage), 0.5)
    study.tell(_ask(study, storage, SURPLUS_ATTR), state=TrialState.FAIL)
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    assert [t.number for t in counted_trials(url, "s")] == [0]
    assert [t.number for t in counted_trials(storage, "s")] == [0]
    assert counted_trials(url, "no such study") == [] and counted_trials(url, "") == []
