"""``genrebench report`` writes a benchmark's leaderboard from its results files;
``genrebench ui`` opens its MLflow tracking store in a browser."""

from __future__ import annotations

import sys

import click

from benchmark.cli._console import _handle_errors
from benchmark.cli._options import storage_option
from benchmark.errors import GenrebenchError


@click.command()
@click.argument("results_dir", required=False, type=click.Path(file_okay=False))
@storage_option(
    "Rewrite trials.parquet (the optimisation histories) from this Optuna storage first."
)
@_handle_errors
def report(results_dir: str | None, storage: str | None) -> None:
    """Write RESULTS_DIR/leaderboard.html (default: the most recent results/<benchmark>)
    from its results files alone; ``--storage`` first rewrites its trials.parquet from an
    Optuna storage (e.g. one a set of workers shared)."""
    from benchmark.report import find_results_dir, write_report

    folder = find_results_dir(results_dir)
    if storage:
        from benchmark.execution import write_trials_file

        write_trials_file(folder, storage)
    path = write_report(folder)
    click.echo(str(path))


@click.command()
@click.argument("results_dir", required=False, type=click.Path(file_okay=False))
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=5000,
    show_default=True,
    help="Port on 127.0.0.1 (0: any free port).",
)
@_handle_errors
def ui(results_dir: str | None, port: int) -> None:
    """Start `mlflow ui` on 127.0.0.1 against the benchmark's tracking store (RESULTS_DIR
    /mlflow.db; default: the most recent results/<benchmark>) and print its URL."""
    import os
    import socket

    from benchmark.report import MLFLOW_UI_ENV, find_results_dir, mlflow_ui_argv

    folder = find_results_dir(results_dir)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise GenrebenchError(
                f"port {port} on 127.0.0.1 is not free ({exc.strerror}): pass --port N, or "
                "--port 0 for any free port"
            ) from None
        port = sock.getsockname()[1]
    argv = mlflow_ui_argv(folder, port, sys.executable)
    click.echo(f"MLflow UI for {folder}: http://127.0.0.1:{port}  (Ctrl-C stops it)")
    sys.stdout.flush()
    sys.stderr.flush()
    env = {**os.environ, **MLFLOW_UI_ENV}
    # the server replaces this process: Ctrl-C and signals reach it directly, nothing is orphaned
    os.execve(sys.executable, argv, env)
