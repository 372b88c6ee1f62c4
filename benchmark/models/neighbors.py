"""k-nearest neighbours: the non-parametric reference; distances need standardized features."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline

from benchmark.models._common import make_pipeline, take_params
from benchmark.models._family import Family

__all__ = ["KNN", "build_knn"]


def build_knn(params: Mapping[str, Any], seed: int) -> Pipeline:
    """Standardize → kNN (Minkowski ``p``); deterministic, so ``seed`` is unused."""
    p = take_params("knn", params, {"n_neighbors", "weights", "p"})
    return make_pipeline(KNeighborsClassifier(n_jobs=1, **p), scale=True)


KNN = Family(
    name="knn",
    input_kind="tabular",
    build=build_knn,
    description="k-nearest neighbours on standardized features",
)
