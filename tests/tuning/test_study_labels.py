"""What optuna-dashboard shows of a study: the objective's name and readable attributes, set
without changing a trial (the sampler does not read them)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import optuna
from helpers import fold_job

from benchmark.tuning.fold import run_fold


def test_a_study_names_its_objective_and_says_what_it_tunes(tmp_path: Path) -> None:
    job = fold_job(tmp_path, n_trials=3)
    outcome = run_fold(job)
    study = optuna.load_study(study_name=job.study_name, storage=job.storage_url)
    assert study.metric_names == ["inner_cv_accuracy"]
    attrs = study.user_attrs
    assert {k: attrs[k] for k in ("pair", "protocol", "fold", "budget")} == {
        "pair": "synthetic · logreg",
        "protocol": "holdout",
        "fold": 0,
        "budget": "3 trials",
    }
    # a rerun with a larger budget says so; the fold's outcome is kept with the results
    # (benchmark.execution.fold_outcomes), never on the study
    run_fold(replace(job, n_trials=4))
    attrs = optuna.load_study(study_name=job.study_name, storage=job.storage_url).user_attrs
    assert attrs["budget"] == "4 trials" and "outcome" not in attrs
    assert outcome.status == "done"
