"""What computing a feature set from the audio would cost, without computing it.

``genrebench run --dry-run`` plans a study before any clip is extracted: a set computed from
audio that is not in the cache yet gets a *placeholder* matrix, random rows of the shape one
probed clip gives, on the tracks that have audio, so the cost model can time its families'
fits, and an :class:`ExtractionEstimate`: clips to extract times the set's measured CPU seconds
per clip (:attr:`~benchmark.features.audio_base.AudioFeatureSet.extract_cpu_s`, dated figures
in docs/measurements/audio.md), or, for a set without that figure, the CPU time of the probe
(which includes the set's one-time start-up, so it errs on the long side).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from benchmark.features.audio_base import AudioFeatureSet
from benchmark.features.base import FeatureMatrix

if TYPE_CHECKING:
    from benchmark.data import Dataset

__all__ = [
    "ExtractionEstimate",
    "extraction_estimate",
    "extraction_wall_s",
    "placeholder_matrix",
]


@dataclass(frozen=True)
class ExtractionEstimate:
    """One (audio feature set, input kind) of a plan: how many clips it reads, what that costs."""

    feature_set: str
    input_kind: str
    #: clips to compute (tracks with an audio file), augmented copies counted as clips
    clips: int
    cpu_s_per_clip: float
    #: ``measured`` (the set's dated figure) or ``probe`` (one clip timed by the dry run)
    source: str
    #: already in the cache: the run reads it back and extracts nothing
    cached: bool

    @property
    def core_s(self) -> float:
        """CPU seconds the run will spend extracting (0 when cached)."""
        return 0.0 if self.cached else self.clips * self.cpu_s_per_clip


def _clips(fset: AudioFeatureSet, dataset: Dataset) -> int:
    n = int(dataset.tracks["audio_path"].notna().sum())
    copies = len(fset.augmentation.copies) if fset.augmentation is not None else 0
    return n * (1 + copies)


def extraction_estimate(
    fset: AudioFeatureSet,
    dataset: Dataset,
    input_kind: str,
    cached: bool,
    probe_cpu_s: float | None,
) -> ExtractionEstimate:
    """The estimate of ``fset``'s ``input_kind`` rows: its measured figure per clip, else the
    probe's."""
    per_clip = fset.extract_cpu_s
    source = "measured"
    if per_clip is None:
        per_clip, source = float(probe_cpu_s or 0.0), "probe"
    return ExtractionEstimate(
        fset.name, input_kind, _clips(fset, dataset), per_clip, source, cached
    )


def placeholder_matrix(
    fset: AudioFeatureSet, dataset: Dataset, input_kind: str, seed: int = 0
) -> tuple[FeatureMatrix, float]:
    """Random rows shaped like ``fset``'s rows of ``input_kind`` (each its genre's mean plus noise),
    one clip's worth for every track with audio (tracks without are ``missing``, as in a real
    extraction), and the CPU seconds the one probed clip took. Only the shapes are real: good
    for timing fits, never for scoring."""
    tracks = dataset.tracks
    have = tracks[tracks["audio_path"].notna()]
    t0 = time.process_time()
    probe = fset.file_rows(Path(str(have["audio_path"].iloc[0])), input_kind)
    probe_cpu_s = time.process_time() - t0
    rng = np.random.default_rng(seed)
    n_rows = len(probe)
    row_track = np.repeat(have["track_id"].to_numpy(dtype=str), n_rows)
    # a genre mean plus noise: learnable like real rows (on pure noise solvers run to their
    # iteration limits and the estimate would be far too long)
    means = rng.standard_normal((len(dataset.classes), *probe.shape[1:]))
    noise = rng.standard_normal((len(row_track), *probe.shape[1:]))
    X = (means[dataset.labels_of(row_track)] + noise).astype(probe.dtype)
    missing = {str(t): "no audio file" for t in tracks.loc[tracks["audio_path"].isna(), "track_id"]}
    fm = FeatureMatrix(X, row_track, fset.feature_names(input_kind), missing or None)
    return fm, probe_cpu_s


def extraction_wall_s(estimates: Sequence[ExtractionEstimate], n_jobs: int) -> float:
    """Wall seconds of the extractions still to do: each set extracts on ``n_jobs`` processes
    (at most the cores), one set after the other."""
    cores = os.cpu_count() or 1
    procs = max(1, min(n_jobs if n_jobs > 0 else cores, cores))
    return sum(e.core_s for e in estimates) / procs
