"""One registry mechanism for every kind of plugin: the folder is the registry.

Model families, feature sets and protocols are each found by importing every public module of
their package and picking what it defines; there is no central list to edit, names must be
unique, and an unknown name fails listing the known ones. Adding a plugin is one module.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Mapping
from types import ModuleType
from typing import Any, TypeVar

from benchmark.errors import ConfigError

__all__ = ["discover", "lookup", "subclasses_named"]

T = TypeVar("T")


def discover(
    package: str,
    path: Iterable[str],
    kind: str,
    pick: Callable[[ModuleType], Iterable[tuple[str, T]]],
    *,
    skip: Iterable[str] = (),
) -> dict[str, T]:
    """``{name: plugin}`` from every module of ``package`` (not ``_private`` ones, nor those in
    ``skip``), sorted by name; two plugins of one name fail naming both modules."""
    found: dict[str, T] = {}
    where: dict[str, str] = {}
    excluded = set(skip)
    for info in sorted(pkgutil.iter_modules(list(path)), key=lambda m: m.name):
        if info.name.startswith("_") or info.name in excluded:
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        for name, plugin in pick(module):
            known = found.get(name)
            if known is not None and known is not plugin:
                raise ConfigError(
                    f"two {kind}s are named {name!r}: in {where[name]} and {module.__name__}; "
                    f"{kind} names must be unique"
                )
            found[name] = plugin
            where[name] = module.__name__
    return dict(sorted(found.items()))


def subclasses_named(base: type) -> Callable[[ModuleType], list[tuple[str, Any]]]:
    """A ``pick`` for class plugins: the subclasses of ``base`` a module defines itself that
    set their own ``name`` (abstract helpers without one are not plugins)."""

    def pick(module: ModuleType) -> list[tuple[str, Any]]:
        return [
            (str(vars(obj)["name"]), obj)
            for obj in vars(module).values()
            if isinstance(obj, type)
            and issubclass(obj, base)
            and obj.__module__ == module.__name__
            and "name" in vars(obj)
        ]

    return pick


def lookup(kind: str, known: Mapping[str, T], name: str) -> T:
    """``known[name]``, or one line naming the known ones."""
    if name not in known:
        raise ConfigError(f"unknown {kind} {name!r}; known: {', '.join(known) or 'none'}")
    return known[name]
