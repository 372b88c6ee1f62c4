"""Kaggle's mel-spectrogram PNGs turned back into numbers (feature set ``spectrogram_img``).

Kaggle ships one 432x288 RGBA picture per clip: a magma-coloured mel spectrogram drawn by
matplotlib inside white margins and a thin axes frame. Image models should see the spectrogram,
not the picture, so each PNG is cropped to the plot area (margins and frame removed) and every
pixel's colour is mapped back to its position on matplotlib's 256-entry magma colour map: a
scalar intensity in [0, 1]. Row 0 of the result is the lowest frequency band.

Two views: ``"image"`` (``(n, H, W)`` float32, native crop 216x334 on the Kaggle files) for image
families, and ``"tabular"`` (band-pooled statistics of the same arrays) so the classic families
can use the spectrograms too.
"""

from __future__ import annotations

import contextvars
import logging
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from benchmark.errors import ConfigError, DataError
from benchmark.features.base import FeatureMatrix, FeatureSet

if TYPE_CHECKING:
    from benchmark.data import Dataset

__all__ = [
    "SpectrogramImages",
    "band_statistics",
    "invert_magma",
    "plot_box",
    "read_spectrogram_png",
]

log = logging.getLogger(__name__)

#: a pixel this close (Euclidean, 0-255 RGB) to a colour-map entry is "a magma colour"; covers
#: 8-bit rounding or truncation of the map, not the anti-aliased frame pixels
MATCH_TOLERANCE = 2.0
#: at most this many frame lines are peeled from each side of the non-white box
MAX_FRAME = 3
#: matplotlib draws spectrograms with origin="lower": the lowest frequency is the bottom row
LOW_FREQUENCY_AT_BOTTOM = True

# Set by SpectrogramImages.load while it runs, so build(..., "tabular") can take the image
# view from the same on-disk cache instead of decoding every PNG again.
_image_cache_dir: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "spectrogram_image_cache_dir", default=None
)


# --- colour map inversion ---------------------------------------------------------------------
@cache
def _magma() -> tuple[np.ndarray, np.ndarray, np.ndarray, Any]:
    """Magma as 8-bit RGB (rounded, which matches the Kaggle files exactly), its packed keys
    sorted for exact look-up, the entry index of each sorted key, and a KD-tree for the rest."""
    import matplotlib
    from scipy.spatial import cKDTree

    lut = np.round(matplotlib.colormaps["magma"](np.linspace(0.0, 1.0, 256))[:, :3] * 255)
    lut = lut.astype(np.uint8)
    keys = _pack(lut)
    order = np.argsort(keys, kind="stable")
    return lut, keys[order], order.astype(np.uint8), cKDTree(lut.astype(np.float64))


