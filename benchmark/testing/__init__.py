"""The check suites shipped in the package, so a plugin written elsewhere can run them too
(as scikit-learn's ``estimator_checks`` and ``optuna.testing``):

* :mod:`benchmark.testing.families`: the checks every model family passes (:data:`CHECKS`, on the
  generated problems of :data:`PROBLEMS`, with :data:`EXPECTED_FAILURES`);
* :mod:`benchmark.testing.feature_sets`: the checks every feature set passes
  (:data:`FEATURE_SET_CHECKS`, run by :func:`check_feature_set` on a small generated GTZAN folder);
* :mod:`benchmark.testing.fake_gtzan`: the generator of that folder (the Kaggle layout with
  learnable content), which the project's tests use as well.

``from benchmark import testing`` then ``testing.CHECKS`` (or ``from benchmark.testing import
CHECKS``) works for every public name of the two suites. They are loaded on first use, not on
import: the generator is imported on its own by processes that must not load scikit-learn (an
inference worker's test forks one), and the families' suite imports it.
"""

from __future__ import annotations

import importlib
from typing import Any

#: the modules whose public names this package answers for, in the order they are looked up
_SUITES = ("benchmark.testing.families", "benchmark.testing.feature_sets")


def __getattr__(name: str) -> Any:
    if name == "__all__":
        return [n for suite in _SUITES for n in importlib.import_module(suite).__all__]
    for suite in _SUITES:
        module = importlib.import_module(suite)
        if name in module.__all__:
            return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__getattr__("__all__")])
