"""The ``embedding_musicnn_3s`` feature set (one row per 3-s patch, track votes): its rows are
the patches' layer values that ``embedding_musicnn`` averages, both sets share one cached
extraction, no track's patches cross a split under any protocol (outer and inner folds, through
the plan and the rows the tuning reads), and a run's track scores are the mean of its patches'
probabilities. Needs musicnn's weights (``pip install --no-deps musicnn==0.1.0``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("librosa")
from fake_gtzan import make_fake_gtzan  # noqa: E402

from benchmark.audio import Clip  # noqa: E402
from benchmark.config import config_from_dict  # noqa: E402
from benchmark.data import Dataset, load_manifest  # noqa: E402
from benchmark.errors import ConfigError  # noqa: E402
from benchmark.execution.plan import RunOptions, make_plan  # noqa: E402
from benchmark.features import _musicnn as mnn  # noqa: E402
from benchmark.features import all_feature_sets, get_feature_set  # noqa: E402
from benchmark.features._musicnn_patches import patch_layers  # noqa: E402
from benchmark.protocols import all_protocols  # noqa: E402
from benchmark.tuning import fold_rows  # noqa: E402

NAME = "embedding_musicnn_3s"
needs_weights = pytest.mark.skipif(
    mnn.musicnn_missing() is not None, reason=f"musicnn's weights: {mnn.INSTALL_HINT}"
)


@pytest.fixture(scope="module")
def seven_s(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 genres x 4 tracks of 7-s clips (two 3-s patches each), with the artist index and the
    fault-filtered lists: every protocol can split it."""
    root = tmp_path_factory.mktemp("patches") / "gtzan"
    return make_fake_gtzan(
        root, n_per_genre=4, with_audio=True, audio_seconds=7.0, with_images=False,
        with_csv_3s=False,
    )  # fmt: skip


def test_embedding_musicnn_3s_is_a_segment_audio_set():
    cls = all_feature_sets()[NAME]
    assert cls.views == ("tabular",)
    assert cls.audio_counterpart() == NAME  # predict computes it from a file
    fs = get_feature_set(NAME)
    assert fs.sample_rate == 16000
    names = fs.feature_names("tabular")
    assert len(names) == 200 and names[:2] == ["musicnn_penultimate_000", "musicnn_penultimate_001"]
    assert len(get_feature_set(NAME, layer="max_pool").feature_names("tabular")) == 753
    with pytest.raises(ConfigError, match="layer must be one of penultimate, max_pool"):
        get_feature_set(NAME, layer="logits")


@needs_weights
def test_embedding_musicnn_3s_rows_are_the_patches_the_clip_row_averages():
    rng = np.random.default_rng(0)
    y = (0.1 * rng.standard_normal(16000 * 30)).astype(np.float32)
    clip = Clip(y, 16000, len(y), "a")
    for layer in ("penultimate", "max_pool"):
        rows = get_feature_set(NAME, layer=layer).clip_rows(clip, "tabular")
        width = mnn.LAYERS[layer]
        assert rows.shape == (10, width) and rows.dtype == np.float64
        want = patch_layers(y, 16000, len(y))[layer]
        np.testing.assert_array_equal(rows, want.astype(np.float64))
        clip_row = get_feature_set("embedding_musicnn", layer=layer).clip_rows(clip, "tabular")
        np.testing.assert_array_equal(clip_row[0, :width], rows.mean(axis=0))
        np.testing.assert_array_equal(clip_row[0, width:], rows.std(axis=0))


@needs_weights
def test_embedding_musicnn_3s_shares_one_cached_extraction(seven_s, tmp_path):
    ds = Dataset(seven_s, load_manifest("gtzan"))
    patches = get_feature_set(NAME, n_jobs=1).load(ds, "tabular", tmp_path)
    assert patches.X.shape == (80, 200) and patches.segmented
    assert (np.unique(patches.row_track, return_counts=True)[1] == 2).all()  # 2 patches a clip
    clip = get_feature_set("embedding_musicnn", n_jobs=1).load(ds, "tabular", tmp_path)
    wide = get_feature_set("embedding_musicnn", layer="max_pool", n_jobs=1)
    wide_fm = wide.load(ds, "tabular", tmp_path)
    # one extraction (every layer of every patch) serves the three matrices
    assert [p.name.split("-")[0] for p in tmp_path.glob("*.npz")] == ["musicnn_patch_layers"]
    assert clip.X.shape == (40, 400) and wide_fm.X.shape == (40, 1506)
    first = patches.row_track == clip.row_track[0]
    np.testing.assert_array_equal(clip.X[0, :200], patches.X[first].mean(axis=0))
    # the cached rows are those of one file computed alone
    path = ds.tracks.set_index("track_id").loc[clip.row_track[0], "audio_path"]
    np.testing.assert_allclose(  # float32 sums: BLAS threads differ
        wide.file_rows(path, "tabular")[0], wide_fm.X[0], rtol=1e-4, atol=1e-5
    )
    # without a cache folder: the same rows
    np.testing.assert_array_equal(get_feature_set(NAME, n_jobs=1).build(ds, "tabular").X, patches.X)


@needs_weights
@pytest.mark.parametrize("protocol", sorted(all_protocols()))
def test_no_track_patches_cross_a_split(seven_s, tmp_path, protocol):
    """Through the plan every run builds, and the rows the tuning reads (:func:`fold_rows`):
    every outer and inner split keeps each track's patches on one side, all of them."""
    options = {"fault_filtered": {}}.get(protocol, {"n_folds": 2})
    cfg = config_from_dict(
        {
            "name": "p",
            "feature_sets": [NAME],
            "families": ["logreg"],
            "protocols": {protocol: options},
            "inner_folds": 2,
            "n_jobs": 1,
            "baseline": {"feature_set": NAME, "family": "logreg"},
        },
        source="test",
    )
    ds = Dataset(seven_s, load_manifest("gtzan"))
    plan = make_plan(cfg, ds, RunOptions(results_root=tmp_path), "sqlite:///:memory:")
    assert not plan.skipped and plan.jobs
    for job in plan.jobs:
        assert job.pair.feature_set == NAME
        parts = [(job.train_tracks, job.test_tracks)] + [(a, b) for a, b in job.inner_splits]
        for train_tracks, test_tracks in parts:
            train = fold_rows(job, train_tracks, training=True)
            test = fold_rows(job, test_tracks, training=False)
            assert len(test) == 2 * len(test_tracks)  # every patch of each test track
            assert not set(job.row_track[train]) & set(job.row_track[test])
