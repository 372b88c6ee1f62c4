"""Support vector machines, one family per kernel, all built by one helper.

Each kernel is its own family (and search space) so no parameter is conditional on the kernel
and the leaderboard shows which kernel wins. ``SVC(probability=True)`` is deprecated in
scikit-learn 1.9; probabilities come from ``CalibratedClassifierCV(SVC(...), cv=3)``, fit on 3
internal folds of the training data, never on the outer test part (each class needs at least 3
rows in a training set for that).

Calibration choices, measured on features_30_sec.csv (StratifiedKFold(5), RBF kernel, C=1; the
plain SVC's own predictions score 0.720):

- ``method="sigmoid"`` fits one Platt sigmoid per class on the one-vs-rest decision values and
  renormalises, which changes the argmax: 0.629 (``ensemble=True``) / 0.661 (``ensemble=False``),
  5–9 points below the SVC it calibrates, for every kernel tried.
- ``method="temperature"`` rescales the decision values by one learned temperature before a
  softmax, so the argmax (accuracy) is the SVC's own, and log loss is lower too: 0.720 with
  ``ensemble=False`` (log loss 1.14 vs 1.17 for sigmoid).
- ``ensemble=False`` is scikit-learn's documented replacement for ``probability=True``: the
  calibration folds only produce out-of-fold decision values; the final SVC is fit on the whole
  training part, not on two thirds of it.

A training set with a class of fewer than 3 rows (a small class of the user's own music, or an
outer fold of the 115 shared audio clips) calibrates on as many folds as that class allows, and
a class of a single row on the SVC's own training decision values (:class:`SmallClassCalibration`).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC
from sklearn.utils.validation import column_or_1d

from benchmark.errors import ConfigError
from benchmark.models._common import make_pipeline, take_params
from benchmark.models._family import Family

__all__ = [
    "CALIBRATION",
    "SmallClassCalibration",
    "SVM_LINEAR",
    "SVM_POLY",
    "SVM_RBF",
    "SVM_SIGMOID",
    "build_svc",
]

# The parameters each kernel uses; ``gamma`` is ``"scale"`` (scikit-learn's default,
# 1 / (n_features * X.var())) or ``"value"``, which takes the number from ``gamma_value``.
_GAMMA = ("gamma", "gamma_value")
CALIBRATION = {"cv": 3, "method": "temperature", "ensemble": False}
_ACCEPTED: dict[str, tuple[str, ...]] = {
    "linear": ("C",),
    "poly": ("C", "degree", "coef0", *_GAMMA),
    "rbf": ("C", *_GAMMA),
    "sigmoid": ("C", "coef0", *_GAMMA),
}


class SmallClassCalibration(CalibratedClassifierCV):
    """``CalibratedClassifierCV`` that still fits when a class has fewer rows than ``cv``.

    scikit-learn refuses ``cv`` folds when a class has fewer rows. Here the folds shrink to the
    smallest class (at least 2); with a one-row class the SVC is fit on every row and its
    temperature learnt on its decision values for those same rows. Temperature scaling never
    changes the argmax, so accuracy stays the SVC's own; only the probabilities are then less
    trustworthy. When the temperature cannot be fit (scipy meets a NaN loss on nearly flat
    decision values), the calibration falls back to Platt's sigmoids and says so in
    ``calibration_fallback_``.
    """

    def fit(
        self, X: Any, y: Any, sample_weight: Any = None, **fit_params: Any
    ) -> SmallClassCalibration:
        if y is None:  # before counting the classes of y below
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None"
            )
        y = column_or_1d(y, warn=True)  # a column vector: scikit-learn's own fails on it
        if len(y) == 0:
            raise ValueError(f"{type(self).__name__} got 0 samples to fit (y is empty)")
        if sample_weight is not None:
            fit_params["sample_weight"] = sample_weight
        try:
            return self._fit(X, y, **fit_params)
        except RuntimeError as exc:
            # scipy's bounded search for the temperature can meet a NaN loss on nearly flat
            # decision values (a tiny C: every class's votes tie); one trial or fold must not
            # fail for it. Platt's sigmoids always fit; the argmax may then move a little.
            if self.method != "temperature" or "Temperature scaling" not in str(exc):
                raise
            self.calibration_fallback_ = f"sigmoid ({exc})"
            self.set_params(method="sigmoid")
            try:
                return self._fit(X, y, **fit_params)
            finally:
                self.set_params(method="temperature")

    def _fit(self, X: Any, y: Any, **fit_params: Any) -> SmallClassCalibration:
        smallest = int(np.unique(np.asarray(y), return_counts=True)[1].min())
        if not isinstance(self.cv, int) or smallest >= self.cv:
            return super().fit(X, y, **fit_params)
        params = self.get_params(deep=False)
        rows = np.arange(len(y))
        # one "split" that trains and scores on every row: the in-sample decision values
        params["cv"] = smallest if smallest >= 2 else [(rows, rows)]
        fitted = CalibratedClassifierCV(**params).fit(X, y, **fit_params)
        self.__dict__.update({k: v for k, v in vars(fitted).items() if k.endswith("_")})
        return self


def build_svc(params: Mapping[str, Any], seed: int, *, kernel: str) -> Pipeline:
    """Standardize → calibrated ``SVC(kernel=kernel)``.

    ``seed`` is unused: SVC without ``probability`` is deterministic and the calibration folds are
    an unshuffled StratifiedKFold.
    """
    p = take_params(f"svm_{kernel}", params, _ACCEPTED[kernel])
    gamma = p.pop("gamma", "scale")
    gamma_value = p.pop("gamma_value", None)
    if gamma == "value":
        if gamma_value is None:
            raise ConfigError(f"svm_{kernel}: gamma='value' needs gamma_value")
        gamma = gamma_value
    elif gamma_value is not None:
        raise ConfigError(f"svm_{kernel}: gamma_value applies to gamma='value' only")
    svc = SVC(kernel=kernel, gamma=gamma, **p)
    return make_pipeline(SmallClassCalibration(svc, **CALIBRATION), scale=True)


def _svm_family(kernel: str, description: str) -> Family:
    # partial of a module-level function (not a closure), so a Family stays picklable
    return Family(
        name=f"svm_{kernel}",
        input_kind="tabular",
        build=partial(build_svc, kernel=kernel),
        description=description,
    )


SVM_LINEAR = _svm_family("linear", "SVM, linear kernel, temperature-calibrated probabilities")
SVM_POLY = _svm_family("poly", "SVM, polynomial kernel, temperature-calibrated probabilities")
SVM_RBF = _svm_family("rbf", "SVM, RBF kernel, temperature-calibrated probabilities")
SVM_SIGMOID = _svm_family("sigmoid", "SVM, sigmoid kernel, temperature-calibrated probabilities")
