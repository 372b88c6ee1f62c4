"""The ways to combine tuned pairs: each learns from inner out-of-fold probabilities only.

Every method sees a stack ``P`` of member probabilities, shape ``(members, tracks, classes)``,
the tracks' labels and their inner fold (the group every internal choice is cross-validated
over), and learns how to combine the members. ``predict_proba`` then combines the members'
probabilities of *other* tracks (the outer test part) the same way. A member that did not
predict a track (its feature set lacks the track) holds NaN there: linear methods renormalise
their weights over the members present, stacking fills it with the uniform distribution.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from benchmark.scoring import true_class_log_loss

__all__ = ["EnsembleMethod", "GreedySelection", "METHODS", "Stacking", "TopKVote"]


class EnsembleMethod(ABC):
    """Learns member weights (or a meta-model) from the inner OOF stack."""

    name: ClassVar[str]
    description: ClassVar[str]
    #: each member's share of the combination, set by ``fit``
    weights_: np.ndarray
    #: whether ``predict_proba`` reads every member (a meta-model), or only weighted ones
    needs_every_member: ClassVar[bool] = False

    def __init__(self, **params: Any) -> None:
        self.params = params

    @abstractmethod
    def fit(self, P: np.ndarray, y: np.ndarray, groups: np.ndarray) -> EnsembleMethod:
        """Learn from ``P`` (members × tracks × classes, no NaN), labels and inner folds."""

    def weights(self) -> np.ndarray:
        """Each member's share of the combination (sums to 1); set by ``fit``."""
        return self.weights_

    def predict_proba(self, P: np.ndarray) -> np.ndarray:
        """Weighted mean over the members present for each track."""
        w = self.weights_[:, None, None] * np.ones_like(P)
        w = np.where(np.isnan(P), 0.0, w)
        total = w.sum(axis=0)
        out = np.nansum(np.nan_to_num(P) * w, axis=0) / np.where(total > 0, total, 1.0)
        return _normalise(out)


def _normalise(proba: np.ndarray) -> np.ndarray:
    s = proba.sum(axis=1, keepdims=True)
    return np.where(s > 0, proba / np.where(s > 0, s, 1.0), 1.0 / proba.shape[1])


class GreedySelection(EnsembleMethod):
    """Ensemble selection with replacement (Caruana et al. 2004, as in auto-sklearn and
    AutoGluon): start empty, add at each of ``size`` steps the member whose addition makes the
    running mean best on the OOF tracks; weights are how often each member was picked."""

    name = "greedy"
    description = "greedy ensemble selection with replacement (Caruana et al. 2004)"

    def fit(self, P: np.ndarray, y: np.ndarray, groups: np.ndarray) -> GreedySelection:
        size = int(self.params.get("size", 25))
        metric = str(self.params.get("metric", "log_loss"))
        counts = np.zeros(len(P))
        total = np.zeros(P.shape[1:])
        for step in range(size):
            candidates = (total[None] + P) / (step + 1)
            losses = np.array([_loss(c, y, metric) for c in candidates])
            best = int(np.argmin(losses))  # ties: the first member (the stack's order)
            counts[best] += 1
            total += P[best]
        self.weights_ = counts / counts.sum()
        return self


def _loss(proba: np.ndarray, y: np.ndarray, metric: str) -> float:
    if metric == "accuracy":  # error rate, ties broken by log loss (strictly below 1/n)
        return float(np.mean(proba.argmax(axis=1) != y)) + 1e-6 * true_class_log_loss(proba, y)
    return true_class_log_loss(proba, y)


class TopKVote(EnsembleMethod):
    """Equal-weight soft vote of the ``k`` members with the best OOF accuracy: the simple
    reference the other methods must beat."""

    name = "top_k"
    description = "soft vote of the top-k pairs by inner-CV accuracy"

    def fit(self, P: np.ndarray, y: np.ndarray, groups: np.ndarray) -> TopKVote:
        k = max(1, min(int(self.params.get("k", 5)), len(P)))
        accuracy = np.array([np.mean(p.argmax(axis=1) == y) for p in P])
        loss = np.array([true_class_log_loss(p, y) for p in P])
        order = np.lexsort((loss, -accuracy))  # best accuracy first, then lower log loss
        w = np.zeros(len(P))
        w[order[:k]] = 1.0 / k
        self.weights_ = w
        return self


class Stacking(EnsembleMethod):
    """A multinomial logistic regression on the members' OOF probabilities; its inverse
    regularisation ``C`` is chosen by leave-one-inner-fold-out CV on the OOF rows (log loss),
    so the artist grouping of the inner folds holds for the meta-model too. (Probabilities, not
    log-probabilities: on 24 members the log features made lbfgs take 150 s per fold, the
    probabilities converge in a second and scored as well.)"""

    name = "stacking"
    description = "regularised multinomial logistic regression on the members' probabilities"
    GRID: ClassVar[tuple[float, ...]] = (0.01, 0.1, 1.0)
    needs_every_member = True

    def _features(self, P: np.ndarray) -> np.ndarray:
        P = np.where(np.isnan(P), 1.0 / P.shape[2], P)
        return P.transpose(1, 0, 2).reshape(P.shape[1], -1)

    def _model(self, C: float) -> Any:
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=C, max_iter=500, tol=1e-3)

    def fit(self, P: np.ndarray, y: np.ndarray, groups: np.ndarray) -> Stacking:
        X = self._features(P)
        self.n_classes_ = P.shape[2]
        folds = np.unique(groups)
        scores = []
        for C in self.params.get("grid", self.GRID):
            losses = []
            for g in folds:
                train, valid = groups != g, groups == g
                if len(np.unique(y[train])) < 2:
                    continue
                m = self._model(C).fit(X[train], y[train])
                losses.append(true_class_log_loss(self._aligned(m, X[valid]), y[valid]))
            scores.append(float(np.mean(losses)) if losses else math.inf)
        self.C_ = float(self.params.get("grid", self.GRID)[int(np.argmin(scores))])
        self.model_ = self._model(self.C_).fit(X, y)
        # a member's share: the mass of the coefficients on its probability columns
        mass = np.abs(self.model_.coef_).reshape(len(self.model_.coef_), len(P), -1)
        mass = mass.sum(axis=(0, 2))
        self.weights_ = mass / mass.sum() if mass.sum() > 0 else np.full(len(P), 1 / len(P))
        return self

    def _aligned(self, model: Any, X: np.ndarray) -> np.ndarray:
        out = np.zeros((len(X), self.n_classes_))
        out[:, model.classes_] = model.predict_proba(X)
        return out

    def predict_proba(self, P: np.ndarray) -> np.ndarray:
        return self._aligned(self.model_, self._features(P))


#: the methods a config may name
METHODS: dict[str, type[EnsembleMethod]] = {
    m.name: m for m in (GreedySelection, Stacking, TopKVote)
}
