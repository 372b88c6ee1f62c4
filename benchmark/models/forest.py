"""Random forest: bagged deep trees, no scaling needed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline

from benchmark.models._common import make_pipeline, take_params
from benchmark.models._family import Family

__all__ = ["RANDOM_FOREST", "build_random_forest"]


def build_random_forest(params: Mapping[str, Any], seed: int) -> Pipeline:
    """No scaler: trees split on thresholds. One thread: the harness runs studies in parallel."""
    p = take_params(
        "random_forest", params, {"n_estimators", "max_depth", "max_features", "min_samples_leaf"}
    )
    return make_pipeline(RandomForestClassifier(n_jobs=1, random_state=seed, **p), scale=False)


RANDOM_FOREST = Family(
    name="random_forest",
    input_kind="tabular",
    build=build_random_forest,
    description="Random forest of decision trees",
    fast_params={"n_estimators": 10},
)
