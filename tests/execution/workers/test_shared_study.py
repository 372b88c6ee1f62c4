"""The pieces workers coordinate with, on SQLite and journal files (no server needed): claims
that expire, the global trial budget, the retry of a dead worker's trial, a journal-file
benchmark, and ``genrebench run`` refusing a storage that workers share."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest
from helpers import fold_job, journal_options
from optuna.trial import TrialState

from benchmark.config import load_config
from benchmark.errors import GenrebenchError
from benchmark.execution.local import plan_and_run
from benchmark.execution.plan import RunOptions
from benchmark.execution.workers.assembly import assemble_results
from benchmark.execution.workers.file_board import FileBoard
from benchmark.execution.workers.shared_study import help_study, run_fold_shared
from benchmark.execution.workers.sql_board import SqlBoard
from benchmark.execution.workers.status import progress
from benchmark.execution.workers.worker import run_worker
from benchmark.search_space import SearchSpace
from benchmark.storage import open_storage
from benchmark.trial_count import (
    SURPLUS_ATTR,
    WORKER_ATTR,
    Shared,
    budget_of,
    reap_trials,
    run_trial,
)
from benchmark.tuning import inner_cv_objective, load_study

# the tests ask() trials by hand, as Optuna's heartbeat warns against (the workers do not)
pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage")


@pytest.fixture(params=["sql", "file"])
def board(request, tmp_path: Path):
    if request.param == "sql":
        b = SqlBoard(f"sqlite:///{tmp_path / 'board.db'}")
    else:
        b = FileBoard(tmp_path / "journal.log.genrebench.json")
    yield b
    b.close()


def test_a_claim_is_held_once_and_taken_over_when_its_holder_falls_silent(board) -> None:
    assert board.claim("b", "fold:1", "A", grace_s=0.4)
    assert not board.claim("b", "fold:1", "B", grace_s=0.4)
    assert board.claim("b", "fold:1", "A", grace_s=0.4)  # already ours
    board.beat("b", "A")
    time.sleep(0.6)  # A stops beating
    assert board.claim("b", "fold:1", "B", grace_s=0.4)
    assert not board.holds("b", "fold:1", "A")  # A may not write any more
    assert not board.finish("b", "fold:1", "A", "done")
    assert board.finish("b", "fold:1", "B", "done")
    row = board.claims("b")["fold:1"]
    assert row.done and row.worker == "B" and row.status == "done"
    assert not board.claim("b", "fold:1", "C", grace_s=0.0)  # done is done
    assert board.claims("other") == {}


def test_a_leaving_worker_releases_its_claims_and_locks_exclude(board) -> None:
    board.register_worker("b", "A", "host", 1, {})
    assert board.claim("b", "fold:2", "A", grace_s=60)
    board.end_worker("b", "A", "stopped")
    assert board.claim("b", "fold:2", "B", grace_s=60)  # at once, no grace to wait
    assert [w.state for w in board.workers("b")] == ["stopped"]
    with board.lock("b", "x", "A", grace_s=60):
        with pytest.raises(TimeoutError):
            with board.lock("b", "x", "B", grace_s=60, timeout_s=0.2):
                pass
    with board.lock("b", "x", "B", grace_s=60, timeout_s=1):
        pass


def test_the_first_benchmark_record_wins(board) -> None:
    first, created = board.register_benchmark("q", {"data_checksum": "a"}, {"jobs": [1, 2]})
    again, created_again = board.register_benchmark("q", {"data_checksum": "b"}, {"jobs": []})
    assert created and not created_again
    assert again.identity == {"data_checksum": "a"} and again.manifest == {"jobs": [1, 2]}
    assert board.benchmarks() == ["q"]


def _shared(job, worker: str = "me", alive=lambda w: True) -> Shared:
    storage = open_storage(job.storage_url, heartbeat_interval=1, grace_period=2)
    return Shared(worker, storage, lambda study: reap_trials(study, alive, 60), poll_s=0.05)


def test_a_trial_beyond_the_global_budget_is_surplus_and_counts_nowhere(tmp_path) -> None:
    job = fold_job(tmp_path, n_trials=2)
    shared = _shared(job)
    study = load_study(job, shared.storage)
    for _ in range(2):  # two trials other workers are running
        study.ask()
    objective = inner_cv_objective(job, SearchSpace.from_dict(job.space))
    state = run_trial(study, shared.storage, objective, job.n_trials, shared)
    trials = study.get_trials()
    assert state == TrialState.FAIL and trials[-1].system_attrs[SURPLUS_ATTR] is True
    assert trials[-1].system_attrs[WORKER_ATTR] == "me"
    budget = budget_of(trials, 2)
    assert (budget.finished, budget.running, budget.attempts, budget.open_slots) == (0, 2, 2, 0)
    assert not help_study(job, shared)  # no room for a helper either


def test_a_dead_workers_trial_is_failed_and_retried_with_its_params(tmp_path) -> None:
    job = fold_job(tmp_path, n_trials=3)
    shared = _shared(job, alive=lambda w: w != "gone")
    study = load_study(job, shared.storage)
    trial = study.ask()
    SearchSpace.from_dict(job.space).suggest(trial)
    shared.storage.set_trial_system_attr(trial._trial_id, WORKER_ATTR, "gone")
    assert reap_trials(study, lambda w: w != "gone", 60) == 1
    trials = study.get_trials()
    assert trials[0].state == TrialState.FAIL
    assert trials[1].state == TrialState.WAITING and trials[1].params == trials[0].params
    out, fresh = run_fold_shared(job, shared)
    trials = study.get_trials()
    assert out.status == "done" and fresh
    assert trials[1].state in (TrialState.COMPLETE, TrialState.PRUNED)  # the retry ran
    assert budget_of(trials, 3).finished == 3 and budget_of(trials, 3).attempts == 3


JOURNAL_CONFIG = """\
name: j
seed: 1
feature_sets: [csv_30s]
families: [logreg]
protocols:
  fault_filtered: {}
