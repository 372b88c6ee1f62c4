"""Where a file's extraction runs: in this process, or in a pool of worker processes that a
crashing or stuck decoder cannot take down.

The pool is an engine with no knowledge of features or models: it runs ``extract(specs, path,
windows)`` (a picklable top-level callable) for each path and yields ``(index, result)`` as
files finish. Its workers start from a fork server (or are spawned; a lone file's worker is
forked when :func:`fork_early` allows), preloading the modules the caller names, so they never
import the model's libraries (scikit-learn, LightGBM, JAX, MLflow): ``tests/integration/
test_architecture.py`` checks that importing this module and the pipeline loads none of them.
A worker that dies costs only its file: the pool is rebuilt, the files that were in flight
with it are retried one at a time, and the one that kills a worker alone gets a
:class:`WorkerDiedError`; a file in flight for too long is stopped the same way
(:class:`ExtractionTimeout`).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from benchmark.errors import GenrebenchError

__all__ = [
    "FILE_TIMEOUT_S",
    "MODEL_LIBRARIES",
    "ExtractionTimeout",
    "Source",
    "WorkerDiedError",
    "available_cores",
    "fork_early",
    "in_pool",
    "in_process",
]

log = logging.getLogger(__name__)

#: the per-file work a worker runs: ``extract(specs, path, windows)``, returning the file's
#: result or its error (never raising: a pool sends it back whole)
Extract = Callable[[Any, str, bool], Any]

#: how long a new pool's workers may take to run a no-op after the pool broke
HEALTH_TIMEOUT_S = 120.0


#: a pool worker still on one file after this long is stopped and the file gets an error row
#: (a 30-s clip takes about a second; a long song with --windows, tens of seconds)
FILE_TIMEOUT_S = 600.0


class WorkerDiedError(GenrebenchError):
    """The process extracting a file's features died (a decoder crash, say)."""


class ExtractionTimeout(GenrebenchError):
    """A file's features took longer than the pipeline's ``file_timeout_s`` (a decoder stuck in
    a loop, say): its worker was stopped."""


