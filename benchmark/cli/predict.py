"""``genrebench predict``: the genres of the user's songs from a saved final model."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from benchmark.cli._console import _handle_errors, console, out, skip_last_collection
from benchmark.cli._options import jobs_option, saved_model_options
from benchmark.errors import GenrebenchError


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path())
@saved_model_options
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
@jobs_option
@_handle_errors
def predict(
    files: tuple[str, ...],
    model_dir: str | None,
    results_dir: str,
    as_json: bool,
    windows: bool,
    top_k: int,
    output: str | None,
    jobs: int | None,
) -> None:
    """Predict the genre of audio FILE(s) or of every audio file under a DIR (wav, au, flac,
        ogg, mp3; recursive) with a saved model: the top genres with probabilities, from the first
        30 s (or every window with --windows). A file that cannot be used is one error row. Files
    are decoded in --jobs processes; rows come out as files finish, in the order given."""
    import json

    from benchmark.inference.pool import available_cores
    from benchmark.inference.predict import audio_files_in, predict_files, write_predictions
    from benchmark.inference.saved_model import find_model, load_model

    if output and not output.lower().endswith((".csv", ".json")):
        raise click.BadParameter("--output must end in .csv or .json", param_hint="--output")
    folder = model_dir if model_dir else find_model(results_dir)
    paths = audio_files_in(files)
    jobs = jobs or available_cores()
    model = load_model(folder, background=True)  # unpickled while the first files are extracted
    skip_last_collection()
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
        for f, pred in predict_files(model, paths, windows=windows, jobs=jobs):
            bar.advance(task)
            if isinstance(pred, GenrebenchError):
                failed += 1
                rows.append((f, pred))
                if not as_json:
                    console.print(f"[bold red]error:[/] {pred}", highlight=False, soft_wrap=True)
                continue
            rows.append((f, pred))
            warned += pred.warning is not None
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
