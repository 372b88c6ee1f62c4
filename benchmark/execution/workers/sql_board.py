"""The workers' coordination board in three small tables of a relational storage.

Timed by the database's clock, so that machines with skewed clocks agree; see
:mod:`benchmark.execution.workers.board` for what the board holds.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Mapping
from typing import Any

from benchmark.errors import ConfigError
from benchmark.execution.workers.board import BenchmarkRecord, Board, ClaimRow, WorkerRow, unpack

__all__ = ["SqlBoard"]


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
            return float(c.execute(sa.select(self._now())).scalar_one())

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
