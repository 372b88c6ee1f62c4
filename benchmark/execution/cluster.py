"""Where fold jobs run: Dask distributed, on one machine or many.

With no address, a run starts a :class:`distributed.LocalCluster` (``n_jobs`` worker processes,
one task thread each, listening on loopback only); with ``--scheduler tcp://host:8786`` (or
Dask's own ``DASK_SCHEDULER_ADDRESS``) it connects to a cluster whose workers are ``genrebench
worker ADDRESS`` (or plain ``dask worker ADDRESS --nthreads 1``) processes. Either way the
client (``genrebench run``) keeps the schedule, the logging and the results files; a worker only
gets a fold job and returns its :class:`~benchmark.results.FoldOutcome`.

A worker process computes with the machine's default BLAS/OpenMP threads, as a single-process
run (``n_jobs: 1``) and the engine before Dask did: Dask's nanny would otherwise pin them to one
(:data:`WORKER_CONFIG`), and a sum split over another number of threads rounds differently in
the last bits (LightGBM's histograms, BLAS on the spectrogram's 72,000 columns), so a
probability, a log loss, would no longer be the single process's, bit for bit.

A job's feature arrays are sent once per feature matrix (scattered, then shared by every job of
that matrix), so a worker needs no copy of the dataset for table and image sets. Each job is a
task with a key of its own (its study and trials), so a rerun's tasks are told apart and a
worker lost mid-fold has its task run again elsewhere, resuming the study's finished trials.

A fold must not go on burning a core once its client is gone: a task whose key the scheduler
released (the client disconnected or was killed) stops its worker process, which Dask's nanny
restarts empty (:func:`_stop_when_released`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.errors import ConfigError
from benchmark.execution.status import write_cluster_file
from benchmark.results import FoldOutcome
from benchmark.tuning.fold import run_fold
from benchmark.tuning.job import FoldJob

__all__ = ["WORKER_CONFIG", "DaskExecutor", "scheduler_address"]

log = logging.getLogger(__name__)

#: Dask's own variable for the scheduler a client connects to
ADDRESS_VARIABLE = "DASK_SCHEDULER_ADDRESS"

#: Dask settings of every worker genrebench starts: its nanny sets ``OMP/MKL/OPENBLAS_NUM_THREADS
#: =1`` before it starts a worker process (``distributed.nanny.pre-spawn-environ``); None unsets
#: them, so that a fold computes with the threads a single process uses (module docstring). A
#: variable the user exported still wins, in the run's process and the workers alike.
WORKER_CONFIG: dict[str, Any] = {
    f"distributed.nanny.pre-spawn-environ.{name}": None
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
}


def scheduler_address(given: str | None) -> str | None:
    """The cluster to run on: ``given`` (``--scheduler``), else ``$DASK_SCHEDULER_ADDRESS``,
    else None (a LocalCluster). Only ``tcp://`` and ``tls://`` addresses are taken."""
    address = given or os.environ.get(ADDRESS_VARIABLE) or None
    if address is not None and not address.startswith(("tcp://", "tls://")):
        raise ConfigError(
            f"scheduler address {address!r}: expected tcp://host:8786 or tls://host:8786"
        )
    return address


def refuse_local_storage(address: str | None, storage_url: str) -> None:
    """A remote cluster's workers cannot open the client's SQLite file: say so before any
    work starts (a journal file on a shared file system, or PostgreSQL, is reachable)."""
    if address is not None and storage_url.startswith("sqlite:"):
        raise ConfigError(
            f"the workers of {address} cannot reach a local SQLite storage: pass --storage "
            "postgresql+psycopg://user@host/db (or journal:///shared/path.log)"
        )


@dataclass(frozen=True)
class _Arrays:
    """The rows of one feature matrix, the part of a job that is big (sent once)."""

    X: np.ndarray
    row_track: np.ndarray
    y: np.ndarray
    row_copy: np.ndarray | None


_EMPTY = np.empty(0)


