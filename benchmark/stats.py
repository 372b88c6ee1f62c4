"""Is a difference real? Significance of every (feature set, family) pair against the baseline.

The leaderboard must not rank pairs by a mean alone: on GTZAN the folds are small (100 tracks in
10-fold CV, 290 in the fault-filtered test) and one point of accuracy is often noise. This module
holds the tests the leaderboard uses, each chosen for the data it is given:

* per-fold scores of k-fold protocols: the corrected resampled t-test (Nadeau & Bengio, 2003),
  because folds share training data and the plain paired t-test is badly anti-conservative;
* one test split (the fault-filtered protocol): the exact McNemar test on per-track
  correctness (Dietterich, 1998; McNemar, 1947);
* an accuracy's uncertainty: the percentile bootstrap over tracks (Efron & Tibshirani, 1993);
* many pairs compared with one baseline: Holm's step-down adjustment (Holm, 1979);
* families over many blocks (feature set x protocol): the Friedman test, the Nemenyi critical
  difference and its CD diagram (Demšar, 2006);
* racing many pairs over the folds so far: the Friedman test with Conover's post-hoc
  comparisons against the best-ranked pair (Conover, 1999; as in irace, López-Ibáñez et al.,
  2016).

:func:`compare_to_baseline` reads ``results.parquet`` and ``predictions.parquet`` exactly as
:mod:`benchmark.results` documents them and returns one row per pair and protocol.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "COMPARISON_COLUMNS",
    "ConoverResult",
    "FriedmanResult",
    "McNemarResult",
    "StatsWarning",
    "TTestResult",
    "VERDICTS",
    "bootstrap_ci",
    "cd_diagram_svg",
    "cd_groups",
    "compare_to_baseline",
    "corrected_resampled_ttest",
    "family_score_matrix",
    "friedman_conover",
    "friedman_nemenyi",
    "holm",
    "mcnemar_exact",
    "nemenyi_critical_difference",
    "nemenyi_q",
    "paired_bootstrap_ci",
]

#: verdict vocabulary of :func:`compare_to_baseline`
VERDICTS = ("baseline", "better", "worse", "no evidence", "n/a")

#: columns of :func:`compare_to_baseline`, in order (documented there)
COMPARISON_COLUMNS = (
    "protocol",
    "feature_set",
    "family",
    "is_baseline",
    "n_folds",
    "accuracy",
    "accuracy_std",
    "balanced_accuracy",
    "macro_f1",
    "n_tracks",
    "oof_accuracy",
    "ci_low",
    "ci_high",
    "delta",
    "test",
    "t_stat",
    "p_value",
    "p_holm",
    "verdict",
    "n_common",
    "mcnemar_b",
    "mcnemar_c",
    "p_mcnemar",
    "delta_oof",
    "delta_ci_low",
    "delta_ci_high",
    "note",
)

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


# --------------------------------------------------------------------------------------------
# two models, one protocol
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# many families over many blocks
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# CD diagram
# --------------------------------------------------------------------------------------------


def _escape_mathtext(s: str) -> str:
    return s.replace("$", r"\$")


def cd_diagram_svg(avg_ranks: Mapping[str, float], cd: float, title: str = "") -> str:
    """Critical-difference diagram (Demšar, 2006, Fig. 1) as a self-contained inline SVG.

    A rank axis (1 = best, on the left), each family hanging from its average rank with its name
    (the better half on the left, the rest on the right), thick bars joining families that are
    not significantly different (:func:`cd_groups`), and the CD itself as a bar above the axis.
    Drawn on a bare matplotlib ``Figure`` (no pyplot state, no GUI backend), text kept as SVG
    text, no XML prolog or DOCTYPE, no clip paths: it can be pasted into an HTML page as is.
    """
    import matplotlib

    with matplotlib.rc_context(_CD_RC):
        fig = _cd_figure(avg_ranks, cd, title)
        buf = io.StringIO()
        fig.savefig(
            buf,
            format="svg",
            metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
        )
    svg = buf.getvalue()
    return svg[svg.index("<svg") :].strip()


_CD_RC = {"svg.fonttype": "none", "svg.hashsalt": "genrebench", "font.size": 9}


def _cd_figure(avg_ranks: Mapping[str, float], cd: float, title: str) -> Figure:
    """Draw the CD diagram on a bare Figure; call it inside ``rc_context(_CD_RC)``."""
    from matplotlib.figure import Figure

    if not avg_ranks:
        raise ValueError("no families to draw")
    items = sorted(((str(n), float(r)) for n, r in avg_ranks.items()), key=lambda kv: kv[1])
    k = len(items)
    lo = 1
    hi = max(k, 2, math.ceil(max(r for _, r in items)))
    groups = cd_groups(dict(items), cd)

    left_n = math.ceil(k / 2)
    longest = max(len(n) for n, _ in items) + 7  # " (1.23)"
    text_in = 0.35 + 0.08 * longest  # room for names on each side (9 pt, ~0.6 em per char)
    width = 2 * text_in + 4.5
    text_frac = text_in / width
    axis_y = 0.95 if title else 0.7
    group_step, name_step = 0.12, 0.24
    names_y = axis_y + 0.25 + group_step * len(groups) + 0.1
    height = names_y + name_step * max(left_n, k - left_n) + 0.15

    def x_of(rank: float) -> float:
        return text_frac + (rank - lo) / (hi - lo) * (1 - 2 * text_frac)

    line = {"color": "black", "linewidth": 0.9, "clip_on": False}
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.set_xlim(0, 1)
    ax.set_ylim(height, 0)

    if title:
        ax.text(0.5, 0.18, _escape_mathtext(title), ha="center", va="center", fontsize=11)
    # rank axis with ticks at integers and half ranks
    ax.plot([x_of(lo), x_of(hi)], [axis_y, axis_y], **line)
    for tick in np.arange(lo, hi + 0.25, 0.5):
        size = 0.08 if float(tick).is_integer() else 0.04
        ax.plot([x_of(tick)] * 2, [axis_y - size, axis_y], **line)
        if float(tick).is_integer():
            ax.text(x_of(tick), axis_y - 0.12, f"{int(tick)}", ha="center", va="bottom")
    # the CD bar, from rank 1
    if np.isfinite(cd) and cd > 0:
        cd_y = axis_y - 0.38
        end = min(lo + cd, hi)
        ax.plot([x_of(lo), x_of(end)], [cd_y, cd_y], color="black", linewidth=1.5, clip_on=False)
        for xx in (x_of(lo), x_of(end)):
            ax.plot([xx, xx], [cd_y - 0.04, cd_y + 0.04], **line)
        ax.text((x_of(lo) + x_of(end)) / 2, cd_y - 0.06, f"CD = {cd:.2f}", ha="center", va="bottom")
    # families
    for i, (name, rank) in enumerate(items):
        label = _escape_mathtext(f"{name} ({rank:.2f})")
        if i < left_n:
            y = names_y + name_step * i
            edge, ha, tx = text_frac - 0.02, "right", text_frac - 0.03
        else:
            y = names_y + name_step * (k - 1 - i)
            edge, ha, tx = 1 - text_frac + 0.02, "left", 1 - text_frac + 0.03
        ax.plot([x_of(rank), x_of(rank), edge], [axis_y, y, y], **line)
        ax.text(tx, y, label, ha=ha, va="center")
    # groups not significantly different
    for j, grp in enumerate(groups):
        r = dict(items)
        y = axis_y + 0.25 + group_step * j
        ax.plot(
            [x_of(r[grp[0]]) - 0.006, x_of(r[grp[-1]]) + 0.006],
            [y, y],
            color="black",
            linewidth=3,
            solid_capstyle="butt",
            clip_on=False,
        )
    return fig


# --------------------------------------------------------------------------------------------
# the leaderboard table
# --------------------------------------------------------------------------------------------

_RESULT_NEEDS = (
    "feature_set",
    "family",
    "protocol",
    "fold",
    "status",
    "accuracy",
    "balanced_accuracy",
    "macro_f1",
    "n_train",
    "n_test",
)
_PRED_NEEDS = ("feature_set", "family", "protocol", "fold", "track_id")


def _baseline_key(baseline: tuple[str, str] | Sequence[str] | Mapping[str, str]) -> tuple[str, str]:
    if isinstance(baseline, Mapping):
        return (str(baseline["feature_set"]), str(baseline["family"]))
    fs, fam = baseline
    return (str(fs), str(fam))


def _correctness(preds: pd.DataFrame) -> pd.Series:
    if preds.empty:
        return pd.Series(False, index=preds.index, dtype=bool)
    if "correct" in preds.columns:
        return preds["correct"].astype(bool)
    return preds["y_true"].astype(str) == preds["y_pred"].astype(str)


def compare_to_baseline(
    results: pd.DataFrame,
    predictions: pd.DataFrame,
    baseline: tuple[str, str] | Mapping[str, str],
    *,
    n_boot: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Every complete pair against the baseline pair, per protocol: the leaderboard's numbers.

    ``results`` and ``predictions`` are ``results.parquet`` and ``predictions.parquet``
    (:mod:`benchmark.results`). A pair enters a protocol's comparison when it has a ``done`` row
    for every fold that protocol has in ``results``; other pairs are left out (the leaderboard
    lists them from :func:`benchmark.results.summarize_pairs`). ``baseline`` is
    ``(feature_set, family)`` or a mapping with those keys (``BenchmarkConfig.baseline``).

    The test behind ``p_value`` depends on the protocol: with >= 2 folds, the corrected
    resampled t-test on per-fold accuracies paired on fold index (Nadeau & Bengio, 2003), with
    ``n_train``/``n_test`` the pair's mean over folds; with 1 fold (the fault-filtered split),
    the exact McNemar test on per-track correctness. McNemar on the pooled out-of-fold tracks
    is reported for every protocol. Tracks are paired by ``(fold, track_id)`` on the tracks both
    scored, so a pair whose feature set lacks tracks is compared on the intersection. Holm's
    adjustment runs over the non-baseline pairs of each protocol.

    Columns (one row per protocol and pair, best mean accuracy first within a protocol):

    ``protocol, feature_set, family``; ``is_baseline``; ``n_folds``;
    ``accuracy, balanced_accuracy, macro_f1``: means over folds (from results);
    ``accuracy_std``: sample sd of fold accuracies (NaN for 1 fold);
    ``n_tracks``: OOF tracks scored; ``oof_accuracy``: pooled accuracy over them;
    ``ci_low, ci_high``: percentile bootstrap ``1 - alpha`` interval of ``oof_accuracy``;
    ``delta``: accuracy minus the baseline's, the quantity tested (mean per-fold difference for
    k-fold protocols, ``delta_oof`` for 1 fold; 0 for the baseline);
    ``test``: ``"corrected_t"``, ``"mcnemar"`` or ``""`` (baseline / no test possible);
    ``t_stat``: corrected t (NaN for McNemar); ``p_value``: raw p of ``test``;
    ``p_holm``: Holm-adjusted ``p_value``;
    ``verdict``: ``"better"``/``"worse"`` when ``p_holm < alpha`` (by the sign of ``delta``),
    ``"no evidence"`` otherwise, ``"baseline"`` for the baseline row, ``"n/a"`` when no test
    could be run (baseline incomplete under the protocol, or no track scored by both);
    ``n_common``: tracks scored by both; ``mcnemar_b``: of those, pair right / baseline wrong;
    ``mcnemar_c``: pair wrong / baseline right; ``p_mcnemar``: exact McNemar p on them;
    ``delta_oof``: accuracy difference on the common tracks;
    ``delta_ci_low, delta_ci_high``: paired bootstrap interval of ``delta_oof``;
    ``note``: why a value is missing, or that tracks were intersected.
    """
    missing = [c for c in _RESULT_NEEDS if c not in results.columns]
    if missing:
        raise ValueError(f"results table lacks columns {missing}")
    missing = [c for c in _PRED_NEEDS if c not in predictions.columns]
    has_correct = "correct" in predictions.columns or {"y_true", "y_pred"} <= set(
        predictions.columns
    )
    if not has_correct and len(predictions):  # an empty table (no predictions) is fine
        missing.append("correct")
    if missing:
        raise ValueError(f"predictions table lacks columns {missing}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    base_key = _baseline_key(baseline)

    preds = predictions.assign(_correct=_correctness(predictions))
    pred_groups = {
        key: g for key, g in preds.groupby(["protocol", "feature_set", "family"], sort=False)
    }
    empty_preds = preds.iloc[0:0]

    frames = []
    for proto, r in results.groupby("protocol", sort=True):
        folds = sorted(set(r["fold"]))
        complete: dict[tuple[str, str], pd.DataFrame] = {}
        for (fs, fam), g in r.groupby(["feature_set", "family"], sort=True):
            if not g["fold"].is_unique:
                raise ValueError(f"duplicate result rows for {fs} · {fam} · {proto}")
            if set(g["status"]) == {"done"} and sorted(g["fold"]) == folds:
                complete[(str(fs), str(fam))] = g.sort_values("fold")

        def oof(key: tuple[str, str], proto: Any = proto) -> pd.DataFrame:
            return pred_groups.get((proto, *key), empty_preds)

        base = complete.get(base_key)
        base_oof = oof(base_key)[["fold", "track_id", "_correct"]] if base is not None else None
        rows = []
        for key, g in complete.items():
            acc = g["accuracy"].to_numpy(dtype=float)
            own = oof(key)
            c_own = own["_correct"].to_numpy(dtype=bool)
            lo, hi = bootstrap_ci(c_own, n_boot, alpha, seed)
            row: dict[str, Any] = {
                "protocol": proto,
                "feature_set": key[0],
                "family": key[1],
                "is_baseline": key == base_key,
                "n_folds": len(folds),
                "accuracy": float(acc.mean()),
                "accuracy_std": float(acc.std(ddof=1)) if acc.size > 1 else math.nan,
                "balanced_accuracy": float(g["balanced_accuracy"].astype(float).mean()),
                "macro_f1": float(g["macro_f1"].astype(float).mean()),
                "n_tracks": int(c_own.size),
                "oof_accuracy": float(c_own.mean()) if c_own.size else math.nan,
                "ci_low": lo,
                "ci_high": hi,
                "delta": math.nan,
                "test": "",
                "t_stat": math.nan,
                "p_value": math.nan,
                "verdict": "n/a",
                "n_common": 0,
                "mcnemar_b": 0,
                "mcnemar_c": 0,
                "p_mcnemar": math.nan,
                "delta_oof": math.nan,
                "delta_ci_low": math.nan,
                "delta_ci_high": math.nan,
                "note": "" if c_own.size else "no predictions",
            }
            if key == base_key:
                row.update(delta=0.0, delta_oof=0.0, verdict="baseline", n_common=int(c_own.size))
            elif base is None or base_oof is None:
                row["note"] = "baseline not done on every fold of this protocol"
            else:
                _compare(row, g, acc, own, base, base_oof, folds, n_boot, alpha, seed)
            rows.append(row)
        if not rows:
            continue
        frame = pd.DataFrame(rows)
        tested = ~frame["is_baseline"]
        frame["p_holm"] = math.nan
        frame.loc[tested, "p_holm"] = holm(frame.loc[tested, "p_value"].to_numpy(dtype=float))
        for i in frame.index[tested]:
            p, d = frame.at[i, "p_holm"], frame.at[i, "delta"]
            if np.isnan(p):
                continue
            if p < alpha and d > 0:
                frame.at[i, "verdict"] = "better"
            elif p < alpha and d < 0:
                frame.at[i, "verdict"] = "worse"
            else:
                frame.at[i, "verdict"] = "no evidence"
        frame = frame.sort_values(
            ["accuracy", "feature_set", "family"], ascending=[False, True, True], kind="stable"
        )
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=list(COMPARISON_COLUMNS))
    out = pd.concat(frames, ignore_index=True)[list(COMPARISON_COLUMNS)]
    return out.astype({"n_common": int, "mcnemar_b": int, "mcnemar_c": int, "n_tracks": int})


