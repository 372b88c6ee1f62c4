"""The Dask engine on one machine: a LocalCluster runs fold jobs as tasks, with each feature
matrix sent once, and gives the outcomes a single process gives; a remote cluster with a local
SQLite storage is refused before any work."""

from __future__ import annotations

import urllib.request
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd
import pytest
from helpers import fold_job

from benchmark.errors import ConfigError
from benchmark.execution.cluster import (
    DaskExecutor,
    _Arrays,
    refuse_local_storage,
    scheduler_address,
    task_key,
)
from benchmark.execution.schedule import Scheduler
from benchmark.tuning.fold import run_fold


def test_a_local_cluster_gives_the_outcomes_of_one_process(tmp_path: Path) -> None:
    base = replace(fold_job(tmp_path / "dask", n_trials=3), pruner="none")
    jobs = [replace(base, fold=f, study_name=f"c{f}") for f in range(3)]
    executor = DaskExecutor(n_jobs=2)
    try:
        outcomes = [executor.submit(j).result(timeout=300) for j in jobs]
        # the three jobs share one feature matrix: it went to the cluster once
        assert len(executor._sent) == 1
        workers = executor.client.scheduler_info(n_workers=-1)["workers"]
        assert [w["nthreads"] for w in workers.values()] == [1, 1]
        assert all(urlsplit(a).hostname == "127.0.0.1" for a in workers)  # loopback only
        # the live view whose URL the run prints and `genrebench status` shows: served, on
        # loopback too
        link = executor._dashboard()
        assert urlsplit(link).hostname == "127.0.0.1", link
        with urllib.request.urlopen(link, timeout=60) as page:
            assert page.status == 200 and b"dask" in page.read().lower()
    finally:
        executor.shutdown()
    alone = [run_fold(replace(j, storage_url=f"sqlite:///{tmp_path / 'one.db'}")) for j in jobs]
    for a, b in zip(outcomes, alone, strict=True):
        assert (a.status, a.params, a.metrics, a.n_trials) == (b.status, b.params, b.metrics, 3)
        pd.testing.assert_frame_equal(a.predictions, b.predictions)


def test_the_scheduler_starts_no_cluster_when_nothing_must_run(tmp_path: Path, monkeypatch) -> None:
    """A rerun whose every fold is answered reads them back in this process."""
    job = fold_job(tmp_path, n_trials=2)
    jobs = [replace(job, fold=f, study_name=f"s{f}") for f in range(2)]
    for j in jobs:
        run_fold(j)
    monkeypatch.setattr(DaskExecutor, "_start", lambda self: pytest.fail("a cluster started"))
    scheduler = Scheduler(jobs, range(2), n_jobs=2, answered=lambda j: 2)
    assert [o.status for o, _ in scheduler.run()] == ["done", "done"]


def test_task_keys_tell_jobs_and_budgets_apart(tmp_path: Path) -> None:
    job = fold_job(tmp_path, n_trials=2)
    assert task_key(job) != task_key(replace(job, n_trials=3))
    assert task_key(job) != task_key(replace(job, study_name="other"))


def test_addresses_and_a_remote_cluster_with_a_local_sqlite_file(monkeypatch) -> None:
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    assert scheduler_address(None) is None
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tls://10.0.0.2:8786")
    assert scheduler_address(None) == "tls://10.0.0.2:8786"
    assert scheduler_address("tcp://h:8786") == "tcp://h:8786"
    with pytest.raises(ConfigError, match="expected tcp://host:8786"):
        scheduler_address("h:8786")
    with pytest.raises(ConfigError, match="cannot reach a local SQLite storage"):
        refuse_local_storage("tcp://h:8786", "sqlite:////tmp/optuna.db")
    refuse_local_storage(None, "sqlite:////tmp/optuna.db")  # a LocalCluster shares the disk
    refuse_local_storage("tcp://h:8786", "postgresql+psycopg://u@h/db")


def test_a_task_whose_arrays_were_lost_is_sent_again_and_finishes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The arrays on one worker only, that worker restarted empty before the task runs: the
    scheduler cancels the task (lost dependencies) and the executor sends it again, under a key
    of its own (the client answers a key it still holds with the cancelled task), with the arrays
    sent again: the fold's outcome is the one a single process gives."""
    job = replace(fold_job(tmp_path / "lost", n_trials=2), pruner="none", study_name="lost")
    executor = DaskExecutor(n_jobs=2)
    try:
        client = executor.client
        holder = sorted(client.scheduler_info(n_workers=-1)["workers"])[0]
        arrays = _Arrays(job.X, job.row_track, job.y, job.row_copy)
        executor._sent[id(job.X)] = client.scatter(arrays, hash=False, workers=[holder])
        client.restart_workers([holder])  # its memory, and the only copy, are gone
        with caplog.at_level("WARNING", logger="benchmark.execution.cluster"):
            outcome = executor.submit(job).result(timeout=300)
    finally:
        executor.shutdown()
    assert "its data was lost with a worker; sent again" in caplog.text
    alone = run_fold(replace(job, storage_url=f"sqlite:///{tmp_path / 'one.db'}"))
    assert (outcome.status, outcome.params, outcome.metrics) == (
        alone.status,
        alone.params,
        alone.metrics,
    )
