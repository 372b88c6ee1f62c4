"""The plan of a benchmark: every (pair, protocol, outer fold) job, built once from a config.

``genrebench run``, every ``genrebench worker`` and the final-model export build their work
here, so they agree on the jobs, their study names and their splits. The plan opens the
dataset's splits once per protocol (every pair is scored on the same folds), loads each
feature set through its cache and makes one :class:`~benchmark.tuning.job.FoldJob` per job;
:func:`provenance` is what every run stores about itself. This is the one module of the
execution wing that stages outside it may import.
"""

from __future__ import annotations

import logging
import platform
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import benchmark
from benchmark.config import BenchmarkConfig
from benchmark.data import Dataset
from benchmark.errors import GenrebenchError
from benchmark.features import FeatureMatrix, FeatureSet, all_feature_sets, get_feature_set
from benchmark.features.audio_base import AudioFeatureSet
from benchmark.features.extraction_cost import (
    ExtractionEstimate,
    extraction_estimate,
    placeholder_matrix,
)
from benchmark.paths import code_digest, project_root
from benchmark.protocols import OuterSplit, Protocol, get_protocol, splits_table
from benchmark.results import (
    FEATURE_CACHE_DIR,
    FoldOutcome,
    PairKey,
)
from benchmark.tuning.job import FoldJob, derive_seed, study_name

__all__ = [
    "Plan",
    "RunOptions",
    "feature_set_of",
    "fold_job",
    "make_plan",
    "provenance",
    "tracker_tags",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOptions:
    """Where a run reads and writes (not part of the config: they do not change results)."""

    data_dir: str | None = None
    results_root: Path = Path("results")
    storage_url: str | None = None
    tracking_uri: str | None = None
    fail_fast: bool = False
    track: bool = True  # log to MLflow
    #: the Dask scheduler the fold jobs run on (``tcp://``/``tls://``; None: a LocalCluster)
    scheduler: str | None = None


def tracker_tags(cfg: BenchmarkConfig, prov: dict[str, Any]) -> dict[str, str]:
    """The tags of every MLflow run of a benchmark, from its provenance (so ``run`` and every
    worker tag alike)."""
    tags = {
        "seed": str(cfg.seed),
        "config_digest": prov["config_digest"],
        "data_checksum": prov["data_checksum"],
        "git_commit": prov["git_commit"],
        "dataset": cfg.dataset,
        "genrebench_version": benchmark.__version__,
    }
    if cfg.search_seed is not None:
        tags["search_seed"] = str(cfg.search_seed)
    return tags


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(project_root()), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError, GenrebenchError):
        return "unknown"


def provenance(cfg: BenchmarkConfig, dataset: Dataset) -> dict[str, Any]:
    return {
        "benchmark": cfg.name,
        "config": cfg.to_dict(),
        "config_digest": cfg.digest(),
        "seed": cfg.seed,
        "dataset": cfg.dataset,
        "data_dir": str(dataset.root),
        "data_checksum": dataset.checksum(),
        "n_tracks": len(dataset.tracks),
        "versions": benchmark.package_versions(),
        "git_commit": _git_commit(),
        "code_digest": code_digest(),
        "host": platform.node(),
    }


@dataclass
class Plan:
    """Every job of a benchmark (one per pair, protocol and outer fold), the pairs skipped
    with their reason, every split, and the protocols: what ``run``, ``worker`` and the
    final-model export build their work from."""

    jobs: list[FoldJob]
    skipped: list[FoldOutcome]
    splits: pd.DataFrame
    protocols: dict[str, Protocol]
    #: per (audio feature set, input kind): the clips it reads and what extracting them costs
    #: (filled by a plan made with ``extract=False``, the dry run's)
    extraction: list[ExtractionEstimate] = field(default_factory=list)


def _pairs_for(cfg: BenchmarkConfig) -> list[tuple[str, str]]:
    """(feature set, family) combinations: every family on every set offering its input kind;
    the baseline pair is always included, since every pair is compared with it."""
    pairs = [
        (fs, fam)
        for fs in cfg.feature_sets
        for fam in cfg.family_names()
        if cfg.model_family(fam).input_kind in cfg.feature_class(fs).input_kinds
    ]
    base = (cfg.baseline["feature_set"], cfg.baseline["family"])
    if base not in pairs and (base[0] in all_feature_sets() or base[0] in cfg.feature_variants):
        pairs.insert(0, base)
    return pairs