def _compare(
    row: dict[str, Any],
    g: pd.DataFrame,
    acc: np.ndarray,
    own: pd.DataFrame,
    base: pd.DataFrame,
    base_oof: pd.DataFrame,
    folds: list[Any],
    n_boot: int,
    alpha: float,
    seed: int,
) -> None:
    """Fill the comparison columns of one non-baseline row (see compare_to_baseline)."""
    notes = []
    merged = own[["fold", "track_id", "_correct"]].merge(
        base_oof, on=["fold", "track_id"], suffixes=("_a", "_b"), how="inner"
    )
    ca = merged["_correct_a"].to_numpy(dtype=bool)
    cb = merged["_correct_b"].to_numpy(dtype=bool)
    row["n_common"] = int(ca.size)
    if ca.size:
        b, c, p_mc = mcnemar_exact(ca, cb)
        lo, hi = paired_bootstrap_ci(ca, cb, n_boot, alpha, seed)
        row.update(
            mcnemar_b=b,
            mcnemar_c=c,
            p_mcnemar=p_mc,
            delta_oof=float(ca.mean() - cb.mean()),
            delta_ci_low=lo,
            delta_ci_high=hi,
        )
    else:
        notes.append("no track scored by both")
    intersected = 0 < ca.size and (ca.size < len(own) or ca.size < len(base_oof))
    if intersected:
        notes.append(f"tracks compared on the {ca.size} scored by both")
    if len(folds) >= 2:
        base_acc = base["accuracy"].to_numpy(dtype=float)
        n_train = float(g["n_train"].astype(float).mean())
        n_test = float(g["n_test"].astype(float).mean())
        if intersected:
            # per-fold accuracies of different track sets are not paired: rescore both on the
            # tracks they share in each fold (folds sharing none drop out)
            per = merged.groupby("fold")[["_correct_a", "_correct_b"]].mean()
            acc = per["_correct_a"].to_numpy(dtype=float)
            base_acc = per["_correct_b"].to_numpy(dtype=float)
            # n_test/n_train stays the protocol's split proportion, which the correction is about
            notes.append(f"t-test on per-fold accuracies of those tracks ({len(per)} folds)")
        row["delta"] = float((acc - base_acc).mean()) if len(acc) else math.nan
    if len(folds) >= 2 and len(acc) >= 2:
        if math.isfinite(n_train) and n_train > 0 and math.isfinite(n_test) and n_test >= 0:
            t, p = corrected_resampled_ttest(acc, base_acc, n_train, n_test)
            row.update(test="corrected_t", t_stat=t, p_value=p)
        else:
            notes.append("n_train/n_test missing: no corrected t-test")
    elif ca.size:
        row.update(test="mcnemar", p_value=row["p_mcnemar"], delta=row["delta_oof"])
    row["note"] = "; ".join(notes)
