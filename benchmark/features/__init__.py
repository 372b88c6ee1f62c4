"""Feature sets. The folder is the registry: every :class:`FeatureSet` subclass with a ``name``
defined in a module of this package is available by that name, with no central list."""

from __future__ import annotations

import functools
from typing import Any

from benchmark.features.base import FeatureMatrix, FeatureSet
from benchmark.registry import discover, lookup, subclasses_named

__all__ = ["FeatureMatrix", "FeatureSet", "all_feature_sets", "get_feature_set"]


@functools.cache
def _discover() -> dict[str, type[FeatureSet]]:
    return discover(__name__, __path__, "feature set", subclasses_named(FeatureSet), skip=("base",))


def all_feature_sets() -> dict[str, type[FeatureSet]]:
    """Every registered feature set class by name (discovery runs once per process)."""
    return dict(_discover())


def get_feature_set(name: str, **params: Any) -> FeatureSet:
    return lookup("feature set", _discover(), name)(**params)
