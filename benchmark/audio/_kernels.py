"""Compiled (numba) kernels behind the fast librosa features; imported only when audio is
processed (numba comes with the ``audio`` extra, through librosa).

Both kernels reproduce what librosa computes, value for value:

* :func:`median_rows` is ``scipy.ndimage.median_filter(x, size=(1, k), mode="reflect")`` (the
  filter inside ``librosa.decompose.hpss``), about 10x faster: a sorted window updated by one
  removal and one insertion per step, with the positions found by branch-free counting.
* :func:`harmonic_stft` is ``D * softmask(H, P, power=2, split_zeros=True)`` (the harmonic half of
  ``librosa.decompose.hpss`` with its default margin 1), fused into one pass.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["harmonic_stft", "median_rows"]


@numba.njit(cache=True, nogil=True)
def _reflect(i: int, n: int) -> int:  # pragma: no cover - compiled
    """Index ``i`` of the half-sample symmetric extension ``d c b a | a b c d | d c b a``."""
    m = i % (2 * n)
    return m if m < n else 2 * n - 1 - m


@numba.njit(cache=True, nogil=True)
def median_rows(x: np.ndarray, k: int) -> np.ndarray:  # pragma: no cover - compiled
    """Running median of odd width ``k`` along the last axis of the 2-D array ``x``, with
    ``scipy.ndimage``'s ``reflect`` borders (any row length, even shorter than ``k``)."""
    n_rows, n = x.shape
    h = k // 2
    out = np.empty_like(x)
    if n == 0:
        return out
    buf = np.empty(n + 2 * h, dtype=x.dtype)
    win = np.empty(k, dtype=x.dtype)
    for r in range(n_rows):
        for i in range(n + 2 * h):
            buf[i] = x[r, _reflect(i - h, n)]
        for i in range(k):
            win[i] = buf[i]
        win.sort()
        out[r, 0] = win[h]
        for i in range(1, n):
            old = buf[i - 1]
            new = buf[i - 1 + k]
            # ranks by counting: branch-free, so the compiler vectorises it
            p_old = 0
            p_new = 0
            for j in range(k):
                p_old += win[j] < old
                p_new += win[j] < new
            # win[p_old] holds (a copy of) old: drop it and insert new, keeping win sorted
            if p_new > p_old:
                for j in range(p_old, p_new - 1):
                    win[j] = win[j + 1]
                win[p_new - 1] = new
            else:
                for j in range(p_old, p_new, -1):
                    win[j] = win[j - 1]
                win[p_new] = new
            out[r, i] = win[h]
    return out


@numba.njit(cache=True, nogil=True)
def harmonic_stft(
    D: np.ndarray, harm: np.ndarray, perc: np.ndarray
) -> np.ndarray:  # pragma: no cover - compiled
    """``D`` weighted by the soft mask ``harm² / (harm² + perc²)`` (0.5 where both vanish)."""
    out = np.empty_like(D)
    tiny = np.finfo(harm.dtype).tiny
    for i in range(D.shape[0]):
        for j in range(D.shape[1]):
            h = harm[i, j]
            p = perc[i, j]
            z = max(h, p)
            if z < tiny:
                m = 0.5
            else:
                a = (h / z) ** 2
                b = (p / z) ** 2
                m = a / (a + b)
            out[i, j] = D[i, j] * m
    return out
