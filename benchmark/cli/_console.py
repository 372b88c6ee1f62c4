"""Where the command line writes, and how it fails: the two consoles, the log handler and the
error handler every command wears (an expected failure is one clear line, never a traceback)."""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any

from rich.console import Console

from benchmark.errors import GenrebenchError

console = Console(stderr=True)
# tables are at least 120 columns wide: piped output (CI logs, files) must not truncate names
out = Console(width=max(Console().width, 120))


def skip_last_collection() -> None:
    """At exit, freeze every object instead of letting the interpreter's last garbage
    collection walk them: after loading a model that walk is ~0.2 s of a one-song ``predict``,
    and the process is ending anyway (registered once, so in-process test runs are unaffected
    until their own exit)."""
    global _FREEZE_AT_EXIT
    if not _FREEZE_AT_EXIT:
        import atexit
        import gc

        atexit.register(gc.freeze)
        _FREEZE_AT_EXIT = True


_FREEZE_AT_EXIT = False


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While inside: ``kill``, ``docker stop``, a batch system's time limit stop the command as
    Ctrl-C does (finished work kept, MLflow runs ended KILLED), not dead on the spot with runs
    left RUNNING. Outside the main thread (no signal handlers there): nothing changes."""
    import signal
    import threading

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except GenrebenchError as exc:
            # soft_wrap: the message stays one line however narrow the terminal
            console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            sys.exit(2)
        except KeyboardInterrupt:
            console.print(
                "[yellow]interrupted[/]: finished trials and folds are kept; run the same "
                "command again to resume"
            )
            sys.exit(130)

    return wrapper


class _StderrLines(logging.StreamHandler):  # type: ignore[type-arg]
    """Plain log lines on whatever ``sys.stderr`` is when a record is written (a test runner
    swaps it between commands), never wrapped to a console's width."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass
