"""Benchmark configurations: which feature sets × families × protocols, with which budgets.

Configs are YAML files in ``configs/`` (``quick``, ``full``); ``extends: <name>`` starts from
another config. Every key and its default is documented in :data:`DEFAULTS`. A config is
validated when loaded, so a typo fails before any work starts, naming the file and the key.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from benchmark.errors import ConfigError
from benchmark.paths import configs_dir

if TYPE_CHECKING:
    from benchmark.ensembles import EnsembleSettings
    from benchmark.features.base import FeatureSet
    from benchmark.models import Family
    from benchmark.tuning.search_space import SearchSpace

__all__ = ["BenchmarkConfig", "DEFAULTS", "config_from_dict", "load_config"]

#: Every config key, its default, and why it exists.
DEFAULTS: dict[str, Any] = {
    # name of the benchmark: the MLflow experiment, the results sub-folder, the study prefix
    "name": None,
    # one line saying what this benchmark is for
    "description": "",
    # the one seed every random choice derives from (splits, samplers, models)
    "seed": 0,
    # a second seed for the hyperparameter search alone (the samplers; null: seed): another
    # value runs the same folds and models with another search, which measures how much a
    # ranking owes to the search's luck rather than to the folds
    "search_seed": None,
    # dataset manifest in datasets/ (layout, classes, schema)
    "dataset": "gtzan",
    # which tracks the benchmark runs on: all (every track found) | with_audio (only the tracks
    # that have an audio file, so CSV and audio feature sets are compared on the same clips)
    "tracks": "all",
    # feature sets to run (names from benchmark/features); unavailable ones become skip rows
    "feature_sets": ["csv_30s"],
    # extra parameters per feature set, e.g. {spectrogram_img: {height: 128}}
    "feature_params": {},
    # more feature sets made of a registered one with other parameters, so two settings of one
    # set run side by side on the same folds: {embedding_musicnn_max_pool: {of:
    # embedding_musicnn, layer: max_pool}}. Each name is then a feature set like any other in
    # feature_sets, feature_params (added to the variant's own), the baseline, the results and
    # the exported model; it never inherits its base's feature_params
    "feature_variants": {},
    # model families (names from benchmark/models, or of family_variants) or "all"; a family
    # runs on every feature set that offers the input kind it consumes
    "families": "all",
    # new family names for a registered family with a reduction or pinned params, usable in
    # families and baseline: {svm_rbf_pca: {of: svm_rbf, reduction: tuned},
    # svm_rbf_pca128: {of: svm_rbf, fixed: {pca_components: 128}}}. reduction: none | tuned
    # (PCA, components tuned over the range search_spaces/<of>.yaml declares); none by default,
    # so no study gets a reduction unless its config names one (benchmark/models/_variants.py)
    "family_variants": {},
    # outer protocols and their folds: {artist_kfold: {n_folds: 10}, fault_filtered: {}}
    "protocols": {"artist_kfold": {"n_folds": 10}, "fault_filtered": {}},
    # folds of the inner (tuning) cross-validation inside each outer training part
    "inner_folds": 3,
    # Optuna trials per study (one study per feature set × family × protocol × outer fold);
    # 0 tunes nothing: each family fits its search space's defaults (an untuned reference,
    # no inner CV, so a costly network trains once per outer fold)
    "n_trials": 20,
    # seconds per study; the study stops at whichever budget ends first (null: no limit).
    # A time budget makes results depend on machine speed: prefer trials for reproducibility.
    "timeout_s": None,
    # parallel worker processes over studies (each study runs single-threaded)
    "n_jobs": 1,
    # the reference pair every other pair is compared with
    "baseline": {"feature_set": "csv_30s", "family": "seed_mlp"},
    # the ensemble stage over the tuned pairs (benchmark/ensembles), per protocol and outer
    # fold, learnt from inner out-of-fold predictions only; false turns it off. Keys: methods
    # (greedy, stacking, top_k), size (greedy steps), metric (log_loss | accuracy), top_k,
    # min_coverage (a pair joins a fold's pool if its inner predictions cover this share of
    # the best-covered pair's training tracks). Not part of the digest: ensembles change no
    # pair's result and are recomputed from the results files.
    "ensembles": {"methods": ["greedy", "stacking", "top_k"], "size": 25, "top_k": 5},
    # a wall-clock budget for the whole run: "2h", "45m", "1h30m" or seconds (null: none). The
    # run plans every study's trials to fit it (benchmark/execution/time_budget.py) and starts
    # no work after it. Not part of the digest: a rerun with a larger budget continues the same
    # studies
    "budget": None,
    # trials per tuned parameter of a family's search space, capped by n_trials (null: every
    # family gets n_trials): LDA's 2 parameters need far fewer trials than LightGBM's 7
    "trials_per_param": None,
    # racing across pairs on the k-fold protocols (benchmark/execution/racing.py): {alpha,
    # min_folds, test: ttest | friedman} or true for {alpha: 0.05, min_folds: 4, test: ttest};
    # false: every pair gets every fold. A pair a test shows worse than the leader keeps its rows
    # and gets no more folds. Not in the digest: it changes no fold's result, only which folds run
    "racing": False,
    # how hopeless trials stop early: median | successive_halving | hyperband | none
    "pruner": "median",
}

#: keys added after digests were first stored: left out of the digest while at these values,
#: so a config that does not use them keeps its digest (and its studies)
_DIGEST_SINCE: dict[str, Any] = {
    "trials_per_param": None,
    "pruner": "median",
    "search_seed": None,
    "tracks": "all",
    "family_variants": {},
    "feature_variants": {},
}


def _default(key: str) -> Any:
    """The dataclass default of config key ``key``: :data:`DEFAULTS`' value (a list as a tuple,
    a mapping as a fresh copy per config), so the defaults are written once."""
    value = DEFAULTS[key]
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, dict):
        return field(default_factory=lambda: copy.deepcopy(value))
    return value


@dataclass(frozen=True)
class BenchmarkConfig:
    """A validated benchmark config (see :data:`DEFAULTS` for the meaning and default of each
    field: every default below is read from there)."""

    name: str
    description: str = _default("description")
    seed: int = _default("seed")
    search_seed: int | None = _default("search_seed")
    dataset: str = _default("dataset")
    tracks: str = _default("tracks")
    feature_sets: tuple[str, ...] = _default("feature_sets")
    feature_params: dict[str, dict[str, Any]] = _default("feature_params")
    feature_variants: dict[str, dict[str, Any]] = _default("feature_variants")
    families: tuple[str, ...] | str = _default("families")
    family_variants: dict[str, dict[str, Any]] = _default("family_variants")
    protocols: dict[str, dict[str, Any]] = _default("protocols")
    inner_folds: int = _default("inner_folds")
    n_trials: int = _default("n_trials")  # 0: no tuning, fit each search space's defaults
    timeout_s: float | None = _default("timeout_s")
    n_jobs: int = _default("n_jobs")
    baseline: dict[str, str] = _default("baseline")
    ensembles: dict[str, Any] | bool | None = _default("ensembles")
    budget: str | float | None = _default("budget")
    trials_per_param: int | None = _default("trials_per_param")
    racing: dict[str, Any] | bool | None = _default("racing")
    pruner: str = _default("pruner")

    def budget_seconds(self) -> float | None:
        return parse_duration(self.budget)

    def racing_settings(self) -> Any:
        """The racing settings (:class:`RacingSettings`), None when off."""
        return RacingSettings.from_config(self.racing, source=f"config {self.name!r}")

    def trials_for(self, family: str) -> int:
        """The trials of each study of ``family``: ``n_trials``, or ``trials_per_param`` per
        tuned parameter of its search space when that is fewer."""
        if self.trials_per_param is None or self.n_trials == 0:
            return self.n_trials
        n_params = len(self.search_space(family).params)
        return min(self.n_trials, max(1, self.trials_per_param * n_params))

    def search_space(self, family: str) -> SearchSpace:
        """``family``'s search space: its file's, or a variant's (its base's, changed)."""
        spec = self.family_variants.get(family)
        if spec is None:
            from benchmark.tuning.search_space import load_search_space

            return load_search_space(family)
        from benchmark.models._variants import variant_space

        return variant_space(family, spec, source=f"config {self.name!r}")

    def model_family(self, name: str) -> Family:
        """The family ``name`` names in this config: a registered one or a variant of one."""
        from benchmark.models import resolve_family

        spec = self.family_variants.get(name)
        return resolve_family(name, None if spec is None else spec["of"])

    def ensemble_settings(self) -> EnsembleSettings | None:
        """The ensemble stage's settings (None: no ensembles)."""
        from benchmark.ensembles import EnsembleSettings

        return EnsembleSettings.from_config(self.ensembles, source=f"config {self.name!r}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["feature_sets"] = list(self.feature_sets)
        if not isinstance(self.families, str):
            d["families"] = list(self.families)
        return d

    def digest(self) -> str:
        """Hash of everything that changes results (not n_jobs): stored with results so a
        changed config is never silently mixed with old rows."""
        d = self.to_dict()
        d.pop("n_jobs")
        d.pop("description")
        d.pop("ensembles")
        d.pop("budget")
        d.pop("racing")
        for key, since in _DIGEST_SINCE.items():
            if d[key] == since:
                d.pop(key)
        # how many processes extract features changes no value either
        d["feature_params"] = {
            fs: {k: v for k, v in params.items() if k != "n_jobs"}
            for fs, params in d["feature_params"].items()
        }
        if "feature_variants" in d:
            d["feature_variants"] = {
                fs: {k: v for k, v in spec.items() if k != "n_jobs"}
                for fs, spec in d["feature_variants"].items()
            }
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]

    def feature_class(self, name: str) -> type[FeatureSet]:
        """The registered feature set class that computes ``name`` (a registered set, or the
        base of one of this config's feature variants)."""
        from benchmark.features import all_feature_sets

        known = all_feature_sets()
        variant = self.feature_variants.get(name)
        base = str(variant["of"]) if variant is not None else name
        if base not in known:
            names = [*known, *self.feature_variants]
            raise ConfigError(
                f"config {self.name!r}: unknown feature set {name!r}; known: {', '.join(names)}"
            )
        return known[base]

    def feature_params_of(self, name: str) -> dict[str, Any]:
        """The parameters feature set ``name`` runs with: a variant's own, then its
        ``feature_params`` entry (which win)."""
        own = {k: v for k, v in self.feature_variants.get(name, {}).items() if k != "of"}
        return {**own, **self.feature_params.get(name, {})}

    def feature_of(self, name: str) -> str | None:
        """The registered set a feature variant is made of; None for a registered set."""
        variant = self.feature_variants.get(name)
        return None if variant is None else str(variant["of"])

    def family_names(self) -> list[str]:
        """The families this config runs: ``all`` is every registered one, then its variants."""
        from benchmark.models import all_families

        known = [*all_families(), *self.family_variants]
        if self.families == "all":
            return known
        unknown = [f for f in self.families if f not in known]
        if unknown:
            raise ConfigError(
                f"config {self.name!r}: unknown family {unknown[0]!r}; known: {', '.join(known)}"
            )
        return list(self.families)

    def with_overrides(self, **overrides: Any) -> BenchmarkConfig:
        """A copy with CLI overrides applied (``None`` values are ignored) and re-validated."""
        changes = {k: v for k, v in overrides.items() if v is not None}
        unknown = sorted(set(changes) - set(DEFAULTS))
        if unknown:
            raise ConfigError(
                f"command line: unknown config key(s) {', '.join(unknown)}; "
                f"known: {', '.join(DEFAULTS)}"
            )
        if isinstance(changes.get("feature_sets"), str):
            changes["feature_sets"] = [changes["feature_sets"]]
        if isinstance(changes.get("families"), str) and changes["families"] != "all":
            changes["families"] = [changes["families"]]
        if "protocols" in changes and isinstance(changes["protocols"], (list, tuple)):
            changes["protocols"] = {p: self.protocols.get(p, {}) for p in changes["protocols"]}
        for key in ("feature_sets", "families"):
            if key in changes and isinstance(changes[key], list):
                changes[key] = tuple(changes[key])
        cfg = replace(self, **changes)
        _validate(cfg, source="command line")
        return cfg


