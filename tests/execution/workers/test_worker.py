"""Many ``genrebench worker`` processes on one benchmark in a throwaway PostgreSQL on 127.0.0.1:
the trial budget is global, every (pair, fold) is scored once, a worker killed with SIGKILL
mid-trial loses nothing, and a worker with other data, or a bad URL, gets one clear line;
then, on journal files, an unreachable tracking server and the benchmark's budget.

The PostgreSQL tests start their own cluster (``tests/devcluster.py``) and skip when the
PostgreSQL binaries are absent (CI installs them).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from devcluster import LocalPostgres, free_port, pg_bin_dir
from helpers import JOURNAL, journal_options
from optuna.trial import TrialState

from benchmark.cli import main
from benchmark.config import load_config
from benchmark.execution.local import plan_and_run
from benchmark.execution.plan import RunOptions
from benchmark.execution.workers.worker import run_worker
from benchmark.trial_count import SURPLUS_ATTR, WORKER_ATTR

TESTS = Path(__file__).resolve().parents[2]
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)

#: the shared benchmark: two families, two artist folds (``make_config.file(**SHARED)``)
SHARED = dict(
    name="w",
    seed=5,
    families=["logreg", "dummy"],
    protocols={"artist_kfold": {"n_folds": 2}},
    n_trials=4,
    baseline={"feature_set": "csv_30s", "family": "logreg"},
)

#: the benchmark a worker is killed in: two families on the test split
KILLED = dict(name="k", seed=2, protocols={"fault_filtered": {}}, n_trials=5)

#: one line per fold a worker scored (benchmark.cli.worker prints it)
SCORED = re.compile(r"^(\S+) · (\S+) · (\S+) fold (\d+): (done|error|timeout)", re.M)


@pytest.fixture(scope="module")
def pg():
    if pg_bin_dir() is None:
        reason = "PostgreSQL is not installed (no initdb): apt-get install -y postgresql"
        if os.environ.get("GENREBENCH_REQUIRE_POSTGRES"):  # CI installs it: never skip there
            pytest.fail(reason)
        pytest.skip(reason)
    cluster = LocalPostgres.start(databases=())
    yield cluster
    cluster.stop()


def _database(pg: LocalPostgres, name: str) -> str:
    pg.create_database(name)
    return pg.url(name)


def _worker(tmp: Path, config: Path, data: Path, url: str, name: str, *extra: str, slow=None):
    script = [str(TESTS / "slow_worker.py")] if slow else ["-m", "benchmark.cli"]
    cmd = [
        sys.executable,
        *script,
        "worker",
        "--config",
        str(config),
        "--data-dir",
        str(data),
        "--results-dir",
        str(tmp / f"results-{name}"),
        "--storage",
        url,
        "--name",
        name,
        *extra,
    ]
    env = dict(os.environ, COLUMNS="200", SLOW_FIT_S=str(slow or 0))
    log = open(tmp / f"{name}.log", "w")  # noqa: SIM115 (closed by _wait)
    proc = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    proc.log = log  # type: ignore[attr-defined]
    return proc


def _wait(procs, timeout: float) -> None:
    """Wait for the processes; kill (and reap) whatever still runs after ``timeout``."""
    deadline = time.monotonic() + timeout
    try:
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                break
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
            p.log.close()


def _studies(url: str) -> dict[str, list[optuna.trial.FrozenTrial]]:
    storage = optuna.storages.RDBStorage(url)
    return {s.study_name: storage.get_all_trials(s._study_id) for s in storage.get_all_studies()}


@pytest.fixture(scope="module")
def shared_run(pg, fake_gtzan, tmp_path_factory, make_config):
    """Three workers on one benchmark (MLflow in one SQLite file), and the same benchmark run
    by one ``genrebench run`` process."""
    tmp = tmp_path_factory.mktemp("workers")
    config = make_config.file(**SHARED)
    url = _database(pg, "shared")
    mlflow_uri = f"sqlite:///{tmp / 'mlflow.db'}"
    names = ["w0", "w1", "w2"]
    procs = [
        _worker(
            tmp,
            config,
            fake_gtzan,
            url,
            name,
            "--tracking-uri",
            mlflow_uri,
            "--heartbeat",
            "1",
            "--grace",
            "10",
        )
        for name in names
    ]
    _wait(procs, timeout=150)
    outputs = {name: (tmp / f"{name}.log").read_text() for name in names}
    for p, name in zip(procs, names, strict=True):
        assert p.returncode == 0, f"{name}:\n{outputs[name][-3000:]}"
    single = plan_and_run(
        load_config(str(config)),
        RunOptions(data_dir=str(fake_gtzan), results_root=tmp / "single"),
    )
    return tmp, url, mlflow_uri, outputs, single


def test_workers_run_each_budget_once_and_score_each_fold_once(shared_run) -> None:
    tmp, url, _, outputs, single = shared_run
    studies = _studies(url)
    assert len(studies) == 4  # 2 families x 2 folds
    for name, trials in studies.items():
        counted = [t for t in trials if not t.system_attrs.get(SURPLUS_ATTR)]
        finished = [t for t in counted if t.state in FINISHED]
        expected = 0 if ":dummy:" in name else 4
        assert len(finished) == expected, name
        assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
        assert all(t.system_attrs.get(WORKER_ATTR) for t in trials)
    scored = Counter(
        m.group(0).split(":")[0] for text in outputs.values() for m in SCORED.finditer(text)
    )
    assert len(scored) == 4 and set(scored.values()) == {1}, scored


def test_workers_give_the_results_of_one_process(shared_run) -> None:
    tmp, url, _, outputs, single = shared_run
    assembled = [
        name for name in outputs if (tmp / f"results-{name}" / "w" / "results.parquet").is_file()
    ]
    assert len(assembled) == 1, "exactly one worker assembles the results"
    folder = tmp / f"results-{assembled[0]}" / "w"
    mine = pd.read_parquet(folder / "results.parquet")
    ref = single.results
    assert list(mine.columns) == list(ref.columns)
    key = ["feature_set", "family", "protocol", "fold", "status", "n_test", "study_name"]
    pd.testing.assert_frame_equal(mine[key], ref[key])
    assert (mine["n_trials"] + mine["n_pruned"]).tolist() == (
        ref["n_trials"] + ref["n_pruned"]
    ).tolist()
    preds = pd.read_parquet(folder / "predictions.parquet")
    assert len(preds) == len(single.predictions)
    assert set(preds.columns) == set(single.predictions.columns)
    splits = pd.read_parquet(folder / "splits.parquet")
    ref_splits = pd.read_parquet(single.results_dir / "splits.parquet")
    pd.testing.assert_frame_equal(splits.astype(str), ref_splits.astype(str))
    # a study that one worker ran alone is exactly the one-process study
    studies = _studies(url)
    for row in mine[mine["feature_set"] != "ensemble"].itertuples():  # ensembles have no study
        workers = {t.system_attrs.get(WORKER_ATTR) for t in studies[row.study_name]}
        if len(workers) == 1:
            ref_row = ref[ref["study_name"] == row.study_name].iloc[0]
            assert row.params == ref_row["params"]
            assert row.accuracy == pytest.approx(ref_row["accuracy"])


def test_workers_log_to_mlflow_like_one_process(shared_run) -> None:
    from mlflow import MlflowClient

    tmp, _, mlflow_uri, _, single = shared_run

    def runs(uri: str) -> tuple[dict[str, int], dict[str, float]]:
        client = MlflowClient(uri)
        exp = client.get_experiment_by_name("w")
        all_runs = client.search_runs([exp.experiment_id], max_results=5000)
        parents = {r.info.run_id: r for r in all_runs if "mlflow.parentRunId" not in r.data.tags}
        children = Counter(
            parents[r.data.tags["mlflow.parentRunId"]].info.run_name
            for r in all_runs
            if r.data.tags.get("mlflow.parentRunId") in parents
            and r.info.status in ("FINISHED", "KILLED")
        )
        accuracy = {r.info.run_name: r.data.metrics.get("accuracy_mean") for r in parents.values()}
        assert len(accuracy) == len(parents), "one parent run per pair"
        return dict(children), accuracy

    children, accuracy = runs(mlflow_uri)
    ref_children, ref_accuracy = runs(f"sqlite:///{single.results_dir / 'mlflow.db'}")
    assert children == ref_children == {"csv_30s · logreg · artist_kfold": 8}
    assert set(accuracy) == set(ref_accuracy) and all(v is not None for v in accuracy.values())


def test_status_shows_progress_and_writes_tables_for_the_report(shared_run, tmp_path) -> None:
    from benchmark.report import write_report

    _, url, _, _, single = shared_run
    res = CliRunner().invoke(main, ["status", "--storage", url])
    assert res.exit_code == 0, res.output
    assert "4/4 folds finished, 8/8 trials" in res.output
    assert "results assembled" in res.output
    for name in ("w0", "w1", "w2"):  # all three joined and ended normally
        assert re.search(rf"worker {name} on .*: finished", res.output), res.output
    res = CliRunner().invoke(
        main, ["status", "--storage", url, "--write", "--results-dir", str(tmp_path)]
    )
    assert res.exit_code == 0, res.output
    written = pd.read_parquet(tmp_path / "w" / "results.parquet")
    assert len(written) == len(single.results)
    page = write_report(tmp_path / "w")
    assert "csv_30s" in page.read_text()


def test_a_worker_with_other_data_refuses_to_join(
    shared_run, fake_gtzan, tmp_path, make_config
) -> None:
    _, url, *_ = shared_run
    other = tmp_path / "gtzan"
    shutil.copytree(fake_gtzan, other)
    csv = other / "features_30_sec.csv"
    csv.write_text(csv.read_text().replace("blues.00000.wav,661794,", "blues.00000.wav,661795,"))
    res = CliRunner().invoke(
        main,
        [
            "worker",
            "--config",
            str(make_config.file(**SHARED)),
            "--data-dir",
            str(other),
            "--storage",
            url,
            "--results-dir",
            str(tmp_path / "r"),
            "--no-tracking",
        ],
    )
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1, res.output
    assert "refusing to join benchmark 'w'" in lines[0] and "data checksum" in lines[0]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql+psycopg://bench:s3cret@127.0.0.1:{port}/nope", "cannot open the Optuna"),
        ("mysql://bench:s3cret@127.0.0.1:{port}/nope", "database driver not installed"),
        ("nosuchdb://bench:s3cret@somewhere/x", "cannot open the Optuna storage"),
    ],
)
def test_a_bad_storage_url_is_one_clear_line(url: str, expected: str, tmp_path) -> None:
    url = url.format(port=free_port())  # nothing listens there
    for args in (
        [
            "worker",
            "--config",
            "smoke",
            "--storage",
            url,
            "--no-tracking",
            "--results-dir",
            str(tmp_path),
        ],
        ["status", "--storage", url],
    ):
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 2, res.output
        lines = [line for line in res.output.splitlines() if line.strip()]
        assert len(lines) == 1, res.output
        assert expected in lines[0] and "s3cret" not in lines[0] and "***" in lines[0]


def _running_trial_of(url: str, worker: str) -> tuple[str, int] | None:
    engine = sa.create_engine(url)
    try:
        if not sa.inspect(engine).has_table("trial_system_attributes"):
            return None  # the workers have not created the schema yet
        with engine.connect() as c:
            row = c.execute(
                sa.text(
                    "SELECT s.study_name, t.number FROM trials t "
                    "JOIN studies s ON s.study_id = t.study_id "
                    "JOIN trial_system_attributes a ON a.trial_id = t.trial_id "
                    "WHERE t.state = 'RUNNING' AND a.key = :key AND a.value_json = :worker "
                    # its params are set and no inner fold is reported yet: it is in its first
                    # fit, which takes SLOW_FIT_S more
                    "AND EXISTS (SELECT 1 FROM trial_params p WHERE p.trial_id = t.trial_id) "
                    "AND NOT EXISTS (SELECT 1 FROM trial_intermediate_values v "
                    "WHERE v.trial_id = t.trial_id)"
                ),
                {"key": WORKER_ATTR, "worker": f'"{worker}"'},
            ).first()
    finally:
        engine.dispose()
    return (row[0], int(row[1])) if row else None


def test_a_worker_killed_mid_trial_loses_nothing(pg, fake_gtzan, tmp_path, make_config) -> None:
    config = make_config.file(**KILLED)
    url = _database(pg, "killed")
    flags = ("--no-tracking", "--heartbeat", "1", "--grace", "3")
    victim = _worker(tmp_path, config, fake_gtzan, url, "victim", *flags, slow=0.3)
    survivor = _worker(tmp_path, config, fake_gtzan, url, "survivor", *flags, slow=0.3)
    deadline = time.monotonic() + 90
    killed = None
    try:
        while killed is None and time.monotonic() < deadline:
            assert victim.poll() is None, (tmp_path / "victim.log").read_text()[-2000:]
            killed = _running_trial_of(url, "victim")
            time.sleep(0.05)
        assert killed is not None, "the victim never ran a trial"
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait()
        # it died mid-trial: the trial is left RUNNING
        study, number = killed
        assert _studies(url)[study][number].state == TrialState.RUNNING
        _wait([survivor], timeout=120)
    finally:
        _wait([victim, survivor], timeout=0)
    out = (tmp_path / "survivor.log").read_text()
    assert survivor.returncode == 0, out[-3000:]

    studies = _studies(url)
    trials = studies[study]
    assert trials[number].state == TrialState.FAIL
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == number]
    assert len(retries) == 1 and retries[0].state in FINISHED
    assert retries[0].params == trials[number].params
    for name, trials in studies.items():
        counted = [t for t in trials if not t.system_attrs.get(SURPLUS_ATTR)]
        assert sum(t.state in FINISHED for t in counted) == 5, name
        assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    res = pd.read_parquet(tmp_path / "results-survivor" / "k" / "results.parquet")
    res = res[res["feature_set"] != "ensemble"]
    assert len(res) == 2 and set(res["status"]) == {"done"}
    assert (res["n_trials"] + res["n_pruned"]).eq(5).all()
    # every fold scored once: by the survivor, or by the victim before it died
    victim_out = (tmp_path / "victim.log").read_text()
    scored = [m.group(2) for text in (out, victim_out) for m in SCORED.finditer(text)]
    assert sorted(scored) == ["lda", "logreg"]


def test_an_unreachable_tracking_server_is_one_clear_line(
    fake_gtzan, tmp_path, make_config
) -> None:
    config = make_config.file(**JOURNAL)
    res = CliRunner().invoke(
        main,
        [
            "worker",
            "--config",
            str(config),
            "--data-dir",
            str(fake_gtzan),
            "--results-dir",
            str(tmp_path),
            "--tracking-uri",
            f"http://user:s3cret@127.0.0.1:{free_port()}",
        ],
    )
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot open the MLflow tracking store" in lines[0], res.output
    assert "s3cret" not in lines[0]


def test_workers_stop_at_the_benchmarks_budget(fake_gtzan, tmp_path, make_config) -> None:
    """The budget is the benchmark's (stored with it by the first worker, counted from the
    benchmark's creation): no fold starts after it ends, and each says so in its row."""
    cfg = make_config(**{**JOURNAL, "name": "jb", "budget": 0.001})
    summary = run_worker(cfg, journal_options(fake_gtzan, tmp_path, "jb"))
    res = summary.finalized.results
    assert res["status"].tolist() == ["skip"]
    assert res["message"].iloc[0].startswith("not reached: the run's budget")
