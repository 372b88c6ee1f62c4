"""The model-family contract: a name, an input kind and a builder.

Every family is an ordinary scikit-learn estimator built from a dict of (tuned) parameters and a
seed, so one tuning loop, one set of protocols and one scorer serve them all. Families predict;
the harness splits, tunes and scores (families never see test folds or compute metrics).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sklearn.base import BaseEstimator

__all__ = ["Family"]

Builder = Callable[[Mapping[str, Any], int], BaseEstimator]


@dataclass(frozen=True)
class Family:
    """One model family.

    Attributes:
        name: registry key; ``search_spaces/<name>.yaml`` holds its search space.
        input_kind: what it consumes, one of the ``input_kinds`` of a feature set:
            ``"tabular"`` (rows of features), ``"image"`` (spectrograms) or ``"waveform"`` (raw
            samples). It is paired with every feature set that gives that kind.
        build: ``build(params, seed)`` returns an unfitted estimator (a Pipeline whose
            preprocessing is fit on training data only) with ``fit``/``predict_proba``.
        description: one line for reports.
        fast_params: parameters that make the shared check suite fast on tiny data.
        requires: importable modules it needs; missing ones make it skip with an install hint.
        extra: the genrebench extra that installs ``requires`` (named in that hint).
        trains_in_epochs: its model step's ``fit`` takes ``groups`` (rows of one track stay on
            one side of its early-stopping split) and ``epoch_callback(epoch, logs)`` (per-epoch
            validation accuracy, so Optuna can prune a trial inside its first fit).
    """

    name: str
    input_kind: str
    build: Builder
    description: str
    fast_params: Mapping[str, Any] = field(default_factory=dict)
    requires: tuple[str, ...] = ()
    extra: str | None = None
    trains_in_epochs: bool = False

    def skip_reason(self) -> str | None:
        """Why this family cannot run here (a missing optional dependency), or ``None``."""
        import importlib.util

        for module in self.requires:
            if importlib.util.find_spec(module) is None:
                how = f"'genrebench[{self.extra}]'" if self.extra else module
                return f"needs the optional module {module!r}: pip install {how}"
        return None
