"""The csv_30s and csv_3s feature sets (benchmark/features/csv.py) on the fake Kaggle folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fake_gtzan import FEATURE_COLUMNS, GENRES, make_fake_gtzan
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from benchmark.data import Dataset, load_manifest
from benchmark.features import FeatureMatrix, get_feature_set
from benchmark.features.csv import Csv3s, Csv30s

MANIFEST = load_manifest("gtzan")
N = len(GENRES) * 8  # tracks in the fake_gtzan fixture


@pytest.fixture
def csv_only(tmp_path: Path) -> Path:
    """A private, writable fake folder with both CSVs (no pictures: fast to build)."""
    return make_fake_gtzan(
        tmp_path / "g", with_images=False, with_artists=False, with_fault_filtered=False
    )


def _bump_mtime(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))


def test_registered() -> None:
    assert isinstance(get_feature_set("csv_30s"), Csv30s)
    assert isinstance(get_feature_set("csv_3s"), Csv3s)
    assert Csv30s.input_kinds == Csv3s.input_kinds == ("tabular",)


def test_csv_30s(fake_gtzan: Path) -> None:
    ds = Dataset(fake_gtzan, MANIFEST)
    fs = get_feature_set("csv_30s")
    assert fs.unavailable(ds) is None
    assert fs.input_files(ds) == [fake_gtzan / "features_30_sec.csv"]
    fm = fs.build(ds, "tabular")
    assert fm.X.shape == (N, 57) and fm.X.dtype == np.float64
    assert fm.feature_names == list(FEATURE_COLUMNS)
    assert fm.missing is None and not fm.segmented
    assert sorted(fm.row_track) == sorted(ds.tracks["track_id"])
    raw = pd.read_csv(fake_gtzan / "features_30_sec.csv")
    expected = raw.set_index(raw["filename"].str.removesuffix(".wav"))[list(FEATURE_COLUMNS)]
    np.testing.assert_array_equal(fm.X, expected.loc[list(fm.row_track)].to_numpy())


def test_csv_3s_rows_are_grouped_by_track_in_segment_order(csv_only: Path, tmp_path: Path) -> None:
    path = csv_only / "features_3_sec.csv"
    raw = pd.read_csv(path)
    # shuffle the file: the set must still give each track's rows together, segment 0 first
    raw.sample(frac=1.0, random_state=0).to_csv(path, index=False)
    ds = Dataset(csv_only, MANIFEST)
    fm = get_feature_set("csv_3s").build(ds, "tabular")
    assert fm.X.shape == (10 * N, 57)
    assert fm.segmented and len(fm.tracks) == N
    assert fm.missing is None
    counts = pd.Series(fm.row_track).value_counts()
    assert (counts == 10).all()
    # each track's rows are contiguous
    starts = np.flatnonzero(np.r_[True, fm.row_track[1:] != fm.row_track[:-1]])
    assert len(starts) == N
    by_name = raw.set_index("filename")[list(FEATURE_COLUMNS)]
    for tid in ("blues.00000", "rock.00007"):
        rows = np.flatnonzero(fm.row_track == tid)
        want = by_name.loc[[f"{tid}.{k}.wav" for k in range(10)]].to_numpy()
        np.testing.assert_array_equal(fm.X[rows], want)


def test_segments_vary_around_their_track(fake_gtzan: Path) -> None:
    ds = Dataset(fake_gtzan, MANIFEST)
    seg = get_feature_set("csv_3s").build(ds, "tabular")
    clip = get_feature_set("csv_30s").build(ds, "tabular")
    z = (seg.X - clip.X.mean(0)) / clip.X.std(0)
    zc = (clip.X - clip.X.mean(0)) / clip.X.std(0)
    within = np.mean([z[seg.row_track == t].std(0).mean() for t in clip.row_track[:20]])
    assert 0.05 < within < 0.5 * zc.std(0).mean()  # segments differ, but less than tracks


def test_missing_reports_tracks_without_a_row(csv_only: Path) -> None:
    path30 = csv_only / "features_30_sec.csv"
    df = pd.read_csv(path30)
    df[df["filename"] != "jazz.00003.wav"].to_csv(path30, index=False)
    path3 = csv_only / "features_3_sec.csv"
    seg = pd.read_csv(path3)
    seg[~seg["filename"].str.startswith("pop.00005.")].to_csv(path3, index=False)
    # an image of jazz.00003 keeps the track in the dataset
    images = make_fake_gtzan(
        csv_only.parent / "img",
        genres=("jazz",),
        n_per_genre=4,
        with_csv_30s=False,
        with_csv_3s=False,
        with_artists=False,
        with_fault_filtered=False,
    )
    shutil.copytree(images / "images_original", csv_only / "images_original")
    ds = Dataset(csv_only, MANIFEST)
    fm30 = get_feature_set("csv_30s").build(ds, "tabular")
    assert fm30.missing == {"jazz.00003": "not in features_30s"}
    assert len(fm30.X) == N - 1 and "jazz.00003" not in set(fm30.row_track)
    fm3 = get_feature_set("csv_3s").build(ds, "tabular")
    assert fm3.missing == {"pop.00005": "not in features_3s"}
    assert len(fm3.X) == 10 * (N - 1)


def test_unavailable_without_the_3s_csv(tmp_path: Path) -> None:
    root = make_fake_gtzan(tmp_path / "g", n_per_genre=2, with_csv_3s=False, with_images=False)
    ds = Dataset(root, MANIFEST)
    reason = get_feature_set("csv_3s").unavailable(ds)
    assert reason == f"features_3_sec.csv is not in {root}"
    assert get_feature_set("csv_30s").unavailable(ds) is None
    root30 = make_fake_gtzan(tmp_path / "h", n_per_genre=2, with_csv_30s=False, with_images=False)
    reason = get_feature_set("csv_30s").unavailable(Dataset(root30, MANIFEST))
    assert reason == f"features_30_sec.csv is not in {root30}"


def test_cache_is_read_back_and_invalidated(
    csv_only: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = Dataset(csv_only, MANIFEST)
    cache = tmp_path / "cache"
    fs = get_feature_set("csv_3s")
    first = fs.load(ds, "tabular", cache)
    files = list(cache.glob("csv_3s-tabular-*.npz"))
    assert len(files) == 1 and fs.cache_key(ds, "tabular") in files[0].name
    assert not list(cache.glob("*.tmp"))

    def no_build(self, dataset, input_kind):  # noqa: ANN001, ANN202
        raise AssertionError("built again although the cache is valid")

    monkeypatch.setattr(Csv3s, "build", no_build)
    again = fs.load(ds, "tabular", cache)
    np.testing.assert_array_equal(again.X, first.X)
    np.testing.assert_array_equal(again.row_track, first.row_track)
    assert again.feature_names == first.feature_names and again.missing == first.missing
    assert isinstance(again, FeatureMatrix) and again.segmented
    # the other set has its own cache entry
    assert get_feature_set("csv_30s").load(ds, "tabular", cache).X.shape == (N, 57)

    # a changed CSV changes the key: the next load must build (here: the patched build raises)
    path = csv_only / "features_3_sec.csv"
    df = pd.read_csv(path)
    df.loc[0, "tempo"] = 999.0
    df.to_csv(path, index=False)
    _bump_mtime(path)
    ds = Dataset(csv_only, MANIFEST)
    with pytest.raises(AssertionError, match="built again"):
        fs.load(ds, "tabular", cache)
    monkeypatch.undo()
    rebuilt = fs.load(ds, "tabular", cache)
    tempo = FEATURE_COLUMNS.index("tempo")
    assert rebuilt.X[0, tempo] == 999.0 and first.X[0, tempo] != 999.0
    assert len(list(cache.glob("csv_3s-tabular-*.npz"))) == 2


def test_load_without_cache_and_unknown_input_kind(csv_only: Path) -> None:
    ds = Dataset(csv_only, MANIFEST)
    fm = get_feature_set("csv_30s").load(ds, "tabular", None)
    assert fm.X.shape == (N, 57)
    with pytest.raises(ValueError, match="gives no 'image' input"):
        get_feature_set("csv_30s").load(ds, "image", None)


def test_fake_features_are_learnable(fake_gtzan: Path) -> None:
    """The generated CSV is a real classification problem: far above chance (10 %)."""
    ds = Dataset(fake_gtzan, MANIFEST)
    fm = get_feature_set("csv_30s").build(ds, "tabular")
    y = ds.labels_of(fm.row_track)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    assert cross_val_score(model, fm.X, y, cv=4).mean() > 0.6
    shuffled = np.random.default_rng(0).permutation(y)
    assert cross_val_score(model, fm.X, shuffled, cv=4).mean() < 0.35
