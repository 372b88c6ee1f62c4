"""The spectrogram_img feature set on generated Kaggle-like PNGs (plus one real-data check)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
from fake_gtzan import BOX, CANVAS, SHAPE, magma_rgb, png_path, scalar, write_png
from helpers import write_clip
from PIL import Image

from benchmark.data import Dataset, load_manifest
from benchmark.errors import ConfigError
from benchmark.features import get_feature_set
from benchmark.features import spectrogram as spec
from benchmark.features.spectrogram import (
    SpectrogramImages,
    audio_spectrogram,
    read_spectrogram_png,
    render_kaggle_spectrogram,
)

TOL = 1.0 / 255 + 1e-6  # one colour-map step


@pytest.fixture
def gtzan(tmp_path: Path) -> tuple[Dataset, dict[str, np.ndarray]]:
    """Five tracks with images, one (jazz.00054, as in Kaggle) with only an audio file."""
    truth: dict[str, np.ndarray] = {}
    for i, tid in enumerate(
        ["blues.00000", "blues.00001", "jazz.00000", "rock.00003", "pop.00010"]
    ):
        truth[tid] = scalar(i)
        write_png(png_path(tmp_path, tid), truth[tid])
    audio = tmp_path / "genres_original" / "jazz" / "jazz.00054.wav"
    audio.parent.mkdir(parents=True)
    audio.write_bytes(b"")
    return Dataset(root=tmp_path, manifest=load_manifest("gtzan")), truth


def test_registered() -> None:
    fs = get_feature_set("spectrogram_img")
    assert isinstance(fs, SpectrogramImages)
    assert fs.input_kinds == ("tabular", "image")


def test_read_png_crops_plot_area_and_inverts_colours(tmp_path: Path) -> None:
    values = scalar(7)
    write_png(tmp_path / "a.png", values, margin_mark=True)
    index, box = read_spectrogram_png(tmp_path / "a.png")
    assert box == BOX
    assert index.shape == SHAPE
    np.testing.assert_allclose(index / 255.0, values, atol=TOL)


def test_truncated_colours_within_quantisation_tolerance(tmp_path: Path) -> None:
    values = scalar(8)
    write_png(tmp_path / "a.png", values, truncate=True)
    index, _ = read_spectrogram_png(tmp_path / "a.png")
    assert index.shape == SHAPE
    assert np.abs(index / 255.0 - values).max() <= 3.0 / 255


def test_image_rows(gtzan: tuple[Dataset, dict[str, np.ndarray]]) -> None:
    dataset, truth = gtzan
    fs = SpectrogramImages()
    assert fs.unavailable(dataset) is None
    # jazz.00054 has no PNG, so its (here: empty) audio file is an input too
    assert sorted(p.name for p in fs.input_files(dataset)) == sorted(
        [*(png_path(dataset.root, t).name for t in truth), "jazz.00054.wav"]
    )
    fm = fs.build(dataset, "image")
    assert fm.X.dtype == np.float32
    assert fm.X.shape == (len(truth), *SHAPE)
    assert fm.feature_names is None
    assert fm.missing == {"jazz.00054": "no image file; audio: empty file (0 bytes)"}
    png_only = SpectrogramImages(source="png").build(dataset, "image")
    assert png_only.missing == {"jazz.00054": "no image file"}
    assert sorted(fm.row_track) == sorted(truth)
    for x, tid in zip(fm.X, fm.row_track, strict=True):
        np.testing.assert_allclose(x, truth[tid], atol=TOL)
    assert 0.0 <= fm.X.min() and fm.X.max() <= 1.0


def test_low_frequency_is_row_zero(tmp_path: Path) -> None:
    # only the bottom rows of the picture are bright: after inversion they must be rows 0..9
    values = np.zeros(SHAPE)
    values[:10] = 1.0
    write_png(png_path(tmp_path, "blues.00000"), values)
    picture = np.asarray(Image.open(png_path(tmp_path, "blues.00000")))
    assert picture[BOX[1] - 1, BOX[2] + 5, :3].tolist() == magma_rgb(np.array([1.0]))[0].tolist()
    fm = SpectrogramImages().build(Dataset(tmp_path, load_manifest("gtzan")), "image")
    assert fm.X[0, :10].min() == 1.0
    assert fm.X[0, 10:].max() == 0.0


def test_off_by_a_pixel_box_is_resized_and_logged(
    gtzan: tuple[Dataset, dict[str, np.ndarray]], caplog: pytest.LogCaptureFixture
) -> None:
    dataset, _ = gtzan
    odd = (BOX[0] + 1, BOX[1], BOX[2], BOX[3] + 2)
    write_png(
        png_path(dataset.root, "rock.00004"), np.full((odd[1] - odd[0], odd[3] - odd[2]), 0.5), odd
    )
    dataset = Dataset(dataset.root, dataset.manifest)
    with caplog.at_level(logging.WARNING, logger=spec.__name__):
        fm = SpectrogramImages().build(dataset, "image")
    assert fm.X.shape == (6, *SHAPE)
    row = list(fm.row_track).index("rock.00004")
    np.testing.assert_allclose(fm.X[row], 0.5, atol=TOL)
    assert any(
        "rock00004.png" in r.getMessage() and "resized" in r.getMessage() for r in caplog.records
    )


def test_height_width_params(gtzan: tuple[Dataset, dict[str, np.ndarray]]) -> None:
    dataset, truth = gtzan
    fm = SpectrogramImages(height=54, width=167).build(dataset, "image")
    assert fm.X.shape == (len(truth), 54, 167)
    assert fm.X[:, 0].mean() > fm.X[:, -1].mean()  # still low frequency first
    assert SpectrogramImages(height=108).build(dataset, "image").X.shape[1:] == (108, SHAPE[1])
    with pytest.raises(ConfigError, match="unknown parameter"):
        SpectrogramImages(size=3)
    with pytest.raises(ConfigError, match="positive integer"):
        SpectrogramImages(height=0)


def test_tabular_rows(gtzan: tuple[Dataset, dict[str, np.ndarray]]) -> None:
    dataset, truth = gtzan
    fm = SpectrogramImages().build(dataset, "tabular")
    assert fm.X.shape == (len(truth), 32 * 3 + 9)
    assert fm.feature_names is not None and len(fm.feature_names) == fm.X.shape[1]
    assert fm.feature_names[:4] == ["band00_mean", "band00_std", "band00_flux", "band01_mean"]
    assert "band31_flux" in fm.feature_names and "global_mean" in fm.feature_names
    assert len(set(fm.feature_names)) == len(fm.feature_names)
    assert np.isfinite(fm.X).all()
    assert fm.missing == {"jazz.00054": "no image file; audio: empty file (0 bytes)"}
    col = {n: i for i, n in enumerate(fm.feature_names)}
    # the generated spectrograms fall from 0.9 (low) to 0.1 (high frequency)
    assert (fm.X[:, col["band00_mean"]] > 0.8).all() and (fm.X[:, col["band31_mean"]] < 0.2).all()
    for x, tid in zip(fm.X, fm.row_track, strict=True):
        assert x[col["global_mean"]] == pytest.approx(truth[tid].mean(), abs=TOL)
    assert SpectrogramImages(bands=8).build(dataset, "tabular").X.shape == (len(truth), 8 * 3 + 9)


def test_unavailable_without_images(tmp_path: Path) -> None:
    audio = tmp_path / "genres_original" / "blues" / "blues.00000.wav"
    audio.parent.mkdir(parents=True)
    audio.write_bytes(b"")
    dataset = Dataset(tmp_path, load_manifest("gtzan"))
    # with audio there, auto draws from it; only PNGs are refused
    assert SpectrogramImages().unavailable(dataset) is None
    reason = SpectrogramImages(source="png").unavailable(dataset)
    assert reason and "images_original" in reason
    (tmp_path / "images_original" / "blues").mkdir(parents=True)
    assert "no" in (SpectrogramImages(source="png").unavailable(dataset) or "")
    assert SpectrogramImages(source="png").input_files(dataset) == []
    with pytest.raises(ConfigError, match="source"):
        SpectrogramImages(source="jpeg")


def test_unavailable_without_images_or_audio(tmp_path: Path) -> None:
    (tmp_path / "features_30_sec.csv").write_text("filename,length,label\n")
    (tmp_path / "images_original" / "blues").mkdir(parents=True)
    dataset = Dataset(tmp_path, load_manifest("gtzan"))
    reason = SpectrogramImages().unavailable(dataset)
    assert reason and "no PNGs" in reason and "genres_original" in reason


def test_cache_roundtrip_and_key(
    gtzan: tuple[Dataset, dict[str, np.ndarray]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset, truth = gtzan
    cache = tmp_path / "cache"
    fs = SpectrogramImages()
    reads: list[str] = []
    real_read = spec.read_spectrogram_png

    def counting_read(path: str) -> tuple[np.ndarray, tuple[int, ...]]:
        reads.append(str(path))
        return real_read(path)

    monkeypatch.setattr(spec, "read_spectrogram_png", counting_read)

    first = fs.load(dataset, "image", cache)
    files = sorted(cache.glob("spectrogram_img-image-*.npz"))
    assert len(files) == 1 and fs.cache_key(dataset, "image") in files[0].name
    assert len(reads) == len(truth)

    # the tabular rows take the image rows from the cache: no PNG is decoded again
    tab = fs.load(dataset, "tabular", cache)
    assert len(reads) == len(truth)
    assert len(list(cache.glob("spectrogram_img-tabular-*.npz"))) == 1

    again = fs.load(dataset, "image", cache)
    tab_again = fs.load(dataset, "tabular", cache)
    assert len(reads) == len(truth)
    np.testing.assert_array_equal(again.X, first.X)
    np.testing.assert_array_equal(again.row_track, first.row_track)
    assert again.missing == first.missing
    np.testing.assert_array_equal(tab_again.X, tab.X)
    assert tab_again.feature_names == tab.feature_names

    # bands only key the tabular rows
    assert SpectrogramImages(bands=8).cache_key(dataset, "image") == fs.cache_key(dataset, "image")
    assert SpectrogramImages(bands=8).cache_key(dataset, "tabular") != fs.cache_key(
        dataset, "tabular"
    )

    # a changed PNG changes the key, and the next load rebuilds
    key = fs.cache_key(dataset, "image")
    changed = png_path(dataset.root, "blues.00001")
    write_png(changed, scalar(99) * 0.5)
    st = changed.stat()
    os.utime(changed, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert fs.cache_key(dataset, "image") != key
    rebuilt = fs.load(dataset, "image", cache)
    assert len(reads) == 2 * len(truth)
    assert len(list(cache.glob("spectrogram_img-image-*.npz"))) == 2
    row = list(rebuilt.row_track).index("blues.00001")
    np.testing.assert_allclose(rebuilt.X[row], scalar(99) * 0.5, atol=TOL)


# --- drawn from audio ---------------------------------------------------------------------------
SR = 22050


def _tone(seed: int, seconds: float = 3.0) -> np.ndarray:
    """A few decaying partials plus a little noise: a spectrogram with structure."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    y = sum(
        np.sin(2 * np.pi * f * t) * np.exp(-t * rng.uniform(0.2, 2.0))
        for f in rng.uniform(100, 4000, size=4)
    )
    y = y + 0.01 * rng.standard_normal(t.size)
    return (0.2 * y / np.abs(y).max()).astype(np.float32)


