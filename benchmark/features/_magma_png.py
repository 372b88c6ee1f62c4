"""Kaggle's spectrogram pictures read back into numbers: crop the plot, invert the colour map.

Each Kaggle PNG is a magma-coloured mel spectrogram drawn by matplotlib inside white margins and
a thin axes frame. :func:`read_spectrogram_png` crops it to the plot area (margins and frame
removed) and maps every pixel's colour back to its position on matplotlib's 256-entry magma
colour map: a scalar intensity in [0, 1], row 0 the lowest frequency band. The feature set
``spectrogram_img`` (:mod:`benchmark.features.spectrogram`) reads PNGs and its own drawings
from audio through here alike.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import numpy as np
from PIL import Image

from benchmark.errors import DataError

__all__ = ["invert_magma", "plot_box", "read_spectrogram_png", "spectrogram_from_rgba"]

#: a pixel this close (Euclidean, 0-255 RGB) to a colour-map entry is "a magma colour"; covers
#: 8-bit rounding or truncation of the map, not the anti-aliased frame pixels
MATCH_TOLERANCE = 2.0
#: at most this many frame lines are peeled from each side of the non-white box
MAX_FRAME = 3
#: matplotlib draws spectrograms with origin="lower": the lowest frequency is the bottom row
LOW_FREQUENCY_AT_BOTTOM = True


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


def spectrogram_from_rgba(rgba: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A Kaggle-style picture (``(H, W, 3 or 4)`` uint8) as magma indices: ``(index uint8
    (h, w), box)``, row 0 the lowest frequency; ``box`` is ``(top, bottom, left, right)`` of the
    plot area in the picture. PNGs and pictures drawn from audio both come through here."""
    top, bottom, left, right = plot_box(rgba)
    index, distance = invert_magma(np.ascontiguousarray(rgba[top:bottom, left:right, :3]))
    inner = _peel_frame(distance <= MATCH_TOLERANCE, (0, bottom - top, 0, right - left))
    t, b, lft, rgt = inner
    index = index[t:b, lft:rgt]
    if LOW_FREQUENCY_AT_BOTTOM:
        index = index[::-1]
    return np.ascontiguousarray(index), (top + t, top + b, left + lft, left + rgt)


def read_spectrogram_png(path: str | os.PathLike[str]) -> tuple[np.ndarray, tuple[int, ...]]:
    """One Kaggle PNG as magma indices: ``(index uint8 (H, W), box)``, row 0 the lowest
    frequency; ``box`` is ``(top, bottom, left, right)`` of the plot area in the PNG."""
    try:
        with Image.open(path) as im:
            rgba = np.asarray(im.convert("RGBA"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable PNG ({exc})") from None
    return spectrogram_from_rgba(rgba)