def _validate(cfg: BenchmarkConfig, source: str) -> None:
    from benchmark.features import all_feature_sets
    from benchmark.features.params import check_feature_params, check_feature_variants
    from benchmark.protocols import all_protocols, check_params

    known_fs = all_feature_sets()
    check_feature_variants(cfg.feature_variants, known_fs, source)
    names = [*known_fs, *cfg.feature_variants]
    for fs in cfg.feature_sets:
        if fs not in names:
            raise ConfigError(f"{source}: unknown feature set {fs!r}; known: {', '.join(names)}")
    for fs, params in cfg.feature_params.items():
        if fs not in names:
            raise ConfigError(
                f"{source}: feature_params names unknown feature set {fs!r}; "
                f"known: {', '.join(names)}"
            )
        if fs in cfg.feature_variants:
            if not isinstance(params, dict):
                raise ConfigError(
                    f"{source}: feature_params.{fs} must map parameter names to values, "
                    f"got {params!r}"
                )
            where = f"{source}: feature_params.{fs} (with feature_variants.{fs})"
            check_feature_params(cfg.feature_class(fs), cfg.feature_params_of(fs), where, name=fs)
        else:
            check_feature_params(known_fs[fs], params, f"{source}: feature_params.{fs}")
    known_protocols = all_protocols()
    for p, opts in cfg.protocols.items():
        if p not in known_protocols:
            raise ConfigError(
                f"{source}: unknown protocol {p!r}; known: {', '.join(known_protocols)}"
            )
        check_params(p, opts, source=f"{source}: protocols")
    if not cfg.protocols:
        raise ConfigError(f"{source}: no protocols")
    from benchmark.models._variants import check_variants

    check_variants(cfg.family_variants, source)
    if isinstance(cfg.families, str):
        if cfg.families != "all":
            raise ConfigError(f"{source}: families must be a list or 'all', got {cfg.families!r}")
    else:
        from benchmark.models import all_families

        known = [*all_families(), *cfg.family_variants]
        unknown = [f for f in cfg.families if f not in known]
        if unknown:
            raise ConfigError(f"{source}: unknown family {unknown[0]!r}; known: {', '.join(known)}")
    # (key, lowest value, whether null is allowed)
    for key, low, nullable in (
        ("seed", 0, False),
        ("inner_folds", 2, False),
        ("n_trials", 0, False),
        ("n_jobs", 1, False),
        ("search_seed", 0, True),
        ("trials_per_param", 1, True),
    ):
        value = getattr(cfg, key)
        if nullable and value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            null = " or null" if nullable else ""
            raise ConfigError(f"{source}: {key} must be an integer >= {low}{null}, got {value!r}")
    if cfg.timeout_s is not None and not (
        isinstance(cfg.timeout_s, (int, float))
        and not isinstance(cfg.timeout_s, bool)
        and cfg.timeout_s > 0
    ):
        raise ConfigError(f"{source}: timeout_s must be a positive number, got {cfg.timeout_s!r}")
    if cfg.budget is not None:
        try:
            parse_duration(cfg.budget)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
    from benchmark.tuning.objective import PRUNERS

    RacingSettings.from_config(cfg.racing, source=source)
    from benchmark.data.dataset import TRACK_SUBSETS

    if cfg.tracks not in TRACK_SUBSETS:
        raise ConfigError(
            f"{source}: unknown tracks {cfg.tracks!r}; known: {', '.join(TRACK_SUBSETS)}"
        )
    if cfg.pruner not in PRUNERS:
        raise ConfigError(f"{source}: unknown pruner {cfg.pruner!r}; known: {', '.join(PRUNERS)}")
    if cfg.ensembles not in (None, False):
        from benchmark.ensembles import EnsembleSettings

        EnsembleSettings.from_config(cfg.ensembles, source=source)
    if set(cfg.baseline) != {"feature_set", "family"}:
        raise ConfigError(f"{source}: baseline needs feature_set and family, got {cfg.baseline!r}")


