"""One (pair, outer fold) job: tuning on the training part only, refit, scoring, resume."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import optuna
import pytest
from helpers import fold_job, study_trials
from optuna.trial import TrialState

from benchmark.errors import GenrebenchError
from benchmark.results import PairKey
from benchmark.storage import open_storage
from benchmark.tuning.fold import load_study, run_fold
from benchmark.tuning.job import FoldJob, derive_seed, study_name
from benchmark.tuning.search_space import SearchSpace, load_search_space
from benchmark.tuning.trial_budget import KILLED_ATTR, is_counted, seconds_spent


def test_fold_is_tuned_refit_and_scored_on_every_test_track(tmp_path: Path) -> None:
    job = fold_job(tmp_path)
    out = run_fold(job)
    assert out.status == "done", out.message
    trials = study_trials(job)
    assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials) == 4
    # the first trial is the search space's defaults
    assert trials[0].params == load_search_space("logreg").defaults_for_trial()
    assert set(out.predictions["track_id"]) == set(job.test_tracks)
    assert out.n_test == len(job.test_tracks) and out.coverage == 1.0
    assert out.n_train == len(job.train_tracks)
    assert out.metrics["accuracy"] > 0.5  # learnable problem, chance is 0.25
    assert out.metrics["accuracy"] == pytest.approx(out.predictions["correct"].mean())
    assert 0 < out.inner_accuracy <= 1
    assert (
        out.params
        == optuna.load_study(study_name=job.study_name, storage=job.storage_url).best_params
    )


def test_a_fold_run_again_runs_no_trial_and_refits_the_same_outcome(tmp_path: Path) -> None:
    """(A run reads a finished fold's outcome back from its results folder; run again here,
    the study's kept trials make the same outcome.)"""
    job = fold_job(tmp_path)
    first = run_fold(job)
    n = len(study_trials(job))
    again = run_fold(job)
    assert len(study_trials(job)) == n
    assert again.metrics == first.metrics and again.params == first.params
    assert again.predictions.equals(first.predictions)


def test_a_larger_budget_tops_up_the_same_study(tmp_path: Path) -> None:
    job = fold_job(tmp_path, n_trials=2)
    run_fold(job)
    out = run_fold(replace(job, n_trials=5))
    finished = [t for t in study_trials(job) if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 5 and out.status == "done"


def test_a_resumed_study_counts_the_seconds_its_earlier_trials_ran(tmp_path: Path) -> None:
    job = fold_job(tmp_path, n_trials=3)
    run_fold(job)
    spent = seconds_spent(study_trials(job))
    assert spent > 0
    # its timeout_s was already used up by the first run's trials: nothing more runs
    out = run_fold(replace(job, n_trials=10, timeout_s=spent / 2))
    assert len(study_trials(job)) == 3 and out.status == "done"
    # time left on the clock: the study goes on
    out = run_fold(replace(job, n_trials=5, timeout_s=spent + 600))
    assert len(study_trials(job)) == 5 and out.status == "done"


def test_a_trial_left_running_by_a_killed_run_is_failed_and_replaced(tmp_path: Path) -> None:
    job = fold_job(tmp_path, n_trials=3)
    study = optuna.create_study(
        study_name=job.study_name, storage=job.storage_url, direction="maximize"
    )
    study.ask()  # a trial that a killed process never told
    out = run_fold(job)
    states = [t.state for t in study_trials(job)]
    assert states[0] == TrialState.FAIL
    assert sum(s in (TrialState.COMPLETE, TrialState.PRUNED) for s in states) == 3
    assert out.status == "done"


def _counted(job: FoldJob) -> list[tuple[TrialState, dict, float | None]]:
    return [(t.state, t.params, t.value) for t in study_trials(job) if is_counted(t)]


@pytest.mark.parametrize("killed_at", [0, 2, 5])
def test_a_run_killed_mid_trial_resumes_as_the_uninterrupted_run(
    tmp_path: Path, killed_at: int
) -> None:
    """The trial cut off by a kill (0: the defaults; 5: once the pruner has its start-up
    trials) is run again with its params, every later trial samples what it would have, and
    the killed one counts nowhere."""
    whole = fold_job(tmp_path / "whole", n_trials=7)
    expected = run_fold(whole)
    cut = fold_job(tmp_path / "cut", n_trials=7)
    if killed_at:
        run_fold(replace(cut, n_trials=killed_at))
    study = load_study(cut, open_storage(cut.storage_url))
    if not killed_at:
        study.enqueue_trial(SearchSpace.from_dict(cut.space).defaults_for_trial())
    trial = study.ask()  # the trial the kill cuts off, its params drawn, never told
    SearchSpace.from_dict(cut.space).suggest(trial)
    assert trial.params == _counted(whole)[killed_at][1]
    resumed = run_fold(cut)
    assert _counted(cut) == _counted(whole)
    killed = [t for t in study_trials(cut) if t.system_attrs.get(KILLED_ATTR)]
    assert [t.number for t in killed] == [trial.number] and killed[0].state == TrialState.FAIL
    assert resumed.metrics == expected.metrics and resumed.params == expected.params
    assert resumed.predictions.equals(expected.predictions)
    assert resumed.inner_predictions.equals(expected.inner_predictions)


def test_a_cut_study_models_its_trials_sooner_and_an_uncut_one_samples_as_before(
    tmp_path: Path,
) -> None:
    """Trial 2 of a 3-trial study cut from 30 planned comes from TPE's model (start-up 1, the
    defaults), not from the random start a 30-trial study draws it from; a study that runs its
    planned trials samples exactly as one with nothing planned apart (the unbudgeted run)."""
    asis = _counted(_finished(fold_job(tmp_path / "asis", n_trials=3)))
    planned = _counted(
        _finished(replace(fold_job(tmp_path / "planned", n_trials=3), planned_trials=3))
    )
    cut = _counted(_finished(replace(fold_job(tmp_path / "cut", n_trials=3), planned_trials=30)))
    assert planned == asis
    assert cut[0] == asis[0]  # the defaults
    assert cut[1][1] != asis[1][1]
    sampler = load_study(
        replace(fold_job(tmp_path / "x", n_trials=3), planned_trials=30),
        open_storage(f"sqlite:///{tmp_path / 'x' / 'optuna.db'}"),
    ).sampler
    assert sampler.n_startup_trials == 1


def _finished(job: FoldJob) -> FoldJob:
    assert run_fold(job).status == "done"
    return job


def test_same_seed_same_result_in_a_fresh_storage(tmp_path: Path) -> None:
    a = run_fold(fold_job(tmp_path / "a", family="lightgbm", n_trials=3))
    b = run_fold(fold_job(tmp_path / "b", family="lightgbm", n_trials=3))
    assert a.params == b.params and a.metrics == b.metrics


def test_a_search_seed_searches_again_on_the_same_folds_and_models(tmp_path: Path) -> None:
    job = fold_job(tmp_path / "a", n_trials=4)
    base = study_trials(_finished(job))
    same = study_trials(
        _finished(replace(fold_job(tmp_path / "b", n_trials=4), search_seed=job.seed))
    )
    other = study_trials(_finished(replace(fold_job(tmp_path / "c", n_trials=4), search_seed=7)))
    assert [t.params for t in same] == [t.params for t in base]  # its own seed: as before
    # the first trial is the defaults in every search; the sampled ones differ
    assert other[0].params == base[0].params
    assert [t.params for t in other[1:]] != [t.params for t in base[1:]]
    assert [t.params for t in other[1:]] != [t.params for t in same[1:]]


def test_segments_are_scored_per_track_by_mean_and_vote(tmp_path: Path) -> None:
    job = fold_job(tmp_path, segments=3, n_trials=2)
    out = run_fold(job)
    assert len(out.predictions) == len(job.test_tracks)  # one row per track, not per segment
    assert not np.isnan(out.metrics["accuracy_vote"])
    assert out.n_test == len(job.test_tracks)


def test_fixed_baseline_is_refit_without_trials(tmp_path: Path) -> None:
    job = fold_job(tmp_path, family="dummy")
    out = run_fold(job)
    assert out.status == "done" and out.n_trials == 0 and out.params == {}
    assert study_trials(job) == []


def test_zero_trials_refits_the_defaults_without_inner_cv(tmp_path: Path) -> None:
    """n_trials 0 is the untuned reference: one fit of the defaults per outer fold."""
    job = fold_job(tmp_path, family="logreg", n_trials=0)
    out = run_fold(job)
    assert out.status == "done", out.message
    assert out.params == load_search_space("logreg").defaults_for_trial()
    assert out.n_trials == 0 and np.isnan(out.inner_accuracy)
    assert not study_trials(job)
    assert set(out.predictions["track_id"]) == set(job.test_tracks)


def test_inner_folds_touching_the_test_part_are_refused(tmp_path: Path) -> None:
    job = fold_job(tmp_path)
    a, b = job.inner_splits[0]
    leaky = replace(job, inner_splits=[(a, np.concatenate([b, job.test_tracks[:1]]))])
    with pytest.raises(GenrebenchError, match="outside the outer training part"):
        run_fold(leaky)
    overlap = replace(job, train_tracks=np.concatenate([job.train_tracks, job.test_tracks[:2]]))
    with pytest.raises(GenrebenchError, match="both sides"):
        run_fold(overlap)


def test_a_failing_fold_becomes_an_error_outcome(tmp_path: Path) -> None:
    job = replace(fold_job(tmp_path), test_tracks=np.array(["g0.99999"]), fail_fast=False)
    out = run_fold(job)
    assert out.status == "error" and "no rows" in out.message


def test_study_names_and_seeds_are_deterministic() -> None:
    pair = PairKey("csv_30s", "logreg", "artist_kfold")
    assert study_name("quick", pair, 3, "abc") == "quick:csv_30s:logreg:artist_kfold:fold3:abc"
    assert derive_seed(0, "x") == derive_seed(0, "x") != derive_seed(1, "x")
    assert 0 <= derive_seed(5, "a", 1) < 2**31


def test_a_fold_whose_trials_all_failed_is_retried_by_the_next_run(tmp_path: Path) -> None:
    """Every trial failing (here: NaN features) gives an error row, not a stored outcome; once
    the cause is gone, the next run tunes the same study with fresh attempts."""
    good = replace(fold_job(tmp_path), fail_fast=False)
    broken = replace(good, X=np.full_like(good.X, np.nan))
    first = run_fold(broken)
    assert first.status == "error" and "every trial failed" in first.message
    failed = study_trials(good)
    assert failed and all(t.state == TrialState.FAIL for t in failed)
    second = run_fold(good)
    assert second.status == "done", second.message
    trials = study_trials(good)
    assert sum(t.state == TrialState.COMPLETE for t in trials) == good.n_trials
    assert [t.number for t in trials[: len(failed)]] == [t.number for t in failed]  # kept
