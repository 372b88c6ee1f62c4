"""The ``genrebench`` command line. Expected failures print one clear line, never a traceback."""

from __future__ import annotations

import functools
import logging
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pandas as pd
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from benchmark.errors import GenrebenchError

console = Console(stderr=True)
# tables are at least 120 columns wide: piped output (CI logs, files) must not truncate names
out = Console(width=max(Console().width, 120))


def _split_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def _config_overrides(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The options that override a config's selection and budgets (``run`` and ``worker``)."""
    for option in reversed(
        (
            click.option("--features", help="Comma-separated feature sets (overrides the config)."),
            click.option("--models", help="Comma-separated model families (overrides the config)."),
            click.option(
                "--protocol", "protocols", help="Comma-separated protocols (overrides the config)."
            ),
            click.option("--trials", type=int, help="Optuna trials per study (0: untuned)."),
            click.option("--timeout", type=float, help="Seconds per study."),
            click.option("--seed", type=int, help="The seed every random choice derives from."),
            click.option(
                "--search-seed",
                type=int,
                help="Another seed for the hyperparameter search alone: the same folds and "
                "models, another search (config key search_seed).",
            ),
            click.option(
                "--no-ensemble",
                is_flag=True,
                help="Skip the ensemble stage over the tuned pairs (config key ensembles).",
            ),
        )
    ):
        fn = option(fn)
    return fn


def _overridden_config(
    config_name: str,
    features: str | None,
    models: str | None,
    protocols: str | None,
    trials: int | None,
    timeout: float | None,
    seed: int | None,
    search_seed: int | None = None,
    no_ensemble: bool = False,
    **more: Any,
) -> Any:
    """The config named on the command line with the :func:`_config_overrides` applied."""
    from benchmark.config import load_config

    return load_config(config_name).with_overrides(
        feature_sets=_split_list(features),
        families=_split_list(models),
        protocols=_split_list(protocols),
        n_trials=trials,
        timeout_s=timeout,
        seed=seed,
        search_seed=search_seed,
        ensembles=False if no_ensemble else None,
        **more,
    )


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


_data_dir = click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="GTZAN folder (Kaggle layout). Default: $GENREBENCH_DATA, then ./data/gtzan.",
)


def _config_option(help: str, default: str | None = "quick") -> Callable[..., Any]:
    return click.option(
        "--config", "config_name", default=default, show_default=default is not None, help=help
    )


def _results_root_option(help: str = "Root of the results folders.") -> Callable[..., Any]:
    return click.option(
        "--results-dir",
        type=click.Path(file_okay=False),
        default="results",
        show_default=True,
        help=help,
    )


def _storage_option(help: str) -> Callable[..., Any]:
    return click.option("--storage", envvar="GENREBENCH_STORAGE", help=help)


def _tracking_uri_option(help: str) -> Callable[..., Any]:
    return click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", help=help)


_no_tracking = click.option("--no-tracking", is_flag=True, help="Do not log to MLflow.")


@main.command()
@_config_option("Benchmark config: a name in configs/ or a YAML path.")
@_data_dir
@_results_root_option()
@_config_overrides
@click.option("--n-jobs", type=int, help="Parallel worker processes over studies.")
@_storage_option("Optuna storage URL (default: SQLite file in the results folder).")
@_tracking_uri_option("MLflow tracking URI (default: SQLite file in the results folder).")
@_no_tracking
@click.option("--fail-fast", is_flag=True, help="Stop at the first failing fold (debugging).")
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
    config_name: str,
    data_dir: str | None,
    results_dir: str,
    features: str | None,
    models: str | None,
    protocols: str | None,
    trials: int | None,
    timeout: float | None,
    n_jobs: int | None,
    seed: int | None,
    search_seed: int | None,
    no_ensemble: bool,
    storage: str | None,
    tracking_uri: str | None,
    no_tracking: bool,
    fail_fast: bool,
    export: bool,
    budget: str | None,
    racing: bool | None,
    dry_run: bool,
) -> None:
    """Tune and evaluate every (feature set × family) pair under the config's protocols."""
    from benchmark.execution import RunOptions, plan_and_run

    cfg = _overridden_config(
        config_name,
        features,
        models,
        protocols,
        trials,
        timeout,
        seed,
        search_seed=search_seed,
        no_ensemble=no_ensemble,
        n_jobs=n_jobs,
        budget=budget,
        racing=racing,
    )
    opts = RunOptions(
        data_dir=data_dir,
        results_root=Path(results_dir),
        storage_url=storage,
        tracking_uri=tracking_uri,
        fail_fast=fail_fast,
        track=not no_tracking,
    )
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
    _write_leaderboard(result.results_dir)
    if export:
        from benchmark.storage import default_tracking_uri

        uri = None if no_tracking else tracking_uri or default_tracking_uri(result.results_dir)
        _export_final(result.results_dir, data_dir, storage, uri)


