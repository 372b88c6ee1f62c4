"""Where the dataset folder is: ``--data-dir``, then ``$GENREBENCH_DATA``, then ``./data/gtzan``,
and the Kaggle archive's one-level-down layout; users bring their own copy, so finding it
and saying what is missing is the first thing every command does."""

from __future__ import annotations

import os
from pathlib import Path

from benchmark.data.manifest import Manifest
from benchmark.errors import DataError

DEFAULT_DATA_DIR = Path("data/gtzan")


def locate_data_dir(data_dir: str | os.PathLike[str] | None, manifest: Manifest) -> Path:
    """The dataset folder: ``--data-dir``, then ``$GENREBENCH_DATA``, then ``./data/gtzan``."""
    tried: list[str] = []
    for source, candidate in (
        ("--data-dir", data_dir),
        ("$GENREBENCH_DATA", os.environ.get("GENREBENCH_DATA")),
        ("default", DEFAULT_DATA_DIR),
    ):
        if not candidate:
            continue
        path = Path(candidate).expanduser()
        if path.is_dir():
            return _data_root(path, manifest).resolve()
        tried.append(f"{source}={path}")
        if source != "default":
            # an explicit location that does not exist is an error, not a reason to look elsewhere
            raise DataError(
                f"data folder {path} (from {source}) does not exist.\n{manifest.download_hint}"
            )
    raise DataError(
        f"no GTZAN data folder found (tried {', '.join(tried)}).\n{manifest.download_hint}"
    )


def _holds_data(path: Path, manifest: Manifest) -> bool:
    return any((path / manifest.files[key]).exists() for key in ("features_30s", "images", "audio"))


def _data_root(path: Path, manifest: Manifest) -> Path:
    """``path``, or its ``Data/`` subfolder when ``path`` is the unpacked Kaggle archive (which
    keeps the layout one level down) and holds no data itself."""
    sub = manifest.download.get("subfolder")
    if sub and not _holds_data(path, manifest) and _holds_data(path / sub, manifest):
        return path / sub
    return path
