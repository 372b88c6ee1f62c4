"""The dataset layer: find a Kaggle-layout GTZAN folder, build its track table, validate it.

Everything downstream (feature sets, protocols, reports) works from one table with a row per
track: its id, genre, artist, file paths and fault-filtered membership. Problems are reported
with the file, the row and what to do, because a benchmark that silently drops data is not one.

One module per concept: :mod:`.manifest` (what a folder should hold), :mod:`.location` (where
the folder is), :mod:`.fetch` (``genrebench download``), :mod:`.track_names` (track ids from
file names), :mod:`.features_csv` (the Kaggle CSVs) and :mod:`.dataset` (the track table).
Every public name is re-exported here, so ``from benchmark.data import X`` is the import to use.
"""

from benchmark.data.dataset import Dataset, Ignored
from benchmark.data.features_csv import read_features_csv
from benchmark.data.fetch import download
from benchmark.data.location import DEFAULT_DATA_DIR, locate_data_dir
from benchmark.data.manifest import Manifest, load_manifest
from benchmark.data.track_names import AUDIO_EXTENSIONS, track_id_from_name, track_id_in_class

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
