"""Gradient-boosted trees with LightGBM (imported lazily: the family skips without it)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted, validate_data

from benchmark.models._common import make_pipeline, take_params
from benchmark.models._family import Family

__all__ = ["LIGHTGBM", "build_lightgbm"]

_TUNED = {
    "num_leaves",
    "learning_rate",
    "n_estimators",
    "min_child_samples",
    "subsample",
    "colsample_bytree",
    "reg_lambda",
}


@functools.cache
def _checked_class() -> type:
    """:class:`lightgbm.LGBMClassifier` that checks its input as scikit-learn's estimators do.

    LightGBM takes a DataFrame as it comes: with its columns reordered it predicts silently
    on the wrong features. Here ``predict``, ``predict_proba`` and ``decision_function`` raise,
    as every other family does, when the column names or their order differ from fit's
    (``feature_names_in_``, an object array as scikit-learn's), and fit refuses all-zero
    sample weights. The booster settings the family fixes are named parameters. Training is
    LightGBM's own, unchanged. Built on first
    use, so the module imports without LightGBM (the family then skips).
    """
    import lightgbm

    _names_in = lightgbm.LGBMClassifier.feature_names_in_.fget

    class CheckedLGBMClassifier(lightgbm.LGBMClassifier):
        __doc__ = _checked_class.__doc__
        __module__ = __name__
        __qualname__ = "CheckedLGBMClassifier"

        def __init__(
            self,
            *,
            deterministic: bool | None = None,
            force_col_wise: bool | None = None,
            max_bin: int | None = None,
            verbose: int | None = None,
            **kwargs: Any,
        ) -> None:
            # The booster settings the family fixes have no named argument in LightGBM, which
            # keeps such **kwargs as attributes: named here, they are parameters as
            # scikit-learn wants; None leaves LightGBM's default (the setting is not passed).
            named = {
                "deterministic": deterministic,
                "force_col_wise": force_col_wise,
                "max_bin": max_bin,
                "verbose": verbose,
            }
            super().__init__(**{k: v for k, v in named.items() if v is not None}, **kwargs)
            for key, value in named.items():
                setattr(self, key, value)

        # scikit-learn's convention: an object array (LightGBM returns a str array)
        feature_names_in_ = property(
            lambda self: np.asarray(_names_in(self), dtype=object),
            fdel=lightgbm.LGBMClassifier.feature_names_in_.fdel,
            doc=lightgbm.LGBMClassifier.feature_names_in_.__doc__,
        )

        def fit(self, X: Any, y: Any, sample_weight: Any = None, **kwargs: Any) -> Any:
            if sample_weight is not None and not np.any(np.asarray(sample_weight)):
                raise ValueError("Sample weights must contain at least one non-zero number.")
            return super().fit(X, y, sample_weight=sample_weight, **kwargs)

        def predict_proba(self, X: Any, *args: Any, **kwargs: Any) -> Any:
            self._check_columns(X)
            return super().predict_proba(X, *args, **kwargs)

        def decision_function(self, X: Any, *args: Any, **kwargs: Any) -> Any:
            self._check_columns(X)
            return super().decision_function(X, *args, **kwargs)

        def _check_columns(self, X: Any) -> None:
            check_is_fitted(self)
            if hasattr(X, "columns"):  # a data frame: its column names and order, as at fit
                validate_data(self, X, reset=False, skip_check_array=True)

    return CheckedLGBMClassifier


def __getattr__(name: str) -> Any:
    """``CheckedLGBMClassifier``, built on first access: a pickled model finds its class here."""
    if name == "CheckedLGBMClassifier":
        return _checked_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_lightgbm(params: Mapping[str, Any], seed: int) -> Pipeline:
    """``LGBMClassifier`` with the fixed settings that keep it fast and reproducible.

    - ``n_jobs=1``, ``verbose=-1``: the harness parallelises across studies and logs itself.
    - ``deterministic=True``, ``force_col_wise=True``: same seed → same model, bit for bit.
    - ``subsample_freq=1``: bagging every iteration, so ``subsample`` takes effect (at its
      default 1.0 this equals LightGBM's default of no bagging).
    - ``min_child_weight=1e-2`` (LightGBM's ``min_sum_hessian_in_leaf``; its default 1e-3):
      a multiclass leaf's output is -G/(H + reg_lambda), and with ``reg_lambda`` at its 1e-8
      floor a leaf of confidently classified rows has H near 1e-3, so its output explodes and
      the model collapses to saturated one-class probabilities. Seen in the 1-h ``full`` run:
      ``csv_30s`` stratified fold 1 with learning_rate 0.23, 50 leaves scored 0.11 on its test
      part (inner CV 0.74); with 1e-2 the same fit scores 0.76, and over 30 random draws of the
      space the mean accuracy moved 0.734 → 0.732 (``tests/integration/test_real_gtzan.py``).
    - ``max_bin=31`` instead of 255: the 10-class default grows 1000 trees and split finding
      scans every bin, so fewer bins is the main speed lever. On features_30_sec.csv
      (StratifiedKFold(10), 900-row fits, one thread) 255/63/31/15 bins score 0.749/0.755/
      0.752/0.743 and fit in 2.3/1.0/0.76/0.67 s; 31 quantile bins still leave ~29 rows per bin
      at 900 rows, so the finer bins add split candidates the data cannot support.
    """
    p = take_params("lightgbm", params, _TUNED)
    model = _checked_class()(
        n_jobs=1,
        verbose=-1,
        deterministic=True,
        force_col_wise=True,
        subsample_freq=1,
        max_bin=31,
        min_child_weight=1e-2,
        random_state=seed,
        **p,
    )
    return make_pipeline(model, scale=False)


LIGHTGBM = Family(
    name="lightgbm",
    input_kind="tabular",
    build=build_lightgbm,
    description="LightGBM gradient-boosted trees",
    fast_params={"n_estimators": 10, "num_leaves": 7},
    requires=("lightgbm",),
)
