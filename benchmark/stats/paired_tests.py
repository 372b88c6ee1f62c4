"""Two models on one protocol: is their difference real?

Per-fold scores get the corrected resampled t-test, one test split gets the exact McNemar
test; both live here because every other module of the package builds on them.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from scipy import stats

# differences this close to constant are treated as constant (fold accuracies are ratios of
# small integers, so a - b carries rounding noise around 1e-16)
_CONSTANT_TOL = 1e-12


class StatsWarning(UserWarning):
    """A test could not be computed (too few folds...): the result is NaN and this says why."""


class TTestResult(NamedTuple):
    t: float
    p: float


class McNemarResult(NamedTuple):
    b: int
    c: int
    p: float


def corrected_resampled_ttest(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    n_train: float,
    n_test: float,
) -> TTestResult:
    """Corrected resampled t-test of paired per-fold scores ``a`` vs ``b`` (two-sided).

    Nadeau & Bengio (2003), "Inference for the generalization error", Machine Learning 52:
    the folds' training sets overlap, so the per-fold differences are correlated and the plain
    paired t-test (variance / k) underestimates the variance and finds differences that are not
    there. They inflate it to ``(1/k + n_test/n_train) * var(d)``; Bouckaert & Frank (2004)
    showed the same correction behaves well for k-fold cross-validation. The p-value is from
    Student's t with ``k - 1`` degrees of freedom. ``n_test = 0`` gives the plain paired t-test.

    Conventions: ``k < 2`` gives ``(nan, nan)`` and a :class:`StatsWarning` (no variance can be
    estimated); identical scores give ``t = 0, p = 1``; a constant nonzero difference gives
    ``t = ±inf, p = 0`` (every fold agrees on the sign and size: no sampling noise is left).
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"a and b must be 1-d and paired, got shapes {a.shape} and {b.shape}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("scores must be finite (drop folds that did not finish first)")
    if not n_train > 0 or not n_test >= 0:
        raise ValueError(f"need n_train > 0 and n_test >= 0, got {n_train}, {n_test}")
    k = a.size
    if k < 2:
        warnings.warn(
            f"corrected resampled t-test needs >= 2 folds, got {k}: no variance to estimate",
            StatsWarning,
            stacklevel=2,
        )
        return TTestResult(math.nan, math.nan)
    d = a - b
    mean = float(d.mean())
    scale = max(1.0, float(np.abs(d).max()))
    if float(np.ptp(d)) <= _CONSTANT_TOL * scale:
        if abs(mean) <= _CONSTANT_TOL * scale:
            return TTestResult(0.0, 1.0)
        return TTestResult(math.copysign(math.inf, mean), 0.0)
    var = float(d.var(ddof=1))
    t = mean / math.sqrt((1.0 / k + n_test / n_train) * var)
    p = float(2.0 * stats.t.sf(abs(t), df=k - 1))
    return TTestResult(float(t), min(p, 1.0))


def _as_bool(x: Sequence[Any] | np.ndarray) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"expected a 1-d array of per-track correctness, got shape {arr.shape}")
    if arr.dtype != bool:
        if arr.size and not np.isin(arr, (0, 1)).all():
            raise ValueError("correctness must be boolean (or 0/1)")
        arr = arr.astype(bool)
    return arr


def mcnemar_exact(
    correct_a: Sequence[bool] | np.ndarray, correct_b: Sequence[bool] | np.ndarray
) -> McNemarResult:
    """Exact McNemar test on paired per-track correctness of two models (two-sided).

    McNemar (1947); recommended for one test set by Dietterich (1998), "Approximate statistical
    tests for comparing supervised classification learning algorithms", Neural Computation 10.
    Only discordant tracks carry information: ``b`` = tracks A gets right and B wrong, ``c`` =
    the reverse. Under H0 ``b ~ Binomial(b + c, 1/2)``; the exact binomial test is used because
    on a 290-track split ``b + c`` is often too small for the chi-squared approximation.
    ``b + c = 0`` (the models never disagree) gives ``p = 1``.
    """
    ca, cb = _as_bool(correct_a), _as_bool(correct_b)
    if ca.shape != cb.shape:
        raise ValueError(f"paired arrays differ in length: {ca.size} vs {cb.size}")
    b = int(np.count_nonzero(ca & ~cb))
    c = int(np.count_nonzero(~ca & cb))
    if b + c == 0:
        return McNemarResult(b, c, 1.0)
    p = float(stats.binomtest(b, b + c, 0.5, alternative="two-sided").pvalue)
    return McNemarResult(b, c, min(p, 1.0))
