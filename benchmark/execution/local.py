"""``genrebench run`` on one machine: a config and a dataset folder in, the results files out.

The run only plans, schedules and collects: :mod:`~benchmark.execution.plan` makes the jobs,
:mod:`~benchmark.execution.schedule` runs them (in parallel with ``n_jobs``), each outcome is
logged to MLflow and :mod:`~benchmark.execution.outputs` writes the tables every later stage
reads. All state that matters is kept as it is made (finished trials in the Optuna storage,
finished folds' outcomes in the results folder), so a killed run started again redoes only
what was unfinished.

``genrebench run`` is one client that owns its results folder (the folder's lock); its fold
jobs run on a Dask LocalCluster of ``n_jobs`` processes, or on the cluster ``--scheduler``
names, whose ``dask worker`` processes may be on many machines
(:mod:`benchmark.execution.cluster`).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from benchmark.config import BenchmarkConfig
from benchmark.data import Dataset
from benchmark.errors import GenrebenchError
from benchmark.execution.cluster import refuse_local_storage, scheduler_address
from benchmark.execution.outputs import write_outcome_files
from benchmark.execution.plan import Plan, RunOptions, make_plan, provenance, tracker_tags
from benchmark.execution.schedule import Schedule, make_schedule
from benchmark.features.extraction_cost import extraction_wall_s
from benchmark.results import (
    RUN_FILE,
    RUN_LOCK_FILE,
    SPLITS_FILE,
    FoldOutcome,
    PairKey,
    write_table,
)
from benchmark.storage import default_storage_url, mask_url, open_storage
from benchmark.tuning.trial_budget import counted_trials

__all__ = ["RunResult", "benchmark_lock", "dry_run", "plan_and_run"]


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
    path = results_dir / RUN_LOCK_FILE
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
    storage_url = opts.storage_url or default_storage_url(results_dir)
    address = scheduler_address(opts.scheduler)
    refuse_local_storage(address, storage_url)
    with benchmark_lock(results_dir), contextlib.ExitStack() as stack:
        dataset = Dataset.open(opts.data_dir, cfg.dataset, cfg.tracks)
        prov = provenance(cfg, dataset)
        # create the schema once here: worker processes racing to create it collide
        storage = open_storage(storage_url)
        plan = make_plan(cfg, dataset, opts, storage_url)
        write_table(plan.splits, results_dir / SPLITS_FILE)

        outcomes: list[FoldOutcome] = list(plan.skipped)
        tracker = None
        if opts.track:
            from benchmark.tracking import Tracker, default_tracking_uri

            uri = opts.tracking_uri or default_tracking_uri(results_dir)
            tracker = Tracker(uri, cfg.name, tracker_tags(cfg, prov), results_dir=results_dir)
            # an interrupt (KILLED) or a crash (FAILED) ends every run left RUNNING
            stack.enter_context(tracker.ending(lambda: _unfinished(plan, outcomes)))

        context = {
            "benchmark": cfg.name,
            "dataset": cfg.dataset,
            "seed": cfg.seed,
            "config_digest": prov["config_digest"],
            "data_checksum": prov["data_checksum"],
        }
        schedule = make_schedule(cfg, plan, results_dir, started_at=started_at, address=address)
        if on_start:
            scheduler = schedule.scheduler
            on_start(len(plan.jobs), scheduler.seconds_left, scheduler.trials_running)
        spaces = {j.pair.family: j.space for j in plan.jobs}
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
                    tracker.log_pair_summary(
                        PairKey(fs, fam, proto_name),
                        rows,
                        predictions=predictions,
                        splits=plan.splits,
                        protocol_description=_description(plan, proto_name),
                    )
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
        (results_dir / RUN_FILE).write_text(json.dumps(prov, indent=2, default=str))
        counts = results["status"].value_counts().to_dict()
        return RunResult(results_dir, results, predictions, wall, counts)


def _unfinished(plan: Plan, outcomes: list[FoldOutcome]) -> set[PairKey]:
    """The pairs of ``plan`` with a fold not among ``outcomes``."""
    finished = {(o.pair, o.fold) for o in outcomes}
    return {j.pair for j in plan.jobs if (j.pair, j.fold) not in finished}


def _description(plan: Plan, protocol: str) -> str:
    proto = plan.protocols.get(protocol)
    return proto.description if proto is not None else protocol


def dry_run(cfg: BenchmarkConfig, opts: RunOptions) -> tuple[Plan, Schedule]:
    """What ``run`` would do, without doing it: the plan, and its schedule with the measured
    cost of every pair (``genrebench run --dry-run`` prints them). Opens no storage."""
    results_dir = Path(opts.results_root) / cfg.name
    dataset = Dataset.open(opts.data_dir, cfg.dataset, cfg.tracks)
    plan = make_plan(
        cfg, dataset, opts, opts.storage_url or default_storage_url(results_dir), extract=False
    )
    # a run's budget clock starts before its extraction: plan the trials with what it leaves
    extraction_wall = extraction_wall_s(plan.extraction, cfg.n_jobs)
    started_at = time.time() - extraction_wall
    return plan, make_schedule(cfg, plan, results_dir, started_at=started_at, measure=True)
