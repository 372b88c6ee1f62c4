"""Evaluation protocols. The folder is the registry: every :class:`Protocol` subclass with a
``name`` defined in a module of this package is available by that name; adding a protocol is
one module (its kind, whether it may select the final model, its parameters live on it)."""

from __future__ import annotations

import functools
from typing import Any

from benchmark.errors import ConfigError
from benchmark.protocols.base import OuterSplit, Protocol, splits_table
from benchmark.registry import discover, lookup, subclasses_named

__all__ = [
    "OuterSplit",
    "Protocol",
    "all_protocols",
    "check_params",
    "get_protocol",
    "selection_protocols",
    "splits_table",
]


@functools.cache
def _discover() -> dict[str, type[Protocol]]:
    return discover(__name__, __path__, "protocol", subclasses_named(Protocol), skip=("base",))


def all_protocols() -> dict[str, type[Protocol]]:
    """Every registered protocol class by name (discovery runs once per process)."""
    return dict(_discover())


def get_protocol(name: str, **params: Any) -> Protocol:
    """Protocol ``name`` with ``params``, checked against its declared parameters."""
    cls = lookup("protocol", _discover(), name)
    check_params(name, params)
    return cls(**params)


def check_params(name: str, params: Any, source: str = "protocols") -> None:
    """Refuse parameters protocol ``name`` does not declare, or of the wrong type."""
    cls = lookup("protocol", _discover(), name)
    if not isinstance(params, dict):
        raise ConfigError(f"{source}.{name} must be a mapping of parameters, got {params!r}")
    unknown = sorted(set(params) - set(cls.params))
    if unknown:
        takes = ", ".join(cls.params) or "no parameters"
        raise ConfigError(
            f"{source}.{name}: unknown parameter(s) {', '.join(unknown)}; takes {takes}"
        )
    for key, kind in cls.params.items():
        if key in params and (not isinstance(params[key], kind) or isinstance(params[key], bool)):
            raise ConfigError(f"{source}.{name}.{key} must be {kind.__name__}, got {params[key]!r}")


def selection_protocols() -> list[str]:
    """The protocols a winner may be chosen by, most honest first."""
    ranked = [p for p in _discover().values() if p.selection_rank is not None]
    return [p.name for p in sorted(ranked, key=lambda p: (p.selection_rank, p.name))]
