"""The optional reduction step of a pipeline: PCA to a number of components that is always valid.

A search space asks for ``pca_components`` only in a config's family variant
(:mod:`benchmark.models._variants`); a plain family never sees it, so its pipeline and its
results stay as they were. The step sits inside the Pipeline (``[scale →] reduce → model``),
so it is fit on the rows the pipeline is fit on: an inner training part, or an outer training
part, never a row that is predicted and scored.

The clipping rule: a PCA cannot have more components than ``min(n_samples, n_features)`` of the
rows it is fit on. A tuned or fixed ``pca_components`` above that (128 components on an inner
fold of 61 training clips, or on the 57 columns of ``csv_30s``) keeps that many instead, so one
search range serves every input width and training size; ``n_components_`` says what was kept.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import PCA
from sklearn.utils.validation import check_is_fitted, validate_data

from benchmark.errors import ConfigError
from benchmark.models._common import add_reduction

__all__ = ["ClippedPCA", "build_reduced"]


class ClippedPCA(TransformerMixin, BaseEstimator):
    """PCA to ``min(n_components, n_samples, n_features)`` components of the rows it is fit on.

    The full SVD (``svd_solver="full"``) makes it exact and deterministic: no seed is needed,
    and a rerun gives the same components.

    Attributes:
        pca_: the fitted :class:`~sklearn.decomposition.PCA` (``mean_``, ``components_``).
        n_components_: the components kept after clipping.
    """

    def __init__(self, n_components: int = 128) -> None:
        self.n_components = n_components

    def fit(self, X: Any, y: Any = None) -> ClippedPCA:
        if (
            isinstance(self.n_components, bool)
            or not isinstance(self.n_components, int | np.integer)
            or self.n_components < 1
        ):
            raise ValueError(f"n_components must be an integer >= 1, got {self.n_components!r}")
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        self.n_components_ = int(min(self.n_components, X.shape[0], X.shape[1]))
        self.pca_ = PCA(n_components=self.n_components_, svd_solver="full").fit(X)
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "pca_")
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return np.asarray(self.pca_.transform(X))


def build_reduced(
    params: Mapping[str, Any],
    seed: int,
    *,
    base: Callable[[Mapping[str, Any], int], BaseEstimator],
) -> BaseEstimator:
    """``base``'s pipeline with a :class:`ClippedPCA` before its model when ``params`` has
    ``pca_components``; the other params go to ``base`` unchanged (a copy: Optuna's dict is
    never mutated)."""
    rest = dict(params)
    k = rest.pop("pca_components", None)
    model = base(rest, seed)
    if k is None:
        return model
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"pca_components must be an integer >= 1, got {k!r}")
    return add_reduction(model, ClippedPCA(k))
