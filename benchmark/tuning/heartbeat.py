"""A running trial's heartbeat: recorded every few seconds in a daemon thread while it runs.

When the storage was opened with a heartbeat interval (:func:`benchmark.storage.open_storage`),
a trial whose process died stops beating and Optuna fails it once its grace period is over, so
the study's next run (on another worker) sees it ended rather than forever ``RUNNING``.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any

import optuna

__all__ = ["heartbeat", "repeating"]


@contextlib.contextmanager
def repeating(
    interval_s: float, fn: Callable[[], object], *, first: bool = False
) -> Iterator[None]:
    """Call ``fn`` every ``interval_s`` seconds (and at once with ``first``) in a daemon thread
    while the block runs (trial heartbeats).
    A failed call is retried next interval (the storage may be briefly away); the thread is
    stopped and joined on exit."""
    stop = threading.Event()

    def loop() -> None:
        if first:
            with contextlib.suppress(Exception):
                fn()
        while not stop.wait(interval_s):
            with contextlib.suppress(Exception):
                fn()

    thread = threading.Thread(target=loop, name="genrebench-repeating", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@contextlib.contextmanager
def heartbeat(storage: optuna.storages.BaseStorage, trial_id: int) -> Iterator[None]:
    """Record the trial's heartbeat every interval while it runs (as ``Study.optimize``
    does), when the storage has heartbeats enabled."""
    from optuna.storages._heartbeat import is_heartbeat_enabled

    if not is_heartbeat_enabled(storage):
        yield
        return
    beating: Any = storage  # a heartbeat-enabled storage (RDBStorage)
    beat = functools.partial(beating.record_heartbeat, trial_id)
    with repeating(beating.get_heartbeat_interval(), beat, first=True):
        yield
