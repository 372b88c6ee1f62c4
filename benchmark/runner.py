"""``genrebench run``: a config and a dataset folder in, results + MLflow runs + Optuna studies out.

The runner only plans and collects: it opens the dataset, computes every protocol's splits once
(so every pair is scored on the same folds), loads each feature set through its cache, makes one
:class:`~benchmark.tuning.FoldJob` per (feature set, family, protocol, outer fold), runs them
(in parallel with ``n_jobs``), logs each outcome to MLflow and writes the results tables.
All state that matters lives in the Optuna storage (finished trials, finished fold outcomes), so a
killed run started again redoes only what was unfinished.

``genrebench run`` is one process (with ``n_jobs`` worker processes) that owns its storage; to
spread one benchmark over many processes or machines, start ``genrebench worker`` on each
(:mod:`benchmark.worker`): they share the planning below, the evaluation of
:mod:`benchmark.tuning` and the trial budget of :mod:`benchmark.trial_budget`.
"""

from __future__ import annotations

import fcntl
import functools
import json
import logging
import os
import platform
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd

import benchmark
from benchmark.budget import BudgetPlan, TuningValue, format_duration, plan_budget
from benchmark.config import BenchmarkConfig
from benchmark.cost import CostModel
from benchmark.data import Dataset
from benchmark.errors import GenrebenchError
from benchmark.features import FeatureMatrix, FeatureSet, all_feature_sets, get_feature_set
from benchmark.models import get_family
from benchmark.paths import project_root
from benchmark.protocols import OuterSplit, Protocol, get_protocol, splits_table
from benchmark.racing import Race, folds_per_protocol
from benchmark.results import (
    FoldOutcome,
    PairKey,
    predictions_frame,
    read_table,
    results_frame,
    trials_frame,
    write_table,
)
from benchmark.scheduling import Scheduler, dispatch_order
from benchmark.search_space import load_search_space
from benchmark.storage import default_storage_url, journal_path, mask_url, open_storage
from benchmark.trial_budget import counted_trials
from benchmark.tuning import FoldJob, derive_seed, study_name

__all__ = [
    "Plan",
    "RunOptions",
    "RunResult",
    "benchmark_lock",
    "feature_set_of",
    "fold_job",
    "tracker_tags",
    "make_plan",
    "make_schedule",
    "dry_run",
    "plan_and_run",
    "provenance",
    "write_outcome_files",
    "write_trials_file",
]

log = logging.getLogger(__name__)

#: packages whose versions are stored with every run
VERSIONED = ("numpy", "pandas", "scipy", "scikit-learn", "lightgbm", "optuna", "mlflow")


@dataclass(frozen=True)
class RunOptions:
    """Where a run reads and writes (not part of the config: they do not change results)."""

    data_dir: str | None = None
    results_root: Path = Path("results")
    storage_url: str | None = None
    tracking_uri: str | None = None
    fail_fast: bool = False
    track: bool = True  # log to MLflow


@dataclass
class RunResult:
    results_dir: Path
    results: pd.DataFrame
    predictions: pd.DataFrame
    wall_s: float
    counts: dict[str, int] = field(default_factory=dict)


@contextmanager
def benchmark_lock(results_dir: Path) -> Iterator[None]:
    """One ``genrebench run`` per results folder at a time (an advisory lock the OS drops when
    the process dies, so a killed run never leaves a stale lock)."""
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / ".run.lock"
    with open(path, "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise GenrebenchError(
                f"another genrebench run is using {results_dir}; wait for it or pass another "
                "--results-dir"
            ) from None
        fh.write(str(os.getpid()))
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


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


def _refuse_if_workers(storage_url: str, name: str) -> None:
    """``run`` fails every RUNNING trial when it starts: never while workers share the storage
    (read-only look; a storage without workers' tables has none)."""
    if journal_path(storage_url) is not None:
        return
    try:
        import sqlalchemy as sa

        engine = sa.create_engine(storage_url)
        try:
            if not sa.inspect(engine).has_table("genrebench_workers"):
                return
        finally:
            engine.dispose()
        from benchmark.claims import SqlBoard

        board = SqlBoard(storage_url)
        try:
            live = [w for w in board.workers(name) if w.state == "running" and w.age_s < 120]
        finally:
            board.close()
    except Exception:  # unreadable here: open_storage reports the URL problem
        return
    if live:
        raise GenrebenchError(
            f"{len(live)} genrebench worker(s) are running benchmark {name!r} on this storage "
            "(genrebench status shows them): start another `genrebench worker` to help instead"
        )


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


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "genrebench": benchmark.__version__}
    for name in VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out


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
        "versions": _versions(),
        "git_commit": _git_commit(),
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


