"""Call a function every few seconds in a daemon thread while a block runs.

The heartbeat of a trial (:mod:`benchmark.trial_count`) needs it; it is not a trial's concept.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

__all__ = ["repeating"]


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
