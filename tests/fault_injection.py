"""Kill ``genrebench run`` anywhere, resume it, and compare with an uninterrupted run: the
harness of ``tests/integration/test_kill_anywhere.py`` and ``benchmarks/kill_resume.py``.

A run is killed as a user's machine would kill it: SIGKILL to its whole process group (the
joblib workers die with it), at an instant chosen by a :class:`Trigger`. What must match
between a resumed and an uninterrupted run is :func:`fingerprint`: the results and predictions
tables (timings aside), every counted trial of every study, and the MLflow runs.

Predict's pool workers are killed from inside: :func:`dying_extract` is the per-file extraction
of :func:`benchmark.inference.pipeline.run_pipeline` except that on one named file the worker
process exits at once or segfaults, as a crashing decoder would; :func:`dying_start`, put in
place of the pool's worker initializer, makes every worker die as it starts.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from fake_gtzan import FEATURE_COLUMNS, make_fake_gtzan

from benchmark.tuning.trial_budget import counted_trials

__all__ = [
    "CONFIG",
    "NAME",
    "Trigger",
    "differences",
    "dying_extract",
    "dying_start",
    "hanging_extract",
    "marked_extract",
    "fingerprint",
    "finished_folds",
    "running_trials",
    "make_data",
    "run_command",
    "run_killed",
    "run_to_end",
]

NAME = "kr"
#: two pairs (knn fails on some params: failed trials too), two artist-grouped folds, enough
#: trials for the pruner's start-up, two processes, the ensembles, MLflow and the export
CONFIG = f"""\
name: {NAME}
seed: 3
feature_sets: [csv_30s]
families: [knn, lda]
protocols:
  artist_kfold: {{n_folds: 2}}
inner_folds: 2
n_trials: 6
n_jobs: 2
baseline: {{feature_set: csv_30s, family: lda}}
"""
#: columns of results.parquet that measure time, the only ones a resume may change
TIMING = ("tune_s", "fit_s", "predict_s")
_REPO = Path(__file__).resolve().parent.parent


def make_data(root: Path, noise: float = 2.5) -> Path:
    """The fake GTZAN features with enough noise that params matter (accuracy well below 1,
    so the best trial of a study is not a tie of perfect ones)."""
    make_fake_gtzan(root, with_csv_3s=False, with_images=False)
    csv = root / "features_30_sec.csv"
    frame = pd.read_csv(csv)
    cols = list(FEATURE_COLUMNS)
    rng = np.random.default_rng(7)
    spread = frame[cols].std(ddof=0).to_numpy() + 1e-9
    frame[cols] = frame[cols].to_numpy() + rng.normal(0.0, noise, (len(frame), len(cols))) * spread
    frame.to_csv(csv, index=False)
    return root


def run_command(config: Path, data: Path, results: Path) -> list[str]:
    """``genrebench run`` of this checkout (``-m``, so the package under test runs)."""
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
    ]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_REPO), env.get("PYTHONPATH")) if p)
    return env


def finished_folds(bench: Path) -> int:
    """Folds whose outcome the run stored in its results folder (0 before the first)."""
    # imported here: the predict tests import this module in a fresh process that must not
    # load scikit-learn (benchmark.execution does) before the pipeline decides to fork
    from benchmark.execution.fold_outcomes import FoldOutcomes

    return FoldOutcomes(bench).count()


def running_trials(bench: Path) -> int | None:
    """Trials stored as RUNNING in the Optuna file; None when it cannot be read just now (not
    created yet, or locked by a writer)."""
    db = bench / "optuna.db"
    if not db.exists():
        return None
    try:
        with sqlite3.connect(db, timeout=0.2) as con:
            sql = "select count(*) from trials where state = 'RUNNING'"
            return int(con.execute(sql).fetchone()[0])
    except sqlite3.Error:
        return None


def _newer(path: Path, since: float) -> bool:
    try:
        return path.stat().st_mtime >= since
    except OSError:
        return False


@dataclass(frozen=True)
class Trigger:
    """Kill ``delay_s`` after ``when(benchmark folder, attempt start)`` first holds.

    With ``confirm``, the process group is first frozen (SIGSTOP) and killed only if
    ``confirm(benchmark folder)`` still holds while nothing can move; otherwise it is let go
    (SIGCONT) and watched again. That is how a kill lands inside a trial however short the
    trials are on the machine at hand: a fixed delay after an event misses them on a fast one.
    """

    name: str
    when: Callable[[Path, float], bool]
    delay_s: float = 0.0
    confirm: Callable[[Path], bool] | None = None

    @classmethod
    def after(cls, seconds: float) -> Trigger:
        return cls(f"{seconds:.2f} s after start", lambda _b, _t: True, seconds)

    @classmethod
    def folds(cls, n: int, delay_s: float = 0.3) -> Trigger:
        return cls(f"{n} folds done + {delay_s} s", lambda b, _t: finished_folds(b) >= n, delay_s)

    @classmethod
    def mid_trial(cls, after_folds: int = 0) -> Trigger:
        """While a trial is RUNNING (after ``after_folds`` folds are done)."""

        def running(b: Path, _t: float = 0.0) -> bool:
            return finished_folds(b) >= after_folds and (running_trials(b) or 0) > 0

        return cls(f"mid trial after {after_folds} folds", running, 0.0, confirm=running)

    @classmethod
    def wrote(cls, name: str, delay_s: float = 0.0) -> Trigger:
        """Once this attempt (re)wrote ``name`` in the benchmark folder."""
        return cls(f"{name} written + {delay_s} s", lambda b, t: _newer(b / name, t), delay_s)


def run_killed(cmd: list[str], bench: Path, trigger: Trigger, timeout_s: float = 300) -> bool:
    """Start ``cmd`` in its own process group and SIGKILL the group at ``trigger``; False
    when the run ended first (nothing was killed)."""
    started = time.time()
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=_env(),
    )
    deadline = time.monotonic() + timeout_s
    try:
        while not _reached(trigger, proc, bench, started):
            if proc.poll() is not None:
                return False
            if time.monotonic() > deadline:
                raise TimeoutError(f"{trigger.name}: not reached in {timeout_s} s")
            time.sleep(0.005 if trigger.confirm else 0.02)
        end = time.monotonic() + trigger.delay_s
        while time.monotonic() < end:
            if proc.poll() is not None:
                return False
            time.sleep(0.01)
        return proc.poll() is None
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)


def _reached(trigger: Trigger, proc: subprocess.Popen[bytes], bench: Path, started: float) -> bool:
    """``trigger.when`` holds (and, with ``confirm``, still holds with the group frozen: then
    the group is left frozen for the kill)."""
    if not trigger.when(bench, started):
        return False
    if trigger.confirm is None:
        return True
    if proc.poll() is not None:
        return False
    os.killpg(proc.pid, signal.SIGSTOP)
    if trigger.confirm(bench):
        return True
    os.killpg(proc.pid, signal.SIGCONT)
    return False


def run_to_end(cmd: list[str], timeout_s: float = 600) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` to its end; raises with its last output when it fails."""
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=_env())
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd[3:5])} failed:\n{done.stderr[-3000:]}")
    return done