def _pairs_for(cfg: BenchmarkConfig) -> list[tuple[str, str]]:
    """(feature set, family) combinations: every family on every set offering its input kind;
    the baseline pair is always included, since every pair is compared with it."""
    from benchmark.features import all_feature_sets

    sets = all_feature_sets()
    pairs = [
        (fs, fam)
        for fs in cfg.feature_sets
        for fam in cfg.family_names()
        if get_family(fam).input_kind in sets[fs].views
    ]
    base = (cfg.baseline["feature_set"], cfg.baseline["family"])
    if base not in pairs and base[0] in sets:
        pairs.insert(0, base)
    return pairs


def make_plan(
    cfg: BenchmarkConfig,
    dataset: Dataset,
    opts: RunOptions,
    storage_url: str,
    only_pairs: list[tuple[str, str]] | None = None,
) -> Plan:
    tracks = dataset.tracks["track_id"].to_numpy(dtype=str)
    classes = tuple(dataset.classes)
    cache_dir = Path(opts.results_root) / "cache"
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
    jobs: list[FoldJob] = []
    for fs, fam in pairs:
        family = get_family(fam)
        fset = feature_set_of(cfg, fs)
        reason = fset.unavailable(dataset) or family.skip_reason()
        if reason:
            for name in protocols:
                skipped.append(FoldOutcome(PairKey(fs, fam, name), -1, "skip", reason))
            continue
        key = (fs, family.input_kind)
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
        fm = matrices[key]
        y = dataset.labels_of(fm.row_track)
        space = load_search_space(fam).to_dict()
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
    return Plan(jobs, skipped, splits, protocols)


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
        space=space if space is not None else load_search_space(pair.family).to_dict(),
        storage_url=storage_url,
        study_name=study_name(cfg.name, pair, fold, cfg.digest()),
        **fields,
    )


def feature_set_of(cfg: BenchmarkConfig, name: str) -> FeatureSet:
    """Feature set ``name`` with the config's parameters; audio extraction runs on the run's
    ``n_jobs`` processes unless the config says otherwise."""
    from benchmark.features.audio_base import AudioFeatureSet

    params = dict(cfg.feature_params.get(name, {}))
    if issubclass(all_feature_sets().get(name, object), AudioFeatureSet):
        params.setdefault("n_jobs", cfg.n_jobs)
    return get_feature_set(name, **params)


def plan_and_run(
    cfg: BenchmarkConfig,
    opts: RunOptions,
    *,
    on_start: Callable[[int, Callable[[], float | None], Callable[[], int]], None] | None = None,
    on_outcome: Callable[[FoldOutcome], None] | None = None,
) -> RunResult:
    """Run (or resume) the benchmark ``cfg``; returns the results tables."""
    t0 = time.perf_counter()
    started_at = time.time()
    results_dir = Path(opts.results_root) / cfg.name
    with benchmark_lock(results_dir):
        dataset = Dataset.open(opts.data_dir, cfg.dataset)
        prov = provenance(cfg, dataset)
        storage_url = opts.storage_url or default_storage_url(results_dir)
        # create the schema once here: worker processes racing to create it collide
        storage = open_storage(storage_url)
        if opts.storage_url:
            _refuse_if_workers(storage_url, cfg.name)
        plan = make_plan(cfg, dataset, opts, storage_url)
        write_table(plan.splits, results_dir / "splits.parquet")

        tracker = None
        if opts.track:
            from benchmark.tracking import Tracker, default_tracking_uri

            uri = opts.tracking_uri or default_tracking_uri(results_dir)
            tracker = Tracker(uri, cfg.name, tracker_tags(cfg, prov), results_dir=results_dir)

        context = {
            "benchmark": cfg.name,
            "dataset": cfg.dataset,
            "seed": cfg.seed,
            "config_digest": prov["config_digest"],
            "data_checksum": prov["data_checksum"],
        }
        outcomes: list[FoldOutcome] = list(plan.skipped)
        schedule = make_schedule(cfg, plan, results_dir, started_at=started_at)
        if on_start:
            scheduler = schedule.scheduler
            on_start(len(plan.jobs), scheduler.seconds_left, scheduler.trials_running)
        spaces = {
            fam: load_search_space(fam).to_dict() for fam in {j.pair.family for j in plan.jobs}
        }
        for outcome, ran in schedule.scheduler.run():
            outcomes.append(outcome)
            if tracker is not None and ran:
                proto = plan.protocols[outcome.pair.protocol]
                fold_split = plan.splits[
                    (plan.splits["protocol"] == outcome.pair.protocol)
                    & (plan.splits["fold"] == outcome.fold)
                ]
                tracker.log_fold(
                    outcome,
                    functools.partial(counted_trials, storage, outcome.study_name),
                    fold_split,
                    protocol_description=proto.description,
                    search_space=spaces[outcome.pair.family],
                )
            if on_outcome:
                on_outcome(outcome)

        results, predictions = write_outcome_files(results_dir, outcomes, context, storage)
        settings = cfg.ensemble_settings()
        if settings is not None:
            from benchmark.ensembles import run_ensemble_stage

            results, predictions = run_ensemble_stage(results_dir, settings)
        if tracker is not None:
            for (fs, fam, proto_name), rows in results.groupby(
                ["feature_set", "family", "protocol"], sort=True
            ):
                if (rows["status"] == "done").any():
                    tracker.log_pair_summary(PairKey(fs, fam, proto_name), rows)
        wall = time.perf_counter() - t0
        prov.update(
            finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
            wall_s=round(wall, 2),
            storage=mask_url(storage_url),
            protocols={
                n: p.to_dict() | {"description": p.description} for n, p in plan.protocols.items()
            },
            schedule=schedule.describe(),
        )
        (results_dir / "run.json").write_text(json.dumps(prov, indent=2, default=str))
        counts = results["status"].value_counts().to_dict()
        return RunResult(results_dir, results, predictions, wall, counts)


