"""An exported ensemble: its members' refit estimators and the fitted combination.

``genrebench predict`` computes every member's features from the song, asks each member for its
class probabilities (mean over the clip's rows) and hands them to :meth:`EnsembleModel.combine`,
which combines them exactly as the ensemble method did in the benchmark's folds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchmark.ensembles._methods import EnsembleMethod

__all__ = ["EnsembleMember", "EnsembleModel"]


@dataclass
class EnsembleMember:
    """One member: which features it reads and its estimator, refit on every track."""

    feature_set: str
    family: str
    feature_params: dict[str, Any]
    #: what the member's family consumes (``Family.input_kind``)
    input_kind: str
    params: dict[str, Any]
    weight: float
    estimator: Any = field(repr=False)
    #: the registered feature set a config's feature variant ``feature_set`` is made of (None:
    #: ``feature_set`` is registered itself)
    feature_of: str | None = None

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickle, also a member pickled before ``input_kind`` was renamed from ``view``
        (an ensemble exported then still loads)."""
        state = dict(state)
        if "view" in state:
            state.setdefault("input_kind", state.pop("view"))
        self.__dict__.update(state)

    @property
    def label(self) -> str:
        return f"{self.feature_set} · {self.family}"

    def describe(self) -> dict[str, Any]:
        """The member as ``model.json`` lists it."""
        out = {
            "feature_set": self.feature_set,
            "family": self.family,
            "feature_params": self.feature_params,
            "input_kind": self.input_kind,
            "params": self.params,
            "weight": round(self.weight, 6),
        }
        if self.feature_of is not None:
            out["feature_of"] = self.feature_of
        return out


class EnsembleModel:
    """The combination of ``members`` by a fitted :class:`EnsembleMethod`.

    ``member_index`` places each kept member in the method's member order (``n_members`` in
    all); members the method gave no weight were not refit and count as absent.
    """

    def __init__(
        self,
        method: EnsembleMethod,
        members: Sequence[EnsembleMember],
        member_index: Sequence[int],
        n_members: int,
    ) -> None:
        if len(members) != len(member_index):
            raise ValueError("one position per member")
        self.method = method
        self.members = list(members)
        self.member_index = list(member_index)
        self.n_members = n_members

    def combine(self, member_proba: Sequence[np.ndarray]) -> np.ndarray:
        """Class probabilities ``(n, classes)`` from each member's ``(n, classes)``."""
        first = np.asarray(member_proba[0])
        P = np.full((self.n_members, *first.shape), np.nan)
        for i, p in zip(self.member_index, member_proba, strict=True):
            P[i] = p
        return self.method.predict_proba(P)
