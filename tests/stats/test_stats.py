"""Significance against the baseline: every test checked on hand-computed or published values."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from benchmark.stats import (
    COMPARISON_COLUMNS,
    StatsWarning,
    bootstrap_ci,
    cd_diagram_svg,
    cd_groups,
    compare_to_baseline,
    corrected_resampled_ttest,
    family_score_matrix,
    friedman_conover,
    friedman_nemenyi,
    holm,
    mcnemar_exact,
    nemenyi_critical_difference,
    nemenyi_q,
    paired_bootstrap_ci,
)

# ------------------------------------------------------------------------------------------
# corrected resampled t-test (Nadeau & Bengio, 2003)
# ------------------------------------------------------------------------------------------


def test_corrected_ttest_worked_example() -> None:
    # d = a - b = [0.03, 0.01, 0.02, 0.04, 0.00], k = 5
    # mean(d) = 0.10 / 5 = 0.02
    # deviations 0.01, -0.01, 0, 0.02, -0.02 -> squares sum 0.0001+0.0001+0+0.0004+0.0004 = 0.001
    # var(d, ddof=1) = 0.001 / 4 = 0.00025
    # correction 1/k + n_test/n_train = 1/5 + 200/1000 = 0.4
    # t = 0.02 / sqrt(0.4 * 0.00025) = 0.02 / sqrt(0.0001) = 0.02 / 0.01 = 2.0
    # Student t, 4 df: cdf(t) = 1/2 + (3/8) s (1 - t^2 / (12 (1 + t^2/4))), s = t/sqrt(1 + t^2/4)
    # at t = 2: s = 2/sqrt(2) = sqrt(2), 1 - 4/24 = 5/6 -> cdf = 1/2 + 5 sqrt(2)/16
    # two-sided p = 2 (1 - cdf) = 1 - 5 sqrt(2)/8 = 0.1161165
    a = [0.83, 0.81, 0.82, 0.84, 0.80]
    b = [0.80, 0.80, 0.80, 0.80, 0.80]
    t, p = corrected_resampled_ttest(a, b, n_train=1000, n_test=200)
    assert t == pytest.approx(2.0, rel=1e-9)
    assert p == pytest.approx(1 - 5 * math.sqrt(2) / 8, rel=1e-9)  # 0.1161165...
    # antisymmetric in (a, b)
    t2, p2 = corrected_resampled_ttest(b, a, n_train=1000, n_test=200)
    assert t2 == pytest.approx(-2.0, rel=1e-9)
    assert p2 == pytest.approx(p)


def test_corrected_ttest_without_correction_is_the_plain_paired_ttest() -> None:
    rng = np.random.default_rng(3)
    a = rng.uniform(0.6, 0.8, size=10)
    b = a - rng.normal(0.02, 0.02, size=10)
    t, p = corrected_resampled_ttest(a, b, n_train=900, n_test=0)  # correction term zeroed
    ref = sps.ttest_rel(a, b)
    assert t == pytest.approx(ref.statistic, rel=1e-12)
    assert p == pytest.approx(ref.pvalue, rel=1e-12)
    # 10-fold CV on 1000 tracks: the correction inflates the variance by (1/10 + 100/900) / (1/10)
    tc, pc = corrected_resampled_ttest(a, b, n_train=900, n_test=100)
    assert tc == pytest.approx(ref.statistic / math.sqrt((0.1 + 100 / 900) / 0.1), rel=1e-12)
    assert pc > p


def test_corrected_ttest_zero_variance_conventions() -> None:
    assert corrected_resampled_ttest([0.7, 0.8, 0.9], [0.7, 0.8, 0.9], 90, 10) == (0.0, 1.0)
    # constant nonzero difference, with the float noise of real fold accuracies
    a = np.array([0.8, 0.9, 0.7])
    t, p = corrected_resampled_ttest(a, a - 0.1, 90, 10)
    assert t == math.inf and p == 0.0
    t, p = corrected_resampled_ttest(a - 0.1, a, 90, 10)
    assert t == -math.inf and p == 0.0


def test_corrected_ttest_needs_two_folds_and_paired_input() -> None:
    with pytest.warns(StatsWarning, match="2 folds"):
        t, p = corrected_resampled_ttest([0.8], [0.7], 90, 10)
    assert math.isnan(t) and math.isnan(p)
    with pytest.raises(ValueError, match="paired"):
        corrected_resampled_ttest([0.8, 0.7], [0.7], 90, 10)
    with pytest.raises(ValueError, match="finite"):
        corrected_resampled_ttest([0.8, np.nan], [0.7, 0.6], 90, 10)
    with pytest.raises(ValueError, match="n_train"):
        corrected_resampled_ttest([0.8, 0.7], [0.7, 0.6], 0, 10)


# ------------------------------------------------------------------------------------------
# McNemar (exact)
# ------------------------------------------------------------------------------------------


def _table(n11: int, b: int, c: int, n00: int) -> tuple[np.ndarray, np.ndarray]:
    """Paired correctness with the given 2x2 cells (both right, A only, B only, both wrong)."""
    a = np.array([True] * n11 + [True] * b + [False] * c + [False] * n00)
    bb = np.array([True] * n11 + [False] * b + [True] * c + [False] * n00)
    return a, bb


def test_mcnemar_hand_table() -> None:
    # b = 1, c = 9: two-sided exact p = 2 * P(X <= 1 | n=10, 1/2) = 2 * (1 + 10) / 1024
    a, b = _table(30, 1, 9, 5)
    res = mcnemar_exact(a, b)
    assert (res.b, res.c) == (1, 9)
    assert res.p == pytest.approx(22 / 1024, abs=1e-15)  # 0.021484375
    # swapping the models swaps b and c, not p
    assert mcnemar_exact(b, a) == (9, 1, res.p)
    # b = 0, c = 5: 2 * (1/2)^5 = 0.0625; concordant tracks carry no information
    assert mcnemar_exact(*_table(0, 0, 5, 0)).p == pytest.approx(0.0625)
    assert mcnemar_exact(*_table(500, 0, 5, 200)).p == pytest.approx(0.0625)
    # 0/1 integers are accepted like booleans
    assert mcnemar_exact(a.astype(int), b.astype(int)) == res


def test_mcnemar_no_discordant_tracks_is_p_one() -> None:
    a, b = _table(7, 0, 0, 3)
    assert mcnemar_exact(a, b) == (0, 0, 1.0)
    assert mcnemar_exact([], []) == (0, 0, 1.0)
    with pytest.raises(ValueError):
        mcnemar_exact([True, False], [True])
    with pytest.raises(ValueError, match="boolean"):
        mcnemar_exact([0, 2], [1, 1])


# ------------------------------------------------------------------------------------------
# bootstrap
# ------------------------------------------------------------------------------------------


def _acc_array(n: int, acc: float) -> np.ndarray:
    k = round(n * acc)
    return np.array([True] * k + [False] * (n - k))


def test_bootstrap_ci_is_deterministic_and_brackets_the_accuracy() -> None:
    c = _acc_array(300, 0.7)
    lo, hi = bootstrap_ci(c, seed=1)
    assert bootstrap_ci(c, seed=1) == (lo, hi)
    assert bootstrap_ci(c, seed=2) != (lo, hi)
    assert lo < 0.7 < hi
    # near the normal interval 0.7 +- 1.96 sqrt(0.7 * 0.3 / 300) = 0.7 +- 0.0519
    assert hi - lo == pytest.approx(2 * 1.96 * math.sqrt(0.21 / 300), rel=0.12)


def test_bootstrap_ci_width_shrinks_with_n_and_degenerates() -> None:
    w_small = np.subtract(*bootstrap_ci(_acc_array(50, 0.6))[::-1])
    w_large = np.subtract(*bootstrap_ci(_acc_array(2000, 0.6))[::-1])
    assert w_large < w_small / 4  # width ~ 1/sqrt(n): sqrt(2000/50) = 6.3
    assert bootstrap_ci(np.ones(40, dtype=bool)) == (1.0, 1.0)
    assert bootstrap_ci(np.zeros(40, dtype=bool)) == (0.0, 0.0)
    assert all(math.isnan(v) for v in bootstrap_ci([]))
    with pytest.raises(ValueError):
        bootstrap_ci([True], alpha=1.5)


def test_paired_bootstrap_ci_of_the_difference() -> None:
    a, b = _table(200, 60, 0, 240)  # A right wherever B is, and on 60 more tracks
    lo, hi = paired_bootstrap_ci(a, b, seed=0)
    assert 0 < lo < 60 / 500 < hi  # every resample has acc(A) >= acc(B)
    # the same resamples: swapping A and B mirrors the interval exactly
    assert paired_bootstrap_ci(b, a, seed=0) == pytest.approx((-hi, -lo))
    assert paired_bootstrap_ci(a, a) == (0.0, 0.0)


# ------------------------------------------------------------------------------------------
# Holm
# ------------------------------------------------------------------------------------------


def test_holm_hand_example() -> None:
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> running max 0.06
    out = holm([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(out, [0.03, 0.06, 0.06, 0.02], rtol=1e-12)
    # 0.01*3 = 0.03, 0.02*2 = 0.04, 0.03*1 = 0.03 -> 0.04 (monotone)
    np.testing.assert_allclose(holm([0.03, 0.01, 0.02]), [0.04, 0.03, 0.04], rtol=1e-12)


def test_holm_caps_passes_nan_and_keeps_order() -> None:
    np.testing.assert_array_equal(holm([0.5, 0.6]), [1.0, 1.0])
    out = holm([np.nan, 0.01, 0.04, np.nan])  # NaNs do not count: m = 2
    assert np.isnan(out[0]) and np.isnan(out[3])
    np.testing.assert_allclose(out[1:3], [0.02, 0.04])
    assert holm([]).shape == (0,)
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 0.2, size=12)
    adj = holm(p)
    assert np.all(adj >= p)
    assert np.all(np.diff(adj[np.argsort(p)]) >= 0)
    assert np.all(adj <= np.minimum(1, 12 * p) + 1e-15)  # never worse than Bonferroni


# ------------------------------------------------------------------------------------------
# Friedman / Nemenyi (Demšar, 2006)
# ------------------------------------------------------------------------------------------

# Demšar (2006) Table 5(a): critical values of the two-tailed Nemenyi test, k = 2..10
DEMSAR_Q05 = [1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164]
DEMSAR_Q10 = [1.645, 2.052, 2.291, 2.459, 2.589, 2.693, 2.780, 2.855, 2.920]


@pytest.mark.parametrize("k", range(2, 11))
def test_nemenyi_q_matches_demsar_table(k: int) -> None:
    # the printed entries are within 0.001 of the exact quantiles, but not all rounded the same
    # way (k=3: exact 2.34370, printed 2.343; k=7: exact 2.94832, printed 2.949)
    assert nemenyi_q(k, 0.05) == pytest.approx(DEMSAR_Q05[k - 2], abs=1e-3)
    assert nemenyi_q(k, 0.10) == pytest.approx(DEMSAR_Q10[k - 2], abs=1e-3)


# Demšar (2006) Table 6: AUC of C4.5 variants on 14 data sets. The table prints rounded values;
# on "voting" C4.5+cf and C4.5+m+cf both print 0.975 while the paper's ranks (2.893, 1.964)
# need C4.5+cf ahead there, so that one cell carries the unrounded lead (0.97501).
DEMSAR_AUC = pd.DataFrame(
    [
        [0.763, 0.768, 0.771, 0.798],
        [0.599, 0.591, 0.590, 0.569],
        [0.954, 0.971, 0.968, 0.967],
        [0.628, 0.661, 0.654, 0.657],
        [0.882, 0.888, 0.886, 0.898],
        [0.936, 0.931, 0.916, 0.931],
        [0.661, 0.668, 0.609, 0.685],
        [0.583, 0.583, 0.563, 0.625],
        [0.775, 0.838, 0.866, 0.875],
        [1.000, 1.000, 1.000, 1.000],
        [0.940, 0.962, 0.965, 0.962],
        [0.619, 0.666, 0.614, 0.669],
        [0.972, 0.981, 0.97501, 0.975],
        [0.957, 0.978, 0.946, 0.970],
    ],
    columns=["C4.5", "C4.5+m", "C4.5+cf", "C4.5+m+cf"],
)


def test_friedman_nemenyi_reproduces_demsar_example() -> None:
    res = friedman_nemenyi(DEMSAR_AUC, alpha=0.05)
    # the paper's average ranks
    expected = {"C4.5": 3.143, "C4.5+m": 2.000, "C4.5+cf": 2.893, "C4.5+m+cf": 1.964}
    for fam, r in expected.items():
        assert res.avg_ranks[fam] == pytest.approx(r, abs=5e-4)
    assert list(res.avg_ranks.index) == ["C4.5+m+cf", "C4.5+m", "C4.5+cf", "C4.5"]
    assert (res.n_blocks, res.k) == (14, 4)
    # the paper's chi2_F = 12N/(k(k+1)) [sum R^2 - k(k+1)^2/4] = 9.28 (no tie correction):
    # rank sums 44, 28, 40.5, 27.5 -> 12/(14*4*5) * 5116.5 - 3*14*5 = 219.2786 - 210 = 9.2786
    r = res.avg_ranks.to_numpy()
    chi2_demsar = 12 * 14 / (4 * 5) * (np.sum(r**2) - 4 * 25 / 4)
    assert chi2_demsar == pytest.approx(9.28, abs=5e-3)
    # scipy's statistic divides by the tie correction 1 - sum(t^3 - t) / (N k (k^2 - 1)):
    # ties: mushroom (t=4: 60), iris, lung cancer, primary tumor (t=2: 6 each) -> 78 / 840
    assert res.statistic == pytest.approx(9.278571428 / (1 - 78 / 840), rel=1e-8)  # 10.2283
    assert res.pvalue == pytest.approx(sps.chi2.sf(res.statistic, 3), rel=1e-10)
    # CD = 2.569 * sqrt(4*5 / (6*14)) = 1.25 (paper); no pair is significant at 0.05
    assert res.q_alpha == pytest.approx(2.569, abs=6e-4)
    assert res.cd == pytest.approx(1.25, abs=5e-3)
    assert res.groups == [("C4.5+m+cf", "C4.5+m", "C4.5+cf", "C4.5")]
    # at 0.10, CD = 2.291 * 0.488 = 1.12: C4.5 is worse than C4.5+m and C4.5+m+cf, and C4.5+cf
    # joins both groups (the paper's Figure 1)
    res10 = friedman_nemenyi(DEMSAR_AUC, alpha=0.10)
    assert res10.cd == pytest.approx(1.12, abs=5e-3)
    assert res10.groups == [("C4.5+m+cf", "C4.5+m", "C4.5+cf"), ("C4.5+cf", "C4.5")]


def test_friedman_without_ties_by_hand() -> None:
    # A > B > C in all 4 blocks: ranks 1, 2, 3; chi2 = 12*4/(3*4) * (1+4+9) - 3*4*4 = 56 - 48 = 8
    # chi2 with 2 df has survival function exp(-x/2): p = exp(-4)
    scores = pd.DataFrame(
        {"A": [0.9, 0.8, 0.7, 0.95], "B": [0.8, 0.7, 0.6, 0.9], "C": [0.1, 0.2, 0.3, 0.4]}
    )
    res = friedman_nemenyi(scores)
    assert res.statistic == pytest.approx(8.0)
    assert res.pvalue == pytest.approx(math.exp(-4))
    assert res.avg_ranks.to_dict() == {"A": 1.0, "B": 2.0, "C": 3.0}
    assert res.cd == pytest.approx(nemenyi_critical_difference(3, 4))
    assert res.cd == pytest.approx(2.343 * math.sqrt(3 * 4 / 24), abs=1e-3)


def test_friedman_drops_incomplete_blocks_and_checks_size() -> None:
    scores = DEMSAR_AUC.copy()
    scores.iloc[0, 1] = np.nan
    res = friedman_nemenyi(scores)
    assert res.n_blocks == 13 and res.dropped_blocks == [0]
    assert res.statistic == pytest.approx(friedman_nemenyi(DEMSAR_AUC.iloc[1:]).statistic)
    with pytest.raises(ValueError, match="3 families"):
        friedman_nemenyi(DEMSAR_AUC.iloc[:, :2])
    with pytest.raises(ValueError, match="2 complete blocks"):
        friedman_nemenyi(DEMSAR_AUC.iloc[:1])
    tied = friedman_nemenyi(pd.DataFrame(np.ones((3, 4)), columns=list("abcd")))
    assert (tied.statistic, tied.pvalue) == (0.0, 1.0)
    assert tied.avg_ranks.to_dict() == {"a": 2.5, "b": 2.5, "c": 2.5, "d": 2.5}


# Friedman + Conover post-hoc (racing's alternative test). Reference: scikit-posthocs 0.17.1,
# posthoc_conover_friedman(CONOVER_SCORES, p_adjust=None), its row for the best column (0);
# two-sided, so twice our one-sided p. Column 4 ties column 1 in the first block.
CONOVER_SCORES = np.array(
    [
        [0.61, 0.58, 0.55, 0.40, 0.58],
        [0.57, 0.60, 0.52, 0.38, 0.49],
        [0.66, 0.59, 0.57, 0.45, 0.59],
        [0.59, 0.55, 0.57, 0.41, 0.50],
    ]
)
CONOVER_REFERENCE = [0.10886430106296384, 4.6816047531641238e-03, 2.9572865443522911e-05,
                     4.6816047531641238e-03]  # fmt: skip


def test_friedman_conover_matches_scikit_posthocs_and_scipy() -> None:
    res = friedman_conover(CONOVER_SCORES)
    assert res.best == 0
    assert list(res.rank_sums) == [5.0, 9.0, 13.0, 20.0, 13.0]  # by hand, ties averaged
    assert 2 * res.p_worse[1:] == pytest.approx(CONOVER_REFERENCE, rel=1e-12)
    # T1 is the tie-corrected Friedman chi-squared, for any matrix, ties or not
    rng = np.random.default_rng(0)
    for shape in [(3, 5), (10, 24), (4, 6)]:
        x = np.round(rng.normal(size=shape) + np.linspace(0, 1.5, shape[1]), 0)
        ours = friedman_conover(x)
        theirs = sps.friedmanchisquare(*x.T)
        assert ours.statistic == pytest.approx(theirs.statistic, rel=1e-12)
        assert ours.pvalue == pytest.approx(theirs.pvalue, rel=1e-9)


def test_friedman_conover_degenerate_blocks_and_sizes() -> None:
    # every fold ranks the columns alike: no rank noise, every worse column p = 0
    same = friedman_conover(np.array([[0.9, 0.5, 0.1], [0.8, 0.6, 0.2], [0.7, 0.6, 0.3]]))
    assert same.best == 0 and list(same.p_worse[1:]) == [0.0, 0.0]
    tied = friedman_conover(np.ones((3, 4)))
    assert (tied.statistic, tied.pvalue) == (0.0, 1.0) and list(tied.p_worse) == [1.0] * 4
    with pytest.raises(ValueError, match="3 columns"):
        friedman_conover(np.ones((4, 2)))
    with pytest.raises(ValueError, match="finite"):
        friedman_conover(np.array([[0.5, np.nan, 0.1], [0.4, 0.3, 0.2]]))


def test_cd_groups_are_maximal_runs() -> None:
    ranks = {"a": 1.0, "b": 1.5, "c": 2.4, "d": 4.0}
    assert cd_groups(ranks, cd=1.0) == [("a", "b"), ("b", "c")]
    assert cd_groups(ranks, cd=3.5) == [("a", "b", "c", "d")]
    assert cd_groups(ranks, cd=0.4) == []
    assert cd_groups({"a": 1.0, "b": 2.0}, cd=1.0) == []  # a difference of exactly CD counts


# ------------------------------------------------------------------------------------------
# CD diagram
# ------------------------------------------------------------------------------------------


def test_cd_diagram_svg_is_self_contained_xml_with_every_family() -> None:
    ranks = {"mlp": 1.4, "lightgbm": 2.1, "svm & rbf": 2.3, "k<nn>": 4.0, "cost $5$": 5.3}
    svg = cd_diagram_svg(ranks, cd=1.6, title="csv_30s · 10-fold")
    root = ET.fromstring(svg)  # valid XML on its own (entities escaped)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert svg.startswith("<svg")
    text = " ".join("".join(el.itertext()) for el in root.iter())
    for name in [*ranks, "csv_30s · 10-fold", "CD = 1.60"]:
        assert name in text
    assert "<!DOCTYPE" not in svg and "<?xml" not in svg
    assert "<image" not in svg and "url(" not in svg and "href=" not in svg
    assert cd_diagram_svg(ranks, cd=1.6, title="csv_30s · 10-fold") == svg  # deterministic
    # one bar per group not significantly different, plus the CD bar: thick lines
    thick = svg.count("stroke-width: 3")
    assert thick == len(cd_groups(ranks, 1.6)) == 2
    with pytest.raises(ValueError):
        cd_diagram_svg({}, 1.0)


def test_cd_diagram_on_its_side_for_a_phone_keeps_every_name_and_is_narrower() -> None:
    ranks = {f"{n}_with_a_long_registry_name": float(i) for i, n in enumerate("abcdefg", 1)}
    wide = cd_diagram_svg(ranks, cd=2.5, title="t")
    narrow = cd_diagram_svg(ranks, cd=2.5, title="t", narrow=True)
    sizes = [
        float(ET.fromstring(svg).get("width", "").removesuffix("pt")) for svg in (wide, narrow)
    ]
    assert sizes[1] < 0.6 * sizes[0]  # names on one side only: about half as wide
    root = ET.fromstring(narrow)
    text = " ".join("".join(el.itertext()) for el in root.iter())
    for name in [*ranks, "CD = 2.50"]:
        assert name in text
    assert narrow.count("stroke-width: 3") == len(cd_groups(ranks, 2.5))


# ------------------------------------------------------------------------------------------
# compare_to_baseline
# ------------------------------------------------------------------------------------------

BASE = ("csv_30s", "mlp")
BETTER = ("csv_30s", "lightgbm")
EQUAL = ("csv_3s", "mlp")
WORSE = ("spectrogram_img", "knn")
INCOMPLETE = ("logmel", "cnn")

# per pair: (offset, correct count per fold): a pair is right on fold positions [off, off+n)
KFOLD = {
    BASE: (0, [24, 25, 23, 26, 24]),
    BETTER: (0, [36, 35, 37, 36, 34]),
    EQUAL: (2, [25, 24, 24, 26, 25]),
    WORSE: (0, [14, 16, 13, 15, 12]),
    INCOMPLETE: (0, [30, 30, 30, 30, 30]),
}
FAULT = {BASE: (0, [80]), BETTER: (0, [120]), EQUAL: (5, [80]), WORSE: (0, [50])}
FOLD_SIZE = {"stratified_kfold": 40, "fault_filtered": 150}
N_TRAIN = {"stratified_kfold": 160, "fault_filtered": 640}
BASE_LACKS = {f"fault_filtered-0-{i:03d}" for i in range(145, 150)}  # baseline scored 145


def _synthetic() -> tuple[pd.DataFrame, pd.DataFrame]:
    results, preds = [], []
    for proto, spec in (("stratified_kfold", KFOLD), ("fault_filtered", FAULT)):
        size = FOLD_SIZE[proto]
        for (fs, fam), (off, counts) in spec.items():
            for fold, n in enumerate(counts):
                status = "error" if (fs, fam) == INCOMPLETE and fold == 3 else "done"
                rows = []
                for pos in range(size):
                    tid = f"{proto}-{fold}-{pos:03d}"
                    if (fs, fam) == BASE and tid in BASE_LACKS:
                        continue
                    ok = off <= pos < off + n
                    rows.append(
                        {
                            "feature_set": fs,
                            "family": fam,
                            "protocol": proto,
                            "fold": fold,
                            "track_id": tid,
                            "y_true": "rock",
                            "y_pred": "rock" if ok else "jazz",
                            "correct": ok,
                        }
                    )
                if status == "done":
                    preds.extend(rows)
                acc = sum(r["correct"] for r in rows) / len(rows)
                results.append(
                    {
                        "feature_set": fs,
                        "family": fam,
                        "protocol": proto,
                        "fold": fold,
                        "status": status,
                        "accuracy": acc if status == "done" else np.nan,
                        "balanced_accuracy": acc - 0.01 if status == "done" else np.nan,
                        "macro_f1": acc - 0.02 if status == "done" else np.nan,
                        "n_train": N_TRAIN[proto],
                        "n_test": len(rows),
                    }
                )
    return pd.DataFrame(results), pd.DataFrame(preds)


def _row(table: pd.DataFrame, proto: str, pair: tuple[str, str]) -> pd.Series:
    sel = table[
        (table["protocol"] == proto)
        & (table["feature_set"] == pair[0])
        & (table["family"] == pair[1])
    ]
    assert len(sel) == 1, (proto, pair)
    return sel.iloc[0]


def _correct(preds: pd.DataFrame, proto: str, pair: tuple[str, str]) -> pd.DataFrame:
    sel = preds[
        (preds["protocol"] == proto)
        & (preds["feature_set"] == pair[0])
        & (preds["family"] == pair[1])
    ]
    return sel[["fold", "track_id", "correct"]]


@pytest.fixture(scope="module")
def synthetic() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    results, preds = _synthetic()
    return results, preds, compare_to_baseline(results, preds, BASE, n_boot=500, seed=7)


def test_compare_verdicts_and_shape(synthetic) -> None:
    results, preds, table = synthetic
    assert tuple(table.columns) == COMPARISON_COLUMNS
    # the incomplete pair (fold 3 errored) is not compared; everything else is, per protocol
    assert len(table) == 8
    assert INCOMPLETE not in set(zip(table["feature_set"], table["family"], strict=True))
    for proto in FOLD_SIZE:
        assert _row(table, proto, BASE)["verdict"] == "baseline"
        assert _row(table, proto, BETTER)["verdict"] == "better"
        assert _row(table, proto, EQUAL)["verdict"] == "no evidence"
        assert _row(table, proto, WORSE)["verdict"] == "worse"
        sub = table[table["protocol"] == proto]
        assert list(sub["accuracy"]) == sorted(sub["accuracy"], reverse=True)
    assert set(_row(table, "stratified_kfold", p)["test"] for p in (BETTER, EQUAL, WORSE)) == {
        "corrected_t"
    }
    assert set(_row(table, "fault_filtered", p)["test"] for p in (BETTER, EQUAL, WORSE)) == {
        "mcnemar"
    }


def test_compare_kfold_numbers_equal_the_individual_tests(synthetic) -> None:
    results, preds, table = synthetic
    proto = "stratified_kfold"
    base_acc = np.array(KFOLD[BASE][1]) / 40
    raw = []
    for pair in (BETTER, EQUAL, WORSE):
        row = _row(table, proto, pair)
        acc = np.array(KFOLD[pair][1]) / 40
        t, p = corrected_resampled_ttest(acc, base_acc, n_train=160, n_test=40)
        assert row["t_stat"] == pytest.approx(t) and row["p_value"] == pytest.approx(p)
        assert row["delta"] == pytest.approx(np.mean(acc - base_acc))
        assert row["accuracy"] == pytest.approx(acc.mean())
        assert row["accuracy_std"] == pytest.approx(acc.std(ddof=1))
        assert row["balanced_accuracy"] == pytest.approx(acc.mean() - 0.01)
        assert row["macro_f1"] == pytest.approx(acc.mean() - 0.02)
        own = _correct(preds, proto, pair)["correct"].to_numpy()
        assert row["n_tracks"] == 200
        assert row["oof_accuracy"] == pytest.approx(own.mean())
        assert (row["ci_low"], row["ci_high"]) == bootstrap_ci(own, 500, 0.05, 7)
        base = _correct(preds, proto, BASE)["correct"].to_numpy()  # same track order
        assert tuple(row[["mcnemar_b", "mcnemar_c", "p_mcnemar"]]) == mcnemar_exact(own, base)
        assert (row["delta_ci_low"], row["delta_ci_high"]) == paired_bootstrap_ci(
            own, base, 500, 0.05, 7
        )
        raw.append(p)
    adjusted = holm(raw)
    for pair, adj in zip((BETTER, EQUAL, WORSE), adjusted, strict=True):
        assert _row(table, proto, pair)["p_holm"] == pytest.approx(adj)
    # better: 56 tracks flipped to right, none to wrong
    assert tuple(_row(table, proto, BETTER)[["mcnemar_b", "mcnemar_c"]]) == (56, 0)
    # equal: d = [1, -1, 1, 0, 1]/40 -> t = 0.01 / sqrt(0.45 * 0.0005) = 0.667, far from 0.05
    assert _row(table, proto, EQUAL)["t_stat"] == pytest.approx(0.01 / math.sqrt(0.45 * 5e-4))


def test_compare_single_split_uses_mcnemar_on_the_common_tracks(synthetic) -> None:
    _, preds, table = synthetic
    proto = "fault_filtered"
    base = _row(table, proto, BASE)
    assert base["n_tracks"] == 145 and base["oof_accuracy"] == pytest.approx(80 / 145)
    assert math.isnan(base["accuracy_std"]) and math.isnan(base["p_value"])
    better = _row(table, proto, BETTER)
    # baseline lacks 5 tracks: compared on 145; right on [0, 120) vs [0, 80): b = 40, c = 0
    assert better["n_common"] == 145 and better["n_tracks"] == 150
    assert (better["mcnemar_b"], better["mcnemar_c"]) == (40, 0)
    assert better["p_value"] == pytest.approx(2 * 0.5**40, rel=1e-9)
    assert better["delta"] == pytest.approx(40 / 145) == better["delta_oof"]
    assert math.isnan(better["t_stat"])
    assert "145" in better["note"]
    equal = _row(table, proto, EQUAL)  # [5, 85) vs [0, 80): b = 5, c = 5
    assert (equal["mcnemar_b"], equal["mcnemar_c"], equal["p_value"]) == (5, 5, 1.0)
    worse = _row(table, proto, WORSE)  # [0, 50) vs [0, 80): b = 0, c = 30
    assert worse["p_value"] == pytest.approx(2 * 0.5**30, rel=1e-9)
    # Holm over 3: 2^-39 * 3, 2^-29 * 2, 1 * 1
    assert better["p_holm"] == pytest.approx(3 * 2 * 0.5**40, rel=1e-9)
    assert worse["p_holm"] == pytest.approx(2 * 2 * 0.5**30, rel=1e-9)
    assert equal["p_holm"] == 1.0
    own = _correct(preds, proto, BETTER)["correct"].to_numpy()
    assert (better["ci_low"], better["ci_high"]) == bootstrap_ci(own, 500, 0.05, 7)


def test_compare_without_a_complete_baseline_gives_no_verdict() -> None:
    results, preds = _synthetic()
    drop = (results["protocol"] == "fault_filtered") & (results["family"] == "mlp")
    drop &= results["feature_set"] == "csv_30s"
    table = compare_to_baseline(results[~drop], preds, {"feature_set": "csv_30s", "family": "mlp"})
    ff = table[table["protocol"] == "fault_filtered"]
    assert len(ff) == 3 and set(ff["verdict"]) == {"n/a"}
    assert ff["p_value"].isna().all() and ff["p_holm"].isna().all()
    assert ff["oof_accuracy"].notna().all()  # own numbers are still there
    kf = table[table["protocol"] == "stratified_kfold"]
    assert set(kf["verdict"]) == {"baseline", "better", "no evidence", "worse"}


def test_compare_rejects_tables_without_the_documented_columns() -> None:
    results, preds = _synthetic()
    with pytest.raises(ValueError, match="n_train"):
        compare_to_baseline(results.drop(columns="n_train"), preds, BASE)
    with pytest.raises(ValueError, match="correct"):
        compare_to_baseline(results, preds.drop(columns=["correct", "y_pred"]), BASE)
    # without the correct column, y_true == y_pred gives the same table
    table = compare_to_baseline(results, preds.drop(columns="correct"), BASE, n_boot=200)
    ref = compare_to_baseline(results, preds, BASE, n_boot=200)
    pd.testing.assert_frame_equal(table, ref)
    # no predictions at all (the runner's empty table): fold numbers only, no track tests
    empty = pd.DataFrame(columns=["feature_set", "family", "protocol", "fold", "track_id"])
    table = compare_to_baseline(results, empty, BASE, n_boot=200)
    kf = table[table["protocol"] == "stratified_kfold"]
    assert set(kf["verdict"]) == {"baseline", "better", "no evidence", "worse"}
    assert (table["n_tracks"] == 0).all() and table["p_mcnemar"].isna().all()
    ff = table[table["protocol"] == "fault_filtered"]
    assert set(ff["verdict"]) == {"baseline", "n/a"}


def test_family_score_matrix_pivots_complete_pairs() -> None:
    results, _ = _synthetic()
    m = family_score_matrix(results)
    # blocks: feature set x protocol; the incomplete pair's block has no complete cell
    assert m.loc["csv_30s · stratified_kfold", "lightgbm"] == pytest.approx(178 / 200)
    assert math.isnan(m.loc["csv_30s · fault_filtered", "knn"])
    assert "logmel · stratified_kfold" not in m.index
    assert set(m.columns) == {"knn", "lightgbm", "mlp"}


def test_a_pair_scoring_fewer_tracks_is_t_tested_on_the_tracks_both_scored() -> None:
    """An audio feature set covering part of the tracks (115 of 1000 clips have audio) is
    compared with the baseline fold by fold on the tracks both scored, not on its own."""
    results, preds = _synthetic()
    partial = ("librosa_30s", "logreg")
    right = [12, 15, 11, 14, 13]  # of the 20 tracks [10, 30) it scores per fold
    res_rows, pred_rows = [], []
    for fold, n in enumerate(right):
        for pos in range(10, 30):
            pred_rows.append(
                {
                    "feature_set": partial[0],
                    "family": partial[1],
                    "protocol": "stratified_kfold",
                    "fold": fold,
                    "track_id": f"stratified_kfold-{fold}-{pos:03d}",
                    "y_true": "rock",
                    "y_pred": "rock" if pos < 10 + n else "jazz",
                    "correct": pos < 10 + n,
                }
            )
        res_rows.append(
            {
                "feature_set": partial[0],
                "family": partial[1],
                "protocol": "stratified_kfold",
                "fold": fold,
                "status": "done",
                "accuracy": n / 20,
                "balanced_accuracy": n / 20,
                "macro_f1": n / 20,
                "n_train": 160,
                "n_test": 20,
            }
        )
    results = pd.concat([results, pd.DataFrame(res_rows)], ignore_index=True)
    preds = pd.concat([preds, pd.DataFrame(pred_rows)], ignore_index=True)
    table = compare_to_baseline(results, preds, BASE, n_boot=200, seed=7)
    row = _row(table, "stratified_kfold", partial)
    own = np.array(right) / 20
    # the baseline is right on positions [0, c) of each fold: on [10, 30) that is c - 10
    base_common = (np.array(KFOLD[BASE][1]) - 10) / 20
    t, p = corrected_resampled_ttest(own, base_common, n_train=160, n_test=20)
    assert row["test"] == "corrected_t" and row["n_common"] == 100
    assert row["t_stat"] == pytest.approx(t) and row["p_value"] == pytest.approx(p)
    assert row["delta"] == pytest.approx(np.mean(own - base_common))
    assert "100 scored by both" in row["note"] and "5 folds" in row["note"]
