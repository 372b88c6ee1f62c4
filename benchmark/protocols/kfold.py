"""k-fold protocols: random stratified, and artist-grouped (every artist on one side)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from benchmark.protocols.base import OuterSplit, Protocol, kfold

if TYPE_CHECKING:
    from benchmark.data import Dataset

__all__ = ["ArtistKFoldProtocol", "StratifiedKFoldProtocol"]


class StratifiedKFoldProtocol(Protocol):
    name = "stratified_kfold"
    estimate = (
        "optimistic",
        "random split: the same artists appear in training and test folds, which inflates "
        "accuracy on GTZAN",
    )
    group_by = "track"
    selection_rank = 1  # optimistic (artists repeat), so only when no artist-grouped run
    description = (
        "random stratified k-fold over tracks (segments grouped by track); artists may repeat "
        "across folds, so this is the optimistic protocol most GTZAN papers report"
    )

    def outer_splits(self, dataset: Dataset, tracks: np.ndarray, seed: int) -> list[OuterSplit]:
        y = dataset.labels_of(tracks)
        return kfold(tracks, y, self.groups(dataset, tracks), self.n_folds, seed, grouped=False)


class ArtistKFoldProtocol(Protocol):
    name = "artist_kfold"
    estimate = ("honest", "artist-grouped: every artist on one side of each split")
    group_by = "artist"
    selection_rank = 0
    description = (
        "stratified k-fold with every artist (Sturm's GTZANindex) on one side only; "
        "tracks without a known artist are their own group"
    )

    def unavailable(self, dataset: Dataset) -> str | None:
        if not dataset.has_artists:
            return f"no artist index ({dataset.manifest.files['artists']}) in {dataset.root}"
        return None

    def outer_splits(self, dataset: Dataset, tracks: np.ndarray, seed: int) -> list[OuterSplit]:
        y = dataset.labels_of(tracks)
        return kfold(tracks, y, self.groups(dataset, tracks), self.n_folds, seed, grouped=True)
