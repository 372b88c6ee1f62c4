"""Model families. The folder is the registry: adding a family is one module plus one YAML.

Every non-underscore module here is imported and each :class:`Family` instance found among its
module attributes is registered under ``family.name``; there is no central list to edit. A test
checks that the registry and ``search_spaces/*.yaml`` match both ways.
"""

from __future__ import annotations

import functools
from types import ModuleType

from benchmark.models._family import Family
from benchmark.registry import discover, lookup

__all__ = ["Family", "all_families", "get_family"]


def _families_of(module: ModuleType) -> list[tuple[str, Family]]:
    return [(v.name, v) for v in vars(module).values() if isinstance(v, Family)]


@functools.cache
def _discover() -> dict[str, Family]:
    return discover(__name__, __path__, "family", _families_of)


def all_families() -> dict[str, Family]:
    """Every registered family by name (a fresh dict; discovery runs once per process)."""
    return dict(_discover())


def get_family(name: str) -> Family:
    """The family called ``name``; an unknown name fails listing the known ones."""
    return lookup("model family", _discover(), name)