def print_plan(plan: Any, schedule: Any, cfg: Any) -> None:
    """``run --dry-run``: what the run would do and how long the cost model says it takes."""
    from benchmark.config import format_duration

    b = schedule.budget
    jobs = schedule.scheduler.jobs
    table = Table(title="plan (cost measured on the data)", title_justify="left")
    for col in ("feature set", "family", "studies", "trials/study", "s/trial", "core-h"):
        table.add_column(col, justify="left" if col in ("feature set", "family") else "right")
    cost = schedule.scheduler.cost
    by_pair: dict[tuple[str, str], list[Any]] = {}
    for job in jobs:
        by_pair.setdefault((job.pair.feature_set, job.pair.family), []).append(job)
    for (fs, fam), group in sorted(by_pair.items()):
        core = sum(cost.job_seconds(j) for j in group) / 3600
        table.add_row(
            fs,
            fam,
            str(len(group)),
            str(group[0].n_trials),
            f"{cost.trial_seconds(group[0]):.2f}",
            f"{core:.3f}",
        )
    console.print(table)
    n_trials = sum(cost.trials_of(j) for j in jobs)
    console.print(
        f"{len(jobs)} studies ({b.n_left} not done yet), {n_trials} trials, "
        f"{len(plan.skipped)} skipped; cost measured in {schedule.measure_s:.0f} s",
        highlight=False,
    )
    console.print(
        f"without a budget: {b.full_core_s / 3600:.2f} core-hours, about "
        f"{format_duration(b.full_wall_s + b.after_s)} on {cfg.n_jobs} process(es) "
        f"(of which {format_duration(b.after_s)} ensembles and export)",
        highlight=False,
    )
    if b.budget_s is not None:
        share = (
            f"each study tunes for at most {format_duration(b.cap_s)} ({b.n_capped} of "
            f"{len(b.trials)} get fewer trials than planned; {b.share:.0%} of all trials)"
            if b.cap_s is not None
            else "every trial"
        )
        fits = "fits" if b.fits else "does not fit even with one trial per study: later folds "
        console.print(
            f"with the budget {format_duration(b.budget_s)}: {share}, "
            f"{b.core_s / 3600:.2f} core-hours, about {format_duration(b.wall_s + b.after_s)}; "
            f"{fits}{'' if b.fits else 'will be skipped'}",
            highlight=False,
        )
    if schedule.scheduler.race is not None:
        console.print(
            "racing is on: pairs shown worse than the leader stop early, so the run may end "
            "sooner than this",
            highlight=False,
        )


