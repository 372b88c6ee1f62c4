"""Which parameters a feature set takes, checked before any work starts: a config's
``feature_params`` and ``feature_variants`` (a registered set under a new name with other
parameters). A typo would otherwise be ignored and the results would not be what the config
says."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from benchmark.errors import ConfigError
from benchmark.features.base import FeatureSet

__all__ = ["check_feature_params", "check_feature_variants", "declared_params"]

#: what a feature variant's name may look like (it names studies, result rows and MLflow runs)
_VARIANT_NAME = re.compile(r"[a-z][a-z0-9_]*")


def declared_params(cls: type[FeatureSet]) -> frozenset[str] | None:
    """The parameter names a feature set declares (an audio set's ``params_allowed`` and common
    ones, the spectrogram set's ``_PARAMS``); empty for a set that takes none (it keeps the base
    constructor, like csv_30s); None when it validates its parameters only itself."""
    declared = [getattr(cls, attr, None) for attr in ("params_allowed", "_COMMON", "_PARAMS")]
    if any(d is not None for d in declared):
        return frozenset().union(*(d for d in declared if d is not None))
    return frozenset() if cls.__init__ is FeatureSet.__init__ else None


def check_feature_variants(
    variants: Any, known: Mapping[str, type[FeatureSet]], source: str
) -> None:
    """Each feature variant: a free name, a registered base (``of``), and parameters that base
    takes (checked by its constructor, as ``feature_params`` are)."""
    if not isinstance(variants, dict):
        raise ConfigError(
            f"{source}: feature_variants must map new names to {{of: <feature set>, <params>}}, "
            f"e.g. {{embedding_musicnn_max_pool: {{of: embedding_musicnn, layer: max_pool}}}}, "
            f"got {variants!r}"
        )
    for name, spec in variants.items():
        where = f"{source}: feature_variants.{name}"
        if name in known:
            raise ConfigError(
                f"{where}: {name!r} is already a registered feature set; give the variant a "
                "name of its own"
            )
        if not isinstance(name, str) or not _VARIANT_NAME.fullmatch(name):
            raise ConfigError(
                f"{where}: a variant's name must be lower-case letters, digits and _, starting "
                "with a letter"
            )
        if not isinstance(spec, dict) or "of" not in spec:
            raise ConfigError(
                f"{where} must be a mapping with 'of' (the feature set it is made of) and its "
                f"parameters, e.g. {{of: embedding_musicnn, layer: max_pool}}, got {spec!r}"
            )
        base = spec["of"]
        if base not in known:
            also = " (a variant is made of a registered set, not of another variant)"
            raise ConfigError(
                f"{where}: of: unknown feature set {base!r}"
                f"{also if base in variants else ''}; known: {', '.join(known)}"
            )
        params = {k: v for k, v in spec.items() if k != "of"}
        check_feature_params(known[base], params, where, name=name)


def check_feature_params(
    cls: type[FeatureSet], params: Any, where: str, *, name: str | None = None
) -> None:
    """Refuse a feature set parameter it does not take (a typo would otherwise be ignored: the
    set would run with its default, and the results would not be what the config says), and any
    value its constructor refuses, before any work starts. ``where`` names the config entry,
    ``name`` a variant of ``cls`` in the messages."""
    if not isinstance(params, dict):
        raise ConfigError(f"{where} must map parameter names to values, got {params!r}")
    known = declared_params(cls)
    unknown = sorted(map(str, set(params) - known)) if known is not None else []
    if unknown:
        names = ", ".join(sorted(known or ())) or "none: it takes no parameters"
        what = f"{cls.name!r}" if name is None else f"{cls.name!r} (variant {name!r})"
        raise ConfigError(
            f"{where}: unknown parameter(s) {', '.join(unknown)} for feature set "
            f"{what}; known: {names}"
        )
    try:
        cls(**params)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
