"""The run's wall-clock budget and cost model: durations, planning, deadlines, continuation."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import fold_job, run_local, study_trials

from benchmark.config import RacingSettings, config_from_dict, parse_duration
from benchmark.errors import ConfigError
from benchmark.execution.cost import CostModel, FitCost, makespan, measure_fit
from benchmark.execution.racing import Race
from benchmark.execution.schedule import Scheduler, dispatch_order
from benchmark.execution.time_budget import TuningValue, capped_trials, late_gain, plan_budget
from benchmark.results import PairKey
from benchmark.search_space import load_search_space
from benchmark.storage import open_storage
from benchmark.testing import make_tabular_problem
from benchmark.tuning import inner_scores, run_fold


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


def test_fit_cost_is_measured_on_the_data_and_scales_with_rows() -> None:
    X, y = make_tabular_problem(n_samples=400, n_features=8, n_classes=4, seed=0)
    cost = measure_fit("logreg", load_search_space("logreg"), X, y, rows=300)
    assert cost.seconds > 0 and cost.rows == 300 and 0.5 <= cost.exponent <= 2
    assert cost.at(600) > cost.at(300) > cost.at(150) > 0
    assert FitCost(2.0, 100, 2.0).at(200) == pytest.approx(8.0)


def test_makespan_packs_jobs_onto_the_first_free_process() -> None:
    assert makespan([4, 3, 2, 1], 2) == 5
    assert makespan([1, 2, 3, 4], 2) == 6  # shortest first leaves one long job at the end
    assert makespan([5, 1], 1) == 6


def _pair_jobs(tmp_path: Path, folds, families) -> list:
    """Jobs of families ``(name, n_trials)`` on ``folds``, fold by fold."""
    base = fold_job(tmp_path)
    return [
        replace(base, pair=PairKey("s", fam, "p"), fold=fold, n_trials=n)
        for fold in folds
        for fam, n in families
    ]


def _model(jobs, seconds_per_trial: float) -> CostModel:
    model = CostModel()
    for j in jobs:
        model.per_trial[(j.pair.feature_set, j.pair.family)] = seconds_per_trial
        model.fits[(j.pair.feature_set, j.pair.family)] = FitCost(0.0, 1)
    return model


def test_a_budget_caps_every_study_s_tuning_time(tmp_path: Path) -> None:
    """Cheap studies keep every planned trial, expensive ones get what the common cap holds."""
    jobs = _pair_jobs(tmp_path, (0, 1), (("slow", 40), ("cheap", 10)))
    model = _model(jobs, 1.0)
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
    model = _model(jobs, 1.0)
    plan = plan_budget(jobs, model, 2, 60.0, weight=value.weighting())
    even = plan_budget(jobs, model, 2, 60.0)
    assert plan.fits and plan.cap_s is not None
    assert plan.trials[1] == capped_trials(40, 1.0, 2 * plan.cap_s) > plan.trials[0]
    assert plan.trials[1] > even.trials[1] and plan.trials[0] < even.trials[0]


def test_the_scheduler_learns_from_each_finished_study(tmp_path: Path) -> None:
    """Under a budget, each finished fold's inner-CV scores (read from its study) are what the
    next re-plan weighs its pair by."""
    base = replace(fold_job(tmp_path, n_trials=7), pruner="none")
    jobs = [replace(base, fold=f, study_name=f"value{f}") for f in range(2)]
    value = TuningValue()
    outcomes = [o for o, _ in Scheduler(jobs, range(2), value=value).run()]
    assert [o.status for o in outcomes] == ["done", "done"]
    storage = open_storage(base.storage_url)
    scores = [inner_scores(storage, j.study_name) for j in jobs]
    assert [len(s) for s in scores] == [7, 7]
    assert scores[0] == [t.value for t in study_trials(jobs[0])]
    assert value.gains[("synthetic", "logreg")] == [late_gain(s) for s in scores]
    assert ("synthetic", "logreg") in value.weights()


def test_capped_trials_keeps_one_and_never_more_than_planned() -> None:
    assert capped_trials(40, 2.0, 10.0) == 5
    assert capped_trials(40, 2.0, 0.0) == 1  # the defaults always run
    assert capped_trials(10, 0.1, 100.0) == 10
    assert capped_trials(10, 1.0, None) == 10 and capped_trials(0, 1.0, 5.0) == 0


def test_dispatch_goes_round_by_round_longest_first(tmp_path: Path) -> None:
    jobs = _pair_jobs(tmp_path, (1, 0), (("a", 1), ("b", 9)))
    model = _model(jobs, 1.0)
    order = [(jobs[i].fold, jobs[i].pair.family) for i in dispatch_order(jobs, model)]
    assert order == [(0, "b"), (0, "a"), (1, "b"), (1, "a")]


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
    # and a stored outcome that satisfies the plan is read back without any new trial
    again = run_fold(replace(job, n_trials=5))
    assert len(study_trials(job)) == 5 and again.params == more.params


def test_no_fold_starts_after_the_deadline(tmp_path: Path) -> None:
    jobs = [replace(fold_job(tmp_path), fold=f, study_name=f"s{f}") for f in range(3)]
    past = Scheduler(jobs, range(3), deadline=time.time() - 1, budget_label="1 s")
    rows = list(past.run())
    assert [(o.status, ran) for o, ran in rows] == [("skip", False)] * 3
    assert all("not reached: the run's budget (1 s)" in o.message for o, _ in rows)
    # a fold whose stored outcome answers the job is read back even then
    run_fold(jobs[0])
    answered = Scheduler(
        jobs,
        range(3),
        deadline=time.time() - 1,
        answered=lambda j: j.n_trials if j.fold == 0 else None,
    )
    statuses = {o.fold: o.status for o, _ in answered.run()}
    assert statuses == {0: "done", 1: "skip", 2: "skip"}
    assert np.isfinite(next(o for o, _ in answered.run() if o.fold == 0).metrics["accuracy"])


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


def test_each_round_replans_the_trials_of_the_folds_left(tmp_path: Path) -> None:
    jobs = [replace(fold_job(tmp_path, n_trials=1), fold=f, study_name=f"r{f}") for f in range(3)]
    asked: list[tuple[list[int], bool]] = []

    def replan(pending, seconds_left):
        asked.append(([j.fold for j in pending], 0 < seconds_left <= 3600))
        return [2] * len(pending)  # more time than planned: more trials for what is left

    scheduler = Scheduler(jobs, range(3), deadline=time.time() + 3600, replan=replan)
    done = {o.fold: o for o, _ in scheduler.run()}
    assert asked == [([1, 2], True), ([2], True)]  # once as each later round begins
    assert [done[f].trial_budget for f in range(3)] == [1, 2, 2]
    assert [done[f].n_trials + done[f].n_pruned for f in range(3)] == [1, 2, 2]


def test_raced_folds_the_budget_did_not_reach_end_their_round(tmp_path: Path) -> None:
    """Past the deadline every fold left is a not-reached row, raced pairs' later rounds
    included: the rounds they end are decided, nothing waits on a fold that never runs."""
    base = fold_job(tmp_path, n_trials=1)
    jobs = [
        replace(base, pair=PairKey("s", fam, "kfold"), fold=f, study_name=f"{fam}{f}")
        for f in range(3)
        for fam in ("a", "b")
    ]
    race = Race.of(RacingSettings(alpha=0.05, min_folds=3), {j.pair for j in jobs}, ["kfold"])
    scheduler = Scheduler(jobs, range(6), deadline=time.time() - 1, race=race)
    rows = list(scheduler.run())
    assert len(rows) == 6 and all(o.status == "skip" and not ran for o, ran in rows)
    assert all("not reached" in o.message for o, _ in rows)


def test_the_time_left_is_the_cost_model_of_the_folds_not_finished(tmp_path: Path) -> None:
    """Progress lines say how long is left from the cost model (a CNN fold is not an LDA fold),
    and the figure falls to zero as the folds finish."""
    base = fold_job(tmp_path, n_trials=1)
    jobs = [replace(base, fold=f, study_name=f"left{f}", timeout_s=None) for f in range(3)]
    model = _model(jobs, 10.0)
    per_fold = model.job_seconds(jobs[0])
    assert per_fold >= 10.0
    seen: list[float | None] = []
    scheduler = Scheduler(jobs, range(3), cost=model)
    assert scheduler.seconds_left() == pytest.approx(3 * per_fold)
    for _ in scheduler.run():
        seen.append(scheduler.seconds_left())
    assert seen[-1] == 0.0 and all(a is not None and a >= 0 for a in seen)
    assert Scheduler(jobs, range(3)).seconds_left() is None  # no cost model, no estimate


def test_progress_counts_the_trials_of_the_studies_still_running(tmp_path: Path) -> None:
    """A running study's finished trials count before its fold ends (read from the storage),
    so a long study does not show as no trials for minutes."""
    base = fold_job(tmp_path)
    jobs = [replace(base, fold=f, study_name=f"run{f}", n_trials=n) for f, n in ((0, 2), (1, 3))]
    stored = [run_fold(job) for job in jobs]  # a rerun reads each back without a new trial
    scheduler = Scheduler(jobs, range(2), n_jobs=2)
    assert scheduler.trials_running() == 0  # nothing runs yet
    seen = [(o.fold, scheduler.trials_running()) for o, _ in scheduler.run()]
    # while the first finished fold is handed out, the other one is still running (or waits
    # to be collected): its study's trials are counted; after the last, nothing runs
    other = stored[1 - seen[0][0]]
    assert seen[0][1] == other.n_trials + other.n_pruned > 0
    assert seen[-1][1] == 0
