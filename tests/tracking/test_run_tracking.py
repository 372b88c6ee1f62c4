"""What a user finds in MLflow and optuna-dashboard after a real ``genrebench run`` (a small one,
on the generated GTZAN folder), read back from the real SQLite stores: every run ended, ensemble
runs with their folds, pair runs with the mean and spread as main metrics, the registered
version described and crowned, every study's objective named; and an interrupted run leaves its
runs KILLED, never RUNNING."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner
from mlflow import MlflowClient

from benchmark.cli import main
from benchmark.execution.local import plan_and_run
from benchmark.execution.plan import RunOptions
from benchmark.storage import default_storage_url, default_tracking_uri

#: two families on the 30 s CSV, two artist-grouped folds: pairs, three ensembles, a final model
CONFIG = {"name": "mlf", "protocols": {"artist_kfold": {"n_folds": 2}}}


@pytest.fixture(scope="module")
def finished(fake_gtzan: Path, tmp_path_factory: pytest.TempPathFactory, make_config) -> Path:
    """``genrebench run`` to its end (the export and its registration included)."""
    results = tmp_path_factory.mktemp("mlflow-run")
    config = make_config.file(**CONFIG)
    args = ["run", "--config", str(config), "--data-dir", str(fake_gtzan)]
    res = CliRunner().invoke(main, [*args, "--results-dir", str(results)])
    assert res.exit_code == 0, res.output
    assert "registered: models:/genrebench-mlf/1" in " ".join(res.output.split()), res.output
    return results / "mlf"


def _client(results_dir: Path) -> tuple[MlflowClient, str]:
    client = MlflowClient(default_tracking_uri(results_dir))
    exp = client.get_experiment_by_name(results_dir.name)
    assert exp is not None
    return client, exp.experiment_id


def _runs(client: MlflowClient, experiment_id: str, where: str = "") -> list:
    return client.search_runs([experiment_id], where, max_results=5000)


def _parents(client: MlflowClient, experiment_id: str) -> dict[str, object]:
    kind = "tags.`genrebench.kind` = 'pair'"
    return {r.info.run_name: r for r in _runs(client, experiment_id, kind)}


def test_no_run_is_left_running(finished: Path) -> None:
    client, exp = _client(finished)
    runs = _runs(client, exp)
    assert len(runs) > 10
    assert {r.info.status for r in runs} <= {"FINISHED", "FAILED", "KILLED"}
    assert all(r.info.end_time for r in runs)


def test_ensemble_runs_have_per_fold_metrics_and_confusion_matrices(finished: Path) -> None:
    client, exp = _client(finished)
    parents = _parents(client, exp)
    ensembles = {name: r for name, r in parents.items() if name.startswith("ensemble · ")}
    assert set(ensembles) == {
        f"ensemble · {m} · artist_kfold" for m in ("greedy", "stacking", "top_k")
    }
    for name, run in ensembles.items():
        history = client.get_metric_history(run.info.run_id, "fold_accuracy")
        assert sorted(m.step for m in history) == [0, 1], name
        for k in (0, 1):
            files = {
                Path(f.path).name for f in client.list_artifacts(run.info.run_id, f"folds/fold_{k}")
            }
            assert {"confusion_matrix.csv", "confusion_matrix.png", "predictions.csv"} <= files
        assert run.info.status == "FINISHED" and run.data.tags["folds"] == "2/2"
        assert 0 <= run.data.metrics["accuracy_mean"] <= 1


def test_pair_runs_lead_with_mean_and_spread_and_hide_bookkeeping(finished: Path) -> None:
    import pandas as pd

    client, exp = _client(finished)
    results = pd.read_parquet(finished / "results.parquet")
    for name, run in _parents(client, exp).items():
        fs, fam, proto = name.split(" · ")
        rows = results[(results["feature_set"] == fs) & (results["family"] == fam)]
        metrics = run.data.metrics
        assert metrics["accuracy_mean"] == pytest.approx(rows["accuracy"].mean()), name
        assert metrics["accuracy_std"] == pytest.approx(rows["accuracy"].std(ddof=1)), name
        assert "accuracy" not in metrics
        visible = [k for k in run.data.tags if not k.startswith("mlflow.")]
        assert not [k for k in visible if k.startswith(("genrebench.fold_", "fold_"))], visible
        (dataset,) = client.get_run(run.info.run_id).inputs.dataset_inputs
        assert dataset.dataset.digest == rows["data_checksum"].iloc[0]


def test_registered_version_is_described_and_is_the_champion(finished: Path) -> None:
    client, _ = _client(finished)
    version = client.get_model_version_by_alias("genrebench-mlf", "champion")
    assert str(version.version) == "1"
    assert "genrebench final model of benchmark mlf" in version.description
    assert "artist_kfold cross-validated accuracy" in version.description
    run = client.get_run(version.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["selected_by"] == "artist_kfold"
    assert 0 <= run.data.metrics["selection_accuracy"] <= 1


def test_every_study_names_its_objective_and_what_it_tunes(finished: Path) -> None:
    storage = default_storage_url(finished)
    summaries = optuna.get_all_study_summaries(storage)
    assert len(summaries) == 2 * 2 + 1  # two pairs x two folds, and the final model's study
    for summary in summaries:
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        assert study.metric_names == ["inner_cv_accuracy"], summary.study_name
        attrs = study.user_attrs
        assert attrs["pair"] in ("csv_30s · logreg", "csv_30s · lda")
        assert attrs["budget"] == "2 trials"
        assert (attrs["protocol"], attrs["fold"]) in {
            ("artist_kfold", 0),
            ("artist_kfold", 1),
            ("final model (every track)", "none (every track)"),
        }


def _assert_killed_not_running(results_dir: Path) -> dict[str, str]:
    client, exp = _client(results_dir)
    runs = _runs(client, exp)
    statuses = {r.info.run_name: r.info.status for r in runs}
    assert runs and "RUNNING" not in statuses.values(), statuses
    return {r.info.run_name: r.info.status for r in _parents(client, exp).values()}


def test_an_interrupted_run_leaves_its_runs_killed(
    fake_gtzan: Path, tmp_path: Path, make_config
) -> None:
    cfg = make_config(**{**CONFIG, "name": "stop"})
    opts = RunOptions(data_dir=str(fake_gtzan), results_root=tmp_path)

    def interrupt(outcome: object) -> None:  # Ctrl-C once the first fold is in
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        plan_and_run(cfg, opts, on_outcome=interrupt)
    status = _assert_killed_not_running(tmp_path / "stop")
    assert set(status.values()) == {"KILLED"}  # its fold logged, the pair's other fold undone
    plan_and_run(cfg, opts)  # the next run resumes and ends every run
    status = _assert_killed_not_running(tmp_path / "stop")
    assert set(status.values()) == {"FINISHED"}


def _wait_for_a_logged_run(db: Path, timeout_s: float = 120.0) -> None:
    """Until the run's MLflow store holds a run (its logging of the first fold began), so the
    signal lands on a benchmark with runs to end; bounded, fails the test when it never comes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
                if con.execute("SELECT COUNT(*) FROM runs").fetchone()[0] > 0:
                    return
        except sqlite3.Error:  # not created yet, or its tables not yet
            pass
        time.sleep(0.2)
    pytest.fail(f"no MLflow run was logged in {db} within {timeout_s:.0f} s")


def test_sigterm_stops_genrebench_run_with_its_runs_killed(
    fake_gtzan: Path, tmp_path: Path, make_config
) -> None:
    """A ``kill`` of ``genrebench run`` in a process of its own, once a fold is logged."""
    config = make_config.file(**{**CONFIG, "name": "term", "n_trials": 6})
    # mlflow.set_tracking_uri (the export of the fixture's run) exports MLFLOW_TRACKING_URI
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    cmd = [sys.executable, "-m", "benchmark.cli", "run", "--config", str(config)]
    cmd += ["--data-dir", str(fake_gtzan), "--results-dir", str(tmp_path), "--no-export"]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:  # FoldLog prints a line per fold when not on a terminal
            lines.append(line)
            if " fold 0: done" in line:
                break
        else:
            pytest.fail("no fold finished:\n" + "".join(lines))
        _wait_for_a_logged_run(tmp_path / "term" / "mlflow.db")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, "".join(lines) + out
    assert "interrupted" in out
    _assert_killed_not_running(tmp_path / "term")
