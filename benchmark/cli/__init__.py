"""The ``genrebench`` command line. Expected failures print one clear line, never a traceback.

One module per command group, the options they share declared once (:mod:`._options`):

============================  =====================================================
``run``                       :mod:`.run`
``worker``, ``status``        :mod:`.workers` (a Dask worker; progress and dashboard)
``report``, ``ui``            :mod:`.report`
``data check``, ``download``  :mod:`.data`
``list``                      :mod:`.catalog`
``predict``                   :mod:`.predict`
``evaluate``                  :mod:`.evaluate`
``export``                    :mod:`.export`
============================  =====================================================

How a run shows itself (plan, progress lines, summary table, leaderboard) is in
:mod:`._presentation`; the consoles and the error handler in :mod:`._console`.
"""

from __future__ import annotations

import logging

import click
from rich.logging import RichHandler

from benchmark.cli import catalog, data, evaluate, export, predict, report, run, workers
from benchmark.cli._console import _StderrLines, console, out
from benchmark.cli._options import RunArgs
from benchmark.cli._presentation import FoldLog, print_plan, summary_table

__all__ = ["FoldLog", "RunArgs", "console", "main", "out", "print_plan", "summary_table"]


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.version_option(package_name="genrebench")
def main(verbose: bool) -> None:
    """genrebench: an honest AutoML model-comparison benchmark for music genre classification."""
    if console.is_terminal:
        handler: logging.Handler = RichHandler(
            console=console, show_path=False, rich_tracebacks=False
        )
        handler.setFormatter(logging.Formatter("%(message)s", datefmt="[%X]"))
    else:  # a log file, `docker compose logs`: one unwrapped, dated line per record
        handler = _StderrLines()
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
        )
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
    for noisy in ("alembic", "mlflow", "urllib3", "numba", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


main.add_command(run.run)
main.add_command(workers.worker)
main.add_command(workers.status)
main.add_command(report.report)
main.add_command(report.ui)
main.add_command(data.data)
main.add_command(data.download)
main.add_command(catalog.list_components)
main.add_command(predict.predict)
main.add_command(evaluate.evaluate)
main.add_command(export.export)
