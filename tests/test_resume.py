"""A run killed with SIGKILL mid-way and started again keeps every finished trial and fold,
redoes only the unfinished one, and ends with exactly the budgeted trials per study."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
from optuna.trial import TrialState

CONFIG = """\
name: k
seed: 1
feature_sets: [csv_30s]
families: [logreg, qda, lda]
protocols:
  artist_kfold: {n_folds: 4}
inner_folds: 2
n_trials: 4
n_jobs: 1
baseline: {feature_set: csv_30s, family: lda}
"""


def _finished_folds(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=1) as con:
            return con.execute(
                "select count(*) from study_user_attributes where key = 'outcome'"
            ).fetchone()[0]
    except sqlite3.OperationalError:  # schema not created yet
        return 0


def _cmd(config: Path, data: Path, results: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "benchmark.cli",
        "run",
        "--config",
        str(config),
        "--data-dir",
        str(data),
        "--results-dir",
        str(results),
        "--no-tracking",
    ]


def test_sigkill_mid_run_then_rerun_loses_and_repeats_nothing(
    fake_gtzan: Path, tmp_path: Path
) -> None:
    config = tmp_path / "k.yaml"
    config.write_text(CONFIG)
    results = tmp_path / "results"
    db = results / "k" / "optuna.db"
    proc = subprocess.Popen(
        _cmd(config, fake_gtzan, results),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    try:
        while _finished_folds(db) < 3 and time.monotonic() < deadline:
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    storage = f"sqlite:///{db}"
    before = {}
    for s in optuna.get_all_study_summaries(storage):
        study = optuna.load_study(study_name=s.study_name, storage=storage)
        before[s.study_name] = (
            "outcome" in study.user_attrs,
            [(t.number, t.state, t.params) for t in study.trials if t.state.is_finished()],
        )
    finished_before = [name for name, (done, _) in before.items() if done]
    assert 3 <= len(finished_before) < 12, "kill the run while work remains"
    assert not (results / "k" / "results.parquet").exists()

    rerun = subprocess.run(
        _cmd(config, fake_gtzan, results), capture_output=True, text=True, timeout=300
    )
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    res = pd.read_parquet(results / "k" / "results.parquet")
    assert len(res) == 12 and set(res["status"]) == {"done"}
    for s in optuna.get_all_study_summaries(storage):
        study = optuna.load_study(study_name=s.study_name, storage=storage)
        finished = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
        assert len(finished) == 4, f"{s.study_name}: {len(finished)} finished trials"
        assert not [t for t in study.trials if t.state == TrialState.RUNNING]
        if s.study_name in before:
            # every trial finished before the kill is still there, unchanged
            kept = [(t.number, t.state, t.params) for t in study.trials if t.state.is_finished()]
            assert before[s.study_name][1] == kept[: len(before[s.study_name][1])]