@dataclass
class Schedule:
    """How a run spends its time: the budget's plan (trials per job, estimates), the deadline
    and the scheduler that runs the jobs."""

    budget: BudgetPlan | None
    deadline: float | None
    scheduler: Scheduler
    measure_s: float = 0.0
    ends_at: float | None = None  # the budget's end (the export's deadline)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"measure_s": round(self.measure_s, 1)}
        if self.budget is not None:
            b = self.budget
            out.update(
                budget_s=b.budget_s,
                trial_share=round(b.share, 4),
                study_cap_s=None if b.cap_s is None else round(b.cap_s, 1),
                estimated_wall_s=round(b.wall_s + b.after_s, 1),
                estimated_core_s=round(b.core_s, 1),
                unbudgeted_wall_s=round(b.full_wall_s + b.after_s, 1),
                ends_at=self.ends_at,
            )
        value = self.scheduler.value
        weights = value.weights() if value is not None else {}
        if weights:
            out["cap_weights"] = {
                f"{fs} · {fam}": round(w, 3) for (fs, fam), w in sorted(weights.items())
            }
        race = self.scheduler.race
        if race is not None:
            out["eliminated"] = {k.label: e.message for k, e in sorted(race.eliminated.items())}
        return out


def answered_trials(results_dir: Path, cfg: BenchmarkConfig) -> Callable[[FoldJob], int | None]:
    """``job -> trial budget its stored outcome satisfies`` (None: not done), from the last
    ``results.parquet`` of this config (a killed run's newer outcomes are simply re-read)."""
    path = Path(results_dir) / "results.parquet"
    done: dict[tuple[str, str, str, int], int] = {}
    if path.is_file():
        rows = read_table(path)
        rows = rows[(rows["status"] == "done") & (rows["config_digest"] == cfg.digest())]
        budgets = pd.to_numeric(rows.get("trial_budget"), errors="coerce")
        for r, b in zip(rows.itertuples(), budgets, strict=True):
            key = (str(r.feature_set), str(r.family), str(r.protocol), int(r.fold))
            done[key] = int(b) if pd.notna(b) else 1 << 30

    def lookup(job: FoldJob) -> int | None:
        p = job.pair
        return done.get((p.feature_set, p.family, p.protocol, job.fold))

    return lookup


def _replanner(
    cfg: BenchmarkConfig,
    plan: Plan,
    cost: CostModel,
    answered: Callable[[FoldJob], int | None],
    value: TuningValue,
) -> Callable[[list[FoldJob], float], list[int]]:
    """Re-plan the trials of the folds left within the seconds left (each study's planned
    trials are the cap), with the cost model as the run has refined it and each pair's cap
    scaled by what its finished studies' last trials still found (``value``)."""
    planned = {j.study_name: j.n_trials for j in plan.jobs}

    def replan(pending: list[FoldJob], seconds_left: float) -> list[int]:
        full = [replace(j, n_trials=planned[j.study_name]) for j in pending]
        weights = value.weights()
        if weights:
            log.info(
                "caps scaled by what trials still find: %s",
                ", ".join(f"{fs} · {fam} x{w:.2f}" for (fs, fam), w in sorted(weights.items())),
            )
        again = plan_budget(
            full,
            cost,
            cfg.n_jobs,
            seconds_left,
            done=answered,
            order=dispatch_order,
            reserve_after=False,
            weight=value.weighting(),
        )
        return list(again.trials)

    return replan


