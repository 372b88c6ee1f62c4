"""Every storage URL genrebench opens, names, masks or explains (:mod:`benchmark.storage`):
default URLs of a results folder, journal files, SQLite files shared by two openers, heartbeats,
masked passwords and the one line a URL that cannot be opened gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.storages._heartbeat import is_heartbeat_enabled

from benchmark.errors import ConfigError
from benchmark.storage import (
    default_storage_url,
    default_tracking_uri,
    journal_path,
    mask_url,
    open_storage,
    why_unusable,
)


def test_default_urls_are_absolute_sqlite_files_in_the_results_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert default_storage_url(Path("results/b")) == f"sqlite:///{tmp_path}/results/b/optuna.db"
    assert default_tracking_uri(Path("results/b")) == f"sqlite:///{tmp_path}/results/b/mlflow.db"


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("journal:///shared/runs/b.log", Path("/shared/runs/b.log")),
        ("journal:rel/b.log", Path("rel/b.log")),
        ("sqlite:///x/optuna.db", None),
        ("postgresql+psycopg://u@h/db", None),
    ],
)
def test_journal_path_names_the_file_of_journal_urls_only(url: str, path: Path | None) -> None:
    assert journal_path(url) == path


@pytest.mark.parametrize("url", ["journal:", "journal://"])
def test_a_journal_url_without_a_file_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="names no file: use journal:///path/to/file.log"):
        journal_path(url)


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_two_openers_of_one_url_share_its_studies(tmp_path: Path, kind: str) -> None:
    """The storage's folder is created, and what one opener writes the other reads."""
    where = tmp_path / "not" / "yet"
    url = f"sqlite:///{where / 'o.db'}" if kind == "sqlite" else f"journal:///{where / 'o.log'}"
    study = optuna.create_study(study_name="s", storage=open_storage(url))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert where.is_dir()
    other = optuna.load_study(study_name="s", storage=open_storage(url))
    assert [t.params for t in other.get_trials()] == [t.params for t in study.get_trials()]


def test_heartbeats_are_enabled_with_a_grace_of_twice_the_interval(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'o.db'}"
    assert not is_heartbeat_enabled(open_storage(url))
    beating = open_storage(url, heartbeat_interval=3)
    assert is_heartbeat_enabled(beating) and beating.get_heartbeat_interval() == 3
    longer: Any = open_storage(url, heartbeat_interval=3, grace_period=10)
    assert (beating.grace_period, longer.grace_period) == (6, 10)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://u:secret@host/db", "postgresql://u:***@host/db"),
        ("postgresql+psycopg2://u:p@ss:w@host:5432/db", "postgresql+psycopg2://u:***@host:5432/db"),
        ("https://user:tok@mlflow.example.org:5000", "https://user:***@mlflow.example.org:5000"),
        ("http://host:5000/path", "http://host:5000/path"),
        ("http://user@host/x", "http://user@host/x"),
        ("sqlite:////abs/results/quick/mlflow.db", "sqlite:////abs/results/quick/mlflow.db"),
        ("mysql://h/db?user=u&password=pw&x=1", "mysql://h/db?user=u&password=***&x=1"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_an_unknown_scheme_is_one_line_naming_the_accepted_urls() -> None:
    with pytest.raises(ConfigError) as info:
        open_storage("nosuchdb://u:s3cret@host/db")
    msg = str(info.value)
    assert msg.startswith("cannot open the Optuna storage nosuchdb://u:***@host/db: ")
    assert "expected sqlite:///file.db" in msg and "journal:///path/file.log" in msg
    assert "s3cret" not in msg and "\n" not in msg


def test_a_missing_database_driver_says_what_to_install() -> None:
    try:
        try:
            raise ModuleNotFoundError("No module named 'psycopg2'")
        except ModuleNotFoundError as inner:
            raise RuntimeError("could not connect") from inner
    except RuntimeError as exc:
        why = why_unusable(exc, "postgresql://u:pw@h/db")
    assert why.startswith("database driver not installed (No module named 'psycopg2')")
    assert "postgresql+psycopg://" in why


def test_a_password_the_masks_miss_is_masked_by_the_url_it_came_from() -> None:
    exc = RuntimeError('connection to "h" failed: bad password "hunter2"\nsecond line')
    assert why_unusable(exc, "postgresql://u:hunter2@h/db") == (
        'connection to "h" failed: bad password "***"'
    )
