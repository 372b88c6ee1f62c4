"""What a person sees of a study in optuna-dashboard: the objective's name and a few readable
user attributes (pair, protocol, fold, budget), in place of "Objective 0" and a study name that
is a key.

Labels are written only when they differ from what the storage holds (a resumed study, a helper
loading it again: no write), and neither the sampler nor the pruner reads them, so they change
no trial's params and no score.
"""

from __future__ import annotations

import warnings
from typing import Any

import optuna

from benchmark.results import PairKey

__all__ = ["OBJECTIVE_NAME", "label_study", "study_labels"]

#: what every study maximises: the accuracy of the inner cross-validation on the outer
#: training part (the same name as the trial runs' MLflow metric ``inner_accuracy`` describes)
OBJECTIVE_NAME = "inner_cv_accuracy"

#: the protocol name of the final model's study (every track, no outer test part)
_FINAL = "final"


def study_labels(pair: PairKey, fold: int, n_trials: int) -> dict[str, Any]:
    """The user attributes of the study of ``pair``'s outer ``fold``: pair ("feature set ·
    family"), protocol, fold and the trial budget it was planned with."""
    final = pair.protocol == _FINAL
    return {
        "pair": f"{pair.feature_set} · {pair.family}",
        "protocol": "final model (every track)" if final else pair.protocol,
        "fold": "none (every track)" if final else int(fold),
        "budget": f"{int(n_trials)} trials",
    }


def label_study(study: optuna.Study, pair: PairKey, fold: int, n_trials: int) -> None:
    """Name the objective and set the readable attributes of ``study`` (writes only what
    changed: the budget of a rerun that plans more trials)."""
    if study.metric_names != [OBJECTIVE_NAME]:
        with (
            warnings.catch_warnings()
        ):  # experimental since Optuna 3.2, and what the dashboard reads
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([OBJECTIVE_NAME])
    have = study.user_attrs
    for key, value in study_labels(pair, fold, n_trials).items():
        if have.get(key) != value:
            study.set_user_attr(key, value)