def _pack(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.int32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def invert_magma(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest magma entry of each pixel of an ``(..., 3)`` uint8 RGB array.

    Returns ``(index, distance)``: the entry (0-255, uint8) and the RGB distance to it.
    Exact colours (all plot pixels of the Kaggle PNGs) are found by a sorted-key look-up; only
    the few others (frame, anti-aliasing) go through the KD-tree, which keeps 999 images fast.
    """
    _, sorted_keys, sorted_index, tree = _magma()
    keys = _pack(rgb).ravel()
    pos = np.searchsorted(sorted_keys, keys).clip(0, len(sorted_keys) - 1)
    exact = sorted_keys[pos] == keys
    index = np.where(exact, sorted_index[pos], 0).astype(np.uint8)
    distance = np.zeros(keys.shape, dtype=np.float32)
    if not exact.all():
        rest = rgb.reshape(-1, 3)[~exact].astype(np.float64)
        d, i = tree.query(rest)
        index[~exact] = i
        distance[~exact] = d
    return index.reshape(rgb.shape[:-1]), distance.reshape(rgb.shape[:-1])


# --- cropping ---------------------------------------------------------------------------------
def plot_box(rgba: np.ndarray) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` (end-exclusive) of the solid non-white block of an image.

    A row or column belongs to the block when at least half of it (relative to the fullest one)
    is non-white, so stray tick marks or labels in the margins do not widen the box. Transparent
    pixels count as white.
    """
    rgb = rgba[..., :3]
    background = rgb.min(axis=-1) >= 245
    if rgba.shape[-1] == 4:
        background |= rgba[..., 3] < 16
    fg = ~background
    rows, cols = fg.sum(axis=1), fg.sum(axis=0)
    if rows.max() == 0:
        raise DataError("the image is blank (no non-white pixels)")
    r = np.flatnonzero(rows >= 0.5 * rows.max())
    c = np.flatnonzero(cols >= 0.5 * cols.max())
    return int(r[0]), int(r[-1]) + 1, int(c[0]), int(c[-1]) + 1


def _peel_frame(matched: np.ndarray, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """Shrink ``box`` past border lines that are mostly not magma colours (the axes frame,
    drawn as grey/black lines anti-aliased with the white margin or with the plot)."""
    top, bottom, left, right = box
    for _ in range(MAX_FRAME):
        changed = False
        if bottom - top > 2 and matched[top, left:right].mean() < 0.5:
            top, changed = top + 1, True
        if bottom - top > 2 and matched[bottom - 1, left:right].mean() < 0.5:
            bottom, changed = bottom - 1, True
        if right - left > 2 and matched[top:bottom, left].mean() < 0.5:
            left, changed = left + 1, True
        if right - left > 2 and matched[top:bottom, right - 1].mean() < 0.5:
            right, changed = right - 1, True
        if not changed:
            break
    return top, bottom, left, right


def read_spectrogram_png(path: str | os.PathLike[str]) -> tuple[np.ndarray, tuple[int, ...]]:
    """One Kaggle PNG as magma indices: ``(index uint8 (H, W), box)``, row 0 the lowest
    frequency; ``box`` is ``(top, bottom, left, right)`` of the plot area in the PNG."""
    try:
        with Image.open(path) as im:
            rgba = np.asarray(im.convert("RGBA"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable PNG ({exc})") from None
    top, bottom, left, right = plot_box(rgba)
    index, distance = invert_magma(np.ascontiguousarray(rgba[top:bottom, left:right, :3]))
    inner = _peel_frame(distance <= MATCH_TOLERANCE, (0, bottom - top, 0, right - left))
    t, b, lft, rgt = inner
    index = index[t:b, lft:rgt]
    if LOW_FREQUENCY_AT_BOTTOM:
        index = index[::-1]
    return np.ascontiguousarray(index), (top + t, top + b, left + lft, left + rgt)


def _resize(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a 2-D float array: area average when shrinking (keeps energy, no aliasing),
    bilinear when enlarging."""
    if a.shape == shape:
        return a
    h, w = shape
    shrink = h <= a.shape[0] and w <= a.shape[1]
    method = Image.Resampling.BOX if shrink else Image.Resampling.BILINEAR
    out = Image.fromarray(np.asarray(a, dtype=np.float32), mode="F").resize((w, h), method)
    return np.asarray(out, dtype=np.float32)


# --- the feature set --------------------------------------------------------------------------
class SpectrogramImages(FeatureSet):
    """Kaggle's mel-spectrogram PNGs as intensity arrays (``"image"``) and band statistics
    (``"tabular"``).

    Parameters (all optional, part of the cache key):
        height, width: resize the crop to this shape (default: the native crop, 216x334 on the
            Kaggle files); one of them alone keeps the other native.
        bands: frequency bands of the tabular view (default 32).
    """

    name = "spectrogram_img"
    views = ("tabular", "image")
    version = 1

    _PARAMS = frozenset({"height", "width", "bands", "workers"})

    def __init__(self, **params: Any) -> None:
        unknown = sorted(set(params) - self._PARAMS)
        if unknown:
            raise ConfigError(
                f"feature set {self.name!r}: unknown parameter(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(self._PARAMS))}"
            )
        for key in ("height", "width", "bands", "workers"):
            value = params.get(key)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(f"feature set {self.name!r}: {key} must be a positive integer")
        # the number of threads does not change the result, so it stays out of the cache key
        self.workers: int = params.pop("workers", None) or min(4, os.cpu_count() or 1)
        super().__init__(**params)

    def unavailable(self, dataset: Dataset) -> str | None:
        folder = dataset.path("images")
        if not folder.is_dir():
            return f"{folder.name}/ is not in {dataset.root}"
        if not any(folder.glob("*/*.png")):
            return f"{folder} holds no <genre>/*.png spectrogram images"
        return None

    def input_files(self, dataset: Dataset) -> list[Path]:
        return [Path(p) for p in dataset.tracks["image_path"].dropna()]

    def cache_key(self, dataset: Dataset, view: str) -> str:
        """As :meth:`FeatureSet.cache_key`, but ``bands`` (tabular only) does not key the image
        view, so trying another band count reuses the cached images."""
        if view == "image" and "bands" in self.params:
            rest = {k: v for k, v in self.params.items() if k != "bands"}
            return type(self)(**rest).cache_key(dataset, view)
        return super().cache_key(dataset, view)

    def load(self, dataset: Dataset, view: str, cache_dir: Path | None) -> FeatureMatrix:
        """As :meth:`FeatureSet.load`; a tabular build reads the image view through the same
        cache, so the PNGs are decoded once for both views."""
        token = _image_cache_dir.set(Path(cache_dir) if cache_dir is not None else None)
        try:
            return super().load(dataset, view, cache_dir)
        finally:
            _image_cache_dir.reset(token)

    def build(self, dataset: Dataset, view: str) -> FeatureMatrix:
        if view == "image":
            return self._build_image(dataset)
        if view == "tabular":
            cache_dir = _image_cache_dir.get()
            image = (
                self.load(dataset, "image", cache_dir)
                if cache_dir is not None
                else self._build_image(dataset)
            )
            return self._tabular(image)
        raise ValueError(f"feature set {self.name!r} has no {view!r} view (has {self.views})")

    # --- image view ---------------------------------------------------------------------------
    def _build_image(self, dataset: Dataset) -> FeatureMatrix:
        tracks = dataset.tracks
        have = tracks[tracks["image_path"].notna()]
        missing = {
            str(t): "no image file" for t in tracks.loc[tracks["image_path"].isna(), "track_id"]
        }
        if have.empty:
            raise DataError(
                f"{self.name}: no spectrogram images in {dataset.path('images')} "
                f"({self.unavailable(dataset) or 'no track has one'})"
            )
        paths = have["image_path"].tolist()
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            read = list(pool.map(read_spectrogram_png, paths))
        shapes = Counter(idx.shape for idx, _ in read)
        common = shapes.most_common(1)[0][0]
        boxes = Counter(box for _, box in read)
        log.info(
            "%s: %d images, plot box (top, bottom, left, right) %s in %d, crop %dx%d",
            self.name,
            len(read),
            boxes.most_common(1)[0][0],
            boxes.most_common(1)[0][1],
            *common,
        )
        target = (
            int(self.params.get("height") or common[0]),
            int(self.params.get("width") or common[1]),
        )
        X = np.empty((len(read), *target), dtype=np.float32)
        for i, (path, (idx, box)) in enumerate(zip(paths, read, strict=True)):
            img = idx.astype(np.float32) / 255.0
            if idx.shape != common:
                log.warning(
                    "%s: %s has a %dx%d plot area at %s, not the common %dx%d; resized to it",
                    self.name,
                    Path(path).name,
                    *idx.shape,
                    box,
                    *common,
                )
                img = _resize(img, common)
            X[i] = _resize(img, target)
        np.clip(X, 0.0, 1.0, out=X)
        return FeatureMatrix(
            X=X,
            row_track=have["track_id"].to_numpy(dtype=str),
            feature_names=None,
            missing=missing or None,
        )

    # --- tabular view -------------------------------------------------------------------------
    def _tabular(self, image: FeatureMatrix) -> FeatureMatrix:
        """The image view summarised per row (in chunks, so no full-size temporaries)."""
        X = image.X
        n_bands = int(self.params.get("bands") or 32)
        if n_bands > X.shape[1]:
            raise ConfigError(f"{self.name}: bands={n_bands} exceeds the image height {X.shape[1]}")
        parts = [band_statistics(X[i : i + 128], n_bands) for i in range(0, len(X), 128)]
        return FeatureMatrix(
            X=np.concatenate([p[0] for p in parts]),
            row_track=image.row_track,
            feature_names=parts[0][1],
            missing=image.missing,
        )


def band_statistics(X: np.ndarray, n_bands: int = 32) -> tuple[np.ndarray, list[str]]:
    """Tabular summary of ``(n, H, W)`` spectrograms (row 0 = lowest frequency).

    Per frequency band (rows pooled into ``n_bands``): mean and spread over time and the mean
    frame-to-frame change (a rough spectral flux); then a few whole-image statistics. Enough for
    the classic families to pick up timbre and rhythm cues from the spectrograms.
    Returns ``(features (n, 3 * n_bands + 9) float64, names)``.
    """
    X = np.asarray(X, dtype=np.float32)
    n, h, w = X.shape
    edges = np.linspace(0, h, n_bands + 1).round().astype(int)
    sizes = np.diff(edges).astype(np.float32)
    band = np.add.reduceat(X, edges[:-1], axis=1) / sizes[None, :, None]  # (n, bands, w)

    cols: list[np.ndarray] = []
    names: list[str] = []
    band_mean = band.mean(axis=2)
    band_std = band.std(axis=2)
    band_flux = np.abs(np.diff(band, axis=2)).mean(axis=2) if w > 1 else np.zeros_like(band_mean)
    for k in range(n_bands):
        cols += [band_mean[:, k], band_std[:, k], band_flux[:, k]]
        names += [f"band{k:02d}_mean", f"band{k:02d}_std", f"band{k:02d}_flux"]

    flat = X.reshape(n, -1)
    q10, q50, q90 = np.quantile(flat, [0.1, 0.5, 0.9], axis=1)
    frame_energy = X.mean(axis=1)  # (n, w): loudness envelope over time
    pos = (np.arange(n_bands, dtype=np.float32) + 0.5) / n_bands
    weight = band.sum(axis=1)
    # (n, w): intensity-weighted band position per frame, 0 = lowest, 1 = highest
    centroid = (band * pos[None, :, None]).sum(axis=1) / np.maximum(weight, 1e-12)
    whole = {
        "global_mean": flat.mean(axis=1),
        "global_std": flat.std(axis=1),
        "global_p10": q10,
        "global_p50": q50,
        "global_p90": q90,
        "global_flux": np.abs(np.diff(X, axis=2)).mean(axis=(1, 2)) if w > 1 else np.zeros(n),
        "energy_std": frame_energy.std(axis=1),
        "centroid_mean": centroid.mean(axis=1),
        "centroid_std": centroid.std(axis=1),
    }
    cols += list(whole.values())
    names += list(whole)
    return np.column_stack(cols).astype(np.float64), names
