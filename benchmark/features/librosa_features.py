"""The 57 features of Kaggle's CSVs, computed from the audio (feature sets ``librosa_30s`` and
``librosa_3s``).

Kaggle's ``features_30_sec.csv`` holds, per clip, the mean and variance over frames of chroma,
RMS, spectral centroid, bandwidth and roll-off, zero-crossing rate, the harmonic and percussive
signals of HPSS (``harmony``/``perceptr``: mean and variance of the samples), the tempo (from
an onset envelope that takes the median over mel bands, as in librosa's beat-tracking example),
and 20 MFCCs, computed with librosa's defaults (n_fft 2048, hop 512) and — as in the librosa of
its time — ``reflect`` padding at the clip edges. On the whole clip this reproduces Kaggle's
values to float precision; on strictly the first 30 s (the default) they differ by ~0.1 %.
:func:`reference_features` is that recipe as plain librosa calls (about 1.2–3 s per clip, 90 %
of it in HPSS); :func:`clip_features` computes the same values from one shared STFT in a
fraction of that:

* the magnitude, power and mel spectrograms are computed once and shared (chroma, centroid,
  bandwidth, roll-off, MFCC and the onset envelope of the tempo all derive from them);
* HPSS median-filters the magnitude spectrogram already there with a compiled running median
  (:mod:`benchmark.audio._kernels`, the same values as ``scipy.ndimage.median_filter``) and runs
  one inverse STFT: the percussive signal is the clip minus the harmonic one, since the two
  soft masks sum to one;
* centroid, bandwidth, roll-off and zero-crossing rate are closed-form array expressions, and the
  tuning estimate of the chroma looks at the spectral peaks of its 150–4000 Hz band only.

The values agree with :func:`reference_features` to float precision (relative differences
~1e-7; see ``tests/features/test_librosa_features.py`` and ``benchmarks/audio_throughput.py``).
``benchmarks/feature_correlation.py`` compares them with Kaggle's CSV.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np

from benchmark.audio.decoding import Clip
from benchmark.errors import ConfigError
from benchmark.features.audio_base import AudioFeatureSet

__all__ = [
    "FEATURE_NAMES",
    "Librosa30s",
    "Librosa3s",
    "clip_features",
    "reference_features",
    "segment_bounds",
]

N_FFT = 2048
HOP = 512
N_MFCC = 20
HPSS_KERNEL = 31
ROLL_PERCENT = 0.85
#: the columns of Kaggle's feature CSVs, in their order (datasets/gtzan.yaml csv_feature_columns)
FEATURE_NAMES: tuple[str, ...] = (
    "chroma_stft_mean",
    "chroma_stft_var",
    "rms_mean",
    "rms_var",
    "spectral_centroid_mean",
    "spectral_centroid_var",
    "spectral_bandwidth_mean",
    "spectral_bandwidth_var",
    "rolloff_mean",
    "rolloff_var",
    "zero_crossing_rate_mean",
    "zero_crossing_rate_var",
    "harmony_mean",
    "harmony_var",
    "perceptr_mean",
    "perceptr_var",
    "tempo",
    *(f"mfcc{i}_{s}" for i in range(1, N_MFCC + 1) for s in ("mean", "var")),
)


def _stats(x: np.ndarray) -> tuple[float, float]:
    x = np.asarray(x, dtype=np.float64)
    return float(x.mean()), float(x.var())


def _assemble(
    chroma: np.ndarray,
    rms: np.ndarray,
    centroid: np.ndarray,
    bandwidth: np.ndarray,
    rolloff: np.ndarray,
    zcr: np.ndarray,
    harmonic: np.ndarray,
    percussive: np.ndarray,
    tempo: float,
    mfcc: np.ndarray,
) -> np.ndarray:
    values: list[float] = []
    for x in (chroma, rms, centroid, bandwidth, rolloff, zcr, harmonic, percussive):
        values += _stats(x)
    values.append(float(tempo))
    for row in mfcc[:N_MFCC]:
        values += _stats(row)
    return np.asarray(values, dtype=np.float64)


def reference_features(y: np.ndarray, sr: int) -> np.ndarray:
    """The 57 features with plain librosa calls, one STFT (and one HPSS round trip) each:
    Kaggle's recipe, kept as the reference the fast path is checked and timed against."""
    import librosa

    kw: dict[str, Any] = {"n_fft": N_FFT, "hop_length": HOP, "pad_mode": "reflect"}
    chroma = librosa.feature.chroma_stft(y=y, sr=sr, **kw)
    rms = librosa.feature.rms(y=y, frame_length=N_FFT, hop_length=HOP, pad_mode="reflect")
    centroid = librosa.feature.spectral_centroid(y=y, sr=sr, **kw)
    bandwidth = librosa.feature.spectral_bandwidth(y=y, sr=sr, **kw)
    rolloff = librosa.feature.spectral_rolloff(y=y, sr=sr, **kw)
    zcr = librosa.feature.zero_crossing_rate(y, frame_length=N_FFT, hop_length=HOP)
    harmonic, percussive = librosa.effects.hpss(y, **kw)
    onset = librosa.onset.onset_strength(y=y, sr=sr, aggregate=np.median, **kw)
    tempo = librosa.feature.tempo(onset_envelope=onset, sr=sr, hop_length=HOP)[0]
    mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=N_MFCC, **kw)
    return _assemble(
        chroma, rms, centroid, bandwidth, rolloff, zcr, harmonic, percussive, tempo, mfcc
    )


