"""A real cluster on loopback: ``dask scheduler`` and two ``genrebench worker`` processes (Dask
workers started in an empty folder, without ``GENREBENCH_DATA``), PostgreSQL for the studies,
and ``genrebench run --scheduler`` as its own process. It gives the rows of a local run; so it
does when a worker is SIGKILLed mid-run (none duplicated), and when the client is SIGKILLed
mid-run and started again.

PostgreSQL is a throwaway cluster (``tests/devcluster.py``); without it the module skips,
unless ``GENREBENCH_REQUIRE_POSTGRES`` is set (CI), where it fails.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from devcluster import LocalPostgres, free_port, pg_bin_dir
from helpers import run_local

from benchmark.execution.fold_outcomes import FoldOutcomes

#: both kinds of input a worker gets from the client: a table and images
CLUSTER_CONFIG = dict(
    name="dc",
    seed=4,
    feature_sets=["csv_30s", "spectrogram_img"],
    families=["logreg", "lda"],
    protocols={"artist_kfold": {"n_folds": 3}},
    n_trials=2,
    ensembles=False,
    baseline={"feature_set": "csv_30s", "family": "lda"},
)
TIMINGS = ["tune_s", "fit_s", "predict_s"]
KEY = ["feature_set", "family", "protocol", "fold"]


@pytest.fixture(scope="module")
def pg() -> Iterator[LocalPostgres]:
    if pg_bin_dir() is None:
        reason = "PostgreSQL is not installed (no initdb): apt-get install -y postgresql"
        if os.environ.get("GENREBENCH_REQUIRE_POSTGRES"):  # CI installs it: never skip there
            pytest.fail(reason)
        pytest.skip(reason)
    cluster = LocalPostgres.start(databases=())
    yield cluster
    cluster.stop()


def _wait(what: str, done, timeout_s: float = 90.0, poll_s: float = 0.2) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout_s:.0f} s for {what}")
        time.sleep(poll_s)


def _stop(proc: subprocess.Popen) -> None:
    """Kill ``proc``'s whole process group (a worker's nanny and its worker process)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def _worker_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "GENREBENCH_DATA"}
    package = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package, env.get("PYTHONPATH")]))
    return env


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A scheduler and two workers on 127.0.0.1, as separate OS processes; always torn down."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    empty = tmp_path_factory.mktemp("worker-cwd")  # no data, no configs, no repository
    procs: list[subprocess.Popen] = []
    try:
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_scheduler"]
                + ["--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
        for i in range(2):
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "benchmark.cli", "worker", address]
                    + ["--name", f"w{i}", "--no-dashboard", "--death-timeout", "60"],
                    cwd=empty,
                    env=_worker_env(),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
        _wait("two workers", lambda: _n_workers(address) == 2, timeout_s=120, poll_s=1)
        yield address
    finally:
        for proc in reversed(procs):
            _stop(proc)


def _n_workers(address: str) -> int:
    from distributed import Client

    try:
        with Client(address, timeout="5s") as client:
            return len(client.scheduler_info(n_workers=-1)["workers"])
    except OSError:
        return 0


def _run(config: Path, data: Path, results: Path, url: str, address: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "benchmark.cli", "run", "--config", str(config)]
        + ["--data-dir", str(data), "--results-dir", str(results), "--storage", url]
        + ["--scheduler", address, "--no-tracking", "--no-export"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _rows(results: Path) -> pd.DataFrame:
    rows = pd.read_parquet(results / "dc" / "results.parquet").drop(columns=TIMINGS)
    return rows.sort_values(KEY).reset_index(drop=True)


@pytest.fixture(scope="module")
def local_rows(fake_gtzan: Path, make_config, tmp_path_factory) -> pd.DataFrame:
    results = tmp_path_factory.mktemp("local")
    run_local(make_config(**CLUSTER_CONFIG), fake_gtzan, results)
    return _rows(results)


def _finish(proc: subprocess.Popen, timeout_s: float = 300) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    finally:
        _stop(proc)
    assert proc.returncode == 0, out[-3000:]
    return out


def test_a_run_on_the_cluster_gives_the_rows_of_a_local_run(
    cluster: str, pg: LocalPostgres, fake_gtzan: Path, make_config, tmp_path: Path, local_rows
) -> None:
    pg.create_database("dc_plain")
    config = make_config.file(**CLUSTER_CONFIG)
    out = _finish(_run(config, fake_gtzan, tmp_path, pg.url("dc_plain"), cluster))
    assert f"fold jobs run on {cluster}" in out
    rows = _rows(tmp_path)
    # the workers had no dataset: the client sent the table's and the images' arrays
    assert set(rows["feature_set"]) == {"csv_30s", "spectrogram_img"}
    assert set(rows["status"]) == {"done"}
    pd.testing.assert_frame_equal(rows, local_rows)


def _started(database: str, cluster: str, pg, data: Path, make_config, tmp_path: Path):
    """A run on the cluster (its studies in a new database), once its first fold is stored:
    the process, its stored folds, and the config and storage to start it again with."""
    pg.create_database(database)
    config, url = make_config.file(**CLUSTER_CONFIG), pg.url(database)
    proc = _run(config, data, tmp_path, url, cluster)
    stored = FoldOutcomes(tmp_path / "dc")
    try:
        _wait("a first fold", lambda: stored.count() >= 1 or proc.poll() is not None, 240)
    except BaseException:
        _stop(proc)
        raise
    return proc, stored, (config, url)


def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(
    cluster: str, pg: LocalPostgres, fake_gtzan: Path, make_config, tmp_path: Path, local_rows
) -> None:
    proc, stored, _ = _started("dc_worker", cluster, pg, fake_gtzan, make_config, tmp_path)
    try:
        victim = _busy_worker_process()
        assert victim is not None and proc.poll() is None, "no fold running to kill"
        os.kill(victim, signal.SIGKILL)  # its nanny starts a fresh one; the task runs again
    except BaseException:
        _stop(proc)
        raise
    _finish(proc)
    rows = _rows(tmp_path)
    assert not rows.duplicated(KEY).any()
    pd.testing.assert_frame_equal(rows, local_rows)


def test_a_client_killed_mid_run_and_started_again_gives_the_same_rows(
    cluster: str, pg: LocalPostgres, fake_gtzan: Path, make_config, tmp_path: Path, local_rows
) -> None:
    proc, stored, (config, url) = _started(
        "dc_client", cluster, pg, fake_gtzan, make_config, tmp_path
    )
    assert proc.poll() is None, "the run ended before it could be killed"
    _stop(proc)
    kept = stored.count()
    assert 1 <= kept < 12
    _finish(_run(config, fake_gtzan, tmp_path, url, cluster))
    assert stored.count() == 12
    pd.testing.assert_frame_equal(_rows(tmp_path), local_rows)


def _busy_worker_process() -> int | None:
    """The pid of a Dask worker process (a nanny's child) now running a fold task, found by
    its name in ``/proc``: the nanny's child runs ``from multiprocessing.spawn``."""
    for stat in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            cmd = stat.read_bytes().split(b"\0")
        except OSError:
            continue
        if any(b"multiprocessing.spawn" in c for c in cmd) and _parent_is_worker(stat.parent):
            return int(stat.parent.name)
    return None


def _parent_is_worker(proc: Path) -> bool:
    try:
        ppid = (proc / "stat").read_text().rsplit(")", 1)[1].split()[1]
        parent = Path(f"/proc/{ppid}/cmdline").read_bytes()
    except (OSError, IndexError):
        return False
    return b"benchmark.cli\0worker" in parent or b"dask_worker" in parent
