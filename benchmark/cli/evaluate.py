"""``genrebench evaluate``: a saved model scored on the user's own labelled songs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from benchmark.cli._console import _handle_errors, console, out, skip_last_collection
from benchmark.cli._options import (
    jobs_option,
    no_tracking_option,
    saved_model_options,
    tracking_uri_option,
)
from benchmark.errors import GenrebenchError
from benchmark.results import MLFLOW_DB


def _ci(m: Any) -> str:
    from benchmark.report.formatting import pct

    return f"{pct(m.ci_low)} – {pct(m.ci_high)}"


def summary(ev: Any) -> Table:
    """The scores, then per-class recall, with their intervals."""
    from benchmark.report.formatting import pct

    m = ev.metrics
    table = Table(title=f"evaluation on {m.n} scored file(s)", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("95 % CI", justify="right")
    table.add_column("files", justify="right")
    for name, label in (
        ("accuracy", "accuracy"),
        ("balanced_accuracy", "balanced accuracy"),
        ("macro_f1", "macro-F1"),
    ):
        score = getattr(m, name)
        table.add_row(label, pct(score.value), _ci(score), str(m.n))
    table.add_section()
    for cls, r in m.recall.items():
        table.add_row(f"recall · {cls}", pct(r.value), _ci(r), str(m.support[cls]))
    return table


def confusion(ev: Any) -> Table:
    m = ev.metrics
    table = Table(
        title="confusion matrix", caption="rows: label · columns: predicted", title_justify="left"
    )
    table.add_column("label")
    for p in m.predicted:
        table.add_column(p, justify="right")
    for label, counts in zip(m.labels, m.confusion, strict=True):
        cells = [
            f"[bold]{c}[/]" if p == label else str(c)
            for p, c in zip(m.predicted, counts, strict=True)
        ]
        table.add_row(label, *cells)
    return table


def _tracking_uri(tracking_uri: str | None, model_path: Path) -> str | None:
    """``--tracking-uri`` (or ``$MLFLOW_TRACKING_URI``), else the store of the model's results
    folder (``<results>/<benchmark>/mlflow.db`` beside ``final_model/``) when it has one."""
    if tracking_uri:
        return tracking_uri
    db = model_path.resolve().parent / MLFLOW_DB
    if db.is_file():
        from benchmark.storage import default_tracking_uri

        return default_tracking_uri(db.parent)
    return None


def _log(ev: Any, uri: str, model_path: Path) -> None:
    """Log the evaluation run; a failure is a warning (the outputs are the evaluation)."""
    from benchmark.tracking.song_evaluation import log_song_evaluation

    results_dir = model_path.resolve().parent if uri.startswith("sqlite:") else None
    try:
        info = log_song_evaluation(ev, uri, results_dir=results_dir)
    except Exception as exc:  # MLflow is a record of the evaluation, not the evaluation
        console.print(
            f"[yellow]evaluation not logged to MLflow[/]: {type(exc).__name__}: {exc}",
            highlight=False,
            soft_wrap=True,
        )
        return
    linked = f", linked to {info['model_uri']}" if info["model_uri"] else " (model not registered)"
    console.print(
        f"MLflow: run {info['run_id']} in experiment {info['experiment']}{linked}",
        highlight=False,
        soft_wrap=True,
    )


@click.command()
@click.argument("source", type=click.Path(exists=True))
@saved_model_options
@click.option(
    "--map",
    "maps",
    multiple=True,
    metavar="LABEL=CLASS",
    help="Send a label to one of the model's classes, e.g. --map hip-hop=hiphop (repeatable). "
    "Labels match classes ignoring case.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the evaluation to this .json (everything: model, counts, skipped labels, "
    "metrics with CIs, one row per file) or .csv (one row per file; the metrics go to "
    "<name>.metrics.csv beside it).",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Where to write the HTML page. Default: beside --output (<name>.html), else "
    "./evaluation.html.",
)
@click.option("--no-html", is_flag=True, help="Do not write the HTML page.")
@click.option(
    "--windows", is_flag=True, help="Vote over every 30 s window of each song, not just the first."
)
@click.option(
    "--n-boot",
    type=click.IntRange(min=1),
    default=2000,
    show_default=True,
    help="Bootstrap resamples of the files for the intervals.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap.")
@tracking_uri_option(
    "MLflow tracking URI to log the evaluation run in (default: the mlflow.db of the model's "
    "results folder, when it has one; else nothing is logged)."
)
@no_tracking_option
@jobs_option
@_handle_errors
def evaluate(
    source: str,
    model_dir: str | None,
    results_dir: str,
    maps: tuple[str, ...],
    output: str | None,
    html_path: str | None,
    no_html: bool,
    windows: bool,
    n_boot: int,
    seed: int,
    tracking_uri: str | None,
    no_tracking: bool,
    jobs: int | None,
) -> None:
    """Score a saved model on labelled audio: SOURCE is a folder laid out as <label>/<file>
    (audio anywhere below each label's folder) or a CSV with the columns path,label (relative
    paths resolve against the CSV's folder).

    Prints accuracy, balanced accuracy, macro-F1 and per-class recall with 95 % bootstrap
    intervals over the files, and the confusion matrix; writes an HTML page and, with
    --output, a JSON or CSV file; logs an MLflow run. Labels the model lacks are listed and
    their files skipped (never counted wrong). A file that cannot be used is one error row,
    counted apart; the exit status is then 2, as for predict. These are your files, not
    GTZAN's splits: the figures say how the model carries over to them.
    """
    from benchmark.inference.pool import available_cores
    from benchmark.inference.saved_model import find_model, load_model
    from benchmark.inference.song_evaluation import (
        PROTOCOL_NOTE,
        evaluate_songs,
        parse_mapping,
        read_labelled,
    )
    from benchmark.inference.song_evaluation import write_song_evaluation as write_output
    from benchmark.report.song_evaluation_page import write_song_evaluation_page

    if output and not output.lower().endswith((".csv", ".json")):
        raise click.BadParameter("--output must end in .csv or .json", param_hint="--output")
    mapping = parse_mapping(maps)
    folder = model_dir if model_dir else find_model(results_dir)
    files = read_labelled(source)
    jobs = jobs or available_cores()
    model = load_model(folder, background=True)  # unpickled while the first files are extracted
    skip_last_collection()
    console.print(f"model: {model.describe()}", highlight=False, soft_wrap=True)
    bar = Progress(
        TextColumn("evaluate"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=len(files) < 2 or not console.is_terminal,
    )

    def on_file(path: str, result: Any) -> None:
        bar.advance(task)
        if isinstance(result, GenrebenchError):
            console.print(f"[bold red]error:[/] {result}", highlight=False, soft_wrap=True)
        elif result.warning:
            console.print(f"warning: {path}: {result.warning}", highlight=False, soft_wrap=True)

    with bar:
        task = bar.add_task("files", total=len(files))
        ev = evaluate_songs(
            model,
            files,
            source=str(source),
            mapping=mapping,
            windows=windows,
            n_boot=n_boot,
            seed=seed,
            on_file=on_file,
            jobs=jobs,
        )
    for label, n in ev.skipped_labels.items():
        console.print(
            f"[yellow]skipped[/]: label {label!r} is not a class of the model "
            f"({n} file(s) not scored; --map {label}=CLASS to score them)",
            highlight=False,
            soft_wrap=True,
        )
    out.print(summary(ev))
    out.print(confusion(ev))
    out.print(PROTOCOL_NOTE, highlight=False, style="dim")
    uri = None if no_tracking else _tracking_uri(tracking_uri, model.path)
    if uri is not None:
        _log(ev, uri, model.path)
    written = write_output(ev, Path(output)) if output else []
    if not no_html:
        page = Path(
            html_path or (Path(output).with_suffix(".html") if output else "evaluation.html")
        )
        written.append(write_song_evaluation_page(ev, page))
    n_failed = ev.count("error")
    console.print(
        f"{len(ev.rows)} file(s): {ev.count('scored')} scored, {n_failed} failed, "
        f"{ev.count('skipped')} skipped"
        + (f" · {', '.join(map(str, written))}" if written else ""),
        highlight=False,
        soft_wrap=True,
    )
    if n_failed:
        sys.exit(2)
