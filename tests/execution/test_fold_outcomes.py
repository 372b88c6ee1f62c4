"""Finished folds' outcomes in the results folder: kept whole, read back only when they answer
the job, and only ``done`` ones."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
from helpers import fold_job

from benchmark.execution.fold_outcomes import FoldOutcomes
from benchmark.results import FoldOutcome


def _done(job, trial_budget: int) -> FoldOutcome:
    predictions = pd.DataFrame({"track_id": ["g0.00001"], "y_true": [0], "proba_g0": [0.9]})
    return FoldOutcome(
        job.pair,
        job.fold,
        "done",
        metrics={"accuracy": 0.75},
        params={"C": 0.5},
        trial_budget=trial_budget,
        study_name=job.study_name,
        predictions=predictions,
    )


def test_an_outcome_is_read_back_whole_while_it_answers_the_job(tmp_path: Path) -> None:
    job = fold_job(tmp_path, n_trials=4, name="b:csv_30s:logreg:artist_kfold:fold0:abc")
    store = FoldOutcomes(tmp_path / "bench")
    assert store.get(job) is None and store.count() == 0
    store.put(_done(job, 4))
    assert store.path(job.study_name).name == "b.csv_30s.logreg.artist_kfold.fold0.abc.json"
    back = store.get(job)
    assert back is not None and back.metrics == {"accuracy": 0.75} and back.params == {"C": 0.5}
    pd.testing.assert_frame_equal(back.predictions, _done(job, 4).predictions)
    assert store.get(replace(job, n_trials=8)) is None  # a larger budget: the study goes on
    assert [o.study_name for o in store.all()] == [job.study_name]
    assert not list(store.folder.glob(".*"))  # no temporary file left


def test_an_error_or_a_timeout_is_not_kept(tmp_path: Path) -> None:
    job = fold_job(tmp_path, name="s")
    store = FoldOutcomes(tmp_path / "bench")
    for status in ("error", "timeout"):
        store.put(FoldOutcome(job.pair, job.fold, status, "why", study_name=job.study_name))
    assert store.count() == 0 and store.get(job) is None
