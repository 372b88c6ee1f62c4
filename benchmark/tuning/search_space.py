"""Search spaces are data: ``search_spaces/<family>.yaml`` becomes Optuna distributions at load.

Validating the whole file when it is read (bounds, types, conditions, defaults) means a typo fails
in the first second of a benchmark with the file and the key named, not hours later inside a trial.
The file format::

    # one-line comment saying what the family is
    family: svm_poly          # must equal the file stem
    fixed: false              # true = a fixed baseline, not tuned (params must then be empty)
    defaults: {C: 1.0, degree: 3}   # enqueued as the first trial: tuning never loses to them
    params:                   # suggested in this order
      C: {type: float, low: 1.0e-3, high: 1.0e3, log: true}
      degree: {type: int, low: 2, high: 5}
      gamma: {type: categorical, choices: [scale, auto]}
      l1_ratio: {type: float, low: 0, high: 1, when: {penalty: elasticnet}}

``when`` makes a parameter conditional: it is suggested only when every named earlier categorical
parameter is active and has that value (or one of a list of values).

A family where a reduction can help declares its range too, as data that no study samples unless
a config asks for it (a ``family_variants`` entry with ``reduction: tuned``,
:mod:`benchmark.models._variants`)::

    reduction:                # PCA before the model, tuned only in a variant that asks
      defaults: {pca_components: 32}
      params:
        pca_components: {type: int, low: 4, high: 256, log: true}

A variant's space names the family whose builder it runs in ``of`` (absent: its own).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import BaseTrial

from benchmark.errors import ConfigError, SearchSpaceError
from benchmark.paths import project_root, search_spaces_dir

__all__ = ["REDUCTION_PARAMS", "Param", "SearchSpace", "load_search_space"]

_TOP_KEYS = {"family", "fixed", "defaults", "params", "reduction", "of"}
#: the parameters a reduction block may declare (what :mod:`benchmark.models._reduction` takes)
REDUCTION_PARAMS = ("pca_components",)
_KEYS_BY_TYPE = {
    "float": {"type", "low", "high", "log", "step", "when"},
    "int": {"type", "low", "high", "log", "step", "when"},
    "categorical": {"type", "choices", "when"},
}
_CHOICE_TYPES = (type(None), bool, int, float, str)

# Builds the error for one key: fail("params.C", "low must be < high, ...").
_Fail = Callable[[str, str], SearchSpaceError]


@dataclass(frozen=True)
class Param:
    """One parameter: its Optuna distribution and the condition under which it is active.

    Attributes:
        name: the key passed to the family's builder and stored in results.
        distribution: the Optuna distribution it is sampled from.
        when: parent parameter -> allowed values; all must hold for the parameter to be active.
    """

    name: str
    distribution: BaseDistribution
    when: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)

    def is_active(self, values: Mapping[str, Any]) -> bool:
        """Whether the condition holds for the values chosen so far (an absent parent: no)."""
        return all(
            parent in values and values[parent] in allowed for parent, allowed in self.when.items()
        )

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is a point of this parameter's space (``True`` is not ``1``)."""
        return _contains(self.distribution, value)

    def suggest(self, trial: BaseTrial) -> Any:
        """Ask ``trial`` for a value through the public ``suggest_*`` API."""
        d = self.distribution
        if isinstance(d, FloatDistribution):
            return trial.suggest_float(self.name, d.low, d.high, step=d.step, log=d.log)
        if isinstance(d, IntDistribution):
            return trial.suggest_int(self.name, d.low, d.high, step=d.step, log=d.log)
        assert isinstance(d, CategoricalDistribution)
        return trial.suggest_categorical(self.name, d.choices)

    def to_dict(self) -> dict[str, Any]:
        """The YAML form of this parameter (JSON-serializable, normalized)."""
        d = self.distribution
        out: dict[str, Any]
        if isinstance(d, CategoricalDistribution):
            out = {"type": "categorical", "choices": list(d.choices)}
        else:
            kind = "float" if isinstance(d, FloatDistribution) else "int"
            out = {"type": kind, "low": d.low, "high": d.high, "log": d.log}
            if d.step is not None and not (kind == "int" and d.step == 1):
                out["step"] = d.step
        if self.when:
            out["when"] = {p: v[0] if len(v) == 1 else list(v) for p, v in self.when.items()}
        return out


