"""The workers' coordination board as a JSON file beside a JournalStorage file.

Each change is made under Optuna's journal file lock and timed by the workers' clocks (keep
them in sync, e.g. with NTP, to well below the grace period); see
:mod:`benchmark.execution.workers.board` for what the board holds.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from benchmark.execution.workers.board import BenchmarkRecord, Board, ClaimRow, WorkerRow, unpack

__all__ = ["FileBoard"]


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
