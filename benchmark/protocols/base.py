"""The protocol contract: how tracks are split into outer folds, and how each outer training part
is split again for tuning.

Splits are made over *tracks*, never rows, so the segments of a track always stay on one side
(every protocol is track-grouped). The artist-grouped protocols also keep each artist on one side,
because GTZAN repeats artists and a model that has heard the artist scores far higher than one
that has not. Splits are computed once per benchmark over all its tracks, so every (feature set,
family) pair is scored on the same folds; a feature set that lacks a track simply lacks it there.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from benchmark.errors import ConfigError

if TYPE_CHECKING:
    from benchmark.data import Dataset

__all__ = ["OuterSplit", "Protocol", "feasible_splits", "kfold", "splits_table"]


@dataclass(frozen=True)
class OuterSplit:
    """One outer fold: tuning and refit see only ``train``; ``test`` is scored once."""

    fold: int
    train: np.ndarray
    test: np.ndarray


class Protocol(ABC):
    """A way to split tracks. ``group_by`` names what must not cross a split."""

    name: ClassVar[str]
    group_by: ClassVar[str]
    description: ClassVar[str]
    #: "k-fold" (scores averaged over folds) or "test split" (one held-out part)
    kind: ClassVar[str] = "k-fold"
    #: whether the final model may be chosen by this protocol's scores, and in which order
    #: (lower first: the most honest k-fold); None: never (a test split chooses nothing)
    selection_rank: ClassVar[int | None] = None
    #: what the protocol's numbers mean for their size, for the leaderboard: ("honest" or
    #: "optimistic", why); empty for a protocol that does not say
    estimate: ClassVar[tuple[str, str]] = ("", "")
    #: the parameters a config may give (``protocols: {name: {...}}``) and their types
    params: ClassVar[dict[str, type]] = {"n_folds": int}

    def __init__(self, n_folds: int = 10) -> None:
        self.n_folds = n_folds

    def unavailable(self, dataset: Dataset) -> str | None:
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "n_folds": self.n_folds, "group_by": self.group_by}

    def groups(self, dataset: Dataset, tracks: np.ndarray) -> np.ndarray:
        if self.group_by == "artist":
            return dataset.artist_groups(tracks)
        return np.asarray(tracks, dtype=object)

    @abstractmethod
    def outer_splits(self, dataset: Dataset, tracks: np.ndarray, seed: int) -> list[OuterSplit]:
        """Outer folds over ``tracks`` (all the benchmark's tracks)."""

    def inner_splits(
        self, dataset: Dataset, train_tracks: np.ndarray, n_splits: int, seed: int
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Tuning folds inside an outer training part, with the same grouping as the outer
        split (artists stay apart inside tuning too, or the tuned params would reward leakage).
        Returns pairs of track-id arrays."""
        y = dataset.labels_of(train_tracks)
        groups = self.groups(dataset, train_tracks)
        n_splits = feasible_splits(y, groups, n_splits)
        splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        return [
            (train_tracks[a], train_tracks[b])
            for a, b in splitter.split(np.zeros(len(y)), y, groups)
        ]


def feasible_splits(y: np.ndarray, groups: np.ndarray, wanted: int) -> int:
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise ConfigError(f"cannot split {len(y)} tracks in {n_groups} group(s)")
    return max(2, min(wanted, n_groups))


def kfold(
    tracks: np.ndarray, y: np.ndarray, groups: np.ndarray, n_folds: int, seed: int, grouped: bool
) -> list[OuterSplit]:
    n_folds = feasible_splits(y, groups, n_folds)
    splitter: StratifiedKFold | StratifiedGroupKFold
    if grouped:
        splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    else:
        counts = np.bincount(y)
        min_count = int(counts[counts > 0].min())
        if min_count < n_folds:
            raise ConfigError(
                f"stratified {n_folds}-fold needs at least {n_folds} tracks per genre; "
                f"the smallest genre here has {min_count}: lower n_folds"
            )
        splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    folds = splitter.split(np.zeros(len(y)), y, groups if grouped else None)
    return [OuterSplit(fold=k, train=tracks[a], test=tracks[b]) for k, (a, b) in enumerate(folds)]


def splits_table(protocol: Protocol, splits: list[OuterSplit]) -> pd.DataFrame:
    """Long table (protocol, fold, track_id, part) saved with the results for auditing."""
    frames = [
        pd.DataFrame({"protocol": protocol.name, "fold": s.fold, "track_id": ids, "part": part})
        for s in splits
        for part, ids in (("train", s.train), ("test", s.test))
    ]
    return pd.concat(frames, ignore_index=True)