def _run_task(job: FoldJob, arrays: _Arrays) -> FoldOutcome:
    """A fold job on a worker: its arrays put back, then :func:`run_fold`."""
    finished = _stop_when_released()
    try:
        full = replace(
            job, X=arrays.X, row_track=arrays.row_track, y=arrays.y, row_copy=arrays.row_copy
        )
        return run_fold(full)
    finally:
        finished.set()


def _stop_when_released(interval_s: float = 2.0) -> threading.Event:
    """Stop this worker process once the scheduler no longer wants the running task (its
    client is gone) and the task has not finished (set the returned event when it has): a
    thread cannot be stopped, and a fold left running would hold the core a restarted run
    needs. Its study keeps the finished trials; the nanny starts a fresh worker."""
    finished = threading.Event()
    try:
        from distributed import get_worker

        worker = get_worker()
        key = worker.get_current_task()
    except ValueError:  # not on a Dask worker (a test calling it directly)
        return finished

    def watch() -> None:
        while not finished.wait(interval_s):
            task = worker.state.tasks.get(key)
            if task is not None and task.state == "cancelled" and not finished.is_set():
                log.warning("fold task %s was released by the scheduler: this worker stops", key)
                os._exit(3)

    threading.Thread(target=watch, name="stop-when-released", daemon=True).start()
    return finished


