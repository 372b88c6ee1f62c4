"""Which fold job runs next, on which process, and when to stop starting them.

Jobs go round by round (fold ``r`` of every pair and protocol; a single split is round 0) and,
within a round, longest first by the cost model (:mod:`benchmark.execution.cost`), so that the
cores are
not left with one long study at the end and a budget that runs out leaves every pair with the
same folds. A raced pair (:mod:`benchmark.execution.racing`) starts its fold ``r`` only once round
``r - 1`` of its protocol is decided; an eliminated pair's folds become ``eliminated`` rows
without running. Once the run's deadline is near, a fold that cannot finish a trial before it
is not started: it becomes a ``skip`` row that says so (a rerun with a larger budget runs it).
Under a budget, each finished study's inner-CV scores tell the next rounds' re-plan what more
trials are worth to its pair (:class:`benchmark.execution.time_budget.TuningValue`).

All of this stays in the run's process: the jobs themselves run as Dask tasks, on a
LocalCluster or a cluster given by address (:mod:`benchmark.execution.cluster`), or in this
process for ``n_jobs = 1``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.config import BenchmarkConfig, format_duration
from benchmark.execution.cluster import DaskExecutor
from benchmark.execution.cost import CostModel, makespan
from benchmark.execution.fold_outcomes import FoldOutcomes
from benchmark.execution.plan import Plan
from benchmark.execution.racing import Race, folds_per_protocol
from benchmark.execution.time_budget import BudgetPlan, TuningValue, not_reached, plan_budget
from benchmark.results import (
    RESULTS_FILE,
    TRIALS_FILE,
    FoldOutcome,
    read_table,
)
from benchmark.storage import open_storage
from benchmark.tuning.fold import finished_trials, inner_scores, run_fold
from benchmark.tuning.job import FoldJob

__all__ = ["Schedule", "Scheduler", "answered_trials", "dispatch_order", "make_schedule"]

log = logging.getLogger(__name__)


def dispatch_order(jobs: Sequence[FoldJob], cost: CostModel | None) -> list[int]:
    """Indices of ``jobs`` round by round, longest first within a round (plan order without a
    cost model)."""

    def key(i: int) -> tuple[int, float, int]:
        seconds = cost.job_seconds(jobs[i]) if cost is not None else 0.0
        return (jobs[i].fold, -seconds, i)

    return sorted(range(len(jobs)), key=key)


class _InProcess:
    """An executor for ``n_jobs = 1``: the job runs at submit, in this process."""

    def submit(self, job: FoldJob) -> Future[FoldOutcome]:
        future: Future[FoldOutcome] = Future()
        try:
            future.set_result(run_fold(job))
        except BaseException as exc:  # re-raised by result(), e.g. fail_fast
            future.set_exception(exc)
        return future

    def shutdown(self, **_: Any) -> None:
        pass


def _read_back(outcome: FoldOutcome) -> Future[FoldOutcome]:
    future: Future[FoldOutcome] = Future()
    future.set_result(outcome)
    future.read_back = True  # type: ignore[attr-defined]
    return future


@dataclass
class Scheduler:
    """Runs ``jobs`` on ``n_jobs`` processes in ``order``; see the module docstring."""

    jobs: list[FoldJob]
    order: Sequence[int]
    n_jobs: int = 1
    deadline: float | None = None
    race: Race | None = None
    cost: CostModel | None = None
    budget_label: str = ""
    #: the trial budget a stored outcome of a job satisfies (None: not done): such a job is
    #: read back even after the deadline, it costs nothing
    answered: Callable[[FoldJob], int | None] | None = None
    #: with a deadline: ``(pending jobs, seconds left) -> their trials``, asked as each round
    #: begins, so time that racing freed (or slow rounds used up) moves the later rounds'
    #: trials up (or down)
    replan: Callable[[list[FoldJob], float], list[int]] | None = None
    #: learns from each finished study what more trials are worth to its pair (the re-plan
    #: reads it); None: not learnt
    value: TuningValue | None = None
    #: the Dask scheduler the jobs run on (None: a LocalCluster of ``n_jobs`` processes, or
    #: this process for ``n_jobs = 1``)
    address: str | None = None
    #: :class:`distributed.Security` for a ``tls://`` address (None: Dask's config)
    security: Any = None
    #: where finished folds' outcomes are kept and read back (None: nowhere, every job runs)
    outcomes: FoldOutcomes | None = None
    #: the results folder, where a started cluster is noted for ``genrebench status``
    results_dir: Path | None = None

    def __post_init__(self) -> None:
        self.jobs = list(self.jobs)  # its own copy: a re-plan replaces jobs in it
        self._replanned: set[int] = {0}
        self._pending: list[int] = list(self.order)
        self._started: dict[int, float] = {}  # running job -> time.monotonic() at its start
        self._storages: dict[str, Any] = {}  # storage URL -> storage, for trials_running

    def seconds_left(self) -> float | None:
        """The cost model's wall seconds for the folds not finished yet: the pending ones in
        dispatch order and what the running ones have left, on ``n_jobs`` processes (None
        without a cost model). The model learns each pair's seconds per trial from its
        finished folds, so the estimate sharpens as the run goes; progress lines print it.
        Called from another thread: it reads copies."""
        cost = self.cost
        if cost is None:
            return None
        now = time.monotonic()
        eliminated = self.race.eliminated if self.race is not None else {}
        running = [
            max(0.0, cost.job_seconds(self.jobs[i]) - (now - t0))
            for i, t0 in list(self._started.items())
        ]
        pending = [
            cost.job_seconds(self.jobs[i])
            for i in list(self._pending)
            if self.jobs[i].pair not in eliminated and not self._answered(self.jobs[i])
        ]
        return makespan(sorted(running, reverse=True) + pending, self.n_jobs)

    def _storage(self, url: str) -> Any:
        if url not in self._storages:
            self._storages[url] = open_storage(url)
        return self._storages[url]

    def trials_running(self) -> int:
        """Trials the running folds' studies have finished so far (complete or pruned), read
        from the Optuna storage, so that a long study's trials show in the progress line
        before its fold ends. Called from another thread; a storage it cannot read counts 0
        (a progress line never fails the run)."""
        count = 0
        for i in list(self._started):
            job = self.jobs[i]
            try:
                count += finished_trials(self._storage(job.storage_url), job.study_name)
            except Exception as exc:  # only a progress figure
                log.debug("trials of %s not read: %s", job.study_name, exc)
        return count

    def _answered(self, job: FoldJob) -> bool:
        return self.answered is not None and is_stored(self.answered, job)

    def run(self) -> Iterator[tuple[FoldOutcome, bool]]:
        """Outcomes as they finish, each with whether it ran (False: an ``eliminated`` or
        not-reached row made here)."""
        executor: Any = (
            _InProcess()
            if self.n_jobs <= 1 and self.address is None
            else DaskExecutor(self.n_jobs, self.address, self.security, self.results_dir)
        )
        try:
            yield from self._loop(executor)
        except BaseException:
            executor.shutdown(wait=False, kill_workers=True)
            raise
        executor.shutdown(wait=True)

    def _loop(self, executor: Any) -> Iterator[tuple[FoldOutcome, bool]]:
        self._pending, self._started = list(self.order), {}
        pending = self._pending
        running: dict[Future[FoldOutcome], int] = {}
        while pending or running:
            while len(running) < self._slots(executor) and pending:
                i = self._next(pending)
                if i is None:
                    break
                self._replan_round(pending, self.jobs[i].fold)
                pending.remove(i)
                job = self.jobs[i]
                made = self._without_running(job)
                if made is not None:
                    if self.race is not None:
                        # a fold the budget did not reach ends its round too: without it the
                        # next round would wait for a fold that never runs
                        self.race.record(made)
                        self.race.settle()
                    yield made, False
                    continue
                stored = self.outcomes.get(job) if self.outcomes is not None else None
                if stored is not None:  # finished before: read back, no process needed
                    running[_read_back(stored)] = i
                elif self._answered(job):  # its trials are stored: refit here
                    running[_InProcess().submit(job)] = i
                else:
                    running[executor.submit(job)] = i
                self._started[i] = time.monotonic()
            if not running:
                if pending and self._next(pending) is None:
                    raise RuntimeError(
                        "scheduler: every pending fold waits on a round no fold is running"
                    )
                continue
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in sorted(finished, key=lambda f: running[f]):
                i = running.pop(future)
                self._started.pop(i, None)
                outcome = future.result()
                if self.outcomes is not None and not getattr(future, "read_back", False):
                    self.outcomes.put(outcome)  # the fold is finished once this is written
                if self.cost is not None:
                    self.cost.observe(outcome, outcome.n_trials + outcome.n_pruned)
                if self.race is not None:
                    self.race.record(outcome)
                if self.value is not None and outcome.status == "done":
                    self._learn_value(self.jobs[i])
                yield outcome, True
            if self.race is not None:
                self.race.settle()

    def _slots(self, executor: Any) -> int:
        """Jobs in flight at once: ``n_jobs``, or on a remote cluster its worker threads (a
        job is held back until a worker is free, so racing and re-plans see fresh rounds)."""
        if self.address is None or not isinstance(executor, DaskExecutor):
            return max(1, self.n_jobs)
        return max(1, executor.threads())

    def _learn_value(self, job: FoldJob) -> None:
        assert self.value is not None
        try:
            self.value.observe(job, inner_scores(self._storage(job.storage_url), job.study_name))
        except Exception as exc:  # only a re-plan's hint: the run goes on without it
            log.debug("inner scores of %s not read: %s", job.study_name, exc)

    def _replan_round(self, pending: list[int], round_: int) -> None:
        if self.replan is None or self.deadline is None or round_ in self._replanned:
            return
        self._replanned.add(round_)
        alive = [
            i for i in pending if self.race is None or self.jobs[i].pair not in self.race.eliminated
        ]
        left = self.deadline - time.time()
        if not alive or left <= 0:
            return
        trials = self.replan([self.jobs[i] for i in alive], left)
        for i, n in zip(alive, trials, strict=True):
            if n != self.jobs[i].n_trials:
                self.jobs[i] = replace(self.jobs[i], n_trials=n)
        log.info("round %d: %d folds left, trials re-planned for %.0f s", round_, len(alive), left)

    def _next(self, pending: list[int]) -> int | None:
        """The first pending job that may start now (a raced one waits for its round)."""
        for i in pending:
            job = self.jobs[i]
            race = self.race
            if race is None or job.pair in race.eliminated or race.may_start(job.pair, job.fold):
                return i
        return None

    def _without_running(self, job: FoldJob) -> FoldOutcome | None:
        """The row of a job that is not run: its pair was eliminated, or the budget is spent."""
        if self.race is not None and job.pair in self.race.eliminated:
            return self.race.eliminated[job.pair].outcome(job.fold)
        if self.deadline is not None and not self._answered(job):
            least = 0.0
            if self.cost is not None:
                least = self.cost.trial_seconds(job) + self.cost.fixed_seconds(job)
            if time.time() + least > self.deadline:
                return not_reached(job, self.budget_label)
        return None


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


def is_stored(answered: Callable[[FoldJob], int | None], job: FoldJob) -> bool:
    """Whether ``job`` has a stored outcome with at least the trials it asks for."""
    have = answered(job)
    return have is not None and have >= job.n_trials


def answered_trials(results_dir: Path, cfg: BenchmarkConfig) -> Callable[[FoldJob], int | None]:
    """``job -> trial budget its stored outcome satisfies`` (None: not done), from the last
    ``results.parquet`` of this config (a killed run's newer outcomes are simply re-read)."""
    path = Path(results_dir) / RESULTS_FILE
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
    address: str | None = None,
) -> Schedule:
    """The run's schedule: with a budget (or ``measure``, or more than one process) the cost of
    every pair is measured first, so jobs go longest first within each round and the budget's
    trials are planned; with ``racing``, k-fold protocols are raced."""
    budget_s = cfg.budget_seconds()
    if measure is None:
        measure = budget_s is not None or cfg.n_jobs > 1
    cost, t0 = None, time.perf_counter()
    answered = answered_trials(results_dir, cfg)
    # a rerun whose every fold is stored plans nothing: measuring costs would only take time
    if measure and plan.jobs and not all(is_stored(answered, j) for j in plan.jobs):
        trials_path = Path(results_dir) / TRIALS_FILE
        trials = read_table(trials_path) if trials_path.is_file() else None
        cost = CostModel.measure(plan.jobs, trials, seed=cfg.seed)
    measure_s = time.perf_counter() - t0
    jobs = list(plan.jobs)
    bplan = deadline = replan = value = None
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
        address=address,
        outcomes=FoldOutcomes(results_dir),
        results_dir=Path(results_dir),
    )
    ends_at = started_at + budget_s if budget_s is not None else None
    return Schedule(bplan, deadline, scheduler, measure_s, ends_at)
