"""Training-time augmentation of the audio feature sets: the ``augment`` settings, the three
transforms, the augmented rows (marked, seeded, cached) and unchanged caches without it."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("librosa")
import soundfile as sf  # noqa: E402
from helpers import write_genre_folder  # noqa: E402

from benchmark.audio.band_limit import band_edge_hz  # noqa: E402
from benchmark.audio.decoding import Clip  # noqa: E402
from benchmark.config import config_from_dict  # noqa: E402
from benchmark.data import Dataset  # noqa: E402
from benchmark.errors import ConfigError  # noqa: E402
from benchmark.execution.plan import feature_set_of  # noqa: E402
from benchmark.features import get_feature_set  # noqa: E402
from benchmark.features.augmentation import (  # noqa: E402
    Augmentation,
    augment_clip,
    mp3_round_trip,
    resample_through,
)

SR = 22050
GENRES = ("blues", "classical", "metal")
AUG = {"copies": ["resample", "mp3", "gain", "resample+mp3"], "seed": 1}


def noise(seconds: float, seed: int = 0) -> np.ndarray:
    """Full-band content: white noise plus a tone, at -12 dBFS or so."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    y = 0.1 * rng.standard_normal(t.size) + 0.2 * np.sin(2 * np.pi * 440 * t)
    return y.astype(np.float32)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_genre_folder(tmp_path_factory.mktemp("aug") / "gtzan", GENRES, 2, 2.0)


