"""The cost model: how long each fold job takes, estimated before it runs and as trials finish.

A run with a budget plans its trials with it (:mod:`benchmark.execution.time_budget`), ``genrebench
run
--dry-run`` prints it, and the scheduler (:mod:`benchmark.execution.schedule`) starts the longest
studies first. The cost of one fit of each (feature set, family) is *measured on the data*
when the plan is made: the family's search-space defaults fit on a subsample of the rows an
inner fold trains on, and on all of them when that is cheap, which gives the exponent of cost
in rows (about 1 for trees and networks, up to 2 for kernel SVMs). As soon as trials of a pair
have finished (an earlier run's, from ``trials.parquet``, or this run's), their measured
seconds per trial replace the estimate: tuned params cost what they cost, not what the
defaults do, and pruned trials are cheaper.
"""

from __future__ import annotations

import heapq
import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from benchmark.models import resolve_family
from benchmark.results import FoldOutcome
from benchmark.tuning.job import FoldJob
from benchmark.tuning.search_space import SearchSpace

__all__ = ["CostModel", "FitCost", "makespan", "measure_fit"]

log = logging.getLogger(__name__)


#: storage bookkeeping per trial on top of the fits (README: ~60 ms SQLite, ~35 ms MLflow)
TRIAL_OVERHEAD_S = 0.1


#: MLflow logging of one finished fold in the main process (README: ~0.3 s)
FOLD_OVERHEAD_S = 0.35


#: the ensemble stage per (protocol, outer fold): stacking's inner CV dominates (README: 1.6 s)
ENSEMBLE_FOLD_S = 2.0


#: a full-size fit projected longer than this (from the small one) is not made
EXPENSIVE_FIT_S = 20.0


@dataclass(frozen=True)
class FitCost:
    """Seconds of one fit + predict of a family's defaults at ``rows`` training rows; cost at
    other sizes scales as ``rows ** exponent``."""

    seconds: float
    rows: int
    exponent: float = 1.0

    def at(self, rows: float) -> float:
        if rows <= 0:
            return 0.0
        return self.seconds * (rows / max(1, self.rows)) ** self.exponent


def _time_fit(
    family_name: str,
    params: Mapping[str, Any],
    X: Any,
    y: np.ndarray,
    train: np.ndarray,
    valid: np.ndarray,
    seed: int,
    of: str | None = None,
) -> float:
    model = resolve_family(family_name, of).build(dict(params), seed)
    t0 = time.perf_counter()
    model.fit(X[train], y[train])
    model.predict_proba(X[valid])
    return time.perf_counter() - t0


