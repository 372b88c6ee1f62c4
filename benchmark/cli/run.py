"""``genrebench run``: tune and evaluate every pair in one process tree, then the summary, the
leaderboard and the final model."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from benchmark.cli._console import _handle_errors, console, sigterm_as_interrupt
from benchmark.cli._options import RunArgs, run_options
from benchmark.cli._presentation import FoldLog, print_plan, summary_table, write_leaderboard
from benchmark.cli.export import export_final


@click.command()
@run_options(
    after_overrides=(
        click.option("--n-jobs", type=int, help="Parallel worker processes over studies."),
        click.option(
            "--scheduler",
            envvar="DASK_SCHEDULER_ADDRESS",
            help="Run the fold jobs on this Dask cluster (tcp://host:8786 or tls://host:8786; "
            "default: a local cluster of --n-jobs processes).",
        ),
    )
)
@click.option(
    "--export/--no-export",
    default=True,
    show_default=True,
    help="Refit the best pair on every track as the model `genrebench predict` uses.",
)
@click.option(
    "--budget",
    help="Wall-clock budget for the whole run (2h, 45m, 1h30m; config key budget): trials are "
    "planned to fit it and no work starts after it.",
)
@click.option(
    "--racing/--no-racing",
    default=None,
    help="Race pairs on the k-fold protocols: a pair shown worse than the leader gets no more "
    "folds (config key racing).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the plan (studies, trials, estimated core-hours and wall time) and stop.",
)
@_handle_errors
def run(
    args: RunArgs,
    n_jobs: int | None,
    scheduler: str | None,
    export: bool,
    budget: str | None,
    racing: bool | None,
    dry_run: bool,
) -> None:
    """Tune and evaluate every (feature set × family) pair under the config's protocols."""
    from benchmark.execution import RunOptions, plan_and_run

    cfg = args.config(n_jobs=n_jobs, budget=budget, racing=racing)
    opts = RunOptions(**args.execution_options(), scheduler=scheduler)
    console.print(
        f"benchmark [bold]{cfg.name}[/]: {', '.join(cfg.feature_sets)} × "
        f"{len(cfg.family_names())} families × {', '.join(cfg.protocols)}; "
        f"{cfg.n_trials} trials/study, inner {cfg.inner_folds}-fold, seed {cfg.seed}, "
        + (f"search seed {cfg.search_seed}, " if cfg.search_seed is not None else "")
        + f"{cfg.n_jobs} job(s)"
        + (f", budget {cfg.budget}" if cfg.budget else ""),
        soft_wrap=True,  # one line in a log
    )
    if dry_run:
        from benchmark.execution import dry_run as plan_only

        print_plan(*plan_only(cfg, opts), cfg)
        return
    progress = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[last]}"),
        console=console,
        transient=False,
    )
    task: list[Any] = []
    log_lines = FoldLog(console) if not console.is_terminal else None

    def on_start(
        total: int, seconds_left: Callable[[], float | None], trials_running: Callable[[], int]
    ) -> None:
        task.append(progress.add_task("folds", total=total, last=""))
        if log_lines is not None:
            log_lines.start(total, seconds_left, trials_running)
        else:
            progress.start()

    def on_outcome(o: Any) -> None:
        acc = o.metrics.get("accuracy", math.nan)
        last = f"{o.pair.label} fold {o.fold}: {o.status}"
        if o.status == "done":
            last += f" acc {acc:.3f}"
        progress.update(task[0], advance=1, last=last)
        if log_lines is not None:
            log_lines.fold(last, o.n_trials + o.n_pruned)

    try:
        with sigterm_as_interrupt():
            result = plan_and_run(cfg, opts, on_start=on_start, on_outcome=on_outcome)
    finally:
        progress.stop()
        if log_lines is not None:
            log_lines.stop()
    summary_table(result.results, cfg.baseline)
    counts = ", ".join(f"{n} {s}" for s, n in sorted(result.counts.items()))
    console.print(f"{counts}; wall time {result.wall_s:.0f} s; results in {result.results_dir}")
    errors = result.results[result.results["status"] == "error"]
    for _, row in errors.head(5).iterrows():
        console.print(
            f"[red]error[/] {row['feature_set']} · {row['family']} · {row['protocol']} "
            f"fold {row['fold']}: {row['message']}",
            highlight=False,
        )
    write_leaderboard(result.results_dir)
    if export:
        from benchmark.storage import default_tracking_uri

        uri = (
            None
            if args.no_tracking
            else args.tracking_uri or default_tracking_uri(result.results_dir)
        )
        export_final(result.results_dir, args.data_dir, args.storage, uri)
