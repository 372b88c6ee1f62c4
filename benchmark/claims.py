"""Coordination of many workers on one benchmark, kept in the benchmark's own storage.

Optuna's storage holds the studies (trials, the finished fold outcomes); this module keeps the
little that Optuna has no place for, next to it, so that a worker needs one URL and nothing else
to start:

* the **benchmark record**: its identity (config digest, data checksum, code version), written
  once by the first worker, compared by every later one; and its *manifest* (the jobs, the
  skipped pairs, the splits, the provenance), so ``genrebench status`` and the results tables
  need only the storage, not the data;
* **claims**: one row per unit of work done once (the refit and evaluation of a (pair, fold),
  the final assembly) or mutual exclusion (``lock:`` keys). A claim is taken atomically (an
  INSERT on a primary key, or an UPDATE of an expired row) and kept alive by its worker's
  heartbeat; when the worker dies, the claim expires after the grace period and another worker
  takes it over;
* the **worker registry**: who is working, on which machine, doing what, last seen when.

Relational storages (``sqlite:``, ``postgresql+psycopg:``, ``mysql+...:``) get three small
tables in the same database (:class:`SqlBoard`), timed by the database's clock so that machines
with skewed clocks agree. A JournalStorage file gets a JSON file beside it, changed under
Optuna's journal file lock (:class:`FileBoard`), timed by the workers' clocks (keep them in
sync, e.g. with NTP, to well below the grace period).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import random
import time
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.errors import ConfigError
from benchmark.storage import journal_path
from benchmark.trial_budget import repeating

__all__ = [
    "Board",
    "BenchmarkRecord",
    "ClaimRow",
    "FileBoard",
    "SqlBoard",
    "WorkerRow",
    "open_board",
]


@dataclass(frozen=True)
class BenchmarkRecord:
    name: str
    identity: dict[str, Any]
    manifest: dict[str, Any]
    created_at: float


@dataclass(frozen=True)
class ClaimRow:
    key: str
    worker: str
    age_s: float  # seconds since its holder's last heartbeat
    done: bool
    status: str | None = None
    payload: str | None = None


@dataclass(frozen=True)
class WorkerRow:
    worker: str
    host: str
    pid: int
    started_at: float
    age_s: float  # seconds since its last heartbeat
    state: str  # running | finished | stopped
    activity: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def pack(data: Mapping[str, Any]) -> str:
    """JSON, compressed, as ASCII (a manifest holds the splits: ~10x smaller this way)."""
    blob = zlib.compress(json.dumps(data, default=str).encode(), 6)
    return base64.b64encode(blob).decode()


def unpack(text: str) -> dict[str, Any]:
    return json.loads(zlib.decompress(base64.b64decode(text)))


def open_board(url: str) -> Board:
    """The board of the storage at ``url`` (tables or file created on first use)."""
    path = journal_path(url)
    if path is not None:
        return FileBoard(path.with_name(path.name + ".genrebench.json"))
    return SqlBoard(url)


class Board(ABC):
    """Benchmark records, claims and the worker registry of one storage."""

    # ---------------------------------------------------------------- benchmark records
    @abstractmethod
    def benchmark(self, name: str) -> BenchmarkRecord | None: ...

    @abstractmethod
    def benchmarks(self) -> list[str]: ...

    @abstractmethod
    def _insert_benchmark(self, name: str, identity: dict[str, Any], manifest: str) -> bool:
        """Insert unless present; True if this call inserted it."""

    def register_benchmark(
        self, name: str, identity: dict[str, Any], manifest: dict[str, Any]
    ) -> tuple[BenchmarkRecord, bool]:
        """The benchmark's record, created from ``identity``/``manifest`` if absent; and
        whether this call created it (exactly one caller does, however many race)."""
        created = self._insert_benchmark(name, identity, pack(manifest))
        record = self.benchmark(name)
        assert record is not None
        return record, created

    # ---------------------------------------------------------------- claims
    @abstractmethod
    def claim(self, bench: str, key: str, worker: str, grace_s: float) -> bool:
        """Take ``key``: free, already ours, or held by a worker silent for ``grace_s``."""

    @abstractmethod
    def holds(self, bench: str, key: str, worker: str) -> bool:
        """Still ours and unfinished (refreshes its heartbeat): check before a write that must
        happen once."""

    @abstractmethod
    def finish(
        self, bench: str, key: str, worker: str, status: str, payload: str | None = None
    ) -> bool:
        """Mark our claim done for good; False if it was not ours any more."""

    @abstractmethod
    def release(self, bench: str, key: str, worker: str) -> None:
        """Give an unfinished claim back (a lock's end, a worker stopping)."""

    @abstractmethod
    def claims(self, bench: str) -> dict[str, ClaimRow]: ...

    @contextlib.contextmanager
    def lock(
        self, bench: str, name: str, worker: str, grace_s: float, timeout_s: float = 600
    ) -> Iterator[None]:
        """Mutual exclusion across workers (released when the holder dies, after grace)."""
        key = f"lock:{name}"
        deadline = time.monotonic() + timeout_s
        delay = 0.02
        while not self.claim(bench, key, worker, grace_s):
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout_s:.0f} s for the lock {name}")
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 0.5)
        # kept alive while held, whether or not the worker's heartbeat runs yet
        try:
            with repeating(max(0.2, grace_s / 3), lambda: self.holds(bench, key, worker)):
                yield
        finally:
            self.release(bench, key, worker)

    # ---------------------------------------------------------------- workers
    @abstractmethod
    def register_worker(
        self, bench: str, worker: str, host: str, pid: int, extra: Mapping[str, Any]
    ) -> None: ...

    @abstractmethod
    def beat(self, bench: str, worker: str, activity: str | None = None) -> None:
        """Heartbeat of a worker and of every unfinished claim it holds."""

    @abstractmethod
    def end_worker(self, bench: str, worker: str, state: str) -> None:
        """The worker leaves: its unfinished claims are released at once."""

    @abstractmethod
    def workers(self, bench: str) -> list[WorkerRow]: ...

    def close(self) -> None:  # noqa: B027 (optional hook)
        pass