inner_folds: 2
n_trials: 3
n_jobs: 1
baseline: {feature_set: csv_30s, family: logreg}
"""


def test_workers_on_a_journal_file(fake_gtzan, tmp_path) -> None:
    (tmp_path / "j.yaml").write_text(JOURNAL_CONFIG)
    cfg = load_config(str(tmp_path / "j.yaml"))
    opts = journal_options(fake_gtzan, tmp_path, "j")
    url = opts.storage_url
    summary = run_worker(cfg, opts)
    assert summary.complete and len(summary.evaluated) == 1
    res = summary.finalized.results
    assert len(res) == 1 and res["status"].tolist() == ["done"]
    assert (res["n_trials"] + res["n_pruned"]).tolist() == [3]
    prog = progress(url)
    assert (prog.folds_done, prog.trials_finished, prog.finalized) == (1, 3, True)
    again = run_worker(cfg, opts)  # a late worker finds nothing to do
    assert again.evaluated == [] and again.complete and again.finalized is None
    result, pending = assemble_results(url, None, tmp_path / "elsewhere")
    assert pending == 0
    pd.testing.assert_frame_equal(result.results, res)


def test_run_refuses_a_storage_that_live_workers_share(fake_gtzan, tmp_path) -> None:
    (tmp_path / "j.yaml").write_text(JOURNAL_CONFIG)
    cfg = load_config(str(tmp_path / "j.yaml"))
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    board = SqlBoard(url)
    board.register_worker("j", "elsewhere", "host", 1, {})
    board.close()
    opts = RunOptions(
        data_dir=str(fake_gtzan), results_root=tmp_path / "r", storage_url=url, track=False
    )
    with pytest.raises(GenrebenchError, match="worker\\(s\\) are running benchmark 'j'"):
        plan_and_run(cfg, opts)


def test_an_unreachable_tracking_server_is_one_clear_line(fake_gtzan, tmp_path) -> None:
    from click.testing import CliRunner
    from devcluster import free_port

    from benchmark.cli import main

    (tmp_path / "j.yaml").write_text(JOURNAL_CONFIG)
    res = CliRunner().invoke(
        main,
        [
            "worker",
            "--config",
            str(tmp_path / "j.yaml"),
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


def _compose_value(arg: object) -> str:
    """``${NAME:-default}`` as docker compose substitutes it with NAME unset."""
    import re

    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(arg))


def test_docker_compose_runs_commands_genrebench_and_mlflow_accept() -> None:
    """No Docker engine here: check instead that the compose file's commands parse with the
    real CLIs and that the image holds every folder genrebench reads at run time."""
    import subprocess
    import sys

    import yaml

    from benchmark.cli import main
    from benchmark.paths import project_root

    root = project_root()
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "mlflow", "worker"} <= set(services)
    worker = [_compose_value(a) for a in services["worker"]["command"]]
    assert worker[0] == "worker"
    group = main.make_context("genrebench", list(worker))
    sub = main.get_command(group, worker[0])
    ctx = sub.make_context(worker[0], worker[1:])  # raises on an unknown or malformed option
    assert ctx.params["config_name"] == "quick" and ctx.params["data_dir"] == "/data"
    storage = services["worker"]["environment"]["GENREBENCH_STORAGE"]
    assert _compose_value(storage).startswith("postgresql+psycopg://genrebench:")

    mlflow = services["mlflow"]
    assert mlflow["entrypoint"] == ["mlflow", "server"]
    usage = subprocess.run(
        [sys.executable, "-m", "mlflow", "server", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    flags = [a for a in mlflow["command"] if str(a).startswith("--")]
    assert flags and all(f in usage for f in flags), [f for f in flags if f not in usage]

    dockerfile = (root / "Dockerfile").read_text()
    copied = {line.split()[1] for line in dockerfile.splitlines() if line.startswith("COPY")}
    assert {"benchmark", "configs", "search_spaces", "datasets"} <= copied
    for folder in ("configs", "search_spaces", "datasets"):
        assert (root / folder).is_dir()


def test_workers_stop_at_the_benchmarks_budget(fake_gtzan, tmp_path) -> None:
    """The budget is the benchmark's (stored with it by the first worker, counted from the
    benchmark's creation): no fold starts after it ends, and each says so in its row."""
    config = JOURNAL_CONFIG.replace("name: j", "name: jb") + "budget: 0.001\n"
    (tmp_path / "jb.yaml").write_text(config)
    cfg = load_config(str(tmp_path / "jb.yaml"))
    summary = run_worker(cfg, journal_options(fake_gtzan, tmp_path, "jb"))
    res = summary.finalized.results
    assert res["status"].tolist() == ["skip"]
    assert res["message"].iloc[0].startswith("not reached: the run's budget")


def test_the_code_version_hashes_every_module_that_changes_results(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Workers that join a benchmark must run the same code; a module renamed out of the hashed
    list would let two code versions mix rows silently, so a missing name is an error."""
    import benchmark
    import benchmark.execution.workers.identity as worker

    version = worker.code_version()
    assert version.startswith(f"{benchmark.__version__}+")
    monkeypatch.setattr(worker, "RESULT_CODE", (*worker.RESULT_CODE, "protocol.py"))
    with pytest.raises(RuntimeError, match="protocol.py"):
        worker.code_version()
