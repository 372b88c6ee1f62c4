"""The spectrogram_img feature set on generated Kaggle-like PNGs (plus one real-data check)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
from fake_gtzan import BOX, SHAPE, magma_rgb, png_path, scalar, write_png
from PIL import Image

from benchmark.data import Dataset, load_manifest
from benchmark.errors import ConfigError
from benchmark.features import get_feature_set
from benchmark.features import spectrogram as spec
from benchmark.features.spectrogram import SpectrogramImages, read_spectrogram_png

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
    assert fs.views == ("tabular", "image")


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


def test_image_view(gtzan: tuple[Dataset, dict[str, np.ndarray]]) -> None:
    dataset, truth = gtzan
    fs = SpectrogramImages()
    assert fs.unavailable(dataset) is None
    assert sorted(p.name for p in fs.input_files(dataset)) == sorted(
        png_path(dataset.root, t).name for t in truth
    )
    fm = fs.build(dataset, "image")
    assert fm.X.dtype == np.float32
    assert fm.X.shape == (len(truth), *SHAPE)
    assert fm.feature_names is None
    assert fm.missing == {"jazz.00054": "no image file"}
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


def test_tabular_view(gtzan: tuple[Dataset, dict[str, np.ndarray]]) -> None:
    dataset, truth = gtzan
    fm = SpectrogramImages().build(dataset, "tabular")
    assert fm.X.shape == (len(truth), 32 * 3 + 9)
    assert fm.feature_names is not None and len(fm.feature_names) == fm.X.shape[1]
    assert fm.feature_names[:4] == ["band00_mean", "band00_std", "band00_flux", "band01_mean"]
    assert "band31_flux" in fm.feature_names and "global_mean" in fm.feature_names
    assert len(set(fm.feature_names)) == len(fm.feature_names)
    assert np.isfinite(fm.X).all()
    assert fm.missing == {"jazz.00054": "no image file"}
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
    reason = SpectrogramImages().unavailable(dataset)
    assert reason and "images_original" in reason
    (tmp_path / "images_original" / "blues").mkdir(parents=True)
    assert "no" in (SpectrogramImages().unavailable(dataset) or "")
    assert SpectrogramImages().input_files(dataset) == []


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

    # the tabular view takes the image view from the cache: no PNG is decoded again
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

    # bands only key the tabular view
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
