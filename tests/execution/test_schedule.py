"""The scheduler: dispatch order, deadlines, re-planning each round, raced folds, the time left
and the trials of the studies still running."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from helpers import cost_model, fold_job, pair_jobs, study_trials

from benchmark.config import RacingSettings
from benchmark.execution.racing import Race
from benchmark.execution.schedule import Scheduler, dispatch_order
from benchmark.execution.time_budget import TuningValue, late_gain
from benchmark.results import PairKey
from benchmark.storage import open_storage
from benchmark.tuning.fold import inner_scores, run_fold


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


def test_dispatch_goes_round_by_round_longest_first(tmp_path: Path) -> None:
    jobs = pair_jobs(tmp_path, (1, 0), (("a", 1), ("b", 9)))
    model = cost_model(jobs, 1.0)
    order = [(jobs[i].fold, jobs[i].pair.family) for i in dispatch_order(jobs, model)]
    assert order == [(0, "b"), (0, "a"), (1, "b"), (1, "a")]


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
    model = cost_model(jobs, 10.0)
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


def test_a_rerun_whose_every_fold_is_stored_measures_no_cost(
    fake_gtzan: Path, tmp_path: Path, make_config
) -> None:
    """With two processes the schedule measures every pair's cost before the first run; once
    every fold is stored it measures none (a rerun plans nothing), and a missing fold brings
    the measurement back."""
    import pandas as pd

    from benchmark.data import Dataset
    from benchmark.execution.local import plan_and_run
    from benchmark.execution.plan import RunOptions, make_plan
    from benchmark.execution.schedule import make_schedule
    from benchmark.results import write_table

    cfg = make_config(
        name="sched", families=["logreg", "dummy"], protocols={"artist_kfold": {"n_folds": 2}},
        baseline={"feature_set": "csv_30s", "family": "dummy"}, ensembles=False, n_jobs=2,
    )  # fmt: skip
    opts = RunOptions(data_dir=str(fake_gtzan), results_root=tmp_path, track=False)
    results_dir = tmp_path / "sched"
    ds = Dataset.open(fake_gtzan)
    url = f"sqlite:///{results_dir}/optuna.db"
    first = make_schedule(cfg, make_plan(cfg, ds, opts, url), results_dir, started_at=time.time())
    assert first.scheduler.cost is not None and first.scheduler.cost.fits
    plan_and_run(cfg, opts)
    again = make_schedule(cfg, make_plan(cfg, ds, opts, url), results_dir, started_at=time.time())
    assert again.scheduler.cost is None
    results = pd.read_parquet(results_dir / "results.parquet")
    write_table(results.iloc[1:], results_dir / "results.parquet")  # one fold not stored
    partial = make_schedule(cfg, make_plan(cfg, ds, opts, url), results_dir, started_at=time.time())
    assert partial.scheduler.cost is not None
