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
import random
import time
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from benchmark.errors import ConfigError, GenrebenchError
from benchmark.periodic import repeating
from benchmark.storage import (
    journal_path,
    mask_url,
    why_unusable,
)

__all__ = [
    "BenchmarkRecord",
    "Board",
    "ClaimRow",
    "WorkerRow",
    "benchmark_record",
    "fold_key",
    "open_board",
    "pack",
    "unpack",
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
    """The board of the storage at ``url`` (tables or file created on first use); a storage
    that cannot hold it is a :class:`~benchmark.errors.ConfigError` saying why."""
    from benchmark.execution.workers.file_board import FileBoard
    from benchmark.execution.workers.sql_board import SqlBoard

    try:
        path = journal_path(url)
        if path is not None:
            return FileBoard(path.with_name(path.name + ".genrebench.json"))
        return SqlBoard(url)
    except GenrebenchError:
        raise
    except Exception as exc:
        raise ConfigError(
            f"cannot open the coordination tables in {mask_url(url)}: {why_unusable(exc, url)}"
        ) from exc


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


FINALIZE = "finalize"


def fold_key(study: str) -> str:
    """The claim key of a (pair, fold), by its study name."""
    return f"fold:{study}"


def benchmark_record(board: Board, name: str | None, url: str) -> BenchmarkRecord:
    """Benchmark ``name``'s record (the storage's only one when None), or a clear error."""
    names = board.benchmarks()
    if name is None:
        if len(names) != 1:
            listed = ", ".join(names) or "none"
            raise GenrebenchError(
                f"{mask_url(url)} holds {len(names)} benchmarks ({listed}): pass --config NAME"
            )
        name = names[0]
    record = board.benchmark(name)
    if record is None:
        raise GenrebenchError(
            f"no benchmark {name!r} in {mask_url(url)} (it holds: {', '.join(names) or 'none'}); "
            "start a `genrebench worker` on it first"
        )
    return record