class FoldLog:
    """Progress for a log (not a terminal: ``nohup``, ``docker compose logs``, CI): one line
    per finished fold, and a summary line every ``every_s`` seconds while the run lasts. Its
    trials are the finished folds' and those the running studies have finished so far (a
    50-trial study runs for minutes); the time left is the scheduler's cost-model estimate when
    it has one (it knows a CNN fold from an LDA fold), else the mean fold time so far."""

    def __init__(self, where: Console, every_s: float = 60.0) -> None:
        import threading

        self.where, self.every_s = where, every_s
        self.total = self.done = self.trials = 0
        self.t0 = time.monotonic()
        self._seconds_left: Callable[[], float | None] | None = None
        self._trials_running: Callable[[], int] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="fold-log", daemon=True)

    def start(
        self,
        total: int,
        seconds_left: Callable[[], float | None] | None = None,
        trials_running: Callable[[], int] | None = None,
    ) -> None:
        self.total, self.t0 = total, time.monotonic()
        self._seconds_left, self._trials_running = seconds_left, trials_running
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def fold(self, text: str, trials: int) -> None:
        self.done += 1
        self.trials += trials
        self.where.print(f"[{self.done}/{self.total}] {text}", highlight=False, soft_wrap=True)

    def summary(self) -> str:
        elapsed = time.monotonic() - self.t0
        estimate = self._seconds_left() if self._seconds_left is not None else None
        running = self._trials_running() if self._trials_running is not None else 0
        left = "?"
        if estimate is not None:
            left = f"{estimate / 60:.1f} min"
        elif self.done:
            left = f"{elapsed / self.done * (self.total - self.done) / 60:.1f} min"
        return (
            f"progress: {self.done}/{self.total} folds, {self.trials + running} trials, "
            f"{elapsed / 60:.1f} min elapsed, about {left} left"
        )

    def _beat(self) -> None:
        while not self._stop.wait(self.every_s):
            self.where.print(self.summary(), highlight=False, soft_wrap=True)


def _write_leaderboard(results_dir: Path) -> None:
    """The leaderboard at the end of ``run``: a failure here never fails the finished run (the
    results are on disk; ``genrebench report`` writes it again)."""
    from benchmark.report import write_report

    try:
        path = write_report(results_dir)
    except Exception as exc:  # the benchmark itself succeeded
        console.print(
            f"[yellow]warning[/]: leaderboard not written ({type(exc).__name__}: {exc}); "
            f"retry with `genrebench report {results_dir}`",
            highlight=False,
            soft_wrap=True,
        )
        return
    console.print(f"leaderboard: {path}", highlight=False, soft_wrap=True)


def summary_table(results: pd.DataFrame, baseline: dict[str, str]) -> None:
    """Mean accuracy per pair and protocol, best first, with Δ vs the baseline pair."""
    from benchmark.results import summarize_pairs

    summary = summarize_pairs(results, baseline)
    for protocol, rows in summary.groupby("protocol", sort=True):
        table = Table(title=f"protocol: {protocol}", title_justify="left")
        for col, justify in (
            ("feature set", "left"),
            ("family", "left"),
            ("accuracy", "right"),
            ("± std", "right"),
            ("bal. acc", "right"),
            ("Δ baseline", "right"),
            ("folds", "right"),
            ("trials", "right"),
            ("fit s", "right"),
        ):
            table.add_column(col, justify=justify)
        for _, r in rows.iterrows():
            if r["status"] != "done":
                # a raced-out pair shows its mean over the folds it got (folds says how many)
                reached = r["status"] == "eliminated" and math.isfinite(r["accuracy"])
                table.add_row(
                    r["feature_set"],
                    r["family"],
                    f"{r['accuracy']:.3f} (eliminated)" if reached else r["status"],
                    "",
                    "",
                    "",
                    r["folds"],
                    "",
                    "",
                    style="dim",
                )
                continue
            mark = " (baseline)" if r["is_baseline"] else ""
            delta = "" if math.isnan(r["delta"]) or r["is_baseline"] else f"{r['delta']:+.3f}"
            table.add_row(
                r["feature_set"],
                r["family"] + mark,
                f"{r['accuracy']:.3f}",
                "" if math.isnan(r["accuracy_std"]) else f"{r['accuracy_std']:.3f}",
                f"{r['balanced_accuracy']:.3f}",
                delta,
                r["folds"],
                str(int(r["n_trials"])),
                f"{r['fit_s']:.2f}",
            )
        out.print(table)


