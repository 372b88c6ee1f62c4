"""The ``embedding_musicnn`` feature set: rows and names per layer, decoding at 16 kHz or at any
rate (resampled), short clips, the cache and unusable clips on a generated GTZAN folder, the
install hint without musicnn, parameter checks, a benchmark run on it, and (integration) two
real GTZAN clips. Needs musicnn's weights (``pip install --no-deps musicnn==0.1.0``, which
``.ci/run`` installs); the checks that need none run without them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("librosa")
import soundfile as sf  # noqa: E402
from helpers import write_genre_folder  # noqa: E402

from benchmark.audio.decoding import Clip, load_clip  # noqa: E402
from benchmark.data import Dataset, load_manifest  # noqa: E402
from benchmark.errors import ConfigError, DataError  # noqa: E402
from benchmark.features import _musicnn as mnn  # noqa: E402
from benchmark.features import all_feature_sets, get_feature_set  # noqa: E402

NAME = "embedding_musicnn"
GENRES = ("blues", "classical", "metal")
needs_weights = pytest.mark.skipif(
    mnn.musicnn_missing() is not None, reason=f"musicnn's weights: {mnn.INSTALL_HINT}"
)


def tone(seconds: float, sr: int, f0: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    y = sum(0.2 / k * np.sin(2 * np.pi * f0 * k * t) for k in range(1, 6))
    beat = (np.sin(2 * np.pi * 2.0 * t) > 0.9) * rng.standard_normal(t.size) * 0.3
    return np.clip(y + beat + 0.01 * rng.standard_normal(t.size), -1, 1).astype(np.float32)


@pytest.fixture(scope="module")
def audio_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 genres x 4 tracks of 4-s clips at 22 050 Hz, one that does not decode."""
    root = write_genre_folder(tmp_path_factory.mktemp("mnn") / "gtzan", GENRES, 4, 4.0)
    (root / "genres_original" / "metal" / "metal.00001.wav").write_bytes(b"RIFF\x00\x00garbage")
    return root


def test_registered_as_a_tabular_audio_set():
    cls = all_feature_sets()[NAME]
    assert cls.input_kinds == ("tabular",)
    assert cls.audio_counterpart() == NAME  # predict computes it from a file
    fs = get_feature_set(NAME)
    assert fs.sample_rate == 16000  # musicnn's rate, decoded directly
    assert fs.feature_names("tabular")[:2] == [
        "musicnn_penultimate_000_mean",
        "musicnn_penultimate_001_mean",
    ]
    assert len(fs.feature_names("tabular")) == 400
    assert fs.feature_names("tabular")[200] == "musicnn_penultimate_000_std"
    assert len(get_feature_set(NAME, layer="max_pool").feature_names("tabular")) == 1506


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"layer": "logits"}, "layer must be one of penultimate, max_pool, mean_pool"),
        ({"band_limit_hz": 9000}, "below the Nyquist frequency sample_rate / 2 = 8000"),
        ({"n_mels": 64}, "unknown parameter"),
    ],
    ids=["layer", "band-limit-above-8k", "unknown"],
)
def test_parameters_are_checked(params, message):
    with pytest.raises(ConfigError, match=message):
        get_feature_set(NAME, **params)


def test_without_musicnn_the_set_is_unavailable_with_the_install_hint(audio_root, monkeypatch):
    real = mnn.importlib.util.find_spec
    monkeypatch.setattr(
        mnn.importlib.util, "find_spec", lambda name: None if name == "musicnn" else real(name)
    )
    fs = get_feature_set(NAME)
    ds = Dataset(audio_root, load_manifest("gtzan"))
    reason = fs.unavailable(ds)
    assert reason and "pip install --no-deps musicnn==0.1.0" in reason
    with pytest.raises(DataError, match="--no-deps musicnn==0.1.0"):
        fs.build(ds, "tabular")
    clip = Clip(np.zeros(16000 * 3, np.float32), 16000, 16000 * 3, "x.wav")
    with pytest.raises(ConfigError, match="--no-deps musicnn==0.1.0"):
        fs.clip_rows(clip, "tabular")


@needs_weights
def test_rows_of_a_clip_at_any_rate():
    fs = get_feature_set(NAME)
    y16 = tone(30.0, 16000, 220.0)
    row = fs.clip_rows(Clip(y16, 16000, len(y16), "a"), "tabular")
    assert row.shape == (1, 400) and row.dtype == np.float64 and np.isfinite(row).all()
    assert (row[0, 200:] >= 0).all() and row[0, 200:].max() > 0  # stds over 10 patches
    # the same music at 44.1 kHz, resampled inside: nearly the same embedding
    y44 = tone(30.0, 44100, 220.0)
    other = get_feature_set(NAME, sample_rate=44100).clip_rows(Clip(y44, 44100, len(y44), "b"), "x")
    assert np.corrcoef(row[0, :200], other[0, :200])[0, 1] > 0.99
    # a different sound, a different embedding
    low = tone(30.0, 16000, 55.0, seed=1)
    far = fs.clip_rows(Clip(low, 16000, len(low), "c"), "tabular")
    assert np.abs(far - row).max() > 0.1