# --------------------------------------------------------------------------------------------
# relational databases
# --------------------------------------------------------------------------------------------


class SqlBoard(Board):
    """Three tables in the storage's database (``genrebench_benchmarks``, ``_claims``,
    ``_workers``); every claim change is one atomic statement."""

    def __init__(self, url: str) -> None:
        import sqlalchemy as sa

        self.url = url
        kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if url.startswith("sqlite:"):
            kwargs["connect_args"] = {"timeout": 120}
        elif url.startswith(("postgresql", "mysql")):
            kwargs["connect_args"] = {"connect_timeout": 10}
        self.engine = sa.create_engine(url, **kwargs)
        dialect = self.engine.dialect.name
        self._now_sql = {
            "postgresql": "EXTRACT(EPOCH FROM clock_timestamp())",
            "sqlite": "((julianday('now') - 2440587.5) * 86400.0)",
            "mysql": "UNIX_TIMESTAMP(NOW(6))",
        }.get(dialect)
        if self._now_sql is None:
            raise ConfigError(f"workers cannot coordinate on a {dialect} database")
        md = sa.MetaData()
        self.t_bench = sa.Table(
            "genrebench_benchmarks",
            md,
            sa.Column("name", sa.String(255), primary_key=True),
            sa.Column("identity", sa.Text, nullable=False),
            sa.Column("manifest", sa.Text, nullable=False),
            sa.Column("created_at", sa.Float, nullable=False),
        )
        self.t_claims = sa.Table(
            "genrebench_claims",
            md,
            sa.Column("benchmark", sa.String(255), primary_key=True),
            sa.Column("key", sa.String(760), primary_key=True),
            sa.Column("worker", sa.String(255), nullable=False),
            sa.Column("claimed_at", sa.Float, nullable=False),
            sa.Column("heartbeat_at", sa.Float, nullable=False),
            sa.Column("done", sa.Boolean, nullable=False),
            sa.Column("status", sa.String(32)),
            sa.Column("payload", sa.Text),
        )
        self.t_workers = sa.Table(
            "genrebench_workers",
            md,
            sa.Column("worker", sa.String(255), primary_key=True),
            sa.Column("benchmark", sa.String(255), nullable=False, index=True),
            sa.Column("host", sa.String(255), nullable=False),
            sa.Column("pid", sa.Integer, nullable=False),
            sa.Column("started_at", sa.Float, nullable=False),
            sa.Column("heartbeat_at", sa.Float, nullable=False),
            sa.Column("state", sa.String(32), nullable=False),
            sa.Column("activity", sa.Text),
            sa.Column("extra", sa.Text),
        )
        # workers starting together race to create the tables: the loser retries
        for attempt in range(5):
            try:
                md.create_all(self.engine, checkfirst=True)
                break
            except sa.exc.SQLAlchemyError:
                if attempt == 4:
                    raise
                time.sleep(0.2 + random.random())

    def _now(self):
        import sqlalchemy as sa

        return sa.literal_column(self._now_sql)

    def now(self) -> float:
        import sqlalchemy as sa

        with self.engine.connect() as c:
            return float(c.execute(sa.select(self._now())).scalar())

    # ---------------------------------------------------------------- benchmark records
    def benchmark(self, name: str) -> BenchmarkRecord | None:
        import sqlalchemy as sa

        t = self.t_bench
        with self.engine.connect() as c:
            row = c.execute(sa.select(t).where(t.c.name == name)).first()
        if row is None:
            return None
        return BenchmarkRecord(
            row.name, json.loads(row.identity), unpack(row.manifest), float(row.created_at)
        )

    def benchmarks(self) -> list[str]:
        import sqlalchemy as sa

        with self.engine.connect() as c:
            return [r[0] for r in c.execute(sa.select(self.t_bench.c.name).order_by("name"))]

    def _insert_benchmark(self, name: str, identity: dict[str, Any], manifest: str) -> bool:
        import sqlalchemy as sa

        values = {
            "name": name,
            "identity": json.dumps(identity, sort_keys=True),
            "manifest": manifest,
            "created_at": self._now(),
        }
        try:
            with self.engine.begin() as c:
                c.execute(sa.insert(self.t_bench).values(**values))
            return True
        except sa.exc.IntegrityError:
            return False

    # ---------------------------------------------------------------- claims
    def claim(self, bench: str, key: str, worker: str, grace_s: float) -> bool:
        import sqlalchemy as sa

        t = self.t_claims
        now = self._now()
        try:
            with self.engine.begin() as c:
                c.execute(
                    sa.insert(t).values(
                        benchmark=bench,
                        key=key,
                        worker=worker,
                        claimed_at=now,
                        heartbeat_at=now,
                        done=False,
                    )
                )
            return True
        except sa.exc.IntegrityError:
            pass
        # taken: ours already, or expired; one statement, so of two takers only one matches
        with self.engine.begin() as c:
            res = c.execute(
                sa.update(t)
                .where(
                    t.c.benchmark == bench,
                    t.c.key == key,
                    t.c.done.is_(False),
                    sa.or_(t.c.worker == worker, t.c.heartbeat_at < now - float(grace_s)),
                )
                .values(worker=worker, heartbeat_at=now, claimed_at=now)
            )
            return res.rowcount == 1

    def holds(self, bench: str, key: str, worker: str) -> bool:
        import sqlalchemy as sa

        t = self.t_claims
        with self.engine.begin() as c:
            res = c.execute(
                sa.update(t)
                .where(
                    t.c.benchmark == bench,
                    t.c.key == key,
                    t.c.worker == worker,
                    t.c.done.is_(False),
                )
                .values(heartbeat_at=self._now())
            )
            return res.rowcount == 1

    def finish(
        self, bench: str, key: str, worker: str, status: str, payload: str | None = None
    ) -> bool:
        import sqlalchemy as sa

        t = self.t_claims
        with self.engine.begin() as c:
            res = c.execute(
                sa.update(t)
                .where(t.c.benchmark == bench, t.c.key == key, t.c.worker == worker)
                .values(done=True, status=status, payload=payload, heartbeat_at=self._now())
            )
            return res.rowcount == 1

    def release(self, bench: str, key: str, worker: str) -> None:
        import sqlalchemy as sa

        t = self.t_claims
        with self.engine.begin() as c:
            c.execute(
                sa.delete(t).where(
                    t.c.benchmark == bench,
                    t.c.key == key,
                    t.c.worker == worker,
                    t.c.done.is_(False),
                )
            )

    def claims(self, bench: str) -> dict[str, ClaimRow]:
        import sqlalchemy as sa

        t = self.t_claims
        age = (self._now() - t.c.heartbeat_at).label("age")
        with self.engine.connect() as c:
            rows = c.execute(
                sa.select(t.c.key, t.c.worker, age, t.c.done, t.c.status, t.c.payload).where(
                    t.c.benchmark == bench
                )
            ).all()
        return {
            r.key: ClaimRow(r.key, r.worker, float(r.age), bool(r.done), r.status, r.payload)
            for r in rows
        }

    # ---------------------------------------------------------------- workers
    def register_worker(
        self, bench: str, worker: str, host: str, pid: int, extra: Mapping[str, Any]
    ) -> None:
        import sqlalchemy as sa

        t = self.t_workers
        now = self._now()
        values = dict(
            benchmark=bench,
            host=host,
            pid=pid,
            started_at=now,
            heartbeat_at=now,
            state="running",
            activity="starting",
            extra=json.dumps(dict(extra)),
        )
        with self.engine.begin() as c:
            res = c.execute(sa.update(t).where(t.c.worker == worker).values(**values))
            if res.rowcount == 0:
                c.execute(sa.insert(t).values(worker=worker, **values))

    def beat(self, bench: str, worker: str, activity: str | None = None) -> None:
        import sqlalchemy as sa

        now = self._now()
        values: dict[str, Any] = {"heartbeat_at": now}
        if activity is not None:
            values["activity"] = activity[:500]
        tw, tc = self.t_workers, self.t_claims
        with self.engine.begin() as c:
            c.execute(sa.update(tw).where(tw.c.worker == worker).values(**values))
            c.execute(
                sa.update(tc)
                .where(tc.c.benchmark == bench, tc.c.worker == worker, tc.c.done.is_(False))
                .values(heartbeat_at=now)
            )

    def end_worker(self, bench: str, worker: str, state: str) -> None:
        import sqlalchemy as sa

        tw, tc = self.t_workers, self.t_claims
        with self.engine.begin() as c:
            c.execute(
                sa.update(tw)
                .where(tw.c.worker == worker)
                .values(state=state, activity="", heartbeat_at=self._now())
            )
            c.execute(
                sa.delete(tc).where(
                    tc.c.benchmark == bench, tc.c.worker == worker, tc.c.done.is_(False)
                )
            )

    def workers(self, bench: str) -> list[WorkerRow]:
        import sqlalchemy as sa

        t = self.t_workers
        age = (self._now() - t.c.heartbeat_at).label("age")
        with self.engine.connect() as c:
            rows = c.execute(
                sa.select(t, age).where(t.c.benchmark == bench).order_by(t.c.started_at)
            ).all()
        return [
            WorkerRow(
                r.worker,
                r.host,
                int(r.pid),
                float(r.started_at),
                float(r.age),
                r.state,
                r.activity or "",
                json.loads(r.extra or "{}"),
            )
            for r in rows
        ]

    def close(self) -> None:
        self.engine.dispose()