def measure_fit(
    family_name: str, space: SearchSpace, X: Any, y: np.ndarray, rows: int, seed: int = 0
) -> FitCost:
    """Time the family's defaults on the data: on an eighth of ``rows`` (at least 64), then on
    all ``rows`` unless that first fit says a full one is expensive (a network), when cost is
    taken as linear in rows. Small fits mislead (a fit's fixed part, rank-deficient
    covariances, slower convergence), so the full size is what counts; the two sizes give the
    exponent used to scale to the outer training part. A family a subsample cannot fit (a
    class with too few rows) is timed on all rows only."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    rows = int(min(rows, len(y) - 1))
    params = {} if space.fixed else space.defaults_for_trial()
    valid = order[rows : rows + max(1, rows // 4)]

    def timed(n: int, with_params: Mapping[str, Any] = params) -> float:
        try:
            return _time_fit(family_name, with_params, X, y, order[:n], valid, seed, space.of)
        except Exception as exc:  # e.g. too few rows of a class for this family
            log.debug("cost of %s at %d rows not measured (%s)", family_name, n, exc)
            return math.nan

    n1 = int(min(rows, max(64, rows // 8)))
    # twice: the first fit of a family in a process pays its one-time costs (imports, caches)
    t1 = min(timed(n1), timed(n1))
    if math.isfinite(t1) and (n1 >= rows or t1 * rows / n1 > EXPENSIVE_FIT_S):
        return FitCost(t1, n1, 1.0)
    # the defaults are one trial of a study; the others are sampled: a random draw from the
    # search space stands for them (a default can be far from typical, e.g. a slow solver)
    t2 = timed(rows)
    if not space.fixed:
        t_random = timed(rows, _random_params(space, seed))
        t2 = float(np.nanmean([t2, t_random])) if math.isfinite(t_random) else t2
    if not math.isfinite(t2):
        return FitCost(t1 if math.isfinite(t1) else 1.0, n1, 1.0)
    exponent = 1.0
    if math.isfinite(t1) and t2 > t1 > 0:
        exponent = float(np.clip(math.log(t2 / t1) / math.log(rows / n1), 0.5, 2.0))
    return FitCost(t2, rows, exponent)


def _random_params(space: SearchSpace, seed: int) -> dict[str, Any]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return space.suggest(study.ask())


def makespan(costs: Sequence[float], n_jobs: int) -> float:
    """Wall seconds of running ``costs`` in this order on ``n_jobs`` processes, each job going
    to the first free one (what the scheduler does)."""
    free = [0.0] * max(1, n_jobs)
    for c in costs:
        heapq.heapreplace(free, free[0] + c)
    return max(free)


def _rows_of(job: FoldJob, tracks: np.ndarray) -> int:
    return int(np.isin(job.row_track, tracks).sum())


@dataclass
class CostModel:
    """Per pair: the measured cost of one fit, and (once trials finished) seconds per trial."""

    fits: dict[tuple[str, str], FitCost] = field(default_factory=dict)
    per_trial: dict[tuple[str, str], float] = field(default_factory=dict)
    _rows: dict[tuple[str, str, int], tuple[int, list[int]]] = field(default_factory=dict)
    _fixed: dict[str, bool] = field(default_factory=dict)

    def _untuned(self, job: FoldJob, n_trials: int) -> bool:
        family = job.pair.family
        if family not in self._fixed:
            self._fixed[family] = SearchSpace.from_dict(job.space, source=family).fixed
        return n_trials == 0 or self._fixed[family]

    @classmethod
    def measure(
        cls, jobs: Sequence[FoldJob], trials: pd.DataFrame | None = None, seed: int = 0
    ) -> CostModel:
        """Measure one fit per pair of ``jobs`` (skipping pairs ``trials`` already times)."""
        model = cls()
        if trials is not None and len(trials):
            model.learn_from_trials(trials)
        first: dict[tuple[str, str], FoldJob] = {}
        for job in jobs:
            first.setdefault((job.pair.feature_set, job.pair.family), job)
        for key, job in first.items():
            if key in model.per_trial:
                continue
            space = SearchSpace.from_dict(job.space, source=key[1])
            inner = [_rows_of(job, a) for a, _ in job.inner_splits]
            rows = int(np.mean(inner)) if inner else _rows_of(job, job.train_tracks)
            t0 = time.perf_counter()
            model.fits[key] = measure_fit(key[1], space, job.X, job.y, rows, job.seed)
            log.debug(
                "cost of %s · %s: %s (%.1f s)", *key, model.fits[key], time.perf_counter() - t0
            )
        return model

    def learn_from_trials(self, trials: pd.DataFrame) -> None:
        """Seconds per trial of each pair: the median over its finished trials."""
        finished = trials[trials["state"].isin(["COMPLETE", "PRUNED"])]
        for (fs, fam), g in finished.groupby(["feature_set", "family"], sort=False):
            seconds = pd.to_numeric(g["duration_s"], errors="coerce").dropna()
            if len(seconds):
                self.per_trial[(str(fs), str(fam))] = float(seconds.median())

    def observe(self, outcome: FoldOutcome, trials_run: int) -> None:
        """Refine a pair's seconds per trial from a fold that just finished."""
        if outcome.status == "done" and trials_run > 0 and outcome.tune_s > 0:
            key = (outcome.pair.feature_set, outcome.pair.family)
            seen = outcome.tune_s / trials_run
            old = self.per_trial.get(key)
            self.per_trial[key] = seen if old is None else 0.5 * (old + seen)

    def _job_rows(self, job: FoldJob) -> tuple[int, list[int]]:
        # rows differ between feature sets (a segment set has several per track)
        key = (job.pair.feature_set, job.pair.protocol, job.fold)
        if key not in self._rows:
            self._rows[key] = (
                _rows_of(job, job.train_tracks),
                [_rows_of(job, a) for a, _ in job.inner_splits],
            )
        return self._rows[key]

    def trial_seconds(self, job: FoldJob) -> float:
        """One trial: a fit and prediction per inner fold (or the pair's measured seconds)."""
        key = (job.pair.feature_set, job.pair.family)
        if key in self.per_trial:
            return self.per_trial[key]
        fit = self.fits.get(key, FitCost(1.0, 1000))
        _, inner = self._job_rows(job)
        return sum(fit.at(r) for r in inner) + TRIAL_OVERHEAD_S

    def fixed_seconds(self, job: FoldJob) -> float:
        """What a fold costs besides its trials: the refit on the outer training part, the inner
        out-of-fold predictions an untuned pair fits, and the fold's MLflow logging."""
        key = (job.pair.feature_set, job.pair.family)
        fit = self.fits.get(key)
        train, inner = self._job_rows(job)
        refit = fit.at(train) if fit else self.trial_seconds(job) / max(1, len(inner))
        untuned = self._untuned(job, job.n_trials)
        oof = sum(fit.at(r) for r in inner) if (untuned and fit) else 0.0
        return refit + oof + FOLD_OVERHEAD_S

    def trials_of(self, job: FoldJob, n_trials: int | None = None) -> int:
        n = job.n_trials if n_trials is None else n_trials
        return 0 if self._untuned(job, n) else n

    def job_seconds(self, job: FoldJob, n_trials: int | None = None) -> float:
        """Core-seconds of one fold job with ``n_trials`` (default: the job's), capped by its
        study's ``timeout_s``."""
        tune = self.trials_of(job, n_trials) * self.trial_seconds(job)
        if job.timeout_s is not None:
            tune = min(tune, float(job.timeout_s) + self.trial_seconds(job))
        return tune + self.fixed_seconds(job)

    def total(self, jobs: Iterable[FoldJob]) -> float:
        return sum(self.job_seconds(j) for j in jobs)
