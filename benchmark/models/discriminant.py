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

__all__ = ["LDA", "QDA", "QDA_DEFAULT_SHRINKAGE", "build_lda", "build_qda"]

# features_30_sec.csv, StratifiedKFold(5): 0.724 at 0.1, 0.707 Ledoit-Wolf "auto", 0.641 at 0.5.
QDA_DEFAULT_SHRINKAGE = 0.1


def build_lda(params: Mapping[str, Any], seed: int) -> Pipeline:
    """Standardize → LDA; shrinkage (lsqr/eigen only) is scale-dependent, hence the scaler."""
    p = take_params("lda", params, {"solver", "shrinkage"})
    return make_pipeline(LinearDiscriminantAnalysis(**p), scale=True)


def build_qda(params: Mapping[str, Any], seed: int) -> Pipeline:
    """Standardize → QDA with the eigen solver and covariance ``shrinkage``.

    A training part of the fault-filtered or artist-grouped protocols holds ~45 rows per class
    for 57 features, so per-class covariances are singular. scikit-learn 1.9's default ``svd``
    solver then refuses to fit (with or without ``reg_param``); ``solver="eigen"`` with
    shrinkage towards a scaled identity fits any class size. An absent ``shrinkage`` means 0.1,
    the search space's default too.
    """
    p = take_params("qda", params, {"shrinkage"})
    p.setdefault("shrinkage", QDA_DEFAULT_SHRINKAGE)
    return make_pipeline(QuadraticDiscriminantAnalysis(solver="eigen", **p), scale=True)


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
    description="Quadratic discriminant analysis (per-class covariance, shrunk)",
)