@cache
def _frequencies(sr: int) -> np.ndarray:
    """Rows ``(1, f, f²)`` of the STFT bin frequencies: centroid and bandwidth in one product."""
    f = np.fft.rfftfreq(n=N_FFT, d=1.0 / sr)
    return np.stack([np.ones_like(f), f, f * f])


def _zero_crossing_rate(y: np.ndarray) -> np.ndarray:
    """``librosa.feature.zero_crossing_rate(y)`` (2048-sample frames, hop 512, edge padding,
    |y| ≤ 1e-10 counts as 0, zero counts as positive) by a cumulative sum of crossings."""
    padded = np.pad(y, N_FFT // 2, mode="edge")
    sign = np.signbit(np.where(np.abs(padded) <= 1e-10, 0.0, padded))
    crossings = np.concatenate([[0], np.cumsum(sign[1:] != sign[:-1])])
    n_frames = 1 + (len(padded) - N_FFT) // HOP
    starts = np.arange(n_frames) * HOP
    # a frame's first sample has no predecessor inside the frame (librosa's pad=False)
    counts = crossings[starts + N_FFT - 1] - crossings[starts]
    return counts / N_FFT


def _estimate_tuning(power: np.ndarray, sr: int) -> float:
    """``librosa.estimate_tuning(S=power, sr=sr)`` (what ``chroma_stft`` calls), computed on the
    piptrack band (150–4000 Hz) only, and on its peaks only, instead of the whole spectrogram:
    the same value, ~10x faster."""
    from benchmark.audio.spectral import pitch_tuning

    f = np.fft.rfftfreq(N_FFT, 1.0 / sr)
    band = np.flatnonzero((f >= 150.0) & (f < 4000.0))
    lo, hi = int(band[0]), int(band[-1])
    X = power[lo - 1 : hi + 2]  # one bin either side: the neighbours of the band's edges
    masked = X * (X > 0.1 * power.max(axis=0))  # piptrack's threshold: 0.1 x the frame's peak
    mid = masked[1:-1]
    rows, cols = np.nonzero((mid > masked[:-2]) & (mid >= masked[2:]))  # util.localmax
    up, down, centre = X[rows + 2, cols], X[rows, cols], X[rows + 1, cols]
    a = up + down - 2 * centre  # parabolic interpolation, as librosa's stencil
    b = (up - down) / 2  # also np.gradient at these bins
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(np.abs(b) >= np.abs(a), np.float32(0), -b / a)
    pitch = (rows + lo + shift) * float(sr) / N_FFT
    mag = centre + 0.5 * b * shift
    voiced = pitch > 0
    if not voiced.any():
        return 0.0
    keep = (mag >= np.median(mag[voiced])) & voiced
    return pitch_tuning(pitch[keep], resolution=0.01, bins_per_octave=12)


def clip_features(y: np.ndarray, sr: int) -> np.ndarray:
    """The 57 features of ``y`` (mono float32 at ``sr``) in :data:`FEATURE_NAMES` order, from one
    shared STFT; the same values as :func:`reference_features` to float precision, computed with
    :mod:`benchmark.audio.spectral` (numpy, not librosa: ~1.3 s less to import in a fresh
    process)."""
    from benchmark.audio import spectral
    from benchmark.audio._kernels import harmonic_stft, median_rows

    y = np.ascontiguousarray(y, dtype=np.float32)
    D = spectral.stft(y, N_FFT, HOP, pad_mode="reflect")
    S = np.ascontiguousarray(np.abs(D))
    power = S * S

    tuning = _estimate_tuning(power, sr)
    chroma = spectral.chroma_stft(power, sr, tuning)
    rms = spectral.rms(y, N_FFT, HOP, pad_mode="reflect")

    # centroid = E[f], bandwidth = sqrt(E[(f - centroid)²]) under each frame's normalised |S|
    moments = _frequencies(sr) @ S.astype(np.float64)
    total = np.where(moments[0] > 0, moments[0], 1.0)
    centroid = moments[1] / total
    bandwidth = np.sqrt(np.maximum(moments[2] / total - centroid**2, 0.0))
    # roll-off: the first bin whose cumulative magnitude reaches 85 % of the frame's total
    cumulative = np.cumsum(S, axis=0)
    reached = cumulative >= ROLL_PERCENT * cumulative[-1]
    rolloff = _frequencies(sr)[1][np.argmax(reached, axis=0)]
    zcr = _zero_crossing_rate(y)

    # HPSS: median filters across time (harmonic) and frequency (percussive) of |S|
    harm = median_rows(S, HPSS_KERNEL)
    perc = median_rows(np.ascontiguousarray(S.T), HPSS_KERNEL).T
    harmonic = spectral.istft(harmonic_stft(D, harm, perc), HOP, N_FFT, length=len(y))
    percussive = y - harmonic  # the two soft masks sum to one

    mel = np.einsum("...ft,mf->...mt", power, spectral.mel_filters(sr, N_FFT), optimize=True)
    mel_db = spectral.power_to_db(mel)
    mfcc = spectral.mfcc(mel_db, N_MFCC)
    onset = spectral.onset_strength(mel_db, N_FFT, HOP)
    tempo = spectral.tempo(onset, sr, HOP)
    return _assemble(
        chroma, rms, centroid, bandwidth, rolloff, zcr, harmonic, percussive, tempo, mfcc
    )


def segment_bounds(n_audio: int, sr: int, segment_s: float, n_total: int) -> list[tuple[int, int]]:
    """``(start, end)`` sample bounds of the consecutive ``segment_s`` segments of a clip of
    ``n_total`` samples whose first ``n_audio`` are real audio; a segment is kept when at least
    half of it is real audio (the first one always is)."""
    seg = int(round(segment_s * sr))
    bounds = []
    for start in range(0, n_total - seg + 1, seg):
        if start == 0 or n_audio - start >= seg / 2:
            bounds.append((start, start + seg))
    return bounds


class Librosa30s(AudioFeatureSet):
    """The 57 Kaggle features of the first 30 s of each clip (``features_30_sec.csv``'s
    columns, computed from ``genres_original/``): one row per track."""

    name = "librosa_30s"
    input_kinds = ("tabular",)
    version = 1
    extract_cpu_s = 0.35  # docs/measurements/audio.md
    worker_modules = ("benchmark.audio.spectral", "benchmark.audio._kernels")

    def feature_names(self, input_kind: str) -> list[str] | None:
        return list(FEATURE_NAMES)

    def _clip_rows(self, clip: Clip, input_kind: str) -> np.ndarray:
        return clip_features(clip.audio, clip.sample_rate)[None, :]


class Librosa3s(AudioFeatureSet):
    """The 57 Kaggle features of each 3-second segment of the first 30 s (``features_3_sec.csv``'s
    rows): ten rows per track, grouped by track in every split. Parameter ``segment_seconds``
    (default 3)."""

    name = "librosa_3s"
    input_kinds = ("tabular",)
    version = 1
    extract_cpu_s = 0.38  # docs/measurements/audio.md
    worker_modules = ("benchmark.audio.spectral", "benchmark.audio._kernels")
    params_allowed = frozenset({"segment_seconds"})

    def __init__(self, **params: Any) -> None:
        seg = params.get("segment_seconds", 3.0)
        if not isinstance(seg, int | float) or not 0.5 <= seg <= params.get("seconds", 30.0):
            raise ConfigError(
                f"feature set {self.name!r}: segment_seconds must be between 0.5 and seconds"
            )
        super().__init__(**params)

    @property
    def segment_seconds(self) -> float:
        return float(self.params.get("segment_seconds", 3.0))

    def feature_names(self, input_kind: str) -> list[str] | None:
        return list(FEATURE_NAMES)

    def _clip_rows(self, clip: Clip, input_kind: str) -> np.ndarray:
        bounds = segment_bounds(
            clip.n_audio, clip.sample_rate, self.segment_seconds, len(clip.samples)
        )
        return np.stack([clip_features(clip.samples[a:b], clip.sample_rate) for a, b in bounds])