def _write_clip(path: Path, seed: int, seconds: float = 3.0) -> np.ndarray:
    y = _tone(seed, seconds)
    write_clip(path, y, SR, subtype="PCM_16")
    return y


def test_render_geometry_is_kaggles() -> None:
    pytest.importorskip("librosa")
    rgba = render_kaggle_spectrogram(_tone(1), SR)
    assert rgba.shape == (*CANVAS, 4) and rgba.dtype == np.uint8
    assert (rgba[0, 0] == 255).all() and (rgba[-1, -1] == 255).all()  # white, opaque margins
    index, box = audio_spectrogram(_tone(1), SR)
    assert box == BOX and index.shape == SHAPE and index.dtype == np.uint8
    assert index.std() > 5  # a picture, not a flat colour


def test_drawn_picture_reads_back_like_a_png(tmp_path: Path) -> None:
    pytest.importorskip("librosa")
    y = _tone(2)
    Image.fromarray(render_kaggle_spectrogram(y, SR)).save(tmp_path / "a.png")
    from_png, png_box = read_spectrogram_png(tmp_path / "a.png")
    from_audio, audio_box = audio_spectrogram(y, SR)
    assert png_box == audio_box == BOX
    np.testing.assert_array_equal(from_png, from_audio)


@pytest.fixture
def audio_folder(tmp_path: Path) -> Dataset:
    """A user folder: genres_original/<class>/*.wav|flac, no images_original, no CSV."""
    for i, (cls, name) in enumerate(
        [("ambient", "a1.wav"), ("ambient", "a2.flac"), ("noise", "n1.wav"), ("noise", "n2.wav")]
    ):
        _write_clip(tmp_path / "genres_original" / cls / name, seed=10 + i)
    return Dataset(tmp_path, load_manifest("folder"))


