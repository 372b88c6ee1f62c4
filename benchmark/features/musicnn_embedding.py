"""Embeddings of the pretrained musicnn network (feature set ``embedding_musicnn``): what a
model trained on a million songs' tags (MSD_musicnn) has learned to hear, as tabular features.

Each clip is decoded at 16 kHz (the network's rate; a ``sample_rate`` parameter other than
16000 decodes at that rate and resamples to 16 kHz before the spectrogram), cut into musicnn's
non-overlapping 3-s patches (10 for 30 s; patches that are mostly padding after the end of a
short clip are left out), and every patch goes through the network
(:mod:`benchmark.features._musicnn`, a numpy port; no TensorFlow). Two sets:

* ``embedding_musicnn``: one row per clip, the mean and the standard deviation over its patches
  of one layer;
* ``embedding_musicnn_3s``: one row per 3-s patch (that layer's values), grouped by track in
  every split; a track's prediction is the mean of its patches' probabilities, as for
  ``csv_3s`` and ``librosa_3s``.

Both take the parameter ``layer``:

* ``layer: penultimate`` (default): the 200-d last hidden layer before the tag outputs
  (``features['penultimate']`` of musicnn's extractor; 400 columns);
* ``layer: max_pool`` or ``mean_pool``: the 753-d temporal max or mean pooling of the mid-end
  that feeds it (1506 columns; 541 of its units are constant on GTZAN, ReLUs that never fire:
  the scalers handle that).

Both derive their rows from one cached extraction of every layer of every patch
(:mod:`benchmark.features._musicnn_patches`), so a study with both sets, or with two layers,
runs the network once per clip.

The weights come from the ``musicnn`` wheel on PyPI, installed apart:
``pip install --no-deps musicnn==0.1.0`` (its own requirements are TensorFlow 1 and
numpy < 1.17, which must not be installed; none of its code runs). Without it the set is
unavailable with that hint.
"""

from __future__ import annotations

import numpy as np

from benchmark.features import _musicnn as mnn
from benchmark.features._musicnn_patches import MusicnnLayerSet, patch_layers

__all__ = ["MusicnnEmbedding", "MusicnnPatches", "clip_embedding"]


def _mean_std(patches: np.ndarray) -> np.ndarray:
    """One row: the mean, then the standard deviation, over patches of their float64 rows."""
    return np.concatenate([patches.mean(axis=0), patches.std(axis=0)])


def clip_embedding(samples: np.ndarray, sample_rate: int, n_audio: int, layer: str) -> np.ndarray:
    """Mean and standard deviation over the clip's 3-s patches of musicnn's ``layer``: one row,
    float64, means first. ``samples`` is the (padded) clip, its first ``n_audio`` real audio."""
    return _mean_std(patch_layers(samples, sample_rate, n_audio)[layer].astype(np.float64))


class MusicnnEmbedding(MusicnnLayerSet):
    """musicnn (MSD) embeddings of the first 30 s of each clip, mean and standard deviation over
    its 3-s patches: one row per track. Parameter ``layer``: ``penultimate`` (200-d, default),
    ``max_pool`` or ``mean_pool`` (753-d)."""

    name = "embedding_musicnn"
    version = 1

    def feature_names(self, input_kind: str) -> list[str] | None:
        width = mnn.LAYERS[self.layer]
        return [
            f"musicnn_{self.layer}_{i:03d}_{stat}" for stat in ("mean", "std") for i in range(width)
        ]

    def rows_of_clip(self, patches: np.ndarray) -> np.ndarray:
        return _mean_std(patches)[None, :]


class MusicnnPatches(MusicnnLayerSet):
    """musicnn (MSD) embeddings of each 3-s patch of the first 30 s: one row per patch (10 for a
    30-s clip), grouped by track in every split and scored at track level by the mean of its
    patches' probabilities. Parameter ``layer`` as for ``embedding_musicnn``."""

    name = "embedding_musicnn_3s"
    version = 1

    def feature_names(self, input_kind: str) -> list[str] | None:
        return [f"musicnn_{self.layer}_{i:03d}" for i in range(mnn.LAYERS[self.layer])]

    def rows_of_clip(self, patches: np.ndarray) -> np.ndarray:
        return patches