def _resolve(name_or_path: str, near: Path | None) -> Path:
    """A config name (``quick``) or path (``my.yaml``). ``extends`` in a config file looks next
    to that file first, then in ``configs/``, so a folder of user configs can extend each other
    and the shipped presets alike."""
    path = Path(name_or_path).expanduser()
    candidates = [path] if path.suffix else []
    if near is not None and not path.is_absolute():
        candidates.insert(0, near / (path if path.suffix else f"{name_or_path}.yaml"))
    if not path.suffix:
        candidates.append(configs_dir() / f"{name_or_path}.yaml")
    return next((c for c in candidates if c.exists()), candidates[-1])


def _read(
    name_or_path: str, seen: tuple[Path, ...] = (), near: Path | None = None
) -> tuple[dict[str, Any], Path]:
    path = _resolve(str(name_or_path), near)
    if not path.exists():
        known = sorted(p.stem for p in configs_dir().glob("*.yaml"))
        raise ConfigError(f"unknown config {name_or_path!r}; known: {', '.join(known)}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: must be a mapping of keys to values")
    parent = raw.pop("extends", None)
    if parent:
        chain = (*seen, path.resolve())
        if _resolve(str(parent), path.parent).resolve() in chain:
            names = " -> ".join(p.stem for p in chain)
            raise ConfigError(f"{path}: circular extends ({names} -> {parent})")
        base, _ = _read(parent, chain, near=path.parent)
        base.pop("name", None)
        base.update(raw)
        raw = base
    return raw, path