def _mlflow_runs(db: Path) -> pd.DataFrame:
    """Active MLflow runs by kind, study and status. The final model's run is left out: every
    ``run`` that reaches the export registers a new version, killed or not."""
    sql = """
        select kind.value as kind, coalesce(study.value, '') as study, r.status, count(*) as n
        from runs r
        join tags kind on kind.run_uuid = r.run_uuid and kind.key = 'genrebench.kind'
        left join tags study on study.run_uuid = r.run_uuid and study.key = 'genrebench.study'
        where r.lifecycle_stage = 'active' and kind.value != 'final_model'
        group by 1, 2, 3 order by 1, 2, 3
    """
    with sqlite3.connect(db) as con:
        return pd.read_sql_query(sql, con)


def fingerprint(bench: Path) -> dict[str, Any]:
    """What a resumed run must share with an uninterrupted one."""
    results = pd.read_parquet(bench / "results.parquet").drop(columns=list(TIMING))
    storage = f"sqlite:///{bench / 'optuna.db'}"
    trials = {
        name: [(t.state.name, t.params, t.value) for t in counted_trials(storage, name)]
        for name in sorted(results["study_name"].dropna().astype(str).unique())
        if name
    }
    return {
        "results.parquet": results,
        "predictions.parquet": pd.read_parquet(bench / "predictions.parquet"),
        "inner_predictions.parquet": pd.read_parquet(bench / "inner_predictions.parquet"),
        "counted trials per study": {name: len(ts) for name, ts in trials.items()},
        "counted trials (state, params, value)": trials,
        "MLflow runs (kind, study, status, n)": _mlflow_runs(bench / "mlflow.db"),
    }


def differences(expected: dict[str, Any], got: dict[str, Any]) -> list[str]:
    """The names of the parts of two fingerprints that differ."""
    out = []
    for key, want in expected.items():
        have = got.get(key)
        same = want.equals(have) if isinstance(want, pd.DataFrame) else want == have
        if not same:
            out.append(key)
    return out


def dying_extract(name: str, how: str, specs: Any, path: str, windows: bool) -> Any:
    """:func:`benchmark.inference.pipeline.extract_file`, except that on the file called ``name``
    the process dies: ``how="exit"`` (``os._exit``) or ``"segfault"`` (reads address 0). Bind
    the first two with :func:`functools.partial` (picklable: a pool worker imports this)."""
    from benchmark.inference.pipeline import extract_file

    if Path(path).name == name:
        if how == "segfault":
            import ctypes
            import faulthandler

            faulthandler.disable()  # no traceback dump: just the crash
            ctypes.string_at(0)
        os._exit(70)
    return extract_file(specs, path, windows)


def hanging_extract(name: str, specs: Any, path: str, windows: bool) -> Any:
    """:func:`benchmark.inference.pipeline.extract_file`, except that on the file called ``name``
    the worker never returns (a decoder stuck in a loop). Bind ``name`` with
    :func:`functools.partial`."""
    from benchmark.inference.pipeline import extract_file

    if Path(path).name == name:
        time.sleep(3600)
    return extract_file(specs, path, windows)


def marked_extract(specs: Any, path: str, windows: bool) -> Any:
    """An extraction that only reports which process ran it and whether that process inherited
    this one's memory (``benchmark.inference.pipeline._test_mark``, set by the test before the
    pool starts: a forked worker has it, a fork server's child does not), as the file's error
    row."""
    from benchmark.inference import pipeline as predict_pipeline
    from benchmark.inference.pipeline import ExtractionError

    mark = getattr(predict_pipeline, "_test_mark", None)
    return ExtractionError(f"mark={mark} pid={os.getpid()}")


def dying_start() -> None:
    """A pool worker initializer that exits at once: no worker of the pool ever starts."""
    os._exit(71)
