"""Family variants: a config's own names for a registered family with a reduction or fixed params.

``family_variants`` in a config maps a new name to ``{of, reduction, fixed}``::

    family_variants:
      svm_rbf_pca: {of: svm_rbf, reduction: tuned}                # PCA, components tuned
      svm_rbf_pca128: {of: svm_rbf, fixed: {pca_components: 128}}  # PCA-128, C/gamma tuned

A variant is a search space (its base's, changed) whose ``of`` names the base: every stage that
holds a job builds the model from that (:func:`benchmark.models.resolve_family`), and results,
the leaderboard, export and predict see one more family name. ``reduction: tuned`` adds the
range the base's search-space file declares under ``reduction:``; ``fixed`` pins parameters to
one value each (a one-choice categorical, so the value is in every trial's params and in the
results). Nothing here changes a plain family: its space and pipeline are those of its file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from benchmark.errors import ConfigError, SearchSpaceError
from benchmark.models import all_families
from benchmark.tuning.search_space import REDUCTION_PARAMS, Param, SearchSpace, load_search_space

__all__ = ["REDUCTIONS", "VARIANT_KEYS", "check_variants", "variant_space"]

VARIANT_KEYS = ("of", "reduction", "fixed")
#: ``reduction:`` of a variant: none (the base's pipeline) or tuned (PCA, its components tuned
#: over the base file's declared range)
REDUCTIONS = ("none", "tuned")
_NAME = re.compile(r"[a-z][a-z0-9_]*")


def check_variants(variants: Any, source: str) -> None:
    """Validate every variant of a config (names, bases, reductions, fixed params) before any
    work starts; each error names the config, the variant and the key."""
    if not isinstance(variants, Mapping):
        raise ConfigError(
            f"{source}: family_variants must map names to {{of, reduction, fixed}}, "
            f"got {variants!r}"
        )
    for name, spec in variants.items():
        variant_space(name, spec, source=source)


def variant_space(name: Any, spec: Any, *, source: str) -> SearchSpace:
    """The search space of variant ``name``: its base's, with ``fixed`` params pinned, the
    params their pinned parents switch off dropped, and ``pca_components`` tuned or fixed."""
    where = f"{source}: family_variants.{name}"
    known = all_families()
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(f"{where}: a variant name is lower case letters, digits and _")
    if name in known:
        raise ConfigError(f"{where}: {name!r} is a registered family; a variant needs a new name")
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}: must be a mapping with keys {', '.join(VARIANT_KEYS)}")
    unknown = sorted(map(str, set(spec) - set(VARIANT_KEYS)))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(VARIANT_KEYS)}"
        )
    base_name = spec.get("of")
    if not isinstance(base_name, str) or base_name not in known:
        raise ConfigError(
            f"{where}.of: must name a registered family, got {base_name!r}; "
            f"known: {', '.join(known)}"
        )
    reduction = spec.get("reduction", "none")
    if reduction not in REDUCTIONS:
        raise ConfigError(
            f"{where}.reduction: must be one of {', '.join(REDUCTIONS)}, got {reduction!r}"
        )
    fixed = spec.get("fixed") or {}
    if not isinstance(fixed, Mapping):
        raise ConfigError(f"{where}.fixed: must map parameter names to values, got {fixed!r}")
    base = load_search_space(base_name)
    by_name = {p.name: p for p in base.params}
    pinned = {k: v for k, v in fixed.items() if k not in REDUCTION_PARAMS}
    reduce = {k: v for k, v in fixed.items() if k in REDUCTION_PARAMS}
    for key in pinned:
        if key not in by_name:
            takes = sorted(by_name) + list(REDUCTION_PARAMS)
            raise ConfigError(
                f"{where}.fixed.{key}: {base_name!r} has no parameter {key!r}; "
                f"it takes {', '.join(takes)}"
            )
    if (reduction == "tuned" or reduce) and not base.reduction:
        takes = [n for n in known if load_search_space(n).reduction]
        raise ConfigError(
            f"{where}: {base_name!r} declares no reduction range in its search space; "
            f"families that do: {', '.join(takes)}"
        )
    if reduction == "tuned" and reduce:
        raise ConfigError(
            f"{where}: reduction: tuned and a fixed {', '.join(reduce)} contradict each other; "
            "keep one"
        )
    for key, value in reduce.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{where}.fixed.{key}: must be an integer >= 1, got {value!r}")

    params: dict[str, Any] = {}
    defaults = dict(base.defaults)
    for p in base.params:
        if any(
            parent in pinned and not set(allowed) & {pinned[parent]}
            for parent, allowed in p.when.items()
        ):
            defaults.pop(p.name, None)  # its pinned parent switches it off for good
            continue
        params[p.name] = _pinned(p, pinned[p.name], where) if p.name in pinned else p.to_dict()
        if p.name in pinned:
            defaults[p.name] = pinned[p.name]
    if reduction == "tuned":
        params.update({p.name: p.to_dict() for p in base.reduction})
        defaults.update(base.reduction_defaults)
    for key, value in reduce.items():
        params[key] = {"type": "categorical", "choices": [value]}
        defaults[key] = value
    data = {
        "family": name,
        "of": base_name,
        "fixed": False,
        "defaults": defaults,
        "params": params,
    }
    try:
        return SearchSpace.from_dict(data, source=where)
    except SearchSpaceError as exc:  # a pinned value outside the base's space, etc.
        raise ConfigError(str(exc)) from None


def _pinned(param: Param, value: Any, where: str) -> dict[str, Any]:
    """A base parameter pinned to ``value``: a one-choice categorical, under the same condition;
    the value must be one the base's search space could have chosen."""
    if not param.contains(value):
        raise ConfigError(
            f"{where}.fixed.{param.name}: {value!r} lies outside its search space {param.to_dict()}"
        )
    out: dict[str, Any] = {"type": "categorical", "choices": [value]}
    if param.when:
        out["when"] = {k: list(v) for k, v in param.when.items()}
    return out
