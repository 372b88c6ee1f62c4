"""A study shared by many workers: the owner tunes and scores it, idle workers add trials.

The owner of a claimed (pair, fold) tunes with the others' help and writes the outcome only
while its claim holds (:func:`run_fold_shared`); a worker with nothing to claim adds one trial
to a study another owns while its global budget has room (:func:`help_study`). Racing is the
benchmark's, rebuilt from the stored outcomes by every worker (:class:`StoredRace`), so all
workers eliminate the same pairs after the same folds as one ``genrebench run``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna

from benchmark.config import RacingSettings
from benchmark.errors import GenrebenchError
from benchmark.execution.racing import Race, folds_per_protocol
from benchmark.execution.workers.board import BenchmarkRecord, fold_key
from benchmark.results import FoldOutcome, PairKey
from benchmark.search_space import SearchSpace
from benchmark.trial_count import Shared, budget_of, run_trial
from benchmark.tuning import OUTCOME_ATTR, FoldJob, evaluate_fold, inner_cv_objective, load_study

__all__ = ["LostClaim", "StoredRace", "help_study", "run_fold_shared"]


@dataclass
class StoredRace:
    """The benchmark's race as the stored outcomes decide it. Every worker feeds the same
    finished folds to the same :class:`~benchmark.execution.racing.Race`, which decides a round
    only once every racing pair has finished it, so all workers agree on who is eliminated and
    when."""

    race: Race
    folds: dict[str, tuple[PairKey, int]]  # study -> its (pair, fold), every job of the benchmark
    recorded: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, record: BenchmarkRecord) -> StoredRace | None:
        m = record.manifest
        settings = RacingSettings.from_config(m.get("racing"), f"benchmark {record.name!r}")
        if settings is None:
            return None
        folds = {j["study"]: (PairKey(*j["pair"]), int(j["fold"])) for j in m["jobs"]}
        pairs = {pair for pair, _ in folds.values()}
        rounds = folds_per_protocol(folds.values())
        race = Race.of(settings, pairs, m["raced"], [tuple(m["baseline"])], rounds)
        return cls(race, folds)

    def update(self, claims: dict[str, Any], storage: Any) -> None:
        """Record the folds finished since the last look (their outcomes are stored for good)."""
        for study in self.folds.keys() - self.recorded:
            claim = claims.get(fold_key(study))
            if claim is None or not claim.done:
                continue
            if claim.payload:
                outcome = FoldOutcome.from_json(json.loads(claim.payload))
            else:
                attrs = storage.get_study_user_attrs(storage.get_study_id_from_name(study))
                outcome = FoldOutcome.from_json(attrs[OUTCOME_ATTR])
            self.race.record(outcome)
            self.recorded.add(study)
        self.race.settle()  # logs each elimination

    def may_claim(self, study: str) -> bool:
        pair, fold = self.folds[study]
        return pair in self.race.eliminated or self.race.may_start(pair, fold)

    def eliminated(self, study: str) -> FoldOutcome | None:
        pair, fold = self.folds[study]
        e = self.race.eliminated.get(pair)
        return None if e is None else e.outcome(fold)


class LostClaim(GenrebenchError):
    """Another worker took this (pair, fold) over (ours had expired): nothing is written."""


def run_fold_shared(
    job: FoldJob, shared: Shared, owns: Callable[[], bool] | None = None
) -> tuple[FoldOutcome, bool]:
    """:func:`benchmark.tuning.run_fold` for a worker that claimed the (pair, fold): tunes with
    the other workers' help and writes the outcome only while ``owns()`` (its claim) holds;
    raises :class:`LostClaim` otherwise. Returns the outcome and whether it was computed here
    (else it was found stored)."""
    import sqlalchemy.exc

    def checkpoint(when: str) -> None:
        if owns is not None and not owns():
            raise LostClaim(f"{job.study_name}: claim taken over {when}")

    # not the fold's fault: another worker (or this one, later) does it again
    not_the_fold = (
        LostClaim,
        sqlalchemy.exc.SQLAlchemyError,
        optuna.exceptions.StorageInternalError,
    )
    return evaluate_fold(job, shared, checkpoint, not_the_fold=not_the_fold)


def help_study(job: FoldJob, shared: Shared) -> bool:
    """Run one trial of a study another worker owns, if its budget has room; False if not.

    The helper samples with its own seed (a second sampler seeded like the owner's would
    propose the owner's params again); the owner alone refits and scores the fold.
    """
    if job.n_trials == 0 or SearchSpace.from_dict(job.space, source=job.pair.family).fixed:
        return False
    study = load_study(job, shared.storage, salt=("helper", shared.worker))
    if study.user_attrs.get(OUTCOME_ATTR) is not None:
        return False
    trials = study.get_trials(deepcopy=False)
    budget = budget_of(trials, job.n_trials)
    if not trials or budget.done:  # not started by its owner yet (it enqueues the defaults)
        return False
    if budget.full:
        return False
    space = SearchSpace.from_dict(job.space, source=f"{job.pair.family} (stored)")
    run_trial(study, shared.storage, inner_cv_objective(job, space), job.n_trials, shared)
    return True
