"""The default SQLite tracking store survives a kill at any instant (issue 17), and artifacts land
under the results folder whatever the tracking URI.

MLflow migrates a new SQLite file in some sixty steps it cannot roll back; a SIGKILL half-way
used to leave a file every later run failed on ("duplicate column name: creator").
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import shutil
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from benchmark.errors import ConfigError
from benchmark.tracking import (
    Tracker,
    _artifact_location,
    _store_problem,
    default_tracking_uri,
    ensure_sqlite_store,
)

TAGS = {"seed": "0"}


@pytest.fixture(scope="module")
def whole_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete store made by :func:`ensure_sqlite_store` (creating one takes seconds)."""
    db = tmp_path_factory.mktemp("whole") / "mlflow.db"
    ensure_sqlite_store(db)
    return db


def _tables(db: Path) -> set[str]:
    with contextlib.closing(sqlite3.connect(db)) as con:
        return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith((".tmp", ".tmp-journal")))


def test_a_new_store_is_whole_and_leaves_no_temporary_file(whole_db: Path) -> None:
    assert _store_problem(whole_db) == (None, 0)
    assert len(_tables(whole_db)) == 65
    assert _leftovers(whole_db.parent) == []
    assert not list(whole_db.parent.glob("*.broken-*"))


def _break_by_dropping_tables(db: Path) -> None:
    with contextlib.closing(sqlite3.connect(db)) as con:
        for table in ("trace_tags", "trace_request_metadata", "logged_models", "webhooks"):
            con.execute(f"DROP TABLE IF EXISTS {table}")
        con.commit()


def _break_by_forgetting_the_version(db: Path) -> None:
    with contextlib.closing(sqlite3.connect(db)) as con:
        con.execute("DELETE FROM alembic_version")
        con.commit()


def _break_by_garbage(db: Path) -> None:
    db.write_bytes(b"not a database " * 200)


@pytest.mark.parametrize(
    "damage",
    [_break_by_dropping_tables, _break_by_forgetting_the_version, _break_by_garbage],
    ids=["tables-missing", "no-schema-version", "not-sqlite"],
)
def test_a_half_initialized_store_without_runs_is_moved_aside_and_recreated(
    damage, whole_db: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "mlflow.db"
    shutil.copy(whole_db, db)
    damage(db)
    assert _store_problem(db)[0] is not None
    with caplog.at_level(logging.WARNING, logger="benchmark.tracking"):
        tracker = Tracker(default_tracking_uri(tmp_path), "quick", TAGS)
    run = tracker.client.create_run(tracker.experiment_id)
    assert tracker.client.get_run(run.info.run_id).info.status == "RUNNING"
    assert _store_problem(db) == (None, 1)
    (moved,) = tmp_path.glob("mlflow.db.broken-*")
    warning = "\n".join(r.getMessage() for r in caplog.records)
    assert moved.name in warning and "held no runs" in warning and "\n" not in warning


def test_an_incomplete_store_with_runs_is_refused_in_one_line(
    whole_db: Path, tmp_path: Path
) -> None:
    db = tmp_path / "mlflow.db"
    shutil.copy(whole_db, db)
    tracker = Tracker(default_tracking_uri(tmp_path), "quick", TAGS)
    tracker.client.create_run(tracker.experiment_id)
    _break_by_dropping_tables(db)
    before = db.read_bytes()
    with pytest.raises(ConfigError) as info:
        ensure_sqlite_store(db)
    message = str(info.value)
    assert "\n" not in message
    assert "holds 1 run(s)" in message and "mlflow db upgrade" in message
    assert db.read_bytes() == before and not list(tmp_path.glob("*.broken-*"))


def _kill_after(target, args: tuple, delay_s: float) -> None:
    """Run ``target(*args)`` in a forked child (no re-import: it starts at once) and SIGKILL it
    after ``delay_s``."""
    child = multiprocessing.get_context("fork").Process(target=target, args=args)
    child.start()
    time.sleep(delay_s)
    if child.pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, signal.SIGKILL)
    child.join(30)


