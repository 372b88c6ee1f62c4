"""MLflow logging of a benchmark: an experiment, a parent run per pair, a child run per trial.

The parts, by concept: :mod:`~benchmark.tracking.store` (the tracking store behind a URI, the
SQLite store created whole), :mod:`~benchmark.tracking.tracker` (the :class:`Tracker` writing
runs, finding them again on a resume, its layout in the store),
:mod:`~benchmark.tracking.artifacts` (a fold's files) and ``_common`` (tag keys, limits).
What a fold logs is derived from :class:`benchmark.results.FoldOutcome`, never listed here.

:class:`Tracker` is imported on first use: it needs mlflow (over a second to import), which
``from benchmark.tracking import default_tracking_uri`` or the store helpers do not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from benchmark.storage import default_tracking_uri, mask_url
from benchmark.tracking._common import started_run
from benchmark.tracking.store import _artifact_location, _store_problem, ensure_sqlite_store

if TYPE_CHECKING:
    from benchmark.tracking.artifacts import confusion_matrix
    from benchmark.tracking.tracker import Tracker

__all__ = [
    "Tracker",
    "_artifact_location",
    "_store_problem",
    "confusion_matrix",
    "default_tracking_uri",
    "ensure_sqlite_store",
    "mask_url",
    "started_run",
]

_LAZY = {
    "Tracker": "benchmark.tracking.tracker",
    "confusion_matrix": "benchmark.tracking.artifacts",
}


def __getattr__(name: str) -> Any:
    """Import the mlflow-backed names only when asked for."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
