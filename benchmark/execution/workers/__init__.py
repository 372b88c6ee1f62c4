"""Many processes, on any machines, finish one benchmark together over a shared storage.

* :mod:`~benchmark.execution.workers.worker`: ``genrebench worker`` (claim, tune, help, log);
* :mod:`~benchmark.execution.workers.board`: the coordination board (benchmark records, claims,
  the worker registry), kept in tables (:mod:`~benchmark.execution.workers.sql_board`) or a
  file (:mod:`~benchmark.execution.workers.file_board`) beside the Optuna storage;
* :mod:`~benchmark.execution.workers.identity`: who may join, and the stored manifest;
* :mod:`~benchmark.execution.workers.assembly`: the results files from the storage alone;
* :mod:`~benchmark.execution.workers.status`: ``genrebench status``.
"""

from benchmark.execution.workers.assembly import assemble_results
from benchmark.execution.workers.status import Progress, progress
from benchmark.execution.workers.worker import WorkerOptions, WorkerSummary, run_worker

__all__ = [
    "Progress",
    "WorkerOptions",
    "WorkerSummary",
    "assemble_results",
    "progress",
    "run_worker",
]