def available_cores() -> int:
    """The CPU cores this process may run on (``--jobs``'s default)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


#: ``(index, result)`` as files finish, ``None`` while waiting (so the consumer can look at time)
Source = Generator[tuple[int, Any] | None, None, None]


def in_process(extract: Extract, specs: Any, paths: Sequence[str], windows: bool) -> Source:
    from threadpoolctl import threadpool_limits

    for i, path in enumerate(paths):
        with threadpool_limits(limits=1):  # one clip's small matrices: BLAS threads only contend
            result = extract(specs, path, windows)
        yield i, result


def _worker_init() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)  # one process per core: no BLAS threads on top


#: the model's libraries, the one fork-safety list: the pool's workers never import them
#: (``tests/integration/test_architecture.py`` checks that importing this module and the
#: pipeline loads none), and since their native threads (OpenMP, JAX's and torch's pools) are
#: what a fork must not copy, once one is imported a worker always comes from the fork server
MODEL_LIBRARIES = (
    "sklearn",
    "lightgbm",
    "jax",
    "jaxlib",
    "keras",
    "torch",
    "tensorflow",
    "mlflow",
)


def fork_early() -> bool:
    """Whether a lone file's worker may be forked from this process: on Linux, while no thread
    but the main one runs and no model runtime is loaded (the CLI's fresh process before the
    model loads: numpy's idle, fork-safe BLAS pool is all a fork copies). Saves the fork
    server's start-up (~0.2 s) on the path a user waits on."""
    import threading

    return (
        sys.platform == "linux"
        and "fork" in multiprocessing.get_all_start_methods()
        and threading.active_count() == 1
        and not any(name in sys.modules for name in MODEL_LIBRARIES)
    )


def _context(preload: Sequence[str] = (), fork: bool = False) -> Any:
    if fork:  # only ever as fork_early allows
        return multiprocessing.get_context("fork")
    # otherwise never fork: the parent may hold threads (a loading model's, its runtime's)
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        modules = list(dict.fromkeys(preload))
        ctx.set_forkserver_preload(modules)  # used when the server (re)starts
        return ctx
    return multiprocessing.get_context("spawn")


def _pool(jobs: int, preload: Sequence[str], fork: bool = False) -> ProcessPoolExecutor:
    # with fork, the executor starts its workers before its own threads
    return ProcessPoolExecutor(
        max_workers=jobs, mp_context=_context(preload, fork), initializer=_worker_init
    )


def _ping() -> bool:
    return True


def _healthy(pool: ProcessPoolExecutor) -> bool:
    """Whether ``pool``'s workers start at all (a pool broken by every start, say by a main
    module without the ``if __name__ == "__main__"`` guard, would blame each file in turn)."""
    try:
        return pool.submit(_ping).result(timeout=HEALTH_TIMEOUT_S)
    except (BrokenProcessPool, TimeoutError):
        return False


def _died(path: str) -> WorkerDiedError:
    return WorkerDiedError(
        f"{path}: the worker process extracting its features died (a decoder crash?); "
        "no prediction for this file"
    )


def _hung(path: str, timeout_s: float) -> ExtractionTimeout:
    return ExtractionTimeout(
        f"{path}: extracting its features took longer than {timeout_s:g} s (a decoder stuck?); "
        "its worker was stopped, no prediction for this file"
    )


def _stop(pool: ProcessPoolExecutor, kill: bool) -> None:
    """Shut ``pool`` down; with ``kill``, first terminate its workers (one is stuck on a file
    and would never take the shutdown's sentinel)."""
    if kill:
        terminate = getattr(pool, "terminate_workers", None)  # Python 3.14
        if terminate is not None:
            terminate()
        else:
            workers = getattr(pool, "_processes", None) or {}
            for proc in list(workers.values()):
                proc.terminate()
    pool.shutdown(wait=not kill, cancel_futures=True)


def in_pool(
    extract: Extract,
    specs: Any,
    paths: Sequence[str],
    windows: bool,
    jobs: int,
    ahead: Callable[[], int],
    preload: Sequence[str] = (),
    fork_first: bool = False,
    on_started: Callable[[], None] | None = None,
    timeout_s: float | None = FILE_TIMEOUT_S,
) -> Source:
    """``(index, result)`` as files finish (``None`` now and then while waiting); files are
    submitted while their index is below ``ahead()`` (the consumer's look-ahead). When the pool
    breaks, the files in flight are retried one at a time in a new pool: one that breaks it alone
    is the culprit and gets a :class:`WorkerDiedError`. A file in flight for over ``timeout_s``
    is handled the same way, the workers stopped: retried alone, it gets an
    :class:`ExtractionTimeout` if it overruns again. ``fork_first``: the first pool forks its
    workers (:func:`fork_early`), a rebuilt one never does; ``on_started`` runs once the first
    files are submitted (their workers exist)."""
    todo = deque(range(len(paths)))
    alone: deque[int] = deque()
    running: dict[Future[Any], int] = {}
    sent_at: dict[Future[Any], float] = {}
    pool = _pool(jobs, preload, fork=fork_first)

    def submit(queue: deque[int]) -> bool:
        i = queue.popleft()
        try:
            fut = pool.submit(extract, specs, paths[i], windows)
        except BrokenProcessPool:  # broke since the last look: the file was not sent
            queue.appendleft(i)
            return False
        running[fut], sent_at[fut] = i, time.monotonic()
        return True

    def overdue() -> bool:
        now = time.monotonic()
        return timeout_s is not None and any(now - sent_at[f] > timeout_s for f in running)

    try:
        while todo or alone or running:
            broken = hung = False
            if alone:
                broken = not running and not submit(alone)
            else:
                # two per worker: the next file is queued while this process runs inference
                while not broken and todo and len(running) < 2 * jobs and todo[0] < ahead():
                    broken = not submit(todo)
            if on_started is not None:
                on_started()
                on_started = None
            if not broken:
                done, _ = wait(running, timeout=0.25, return_when=FIRST_COMPLETED)
                for fut in done:
                    try:
                        result = fut.result()
                    except BrokenProcessPool:
                        broken = True
                        continue
                    sent_at.pop(fut)
                    yield running.pop(fut), result
                hung = not broken and overdue()
                if not broken and not hung:
                    if not done:
                        yield None
                    continue
            suspects = sorted(running.values())
            running.clear()
            sent_at.clear()
            _stop(pool, kill=hung)
            pool = _pool(jobs, preload)
            if not _healthy(pool):
                log.warning("predict: pool workers do not start; extracting in this process")
                rest = sorted({*suspects, *alone, *todo})
                for item in in_process(extract, specs, [paths[i] for i in rest], windows):
                    if item is not None:
                        yield rest[item[0]], item[1]
                return
            if len(suspects) == 1:  # it was the only file in flight: the culprit
                path = paths[suspects[0]]
                yield suspects[0], _hung(path, timeout_s or 0.0) if hung else _died(path)
            else:
                alone.extendleft(reversed(suspects))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
