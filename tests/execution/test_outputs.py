"""The results files a run writes from its fold outcomes (:mod:`benchmark.execution.outputs`),
on real tuned folds: results, predictions, inner predictions and the counted trials, read from
the Optuna storage once so that no later stage needs it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import optuna
import pandas as pd
import pytest
from helpers import fold_job
from optuna.trial import TrialState

from benchmark.execution.outputs import write_outcome_files, write_trials_file
from benchmark.results import FoldOutcome, PairKey, read_table
from benchmark.storage import open_storage
from benchmark.tuning.fold import run_fold
from benchmark.tuning.trial_budget import SURPLUS_ATTR

CONTEXT = {
    "benchmark": "t",
    "dataset": "gtzan",
    "seed": 0,
    "config_digest": "d",
    "data_checksum": "c",
}


@pytest.fixture(scope="module")
def folds(tmp_path_factory: pytest.TempPathFactory):
    """Two tuned folds of one study storage and a skipped pair (no study)."""
    tmp = tmp_path_factory.mktemp("outputs")
    base = fold_job(tmp, n_trials=3)
    jobs = [replace(base, fold=f, study_name=f"out{f}") for f in range(2)]
    outcomes = [run_fold(j) for j in jobs]
    skip = FoldOutcome(PairKey("synthetic", "lda", "holdout"), -1, "skip", "no such file")
    return jobs, [*outcomes, skip]


def test_the_files_hold_every_outcome_and_its_counted_trials(folds, tmp_path: Path) -> None:
    jobs, outcomes = folds
    results, predictions = write_outcome_files(tmp_path, outcomes, CONTEXT, jobs[0].storage_url)
    names = {"results", "predictions", "inner_predictions", "trials"}
    assert {p.stem for p in tmp_path.glob("*.parquet")} == names
    pd.testing.assert_frame_equal(read_table(tmp_path / "results.parquet"), results)
    pd.testing.assert_frame_equal(read_table(tmp_path / "predictions.parquet"), predictions)
    assert results["status"].tolist() == ["skip", "done", "done"]  # sorted by pair and fold
    assert (results["benchmark"] == "t").all() and (results["data_checksum"] == "c").all()
    assert len(predictions) == sum(len(j.test_tracks) for j in jobs)
    assert sorted(predictions["track_id"]) == sorted(t for j in jobs for t in j.test_tracks)
    assert len(read_table(tmp_path / "inner_predictions.parquet")) > 0
    trials = read_table(tmp_path / "trials.parquet")
    assert trials.groupby("study_name").size().to_dict() == {"out0": 3, "out1": 3}
    done = results[results["status"] == "done"]
    assert (done["n_trials"] + done["n_pruned"]).tolist() == [3, 3]


def test_the_trials_file_is_rebuilt_from_the_results_table_without_surplus_trials(
    folds, tmp_path: Path
) -> None:
    """``genrebench status --write`` has only the results folder and the storage: the trials
    file it writes is the run's, and a trial ended unrun as surplus is in neither."""
    jobs, outcomes = folds
    write_outcome_files(tmp_path, outcomes, CONTEXT, open_storage(jobs[0].storage_url))
    first = read_table(tmp_path / "trials.parquet")
    study = optuna.load_study(study_name="out0", storage=jobs[0].storage_url)
    surplus = study.ask()
    study._storage.set_trial_system_attr(surplus._trial_id, SURPLUS_ATTR, True)
    study.tell(surplus, state=TrialState.FAIL)
    (tmp_path / "trials.parquet").unlink()
    assert write_trials_file(tmp_path, jobs[0].storage_url) == tmp_path / "trials.parquet"
    pd.testing.assert_frame_equal(read_table(tmp_path / "trials.parquet"), first)
    assert len(study.get_trials()) == 4