def load_config(name_or_path: str) -> BenchmarkConfig:
    """Load ``configs/<name>.yaml`` (or a path), apply ``extends`` and :data:`DEFAULTS`."""
    raw, path = _read(name_or_path)
    raw.setdefault("name", None)
    raw["name"] = raw["name"] or path.stem
    return config_from_dict(raw, source=str(path))


def config_from_dict(raw: dict[str, Any], *, source: str) -> BenchmarkConfig:
    """A validated config from its mapping form (a YAML file's keys, or a run's ``run.json``
    ``config``, which is :meth:`BenchmarkConfig.to_dict`); ``source`` names it in errors."""
    unknown = set(raw) - set(DEFAULTS)
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(DEFAULTS)}"
        )
    merged = {**DEFAULTS, **raw}
    if not merged["name"]:
        raise ConfigError(f"{source}: a config needs a name")
    if isinstance(merged["feature_sets"], str):
        merged["feature_sets"] = [merged["feature_sets"]]
    merged["feature_sets"] = tuple(merged["feature_sets"] or ())
    if not isinstance(merged["families"], str):
        merged["families"] = tuple(merged["families"])
    elif merged["families"] != "all":
        raise ConfigError(f"{source}: families must be a list or 'all', got {merged['families']!r}")
    protocols = merged["protocols"] or {}
    if isinstance(protocols, str):
        protocols = [protocols]
    if isinstance(protocols, list):  # [artist_kfold, fault_filtered]: default options
        protocols = {p: {} for p in protocols}
    if not isinstance(protocols, dict) or not all(
        isinstance(v, dict) or v is None for v in protocols.values()
    ):
        raise ConfigError(
            f"{source}: protocols must map names to options, e.g. "
            f"{{artist_kfold: {{n_folds: 10}}}}, got {merged['protocols']!r}"
        )
    merged["protocols"] = {k: dict(v or {}) for k, v in protocols.items()}
    feature_params = merged["feature_params"] or {}
    if not isinstance(feature_params, dict):
        raise ConfigError(
            f"{source}: feature_params must map feature sets to parameters, e.g. "
            f"{{logmel: {{n_mels: 64}}}}, got {merged['feature_params']!r}"
        )
    # `csv_30s:` with nothing under it: no parameters
    merged["feature_params"] = {k: {} if v is None else v for k, v in feature_params.items()}
    if merged["family_variants"] is None:
        merged["family_variants"] = {}
    if merged["feature_variants"] is None:
        merged["feature_variants"] = {}
    cfg = BenchmarkConfig(**merged)
    _validate(cfg, source=source)
    return cfg


