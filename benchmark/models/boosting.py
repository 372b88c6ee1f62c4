"""Gradient-boosted trees with LightGBM (imported lazily: the family skips without it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sklearn.pipeline import Pipeline

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
    import lightgbm

    p = take_params("lightgbm", params, _TUNED)
    model = lightgbm.LGBMClassifier(
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
