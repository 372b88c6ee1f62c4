"""The feature cache's key and file names are a stored format: results/cache of earlier runs must
still be found. The literals were computed before ``view`` was renamed ``input_kind`` (commit
8f9c052) on a fixed folder: fixed bytes (seeded fake data) and fixed modification times."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fake_gtzan import make_fake_gtzan

from benchmark.data import Dataset, load_manifest
from benchmark.features import get_feature_set

MTIME_NS = 1_700_000_000 * 10**9


@pytest.fixture(scope="module")
def fixed(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    """2 tracks per genre, the 30 s CSV and 1-s clips, every file's mtime set to one instant."""
    root = make_fake_gtzan(
        tmp_path_factory.mktemp("fixed") / "g",
        n_per_genre=2,
        with_images=False,
        with_audio=True,
        with_csv_3s=False,
        with_artists=False,
    )
    for p in root.rglob("*"):
        if p.is_file():
            os.utime(p, ns=(MTIME_NS, MTIME_NS))
    return Dataset(root, load_manifest("gtzan"))


def test_the_tracks_fingerprint_is_the_fixed_one(fixed: Dataset) -> None:
    # guards the literals below: a change of the fake data, not of the key, fails here first
    assert fixed.fingerprint() == "f1aa8d74585d8f5a"


def test_cache_keys_and_file_names_are_those_of_before_the_rename(fixed: Dataset) -> None:
    cache = Path("cache")
    csv = get_feature_set("csv_30s")
    assert csv.cache_key(fixed, "tabular") == "b5b08d3d0467206c"
    assert (
        csv._cache_path(fixed, "tabular", cache) == cache / "csv_30s-tabular-b5b08d3d0467206c.npz"
    )
    logmel = get_feature_set("logmel", bands=16)
    assert logmel.cache_key(fixed, "image") == "4fe99b168f00f66e"
    assert logmel.cache_key(fixed, "tabular") == "ebb57d8186496743"
    assert logmel._tensor_paths(fixed, "image", cache) == (
        cache / "logmel-image-4fe99b168f00f66e.json",
        cache / "logmel-image-4fe99b168f00f66e.dat",
    )
    assert logmel._cache_path(fixed, "tabular", cache).name == "logmel-tabular-ebb57d8186496743.npz"
    waveform = get_feature_set("waveform")
    assert waveform.cache_key(fixed, "waveform") == "6c0d4a0fdbf6e820"
    assert waveform._tensor_paths(fixed, "waveform", cache)[0].name == (
        "waveform-waveform-6c0d4a0fdbf6e820.json"
    )
