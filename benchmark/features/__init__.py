"""Feature sets. The folder is the registry: every :class:`FeatureSet` subclass with a ``name``
defined in a module of this package is available by that name, with no central list."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from benchmark.errors import ConfigError
from benchmark.features.base import FeatureMatrix, FeatureSet

__all__ = ["FeatureMatrix", "FeatureSet", "all_feature_sets", "get_feature_set"]


def all_feature_sets() -> dict[str, type[FeatureSet]]:
    found: dict[str, type[FeatureSet]] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_") or info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for obj in vars(module).values():
            if (
                isinstance(obj, type)
                and issubclass(obj, FeatureSet)
                and obj.__module__ == module.__name__
                and "name" in vars(obj)
            ):
                found[obj.name] = obj
    return dict(sorted(found.items()))


def get_feature_set(name: str, **params: Any) -> FeatureSet:
    known = all_feature_sets()
    if name not in known:
        raise ConfigError(f"unknown feature set {name!r}; known: {', '.join(known)}")
    return known[name](**params)
