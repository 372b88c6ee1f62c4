"""Gaussian discriminant analysis: shared (LDA) and per-class (QDA) covariances."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sklearn.discriminant_analysis import (
    LinearDiscriminantAnalysis,
    QuadraticDiscriminantAnalysis,
)
from sklearn.pipeline import Pipeline

from benchmark.models._common import make_pipeline, take_params
from benchmark.models._family import Family

__all__ = ["LDA", "QDA", "QDA_DEFAULT_REG_PARAM", "build_lda", "build_qda"]

# ≈ 0.73 accuracy on features_30_sec.csv (5-fold); 0.01 → 0.69, 0.5 → 0.70, 0.8 → 0.63.
QDA_DEFAULT_REG_PARAM = 0.1


def build_lda(params: Mapping[str, Any], seed: int) -> Pipeline:
    """Standardize → LDA; shrinkage (lsqr/eigen only) is scale-dependent, hence the scaler."""
    p = take_params("lda", params, {"solver", "shrinkage"})
    return make_pipeline(LinearDiscriminantAnalysis(**p), scale=True)


def build_qda(params: Mapping[str, Any], seed: int) -> Pipeline:
    """Standardize → QDA; ``reg_param`` blends each class covariance with the identity.

    With ~90 rows per class and 57 correlated features the per-class covariances are singular:
    scikit-learn's default ``reg_param=0`` fails to fit on features_30_sec.csv (and on small
    generated data). So an absent ``reg_param`` means 0.1 here, the search space's default too.
    """
    p = take_params("qda", params, {"reg_param"})
    p.setdefault("reg_param", QDA_DEFAULT_REG_PARAM)
    return make_pipeline(QuadraticDiscriminantAnalysis(**p), scale=True)


LDA = Family(
    name="lda",
    input_kind="tabular",
    build=build_lda,
    description="Linear discriminant analysis (shared covariance, optional shrinkage)",
)
QDA = Family(
    name="qda",
    input_kind="tabular",
    build=build_qda,
    description="Quadratic discriminant analysis (per-class covariance, regularised)",
)
