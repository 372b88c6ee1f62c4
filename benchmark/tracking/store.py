"""The MLflow tracking store behind a URI: where artifacts go, a first connection that fails fast,
and an SQLite store created whole or not at all. mlflow is imported inside the functions that
need it, so importing this module stays cheap."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from benchmark.errors import ConfigError
from benchmark.results import MLFLOW_ARTIFACTS_DIR
from benchmark.storage import mask_url
from benchmark.tracking._common import _clip

log = logging.getLogger(__name__)

_SQL_SCHEMES = {"sqlite", "postgresql", "postgres", "mysql", "mssql"}


def _artifact_location(
    tracking_uri: str,
    experiment: str,
    *,
    results_dir: Path | None = None,
    explicit: str | None = None,
) -> str | None:
    """Where a new experiment keeps its artifacts: ``explicit`` when given; for a database
    store, ``<results_dir>/mlartifacts/<experiment>`` (an SQLite store without ``results_dir``:
    beside the database file), since MLflow's default is ``./mlruns`` in whatever folder the
    process runs from; ``None`` for a tracking server, which proxies or places artifacts
    itself."""
    if explicit:
        if "://" in explicit or explicit.startswith("file:"):
            return explicit
        return Path(explicit).expanduser().resolve().as_uri()
    if urlsplit(tracking_uri).scheme.split("+")[0].lower() not in _SQL_SCHEMES:
        return None
    db = _sqlite_path(tracking_uri)
    base = results_dir if results_dir is not None else (db.parent if db is not None else None)
    if base is None:
        return None
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", experiment) or "experiment"
    return (Path(base) / MLFLOW_ARTIFACTS_DIR / safe).resolve().as_uri()


def _sqlite_path(tracking_uri: str) -> Path | None:
    if not tracking_uri.startswith("sqlite:"):
        return None
    from sqlalchemy.engine import make_url

    database = make_url(tracking_uri).database
    if not database or database == ":memory:":
        return None
    return Path(database).resolve()


def _probe_sql(tracking_uri: str) -> None:
    """Connect once, without MLflow's retry loop (about 100 s on an unreachable database)."""
    scheme = urlsplit(tracking_uri).scheme.split("+")[0].lower()
    if scheme not in _SQL_SCHEMES:
        return
    import sqlalchemy

    db = _sqlite_path(tracking_uri)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
        ensure_sqlite_store(db)  # before connecting: a connection creates an empty file
    connect_args = {"connect_timeout": 10} if scheme in ("postgresql", "postgres", "mysql") else {}
    try:
        engine = sqlalchemy.create_engine(tracking_uri, connect_args=connect_args)
    except ImportError as exc:
        raise ConfigError(
            f"cannot open the MLflow tracking store {mask_url(tracking_uri)}: its database "
            f"driver is not installed ({exc})"
        ) from exc
    try:
        with engine.connect() as conn:
            if db is not None:
                # write-ahead log: fewer syncs per commit (about 20 % less time per trial run)
                # and `mlflow ui` can read while the benchmark writes; a no-op when already set
                conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    finally:
        engine.dispose()


def ensure_sqlite_store(db: Path) -> None:
    """Make ``db`` a complete MLflow SQLite store, or fail in one line.

    MLflow migrates a new SQLite file in place, in some sixty steps that SQLite does not roll
    back: a kill half-way leaves a file that every later open fails on ("duplicate column name:
    creator"). So a new store is migrated in a temporary file beside ``db`` and renamed into
    place (a rename is atomic). An existing file that is not a complete store of this MLflow
    (a kill before this function existed, a foreign file) is moved aside to
    ``<db>.broken-<time>`` when it holds no runs, since nothing is lost; one that holds runs is
    left alone with an error, since only its owner can say whether to upgrade or discard it.
    A lock file beside ``db`` keeps two processes from creating or repairing it at once.
    """
    db = Path(db)
    with _file_lock(db.with_name(f".{db.name}.lock")):
        for stale in db.parent.glob(f".{db.name}.*.tmp*"):  # left by a kill while creating
            stale.unlink(missing_ok=True)
        if db.is_dir():
            raise ConfigError(f"cannot open the MLflow tracking store {db}: it is a folder")
        if db.exists():
            problem, n_runs = _store_problem(db)
            if problem is None:
                return
            if n_runs:
                raise ConfigError(
                    f"cannot open the MLflow tracking store {db}: it is {problem} and holds "
                    f"{n_runs} run(s), so it is left as is; if an older MLflow wrote it, back it "
                    f"up and run `mlflow db upgrade sqlite:///{db}`, else move it away"
                )
            moved = _move_aside(db)
            _forget_engines(db)
            log.warning(
                "MLflow store %s was %s and held no runs: moved it to %s, creating a new one",
                db,
                problem,
                moved.name,
            )
        _create_sqlite_store(db)


