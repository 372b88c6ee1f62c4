"""The sampler of every study (:mod:`benchmark.tuning.sampler_seeding`): TPE reseeded by a trial's
place among the counted trials, so a study with a trial killed in its middle samples what an
uninterrupted one samples, and a budget-cut study keeps the planned share of random start."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

from benchmark.tuning.sampler_seeding import STARTUP_TRIALS, PositionSeededSampler, startup_trials
from benchmark.tuning.trial_budget import KILLED_ATTR, is_counted


def _study(seed_of=lambda k: 1000 + k, n_startup_trials: int = 2) -> optuna.Study:
    sampler = PositionSeededSampler(seed_of, is_counted, n_startup_trials=n_startup_trials)
    return optuna.create_study(sampler=sampler)


def _objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -5, 5)
    k = trial.suggest_int("k", 1, 20)
    return (x - 1) ** 2 + abs(k - 7)


def _params(study: optuna.Study) -> list[dict]:
    return [t.params for t in study.get_trials() if is_counted(t)]


def test_the_same_seeds_sample_the_same_params_through_tpe() -> None:
    a, b = _study(), _study()
    a.optimize(_objective, n_trials=6)  # 2 random start-up trials, then TPE's model
    b.optimize(_objective, n_trials=6)
    assert _params(a) == _params(b)
    assert len({p["x"] for p in _params(a)}) == 6
    other = _study(lambda k: 2000 + k)
    other.optimize(_objective, n_trials=6)
    assert _params(other) != _params(a)


def test_each_trial_is_seeded_by_its_place_not_by_one_stream() -> None:
    """A constant seed draws the same random start-up params for every trial: the seed is
    reset before each one."""
    same = _study(lambda k: 5, n_startup_trials=10)
    same.optimize(_objective, n_trials=3)
    assert [p == _params(same)[0] for p in _params(same)] == [True] * 3


def test_a_trial_killed_mid_study_changes_no_later_trials_params() -> None:
    """The killed trial (marked, failed, counting nowhere) takes no place: trial k after it
    samples what trial k of an uninterrupted study samples, TPE's model included."""
    whole = _study()
    whole.optimize(_objective, n_trials=5)
    cut = _study()
    cut.optimize(_objective, n_trials=2)
    trial = cut.ask()
    _objective(trial)
    cut._storage.set_trial_system_attr(trial._trial_id, KILLED_ATTR, True)
    cut.tell(trial, state=TrialState.FAIL)
    assert cut.sampler.position(cut, cut.get_trials()[-1]) == 2  # type: ignore[attr-defined]
    cut.optimize(_objective, n_trials=3)
    assert len(cut.get_trials()) == 6 and _params(cut) == _params(whole)


def test_a_study_the_budget_cut_keeps_the_planned_share_of_random_start() -> None:
    assert startup_trials(40, 40) == STARTUP_TRIALS == startup_trials(60, 40)
    assert startup_trials(5, None) == STARTUP_TRIALS  # nothing planned apart: as configured
    assert [startup_trials(n, 40) for n in (15, 8, 4, 1)] == [4, 2, 1, 1]
    assert startup_trials(4, 30) == 2
