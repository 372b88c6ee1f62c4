"""Ensembles over the tuned pairs of every feature set, learnt from inner OOF predictions only
(greedy selection, stacking, top-k vote): see :mod:`benchmark.ensembles._stage`."""

from benchmark.ensembles._methods import (
    METHODS,
    EnsembleMethod,
    GreedySelection,
    Stacking,
    TopKVote,
)
from benchmark.ensembles._model import EnsembleMember, EnsembleModel
from benchmark.ensembles._stage import (
    ENSEMBLE_FEATURE_SET,
    EnsembleSettings,
    FoldPool,
    TrainingPool,
    build_pool,
    ensemble_outcomes,
    fit_fold,
    members_of,
    run_ensemble_stage,
    training_pool,
)

__all__ = [
    "ENSEMBLE_FEATURE_SET",
    "METHODS",
    "EnsembleMember",
    "EnsembleMethod",
    "EnsembleModel",
    "EnsembleSettings",
    "FoldPool",
    "GreedySelection",
    "Stacking",
    "TopKVote",
    "TrainingPool",
    "build_pool",
    "ensemble_outcomes",
    "fit_fold",
    "members_of",
    "run_ensemble_stage",
    "training_pool",
]