def test_folder_with_audio_only_gets_rows(audio_folder: Dataset, tmp_path: Path) -> None:
    pytest.importorskip("librosa")
    fs = SpectrogramImages(n_jobs=1)
    assert fs.unavailable(audio_folder) is None
    assert len(fs.input_files(audio_folder)) == 4
    fm = fs.build(audio_folder, "image")
    assert fm.X.shape == (4, *SHAPE) and fm.X.dtype == np.float32
    assert fm.missing is None
    assert 0.0 <= fm.X.min() and fm.X.max() <= 1.0
    tab = fs.load(audio_folder, "tabular", tmp_path / "cache")
    assert tab.X.shape == (4, 32 * 3 + 9) and np.isfinite(tab.X).all()
    assert tab.feature_names == fs.feature_names("tabular")
    # one file gives the same rows (what genrebench predict computes)
    tracks = audio_folder.tracks.set_index("track_id")["audio_path"]
    row = list(fm.row_track).index(fm.row_track[1])
    path = tracks[fm.row_track[1]]
    np.testing.assert_array_equal(fs.file_rows(path, "image")[0], fm.X[row])
    np.testing.assert_allclose(fs.file_rows(path, "tabular")[0], tab.X[row], rtol=1e-6)
    small = SpectrogramImages(n_jobs=1, height=54, width=80)
    assert small.file_rows(path, "image").shape == (1, 54, 80)