class DaskExecutor:
    """Fold jobs as Dask tasks, with the cluster started (or connected) at the first job that
    must run: a rerun whose folds are all stored starts none.

    :meth:`submit` returns a :class:`concurrent.futures.Future`, so the scheduler waits on
    Dask tasks and on jobs read back in process alike."""

    def __init__(
        self,
        n_jobs: int,
        address: str | None = None,
        security: Any = None,
        note_dir: Path | None = None,
    ) -> None:
        self.n_jobs = n_jobs
        self.address = address
        self.security = security
        self.note_dir = note_dir  # where the cluster is noted for `genrebench status`
        self._note: Path | None = None
        self._client: Any = None
        self._cluster: Any = None
        self._sent: dict[int, Any] = {}  # id of a job's X -> its scattered _Arrays
        self._closing = False  # set by shutdown: a cancelled task is then not sent again

    @property
    def client(self) -> Any:
        if self._client is None:
            self._start()
        return self._client

    def _start(self) -> None:
        from distributed import Client, LocalCluster

        # the scheduler and nannies of a LocalCluster log in this process: their start-up and
        # shut-down lines would bury the run's own (a lost worker still shows, as a warning)
        logging.getLogger("distributed").setLevel(logging.WARNING)
        if self.address is None:
            import dask

            with dask.config.set(WORKER_CONFIG):
                self._cluster = LocalCluster(
                    n_workers=self.n_jobs,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",  # loopback only: a scheduler runs whatever it is sent
                    dashboard_address="127.0.0.1:0",
                    silence_logs=logging.ERROR,
                )
            self._client = Client(self._cluster)
        else:
            kwargs = {"security": self.security} if self.security is not None else {}
            self._client = Client(self.address, timeout="30s", **kwargs)
        where = self.address or f"a local cluster of {self.n_jobs} worker processes"
        link = self._dashboard()
        log.info("fold jobs run on %s; dashboard: %s", where, link)
        if self.note_dir is not None:
            address = self.address or str(self._cluster.scheduler_address)
            self._note = write_cluster_file(self.note_dir, address, link)

    def _dashboard(self) -> str:
        """The dashboard's URL, or why there is none (it needs bokeh)."""
        try:
            info = self._client.scheduler_info()
            port = info.get("services", {}).get("dashboard")
        except Exception:  # only a link in a log line
            port = None
        if not port:
            return "none (pip install bokeh for Dask's dashboard)"
        return str(self._client.dashboard_link)

    def threads(self) -> int:
        """The cluster's worker threads now (``n_jobs`` before it is reached): how many
        jobs are worth having in flight."""
        if self._client is None:
            return self.n_jobs
        try:
            workers = self._client.scheduler_info(n_workers=-1).get("workers", {})
        except Exception:  # a lost connection: the next submit says so
            return self.n_jobs
        return sum(int(w.get("nthreads", 1)) for w in workers.values()) or 1

    def _arrays(self, job: FoldJob) -> Any:
        key = id(job.X)
        if key not in self._sent:
            arrays = _Arrays(job.X, job.row_track, job.y, job.row_copy)
            # on every worker there now: a worker lost later takes no only copy with it (workers
            # that join fetch it from a peer, and keep it)
            self._sent[key] = self._scatter(arrays)
        return self._sent[key]

    def _scatter(self, arrays: _Arrays, attempts: int = 5) -> Any:
        """Send ``arrays`` to every worker; a worker lost while they are sent makes the
        scheduler's list stale for a moment: try again, and at last to one worker only."""
        for attempt in range(attempts):
            try:
                return self.client.scatter(arrays, hash=False, broadcast=attempt < attempts - 1)
            except Exception as exc:  # KeyError, CommClosedError: a worker went away
                if attempt == attempts - 1:
                    raise
                log.warning("arrays not sent (%s: %s): again", type(exc).__name__, exc)
                time.sleep(1.0)
        raise AssertionError("unreachable")

    def submit(self, job: FoldJob) -> Future[FoldOutcome]:
        future: Future[FoldOutcome] = Future()
        self._send(job, future, LOST_DATA_RETRIES)
        return future

    def _send(self, job: FoldJob, future: Future[FoldOutcome], retries: int) -> None:
        """Submit ``job``'s task and settle ``future`` with its outcome. A task cancelled
        because its arrays were lost with every worker that held them is sent again, with
        the arrays sent again (``retries`` times): the run goes on, the study keeps its
        trials."""
        arrays = self._arrays(job)
        light = replace(job, X=_EMPTY, row_track=_EMPTY, y=_EMPTY, row_copy=None)
        # a task sent again needs a key of its own: the client answers a submit of a key it
        # still holds with that (cancelled) task, which would be no new attempt at all
        again = LOST_DATA_RETRIES - retries
        key = task_key(job) if again == 0 else f"{task_key(job)}-again{again}"
        task = self.client.submit(_run_task, light, arrays, key=key, pure=False, retries=0)

        def settle(done: Any) -> None:
            try:
                future.set_result(done.result())
            except BaseException as exc:  # a fail_fast error, a worker lost too often
                if retries > 0 and not self._closing and _lost_data(exc):
                    log.warning("%s: its data was lost with a worker; sent again", done.key)
                    if self._sent.get(id(job.X)) is arrays:  # not already sent again
                        self._sent.pop(id(job.X))
                    try:
                        self._send(job, future, retries - 1)
                    except Exception as again:  # the cluster is gone: the run must hear it
                        future.set_exception(again)
                else:
                    future.set_exception(exc)

        task.add_done_callback(settle)
        future.task = task  # type: ignore[attr-defined]  # held: a released future is cancelled

    def shutdown(self, wait: bool = True, **_: Any) -> None:
        """Close the client (its tasks are released) and a cluster started here."""
        self._closing = True
        self._sent.clear()
        if self._note is not None:
            self._note.unlink(missing_ok=True)
        if self._client is not None:
            self._client.close()
        if self._cluster is not None:
            # a worker slow to stop is killed after a few seconds: not worth a warning
            logging.getLogger("distributed.nanny").setLevel(logging.ERROR)
            self._cluster.close()
        self._client = self._cluster = None


#: how often a task whose scattered arrays were lost is sent again
LOST_DATA_RETRIES = 10


def _lost_data(exc: BaseException) -> bool:
    """Whether a task was cancelled by the scheduler (its input lost with its workers), not
    failed by its own code or released by this client."""
    from distributed.client import FutureCancelledError

    return isinstance(exc, FutureCancelledError)


def task_key(job: FoldJob) -> str:
    """One key per fold job and trial budget: a task of a rerun with more trials is another."""
    return f"fold-{job.study_name}-{job.n_trials}"
