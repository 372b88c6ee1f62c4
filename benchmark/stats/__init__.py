"""Is a difference real? Significance of every (feature set, family) pair against the baseline.

The leaderboard must not rank pairs by a mean alone: on GTZAN the folds are small (100 tracks in
10-fold CV, 290 in the fault-filtered test) and one point of accuracy is often noise. This package
holds the tests the leaderboard uses, one module per kind of question, each test chosen for the
data it is given:

* :mod:`.paired_tests`: two models on one protocol: per-fold scores of k-fold protocols get the
  corrected resampled t-test (Nadeau & Bengio, 2003), because folds share training data and the
  plain paired t-test is badly anti-conservative; one test split (the fault-filtered protocol)
  gets the exact McNemar test on per-track correctness (Dietterich, 1998; McNemar, 1947);
* :mod:`.bootstrap`: an accuracy's uncertainty: the percentile bootstrap over tracks (Efron &
  Tibshirani, 1993);
* :mod:`.multiple_testing`: many pairs compared with one baseline: Holm's step-down adjustment
  (Holm, 1979);
* :mod:`.rank_tests`: families over many blocks (feature set x protocol): the Friedman test and
  the Nemenyi critical difference (Demšar, 2006); racing many pairs over the folds so far: the
  Friedman test with Conover's post-hoc comparisons against the best-ranked pair (Conover, 1999;
  as in irace, López-Ibáñez et al., 2016);
* :mod:`.cd_diagram`: the CD diagram of the Nemenyi test (matplotlib, imported lazily);
* :mod:`.comparison`: :func:`compare_to_baseline` reads ``results.parquet`` and
  ``predictions.parquet`` exactly as :mod:`benchmark.results` documents them and returns one row
  per pair and protocol.

Every public name is re-exported here, so ``from benchmark.stats import X`` is the import to use.
"""

from benchmark.stats.bootstrap import (
    bootstrap_ci,
    bootstrap_means,
    paired_bootstrap_ci,
    percentile_interval,
)
from benchmark.stats.cd_diagram import cd_diagram_svg
from benchmark.stats.comparison import COMPARISON_COLUMNS, VERDICTS, compare_to_baseline
from benchmark.stats.multiple_testing import holm
from benchmark.stats.paired_tests import (
    McNemarResult,
    StatsWarning,
    TTestResult,
    corrected_resampled_ttest,
    mcnemar_exact,
)
from benchmark.stats.rank_tests import (
    ConoverResult,
    FriedmanResult,
    cd_groups,
    family_score_matrix,
    friedman_conover,
    friedman_nemenyi,
    nemenyi_critical_difference,
    nemenyi_q,
)

__all__ = [
    "COMPARISON_COLUMNS",
    "ConoverResult",
    "FriedmanResult",
    "McNemarResult",
    "StatsWarning",
    "TTestResult",
    "VERDICTS",
    "bootstrap_ci",
    "bootstrap_means",
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
    "percentile_interval",
]