@needs_weights
def test_short_clip_uses_its_real_audio_only():
    """A 4-s clip padded to 30 s: its embedding is that of its patches of audio (one here)."""
    y = tone(4.0, 16000, 330.0)
    padded = np.zeros(30 * 16000, np.float32)
    padded[: len(y)] = y
    fs = get_feature_set(NAME, layer="mean_pool")
    row = fs.clip_rows(Clip(padded, 16000, len(y), "s"), "tabular")
    patch = mnn.patches(mnn.log_mel(padded), len(y) // mnn.HOP)
    assert len(patch) == 1  # 4 s: one full 3-s patch, the second is mostly padding
    want = mnn.embed_patches(patch)["mean_pool"][0]
    np.testing.assert_allclose(row[0, :753], want, atol=1e-5)
    assert (row[0, 753:] == 0).all()


@needs_weights
def test_builds_on_a_dataset_records_unusable_clips_and_caches(audio_root, tmp_path):
    ds = Dataset(audio_root, load_manifest("gtzan"))
    fs = get_feature_set(NAME, n_jobs=1)
    fm = fs.load(ds, "tabular", tmp_path)
    assert fm.X.shape == (11, 400) and np.isfinite(fm.X).all()
    assert not fm.segmented
    assert set(fm.missing or {}) == {"metal.00001"}
    assert "not a readable audio file" in (fm.missing or {})["metal.00001"]
    # a file read at its own rate through the set's decoding gives the same row
    path = ds.tracks.set_index("track_id").loc["blues.00000", "audio_path"]
    i = list(fm.row_track).index("blues.00000")
    np.testing.assert_allclose(fs.file_rows(path, "tabular")[0], fm.X[i], atol=1e-5)  # BLAS threads
    # the second load reads the cache
    cached = get_feature_set(NAME, n_jobs=1).load(ds, "tabular", tmp_path)
    np.testing.assert_array_equal(cached.X, fm.X)
    # one cache file: every layer of every patch, which each musicnn set derives its rows from
    assert len(list(tmp_path.glob("musicnn_patch_layers-tabular-*.npz"))) == 1


@needs_weights
def test_genrebench_run_export_and_predict_on_embedding_musicnn(audio_root, tmp_path):
    """``genrebench run`` on the set with one fast family, the exported model, and ``predict``
    on a file at another sample rate computing the same embedding."""
    from click.testing import CliRunner

    from benchmark.cli import main

    root = tmp_path / "g"
    shutil.copytree(audio_root, root)
    cfg_path = tmp_path / "m.yaml"
    cfg_path.write_text(
        f"name: mnn\nseed: 1\nfeature_sets: [{NAME}]\nfeature_params: {{{NAME}: {{seconds: 4}}}}\n"
        "families: [logreg]\nprotocols:\n  stratified_kfold: {n_folds: 2}\n"
        "inner_folds: 2\nn_trials: 1\nn_jobs: 1\nensembles: false\n"
        f"baseline: {{feature_set: {NAME}, family: logreg}}\n"
    )
    results = tmp_path / "results"
    runner = CliRunner()
    args = ["run", "--config", str(cfg_path), "--data-dir", str(root)]
    res = runner.invoke(main, [*args, "--results-dir", str(results), "--no-tracking"])
    assert res.exit_code == 0, res.output
    table = pd.read_parquet(results / "mnn" / "results.parquet")
    ours = table[table["feature_set"] == NAME]
    assert len(ours) == 2 and (ours["status"] == "done").all(), ours[["status", "message"]]
    meta = json.loads((results / "mnn" / "final_model" / "model.json").read_text())
    assert meta["feature_set"] == NAME and meta["feature_params"]["seconds"] == 4

    song = tmp_path / "song.flac"  # a classical-like tone at 44.1 kHz: resampled to 16 kHz
    sf.write(song, tone(4.0, 44100, 440.0, seed=7), 44100)
    res = runner.invoke(main, ["predict", str(song), "--results-dir", str(results), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["feature_set"] == NAME
    probs = [g["probability"] for g in doc["predictions"][0]["genres"]]
    assert len(probs) == 3 and sum(probs) == pytest.approx(1.0, abs=1e-6)

    # evaluate on a labelled folder (the training clips: the path is what is checked here),
    # the undecodable clip one error row, its page and JSON written
    out = tmp_path / "eval" / "mnn.json"
    args = [str(root / "genres_original"), "--results-dir", str(results), "--jobs", "1"]
    res = runner.invoke(main, ["evaluate", *args, "--output", str(out)])
    assert res.exit_code == 2, res.output  # one file failed
    ev = json.loads(out.read_text())
    assert ev["model"]["feature_set"] == NAME
    assert ev["counts"]["scored"] == 11 and ev["counts"]["error"] == 1
    assert out.with_suffix(".html").is_file()


@pytest.mark.integration
@needs_weights
def test_two_real_gtzan_clips(real_gtzan):
    ds = Dataset.open(real_gtzan)
    tracks = ds.tracks.dropna(subset=["audio_path"])
    picks = [tracks[tracks["genre"] == g].iloc[0] for g in ("classical", "metal")]
    fs = get_feature_set(NAME)
    rows = np.concatenate([fs.file_rows(p["audio_path"], "tabular") for p in picks])
    assert rows.shape == (2, 400) and np.isfinite(rows).all()
    # classical and metal are far apart in musicnn's space; each clip is near itself
    assert np.corrcoef(rows[0, :200], rows[1, :200])[0, 1] < 0.9
    again = fs.clip_rows(load_clip(picks[0]["audio_path"], 16000), "tabular")
    np.testing.assert_allclose(again[0], rows[0], atol=1e-5)
