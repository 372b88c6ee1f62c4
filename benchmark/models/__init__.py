"""Model families. The folder is the registry: adding a family is one module plus one YAML.

Every non-underscore module here is imported and each :class:`Family` instance found among its
module attributes is registered under ``family.name``; there is no central list to edit. A test
checks that the registry and ``search_spaces/*.yaml`` match both ways.
"""

from __future__ import annotations

import dataclasses
import functools
from types import ModuleType

from benchmark.models._family import Family
from benchmark.models._reduction import build_reduced
from benchmark.registry import discover, lookup

__all__ = ["Family", "all_families", "get_family", "resolve_family"]


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


def resolve_family(name: str, of: str | None = None) -> Family:
    """``name``'s family: the registered one, or, with ``of``, a config's variant of family
    ``of`` (:mod:`benchmark.models._variants`) that builds ``of``'s pipeline with the reduction
    its params ask for. ``of`` travels in the variant's search space, so any process that has a
    job can build its model without the config."""
    if of is None:
        return get_family(name)
    base = get_family(of)
    return dataclasses.replace(
        base,
        name=name,
        build=functools.partial(build_reduced, base=base.build),
        description=f"{base.description} (variant {name})",
    )
