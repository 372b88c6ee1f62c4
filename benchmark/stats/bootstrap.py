"""Bootstrap intervals over tracks: the uncertainty of an accuracy, and of a paired difference
(percentile bootstrap, no normal approximation, which fails on small test splits)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from benchmark.stats.paired_tests import _as_bool


def _bootstrap_means(columns: Sequence[np.ndarray], n_boot: int, seed: int) -> list[np.ndarray]:
    """Means of each column over the same ``n_boot`` resamples of rows (chunked for memory)."""
    n = columns[0].size
    rng = np.random.default_rng(seed)
    out = [np.empty(n_boot) for _ in columns]
    chunk = max(1, min(n_boot, 2_000_000 // max(n, 1)))
    for start in range(0, n_boot, chunk):
        stop = min(start + chunk, n_boot)
        idx = rng.integers(0, n, size=(stop - start, n))
        for col, res in zip(columns, out, strict=True):
            res[start:stop] = col[idx].mean(axis=1)
    return out


def _check_boot(n_boot: int, alpha: float) -> None:
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")


def bootstrap_means(
    columns: Sequence[np.ndarray], n_boot: int = 2000, seed: int = 0
) -> list[np.ndarray]:
    """The means of each column (one value per row: a track, a file) over the same ``n_boot``
    resamples of rows with replacement, seeded as :func:`bootstrap_ci` (the same seed draws the
    same resamples): statistics that are functions of such means (a recall is the ratio of two,
    an F1 of three) get their percentile interval from these. The columns must be as long."""
    _check_boot(n_boot, 0.05)
    cols = [np.asarray(c, dtype=float) for c in columns]
    if not cols or any(c.shape != cols[0].shape or c.ndim != 1 for c in cols):
        raise ValueError("bootstrap_means needs one or more 1-d columns of the same length")
    if cols[0].size == 0:
        return [np.full(n_boot, math.nan) for _ in cols]
    return _bootstrap_means(cols, n_boot, seed)


def percentile_interval(samples: np.ndarray, alpha: float = 0.05) -> tuple[float, float]:
    """The ``alpha/2`` and ``1 - alpha/2`` quantiles of bootstrap ``samples`` (NaN resamples,
    where a statistic is undefined, left out; none left: ``(nan, nan)``)."""
    _check_boot(1, alpha)
    s = np.asarray(samples, dtype=float)
    s = s[~np.isnan(s)]
    if s.size == 0:
        return (math.nan, math.nan)
    lo, hi = np.quantile(s, [alpha / 2, 1 - alpha / 2])
    return (float(lo), float(hi))


def bootstrap_ci(
    correct: Sequence[bool] | np.ndarray, n_boot: int = 2000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap ``1 - alpha`` interval of accuracy over tracks.

    Efron & Tibshirani (1993), "An Introduction to the Bootstrap", ch. 13: resample tracks with
    replacement, take the ``alpha/2`` and ``1 - alpha/2`` quantiles of the resampled accuracies.
    It needs no normal approximation, which fails near 0 or 1 and on small test splits.
    Deterministic for a seed; no tracks gives ``(nan, nan)``.
    """
    _check_boot(n_boot, alpha)
    c = _as_bool(correct).astype(float)
    if c.size == 0:
        return (math.nan, math.nan)
    (acc,) = _bootstrap_means([c], n_boot, seed)
    lo, hi = np.quantile(acc, [alpha / 2, 1 - alpha / 2])
    return (float(lo), float(hi))


def paired_bootstrap_ci(
    correct_a: Sequence[bool] | np.ndarray,
    correct_b: Sequence[bool] | np.ndarray,
    n_boot: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``accuracy(a) - accuracy(b)`` on the same tracks.

    Tracks are resampled jointly (Efron & Tibshirani, 1993), so the interval keeps the pairing:
    two models that err on the same hard tracks get a narrow interval of their difference.
    """
    _check_boot(n_boot, alpha)
    ca, cb = _as_bool(correct_a).astype(float), _as_bool(correct_b).astype(float)
    if ca.shape != cb.shape:
        raise ValueError(f"paired arrays differ in length: {ca.size} vs {cb.size}")
    if ca.size == 0:
        return (math.nan, math.nan)
    acc_a, acc_b = _bootstrap_means([ca, cb], n_boot, seed)
    lo, hi = np.quantile(acc_a - acc_b, [alpha / 2, 1 - alpha / 2])
    return (float(lo), float(hi))
