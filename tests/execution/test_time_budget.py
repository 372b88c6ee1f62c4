"""The run's wall-clock budget: durations, config keys, capped trials, value-weighted caps,
deadlines and continuation (the cost model and the scheduler: test_cost.py, test_schedule.py)."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from helpers import cost_model, fold_job, pair_jobs, run_local, study_trials

from benchmark.config import config_from_dict, parse_duration
from benchmark.errors import ConfigError
from benchmark.execution.time_budget import TuningValue, capped_trials, late_gain, plan_budget
from benchmark.results import PairKey
from benchmark.tuning.fold import run_fold
from benchmark.tuning.search_space import load_search_space


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("2h", 7200), ("45m", 2700), ("1h30m", 5400), ("90s", 90), ("600", 600), (30, 30)],
)
def test_durations_parse(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "2x", "h", "-5m", "0", "1h 30 parsecs", True])
def test_bad_durations_are_one_clear_error(bad: object) -> None:
    with pytest.raises(ConfigError, match="budget must be"):
        parse_duration(bad)  # type: ignore[arg-type]


def test_budget_and_racing_are_config_keys_outside_the_digest() -> None:
    base = {"name": "b", "protocols": {"artist_kfold": {"n_folds": 3}}}
    cfg = config_from_dict(base, source="t")
    budgeted = config_from_dict({**base, "budget": "1h", "racing": True}, source="t")
    assert budgeted.budget_seconds() == 3600 and budgeted.racing_settings().alpha == 0.05
    assert budgeted.digest() == cfg.digest()
    # keys that change results do change it
    assert config_from_dict({**base, "trials_per_param": 5}, source="t").digest() != cfg.digest()
    assert config_from_dict({**base, "pruner": "hyperband"}, source="t").digest() != cfg.digest()
    for key, value, words in (
        ("budget", "soon", "budget must be"),
        ("racing", {"alpha": 2}, "racing.alpha"),
        ("racing", {"speed": 1}, "unknown key"),
        ("pruner", "random", "unknown pruner"),
        ("trials_per_param", 0, "trials_per_param"),
    ):
        with pytest.raises(ConfigError, match=words):
            config_from_dict({**base, key: value}, source="t")


def test_trials_per_param_gives_small_spaces_fewer_trials() -> None:
    cfg = config_from_dict(
        {"name": "b", "n_trials": 50, "trials_per_param": 5, "protocols": ["artist_kfold"]},
        source="t",
    )
    assert len(load_search_space("lda").params) == 2
    assert cfg.trials_for("lda") == 10
    assert cfg.trials_for("lightgbm") == min(50, 5 * len(load_search_space("lightgbm").params))
    assert cfg.with_overrides(trials_per_param=100).trials_for("lda") == 50


def test_a_budget_caps_every_study_s_tuning_time(tmp_path: Path) -> None:
    """Cheap studies keep every planned trial, expensive ones get what the common cap holds."""
    jobs = pair_jobs(tmp_path, (0, 1), (("slow", 40), ("cheap", 10)))
    model = cost_model(jobs, 1.0)
    model.per_trial[("s", "cheap")] = 0.1
    free = plan_budget(jobs, model, 2, None)
    assert free.cap_s is None and free.trials == (40, 10, 40, 10) and free.share == 1
    tight = plan_budget(jobs, model, 2, 60.0)
    assert tight.cap_s is not None and tight.fits and tight.wall_s + tight.after_s <= 60
    assert tight.trials[1] == tight.trials[3] == 10  # 1 s of trials: every one kept
    assert 1 <= tight.trials[0] == tight.trials[2] < 40 and tight.n_capped == 2
    assert tight.trials[0] == capped_trials(40, 1.0, tight.cap_s)
    assert tight.share == pytest.approx(sum(tight.trials) / 100)
    # folds a stored outcome already answers cost nothing: more trials fit for the rest
    alone = plan_budget(jobs, model, 1, 60.0)
    done = plan_budget(jobs, model, 1, 60.0, done=lambda j: 40 if j.fold == 0 else None)
    assert done.n_left == 2 and done.cap_s is not None and alone.cap_s is not None
    assert done.cap_s > alone.cap_s and done.trials[2] > alone.trials[2]
    impossible = plan_budget(jobs, model, 2, 1.0)
    assert not impossible.fits and impossible.trials == (1, 1, 1, 1)


def test_late_gain_says_what_a_study_s_last_trials_found() -> None:
    assert late_gain([0.5, 0.6, 0.7, 0.7, 0.8]) is None  # five trials: too few to tell
    assert late_gain([0.5, 0.6, 0.6, 0.6, 0.55, 0.6]) == 0.0  # settled in its first half
    assert late_gain([0.3, 0.4, 0.4, 0.5, 0.7, 0.6, 0.2]) == pytest.approx(0.2)  # 0.7 - 0.5


def test_caps_grow_for_pairs_whose_trials_still_find_better_params(tmp_path: Path) -> None:
    """Pairs' caps scale with what their studies' last trials found, against the median pair,
    within x0.5..x2; a pair with one study so far keeps the common cap."""
    base = fold_job(tmp_path)
    job = {
        fam: replace(base, pair=PairKey("s", fam, "p")) for fam in ("flat", "mid", "steep", "thin")
    }
    value = TuningValue()
    first_half_best = [0.5, 0.6, 0.6]
    for fam, late in (("flat", 0.6), ("mid", 0.605), ("steep", 0.66), ("thin", 0.9)):
        for _ in range(1 if fam == "thin" else 2):
            value.observe(job[fam], [*first_half_best, 0.55, late, 0.5])
    value.observe(job["steep"], [0.5, 0.6])  # too few trials: no evidence
    weights = value.weights()
    assert weights[("s", "mid")] == pytest.approx(1.0)  # the median pair
    assert weights[("s", "flat")] == 0.5 and weights[("s", "steep")] == 2.0
    assert ("s", "thin") not in weights and value.weighting()(job["thin"]) == 1.0
    # the plan gives the steep pair twice the seconds of an equal one, and still fits
    jobs = [replace(job[fam], fold=f, n_trials=40) for f in range(2) for fam in ("mid", "steep")]
    model = cost_model(jobs, 1.0)
    plan = plan_budget(jobs, model, 2, 60.0, weight=value.weighting())
    even = plan_budget(jobs, model, 2, 60.0)
    assert plan.fits and plan.cap_s is not None
    assert plan.trials[1] == capped_trials(40, 1.0, 2 * plan.cap_s) > plan.trials[0]
    assert plan.trials[1] > even.trials[1] and plan.trials[0] < even.trials[0]


def test_capped_trials_keeps_one_and_never_more_than_planned() -> None:
    assert capped_trials(40, 2.0, 10.0) == 5
    assert capped_trials(40, 2.0, 0.0) == 1  # the defaults always run
    assert capped_trials(10, 0.1, 100.0) == 10
    assert capped_trials(10, 1.0, None) == 10 and capped_trials(0, 1.0, 5.0) == 0


def test_a_study_ended_by_the_deadline_is_continued_by_a_larger_budget(tmp_path: Path) -> None:
    job = fold_job(tmp_path, n_trials=2)
    first = run_fold(job)
    assert first.status == "done" and first.trial_budget == 2
    before = [t.params for t in study_trials(job)]
    # the same study, planned for 5 trials, but the run's budget is already spent: it keeps
    # its 2 trials, is refit, and says it satisfies only 2
    cut = run_fold(replace(job, n_trials=5, deadline=time.time() - 1))
    assert cut.status == "done" and cut.trial_budget == 2 and cut.n_trials == 2
    assert cut.params == first.params
    # a rerun with time continues the same study to 5 trials (the first 2 are kept)
    more = run_fold(replace(job, n_trials=5))
    trials = study_trials(job)
    assert more.trial_budget == 5 and more.n_trials + more.n_pruned == 5 == len(trials)
    assert [t.params for t in trials[:2]] == before
    # and a fold run again once its study has the planned trials runs no new trial
    again = run_fold(replace(job, n_trials=5))
    assert len(study_trials(job)) == 5 and again.params == more.params


SMALL = dict(name="b", seed=2, n_jobs=2)


def test_a_spent_budget_leaves_complete_tables_and_a_rerun_continues(
    fake_gtzan: Path, tmp_path: Path, make_config
) -> None:
    spent = run_local(make_config(**SMALL, budget=0.001), fake_gtzan, tmp_path / "r")
    res = spent.results
    pairs, ens = res[res["feature_set"] != "ensemble"], res[res["feature_set"] == "ensemble"]
    # a row for every pair and fold, never a missing one; ensembles as incomplete as the pairs
    assert len(pairs) == 2 * 3 and set(pairs["status"]) == {"skip"}
    assert pairs["message"].str.startswith("not reached: the run's budget").all()
    assert len(ens) == 3 * 3 and set(ens["status"]) == {"skip"}
    # the same results folder with time to spare: every fold runs now, as an unbudgeted run
    resumed = run_local(make_config(**SMALL), fake_gtzan, tmp_path / "r").results
    fresh = run_local(make_config(**SMALL), fake_gtzan, tmp_path / "fresh").results
    cols = ["feature_set", "family", "fold", "status", "accuracy", "params", "n_trials"]
    assert set(resumed["status"]) == {"done"}
    pd.testing.assert_frame_equal(resumed[cols], fresh[cols])
