"""The dataset layer: find a Kaggle-layout GTZAN folder, build its track table, validate it.

Everything downstream (feature sets, protocols, reports) works from one table with a row per
track: its id, genre, artist, file paths and fault-filtered membership. Problems are reported
with the file, the row and what to do, because a benchmark that silently drops data is not one.

One module per concept: :mod:`.manifest` (what a folder should hold), :mod:`.location` (where
the folder is), :mod:`.fetch` (``genrebench download``), :mod:`.track_names` (track ids from
file names), :mod:`.features_csv` (the Kaggle CSVs) and :mod:`.dataset` (the track table).
Every public name is re-exported here, so ``from benchmark.data import X`` is the import to use.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from benchmark.data.dataset import Dataset, Ignored
    from benchmark.data.features_csv import read_features_csv
    from benchmark.data.fetch import download
    from benchmark.data.location import DEFAULT_DATA_DIR, locate_data_dir
    from benchmark.data.manifest import Manifest, load_manifest
    from benchmark.data.track_names import (
        AUDIO_EXTENSIONS,
        track_id_from_name,
        track_id_in_class,
    )

#: where each public name lives: imported on first use, so that ``predict``'s file listing
#: (``AUDIO_EXTENSIONS``) does not pay for pandas, which the track table needs
_HOMES = {
    "Dataset": "dataset",
    "Ignored": "dataset",
    "read_features_csv": "features_csv",
    "download": "fetch",
    "DEFAULT_DATA_DIR": "location",
    "locate_data_dir": "location",
    "Manifest": "manifest",
    "load_manifest": "manifest",
    "AUDIO_EXTENSIONS": "track_names",
    "track_id_from_name": "track_names",
    "track_id_in_class": "track_names",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # once
    return value


__all__ = [
    "Dataset",
    "Ignored",
    "Manifest",
    "locate_data_dir",
    "load_manifest",
    "read_features_csv",
    "track_id_from_name",
    "track_id_in_class",
    "AUDIO_EXTENSIONS",
    "DEFAULT_DATA_DIR",
    "download",
]
