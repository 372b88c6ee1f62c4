"""The sampler of every study: TPE whose randomness for a trial depends only on where the trial
stands, so that a run resumed after a kill samples what an uninterrupted run samples.

One seeded ``TPESampler`` per study draws from one random stream: the params of trial *k* then
depend on every draw made before it, in this process. A kill ends the process and with it the
stream, and a resumed run would draw different params for every later trial. Here the sampler
is made afresh before each trial, seeded by the study's seed and *k*, the number of counted
trials before it (a trial cut off by a kill, or ended unrun as surplus, is no trial). TPE reads
nothing else but the study's finished trials, so trial *k* of a resumed study gets the params
trial *k* of an uninterrupted one gets, the rerun of a killed trial included.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, TPESampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

__all__ = ["PositionSeededSampler"]


class PositionSeededSampler(BaseSampler):
    """A :class:`~optuna.samplers.TPESampler` reseeded before each trial with
    ``seed_of(k)``, ``k`` the number of trials numbered before it for which ``counts`` holds."""

    def __init__(
        self, seed_of: Callable[[int], int], counts: Callable[[FrozenTrial], bool]
    ) -> None:
        self._seed_of = seed_of
        self._counts = counts
        self._tpe = TPESampler(seed=seed_of(0))

    def position(self, study: Study, trial: FrozenTrial) -> int:
        """How many counted trials come before ``trial`` (its place in an uninterrupted run)."""
        return sum(
            t.number < trial.number and self._counts(t) for t in study.get_trials(deepcopy=False)
        )

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._tpe = TPESampler(seed=self._seed_of(self.position(study, trial)))
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
