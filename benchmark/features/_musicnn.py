"""The pretrained MSD_musicnn network (Pons & Serra, "musicnn: pre-trained convolutional neural
networks for music audio tagging", ISMIR 2019 LBD), in numpy, for inference.

The weights are those of the ``musicnn`` wheel on PyPI (0.1.0, ISC licence), installed with
``pip install --no-deps musicnn==0.1.0`` (its metadata pins TensorFlow 1 and numpy < 1.17, so
its dependencies must not be installed; its code is never imported here). They are read from its
TensorFlow checkpoint ``musicnn/MSD_musicnn/`` by :mod:`benchmark.features._tf_checkpoint`.

Input (musicnn's ``configuration.py`` and ``extractor.batch_data``): audio at 16 kHz; a mel
power spectrogram (librosa: n_fft 512, hop 256, 96 Slaney mel bands, centred frames), cast to
float16 as musicnn does, compressed to ``log10(10000 x + 1)``; cut into non-overlapping patches
of 187 frames (3 s: ``librosa.time_to_frames(3, sr=16000, n_fft=512, hop_length=256) + 1``).

The network (musicnn's ``models.build_musicnn`` with ``num_filt_midend=64``,
``num_units_backend=200``), per patch of ``(187 frames, 96 bands)``:

* input batch normalisation (one channel);
* front-end: two timbral convolutions (7 frames x 38 and x 67 bands, 204 filters, time padded by
  3 so the length is kept) and three temporal ones (128, 64, 32 frames x 1 band, 51 filters,
  ``same`` padding), each ReLU → batch norm → max over the frequency axis, concatenated:
  ``(187, 561)``;
* mid-end: three convolutions over 7 frames x all features (64 filters, ReLU, batch norm), the
  second and third with residual connections; the front-end output and the three concatenated
  (dense connections): ``(187, 753)``;
* back-end: max and mean over time (``max_pool``, ``mean_pool``: 753 each), interleaved and
  flattened (1506), batch norm, dense 200 with ReLU, batch norm: the 200-d ``penultimate``
  layer (then a dense 50 to the MSD tags, not computed here).

Batch normalisation runs in inference mode (moving mean and variance, TensorFlow's default
epsilon 1e-3); dropout is off. Every convolution is an im2col matrix product, so one BLAS call
does the work of each layer. ``benchmarks/musicnn_fidelity.py`` compares the outputs with
musicnn's original TensorFlow graph.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.errors import ConfigError

__all__ = [
    "HOP",
    "BN_WIDTHS",
    "CONV_SHAPES",
    "DENSE_SHAPE",
    "INSTALL_HINT",
    "LAYERS",
    "MusicnnWeights",
    "N_FRAMES",
    "N_MELS",
    "SAMPLE_RATE",
    "checkpoint_dir",
    "embed_patches",
    "load_weights",
    "log_mel",
    "musicnn_missing",
    "patches",
]

SAMPLE_RATE = 16000
N_FFT = 512
HOP = 256
N_MELS = 96
#: frames of one 3-s input patch
N_FRAMES = 187
#: TensorFlow 1's batch-normalisation epsilon
BN_EPSILON = 1e-3
#: the embedding layers :func:`embed_patches` returns, with their widths
LAYERS: dict[str, int] = {"penultimate": 200, "max_pool": 753, "mean_pool": 753}
INSTALL_HINT = "pip install --no-deps musicnn==0.1.0"
MODEL = "MSD_musicnn"
#: MSD_musicnn's convolution kernels ``(kh, kw, in, out)``, in build order: timbral 7 x 38 and
#: 7 x 67, temporal 128, 64 and 32 x 1, the three mid-end ones
CONV_SHAPES: dict[str, tuple[int, int, int, int]] = {
    "conv2d": (7, 38, 1, 204),
    "conv2d_1": (7, 67, 1, 204),
    "conv2d_2": (128, 1, 1, 51),
    "conv2d_3": (64, 1, 1, 51),
    "conv2d_4": (32, 1, 1, 51),
    "conv2d_5": (7, 561, 1, 64),
    "conv2d_6": (7, 64, 1, 64),
    "conv2d_7": (7, 64, 1, 64),
}
#: the widths of its batch norms, ``batch_normalization`` … ``batch_normalization_10``
BN_WIDTHS: tuple[int, ...] = (1, 204, 204, 51, 51, 51, 64, 64, 64, 1506, 200)
#: its penultimate dense layer ``(inputs, units)``
DENSE_SHAPE = (1506, 200)


# --- the weights ----------------------------------------------------------------------------
def checkpoint_dir() -> Path | None:
    """The folder of the installed ``musicnn`` package's MSD_musicnn checkpoint, or ``None``.
    Found without importing the package (its code needs TensorFlow 1)."""
    spec = importlib.util.find_spec("musicnn")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        folder = Path(location) / MODEL
        if (folder / ".index").is_file():
            return folder
    return None


def musicnn_missing() -> str | None:
    """Why the musicnn weights are not available here (with the install hint), or ``None``."""
    if importlib.util.find_spec("musicnn") is None:
        return f"needs the musicnn weights: {INSTALL_HINT} (--no-deps: its pins are TF1-era)"
    if checkpoint_dir() is None:
        return f"the installed musicnn package has no {MODEL}/ checkpoint: {INSTALL_HINT}"
    return None


@dataclass(frozen=True)
class _BatchNorm:
    """Inference-mode batch norm folded into ``x * scale + shift``."""

    scale: np.ndarray
    shift: np.ndarray

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x *= self.scale
        x += self.shift
        return x


@dataclass(frozen=True)
class _Conv:
    """A convolution as a matrix: ``(kh * kw * in, out)`` kernel and the bias."""

    kernel: np.ndarray
    bias: np.ndarray
    kh: int
    kw: int
    #: +1 per filter, or -1 where the kernel is stored negated (:func:`_block`)
    sign: np.ndarray


@dataclass(frozen=True)
class MusicnnWeights:
    """MSD_musicnn's inference weights, by layer role (TensorFlow's auto-generated names:
    ``conv2d``…``conv2d_7``, ``batch_normalization``…``_10``, ``dense`` in build order)."""

    input_bn: _BatchNorm
    timbral: tuple[tuple[_Conv, _BatchNorm], ...]  # 7 x 38 and 7 x 67
    temporal: tuple[_Conv, _BatchNorm]  # 128, 64 and 32 x 1, fused (:func:`_fuse_temporal`)
    midend: tuple[tuple[_Conv, _BatchNorm], ...]
    pool_bn: _BatchNorm
    dense_kernel: np.ndarray
    dense_bias: np.ndarray
    dense_bn: _BatchNorm


def _bn(ckpt: Any, name: str) -> _BatchNorm:
    gamma = ckpt[f"{name}/gamma"]
    beta = ckpt[f"{name}/beta"]
    mean = ckpt[f"{name}/moving_mean"]
    var = ckpt[f"{name}/moving_variance"]
    scale = (gamma / np.sqrt(var + np.float32(BN_EPSILON))).astype(np.float32)
    return _BatchNorm(scale=scale, shift=(beta - mean * scale).astype(np.float32))


def _conv(ckpt: Any, name: str, bn: _BatchNorm | None = None) -> _Conv:
    """A convolution; given the batch norm that follows it (the front-end's blocks), the
    filters whose batch-norm scale is negative are stored negated (:func:`_block`)."""
    k = ckpt[f"{name}/kernel"]  # (kh, kw, in, out), in = 1 throughout musicnn
    kh, kw, _, out = k.shape
    sign = np.ones(out, np.float32) if bn is None else np.where(bn.scale < 0, -1, 1)
    kernel = np.ascontiguousarray(k.reshape(-1, out) * sign.astype(np.float32))
    return _Conv(kernel, ckpt[f"{name}/bias"], kh, kw, sign.astype(np.float32))


@cache
def load_weights(folder: str | None = None) -> MusicnnWeights:
    """The weights from ``folder`` (default: the installed musicnn package's checkpoint)."""
    from benchmark.features._tf_checkpoint import TfCheckpoint

    if folder is None:
        found = checkpoint_dir()
        if found is None:
            raise ConfigError(f"musicnn embeddings {musicnn_missing()}")
        folder = str(found)
    ckpt = TfCheckpoint(folder)
    _check_shapes(ckpt)
    bns = [_bn(ckpt, f"batch_normalization_{i}") for i in range(1, 9)]
    convs = [_conv(ckpt, "conv2d", bns[0])]
    convs += [_conv(ckpt, f"conv2d_{i}", bns[i] if i < 5 else None) for i in range(1, 8)]
    return MusicnnWeights(
        input_bn=_bn(ckpt, "batch_normalization"),
        timbral=((convs[0], bns[0]), (convs[1], bns[1])),
        temporal=(_fuse_temporal(convs[2:5]), _concat_bn(bns[2:5])),
        midend=tuple(zip(convs[5:], bns[5:], strict=True)),
        pool_bn=_bn(ckpt, "batch_normalization_9"),
        dense_kernel=ckpt["dense/kernel"],
        dense_bias=ckpt["dense/bias"],
        dense_bn=_bn(ckpt, "batch_normalization_10"),
    )


def _check_shapes(ckpt: Any) -> None:
    """Refuse a checkpoint that is not MSD_musicnn's (a missing variable, another shape)."""
    from benchmark.features._tf_checkpoint import CheckpointError

    want = {f"{n}/kernel": s for n, s in CONV_SHAPES.items()} | {"dense/kernel": DENSE_SHAPE}
    for i, width in enumerate(BN_WIDTHS):
        want[f"batch_normalization_{i}/gamma" if i else "batch_normalization/gamma"] = (width,)
    for name, shape in want.items():
        got = ckpt.shape(name) if name in ckpt else None
        if got != shape:
            raise CheckpointError(
                f"{ckpt.index_path}: not an {MODEL} checkpoint: {name} has shape {got}, "
                f"expected {shape}"
            )


def _fuse_temporal(convs: list[_Conv]) -> _Conv:
    """The three temporal convolutions (128, 64 and 32 frames, ``same`` padding) as one over
    128 frames: each shorter kernel sits where its own padded window falls inside the longest
    one, zeros elsewhere, so one matrix product computes the three (in their concat order)."""
    longest = max(c.kh for c in convs)
    before = (longest - 1) // 2
    parts = []
    for c in convs:
        k = np.zeros((longest, c.kernel.shape[1]), np.float32)
        start = before - (c.kh - 1) // 2
        k[start : start + c.kh] = c.kernel
        parts.append(k)
    return _Conv(
        kernel=np.ascontiguousarray(np.concatenate(parts, axis=1)),
        bias=np.concatenate([c.bias for c in convs]),
        kh=longest,
        kw=1,
        sign=np.concatenate([c.sign for c in convs]),
    )


def _concat_bn(bns: list[_BatchNorm]) -> _BatchNorm:
    return _BatchNorm(
        scale=np.concatenate([b.scale for b in bns]), shift=np.concatenate([b.shift for b in bns])
    )


# --- the input ------------------------------------------------------------------------------
@cache
def _mel_basis() -> Any:
    import scipy.sparse

    from benchmark.audio.spectral import mel_filters

    return scipy.sparse.csr_matrix(mel_filters(SAMPLE_RATE, N_FFT, N_MELS).astype(np.float32))


def log_mel(y: np.ndarray) -> np.ndarray:
    """musicnn's input representation of ``y`` (mono, 16 kHz): ``(frames, 96)`` float32, as
    ``librosa.feature.melspectrogram(y=y, sr=16000, hop_length=256, n_fft=512, n_mels=96)``
    cast to float16 and compressed by ``log10(10000 x + 1)`` (``extractor.batch_data``)."""
    from benchmark.audio.spectral import stft  # librosa.stft, bit for bit

    D = stft(np.ascontiguousarray(y, dtype=np.float32), N_FFT, HOP)
    power = (D.real**2 + D.imag**2).astype(np.float32)
    mel = (_mel_basis() @ power).T.astype(np.float16)
    return np.log10(10000 * mel.astype(np.float32) + 1).astype(np.float32)


def patches(mel: np.ndarray, n_audio_frames: int | None = None) -> np.ndarray:
    """Non-overlapping 187-frame patches of ``mel`` ``(frames, 96)``: ``(n, 187, 96)``. A patch
    is kept when at least half of it lies within the first ``n_audio_frames`` (the real audio
    before any padding; the first patch always); a spectrogram shorter than one patch is padded
    with zeros (silence in this compression)."""
    if len(mel) < N_FRAMES:
        mel = np.pad(mel, ((0, N_FRAMES - len(mel)), (0, 0)))
    real = len(mel) if n_audio_frames is None else n_audio_frames
    starts = [
        s for s in range(0, len(mel) - N_FRAMES + 1, N_FRAMES) if s == 0 or real - s >= N_FRAMES / 2
    ]
    return np.stack([mel[s : s + N_FRAMES] for s in starts]).astype(np.float32)


# --- the network ----------------------------------------------------------------------------
def _conv_valid(x: np.ndarray, conv: _Conv) -> np.ndarray:
    """``relu(conv(x))`` of one 2-D map ``x`` ``(T, F)``, valid padding: ``(T', F', out)``."""
    windows = np.lib.stride_tricks.sliding_window_view(x, (conv.kh, conv.kw))
    t, f = windows.shape[:2]
    out = windows.reshape(t * f, conv.kh * conv.kw) @ conv.kernel
    out += conv.bias
    np.maximum(out, 0, out=out)
    return out.reshape(t, f, -1)


def _block(x: np.ndarray, conv: _Conv, bn: _BatchNorm) -> np.ndarray:
    """ReLU conv, batch norm, max over the frequency axis: ``(T, out)``.

    ``bn(relu(z + bias))`` is monotone in ``z`` per filter (increasing where the batch norm's
    scale is positive, decreasing where it is negative), so its maximum over frequency is that
    of ``z`` (or of ``-z``): the filters with a negative scale come with a negated kernel
    (:attr:`_Conv.sign`), one maximum is taken over the raw products, and the bias, ReLU and
    batch norm run on the ``(T, out)`` maxima only. The same values, bit for bit, as applying
    them to every frequency first."""
    windows = np.lib.stride_tricks.sliding_window_view(x, (conv.kh, conv.kw))
    t, f = windows.shape[:2]
    z = (windows.reshape(t * f, conv.kh * conv.kw) @ conv.kernel).reshape(t, f, -1).max(axis=1)
    z *= conv.sign
    z += conv.bias
    np.maximum(z, 0, out=z)
    return bn(z)


def _pad_time(x: np.ndarray, before: int, after: int) -> np.ndarray:
    return np.pad(x, ((before, after), (0, 0)))


def _forward_one(x: np.ndarray, w: MusicnnWeights) -> dict[str, np.ndarray]:
    """The embedding layers of one patch ``(187, 96)`` (already input-normalised)."""
    # timbral: time padded by 3 either side, valid; temporal: TensorFlow's "same" padding (the
    # extra row of an even kernel goes after)
    front = [_block(_pad_time(x, 3, 3), conv, bn) for conv, bn in w.timbral]
    conv, bn = w.temporal
    front.append(_block(_pad_time(x, (conv.kh - 1) // 2, conv.kh // 2), conv, bn))
    features = np.concatenate(front, axis=1)  # (187, 561)
    mid = [features]
    h = features
    for i, (conv, bn) in enumerate(w.midend):
        out = bn(_conv_valid(_pad_time(h, 3, 3), conv)[:, 0, :])  # (187, 64)
        h = out if i == 0 else out + h  # residual from the second conv on
        mid.append(h)
    dense = np.concatenate(mid, axis=1)  # (187, 753)
    max_pool, mean_pool = dense.max(axis=0), dense.mean(axis=0)
    flat = np.stack([max_pool, mean_pool], axis=1).reshape(-1)  # interleaved, as TF flattens
    hidden = w.pool_bn(flat.copy()) @ w.dense_kernel + w.dense_bias
    penultimate = w.dense_bn(np.maximum(hidden, 0))
    return {"penultimate": penultimate, "max_pool": max_pool, "mean_pool": mean_pool}


def embed_patches(
    batch: np.ndarray, weights: MusicnnWeights | None = None
) -> dict[str, np.ndarray]:
    """The embedding layers of patches ``(n, 187, 96)`` (log-mel, :func:`log_mel`):
    ``{"penultimate": (n, 200), "max_pool": (n, 753), "mean_pool": (n, 753)}`` float32."""
    w = load_weights() if weights is None else weights
    batch = np.asarray(batch, dtype=np.float32)
    if batch.ndim != 3 or batch.shape[1:] != (N_FRAMES, N_MELS):
        raise ValueError(
            f"musicnn takes patches of shape (n, {N_FRAMES}, {N_MELS}), got {batch.shape}"
        )
    out: dict[str, list[np.ndarray]] = {k: [] for k in LAYERS}
    for patch in batch:
        layers = _forward_one(w.input_bn(patch.copy()), w)
        for k in LAYERS:
            out[k].append(layers[k])
    return {k: np.stack(v).astype(np.float32) for k, v in out.items()}
