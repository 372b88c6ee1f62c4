"""Model families. The folder is the registry: adding a family is one module plus one YAML.

Every non-underscore module here is imported and each :class:`Family` instance found among its
module attributes is registered under ``family.name``; there is no central list to edit. A test
checks that the registry and ``search_spaces/*.yaml`` match both ways.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil

from benchmark.errors import ConfigError
from benchmark.models._family import Family

__all__ = ["Family", "all_families", "get_family"]


@functools.cache
def _discover() -> dict[str, Family]:
    found: dict[str, Family] = {}
    where: dict[str, str] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for value in vars(module).values():
            if not isinstance(value, Family):
                continue
            known = found.get(value.name)
            if known is not None and known is not value:
                raise ConfigError(
                    f"two families are named {value.name!r}: in {where[value.name]} and "
                    f"{module.__name__}; family names must be unique"
                )
            found[value.name] = value
            where[value.name] = module.__name__
    return dict(sorted(found.items()))


def all_families() -> dict[str, Family]:
    """Every registered family by name (a fresh dict; discovery runs once per process)."""
    return dict(_discover())


def get_family(name: str) -> Family:
    """The family called ``name``; an unknown name fails listing the known ones."""
    families = _discover()
    if name not in families:
        raise ConfigError(f"unknown model family {name!r}; known families: {', '.join(families)}")
    return families[name]
