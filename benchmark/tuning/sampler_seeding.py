"""The sampler of every study: TPE whose randomness for a trial depends only on where the trial
stands, so that a run resumed after a kill samples what an uninterrupted run samples.

One seeded ``TPESampler`` per study draws from one random stream: the params of trial *k* then
depend on every draw made before it, in this process. A kill ends the process and with it the
stream, and a resumed run would draw different params for every later trial. Here the sampler
is made afresh before each trial, seeded by the study's seed and *k*, the number of counted
trials before it (a trial cut off by a kill, or ended unrun as surplus, is no trial). TPE reads
nothing else but the study's finished trials, so trial *k* of a resumed study gets the params
trial *k* of an uninterrupted one gets, the rerun of a killed trial included.

TPE searches at random until ``n_startup_trials`` trials have finished (Optuna's default 10). A
study a run's budget cut short keeps the planned study's share of that random start
(:func:`startup_trials`): 15 of 40 planned trials with a 10-trial start would be two thirds
random search, and a tuning-sensitive family (a sigmoid SVM's good region is a corner of its
space) would rank by luck.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, TPESampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

__all__ = ["STARTUP_TRIALS", "PositionSeededSampler", "startup_trials"]

#: TPE's random start in a study that runs its planned trials (Optuna's default)
STARTUP_TRIALS = 10


def startup_trials(n_trials: int, planned: int | None) -> int:
    """Random trials before TPE models the study: :data:`STARTUP_TRIALS` for a study given
    its ``planned`` trials (or more), the same share of ``n_trials`` for one a budget cut
    (at least one: the defaults, which every study starts with)."""
    if planned is None or planned <= 0 or n_trials >= planned:
        return STARTUP_TRIALS
    return max(1, math.ceil(STARTUP_TRIALS * n_trials / planned))


class PositionSeededSampler(BaseSampler):
    """A :class:`~optuna.samplers.TPESampler` reseeded before each trial with
    ``seed_of(k)``, ``k`` the number of trials numbered before it for which ``counts`` holds;
    TPE models the study once ``n_startup_trials`` have finished."""

    def __init__(
        self,
        seed_of: Callable[[int], int],
        counts: Callable[[FrozenTrial], bool],
        n_startup_trials: int = STARTUP_TRIALS,
    ) -> None:
        self._seed_of = seed_of
        self._counts = counts
        self.n_startup_trials = n_startup_trials
        self._tpe = self._sampler(seed_of(0))

    def _sampler(self, seed: int) -> TPESampler:
        return TPESampler(seed=seed, n_startup_trials=self.n_startup_trials)

    def position(self, study: Study, trial: FrozenTrial) -> int:
        """How many counted trials come before ``trial`` (its place in an uninterrupted run)."""
        return sum(
            t.number < trial.number and self._counts(t) for t in study.get_trials(deepcopy=False)
        )

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._tpe = self._sampler(self._seed_of(self.position(study, trial)))
        self._tpe.before_trial(study, trial)

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._tpe.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._tpe.sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._tpe.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Any,
    ) -> None:
        self._tpe.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        """Nothing to do: every trial gets its own seed (Optuna calls this in forked
        processes, where a shared stream would repeat itself)."""