def _create_sqlite_store(db: Path) -> None:
    """A fresh, fully migrated store at ``db``, built in a temporary file and renamed there."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    tmp = db.with_name(f".{db.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        # rollback journal (the default), not WAL: once closed, the file alone is the store
        store = SqlAlchemyStore(f"sqlite:///{tmp}", (db.parent / MLFLOW_ARTIFACTS_DIR).as_uri())
        store.engine.dispose()
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, db)
        _fsync_dir(db.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _store_problem(db: Path) -> tuple[str | None, int]:
    """What is wrong with the store file ``db`` (None: nothing) and how many runs it holds."""
    try:
        with contextlib.closing(sqlite3.connect(db, timeout=60)) as con:
            tables = {
                r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            versions = (
                [r[0] for r in con.execute("SELECT version_num FROM alembic_version")]
                if "alembic_version" in tables
                else []
            )
            n_runs = (
                int(con.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
                if "runs" in tables
                else 0
            )
    except sqlite3.OperationalError as exc:  # unreadable, locked: not a reason to move it
        raise ConfigError(f"cannot open the MLflow tracking store {db}: {exc}") from None
    except sqlite3.DatabaseError as exc:
        return f"not an SQLite database ({exc})", 0
    head, expected = _expected_schema()
    have = len(expected & tables)
    if versions == [head] and have == len(expected):
        return None, n_runs
    if not tables:
        return "empty", n_runs
    version = ", ".join(versions) or "none"
    return (
        f"incomplete (schema version {version}, expected {head}; {have} of {len(expected)} tables)",
        n_runs,
    )


def _expected_schema() -> tuple[str, set[str]]:
    """The schema revision and the tables of a complete store of the installed MLflow (pinned
    in pyproject.toml, so its helpers below are stable)."""
    import mlflow.store.db.utils as db_utils
    import mlflow.store.tracking.sqlalchemy_store  # noqa: F401  (registers every table)
    from mlflow.store.db.base_sql_model import Base

    return db_utils._get_latest_schema_revision(), {*Base.metadata.tables, "alembic_version"}


def _move_aside(db: Path) -> Path:
    """Rename ``db`` (and its WAL side files) to ``<db>.broken-<time>``; returns the new path."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = db.with_name(f"{db.name}.broken-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = db.with_name(f"{db.name}.broken-{stamp}-{n}")
    os.replace(db, target)
    for side in ("-wal", "-shm", "-journal"):
        extra = db.with_name(db.name + side)
        if extra.exists():
            os.replace(extra, target.with_name(target.name + side))
    return target


def _forget_engines(db: Path) -> None:
    """Drop MLflow's cached engines on ``db``: their pooled connections still point at the file
    that was moved aside (only a process that opened it before, such as a test, has any)."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    with SqlAlchemyStore._engine_map_lock:
        for uri in [u for u in SqlAlchemyStore._engine_map if _sqlite_path(u) == db]:
            SqlAlchemyStore._engine_map.pop(uri).dispose()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (released by the OS if the process dies); none on systems
    without ``fcntl`` or where the lock file cannot be made (the store's own errors follow)."""
    try:
        import fcntl

        fh = open(path, "a")  # noqa: SIM115  (closed below, after the lock is released)
    except (ImportError, OSError):  # pragma: no cover - Windows, a read-only folder
        fh = None
    if fh is None:  # pragma: no cover
        yield
        return
    with fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _fsync_dir(folder: Path) -> None:
    """Persist a rename in ``folder`` (best effort: not every system can open a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def _fail_fast_http() -> Iterator[None]:
    """While the store is first opened, a tracking server that does not answer fails at once
    (MLflow's default retries for minutes); later calls keep MLflow's retries."""
    saved = {
        k: os.environ.get(k)
        for k in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")
    }
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "10"
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _quiet_mlflow() -> None:
    """Silence MLflow's chatter that says nothing about the benchmark: schema-migration notices
    on a new SQLite file and the "View run at" line a tracking server prints per run."""
    for name in ("alembic", "mlflow.store.db.utils"):
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")


def _reason(exc: BaseException, tracking_uri: str) -> str:
    """One line, credentials masked."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = mask_url(text or type(exc).__name__)
    try:
        password = urlsplit(tracking_uri).password
    except ValueError:
        password = None
    if password:
        text = text.replace(password, "***")
    if isinstance(exc, ImportError):
        text = f"database driver not installed ({text})"
    return _clip(text, 300)