def make_plan(
    cfg: BenchmarkConfig,
    dataset: Dataset,
    opts: RunOptions,
    storage_url: str,
    only_pairs: list[tuple[str, str]] | None = None,
    *,
    extract: bool = True,
) -> Plan:
    """Every job of ``cfg`` on ``dataset``. ``extract=False`` (the dry run) computes no audio
    feature set: one that is not cached gets placeholder rows of its shape (enough to time
    fits, never to score) and every audio set an :class:`ExtractionEstimate`."""
    tracks = dataset.tracks["track_id"].to_numpy(dtype=str)
    classes = tuple(dataset.classes)
    cache_dir = Path(opts.results_root) / FEATURE_CACHE_DIR
    skipped: list[FoldOutcome] = []
    pairs = only_pairs or _pairs_for(cfg)

    protocols: dict[str, Protocol] = {}
    outer: dict[str, list[OuterSplit]] = {}
    inner: dict[tuple[str, int], list[tuple[np.ndarray, np.ndarray]]] = {}
    split_frames = []
    for name, params in cfg.protocols.items():
        proto = get_protocol(name, **params)
        reason = proto.unavailable(dataset)
        if reason:
            for fs, fam in pairs:
                skipped.append(FoldOutcome(PairKey(fs, fam, name), -1, "skip", reason))
            log.warning("protocol %s unavailable: %s", name, reason)
            continue
        protocols[name] = proto
        outer[name] = proto.outer_splits(dataset, tracks, cfg.seed)
        split_frames.append(splits_table(proto, outer[name]))
        for s in outer[name]:
            inner[(name, s.fold)] = proto.inner_splits(
                dataset, s.train, cfg.inner_folds, derive_seed(cfg.seed, name, s.fold)
            )

    matrices: dict[tuple[str, str], FeatureMatrix] = {}
    extraction: list[ExtractionEstimate] = []
    jobs: list[FoldJob] = []
    for fs, fam in pairs:
        family = cfg.model_family(fam)
        fset = feature_set_of(cfg, fs)
        reason = fset.unavailable(dataset) or family.skip_reason()
        if reason:
            for name in protocols:
                skipped.append(FoldOutcome(PairKey(fs, fam, name), -1, "skip", reason))
            continue
        key = (fs, family.input_kind)
        if key not in matrices and not extract and isinstance(fset, AudioFeatureSet):
            cached = fset.is_cached(dataset, family.input_kind, cache_dir)
            probe_s = None
            if cached:
                matrices[key] = fset.load(dataset, family.input_kind, cache_dir)
            else:
                matrices[key], probe_s = placeholder_matrix(
                    fset, dataset, family.input_kind, cfg.seed
                )
            extraction.append(
                extraction_estimate(fset, dataset, family.input_kind, cached, probe_s)
            )
        if key not in matrices:
            t0 = time.perf_counter()
            matrices[key] = fset.load(dataset, family.input_kind, cache_dir)
            fm = matrices[key]
            log.info(
                "feature set %s (%s): %d rows, %d tracks, %d missing, %.1f s",
                fs,
                family.input_kind,
                len(fm.X),
                len(fm.tracks),
                len(fm.missing or {}),
                time.perf_counter() - t0,
            )
            if fm.n_copies:
                log.info(
                    "feature set %s: %d rows are augmented copies (training only)", fs, fm.n_copies
                )
        fm = matrices[key]
        y = dataset.labels_of(fm.row_track)
        space = cfg.search_space(fam).to_dict()
        for name, splits in outer.items():
            pair = PairKey(fs, fam, name)
            for s in splits:
                jobs.append(
                    fold_job(
                        cfg,
                        pair,
                        s.fold,
                        fm,
                        y,
                        classes,
                        s.train,
                        s.test,
                        inner[(name, s.fold)],
                        storage_url,
                        space=space,
                        fail_fast=opts.fail_fast,
                    )
                )
    splits = pd.concat(split_frames, ignore_index=True) if split_frames else pd.DataFrame()
    return Plan(jobs, skipped, splits, protocols, extraction)


def fold_job(
    cfg: BenchmarkConfig,
    pair: PairKey,
    fold: int,
    fm: FeatureMatrix,
    y: np.ndarray,
    classes: tuple[str, ...],
    train_tracks: np.ndarray,
    test_tracks: np.ndarray,
    inner_splits: list[tuple[np.ndarray, np.ndarray]],
    storage_url: str,
    *,
    space: dict[str, Any] | None = None,
    **settings: Any,
) -> FoldJob:
    """The one constructor of a fold job from a config (``run``, ``worker`` and the
    final-model export all build theirs here): its study name, trials, pruner and seed
    follow from the config; ``settings`` sets the job's other fields (``fail_fast``,
    ``n_trials``, ``deadline``)."""
    fields: dict[str, Any] = {
        "n_trials": cfg.trials_for(pair.family),
        "planned_trials": cfg.trials_for(pair.family),
        "timeout_s": cfg.timeout_s,
        "seed": cfg.seed,
        "search_seed": cfg.search_seed,
        "pruner": cfg.pruner,
        **settings,
    }
    return FoldJob(
        benchmark=cfg.name,
        pair=pair,
        fold=fold,
        X=fm.X,
        row_track=fm.row_track,
        y=y,
        classes=classes,
        train_tracks=train_tracks,
        test_tracks=test_tracks,
        inner_splits=inner_splits,
        space=space if space is not None else cfg.search_space(pair.family).to_dict(),
        storage_url=storage_url,
        study_name=study_name(cfg.name, pair, fold, cfg.digest()),
        row_copy=fm.row_copy,
        **fields,
    )


def feature_set_of(cfg: BenchmarkConfig, name: str) -> FeatureSet:
    """Feature set ``name`` (a registered one or one of the config's feature variants, then
    named so) with the config's parameters; audio extraction runs on the run's ``n_jobs``
    processes unless the config says otherwise."""
    from benchmark.features.audio_base import AudioFeatureSet

    params = cfg.feature_params_of(name)
    cls = cfg.feature_class(name)
    if issubclass(cls, AudioFeatureSet):
        params.setdefault("n_jobs", cfg.n_jobs)
        augment = params.get("augment")
        if augment is not None and augment is not False:  # drawn from the benchmark's seed
            params["augment"] = {"seed": cfg.seed, **({} if augment is True else augment)}
    fset = get_feature_set(cls.registered_name(), **params)
    return fset if cfg.feature_of(name) is None else fset.named(name)
