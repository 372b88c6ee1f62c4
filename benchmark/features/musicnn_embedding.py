"""Embeddings of the pretrained musicnn network (feature set ``embedding_musicnn``): what a
model trained on a million songs' tags (MSD_musicnn) has learned to hear, as tabular features.

Each clip is decoded at 16 kHz (the network's rate; a ``sample_rate`` parameter other than
16000 decodes at that rate and resamples to 16 kHz before the spectrogram), cut into musicnn's
non-overlapping 3-s patches (10 for 30 s; patches that are mostly padding after the end of a
short clip are left out), and every patch goes through the network
(:mod:`benchmark.features._musicnn`, a numpy port; no TensorFlow). The row of a clip is the
mean and the standard deviation over its patches of one layer:

* ``layer: penultimate`` (default): the 200-d last hidden layer before the tag outputs
  (``features['penultimate']`` of musicnn's extractor; 400 columns);
* ``layer: max_pool`` or ``mean_pool``: the 753-d temporal max or mean pooling of the mid-end
  that feeds it (1506 columns; 541 of its units are constant on GTZAN, ReLUs that never fire:
  the scalers handle that).

The weights come from the ``musicnn`` wheel on PyPI, installed apart:
``pip install --no-deps musicnn==0.1.0`` (its own requirements are TensorFlow 1 and
numpy < 1.17, which must not be installed; none of its code runs). Without it the set is
unavailable with that hint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from benchmark.audio import Clip
from benchmark.errors import ConfigError, DataError
from benchmark.features import _musicnn as mnn
from benchmark.features.audio_base import AudioFeatureSet

if TYPE_CHECKING:
    from collections.abc import Iterator

    from benchmark.data import Dataset

__all__ = ["MusicnnEmbedding", "clip_embedding"]


def clip_embedding(samples: np.ndarray, sample_rate: int, n_audio: int, layer: str) -> np.ndarray:
    """Mean and standard deviation over the clip's 3-s patches of musicnn's ``layer``: one row,
    float64, means first. ``samples`` is the (padded) clip, its first ``n_audio`` real audio."""
    if sample_rate != mnn.SAMPLE_RATE:
        from benchmark.audio import resample

        samples = resample(np.asarray(samples, dtype=np.float32), sample_rate, mnn.SAMPLE_RATE)
        n_audio = int(round(n_audio * mnn.SAMPLE_RATE / sample_rate))
    mel = mnn.log_mel(samples)
    emb = mnn.embed_patches(mnn.patches(mel, n_audio // mnn.HOP))[layer].astype(np.float64)
    return np.concatenate([emb.mean(axis=0), emb.std(axis=0)])


class MusicnnEmbedding(AudioFeatureSet):
    """musicnn (MSD) embeddings of the first 30 s of each clip, mean and standard deviation over
    its 3-s patches: one row per track. Parameter ``layer``: ``penultimate`` (200-d, default),
    ``max_pool`` or ``mean_pool`` (753-d)."""

    name = "embedding_musicnn"
    views = ("tabular",)
    version = 1
    extract_cpu_s = 0.35  # docs/measurements/audio.md
    default_sample_rate = mnn.SAMPLE_RATE
    params_allowed = frozenset({"layer"})
    worker_modules = ("benchmark.spectral", "benchmark.features._musicnn", "scipy.sparse")

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

    def feature_names(self, view: str) -> list[str] | None:
        width = mnn.LAYERS[self.layer]
        return [
            f"musicnn_{self.layer}_{i:03d}_{stat}" for stat in ("mean", "std") for i in range(width)
        ]

    def unavailable(self, dataset: Dataset) -> str | None:
        return super().unavailable(dataset) or mnn.musicnn_missing()

    def extract(
        self, dataset: Dataset, view: str
    ) -> Iterator[tuple[str, np.ndarray | None, str | None]]:
        reason = mnn.musicnn_missing()
        if reason:  # every clip would fail the same way: say it once
            raise DataError(f"{self.name}: {reason}")
        return super().extract(dataset, view)

    def _clip_rows(self, clip: Clip, view: str) -> np.ndarray:
        reason = mnn.musicnn_missing()
        if reason:
            raise ConfigError(f"{self.name}: {reason}")
        return clip_embedding(clip.samples, clip.sample_rate, clip.n_audio, self.layer)[None, :]