def make_schedule(
    cfg: BenchmarkConfig,
    plan: Plan,
    results_dir: Path,
    *,
    started_at: float,
    measure: bool | None = None,
) -> Schedule:
    """The run's schedule: with a budget (or ``measure``, or more than one process) the cost of
    every pair is measured first, so jobs go longest first within each round and the budget's
    trials are planned; with ``racing``, k-fold protocols are raced."""
    budget_s = cfg.budget_seconds()
    if measure is None:
        measure = budget_s is not None or cfg.n_jobs > 1
    cost, t0 = None, time.perf_counter()
    if measure and plan.jobs:
        trials_path = Path(results_dir) / "trials.parquet"
        trials = read_table(trials_path) if trials_path.is_file() else None
        cost = CostModel.measure(plan.jobs, trials, seed=cfg.seed)
    measure_s = time.perf_counter() - t0
    jobs = list(plan.jobs)
    bplan = deadline = replan = value = None
    answered = answered_trials(results_dir, cfg)
    if cost is not None:
        settings = cfg.ensemble_settings()
        n_folds = (
            len(plan.splits[["protocol", "fold"]].drop_duplicates()) if len(plan.splits) else 0
        )
        bplan = plan_budget(
            jobs,
            cost,
            cfg.n_jobs,
            budget_s,
            done=answered,
            order=dispatch_order,
            ensemble_folds=n_folds if settings is not None else 0,
        )
        if budget_s is not None:
            # the export has its own deadline (the budget's end): the folds keep most of it
            deadline = started_at + budget_s - min(bplan.after_s, 0.25 * budget_s)
            jobs = bplan.apply(jobs, deadline)
            value = TuningValue()
            replan = _replanner(cfg, plan, cost, answered, value)
    race = None
    racing = cfg.racing_settings()
    if racing is not None:
        raced = [n for n, p in plan.protocols.items() if p.kind == "k-fold"]
        base = (cfg.baseline["feature_set"], cfg.baseline["family"])
        rounds = folds_per_protocol((j.pair, j.fold) for j in jobs)
        race = Race.of(racing, {j.pair for j in jobs}, raced, [base], rounds)
    scheduler = Scheduler(
        jobs,
        dispatch_order(jobs, cost),
        n_jobs=cfg.n_jobs,
        deadline=deadline,
        race=race,
        cost=cost,
        budget_label=format_duration(budget_s) if budget_s else "",
        answered=answered,
        replan=replan,
        value=value,
    )
    ends_at = started_at + budget_s if budget_s is not None else None
    return Schedule(bplan, deadline, scheduler, measure_s, ends_at)


def dry_run(cfg: BenchmarkConfig, opts: RunOptions) -> tuple[Plan, Schedule]:
    """What ``run`` would do, without doing it: the plan, and its schedule with the measured
    cost of every pair (``genrebench run --dry-run`` prints them). Opens no storage."""
    results_dir = Path(opts.results_root) / cfg.name
    dataset = Dataset.open(opts.data_dir, cfg.dataset)
    plan = make_plan(cfg, dataset, opts, opts.storage_url or default_storage_url(results_dir))
    return plan, make_schedule(cfg, plan, results_dir, started_at=time.time(), measure=True)


def write_outcome_files(
    results_dir: Path,
    outcomes: list[FoldOutcome],
    context: dict[str, Any],
    storage: optuna.storages.BaseStorage | str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write the tables every later stage reads (:mod:`benchmark.results`): results,
    predictions, inner predictions and trials. Returns (results, predictions)."""
    results = results_frame(o.row(**context) for o in outcomes)
    predictions = predictions_frame(outcomes)
    write_table(results, results_dir / "results.parquet")
    write_table(predictions, results_dir / "predictions.parquet")
    write_table(predictions_frame(outcomes, inner=True), results_dir / "inner_predictions.parquet")
    write_trials_file(results_dir, storage, results)
    return results, predictions


def write_trials_file(
    results_dir: Path,
    storage: optuna.storages.BaseStorage | str,
    results: pd.DataFrame | None = None,
) -> Path:
    """``trials.parquet``: every counted trial of the studies named in ``results.parquet``,
    read from the Optuna storage once, so that no later stage needs the storage."""
    if results is None:
        results = read_table(Path(results_dir) / "results.parquet")
    if isinstance(storage, str):
        storage = open_storage(storage)
    named = results[results["study_name"].fillna("").astype(str) != ""]
    studies = [
        (PairKey(r.feature_set, r.family, r.protocol), int(r.fold), str(r.study_name))
        for r in named.itertuples()
    ]
    table = trials_frame((*key, counted_trials(storage, key[2])) for key in studies)
    path = Path(results_dir) / "trials.parquet"
    write_table(table, path)
    return path
