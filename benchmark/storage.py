"""Storage in one place: every URL genrebench opens, defaults, masks or explains.

Optuna studies live behind one storage URL (an SQLite file by default, PostgreSQL for many
machines, a journal file for a shared file system) and MLflow runs behind one tracking URI. This
module opens the Optuna storage, names the default URLs of a results folder, masks passwords in
any URL before it reaches a log line, an error, ``run.json`` or the report, and words the one
line a user sees when a URL cannot be opened. No other module builds or masks a URL.
"""

from __future__ import annotations

import contextlib
import random
import re
import time
import warnings
from pathlib import Path
from typing import Any

import optuna

from benchmark.errors import ConfigError
from benchmark.results import MLFLOW_DB, OPTUNA_DB

__all__ = [
    "MAX_RETRY",
    "default_storage_url",
    "default_tracking_uri",
    "journal_path",
    "mask_url",
    "open_storage",
    "retry_callback_kwarg",
    "why_unusable",
]

#: how often a trial killed with its worker is retried with the same params
MAX_RETRY = 3
_CREATE_RACE = re.compile(r"(?i)already exists|duplicate key|UniqueViolation|unique constraint")
# scheme://user:password@  (the password runs to the last @ before the path)
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^:/?#@\s]*):[^/?#\s]*@")
_SECRET_QUERY = re.compile(
    r"(?i)([?&](?:password|passwd|pwd|token|secret|access_token|api_key)=)[^&#\s]*"
)


def default_storage_url(results_dir: Path) -> str:
    """The default Optuna storage: an SQLite file in the benchmark's results folder."""
    return f"sqlite:///{(Path(results_dir) / OPTUNA_DB).resolve()}"


def default_tracking_uri(results_dir: Path) -> str:
    """The default tracking store: an SQLite file in the benchmark's results folder."""
    return f"sqlite:///{(Path(results_dir) / MLFLOW_DB).resolve()}"


def mask_url(url: str) -> str:
    """``url`` with its password (and secret query parameters) replaced by ``***``:
    ``postgresql://u:secret@host/db`` -> ``postgresql://u:***@host/db``."""
    return _SECRET_QUERY.sub(r"\1***", _USERINFO.sub(r"\1:***@", url))


def journal_path(url: str) -> Path | None:
    """The file of a ``journal:`` storage URL (``journal:///abs/path.log``, ``journal:rel.log``)."""
    if not url.startswith("journal:"):
        return None
    rest = url[len("journal:") :]
    if rest.startswith("//"):
        rest = rest[2:]
    if not rest:
        raise ConfigError(f"storage URL {url!r} names no file: use journal:///path/to/file.log")
    return Path(rest)


def open_storage(
    url: str, *, heartbeat_interval: int | None = None, grace_period: int | None = None
) -> optuna.storages.BaseStorage:
    """An Optuna storage from a URL: ``sqlite:///file.db`` (waits for a lock instead of
    failing at once, so several processes can share one file), any SQLAlchemy URL
    (``postgresql+psycopg://user:pw@host/db``), or ``journal:///path/file.log`` (Optuna's
    JournalStorage, for machines that share only a file system).

    With ``heartbeat_interval`` (seconds), a running trial records a heartbeat; one silent for
    ``grace_period`` is failed by the next process that looks and retried with the same params
    (relational storages only). A URL that cannot be opened raises one clear line
    (:class:`~benchmark.errors.ConfigError`), its password masked.
    """
    path = journal_path(url)
    try:
        if path is not None:
            from optuna.storages.journal import JournalFileBackend, JournalStorage

            path.parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(str(path)))
        kwargs: dict[str, Any] = {}
        if heartbeat_interval:
            kwargs.update(
                heartbeat_interval=int(heartbeat_interval),
                grace_period=int(grace_period or 2 * heartbeat_interval),
                **retry_callback_kwarg(),
            )
        if url.startswith("sqlite:"):
            from sqlalchemy.engine import make_url

            database = make_url(url).database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            engine_kwargs: dict[str, Any] = {"connect_args": {"timeout": 120}}
        elif url.startswith(("postgresql", "postgres", "mysql")):
            engine_kwargs = {"connect_args": {"connect_timeout": 10}, "pool_pre_ping": True}
        else:
            engine_kwargs = {}
        # processes opening a fresh database together race to create its tables: the losers
        # see "already exists" / a duplicate key, and find the tables on a second look
        for attempt in range(6):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    warnings.simplefilter("ignore", FutureWarning)
                    return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **kwargs)
            except Exception as exc:
                if attempt == 5 or not _CREATE_RACE.search(str(exc)):
                    raise
                time.sleep(0.1 + 0.4 * random.random())
        raise AssertionError("unreachable")
    except Exception as exc:
        raise ConfigError(
            f"cannot open the Optuna storage {mask_url(url)}: {why_unusable(exc, url)}"
        ) from exc


def retry_callback_kwarg() -> dict[str, Any]:
    """Optuna >= 4.9 names it ``heartbeat_stale_trial_callback``; older ones
    ``failed_trial_callback``."""
    import inspect

    storages = optuna.storages
    cls = getattr(storages, "RetryHeartbeatStaleTrialCallback", storages.RetryFailedTrialCallback)
    params = inspect.signature(optuna.storages.RDBStorage).parameters
    name = (
        "heartbeat_stale_trial_callback"
        if "heartbeat_stale_trial_callback" in params
        else "failed_trial_callback"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return {name: cls(max_retry=MAX_RETRY)}


def why_unusable(exc: BaseException, url: str) -> str:
    """One line, password masked, with the usual fix where there is one."""
    from urllib.parse import urlsplit

    text = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    text = mask_url(text.strip())
    with contextlib.suppress(ValueError):
        password = urlsplit(url).password
        if password:
            text = text.replace(password, "***")
    missing: BaseException | None = exc
    while missing is not None and not isinstance(missing, ModuleNotFoundError):
        missing = missing.__cause__ or missing.__context__
    if missing is not None or "Failed to import DB access module" in text:
        name = f" ({missing})" if missing is not None else ""
        return (
            f"database driver not installed{name}: PostgreSQL URLs work as "
            "postgresql+psycopg://user@host/db (psycopg is installed with genrebench)"
        )
    if "Can't load plugin" in text or "Could not parse" in text:
        return (
            f"{text}: expected sqlite:///file.db, postgresql+psycopg://user@host/db or "
            "journal:///path/file.log"
        )
    return text[:300]
