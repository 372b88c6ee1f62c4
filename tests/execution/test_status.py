"""``genrebench status``: the benchmark is found from its Optuna studies (issue 17: it said
"holds 0 benchmarks") and listed per pair, its finished folds read from the results folder, the
run's dashboard shown while it runs; study names parse back, and trials are counted per study
and state."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner
from optuna.trial import TrialState

from benchmark.cli import main
from benchmark.execution.status import CLUSTER_FILE, parse_study_name, trial_counts
from benchmark.results import PairKey
from benchmark.storage import default_storage_url, open_storage
from benchmark.tuning.job import study_name


@pytest.fixture(scope="module")
def run_dir(fake_gtzan: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("status")
    res = CliRunner().invoke(
        main,
        ["run", "--config", "smoke", "--no-tracking", "--trials", "2"]
        + ["--data-dir", str(fake_gtzan), "--results-dir", str(root)],
    )
    assert res.exit_code == 0, res.output
    return root


def test_status_lists_a_benchmark_written_by_run(run_dir: Path) -> None:
    url = default_storage_url(run_dir / "smoke")
    for args in (["--storage", url], ["--config", "smoke", "--results-dir", str(run_dir)]):
        res = CliRunner().invoke(main, ["status", *args])
        assert res.exit_code == 0, res.output
        assert "holds 0 benchmarks" not in res.output
        assert "benchmark smoke on" in res.stdout
        rows = [line for line in res.stdout.splitlines() if "fault_filtered" in line]
        assert {"logreg", "seed_mlp"} <= {w for line in rows for w in line.split()}, res.stdout
        assert all(" 1/1 " in line for line in rows), res.stdout  # one fold, finished
        logreg = next(line for line in rows if "logreg" in line)
        assert logreg.split("│")[5].strip() == "2", res.stdout  # its two trials (--trials 2)
        assert "1/1 started folds finished" not in res.stdout  # two: one per family
        assert "2/2 started folds finished" in res.stdout
        assert "dashboard" not in res.stdout  # no run is going


def test_status_shows_the_dashboard_of_a_run_going_on(run_dir: Path) -> None:
    import json
    import os

    note = run_dir / "smoke" / CLUSTER_FILE
    note.write_text(
        json.dumps({"scheduler": "tcp://127.0.0.1:1", "dashboard": "http://d/", "pid": os.getpid()})
    )
    try:
        res = CliRunner().invoke(
            main, ["status", "--config", "smoke", "--results-dir", str(run_dir)]
        )
    finally:
        note.unlink()
    assert "run running on tcp://127.0.0.1:1; dashboard: http://d/" in res.stdout, res.output


def test_status_names_benchmarks_it_does_not_hold(run_dir: Path) -> None:
    url = default_storage_url(run_dir / "smoke")
    res = CliRunner().invoke(main, ["status", "--storage", url, "--config", "other"])
    assert res.exit_code == 2 and "no benchmark 'other'" in res.output


def test_study_names_parse_back_to_benchmark_pair_fold_and_digest() -> None:
    pair = PairKey("csv_30s", "logreg", "artist_kfold")
    name = study_name("my:bench", pair, 3, "abc123")
    assert parse_study_name(name) == (
        "my:bench",
        ("csv_30s", "logreg", "artist_kfold"),
        3,
        "abc123",
    )
    for other in ("final:csv_30s:lda", "b:csv_30s:lda:artist_kfold:foldx:d", "no colons"):
        assert parse_study_name(other) is None


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_trials_are_counted_per_study_and_state(tmp_path: Path, kind: str) -> None:
    url = (
        f"sqlite:///{tmp_path / 'o.db'}" if kind == "sqlite" else f"journal://{tmp_path / 'o.log'}"
    )
    storage = open_storage(url)
    study = optuna.create_study(study_name="s", storage=storage)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    study.tell(study.ask(), state=TrialState.PRUNED)
    assert trial_counts(storage, url) == {"s": {"COMPLETE": 2, "PRUNED": 1}}
