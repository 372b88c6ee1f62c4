"""``genrebench export``: the final model of a finished benchmark, refit on every track and
registered in MLflow; ``run`` ends with the same export."""

from __future__ import annotations

from pathlib import Path

import click

from benchmark.cli._console import _handle_errors, console, out
from benchmark.cli._options import data_dir_option, storage_option, tracking_uri_option
from benchmark.errors import GenrebenchError


def export_final(
    results_dir: Path, data_dir: str | None, storage: str | None, tracking_uri: str | None
) -> None:
    """The final model at the end of ``run``; like the leaderboard, a failure here never fails
    the finished run (``genrebench export`` retries it)."""
    from benchmark.final_model.export import export_from_results

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
        register(path, tracking_uri, results_dir)


def register(final_dir: Path, tracking_uri: str, results_dir: Path) -> None:
    """Log and register the final model in MLflow; a failure is a warning (the folder is the
    model; ``genrebench export`` registers it again)."""
    from benchmark.inference.serving import log_final_model

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


@click.command()
@click.argument("results_dir", required=False, type=click.Path(file_okay=False))
@data_dir_option
@click.option("--family", help="Export the best pair of this family instead.")
@click.option("--feature-set", help="Export the best pair of this feature set instead.")
@storage_option("Optuna storage URL.")
@tracking_uri_option(
    "MLflow tracking URI to register the model in (default: the folder's mlflow.db)."
)
@click.option("--no-register", is_flag=True, help="Do not log the model to MLflow's registry.")
@click.option(
    "--refit",
    is_flag=True,
    help="Refit even when the saved final model is up to date (same config, data, code and "
    "results).",
)
@_handle_errors
def export(
    results_dir: str | None,
    data_dir: str | None,
    family: str | None,
    feature_set: str | None,
    storage: str | None,
    tracking_uri: str | None,
    no_register: bool,
    refit: bool,
) -> None:
    """Tune and refit the best pair of a finished benchmark on every track, for predict.

    The pair is chosen by cross-validated accuracy (artist-grouped k-fold first), never by the
    fault-filtered test split.
    """
    from benchmark.final_model.export import export_from_results
    from benchmark.report import find_results_dir
    from benchmark.storage import default_tracking_uri

    folder = find_results_dir(results_dir)
    path = export_from_results(
        folder,
        data_dir=data_dir,
        storage_url=storage,
        family=family,
        feature_set=feature_set,
        refit=refit,
    )
    out.print(f"final model: {path}", highlight=False, soft_wrap=True)
    if not no_register:
        register(path, tracking_uri or default_tracking_uri(folder), folder)