# ------------------------------------------------------------- durations and racing settings

_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([dhms])")


def parse_duration(value: str | float | int | None) -> float | None:
    """Seconds of ``2h``, ``45m``, ``1h30m``, ``90s``, or a number of seconds; None stays None."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ConfigError(f"budget must be a duration like 2h or 45m, got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip().lower().replace(" ", "")
        if re.fullmatch(r"\d+(\.\d+)?", text):
            seconds = float(text)
        elif text and _PART.sub("", text) == "":
            seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))
        else:
            raise ConfigError(
                f"budget must be a duration like 2h, 45m, 1h30m or 90s, got {value!r}"
            )
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"budget must be a positive duration, got {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.0f} s"


#: racing test -> how an elimination message names it
RACING_TESTS = {
    "ttest": "corrected t-test, one-sided",
    "friedman": "Conover post-hoc, one-sided",
}


_RACING_KEYS = ("alpha", "min_folds", "test")


@dataclass(frozen=True)
class RacingSettings:
    """``racing:`` in a config: ``{alpha: 0.05, min_folds: 4, test: ttest}``; false or absent:
    no racing. Four folds at least: a t-test on three has 2 degrees of freedom, and three
    nearly equal differences then make a good pair look hopeless (benchmarks/racing_replay.py
    saw the 7th of 24 dropped so)."""

    alpha: float = 0.05
    min_folds: int = 4
    test: str = "ttest"

    @classmethod
    def from_config(cls, raw: Any, source: str) -> RacingSettings | None:
        if raw in (None, False):
            return None
        if raw is True:
            return cls()
        if not isinstance(raw, Mapping):
            raise ConfigError(
                f"{source}: racing must be false, true or {{{', '.join(_RACING_KEYS)}}}"
            )
        unknown = sorted(set(raw) - set(_RACING_KEYS))
        if unknown:
            raise ConfigError(
                f"{source}: racing: unknown key(s) {', '.join(unknown)}; "
                f"known: {', '.join(_RACING_KEYS)}"
            )
        out = cls(**dict(raw))
        if not (isinstance(out.alpha, float | int) and 0 < out.alpha < 1):
            raise ConfigError(f"{source}: racing.alpha must lie in (0, 1), got {out.alpha!r}")
        if not (isinstance(out.min_folds, int) and out.min_folds >= 2):
            raise ConfigError(
                f"{source}: racing.min_folds must be an integer >= 2, got {out.min_folds!r}"
            )
        if out.test not in RACING_TESTS:
            raise ConfigError(
                f"{source}: racing.test must be one of {', '.join(RACING_TESTS)}, got {out.test!r}"
            )
        return out