# --- settings -------------------------------------------------------------------------------------
def test_settings_default_true_and_off() -> None:
    assert Augmentation.parse(None, "x", SR) is None
    assert Augmentation.parse(False, "x", SR) is None
    aug = Augmentation.parse(True, "x", SR)
    assert aug == Augmentation()
    assert aug is not None and aug.to_dict() == {
        "copies": ["resample", "mp3", "gain"],
        "resample_hz": 16000,
        "mp3_level": 0.6,
        "gain_db": [-6.0, 6.0],
        "seed": 0,
    }


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ({"copis": ["mp3"]}, "unknown augment key"),
        ({"copies": "mp3"}, "non-empty list"),
        ({"copies": []}, "non-empty list"),
        ({"copies": ["mp3+reverb"]}, "not a transform"),
        ({"resample_hz": 22050}, "below the set's sample_rate"),
        ({"mp3_level": 1.0}, r"\[0, 1\)"),
        ({"gain_db": [6, -6]}, "low <= high"),
        ({"seed": -1}, "seed must be an int"),
        ("yes", "must be a mapping"),
    ],
)
def test_bad_settings_name_the_key(raw: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        get_feature_set("librosa_30s", augment=raw)


def test_a_config_refuses_bad_augment_settings_before_any_work() -> None:
    with pytest.raises(ConfigError, match="feature_params.logmel.*augment.copies"):
        config_from_dict(
            {"name": "t", "feature_params": {"logmel": {"augment": {"copies": ["echo"]}}}},
            source="t",
        )


def test_the_benchmark_seed_draws_the_augmentation_unless_given() -> None:
    cfg = config_from_dict(
        {"name": "t", "seed": 7, "feature_params": {"librosa_30s": {"augment": True}}}, source="t"
    )
    fset = feature_set_of(cfg, "librosa_30s")
    assert fset.augmentation is not None and fset.augmentation.seed == 7  # type: ignore[attr-defined]
    cfg = config_from_dict(
        {"name": "t", "seed": 7, "feature_params": {"librosa_30s": {"augment": {"seed": 3}}}},
        source="t",
    )
    assert feature_set_of(cfg, "librosa_30s").augmentation.seed == 3  # type: ignore[attr-defined]


# --- transforms -----------------------------------------------------------------------------------
def test_resample_through_16k_removes_what_a_16k_file_cannot_hold() -> None:
    y = noise(2.0)
    assert band_edge_hz(y, SR) > 10_000
    out = resample_through(y, SR, 16000)
    assert out.shape == y.shape and out.dtype == np.float32
    assert band_edge_hz(out, SR) < 8000


def test_mp3_level_0_6_is_about_64_kbps_and_round_trips() -> None:
    y = noise(3.0)
    buf = io.BytesIO()
    sf.write(
        buf, y, SR, format="MP3", compression_level=0.6, bitrate_mode="CONSTANT"
    )  # as mp3_round_trip writes it
    kbps = len(buf.getvalue()) * 8 / 3.0 / 1000
    assert 58 <= kbps <= 72
    out = mp3_round_trip(y, SR, 0.6)
    assert out.shape == y.shape and np.isfinite(out).all()
    assert not np.allclose(out, y, atol=1e-3)  # lossy
    rms = np.sqrt(np.mean(out[SR:] ** 2) / np.mean(y[SR:] ** 2))
    assert 0.5 < rms < 2.0  # the same signal, give or take the encoder's delay and losses


def test_gain_stays_in_range_and_copies_are_seeded_per_track_and_copy() -> None:
    y = noise(1.0)
    clip = Clip(np.pad(y, (0, SR)), SR, len(y), "x.wav")
    aug = Augmentation(copies=("gain", "gain"), gain_db=(-6.0, 6.0), seed=5)
    a = augment_clip(clip, aug, "blues.00000", 1)
    again = augment_clip(clip, aug, "blues.00000", 1)
    other = augment_clip(clip, aug, "blues.00000", 2)
    np.testing.assert_array_equal(a.samples, again.samples)
    assert not np.array_equal(a.samples, other.samples)
    ratio = np.abs(a.audio).max() / np.abs(y).max()
    assert 10 ** (-6 / 20) - 1e-6 <= ratio <= 10 ** (6 / 20) + 1e-6
    assert (a.samples[len(y) :] == 0).all()  # the padding stays silence


# --- rows -----------------------------------------------------------------------------------------
def test_augmented_rows_follow_their_track_and_are_marked(root: Path, tmp_path: Path) -> None:
    ds = Dataset.open(root, "gtzan")
    plain = get_feature_set("librosa_30s", n_jobs=1).load(ds, "tabular", None)
    fset = get_feature_set("librosa_30s", n_jobs=1, augment=AUG)
    fm = fset.load(ds, "tabular", tmp_path)
    n = len(plain.row_track)
    assert plain.row_copy is None and fm.row_copy is not None
    assert len(fm.X) == n * (1 + len(AUG["copies"])) and fm.n_copies == n * len(AUG["copies"])
    # each track: its clip as found (the same row as without augmentation), then its copies
    clean = fm.as_found()
    np.testing.assert_array_equal(clean.row_track, plain.row_track)
    np.testing.assert_allclose(clean.X, plain.X, rtol=1e-6)
    for tid in plain.row_track:
        assert list(fm.row_copy[fm.row_track == tid]) == list(range(1 + len(AUG["copies"])))
    assert not np.allclose(fm.X[fm.row_copy == 1], clean.X)
    # the cache gives the same rows and marks back, and the same seed the same rows
    again = get_feature_set("librosa_30s", n_jobs=1, augment=AUG).load(ds, "tabular", tmp_path)
    np.testing.assert_array_equal(again.row_copy, fm.row_copy)
    np.testing.assert_array_equal(again.X, fm.X)
    fresh = get_feature_set("librosa_30s", n_jobs=2, augment=AUG).load(ds, "tabular", None)
    np.testing.assert_allclose(fresh.X, fm.X, rtol=1e-6)


def test_tensor_sets_cache_their_copy_marks(root: Path, tmp_path: Path) -> None:
    ds = Dataset.open(root, "gtzan")
    aug = {"copies": ["gain"], "seed": 2}
    fm = get_feature_set("logmel", n_jobs=1, n_mels=32, augment=aug).load(ds, "image", tmp_path)
    assert fm.row_copy is not None and list(fm.row_copy[:2]) == [0, 1]
    back = get_feature_set("logmel", n_jobs=1, n_mels=32, augment=aug).load(ds, "image", tmp_path)
    np.testing.assert_array_equal(back.row_copy, fm.row_copy)
    plain = get_feature_set("logmel", n_jobs=1, n_mels=32).load(ds, "image", tmp_path)
    assert plain.row_copy is None and len(plain.X) * 2 == len(fm.X)


def test_cache_keys_without_augmentation_are_unchanged(root: Path) -> None:
    ds = Dataset.open(root, "gtzan")
    for name in ("librosa_30s", "librosa_3s", "logmel", "waveform"):
        plain = get_feature_set(name)
        assert "augment" not in plain.params
        off = get_feature_set(name, augment=False)
        input_kind = plain.input_kinds[-1]
        assert off.cache_key(ds, input_kind) == plain.cache_key(ds, input_kind)
        on = get_feature_set(name, augment=True)
        assert on.cache_key(ds, input_kind) != plain.cache_key(ds, input_kind)
        seeded = get_feature_set(name, augment={"seed": 1})
        assert seeded.cache_key(ds, input_kind) != on.cache_key(ds, input_kind)