@dataclass(frozen=True)
class SearchSpace:
    """A validated search space of one family.

    Attributes:
        family: the family name (the file stem).
        fixed: a fixed baseline that is built once with ``{}``, never tuned.
        defaults: the first trial (the library's defaults unless the file says why not).
        params: the parameters, in suggestion order.
        source: where it came from, used in error messages.
        reduction: the declared reduction range (never sampled by this space itself).
        reduction_defaults: the reduction's first-trial values.
        of: the family whose builder a variant runs (None: ``family`` itself).
    """

    family: str
    fixed: bool
    defaults: dict[str, Any]
    params: tuple[Param, ...]
    source: str = "<dict>"
    reduction: tuple[Param, ...] = ()
    reduction_defaults: dict[str, Any] = field(default_factory=dict)
    of: str | None = None

    @classmethod
    def from_yaml(cls, path: str | Path) -> SearchSpace:
        """Read and validate ``path``; the family must equal the file stem."""
        path = Path(path)
        source = _display(path)
        try:
            data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
        except OSError as exc:
            raise SearchSpaceError(f"{source}: cannot read the file: {exc}") from exc
        except yaml.YAMLError as exc:
            raise SearchSpaceError(f"{source}: not valid YAML: {exc}") from exc
        space = cls.from_dict(data, source=source)
        if space.family != path.stem:
            raise SearchSpaceError(
                f"{source}: family: must equal the file stem {path.stem!r}, got {space.family!r}"
            )
        return space

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "<dict>") -> SearchSpace:
        """Validate the YAML form (also what :meth:`to_dict` returns) into a search space."""

        def fail(key: str, message: str) -> SearchSpaceError:
            return SearchSpaceError(f"{source}: {key}: {message}")

        if not isinstance(data, Mapping):
            raise SearchSpaceError(f"{source}: must be a mapping with keys {sorted(_TOP_KEYS)}")
        _reject_unknown(data, _TOP_KEYS, "", fail)
        family = data.get("family")
        if not isinstance(family, str) or not family:
            raise fail("family", f"must be the family name (a string), got {family!r}")
        fixed = data.get("fixed", False)
        if not isinstance(fixed, bool):
            raise fail("fixed", f"must be true or false, got {fixed!r}")
        raw_params = data.get("params") or {}
        if not isinstance(raw_params, Mapping):
            raise fail("params", f"must be a mapping name -> spec, got {raw_params!r}")
        if fixed and raw_params:
            raise fail("params", "a fixed family is not tuned: params must be empty")
        if not fixed and not raw_params:
            raise fail("params", "a tuned family needs at least one param (or set fixed: true)")

        params: list[Param] = []
        for name, spec in raw_params.items():
            params.append(_parse_param(name, spec, params, fail))

        defaults = data.get("defaults") or {}
        if not isinstance(defaults, Mapping):
            raise fail("defaults", f"must be a mapping name -> value, got {defaults!r}")
        of = data.get("of")
        if of is not None and (not isinstance(of, str) or not of):
            raise fail("of", f"must be a family name (a string), got {of!r}")
        reduction, reduction_defaults = _parse_reduction(data.get("reduction"), fail)
        space = cls(
            family,
            fixed,
            dict(defaults),
            tuple(params),
            source,
            reduction,
            reduction_defaults,
            of,
        )
        space._check_defaults(fail)
        return space._with_canonical_defaults()

    def _check_defaults(self, fail: _Fail) -> None:
        by_name = {p.name: p for p in self.params}
        for name, value in self.defaults.items():
            if name not in by_name:
                raise fail(f"defaults.{name}", f"is not a param; params are {sorted(by_name)}")
            if not _contains(by_name[name].distribution, value):
                raise fail(
                    f"defaults.{name}",
                    f"{value!r} lies outside the space {by_name[name].to_dict()}",
                )
        active: dict[str, Any] = {}
        for p in self.params:
            if p.is_active(active):
                if p.name not in self.defaults:
                    raise fail(
                        f"defaults.{p.name}",
                        "missing: every param active under the "
                        "defaults needs a default, so the first trial is the defaults",
                    )
                active[p.name] = self.defaults[p.name]

    def _with_canonical_defaults(self) -> SearchSpace:
        """Defaults as Optuna will report them: ``1`` → ``1.0`` for a float param or a choice."""
        by_name = {p.name: p.distribution for p in self.params}
        canonical = {}
        for name, value in self.defaults.items():
            d = by_name[name]
            if isinstance(d, FloatDistribution):
                value = float(value)
            elif isinstance(d, CategoricalDistribution):
                index = _choice_index(d, value)
                assert index is not None  # _check_defaults ran first
                value = d.choices[index]
            canonical[name] = value
        return replace(self, defaults=canonical)

    @property
    def distributions(self) -> dict[str, BaseDistribution]:
        """Every parameter's distribution, conditional ones included, in order."""
        return {p.name: p.distribution for p in self.params}

    def active(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` restricted to the parameters active under their conditions, in order."""
        out: dict[str, Any] = {}
        for p in self.params:
            if p.name in values and p.is_active(out):
                out[p.name] = values[p.name]
        return out

    def suggest(self, trial: BaseTrial) -> dict[str, Any]:
        """Suggest every active parameter in file order; inactive ones are never asked for.

        Any Optuna trial works: a study's ``Trial``, or a ``FixedTrial(params)`` to rebuild
        the parameters of a finished trial.
        """
        values: dict[str, Any] = {}
        for p in self.params:
            if p.is_active(values):
                values[p.name] = p.suggest(trial)
        return values

    def defaults_for_trial(self) -> dict[str, Any]:
        """The defaults that are active, ready for ``study.enqueue_trial``."""
        return self.active(self.defaults)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable form of what a study samples, stored with results;
        :meth:`from_dict` reads it back.

        The declared reduction range is left out: no study of this space samples it (a
        variant that asks for it carries it in its own ``params``), so a family's stored space
        is the same whether or not its file declares one.
        """
        out = {
            "family": self.family,
            "fixed": self.fixed,
            "defaults": dict(self.defaults),
            "params": {p.name: p.to_dict() for p in self.params},
        }
        if self.of is not None:
            out["of"] = self.of
        return out


def load_search_space(family_name: str) -> SearchSpace:
    """Load ``search_spaces/<family_name>.yaml`` from the project's search-space folder."""
    folder = search_spaces_dir()
    path = folder / f"{family_name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.yaml"))
        raise SearchSpaceError(
            f"no search space for family {family_name!r}: {_display(path)} does not exist "
            f"(known: {', '.join(known)})"
        )
    return SearchSpace.from_yaml(path)


# --- parsing helpers --------------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys and reads ``1e-3`` as a number.

    Plain PyYAML silently keeps the last of two equal keys, and follows YAML 1.1, where a float
    needs a dot and a signed exponent (``1e-3`` and ``1.0e2`` are strings); YAML 1.2 and every
    reader's eye take them as numbers.
    """


_UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.VERBOSE,
    ),
    list("-+0123456789."),
)


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping
)


def _display(path: Path) -> str:
    """The path as users see it: relative to the project root when inside it."""
    try:
        return path.resolve().relative_to(project_root().resolve()).as_posix()
    except (ValueError, ConfigError):
        return str(path)


def _reject_unknown(spec: Mapping, allowed: set[str], prefix: str, fail: _Fail) -> None:
    unknown = sorted(str(k) for k in spec if k not in allowed)
    if unknown:
        raise fail(f"{prefix}{unknown[0]}", f"unknown key; allowed keys are {sorted(allowed)}")


def _number(value: Any, key: str, fail: _Fail, *, integer: bool) -> int | float:
    """Check a bound or step (booleans are not numbers, though Python says they are ints)."""
    if integer:
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail(key, f"must be an integer, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise fail(key, f"must be a number, got {value!r}")
    if not math.isfinite(value):
        raise fail(key, f"must be finite, got {value!r}")
    return float(value)


def _parse_param(name: Any, spec: Any, earlier: list[Param], fail: _Fail) -> Param:
    key = f"params.{name}"
    if not isinstance(name, str) or not name.isidentifier():
        raise fail(key, "a param name must be an identifier (letters, digits, underscores)")
    if not isinstance(spec, Mapping):
        raise fail(key, f"must be a mapping with a 'type', got {spec!r}")
    kind = spec.get("type")
    if kind not in _KEYS_BY_TYPE:
        raise fail(f"{key}.type", f"must be one of {sorted(_KEYS_BY_TYPE)}, got {kind!r}")
    _reject_unknown(spec, _KEYS_BY_TYPE[kind], f"{key}.", fail)

    distribution: BaseDistribution
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise fail(f"{key}.choices", f"must be a non-empty list, got {choices!r}")
        for choice in choices:
            if not isinstance(choice, _CHOICE_TYPES):
                raise fail(
                    f"{key}.choices",
                    f"must hold null, booleans, numbers or strings, got {choice!r}",
                )
        if len({(type(c), c) for c in choices}) != len(choices):
            raise fail(f"{key}.choices", f"must not repeat a value, got {choices!r}")
        distribution = CategoricalDistribution(choices)
    else:
        integer = kind == "int"
        for bound in ("low", "high"):
            if bound not in spec:
                raise fail(f"{key}.{bound}", "missing")
        low = _number(spec["low"], f"{key}.low", fail, integer=integer)
        high = _number(spec["high"], f"{key}.high", fail, integer=integer)
        log = spec.get("log", False)
        if not isinstance(log, bool):
            raise fail(f"{key}.log", f"must be true or false, got {log!r}")
        step = spec.get("step")
        if step is not None:
            step = _number(step, f"{key}.step", fail, integer=integer)
        if not low < high:
            raise fail(key, f"low must be < high, got low={spec['low']}, high={spec['high']}")
        if log and low <= 0:
            raise fail(key, f"log: true needs low > 0, got low={spec['low']}")
        if step is not None:
            if step <= 0:
                raise fail(f"{key}.step", f"must be > 0, got {step}")
            if log and not (integer and step == 1):
                raise fail(key, "log and step cannot be combined")
            n_steps = (high - low) / step
            if abs(n_steps - round(n_steps)) > 1e-8:
                raise fail(
                    key,
                    f"high - low must be a multiple of step, got low={low}, "
                    f"high={high}, step={step}",
                )
        try:
            if integer:
                distribution = IntDistribution(int(low), int(high), log=log, step=int(step or 1))
            else:
                distribution = FloatDistribution(low, high, log=log, step=step)
        except ValueError as exc:  # an invariant Optuna checks that we did not
            raise fail(key, str(exc)) from exc

    return Param(name, distribution, _parse_when(spec.get("when"), key, earlier, fail))


def _parse_reduction(block: Any, fail: _Fail) -> tuple[tuple[Param, ...], dict[str, Any]]:
    """The declared reduction range: ``{defaults: {...}, params: {...}}`` over
    :data:`REDUCTION_PARAMS`, unconditional, every one with a default."""
    if block is None:
        return (), {}
    if not isinstance(block, Mapping):
        raise fail("reduction", f"must be a mapping with defaults and params, got {block!r}")
    _reject_unknown(block, {"defaults", "params"}, "reduction.", fail)
    raw = block.get("params")
    if not isinstance(raw, Mapping) or not raw:
        raise fail("reduction.params", f"must map {list(REDUCTION_PARAMS)} to specs, got {raw!r}")
    _reject_unknown(raw, set(REDUCTION_PARAMS), "reduction.params.", fail)
    params: list[Param] = []
    for name, spec in raw.items():
        if isinstance(spec, Mapping) and "when" in spec:
            raise fail(f"reduction.params.{name}.when", "a reduction param is unconditional")
        params.append(_parse_param(name, spec, params, lambda k, m: fail(f"reduction.{k}", m)))
    defaults = block.get("defaults") or {}
    if not isinstance(defaults, Mapping):
        raise fail("reduction.defaults", f"must be a mapping name -> value, got {defaults!r}")
    for p in params:
        if p.name not in defaults:
            raise fail(f"reduction.defaults.{p.name}", "missing: the first trial needs it")
        if not _contains(p.distribution, defaults[p.name]):
            raise fail(
                f"reduction.defaults.{p.name}",
                f"{defaults[p.name]!r} lies outside the space {p.to_dict()}",
            )
    extra = sorted(set(defaults) - {p.name for p in params})
    if extra:
        raise fail(f"reduction.defaults.{extra[0]}", "is not a reduction param")
    return tuple(params), dict(defaults)


def _parse_when(
    when: Any, key: str, earlier: list[Param], fail: _Fail
) -> dict[str, tuple[Any, ...]]:
    if when is None:
        return {}
    if not isinstance(when, Mapping) or not when:
        raise fail(f"{key}.when", f"must map an earlier param to a value, got {when!r}")
    by_name = {p.name: p for p in earlier}
    parsed: dict[str, tuple[Any, ...]] = {}
    for parent, value in when.items():
        where = f"{key}.when.{parent}"
        if parent not in by_name:
            raise fail(where, f"must name an earlier param; earlier params are {sorted(by_name)}")
        dist = by_name[parent].distribution
        if not isinstance(dist, CategoricalDistribution):
            raise fail(where, "must name a categorical param")
        allowed = tuple(value) if isinstance(value, list) else (value,)
        if not allowed:
            raise fail(where, "must list at least one value")
        for v in allowed:
            if not _contains(dist, v):
                raise fail(where, f"{v!r} is not one of its choices {list(dist.choices)}")
        parsed[parent] = allowed
    return parsed


def _choice_index(distribution: CategoricalDistribution, value: Any) -> int | None:
    """Index of the choice equal to ``value``; booleans only match booleans (Python: True == 1)."""
    for i, choice in enumerate(distribution.choices):
        if isinstance(choice, bool) == isinstance(value, bool) and choice == value:
            return i
    return None


def _contains(distribution: BaseDistribution, value: Any) -> bool:
    """Whether ``value`` is a point of ``distribution`` (``True`` is not ``1`` here)."""
    if isinstance(distribution, CategoricalDistribution):
        return _choice_index(distribution, value) is not None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(distribution, IntDistribution) and not isinstance(value, int):
        return False
    low, high, step = distribution.low, distribution.high, distribution.step
    if not low <= value <= high:
        return False
    if step is None:
        return True
    n_steps = (value - low) / step
    return abs(n_steps - round(n_steps)) < 1e-8
