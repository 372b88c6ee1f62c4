"""Many treatments over many blocks, by ranks: Friedman with the Nemenyi critical difference
(families over feature set x protocol) and with Conover's post-hoc tests (racing pairs over
folds); rank tests need no assumption on how scores are distributed."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from benchmark.stats.paired_tests import _CONSTANT_TOL


def nemenyi_q(k: int, alpha: float = 0.05) -> float:
    """Critical value q_alpha of the Nemenyi test for ``k`` models (Demšar, 2006, Table 5).

    The studentized range quantile with infinite degrees of freedom, divided by sqrt(2).
    """
    if k < 2:
        raise ValueError(f"need at least 2 models, got {k}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    return float(stats.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2))


def nemenyi_critical_difference(k: int, n_blocks: int, alpha: float = 0.05) -> float:
    """CD = q_alpha * sqrt(k (k + 1) / (6 N)) (Demšar, 2006, sec. 3.2.2): two models whose
    average ranks over N blocks differ by at least CD differ significantly."""
    if n_blocks < 1:
        raise ValueError(f"need at least 1 block, got {n_blocks}")
    return nemenyi_q(k, alpha) * math.sqrt(k * (k + 1) / (6.0 * n_blocks))


def cd_groups(avg_ranks: Mapping[str, float], cd: float) -> list[tuple[str, ...]]:
    """Maximal runs of models (in rank order) whose ranks span less than ``cd``.

    These are the bars of a CD diagram: models joined by a bar are not significantly different
    (Demšar, 2006, Fig. 1). A model that differs from every other appears in no group.
    """
    items = sorted(avg_ranks.items(), key=lambda kv: (kv[1], kv[0]))
    names = [n for n, _ in items]
    ranks = [r for _, r in items]
    groups: list[tuple[str, ...]] = []
    last_end = -1
    for i in range(len(ranks)):
        j = i
        while j + 1 < len(ranks) and ranks[j + 1] - ranks[i] < cd:
            j += 1
        if j > i and j > last_end:
            groups.append(tuple(names[i : j + 1]))
            last_end = j
    return groups


@dataclass(frozen=True)
class FriedmanResult:
    """Friedman test and Nemenyi post-hoc over families (see :func:`friedman_nemenyi`)."""

    statistic: float  # Friedman chi-squared (scipy, tie-corrected)
    pvalue: float
    avg_ranks: pd.Series  # family -> average rank, 1 = best, best first
    n_blocks: int
    k: int
    alpha: float
    q_alpha: float
    cd: float
    dropped_blocks: list[Any] = field(default_factory=list)  # blocks with a missing score

    @property
    def groups(self) -> list[tuple[str, ...]]:
        """Groups of families not significantly different (the CD diagram's bars)."""
        return cd_groups(self.avg_ranks.to_dict(), self.cd)


def friedman_nemenyi(scores: pd.DataFrame, alpha: float = 0.05) -> FriedmanResult:
    """Friedman test over families, with average ranks and the Nemenyi critical difference.

    Demšar (2006), "Statistical comparisons of classifiers over multiple data sets", JMLR 7:
    to compare k families over N blocks (here feature set x protocol), rank the families within
    each block (1 = best, higher score is better, ties get the average rank), test whether the
    average ranks differ (Friedman, 1937; scipy's statistic includes the tie correction), and
    call two families different when their average ranks differ by at least CD. Blocks with a
    missing score are dropped (the test needs complete blocks) and listed in the result.

    ``scores``: rows = blocks, columns = families. Needs >= 3 families and >= 2 blocks.
    """
    if scores.shape[1] < 3:
        raise ValueError(f"the Friedman test needs >= 3 families, got {scores.shape[1]}")
    values = scores.apply(pd.to_numeric, errors="coerce")
    complete = values.notna().all(axis=1)
    dropped = list(values.index[~complete])
    values = values[complete]
    n, k = values.shape
    if n < 2:
        raise ValueError(f"the Friedman test needs >= 2 complete blocks, got {n}")
    x = values.to_numpy(dtype=float)
    ranks = np.vstack([stats.rankdata(-row, method="average") for row in x])
    avg = pd.Series(ranks.mean(axis=0), index=[str(c) for c in values.columns], name="avg_rank")
    avg = avg.sort_values(kind="stable")
    if all(np.ptp(row) == 0 for row in x):
        chi2, p = 0.0, 1.0  # every block a full tie: scipy divides 0 by 0 here
    else:
        res = stats.friedmanchisquare(*x.T)
        chi2, p = float(res.statistic), float(res.pvalue)
    q = nemenyi_q(k, alpha)
    cd = q * math.sqrt(k * (k + 1) / (6.0 * n))
    return FriedmanResult(chi2, p, avg, n, k, alpha, q, cd, dropped)


class ConoverResult(NamedTuple):
    """Friedman test over the columns of a block matrix and Conover's one-sided post-hoc
    p-values of every column against the best-ranked one (see :func:`friedman_conover`)."""

    statistic: float  # Conover's T1 (the tie-corrected Friedman chi-squared)
    pvalue: float  # of T1 against chi-squared with k - 1 degrees of freedom
    best: int  # column with the lowest rank sum
    rank_sums: np.ndarray  # per column, rank 1 = highest score
    p_worse: np.ndarray  # per column: P(its ranks are this much worse than best's by chance)


def friedman_conover(scores: np.ndarray) -> ConoverResult:
    """Friedman test and Conover's post-hoc t-tests against the best column.

    Conover (1999), *Practical Nonparametric Statistics*, 3rd ed., pp. 369-373, the test irace
    races configurations with (López-Ibáñez et al., 2016): ``scores`` has one row per block (a
    fold) and one column per treatment (a pair); each row is ranked (1 = highest score, ties
    averaged); with ``A1`` the sum of squared ranks, ``C1 = b k (k+1)^2 / 4`` and ``R_j`` the
    rank sums, ``T1 = (k-1)(sum R_j^2 - b C1) / (A1 - C1)`` is the tie-corrected Friedman
    statistic, and column ``j`` is worse than the best (lowest rank sum) by
    ``t = (R_j - R_best) / sqrt(2 (b A1 - sum R_j^2) / ((b-1)(k-1)))`` on ``(b-1)(k-1)``
    degrees of freedom. Unlike a pairwise test it pools the rank noise of every column, so it
    decides with fewer blocks; like Friedman's it treats the blocks as independent (folds share
    training rows: see :func:`corrected_resampled_ttest`). Needs >= 2 blocks and >= 3 columns.
    When every block ranks the columns the same, no rank noise is left: a worse column gets
    ``p = 0``; when every block is one tie, nothing differs: ``p = 1`` everywhere.
    """
    x = np.asarray(scores, dtype=float)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 3:
        raise ValueError(f"need >= 2 blocks x >= 3 columns, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("scores must be finite (drop blocks that did not finish first)")
    b, k = x.shape
    ranks = np.vstack([stats.rankdata(-row, method="average") for row in x])
    sums = ranks.sum(axis=0)
    a1 = float((ranks**2).sum())
    c1 = b * k * (k + 1) ** 2 / 4.0
    sum_sq = float((sums**2).sum())
    # the best column: lowest rank sum, ties to the higher mean score, then the first
    best = int(min(range(k), key=lambda j: (sums[j], -x[:, j].mean(), j)))
    spread = a1 - c1  # zero only when every block is a single tie
    if spread <= _CONSTANT_TOL * a1:
        return ConoverResult(0.0, 1.0, best, sums, np.ones(k))
    t1 = (k - 1) * (sum_sq - b * c1) / spread
    p_omnibus = float(stats.chi2.sf(t1, k - 1))
    df = (b - 1) * (k - 1)
    noise = 2.0 * (b * a1 - sum_sq) / df
    gap = sums - sums[best]
    if noise <= _CONSTANT_TOL * b * a1:  # the same ranking in every block
        p_worse = np.where(gap > 0, 0.0, 1.0)
    else:
        p_worse = stats.t.sf(gap / math.sqrt(noise), df)
    return ConoverResult(float(t1), p_omnibus, best, sums, np.asarray(p_worse, dtype=float))


def family_score_matrix(
    results: pd.DataFrame, metric: str = "accuracy", *, sep: str = " · "
) -> pd.DataFrame:
    """The input of :func:`friedman_nemenyi` from ``results.parquet``: rows = blocks
    ``"<feature_set> · <protocol>"``, columns = families, cells = mean ``metric`` over folds of
    pairs done on every fold of their protocol (else NaN, and the block is dropped there)."""
    cells: dict[tuple[str, str], float] = {}
    for (proto, fs, fam), g in results.groupby(["protocol", "feature_set", "family"], sort=True):
        folds = set(results.loc[results["protocol"] == proto, "fold"])
        if set(g["status"]) == {"done"} and set(g["fold"]) == folds:
            cells[(f"{fs}{sep}{proto}", str(fam))] = float(g[metric].astype(float).mean())
    if not cells:
        return pd.DataFrame()
    return pd.Series(cells).unstack().sort_index()
