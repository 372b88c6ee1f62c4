"""A run killed with SIGKILL mid-way and started again keeps every finished trial and fold,
redoes only the unfinished one, and ends with exactly the budgeted trials per study."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pandas as pd
from fault_injection import finished_folds, run_command
from optuna.trial import TrialState

from benchmark.execution.fold_outcomes import FoldOutcomes

#: three families, four artist folds (``make_config.file(**KILLED)``)
KILLED = dict(
    name="k",
    families=["logreg", "qda", "lda"],
    protocols={"artist_kfold": {"n_folds": 4}},
    n_trials=4,
)


def _finished_folds(db: Path) -> int:
    return finished_folds(db.parent)


def _cmd(config: Path, data: Path, results: Path) -> list[str]:
    return [*run_command(config, data, results), "--no-tracking"]


def _start(config: Path, data: Path, results: Path) -> subprocess.Popen:
    """``genrebench run`` in its own process group (killed whole or by its main process)."""
    return subprocess.Popen(
        _cmd(config, data, results),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def test_sigkill_mid_run_then_rerun_loses_and_repeats_nothing(
    fake_gtzan: Path, tmp_path: Path, make_config
) -> None:
    config = make_config.file(**KILLED)
    results = tmp_path / "results"
    db = results / "k" / "optuna.db"
    proc = _start(config, fake_gtzan, results)
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
    stored = FoldOutcomes(results / "k")
    assert stored.count() >= 3
    for s in optuna.get_all_study_summaries(storage):
        study = optuna.load_study(study_name=s.study_name, storage=storage)
        before[s.study_name] = (
            stored.path(s.study_name).is_file(),
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
    assert set(res["status"]) == {"done"}
    assert len(res[res["feature_set"] != "ensemble"]) == 12  # and the ensembles over them
    for s in optuna.get_all_study_summaries(storage):
        study = optuna.load_study(study_name=s.study_name, storage=storage)
        finished = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
        assert len(finished) == 4, f"{s.study_name}: {len(finished)} finished trials"
        assert not [t for t in study.trials if t.state == TrialState.RUNNING]
        assert "outcome" not in study.user_attrs  # outcomes live with the results
        if s.study_name in before:
            # every trial finished before the kill is still there, unchanged
            kept = [(t.number, t.state, t.params) for t in study.trials if t.state.is_finished()]
            assert before[s.study_name][1] == kept[: len(before[s.study_name][1])]
    assert stored.count() == 12  # one per fold (the final model's study keeps none)


def _descendants(pid: int) -> set[int]:
    """Live processes below ``pid``: children, theirs, and so on."""
    out, todo = set(), [pid]
    while todo:
        below = _children(todo.pop())
        todo.extend(below - out)
        out |= below
    return out


def _children(pid: int) -> set[int]:
    """Live processes whose parent is ``pid`` (Linux /proc)."""
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.add(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_pool_workers_exit_when_the_run_is_sigkilled(
    fake_gtzan: Path, tmp_path: Path, make_config
) -> None:
    """Killing only the main process (not its group) must not leave the local cluster's
    worker processes running folds nobody will collect, holding the cores
    a restarted run needs."""
    config = make_config.file(**KILLED, n_jobs=2)
    results = tmp_path / "results"
    db = results / "k" / "optuna.db"
    proc = _start(config, fake_gtzan, results)
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        while _finished_folds(db) < 1 and time.monotonic() < deadline:
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.05)
        workers = _descendants(proc.pid)
        assert len(workers) >= 2, "the run has no worker processes"
        proc.kill()
        proc.wait(timeout=30)
        deadline = time.monotonic() + 30
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [w for w in workers if _alive(w)], "workers outlived the killed run"
    finally:
        for w in workers:
            if _alive(w):
                os.kill(w, signal.SIGKILL)
