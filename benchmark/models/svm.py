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
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from sklearn.calibration import CalibratedClassifierCV
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC

from benchmark.errors import ConfigError
from benchmark.models._common import make_pipeline, take_params
from benchmark.models._family import Family

__all__ = ["CALIBRATION", "SVM_LINEAR", "SVM_POLY", "SVM_RBF", "SVM_SIGMOID", "build_svc"]

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
    return make_pipeline(CalibratedClassifierCV(svc, **CALIBRATION), scale=True)


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