def test_sigkill_while_creating_leaves_no_store_or_a_whole_one(tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    cut_mid_way = 0
    for delay in (0.0, 0.05, 0.2, 0.5, 1.0):
        _kill_after(ensure_sqlite_store, (db,), delay)
        # the target is absent or complete, never half-migrated
        assert not db.exists() or _store_problem(db)[0] is None, delay
        cut_mid_way += bool(_leftovers(tmp_path)) and not db.exists()
        db.unlink(missing_ok=True)
    assert cut_mid_way, "no kill landed inside the creation: make the delays shorter"
    tracker = Tracker(default_tracking_uri(tmp_path), "quick", TAGS)  # opens afterwards
    assert tracker.client.get_experiment(tracker.experiment_id).name == "quick"
    assert _leftovers(tmp_path) == [] and not list(tmp_path.glob("*.broken-*"))


def _mlflow_creates_in_place(db: Path) -> None:
    """What genrebench did before: WAL on a new file, then MLflow migrates it in place."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    with contextlib.closing(sqlite3.connect(db)) as con:
        con.execute("PRAGMA journal_mode=WAL")
    SqlAlchemyStore(f"sqlite:///{db}", (db.parent / "mlartifacts").as_uri())


def test_a_store_cut_off_mid_migration_is_repaired_on_the_next_open(tmp_path: Path) -> None:
    repaired = 0
    for i, delay in enumerate((0.15, 0.6)):
        folder = tmp_path / str(i)
        folder.mkdir()
        db = folder / "mlflow.db"
        _kill_after(_mlflow_creates_in_place, (db,), delay)
        ensure_sqlite_store(db)
        assert _store_problem(db) == (None, 0)
        repaired += bool(list(folder.glob("mlflow.db.broken-*")))
    assert repaired, "no kill left a half-migrated store: the reproduction did not happen"


# --- where artifacts go ---------------------------------------------------------------------
def test_artifacts_go_under_the_results_folder_for_a_database_elsewhere(
    whole_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, results, cwd = tmp_path / "store", tmp_path / "results", tmp_path / "cwd"
    for folder in (store, results, cwd):
        folder.mkdir()
    shutil.copy(whole_db, store / "mlflow.db")
    monkeypatch.chdir(cwd)
    tracker = Tracker(default_tracking_uri(store), "my bench", TAGS, results_dir=results)
    run = tracker.client.create_run(tracker.experiment_id)
    tracker.client.log_text(run.info.run_id, "hello", "note.txt")
    expected = (results / "mlartifacts" / "my_bench").resolve()
    location = tracker.client.get_experiment(tracker.experiment_id).artifact_location
    assert location == expected.as_uri()
    assert (expected / run.info.run_id / "artifacts" / "note.txt").read_text() == "hello"
    assert list(cwd.iterdir()) == [] and not (store / "mlartifacts").exists()


def test_an_explicit_artifact_location_wins(whole_db: Path, tmp_path: Path) -> None:
    shutil.copy(whole_db, tmp_path / "mlflow.db")
    mine = tmp_path / "elsewhere"
    tracker = Tracker(
        default_tracking_uri(tmp_path),
        "quick",
        TAGS,
        results_dir=tmp_path / "results",
        artifact_location=str(mine),
    )
    location = tracker.client.get_experiment(tracker.experiment_id).artifact_location
    assert location == mine.resolve().as_uri()


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("postgresql://u:p@db:5432/mlflow", "R/mlartifacts/a_b"),
        ("mysql+pymysql://u@db/mlflow", "R/mlartifacts/a_b"),
        ("sqlite:////S/mlflow.db", "R/mlartifacts/a_b"),
        ("http://mlflow:5000", None),  # the server proxies or places artifacts itself
        ("https://mlflow.example.org", None),
    ],
)
def test_artifact_location_rules(uri: str, expected: str | None, tmp_path: Path) -> None:
    uri = uri.replace("/S/", f"{tmp_path}/S/")
    got = _artifact_location(uri, "a b", results_dir=tmp_path / "R")
    want = (tmp_path / expected).resolve().as_uri() if expected else None
    assert got == want
    assert _artifact_location(uri, "a b", results_dir=tmp_path / "R", explicit="s3://b/x") == (
        "s3://b/x"
    )


def test_without_a_results_folder_sqlite_artifacts_stay_beside_the_database(
    tmp_path: Path,
) -> None:
    got = _artifact_location(default_tracking_uri(tmp_path), "quick")
    assert got == (tmp_path / "mlartifacts" / "quick").resolve().as_uri()
    assert _artifact_location("postgresql://db/mlflow", "quick") is None
