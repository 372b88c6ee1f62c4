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

from benchmark.audio.decoding import Clip  # noqa: E402
from benchmark.config import config_from_dict  # noqa: E402
from benchmark.data import Dataset, load_manifest  # noqa: E402
from benchmark.errors import ConfigError  # noqa: E402
from benchmark.execution.plan import RunOptions, make_plan  # noqa: E402
from benchmark.features import _musicnn as mnn  # noqa: E402
from benchmark.features import all_feature_sets, get_feature_set  # noqa: E402
from benchmark.features._musicnn_patches import patch_layers  # noqa: E402
from benchmark.protocols import all_protocols  # noqa: E402
from benchmark.tuning.job import fold_rows  # noqa: E402

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
    assert cls.input_kinds == ("tabular",)
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


@needs_weights
def test_embedding_musicnn_3s_and_a_variant_run_export_predict_and_evaluate(tmp_path):
    """``genrebench run`` on the patch set beside a max_pool variant of ``embedding_musicnn``
    (one study, the same folds), ``export`` of each, ``predict`` on a 44.1 kHz file (the patch
    model's answer is the mean of its patches' probabilities) and ``evaluate``: no network."""
    import json

    import pandas as pd
    import soundfile as sf
    from click.testing import CliRunner
    from helpers import write_genre_folder

    from benchmark.cli import main
    from benchmark.inference.saved_model import load_model

    root = write_genre_folder(tmp_path / "gtzan", ("blues", "classical", "metal"), 4, 7.0)
    variant = "embedding_musicnn_max_pool"
    (tmp_path / "m.yaml").write_text(
        f"name: mnn\nseed: 1\nfeature_sets: [{NAME}, {variant}]\n"
        f"feature_variants: {{{variant}: {{of: embedding_musicnn, layer: max_pool}}}}\n"
        f"feature_params: {{{NAME}: {{seconds: 7}}, {variant}: {{seconds: 7}}}}\n"
        "families: [logreg]\nprotocols:\n  stratified_kfold: {n_folds: 2}\n"
        "inner_folds: 2\nn_trials: 1\nn_jobs: 1\nensembles: false\n"
        f"baseline: {{feature_set: {NAME}, family: logreg}}\n"
    )
    results = tmp_path / "results"
    runner = CliRunner()
    data = ["--data-dir", str(root)]
    args = ["run", "--config", str(tmp_path / "m.yaml"), *data, "--results-dir", str(results)]
    res = runner.invoke(main, [*args, "--no-tracking"])
    assert res.exit_code == 0, res.output
    table = pd.read_parquet(results / "mnn" / "results.parquet")
    assert set(table["feature_set"]) == {NAME, variant}
    assert (table["status"] == "done").all(), table[["feature_set", "status", "message"]]
    # both sets derived from one extraction
    assert len(list((results / "cache").glob("musicnn_patch_layers-*.npz"))) == 1

    song = tmp_path / "song.flac"  # 7 s at 44.1 kHz: resampled to 16 kHz, two patches
    rng = np.random.default_rng(7)
    sf.write(song, (0.2 * rng.standard_normal(7 * 44100)).astype(np.float32), 44100)
    folder = results / "mnn" / "final_model"
    for fs in (variant, NAME):
        export = ["export", str(results / "mnn"), *data, "--feature-set", fs, "--no-register"]
        res = runner.invoke(main, export)
        assert res.exit_code == 0, res.output
        meta = json.loads((folder / "model.json").read_text())
        assert meta["feature_set"] == fs and meta["pair"]["feature_set"] == fs
        if fs == variant:  # what computes it, with the variant's parameters
            assert meta["feature_of"] == "embedding_musicnn"
            assert meta["feature_params"] == {"layer": "max_pool", "seconds": 7}
        res = runner.invoke(main, ["predict", str(song), "--model", str(folder), "--json"])
        assert res.exit_code == 0, res.output
        doc = json.loads(res.stdout)
        assert doc["feature_set"] == fs
        got = {g["genre"]: g["probability"] for g in doc["predictions"][0]["genres"]}
        assert len(got) == 3 and sum(got.values()) == pytest.approx(1.0, abs=1e-6)
    assert meta["feature_params"]["seconds"] == 7 and "feature_of" not in meta
    # the patch model's answer: the mean of its two patches' probabilities
    model = load_model(folder)
    rows = get_feature_set(NAME, seconds=7).file_rows(song, "tabular")
    assert rows.shape == (2, 200)
    mean = model.estimator.predict_proba(rows).mean(axis=0)
    classes = [meta["classes"][int(c)] for c in model.estimator.classes_]
    for genre, p in zip(classes, mean, strict=True):
        assert got[genre] == pytest.approx(p, abs=1e-4)

    out = tmp_path / "eval" / "mnn.json"
    ev_args = [str(root / "genres_original"), "--model", str(folder), "--jobs", "1"]
    res = runner.invoke(main, ["evaluate", *ev_args, "--output", str(out)])
    assert res.exit_code == 0, res.output
    ev = json.loads(out.read_text())
    assert ev["model"]["feature_set"] == NAME and ev["counts"]["scored"] == 12


@needs_weights
def test_augmented_copies_keep_their_track_and_copy_number(tmp_path):
    """With ``augment``, each copy's patches derive their own clip row (and patch rows), marked
    as that copy: training rows only, on their track's side of every split."""
    from helpers import write_genre_folder

    root = write_genre_folder(tmp_path / "gtzan", ("blues", "metal"), 2, 7.0)
    ds = Dataset(root, load_manifest("gtzan"))
    aug = {"copies": ["gain"], "seed": 3}
    clip = get_feature_set("embedding_musicnn", augment=aug, n_jobs=1).load(ds, "tabular", tmp_path)
    assert clip.X.shape == (8, 400) and clip.row_copy is not None
    assert list(clip.row_copy) == [0, 1] * 4
    assert list(clip.row_track[:2]) == ["blues.00000"] * 2
    patches = get_feature_set(NAME, augment=aug, n_jobs=1).load(ds, "tabular", tmp_path)
    assert patches.X.shape == (16, 200) and list(patches.row_copy[:4]) == [0, 0, 1, 1]
    np.testing.assert_array_equal(clip.X[1, :200], patches.X[2:4].mean(axis=0))
    assert clip.as_found().X.shape == (4, 400)
    assert len(list(tmp_path.glob("musicnn_patch_layers-*.npz"))) == 1
