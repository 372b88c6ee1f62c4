"""``genrebench download``: fetch the Kaggle copy with kagglehub, imported only when called
(an optional dependency, and start-up time matters)."""

from __future__ import annotations

import inspect
import os
from pathlib import Path

from benchmark.data.location import _data_root
from benchmark.data.manifest import Manifest, load_manifest
from benchmark.errors import DataError


def download(dest: str | os.PathLike[str], manifest: Manifest | None = None) -> Path:
    """``genrebench download``: fetch the Kaggle copy of GTZAN with kagglehub into ``dest``.

    Returns the folder holding ``features_30_sec.csv`` (the archive's ``Data/``). A ``dest``
    that already holds the data is returned as is, without touching the network. kagglehub
    versions without ``output_dir`` keep the files in their own cache; ``dest`` then becomes a
    link to it (when ``dest`` is already something else, the cache folder is returned).
    Raises :class:`DataError` when kagglehub is missing or the download fails.
    """
    m = manifest or load_manifest("gtzan")
    dest = Path(dest).expanduser()
    csv_name = m.files["features_30s"]
    if dest.is_dir():
        root = _data_root(dest, m)
        if (root / csv_name).is_file():
            return root.resolve()
    handle = m.download["kaggle_dataset"]
    try:
        import kagglehub
    except ImportError:
        raise DataError(
            "genrebench download needs kagglehub: pip install kagglehub "
            f"(or download {handle} by hand).\n{m.download_hint}"
        ) from None
    try:
        takes_dir = "output_dir" in inspect.signature(kagglehub.dataset_download).parameters
    except (TypeError, ValueError):
        takes_dir = False
    kwargs = {"output_dir": str(dest)} if takes_dir else {}
    if takes_dir:
        dest.mkdir(parents=True, exist_ok=True)
    try:
        got = Path(kagglehub.dataset_download(handle, **kwargs))
    except Exception as exc:  # network, credentials, Kaggle API: one clear line
        first = (str(exc).strip().splitlines() or [""])[0]
        raise DataError(
            f"downloading Kaggle dataset {handle} failed ({type(exc).__name__}: {first}); "
            "check the network and your Kaggle credentials, or download it by hand"
        ) from None
    where = dest
    if not takes_dir and got.resolve() != dest.resolve():
        if dest.exists() or dest.is_symlink():
            where = got  # dest is something else already: leave it alone, use the cache
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.symlink_to(got.resolve(), target_is_directory=True)
    for folder in (_data_root(where, m), *sorted(p.parent for p in where.rglob(csv_name))):
        if (folder / csv_name).is_file():
            return folder.resolve()
    raise DataError(f"downloaded {handle} to {got}, but found no {csv_name} in it")
