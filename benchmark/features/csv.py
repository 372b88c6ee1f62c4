"""Feature sets read from Kaggle's pre-extracted feature CSVs (the 57 librosa features)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from benchmark.features.base import FeatureMatrix, FeatureSet

if TYPE_CHECKING:
    from benchmark.data import Dataset

__all__ = ["Csv30s", "Csv3s"]


class _KaggleCsv(FeatureSet):
    """Shared reading of both CSVs: validated by :func:`benchmark.data.read_features_csv`."""

    file_key: ClassVar[str]
    segmented: ClassVar[bool]

    def unavailable(self, dataset: Dataset) -> str | None:
        path = dataset.path(self.file_key)
        return None if path.exists() else f"{path.name} is not in {dataset.root}"

    def input_files(self, dataset: Dataset) -> list[Path]:
        return [dataset.path(self.file_key)]

    def build(self, dataset: Dataset, input_kind: str) -> FeatureMatrix:
        df = dataset.features_csv(segmented=self.segmented)
        if self.segmented:
            df = df.sort_values(["track_id", "segment"], kind="stable")
        cols = dataset.manifest.csv_feature_columns
        known = set(df["track_id"])
        missing = {
            t: f"not in {self.file_key}" for t in dataset.tracks["track_id"] if t not in known
        }
        return FeatureMatrix(
            X=df[cols].to_numpy(dtype="float64"),
            row_track=df["track_id"].to_numpy(dtype=str),
            feature_names=list(cols),
            missing=missing or None,
        )


class Csv30s(_KaggleCsv):
    """``features_30_sec.csv``: one row of 57 features per 30 s clip."""

    name = "csv_30s"
    file_key = "features_30s"
    segmented = False
    computed_from_audio_by = "librosa_30s"


class Csv3s(_KaggleCsv):
    """``features_3_sec.csv``: 57 features per 3 s segment, ten rows per clip, grouped by track;
    scored at track level by aggregating segment probabilities."""

    name = "csv_3s"
    file_key = "features_3s"
    segmented = True
    computed_from_audio_by = "librosa_3s"
