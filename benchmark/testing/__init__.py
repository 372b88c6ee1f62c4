"""The check suites shipped in the package, so a plugin written elsewhere can run them too
(as scikit-learn's ``estimator_checks`` and ``optuna.testing``):

* :mod:`benchmark.testing.families`: the checks every model family passes (:data:`CHECKS`, on the
  generated problems of :data:`PROBLEMS`, with :data:`EXPECTED_FAILURES`);
* :mod:`benchmark.testing.feature_sets`: the checks every feature set passes
  (:data:`FEATURE_SET_CHECKS`, run by :func:`check_feature_set` on a small generated GTZAN folder);
* :mod:`benchmark.testing.fake_gtzan`: the generator of that folder (the Kaggle layout with
  learnable content), which the project's tests use as well.
"""

from __future__ import annotations

from benchmark.testing import families, feature_sets
from benchmark.testing.families import *  # noqa: F403
from benchmark.testing.feature_sets import *  # noqa: F403

__all__ = [*families.__all__, *feature_sets.__all__]