def test_audio_source_keys_the_cache(
    gtzan: tuple[Dataset, dict[str, np.ndarray]], tmp_path: Path
) -> None:
    pytest.importorskip("librosa")
    dataset, truth = gtzan
    png_key = SpectrogramImages(source="png").cache_key(dataset, "image")
    auto_key = SpectrogramImages().cache_key(dataset, "image")
    assert png_key != auto_key  # auto also draws jazz.00054 from its audio
    # a playable clip for a track without a PNG is drawn from it, next to the PNGs
    _write_clip(dataset.root / "genres_original" / "rock" / "rock.00007.wav", seed=5)
    dataset = Dataset(dataset.root, dataset.manifest)
    fm = SpectrogramImages(n_jobs=1).build(dataset, "image")
    assert "rock.00007" in fm.row_track and fm.X.shape == (len(truth) + 1, *SHAPE)
    assert SpectrogramImages().cache_key(dataset, "image") != auto_key
    audio = SpectrogramImages(source="audio", n_jobs=1)
    assert audio.cache_key(dataset, "image") not in (png_key, auto_key)
    only = audio.build(dataset, "image")
    assert list(only.row_track) == ["rock.00007"]
    assert only.missing is not None and only.missing["blues.00000"] == "no audio file"


@pytest.mark.integration
def test_drawn_from_audio_matches_kaggles_pngs(real_gtzan: Path) -> None:
    """Kaggle's recipe on a few shared clips: the drawn plot area correlates with the PNG's."""
    pytest.importorskip("librosa")
    from benchmark.audio.decoding import read_audio

    audio = sorted((real_gtzan / "genres_original").glob("*/*.flac"))
    if not audio:
        pytest.skip(f"{real_gtzan} holds no genres_original/*/*.flac clips")
    chosen = audio[:: max(1, len(audio) // 8)][:8]
    rs = []
    for f in chosen:
        genre, num = f.stem.split(".")
        png = real_gtzan / "images_original" / genre / f"{genre}{num}.png"
        if not png.is_file():
            continue
        ref, ref_box = read_spectrogram_png(png)
        mine, box = audio_spectrogram(read_audio(f), SR)
        assert box == ref_box
        rs.append(np.corrcoef(mine.ravel().astype(float), ref.ravel().astype(float))[0, 1])
    assert len(rs) >= 3
    assert np.median(rs) >= 0.99, rs


@pytest.mark.integration
def test_real_images(tmp_path: Path) -> None:
    data = os.environ.get("GENREBENCH_DATA")
    if not data or not (Path(data) / "images_original").is_dir():
        pytest.skip("GENREBENCH_DATA does not point at a folder with images_original/")
    pngs = sorted((Path(data) / "images_original").glob("*/*.png"))
    by_genre: dict[str, list[Path]] = {}
    for p in pngs:
        by_genre.setdefault(p.parent.name, []).append(p)
    chosen = [p for ps in by_genre.values() for p in ps[:2]][:20]
    for p in chosen:
        link = tmp_path / "images_original" / p.parent.name / p.name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(p)
    dataset = Dataset(tmp_path, load_manifest("gtzan"))
    fs = SpectrogramImages()
    fm = fs.build(dataset, "image")
    assert fm.X.shape == (len(chosen), *SHAPE)
    assert fm.X.dtype == np.float32
    assert 0.0 <= fm.X.min() and fm.X.max() <= 1.0
    assert fm.X.std() > 0.05
    assert fm.X[:, :20].mean() > fm.X[:, -20:].mean()  # low frequencies carry more energy
    for p in chosen[:3]:
        assert read_spectrogram_png(p)[1] == BOX
    tab = fs.build(dataset, "tabular")
    assert tab.X.shape == (len(chosen), 105) and np.isfinite(tab.X).all()
