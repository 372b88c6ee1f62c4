"""Scale-out: ``genrebench worker`` works on a benchmark with any number of other workers that
share a storage, ``genrebench status`` shows their progress (benchmark/execution/workers/)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click
from rich.table import Table

from benchmark.cli._console import _handle_errors, console, out
from benchmark.cli._options import (
    RunArgs,
    config_option,
    results_root_option,
    run_options,
    storage_option,
)
from benchmark.cli._presentation import summary_table, write_leaderboard
from benchmark.errors import GenrebenchError

if TYPE_CHECKING:
    from rich.console import JustifyMethod

#: the options a worker has on top of :func:`run_options`
_WORKER_OPTIONS = (
    click.option("--name", "worker_id", help="This worker's name (default: host-pid-random)."),
    click.option(
        "--heartbeat",
        type=click.IntRange(1),
        default=10,
        show_default=True,
        help="Seconds between heartbeats of this worker's trials and claims.",
    ),
    click.option(
        "--grace",
        type=click.IntRange(2),
        default=60,
        show_default=True,
        help="Seconds without a heartbeat after which a worker counts as dead: its running trial "
        "is retried and its claimed fold taken over.",
    ),
    click.option(
        "--no-helping",
        "no_helping",
        is_flag=True,
        help="Never add trials to studies other workers own (each study then runs in one worker, "
        "exactly as in `genrebench run`).",
    ),
    click.option(
        "--threads",
        type=click.IntRange(1),
        default=1,
        show_default=True,
        help="Native (BLAS/OpenMP) threads of this worker; start one worker per core.",
    ),
)


@click.command()
@run_options(
    config_help="Benchmark config: a name in configs/ or a YAML path (the same on every worker).",
    results_help="Root of the results folders (feature cache; the results tables if this worker "
    "assembles them).",
    storage_help="Optuna storage URL shared by the workers: postgresql+psycopg://user:pw@host/db, "
    "journal:///shared/path/file.log (default: SQLite file in the results folder).",
    tracking_help="MLflow tracking URI, e.g. http://mlflow-host:5000 (default: SQLite file in the "
    "results folder).",
    before_fail_fast=_WORKER_OPTIONS,
)
@_handle_errors
def worker(
    args: RunArgs,
    worker_id: str | None,
    heartbeat: int,
    grace: int,
    no_helping: bool,
    threads: int,
) -> None:
    """Work on a benchmark together with any number of other workers (on any machines) that
    share --storage; ends when every (pair, fold) is finished."""
    import signal

    from benchmark.execution import WorkerOptions, run_worker

    if heartbeat * 2 > grace:
        raise click.BadParameter("--grace must be at least twice --heartbeat")
    cfg = args.config()
    opts = WorkerOptions(
        **args.execution_options(),
        worker_id=worker_id,
        heartbeat_s=heartbeat,
        grace_s=grace,
        help_others=not no_helping,
        threads=threads,
    )

    def stop(signum: int, frame: Any) -> None:  # docker stop, kill: leave like Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)

    def joined(summary: Any, n_jobs: int, n_done: int) -> None:
        console.print(
            f"worker [bold]{summary.worker}[/] joined benchmark [bold]{cfg.name}[/] on "
            f"{summary.storage}: {n_done}/{n_jobs} folds finished",
            highlight=False,
            soft_wrap=True,
        )

    def scored(o: Any) -> None:
        acc = o.metrics.get("accuracy", math.nan)
        text = f"{o.pair.label} fold {o.fold}: {o.status}"
        if o.status == "done":
            text += f" acc {acc:.3f}, {o.n_trials + o.n_pruned} trials"
        console.print(text, highlight=False, soft_wrap=True)

    summary = run_worker(cfg, opts, on_joined=joined, on_outcome=scored)
    console.print(
        f"worker {summary.worker}: scored {len(summary.evaluated)} fold(s), ran "
        f"{summary.helped_trials} trial(s) for other workers' studies",
        highlight=False,
    )
    if summary.finalized is not None:
        result = summary.finalized
        summary_table(result.results, cfg.baseline)
        counts = ", ".join(f"{n} {s}" for s, n in sorted(result.counts.items()))
        console.print(f"{counts}; results in {result.results_dir}", highlight=False)
        write_leaderboard(result.results_dir)
    elif summary.complete:
        console.print("benchmark complete (another worker assembles the results)")


@click.command()
@config_option("Benchmark name or config (default: the storage's only benchmark).", None)
@storage_option("Optuna storage URL the workers share (default: results/<benchmark>/optuna.db).")
@results_root_option("Root of the results folders (for --write, and the default storage).")
@click.option(
    "--write",
    is_flag=True,
    help="Write the results tables (results/<benchmark>/*.parquet, run.json) from the storage, "
    "for `genrebench report` on this machine.",
)
@click.option("--partial", is_flag=True, help="With --write: also while folds are pending.")
@click.option(
    "--grace",
    type=click.IntRange(1),
    default=60,
    show_default=True,
    help="A worker silent this long is shown as gone.",
)
@_handle_errors
def status(
    config_name: str | None,
    storage: str | None,
    results_dir: str,
    write: bool,
    partial: bool,
    grace: int,
) -> None:
    """Progress of a benchmark across its workers, per pair, from the shared storage."""
    from benchmark.execution import assemble_results, progress

    name = config_name
    if config_name and Path(config_name).suffix in (".yaml", ".yml"):
        from benchmark.config import load_config

        name = load_config(config_name).name
    if storage is None:
        if name is None:
            raise GenrebenchError("pass --storage URL (or --config NAME for its default storage)")
        from benchmark.storage import default_storage_url

        db = Path(results_dir) / name / "optuna.db"
        if not db.is_file():
            raise GenrebenchError(f"no storage at {db}: pass --storage URL")
        storage = default_storage_url(db.parent)
    prog = progress(storage, name, grace_s=grace)
    by_run = prog.written_by_run
    if write and by_run:
        raise GenrebenchError(
            f"benchmark {prog.name!r} was written by `genrebench run`, which writes its results "
            f"tables itself (in {Path(results_dir) / prog.name}); --write is for workers' storages"
        )
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
        ("workers", "left"),
    ):
        table.add_column(col, justify=cast("JustifyMethod", justify))
    for r in prog.pairs.itertuples():
        if isinstance(r.skipped, str):
            table.add_row(
                r.protocol,
                r.feature_set,
                r.family,
                "skip",
                "",
                "",
                str(r.skipped)[:60],
                style="dim",
            )
            continue
        finished = r.done + r.error + r.timeout
        folds = f"{finished}/{r.folds}"
        if r.error or r.timeout:
            folds += f" ({r.error} error, {r.timeout} timeout)"
        trials = f"{r.trials}/{r.budget}" if r.budget else str(r.trials) if by_run else "-"
        table.add_row(
            r.protocol,
            r.feature_set,
            r.family,
            folds,
            trials,
            str(r.running_trials or ""),
            r.workers,
        )
    out.print(table)
    live = [w for w in prog.workers if w.state == "running" and w.age_s <= prog.grace_s]
    for w in prog.workers:
        state = w.state if w.state != "running" or w.age_s <= prog.grace_s else "gone"
        out.print(
            f"  worker {w.worker} on {w.host} (pid {w.pid}): {state}, seen {w.age_s:.0f} s ago"
            + (f", {w.activity}" if w.activity and state == "running" else ""),
            highlight=False,
        )
    line = (
        f"{prog.folds_done}/{prog.folds_total} folds finished, "
        f"{prog.trials_finished}/{prog.trials_budget} trials, {len(live)} worker(s) running"
    )
    if by_run:
        line = (
            f"{prog.folds_done}/{prog.folds_total} started folds finished, "
            f"{prog.trials_finished} trials (written by `genrebench run`: read from its Optuna "
            "studies; folds not yet started are not listed)"
        )
    if prog.finalized:
        line += "; results assembled"
    out.print(line, highlight=False)
    if write:
        result, pending = assemble_results(
            storage, prog.name, Path(results_dir), allow_partial=partial
        )
        note = f" ({pending} fold(s) pending, not in the table)" if pending else ""
        out.print(f"results written to {result.results_dir}{note}", highlight=False)
