"""A benchmark killed anywhere (SIGKILL to its process group: start-up, store creation, mid
trial, ensembles, report, export) and resumed each time ends as the uninterrupted run ends:
same results and predictions, same counted trials, same MLflow runs (issue 17)."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

from fault_injection import (
    CONFIG,
    NAME,
    Trigger,
    differences,
    fingerprint,
    make_data,
    run_command,
    run_killed,
    run_to_end,
)

from benchmark.tuning.trial_budget import KILLED_ATTR

#: thirteen instants over a run's life; each attempt resumes what the ones before it left
TRIGGERS = (
    Trigger.after(0.5),  # interpreter and imports
    Trigger.after(2.0),
    Trigger.after(4.0),  # stores being created
    Trigger.after(7.0),  # the plan, the process pool, the first trials
    Trigger.mid_trial(),  # a trial RUNNING, the group frozen to be sure of it, then killed
    Trigger.folds(1),  # just after a fold's outcome was stored
    Trigger.mid_trial(after_folds=2),
    Trigger.folds(3),
    Trigger.folds(4, delay_s=0.0),  # MLflow logging of the last folds, the tables
    Trigger.wrote("results.parquet"),  # ensembles
    Trigger.wrote("results.parquet", delay_s=1.0),  # MLflow summaries, run.json
    Trigger.wrote("leaderboard.html"),  # export: the final model's study
    Trigger.wrote("final_model/model.json", delay_s=0.2),  # registration in MLflow
)


def test_a_run_killed_a_dozen_times_ends_as_the_uninterrupted_run(tmp_path: Path) -> None:
    data = make_data(tmp_path / "gtzan")
    config = tmp_path / f"{NAME}.yaml"
    config.write_text(CONFIG)
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    reference = subprocess.Popen(
        run_command(config, data, whole), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        killed = [run_killed(run_command(config, data, cut), cut / NAME, t) for t in TRIGGERS]
        run_to_end(run_command(config, data, cut))
    finally:
        assert reference.wait(timeout=600) == 0
    assert sum(killed) >= len(TRIGGERS) - 2, f"only {sum(killed)} attempts were killed"
    with sqlite3.connect(cut / NAME / "optuna.db") as con:
        sql = "select count(*) from trial_system_attributes where key = ?"
        assert con.execute(sql, (KILLED_ATTR,)).fetchone()[0] >= 1, "no trial was cut off"
    expected, got = fingerprint(whole / NAME), fingerprint(cut / NAME)
    assert expected["results.parquet"]["status"].eq("done").all()
    assert differences(expected, got) == []
