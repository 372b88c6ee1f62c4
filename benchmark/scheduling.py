"""Which fold job runs next, on which process, and when to stop starting them.

Jobs go round by round (fold ``r`` of every pair and protocol; a single split is round 0) and,
within a round, longest first by the cost model (:mod:`benchmark.cost`), so that the cores are
not left with one long study at the end and a budget that runs out leaves every pair with the
same folds. A raced pair (:mod:`benchmark.racing`) starts its fold ``r`` only once round
``r - 1`` of its protocol is decided; an eliminated pair's folds become ``eliminated`` rows
without running. Once the run's deadline is near, a fold that cannot finish a trial before it
is not started: it becomes a ``skip`` row that says so (a rerun with a larger budget runs it).
Under a budget, each finished study's inner-CV scores tell the next rounds' re-plan what more
trials are worth to its pair (:class:`benchmark.budget.TuningValue`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, replace
from typing import Any

from benchmark.budget import TuningValue, not_reached
from benchmark.cost import CostModel, makespan
from benchmark.racing import Race
from benchmark.results import FoldOutcome
from benchmark.storage import open_storage
from benchmark.tuning import FoldJob, finished_trials, inner_scores, run_fold

__all__ = ["Scheduler", "dispatch_order"]

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

    def submit(self, fn: Callable[..., FoldOutcome], *args: Any) -> Future[FoldOutcome]:
        future: Future[FoldOutcome] = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # re-raised by result(), e.g. fail_fast
            future.set_exception(exc)
        return future

    def shutdown(self, **_: Any) -> None:
        pass


_watched_parent: int | None = None


def _exit_with_parent(parent: int, interval_s: float = 2.0) -> None:
    """Make this pool process exit once ``parent`` is gone. A SIGKILLed ``genrebench run``
    cannot stop its worker processes, which would otherwise finish (and waste) a long fold each,
    holding the cores a restarted run needs. Its fold's trials are failed and redone on resume."""
    global _watched_parent
    if _watched_parent == parent or os.getpid() == parent:
        return
    _watched_parent = parent

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval_s)
        log.warning("the benchmark process %d is gone: this worker stops too", parent)
        os._exit(3)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _run_fold_in_pool(job: FoldJob, parent: int) -> FoldOutcome:
    _exit_with_parent(parent)
    return run_fold(job)


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
        have = self.answered(job) if self.answered is not None else None
        return have is not None and have >= job.n_trials

    def run(self) -> Iterator[tuple[FoldOutcome, bool]]:
        """Outcomes as they finish, each with whether it ran (False: an ``eliminated`` or
        not-reached row made here)."""
        if self.n_jobs <= 1:
            executor: Any = _InProcess()
        else:
            from joblib.externals.loky import get_reusable_executor

            executor = get_reusable_executor(max_workers=self.n_jobs, reuse=False)
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
        parent = os.getpid()
        while pending or running:
            while len(running) < max(1, self.n_jobs) and pending:
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
                running[executor.submit(_run_fold_in_pool, job, parent)] = i
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
                if self.cost is not None:
                    self.cost.observe(outcome, outcome.n_trials + outcome.n_pruned)
                if self.race is not None:
                    self.race.record(outcome)
                if self.value is not None and outcome.status == "done":
                    self._learn_value(self.jobs[i])
                yield outcome, True
            if self.race is not None:
                self.race.settle()

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
