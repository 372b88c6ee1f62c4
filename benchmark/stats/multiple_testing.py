"""Many pairs against one baseline: Holm's step-down adjustment keeps the family-wise error
rate, so one lucky pair among many is not called "better"."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def holm(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm–Bonferroni step-down adjusted p-values (Holm, 1979, Scand. J. Statist. 6).

    Every pair is tested against the same baseline, so the chance of one false "better" grows
    with the number of pairs; Holm controls that family-wise error rate without assuming
    independence and is uniformly more powerful than Bonferroni. The i-th smallest of m p-values
    becomes ``max_{j<=i} (m - j + 1) p_(j)``, capped at 1. NaNs pass through and do not count
    towards m.
    """
    p = np.asarray(pvalues, dtype=float)
    if p.ndim != 1:
        raise ValueError(f"pvalues must be 1-d, got shape {p.shape}")
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    m = int(ok.sum())
    if m == 0:
        return out
    if np.any((p[ok] < 0) | (p[ok] > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    vals = p[ok]
    order = np.argsort(vals, kind="stable")
    adj = np.maximum.accumulate((m - np.arange(m)) * vals[order])
    adj = np.minimum(adj, 1.0)
    ranked = np.empty(m)
    ranked[order] = adj
    out[ok] = ranked
    return out