@main.command()
@click.argument("results_dir", required=False, type=click.Path(file_okay=False))
@_storage_option(
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


@main.command()
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


@main.group()
def data() -> None:
    """Inspect the dataset folder."""


@data.command("check")
@_data_dir
@click.option(
    "--manifest",
    default="gtzan",
    show_default=True,
    help="Dataset manifest in datasets/: gtzan, or folder (any class folders and file names).",
)
@_handle_errors
def data_check(data_dir: str | None, manifest: str) -> None:
    """Validate the dataset folder and say what is missing or malformed."""
    from rich.markup import escape

    from benchmark.data import Dataset

    ds = Dataset.open(data_dir, manifest)
    errors, notes = ds.check()
    # file and class names are the user's: "[live] set.mp3" is text, not markup
    out.print(f"dataset folder: {escape(str(ds.root))}")
    for note in notes:
        out.print(f"  {escape(note)}", highlight=False, soft_wrap=True)
    for err in errors:
        out.print(f"  [red]error[/]: {escape(err)}", highlight=False, soft_wrap=True)
    if errors:
        sys.exit(1)
    out.print(f"[green]ok[/]: {len(ds.tracks)} tracks, checksum {ds.checksum()}")
    classes = escape(", ".join(ds.classes))
    out.print(f"classes ({len(ds.classes)}): {classes}", highlight=False)


@main.command()
@click.option(
    "--dest",
    type=click.Path(file_okay=False),
    default="data/gtzan",
    show_default=True,
    help="Where to keep the download.",
)
@_handle_errors
def download(dest: str) -> None:
    """Download the Kaggle copy of GTZAN (needs kagglehub and the network)."""
    from benchmark import data as data_mod

    if not hasattr(data_mod, "download"):
        raise GenrebenchError("download is not available in this version")
    folder = data_mod.download(Path(dest))
    out.print(f"GTZAN is in {folder}; use --data-dir {folder} or set GENREBENCH_DATA={folder}")


@main.command("list")
@_handle_errors
def list_components() -> None:
    """List feature sets, model families, protocols and configs."""
    from benchmark.features import all_feature_sets
    from benchmark.models import all_families
    from benchmark.paths import configs_dir
    from benchmark.protocols import all_protocols

    out.print(
        "[bold]feature sets[/]: "
        + ", ".join(f"{n} ({'/'.join(c.views)})" for n, c in all_feature_sets().items())
    )
    out.print("[bold]families[/]:")
    for name, fam in all_families().items():
        skip = fam.skip_reason()
        out.print(
            f"  {name:<14} {fam.input_kind:<8} {fam.description}"
            + (f" [dim](skipped: {skip})[/]" if skip else ""),
            highlight=False,
        )
    out.print("[bold]protocols[/]:")
    for name, proto in all_protocols().items():
        out.print(f"  {name:<17} {proto.description}", highlight=False)
    out.print(
        "[bold]configs[/]: " + ", ".join(sorted(p.stem for p in configs_dir().glob("*.yaml")))
    )


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option(
    "--model",
    "model_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Saved model folder (model.json + model.joblib). Default: the newest "
    "<results-dir>/*/final_model/.",
)
@_results_root_option("Where to look for the newest final_model/ when --model is not given.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (for machines).")
@click.option(
    "--windows", is_flag=True, help="Vote over every 30 s window of the song, not just the first."
)
@click.option("--top-k", type=click.IntRange(min=1), default=3, show_default=True)
@click.option(
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write one row per file (path, top genre, every probability, error) to this "
    ".csv or .json file.",
)
@_handle_errors
def predict(
    files: tuple[str, ...],
    model_dir: str | None,
    results_dir: str,
    as_json: bool,
    windows: bool,
    top_k: int,
    output: str | None,
) -> None:
    """Predict the genre of audio FILE(s) or of every audio file under a DIR (wav, au, flac,
    ogg, mp3; recursive) with a saved model: the top genres with probabilities, from the first
    30 s (or every window with --windows). A file that cannot be used is one error row."""
    import json

    from benchmark.predict import (
        audio_files_in,
        find_model,
        load_model,
        model_inputs,
        predict_file,
        write_predictions,
    )

    if output and not output.lower().endswith((".csv", ".json")):
        raise click.BadParameter("--output must end in .csv or .json", param_hint="--output")
    model = load_model(model_dir if model_dir else find_model(results_dir))
    extractor = model_inputs(model)
    paths = audio_files_in(files)
    if not as_json:
        console.print(f"model: {model.describe()}", highlight=False, soft_wrap=True)
        console.print(model.training_band.describe(), highlight=False, soft_wrap=True)
    rows: list[tuple[str, Any]] = []  # (file, FilePrediction or the error)
    failed = warned = 0
    bar = Progress(
        TextColumn("predict"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True, disable=len(paths) < 2 or not console.is_terminal,
    )  # fmt: skip
    with bar:
        task = bar.add_task("files", total=len(paths))
        for f in paths:
            try:
                pred = predict_file(model, f, windows=windows, extractor=extractor)
            except GenrebenchError as exc:
                failed += 1
                rows.append((f, exc))
                if not as_json:
                    console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
                bar.advance(task)
                continue
            rows.append((f, pred))
            warned += pred.warning is not None
            bar.advance(task)
            if not as_json:
                where = f" ({pred.windows} windows)" if windows else ""
                ranked = " · ".join(f"{g} {p:.2f}" for g, p in pred.top(top_k))
                out.print(f"{f}{where}: {ranked}", highlight=False, soft_wrap=True)
                if pred.warning:
                    out.print(f"  warning: {pred.warning}", highlight=False, soft_wrap=True)
    if output:
        write_predictions(Path(output), rows, model.classes)
        if not as_json:
            console.print(
                f"{len(rows)} row(s), {failed} failed: {output}", highlight=False, soft_wrap=True
            )
    if warned and not as_json:
        console.print(
            f"{warned} file(s) band-limited below the training audio: see the warnings",
            highlight=False,
        )
    if as_json:
        doc = {
            "model": str(model.path),
            "feature_set": model.feature_set,
            "pair": model.meta.get("pair"),
            "training_audio": model.training_band.to_dict(),
            "predictions": [
                {"file": f, "error": str(r)} if isinstance(r, Exception) else r.to_dict(top_k)
                for f, r in rows
            ],
        }
        click.echo(json.dumps(doc, indent=2))
    if failed:
        sys.exit(2)


def _export_final(
    results_dir: Path, data_dir: str | None, storage: str | None, tracking_uri: str | None
) -> None:
    """The final model at the end of ``run``; like the leaderboard, a failure here never fails
    the finished run (``genrebench export`` retries it)."""
    from benchmark.final_model import export_from_results

    try:
        path = export_from_results(
            results_dir, data_dir=data_dir, storage_url=storage, within_budget=True
        )
    except GenrebenchError as exc:
        console.print(
            f"[yellow]final model not exported[/]: {exc}", highlight=False, soft_wrap=True
        )
        return
    console.print(
        f"final model: {path} (genrebench predict SONG.mp3)", highlight=False, soft_wrap=True
    )
    if tracking_uri is not None:
        _register(path, tracking_uri, results_dir)


def _register(final_dir: Path, tracking_uri: str, results_dir: Path) -> None:
    """Log and register the final model in MLflow; a failure is a warning (the folder is the
    model; ``genrebench export`` registers it again)."""
    from benchmark.serving import log_final_model

    try:
        uri = log_final_model(final_dir, tracking_uri, results_dir)
    except Exception as exc:  # the model folder exists: serving it is an extra
        console.print(
            f"[yellow]final model not registered in MLflow[/]: {type(exc).__name__}: {exc}",
            highlight=False,
            soft_wrap=True,
        )
        return
    console.print(
        f"registered: {uri} (mlflow models serve -m {uri} --env-manager local)",
        highlight=False,
        soft_wrap=True,
    )


@main.command()
@click.argument("results_dir", required=False, type=click.Path(file_okay=False))
@_data_dir
@click.option("--family", help="Export the best pair of this family instead.")
@click.option("--feature-set", help="Export the best pair of this feature set instead.")
@_storage_option("Optuna storage URL.")
@_tracking_uri_option(
    "MLflow tracking URI to register the model in (default: the folder's mlflow.db)."
)
@click.option("--no-register", is_flag=True, help="Do not log the model to MLflow's registry.")
@_handle_errors
def export(
    results_dir: str | None,
    data_dir: str | None,
    family: str | None,
    feature_set: str | None,
    storage: str | None,
    tracking_uri: str | None,
    no_register: bool,
) -> None:
    """Tune and refit the best pair of a finished benchmark on every track, for predict.

    The pair is chosen by cross-validated accuracy (artist-grouped k-fold first), never by the
    fault-filtered test split.
    """
    from benchmark.final_model import export_from_results
    from benchmark.report import find_results_dir
    from benchmark.storage import default_tracking_uri

    folder = find_results_dir(results_dir)
    path = export_from_results(
        folder,
        data_dir=data_dir,
        storage_url=storage,
        family=family,
        feature_set=feature_set,
    )
    out.print(f"final model: {path}", highlight=False, soft_wrap=True)
    if not no_register:
        _register(path, tracking_uri or default_tracking_uri(folder), folder)


# --------------------------------------------------------------------------------------------
# scale-out: genrebench worker / genrebench status (benchmark/execution/workers/worker.py)
# --------------------------------------------------------------------------------------------


@main.command()
@_config_option("Benchmark config: a name in configs/ or a YAML path (the same on every worker).")
@_data_dir
@_results_root_option(
    "Root of the results folders (feature cache; the results tables if this worker assembles them)."
)
@_config_overrides
@_storage_option(
    "Optuna storage URL shared by the workers: postgresql+psycopg://user:pw@host/db, "
    "journal:///shared/path/file.log (default: SQLite file in the results folder)."
)
@_tracking_uri_option(
    "MLflow tracking URI, e.g. http://mlflow-host:5000 (default: SQLite file in the "
    "results folder)."
)
@_no_tracking
@click.option("--name", "worker_id", help="This worker's name (default: host-pid-random).")
@click.option(
    "--heartbeat",
    type=click.IntRange(1),
    default=10,
    show_default=True,
    help="Seconds between heartbeats of this worker's trials and claims.",
)
@click.option(
    "--grace",
    type=click.IntRange(2),
    default=60,
    show_default=True,
    help="Seconds without a heartbeat after which a worker counts as dead: its running trial "
    "is retried and its claimed fold taken over.",
)
@click.option(
    "--no-helping",
    "no_helping",
    is_flag=True,
    help="Never add trials to studies other workers own (each study then runs in one worker, "
    "exactly as in `genrebench run`).",
)
@click.option(
    "--threads",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Native (BLAS/OpenMP) threads of this worker; start one worker per core.",
)
@click.option("--fail-fast", is_flag=True, help="Stop at the first failing fold (debugging).")
@_handle_errors
def worker(
    config_name: str,
    data_dir: str | None,
    results_dir: str,
    features: str | None,
    models: str | None,
    protocols: str | None,
    trials: int | None,
    timeout: float | None,
    seed: int | None,
    search_seed: int | None,
    no_ensemble: bool,
    storage: str | None,
    tracking_uri: str | None,
    no_tracking: bool,
    worker_id: str | None,
    heartbeat: int,
    grace: int,
    no_helping: bool,
    threads: int,
    fail_fast: bool,
) -> None:
    """Work on a benchmark together with any number of other workers (on any machines) that
    share --storage; ends when every (pair, fold) is finished."""
    import signal

    from benchmark.execution import WorkerOptions, run_worker

    if heartbeat * 2 > grace:
        raise click.BadParameter("--grace must be at least twice --heartbeat")
    cfg = _overridden_config(
        config_name, features, models, protocols, trials, timeout, seed, search_seed, no_ensemble
    )
    opts = WorkerOptions(
        data_dir=data_dir,
        results_root=Path(results_dir),
        storage_url=storage,
        tracking_uri=tracking_uri,
        track=not no_tracking,
        worker_id=worker_id,
        heartbeat_s=heartbeat,
        grace_s=grace,
        help_others=not no_helping,
        threads=threads,
        fail_fast=fail_fast,
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
        _write_leaderboard(result.results_dir)
    elif summary.complete:
        console.print("benchmark complete (another worker assembles the results)")


@main.command()
@_config_option("Benchmark name or config (default: the storage's only benchmark).", None)
@_storage_option("Optuna storage URL the workers share (default: results/<benchmark>/optuna.db).")
@_results_root_option("Root of the results folders (for --write, and the default storage).")
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
        table.add_column(col, justify=justify)
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


if __name__ == "__main__":
    main()