# --------------------------------------------------------------------------------------------
# a JSON file beside a JournalStorage file
# --------------------------------------------------------------------------------------------


class FileBoard(Board):
    """The same records in one JSON file, each change made under Optuna's journal file lock
    (an ``O_EXCL`` lock file, which works on network file systems)."""

    def __init__(self, path: Path) -> None:
        from optuna.storages.journal import JournalFileOpenLock

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = JournalFileOpenLock(str(self.path))

    @contextlib.contextmanager
    def _state(self, write: bool = True) -> Iterator[dict[str, Any]]:
        self._lock.acquire()
        try:
            state: dict[str, Any] = {"benchmarks": {}, "claims": {}, "workers": {}}
            if self.path.is_file():
                state.update(json.loads(self.path.read_text() or "{}"))
            yield state
            if write:
                tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
                tmp.write_text(json.dumps(state))
                os.replace(tmp, self.path)
        finally:
            self._lock.release()

    @staticmethod
    def _ck(bench: str, key: str) -> str:
        return f"{bench}\x1f{key}"

    def benchmark(self, name: str) -> BenchmarkRecord | None:
        with self._state(write=False) as s:
            row = s["benchmarks"].get(name)
        if row is None:
            return None
        return BenchmarkRecord(name, row["identity"], unpack(row["manifest"]), row["created_at"])

    def benchmarks(self) -> list[str]:
        with self._state(write=False) as s:
            return sorted(s["benchmarks"])

    def _insert_benchmark(self, name: str, identity: dict[str, Any], manifest: str) -> bool:
        with self._state() as s:
            if name in s["benchmarks"]:
                return False
            s["benchmarks"][name] = {
                "identity": identity,
                "manifest": manifest,
                "created_at": time.time(),
            }
            return True

    def claim(self, bench: str, key: str, worker: str, grace_s: float) -> bool:
        now = time.time()
        with self._state() as s:
            row = s["claims"].get(self._ck(bench, key))
            if row is not None and (
                row["done"] or (row["worker"] != worker and now - row["heartbeat_at"] <= grace_s)
            ):
                return False
            s["claims"][self._ck(bench, key)] = {
                "worker": worker,
                "claimed_at": now,
                "heartbeat_at": now,
                "done": False,
                "status": None,
                "payload": None,
            }
            return True

    def holds(self, bench: str, key: str, worker: str) -> bool:
        with self._state() as s:
            row = s["claims"].get(self._ck(bench, key))
            if row is None or row["worker"] != worker or row["done"]:
                return False
            row["heartbeat_at"] = time.time()
            return True

    def finish(
        self, bench: str, key: str, worker: str, status: str, payload: str | None = None
    ) -> bool:
        with self._state() as s:
            row = s["claims"].get(self._ck(bench, key))
            if row is None or row["worker"] != worker:
                return False
            row.update(done=True, status=status, payload=payload, heartbeat_at=time.time())
            return True

    def release(self, bench: str, key: str, worker: str) -> None:
        with self._state() as s:
            row = s["claims"].get(self._ck(bench, key))
            if row is not None and row["worker"] == worker and not row["done"]:
                del s["claims"][self._ck(bench, key)]

    def claims(self, bench: str) -> dict[str, ClaimRow]:
        now = time.time()
        prefix = f"{bench}\x1f"
        with self._state(write=False) as s:
            items = list(s["claims"].items())
        return {
            k[len(prefix) :]: ClaimRow(
                k[len(prefix) :],
                r["worker"],
                now - r["heartbeat_at"],
                r["done"],
                r["status"],
                r["payload"],
            )
            for k, r in items
            if k.startswith(prefix)
        }

    def register_worker(
        self, bench: str, worker: str, host: str, pid: int, extra: Mapping[str, Any]
    ) -> None:
        now = time.time()
        with self._state() as s:
            s["workers"][worker] = {
                "benchmark": bench,
                "host": host,
                "pid": pid,
                "started_at": now,
                "heartbeat_at": now,
                "state": "running",
                "activity": "starting",
                "extra": dict(extra),
            }

    def beat(self, bench: str, worker: str, activity: str | None = None) -> None:
        now = time.time()
        with self._state() as s:
            w = s["workers"].get(worker)
            if w is not None:
                w["heartbeat_at"] = now
                if activity is not None:
                    w["activity"] = activity[:500]
            prefix = f"{bench}\x1f"
            for k, row in s["claims"].items():
                if k.startswith(prefix) and row["worker"] == worker and not row["done"]:
                    row["heartbeat_at"] = now

    def end_worker(self, bench: str, worker: str, state: str) -> None:
        with self._state() as s:
            w = s["workers"].get(worker)
            if w is not None:
                w.update(state=state, activity="", heartbeat_at=time.time())
            prefix = f"{bench}\x1f"
            for k in [
                k
                for k, r in s["claims"].items()
                if k.startswith(prefix) and r["worker"] == worker and not r["done"]
            ]:
                del s["claims"][k]

    def workers(self, bench: str) -> list[WorkerRow]:
        now = time.time()
        with self._state(write=False) as s:
            rows = [(k, r) for k, r in s["workers"].items() if r["benchmark"] == bench]
        rows.sort(key=lambda kr: kr[1]["started_at"])
        return [
            WorkerRow(
                k,
                r["host"],
                r["pid"],
                r["started_at"],
                now - r["heartbeat_at"],
                r["state"],
                r.get("activity") or "",
                r.get("extra") or {},
            )
            for k, r in rows
        ]
