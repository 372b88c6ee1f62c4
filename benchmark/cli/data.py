"""``genrebench data check`` validates the dataset folder; ``genrebench download`` fetches the
Kaggle copy of GTZAN."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from benchmark.cli._console import _handle_errors, out
from benchmark.cli._options import data_dir_option
from benchmark.errors import GenrebenchError


@click.group()
def data() -> None:
    """Inspect the dataset folder."""


@data.command("check")
@data_dir_option
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


@click.command()
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
