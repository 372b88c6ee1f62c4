"""Scale-out: ``genrebench worker`` starts a Dask worker for a cluster that ``genrebench run
--scheduler`` sends fold jobs to, ``genrebench status`` shows where a benchmark stands
(:mod:`benchmark.execution.status`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

import click
from rich.table import Table

from benchmark.cli._console import _handle_errors, out
from benchmark.cli._options import config_option, results_root_option, storage_option
from benchmark.errors import GenrebenchError
from benchmark.results import OPTUNA_DB

if TYPE_CHECKING:
    from rich.console import JustifyMethod


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("address", envvar="DASK_SCHEDULER_ADDRESS")
@click.argument("dask_args", nargs=-1, type=click.UNPROCESSED)
def worker(address: str, dask_args: tuple[str, ...]) -> None:
    """Run fold jobs for the Dask scheduler at ADDRESS (`dask worker ADDRESS --nthreads 1`).

    One fold job at a time per worker process, computing with the machine's default
    BLAS/OpenMP threads as a single-process run does (plain `dask worker` pins them to one,
    which changes probabilities in their last bits). Start `--nworkers N` for N jobs at once;
    any other `dask worker` option (`--name`, `--memory-limit`, `--tls-ca-file`, ...) is passed
    on. The worker needs genrebench installed and no dataset: the run extracts the features
    (audio ones too) and sends each job's arrays.
    """
    import dask
    from distributed.cli.dask_worker import main as dask_worker

    from benchmark.execution import WORKER_CONFIG

    dask.config.set(WORKER_CONFIG)  # read by the nannies dask_worker starts in this process
    dask_worker.main(args=[address, "--nthreads", "1", *dask_args], prog_name="dask worker")


@click.command()
@config_option("Benchmark name or config (default: the storage's only benchmark).", None)
@storage_option("Optuna storage URL of the run (default: results/<benchmark>/optuna.db).")
@results_root_option("Root of the results folders (finished folds, the default storage).")
@_handle_errors
def status(config_name: str | None, storage: str | None, results_dir: str) -> None:
    """Progress of a benchmark, per pair: finished folds, trials, and the run's dashboard."""
    from benchmark.execution import progress

    name = config_name
    if config_name and Path(config_name).suffix in (".yaml", ".yml"):
        from benchmark.config import load_config

        name = load_config(config_name).name
    if storage is None:
        if name is None:
            raise GenrebenchError("pass --storage URL (or --config NAME for its default storage)")
        from benchmark.storage import default_storage_url

        db = Path(results_dir) / name / OPTUNA_DB
        if not db.is_file():
            raise GenrebenchError(f"no storage at {db}: pass --storage URL")
        storage = default_storage_url(db.parent)
    prog = progress(storage, Path(results_dir), name)
    table = Table(
        title=f"benchmark {prog.name} on {prog.storage}", title_justify="left", highlight=False
    )
    for col, justify in (
        ("protocol", "left"),
        ("feature set", "left"),
        ("family", "left"),
        ("folds", "right"),
        ("trials", "right"),
        ("running", "right"),
    ):
        table.add_column(col, justify=cast("JustifyMethod", justify))
    for r in prog.pairs.itertuples():
        table.add_row(
            r.protocol,
            r.feature_set,
            r.family,
            f"{r.done}/{r.folds}",
            str(r.trials),
            str(r.running_trials or ""),
        )
    out.print(table)
    out.print(
        f"{prog.folds_done}/{prog.folds_started} started folds finished, "
        f"{prog.trials_finished} trials (folds not yet started are not listed)",
        highlight=False,
    )
    cluster = prog.cluster
    if cluster is not None:
        state = "running" if cluster["live"] else "no longer running here"
        out.print(
            f"run {state} on {cluster['scheduler']}; dashboard: {cluster['dashboard']}",
            highlight=False,
        )
