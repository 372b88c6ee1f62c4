"""A wall-clock budget for a whole run: how many trials fit, and when to stop starting work.

``--budget 1h`` (``budget:`` in a config) is planned before anything runs, with the cost model
(:mod:`benchmark.execution.cost`): every study may tune for the same number of seconds at most (the
largest cap whose estimated wall time on ``n_jobs`` processes, plus the stages after the folds,
fits the budget), never fewer than one trial nor more than it planned. A cap, not a common
share, because trials cost from milliseconds (LDA) to minutes (a forest on 3-s segments): a
share small enough for the forest would leave the cheap families, whose trials cost nothing,
with one or two each, and their ranking a matter of luck. At run time the budget's end is a
deadline: no study starts a trial after it, and a fold that could not start before it is a
``skip`` row saying so. Nothing of the budget enters the config digest: a rerun with a larger
budget finds the same studies, keeps every finished trial and continues the studies the first
budget ended early.

One cap for all is blind to what trials are worth: an LDA's best inner score is settled after
a few trials, a sigmoid SVM's good region is a corner its early trials rarely hit. So as each
round of folds is re-planned, a pair's cap is scaled by what its finished studies' last trials
still found (:class:`TuningValue`: how much the second half of a study's trials raised its best
inner-CV accuracy, against the other pairs'), within x0.5..x2: the seconds move to the pairs
whose tuning is not done. Only inner-CV scores enter (each study's own training part), never
an outer test fold's predictions; like racing's decisions they come from earlier folds, whose
training parts hold later folds' test tracks, and they set only how many trials a later study
gets, never its params. The first round (the fault-filtered split among it), with nothing
learnt yet, is planned with one cap.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from benchmark.execution.cost import ENSEMBLE_FOLD_S, CostModel, makespan
from benchmark.results import FoldOutcome
from benchmark.tuning.job import FoldJob

__all__ = ["BudgetPlan", "TuningValue", "capped_trials", "late_gain", "not_reached", "plan_budget"]


#: the plan keeps this share of the budget for what it cannot foresee (load, stragglers)
SAFETY = 0.9


#: how far what a pair's trials still find may scale its cap, down and up
VALUE_RANGE = (0.5, 2.0)


#: a study says what its last trials found only with this many complete trials (its second
#: half then has three)
MIN_GAIN_TRIALS = 6


#: pairs with fewer such studies keep the common cap: no evidence either way
MIN_GAIN_STUDIES = 2


#: added to every gain so that pairs whose trials all found nothing compare as equals
GAIN_FLOOR = 1e-3


def late_gain(scores: Sequence[float]) -> float | None:
    """How much the second half of a study's trials (inner-CV scores in the order run) raised
    its best score: near 0 once tuning is settled, large while it still finds better params.
    None with fewer than :data:`MIN_GAIN_TRIALS` trials (too few to tell)."""
    if len(scores) < MIN_GAIN_TRIALS:
        return None
    half = math.ceil(len(scores) / 2)
    return max(scores) - max(scores[:half])


@dataclass
class TuningValue:
    """What more trials are worth to each (feature set, family) pair, learnt from the late
    gains (:func:`late_gain`) of its finished studies; :meth:`weighting` scales its cap."""

    gains: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))

    def observe(self, job: FoldJob, scores: Sequence[float]) -> None:
        gain = late_gain(scores)
        if gain is not None:
            self.gains[(job.pair.feature_set, job.pair.family)].append(gain)

    def _means(self) -> dict[tuple[str, str], float]:
        return {k: statistics.fmean(v) for k, v in self.gains.items() if len(v) >= MIN_GAIN_STUDIES}

    def weights(self) -> dict[tuple[str, str], float]:
        """Each pair with evidence: sqrt(its mean late gain / the pairs' median), in
        :data:`VALUE_RANGE` (sqrt: a pair whose trials find ten times more gets about three
        times the seconds, not ten)."""
        means = self._means()
        if not means:
            return {}
        median = statistics.median(means.values()) + GAIN_FLOOR
        lo, hi = VALUE_RANGE
        return {k: min(hi, max(lo, math.sqrt((g + GAIN_FLOOR) / median))) for k, g in means.items()}

    def weighting(self) -> Callable[[FoldJob], float]:
        """``job -> its cap's factor`` as things stand (1: no evidence)."""
        weights = self.weights()
        return lambda job: weights.get((job.pair.feature_set, job.pair.family), 1.0)


def not_reached(job: FoldJob, budget_label: str = "") -> FoldOutcome:
    """The row of a fold the budget ended before it could start (a rerun with more runs it)."""
    budget = f" ({budget_label})" if budget_label else ""
    return FoldOutcome(
        job.pair,
        job.fold,
        "skip",
        f"not reached: the run's budget{budget} was spent before this fold could start; "
        "a rerun with a larger --budget runs it",
        study_name=job.study_name,
    )


@dataclass(frozen=True)
class BudgetPlan:
    """What a run will do: per job its trials, and the estimated time with and without the
    budget."""

    budget_s: float | None
    n_jobs: int
    cap_s: float | None  # seconds of tuning a study may take (None: every planned trial)
    trials: tuple[int, ...]  # per job, in the order given
    planned: tuple[int, ...]  # per job, its trials without the budget
    core_s: float  # estimated core-seconds of the folds left to do, with ``trials``
    wall_s: float  # estimated wall seconds of those folds on ``n_jobs`` processes
    after_s: float  # estimated ensemble stage + final model export
    full_core_s: float  # the same without the budget
    full_wall_s: float
    n_left: int  # jobs not answered by a stored outcome

    @property
    def share(self) -> float:
        """The share of all planned trials the budget keeps (1: all)."""
        total = sum(max(n, 0) for n in self.planned)
        return sum(max(n, 0) for n in self.trials) / total if total else 1.0

    @property
    def n_capped(self) -> int:
        """How many studies the budget gives fewer trials than planned."""
        return sum(1 for n, p in zip(self.trials, self.planned, strict=True) if n < p)

    @property
    def fits(self) -> bool:
        """Whether the plan (with its reduced trials) is expected to end within the budget."""
        return self.budget_s is None or self.wall_s + self.after_s <= self.budget_s

    def apply(self, jobs: Sequence[FoldJob], deadline: float | None) -> list[FoldJob]:
        """The jobs with their planned trials and the run's deadline."""
        return [
            replace(j, n_trials=n, deadline=deadline)
            for j, n in zip(jobs, self.trials, strict=True)
        ]


def capped_trials(n_trials: int, trial_s: float, cap_s: float | None) -> int:
    """A study's trials under a budget: as many of its ``n_trials`` as ``cap_s`` seconds of
    tuning hold at ``trial_s`` a trial, and at least one (the defaults)."""
    if n_trials <= 0 or cap_s is None or trial_s <= 0:
        return n_trials
    return max(1, min(n_trials, int(math.floor(cap_s / trial_s + 1e-9))))


def plan_budget(
    jobs: Sequence[FoldJob],
    cost: CostModel,
    n_jobs: int,
    budget_s: float | None,
    *,
    done: Callable[[FoldJob], int | None] = lambda job: None,
    order: Callable[[Sequence[FoldJob], CostModel], list[int]] | None = None,
    ensemble_folds: int = 0,
    reserve_after: bool = True,
    weight: Callable[[FoldJob], float] = lambda job: 1.0,
) -> BudgetPlan:
    """Plan ``jobs`` within ``budget_s`` (None: no budget). ``done(job)`` is the trial budget
    a stored outcome of the job already satisfies (None: not done), so a rerun plans only what
    is left; ``order`` is the dispatch order (default: as given); ``ensemble_folds`` the
    (protocol, outer fold) count of the ensemble stage; without ``reserve_after`` the budget is
    the folds' alone (a re-plan during the run, whose deadline already leaves that time);
    ``weight(job)`` scales the job's cap (:class:`TuningValue`)."""
    index = list(order(jobs, cost)) if order else list(range(len(jobs)))

    per_trial = [cost.trial_seconds(j) if cost.trials_of(j) else 0.0 for j in jobs]
    weights = [weight(j) for j in jobs]

    def capped(cap: float | None) -> list[int]:
        return [
            capped_trials(j.n_trials, s, None if cap is None else cap * w)
            for j, s, w in zip(jobs, per_trial, weights, strict=True)
        ]

    def estimate(cap: float | None) -> tuple[list[int], float, float]:
        trials = capped(cap)
        seconds = []
        for i in index:
            have = done(jobs[i])
            if have is not None and have >= trials[i]:
                seconds.append(0.0)
                continue
            left = trials[i] - (have or 0) if cost.trials_of(jobs[i], trials[i]) else 0
            seconds.append(cost.job_seconds(jobs[i], left))
        return trials, sum(seconds), makespan([s for s in seconds if s > 0], n_jobs)

    def after(cap: float | None) -> float:
        if not reserve_after:
            return 0.0
        # the export tunes a final study per candidate pair (an ensemble's members) with the
        # trials its folds got: one fold's cost per pair, on every track, one after another
        per_pair: dict[tuple[str, str], float] = {}
        for j, n in zip(jobs, capped(cap), strict=True):
            key = (j.pair.feature_set, j.pair.family)
            seconds = cost.job_seconds(j, n)
            per_pair[key] = max(per_pair.get(key, 0.0), seconds)
        return ensemble_folds * ENSEMBLE_FOLD_S + sum(per_pair.values()) * 1.1

    full_trials, full_core, full_wall = estimate(None)
    n_left = sum(1 for j, n in zip(jobs, full_trials, strict=True) if (done(j) or -1) < max(n, 0))

    def plan(cap: float | None) -> BudgetPlan:
        trials, core, wall = estimate(cap)
        return BudgetPlan(
            budget_s,
            n_jobs,
            cap,
            tuple(trials),
            tuple(full_trials),
            core,
            wall,
            after(cap),
            full_core,
            full_wall,
            n_left,
        )

    if budget_s is None or full_wall + after(None) <= budget_s * SAFETY:
        return plan(None)
    # the largest cap whose estimate fits (bisection: cost grows with it); beyond the longest
    # study's planned tuning a cap changes nothing
    longest = [max(n, 0) * s / w for n, s, w in zip(full_trials, per_trial, weights, strict=True)]
    lo, hi = 0.0, max(longest, default=0.0)
    for _ in range(40):
        mid = (lo + hi) / 2
        if estimate(mid)[2] + after(mid) <= budget_s * SAFETY:
            lo = mid
        else:
            hi = mid
    return plan(lo)
