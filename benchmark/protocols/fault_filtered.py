"""The fault-filtered split of Kereliuk, Sturm & Larsen (2015): one held-out test part."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from benchmark.protocols.base import OuterSplit, Protocol

if TYPE_CHECKING:
    from benchmark.data import Dataset

__all__ = ["FaultFilteredProtocol"]


class FaultFilteredProtocol(Protocol):
    name = "fault_filtered"
    estimate = (
        "honest",
        "the fault-filtered split (Kereliuk, Sturm & Larsen 2015): one fixed test part, "
        "artists and repeated clips kept apart",
    )
    group_by = "artist"
    kind = "test split"
    params: ClassVar[dict[str, type]] = {}
    description = (
        "the fault-filtered split of Kereliuk, Sturm & Larsen (2015): tune on train+valid "
        "(artist-grouped inner CV), score once on the 290 test tracks"
    )

    def __init__(self, **params: Any) -> None:
        super().__init__(n_folds=1)

    def unavailable(self, dataset: Dataset) -> str | None:
        if not dataset.has_fault_filtered:
            return "no fault-filtered split lists (splits/*_filtered.txt)"
        return None

    def outer_splits(self, dataset: Dataset, tracks: np.ndarray, seed: int) -> list[OuterSplit]:
        part = dataset.tracks.set_index("track_id")["ff_split"].reindex(tracks).to_numpy()
        train = tracks[(part == "train") | (part == "valid")]
        test = tracks[part == "test"]
        return [OuterSplit(fold=0, train=train, test=test)]
