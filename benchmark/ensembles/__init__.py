"""Ensembles over the tuned pairs of every feature set, learnt from inner OOF predictions only
(greedy selection, stacking, top-k vote): see :mod:`benchmark.ensembles._stage`."""

from typing import TYPE_CHECKING, Any

from benchmark.ensembles._methods import (
    METHODS,
    EnsembleMethod,
    GreedySelection,
    Stacking,
    TopKVote,
)
from benchmark.ensembles._model import EnsembleMember, EnsembleModel

if TYPE_CHECKING:
    from benchmark.ensembles._stage import (
        ENSEMBLE_FEATURE_SET,
        EnsembleSettings,
        FoldPool,
        TrainingPool,
        build_pool,
        ensemble_outcomes,
        fit_fold,
        left_out_for_coverage,
        members_of,
        run_ensemble_stage,
        training_pool,
    )


def __getattr__(name: str) -> Any:
    """The stage's names (those of ``__all__`` not imported above), imported on first use:
    unpickling an exported ensemble (``predict``) needs only the methods and the model, not the
    stage's pandas and results tables."""
    if name in __all__:
        from benchmark.ensembles import _stage

        return getattr(_stage, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    "left_out_for_coverage",
    "members_of",
    "run_ensemble_stage",
    "training_pool",
]
