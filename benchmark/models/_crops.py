"""Random-crop training and crop-vote prediction for clip-level arrays (NumPy only).

A clip is one row of ``X``: a spectrogram ``(H, W)`` (frequency × time) or a waveform ``(T,)``.
The time axis is always the last one. Neural families train on short random crops of each clip
(a fresh crop every epoch, so 30 s of audio gives many different training examples) and predict
a clip by averaging the class probabilities of evenly spaced crops that cover it
(:func:`clip_crops` + :func:`vote`).

Everything here works on views and fills each batch once: a batch of crops is one gather from a
sliding-window view of ``X`` (never a copy of ``X``), and augmentation (:func:`mask_time`,
:func:`mask_frequency`, :func:`mixup`) modifies that batch in place.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "clip_crops",
    "crop_length",
    "crop_starts",
    "mask_frequency",
    "mask_time",
    "mixup",
    "random_crops",
    "vote",
]


def crop_length(width: int, fraction: float) -> int:
    """Crop length (time steps) for clips ``width`` steps long: ``fraction`` of the clip,
    at least 1 and at most the whole clip (``fraction=0.1`` of a 30 s clip is 3 s)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"the crop fraction must lie in (0, 1], got {fraction!r}")
    if width < 1:
        raise ValueError(f"clips need at least one time step, got width={width}")
    return int(min(width, max(1, round(width * fraction))))


def crop_starts(width: int, length: int, n_crops: int) -> np.ndarray:
    """Start offsets of ``n_crops`` evenly spaced crops of ``length`` steps covering a clip of
    ``width`` steps: the first starts at 0, the last ends at ``width`` (crops overlap when
    ``n_crops * length > width``; one crop is centred)."""
    if not 1 <= length <= width:
        raise ValueError(f"crop length {length} does not fit clips of width {width}")
    if n_crops < 1:
        raise ValueError(f"n_crops must be >= 1, got {n_crops}")
    if n_crops == 1:
        return np.array([(width - length) // 2], dtype=np.int64)
    return np.linspace(0, width - length, n_crops).round().astype(np.int64)


def _windows(X: np.ndarray, length: int) -> np.ndarray:
    """Read-only view ``(n, ..., width - length + 1, length)``: every crop of every clip."""
    return sliding_window_view(X, length, axis=-1)


def random_crops(
    X: np.ndarray, rows: np.ndarray, length: int, rng: np.random.Generator
) -> np.ndarray:
    """One crop of ``length`` steps at a uniformly random offset from each clip ``X[rows]``.

    Returns a new C-contiguous ``(len(rows), ..., length)`` array (one gather, ``X``'s dtype).
    """
    width = X.shape[-1]
    starts = rng.integers(0, width - length + 1, size=len(rows))
    return _gather(X, rows, starts, length)


def clip_crops(X: np.ndarray, length: int, n_crops: int) -> np.ndarray:
    """The ``n_crops`` evenly spaced crops of every clip, clip-major:
    ``(len(X) * n_crops, ..., length)``; rows ``i * n_crops ... (i + 1) * n_crops - 1`` are
    clip ``i``'s (the layout :func:`vote` expects)."""
    starts = crop_starts(X.shape[-1], length, n_crops)
    rows = np.repeat(np.arange(len(X)), n_crops)
    return _gather(X, rows, np.tile(starts, len(X)), length)


def _gather(X: np.ndarray, rows: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    windows = _windows(X, length)
    # advanced indices split by the ellipsis come first: (batch, ..., length)
    return np.ascontiguousarray(windows[rows, ..., starts, :])


def vote(proba: np.ndarray, n_crops: int) -> np.ndarray:
    """Clip probabilities: the mean over each clip's ``n_crops`` consecutive crop rows."""
    proba = np.asarray(proba)
    if proba.ndim != 2 or len(proba) % n_crops:
        raise ValueError(
            f"expected (n_clips * {n_crops}, n_classes) crop probabilities, got {proba.shape}"
        )
    return proba.reshape(len(proba) // n_crops, n_crops, proba.shape[1]).mean(axis=1)


def _mask(
    batch: np.ndarray, axis: int, n_masks: int, max_width: int, rng: np.random.Generator
) -> None:
    """Zero ``n_masks`` random bands of width ``0..max_width`` along ``axis`` of each sample."""
    size = batch.shape[axis]
    max_width = min(max_width, size)
    if n_masks < 1 or max_width < 1:
        return
    n = len(batch)
    positions = np.arange(size)
    keep = np.ones((n, size), dtype=bool)
    for _ in range(n_masks):
        widths = rng.integers(0, max_width + 1, size=n)
        starts = rng.integers(0, size - widths + 1)
        keep &= (positions < starts[:, None]) | (positions >= (starts + widths)[:, None])
    shape = [n] + [1] * (batch.ndim - 1)
    shape[axis] = size
    batch *= keep.reshape(shape)


def mask_time(batch: np.ndarray, n_masks: int, max_width: int, rng: np.random.Generator) -> None:
    """SpecAugment time masking, in place: zero ``n_masks`` random spans of up to ``max_width``
    steps along the last axis of every sample (on standardized inputs 0 is the mean)."""
    _mask(batch, batch.ndim - 1, n_masks, max_width, rng)


def mask_frequency(
    batch: np.ndarray, n_masks: int, max_width: int, rng: np.random.Generator
) -> None:
    """SpecAugment frequency masking, in place, on ``(n, H, W)`` spectrogram batches: zero
    ``n_masks`` random bands of up to ``max_width`` rows."""
    if batch.ndim != 3:
        raise ValueError(f"frequency masking needs (n, H, W) batches, got {batch.shape}")
    _mask(batch, 1, n_masks, max_width, rng)


def mixup(
    x: np.ndarray, y: np.ndarray, alpha: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Mixup (Zhang et al. 2018), in place: each sample and its one-hot target become
    ``lam * own + (1 - lam) * partner`` for a random partner in the batch and
    ``lam ~ Beta(alpha, alpha)`` per sample. ``alpha <= 0`` leaves the batch as it is."""
    if alpha <= 0 or len(x) < 2:
        return x, y
    lam = rng.beta(alpha, alpha, size=len(x)).astype(x.dtype)
    partner = rng.permutation(len(x))
    x_partner, y_partner = x[partner], y[partner]
    lam_x = lam.reshape((-1,) + (1,) * (x.ndim - 1))
    x *= lam_x
    x += (1 - lam_x) * x_partner
    y *= lam[:, None]
    y += (1 - lam[:, None]) * y_partner
    return x, y
