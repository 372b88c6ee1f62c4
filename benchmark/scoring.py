"""Scoring lives in one place: families predict rows, the harness turns rows into track scores.

Segment feature sets (csv_3s, crops) predict one probability row per segment; a track's
prediction is the mean of its segments' probabilities (``accuracy``) and, as the seed author
did, the majority vote of its segments' argmax (``accuracy_vote``). Clip-level sets have one
row per track, where both are the same.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

# pandas and scikit-learn are imported inside the functions that need them: the inference
# pool imports align_proba and must start without loading either

__all__ = [
    "PROBA_FLOOR",
    "TrackPredictions",
    "aggregate_tracks",
    "align_proba",
    "score_tracks",
    "true_class_log_loss",
]

#: probabilities are clipped here before any log loss, so one confident miss is finite
PROBA_FLOOR = 1e-7


def true_class_log_loss(proba: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log probability of the true class (floored at :data:`PROBA_FLOOR`).

    The cheap log loss of an inner choice (ensemble weights, a network's early stopping): no
    renormalisation and no scikit-learn, so it can run thousands of times per fold.
    """
    p = np.clip(proba[np.arange(len(y)), y], PROBA_FLOOR, 1.0)
    return float(-np.log(p).mean())


def align_proba(proba: np.ndarray, model_classes: np.ndarray, n_classes: int) -> np.ndarray:
    """Columns of ``predict_proba`` placed at their class index in a ``(n, n_classes)`` matrix.

    A training part may lack a genre (a tiny dataset, an artist-grouped fold); the model then
    has fewer columns and the absent genre gets probability 0.
    """
    out = np.zeros((len(proba), n_classes), dtype=np.float64)
    out[:, np.asarray(model_classes, dtype=int)] = proba
    return out


class TrackPredictions:
    """Per-track predictions: ids, mean probabilities and majority-vote labels."""

    def __init__(self, track_ids: np.ndarray, proba: np.ndarray, vote: np.ndarray) -> None:
        self.track_ids = track_ids
        self.proba = proba
        self.vote = vote

    @property
    def pred(self) -> np.ndarray:
        return self.proba.argmax(axis=1)

    def frame(self, y_true: np.ndarray, classes: Sequence[str]) -> pd.DataFrame:
        """The OOF predictions table of :mod:`benchmark.results` for these tracks."""
        import pandas as pd

        names = np.asarray(classes, dtype=object)
        df = pd.DataFrame(
            {
                "track_id": self.track_ids.astype(str),
                "y_true": names[y_true],
                "y_pred": names[self.pred],
                "y_vote": names[self.vote],
                "correct": self.pred == y_true,
            }
        )
        for i, c in enumerate(classes):
            df[f"proba_{c}"] = self.proba[:, i]
        return df


def aggregate_tracks(row_proba: np.ndarray, row_track: np.ndarray) -> TrackPredictions:
    """Mean probability and majority vote per track (tracks in first-seen order).

    Vote ties go to the class with the higher mean probability, so the vote is deterministic.
    """
    row_track = np.asarray(row_track)
    tracks, first, inverse = np.unique(row_track, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    n_tracks, n_classes = len(tracks), row_proba.shape[1]
    sums = np.zeros((n_tracks, n_classes))
    np.add.at(sums, inverse, row_proba)
    counts = np.bincount(inverse, minlength=n_tracks).astype(np.float64)
    mean = sums / counts[:, None]
    votes = np.zeros((n_tracks, n_classes))
    np.add.at(votes, (inverse, row_proba.argmax(axis=1)), 1.0)
    # break vote ties by mean probability (strictly smaller than one vote)
    vote = (votes + mean * 1e-3).argmax(axis=1)
    return TrackPredictions(tracks[order], mean[order], vote[order])


def score_tracks(y_true: np.ndarray, pred: TrackPredictions, n_classes: int) -> dict[str, float]:
    """The metrics of :data:`benchmark.results.METRICS` on track-level predictions."""
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, log_loss

    labels = np.arange(n_classes)
    with warnings.catch_warnings():
        # a small test part may lack a genre the model predicts: the metric is still defined
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        balanced = float(balanced_accuracy_score(y_true, pred.pred))
    proba = np.clip(pred.proba, PROBA_FLOOR, 1.0)
    proba = proba / proba.sum(axis=1, keepdims=True)
    return {
        "accuracy": float(accuracy_score(y_true, pred.pred)),
        "balanced_accuracy": balanced,
        "macro_f1": float(
            f1_score(y_true, pred.pred, labels=labels, average="macro", zero_division=0)
        ),
        "log_loss": float(log_loss(y_true, proba, labels=labels)),
        "accuracy_vote": float(accuracy_score(y_true, pred.vote)),
    }
