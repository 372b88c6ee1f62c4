"""The one musicnn extraction every musicnn feature set derives its rows from: every embedding
layer of every 3-s patch of each clip.

``embedding_musicnn`` (one row per clip: mean and std over patches, any layer) and
``embedding_musicnn_3s`` (one row per patch, any layer) need the same forward pass of the same
patches, which computes all three layers at once; the network is the costly part (~0.3 CPU-s a
clip), the statistics are not. So both sets load :class:`MusicnnPatchLayers` through the
feature cache (one ``musicnn_patch_layers-…npz`` per decoding setting) and derive their rows
from it: a study with the clip rows of two layers and the patch rows extracts each clip once.
For one file (``predict``) they call :func:`patch_layers` directly. This module is private, so
the internal set is no user-facing feature set.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmark.audio.decoding import Clip
from benchmark.errors import ConfigError, DataError
from benchmark.features import _musicnn as mnn
from benchmark.features.audio_base import AudioFeatureSet
from benchmark.features.base import FeatureMatrix

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from benchmark.data import Dataset

__all__ = ["LAYER_COLUMNS", "MusicnnAudioSet", "MusicnnLayerSet", "patch_layers"]

#: where each layer lies among :class:`MusicnnPatchLayers`'s columns (LAYERS order)
LAYER_COLUMNS: dict[str, slice] = {}
_start = 0
for _layer, _width in mnn.LAYERS.items():
    LAYER_COLUMNS[_layer] = slice(_start, _start + _width)
    _start += _width


def patch_layers(samples: np.ndarray, sample_rate: int, n_audio: int) -> dict[str, np.ndarray]:
    """musicnn's embedding layers of each 3-s patch of a clip: ``{layer: (n_patches, width)}``
    float32. ``samples`` is the (padded) clip, its first ``n_audio`` real audio; a rate other
    than 16 kHz is resampled first."""
    if sample_rate != mnn.SAMPLE_RATE:
        from benchmark.audio.decoding import resample

        samples = resample(np.asarray(samples, dtype=np.float32), sample_rate, mnn.SAMPLE_RATE)
        n_audio = int(round(n_audio * mnn.SAMPLE_RATE / sample_rate))
    mel = mnn.log_mel(samples)
    return mnn.embed_patches(mnn.patches(mel, n_audio // mnn.HOP))


class MusicnnAudioSet(AudioFeatureSet):
    """What every musicnn set shares: decoding at 16 kHz, the worker's imports, and the missing
    weights said once, with the install hint."""

    default_sample_rate = mnn.SAMPLE_RATE
    #: CPU seconds per 30-s clip (docs/measurements/audio.md), for the dry run's estimate; the
    #: sets share one extraction, so two of them in one study are estimated twice (an upper bound)
    extract_cpu_s = 0.35
    worker_modules = ("benchmark.audio.spectral", "benchmark.features._musicnn", "scipy.sparse")

    def unavailable(self, dataset: Dataset) -> str | None:
        return super().unavailable(dataset) or mnn.musicnn_missing()

    def extract(
        self, dataset: Dataset, input_kind: str
    ) -> Iterator[tuple[str, tuple[np.ndarray, np.ndarray | None] | None, str | None]]:
        reason = mnn.musicnn_missing()
        if reason:  # every clip would fail the same way: say it once
            raise DataError(f"{self.name}: {reason}")
        return super().extract(dataset, input_kind)

    def _patch_layers(self, clip: Clip) -> dict[str, np.ndarray]:
        reason = mnn.musicnn_missing()
        if reason:
            raise ConfigError(f"{self.name}: {reason}")
        return patch_layers(clip.samples, clip.sample_rate, clip.n_audio)


class MusicnnPatchLayers(MusicnnAudioSet):
    """Every layer of every patch, side by side (:data:`LAYER_COLUMNS`): one float32 row per
    patch. Internal: the cached extraction the public musicnn sets derive from."""

    name = "musicnn_patch_layers"
    input_kinds = ("tabular",)
    version = 1

    def feature_names(self, input_kind: str) -> list[str] | None:
        return [f"musicnn_{layer}_{i:03d}" for layer, w in mnn.LAYERS.items() for i in range(w)]

    def _clip_rows(self, clip: Clip, input_kind: str) -> np.ndarray:
        layers = self._patch_layers(clip)
        return np.concatenate([layers[layer] for layer in mnn.LAYERS], axis=1)


class MusicnnLayerSet(MusicnnAudioSet):
    """A public musicnn set: parameter ``layer`` (``penultimate``, default; ``max_pool`` or
    ``mean_pool``); each clip's rows are :meth:`rows_of_clip` of its patches' layer, from the
    shared :class:`MusicnnPatchLayers` extraction on a dataset, computed directly for one file."""

    input_kinds = ("tabular",)
    params_allowed = frozenset({"layer"})

    def __init__(self, **params: Any) -> None:
        layer = params.get("layer", "penultimate")
        if layer not in mnn.LAYERS:
            raise ConfigError(
                f"feature set {self.name!r}: layer must be one of {', '.join(mnn.LAYERS)}, "
                f"got {layer!r}"
            )
        super().__init__(**params)

    @property
    def layer(self) -> str:
        return str(self.params.get("layer", "penultimate"))

    @abstractmethod
    def rows_of_clip(self, patches: np.ndarray) -> np.ndarray:
        """The set's rows of one clip from its patches' rows of the layer ``(n, width)``,
        float64."""

    def _clip_rows(self, clip: Clip, input_kind: str) -> np.ndarray:
        return self.rows_of_clip(self._patch_layers(clip)[self.layer].astype(np.float64))

    def patch_set(self) -> MusicnnPatchLayers:
        """The shared extraction with this set's decoding parameters (``n_jobs`` included), its
        messages naming this set."""
        params = {k: v for k, v in self.params.items() if k != "layer"}
        shared = MusicnnPatchLayers(**params, n_jobs=self.n_jobs)
        shared.named(self.name)
        return shared

    def load(self, dataset: Dataset, input_kind: str, cache_dir: Path | None) -> FeatureMatrix:
        """The rows, derived from the shared extraction (cached under ``cache_dir``)."""
        if input_kind not in self.input_kinds:
            raise self.no_input_kind(input_kind)
        shared = self.patch_set().load(dataset, input_kind, cache_dir)
        layer = shared.X[:, LAYER_COLUMNS[self.layer]]
        copy = np.zeros(len(layer), np.int16) if shared.row_copy is None else shared.row_copy
        # each clip's (and each augmented copy's) patches are consecutive rows
        starts = np.flatnonzero(
            np.r_[True, (shared.row_track[1:] != shared.row_track[:-1]) | (np.diff(copy) != 0)]
        )
        parts, tracks, copies = [], [], []
        for a, b in zip(starts, np.r_[starts[1:], len(layer)], strict=True):
            rows = self.rows_of_clip(layer[a:b].astype(np.float64))
            parts.append(rows)
            tracks.append(np.repeat(shared.row_track[a], len(rows)))
            copies.append(np.repeat(copy[a], len(rows)))
        return FeatureMatrix(
            X=np.concatenate(parts),
            row_track=np.concatenate(tracks),
            feature_names=self.feature_names(input_kind),
            missing=shared.missing,
            row_copy=None if shared.row_copy is None else np.concatenate(copies),
        )

    def build(self, dataset: Dataset, input_kind: str) -> FeatureMatrix:
        return self.load(dataset, input_kind, None)
