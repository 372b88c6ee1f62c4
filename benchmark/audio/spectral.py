"""The librosa computations behind the Kaggle features and spectrograms, in numpy alone.

Why: ``predict`` on one song waited ~1.3 s for librosa's imports (scipy.signal, scipy.stats and
the numba stencils that librosa compiles or loads as it is imported) before its first feature.
These functions are librosa 0.11's (``stft``, ``istft``, ``filters.mel``, ``filters.chroma``,
``feature.chroma_stft``, ``feature.rms``, ``power_to_db``, ``onset.onset_strength``,
``feature.tempo``, ``pitch_tuning``, ``feature.melspectrogram``) restricted to the settings the
feature sets use (Hann window, centred frames), doing the same numpy operations in the same
order and precision, so they give the same values: bit for bit, except :func:`mfcc` (a DCT
matrix in place of scipy's FFT-based DCT: float32 rounding apart). ``tests/audio/test_spectral.py``
holds each against librosa.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from numpy.lib.stride_tricks import as_strided

__all__ = [
    "amplitude_to_db",
    "chroma_filters",
    "chroma_stft",
    "hann",
    "istft",
    "mel_filters",
    "melspectrogram",
    "mfcc",
    "next_fast_len",
    "onset_strength",
    "pitch_tuning",
    "power_to_db",
    "rms",
    "stft",
    "tempo",
]


# --- windows, frames, normalisation -------------------------------------------------------------
@cache
def hann(n: int) -> np.ndarray:
    """``scipy.signal.get_window("hann", n, fftbins=True)``: the periodic Hann window, float64
    (scipy's general cosine of ``n + 1`` points, the last dropped)."""
    fac = np.linspace(-np.pi, np.pi, n + 1)
    w = np.zeros(n + 1)
    for k, a in enumerate((0.5, 0.5)):
        w += a * np.cos(k * fac)
    w = w[:-1]
    w.flags.writeable = False
    return w


def frame(x: np.ndarray, frame_length: int, hop_length: int) -> np.ndarray:
    """``librosa.util.frame`` of a 1-D array: ``(frame_length, n_frames)``, a strided view (the
    same strides as librosa's, so reductions over it run in the same order)."""
    if x.shape[-1] < frame_length:
        raise ValueError(f"input is too short (n={x.shape[-1]}) for frame_length={frame_length}")
    shape = (x.shape[-1] - frame_length + 1, frame_length)
    xw = as_strided(x, strides=x.strides + x.strides[-1:], shape=shape, writeable=False)
    return np.moveaxis(xw, -1, -2)[..., ::hop_length]


def normalize(S: np.ndarray, norm: float, axis: int) -> np.ndarray:
    """``librosa.util.normalize(S, norm=norm, axis=axis)`` for ``norm`` ∞ or a positive number
    (no threshold, no fill: columns below float's tiny are left as they are)."""
    threshold = np.finfo(S.dtype).tiny
    if not np.all(np.isfinite(S)):
        raise ValueError("input must be finite")
    mag = np.abs(S).astype(float)
    if norm == np.inf:
        length = np.max(mag, axis=axis, keepdims=True)
    else:
        length = np.sum(mag**norm, axis=axis, keepdims=True) ** (1.0 / norm)
    length[length < threshold] = 1.0
    out = np.empty_like(S)
    out[:] = S / length
    return out


def next_fast_len(n: int) -> int:
    """``scipy.fft.next_fast_len(n, real=True)``: the smallest 5-smooth number ≥ ``n``."""
    if n <= 6:
        return max(n, 1)
    best = 1 << (n - 1).bit_length()  # a power of two is always a candidate
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:  # the smallest power of two times p35 reaching n
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


# --- the short-time Fourier transform and its inverse -------------------------------------------
def stft(y: np.ndarray, n_fft: int, hop_length: int, pad_mode: str = "constant") -> np.ndarray:
    """``librosa.stft(y, n_fft=n_fft, hop_length=hop_length, pad_mode=pad_mode)`` of a float32
    signal: centred Hann frames, complex64 ``(1 + n_fft // 2, frames)``."""
    padded = np.pad(y, (n_fft // 2, n_fft // 2), mode=pad_mode)  # type: ignore[call-overload]
    frames = frame(padded, n_fft, hop_length)
    out = np.empty((1 + n_fft // 2, frames.shape[-1]), dtype=np.complex64)
    out[:] = np.fft.rfft(hann(n_fft)[:, None] * frames, axis=-2)
    return out


def _overlap_add(frames: np.ndarray, hop_length: int, dtype: type) -> np.ndarray:
    """Frames ``(n, k)`` added at ``hop_length`` steps into a ``dtype`` signal, one frame after
    the other (librosa's compiled loops: the same float rounding at every sample)."""
    n, k = frames.shape
    if n % hop_length:
        raise ValueError(f"frame length {n} is not a multiple of hop_length {hop_length}")
    r = n // hop_length
    out = np.zeros((k + r - 1, hop_length), dtype=dtype)
    chunks = frames.reshape(r, hop_length, k)
    for j in range(r - 1, -1, -1):  # output block b gets frame b - j: frames in order
        out[j : j + k] += chunks[j].T
    return out.reshape(-1)


def istft(D: np.ndarray, hop_length: int, n_fft: int, length: int) -> np.ndarray:
    """``librosa.istft(D, hop_length=hop_length, n_fft=n_fft, length=length)`` of a complex64
    STFT (centred Hann frames): float32 of ``length`` samples."""
    window = hann(n_fft)
    n_frames = min(D.shape[-1], int(np.ceil((length + 2 * (n_fft // 2)) / hop_length)))
    frames = window[:, None] * np.fft.irfft(D[:, :n_frames], n=n_fft, axis=-2)
    y = _overlap_add(frames, hop_length, np.float32)[n_fft // 2 :]
    win_sq = np.broadcast_to((window**2)[:, None], (n_fft, n_frames))  # a view: no copies
    norm = _overlap_add(win_sq, hop_length, np.float32)[n_fft // 2 :]
    y, norm = _fix_length(y, length), _fix_length(norm, length)
    nonzero = norm > np.finfo(norm.dtype).tiny
    y[nonzero] /= norm[nonzero]
    return y


def _fix_length(x: np.ndarray, size: int) -> np.ndarray:
    return x[:size].copy() if len(x) >= size else np.pad(x, (0, size - len(x)))


# --- filter banks -------------------------------------------------------------------------------
def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    f = np.asanyarray(f)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    mels = f / f_sp
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    if f.ndim:
        log_t = f >= min_log_hz
        mels[log_t] = min_log_mel + np.log(f[log_t] / min_log_hz) / logstep
    elif f >= min_log_hz:
        mels = min_log_mel + np.log(f / min_log_hz) / logstep
    return mels


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    freqs = f_sp * mels
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    log_t = mels >= min_log_mel
    freqs[log_t] = min_log_hz * np.exp(logstep * (mels[log_t] - min_log_mel))
    return freqs


@cache
def mel_filters(sr: float, n_fft: int, n_mels: int = 128) -> np.ndarray:
    """``librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)``: Slaney-style, slaney norm,
    0 Hz to Nyquist, float32 ``(n_mels, 1 + n_fft // 2)``."""
    weights = np.zeros((n_mels, 1 + n_fft // 2), dtype=np.float32)
    fftfreqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    mels = np.linspace(
        _hz_to_mel(np.asanyarray(0.0)), _hz_to_mel(np.asanyarray(sr / 2)), n_mels + 2
    )
    mel_f = _mel_to_hz(mels)
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, np.newaxis]
    weights.flags.writeable = False
    return weights


def _hz_to_octs(f: np.ndarray, tuning: float = 0.0, bins_per_octave: int = 12) -> np.ndarray:
    a440 = 440.0 * 2.0 ** (tuning / bins_per_octave)
    return np.log2(np.asanyarray(f) / (float(a440) / 16))


@cache
def chroma_filters(sr: float, n_fft: int, tuning: float = 0.0, n_chroma: int = 12) -> np.ndarray:
    """``librosa.filters.chroma(sr=sr, n_fft=n_fft, tuning=tuning, n_chroma=n_chroma)``
    (centred on octave 5, two octaves wide, L2 norm, starting at C): float32."""
    frequencies = np.linspace(0, sr, n_fft, endpoint=False)[1:]
    frqbins = n_chroma * _hz_to_octs(frequencies, tuning=tuning, bins_per_octave=n_chroma)
    frqbins = np.concatenate(([frqbins[0] - 1.5 * n_chroma], frqbins))
    binwidthbins = np.concatenate((np.maximum(frqbins[1:] - frqbins[:-1], 1.0), [1]))
    D = np.subtract.outer(frqbins, np.arange(0, n_chroma, dtype="d")).T
    n_chroma2 = np.round(float(n_chroma) / 2)
    D = np.remainder(D + n_chroma2 + 10 * n_chroma, n_chroma) - n_chroma2
    wts = np.exp(-0.5 * (2 * D / np.tile(binwidthbins, (n_chroma, 1))) ** 2)
    wts = normalize(wts, norm=2, axis=0)
    wts *= np.tile(np.exp(-0.5 * (((frqbins / n_chroma - 5.0) / 2) ** 2)), (n_chroma, 1))
    wts = np.roll(wts, -3 * (n_chroma // 12), axis=0)
    out = np.ascontiguousarray(wts[:, : int(1 + n_fft / 2)], dtype=np.float32)
    out.flags.writeable = False
    return out


# --- features -----------------------------------------------------------------------------------
def chroma_stft(power: np.ndarray, sr: float, tuning: float, n_chroma: int = 12) -> np.ndarray:
    """``librosa.feature.chroma_stft(S=power, sr=sr, tuning=tuning)`` (∞-normalised frames)."""
    n_fft = 2 * (power.shape[-2] - 1)
    fb = chroma_filters(sr, n_fft, tuning, n_chroma)
    raw = np.einsum("cf,...ft->...ct", fb, power, optimize=True)
    return normalize(raw, norm=np.inf, axis=-2)


def rms(
    y: np.ndarray, frame_length: int, hop_length: int, pad_mode: str = "constant"
) -> np.ndarray:
    """``librosa.feature.rms(y=y, frame_length=…, hop_length=…, pad_mode=…)``: ``(1, frames)``."""
    half = frame_length // 2
    padded = np.pad(y, (half, half), mode=pad_mode)  # type: ignore[call-overload]
    x = frame(padded, frame_length, hop_length)
    power = np.mean(np.square(x, dtype=np.float32), axis=-2, keepdims=True)
    return np.sqrt(power)


def power_to_db(
    S: np.ndarray, ref: float = 1.0, amin: float = 1e-10, top_db: float | None = 80.0
) -> np.ndarray:
    """``librosa.power_to_db(S, ref=ref, amin=amin, top_db=top_db)`` of a real array."""
    log_spec: np.ndarray = 10.0 * np.log10(np.maximum(amin, S))
    log_spec -= 10.0 * np.log10(np.maximum(amin, np.abs(ref)))
    if top_db is not None:
        log_spec = np.maximum(log_spec, log_spec.max() - top_db)
    return log_spec


def amplitude_to_db(S: np.ndarray, top_db: float = 80.0) -> np.ndarray:
    """``librosa.amplitude_to_db(S, ref=np.max)`` of a real array (``S`` is left as it is)."""
    magnitude = np.abs(S)
    ref = np.max(magnitude)
    power = np.square(magnitude, out=magnitude)
    return power_to_db(power, ref=ref**2, amin=1e-5**2, top_db=top_db)


def melspectrogram(y: np.ndarray, sr: float, n_fft: int = 2048, hop_length: int = 512,
                   pad_mode: str = "constant", n_mels: int = 128) -> np.ndarray:  # fmt: skip
    """``librosa.feature.melspectrogram(y=y, sr=sr, pad_mode=pad_mode)``: mel power."""
    S = np.abs(stft(y, n_fft, hop_length, pad_mode)) ** 2.0
    return np.einsum("...ft,mf->...mt", S, mel_filters(sr, n_fft, n_mels), optimize=True)


@cache
def _dct_basis(n_in: int, n_out: int) -> np.ndarray:
    """The first ``n_out`` rows of the orthonormal DCT-II of length ``n_in``."""
    k = np.arange(n_out)[:, None]
    basis = np.cos(np.pi * k * (2 * np.arange(n_in)[None, :] + 1) / (2 * n_in))
    basis *= np.sqrt(2.0 / n_in)
    basis[0] /= np.sqrt(2.0)
    basis.flags.writeable = False
    return basis


def mfcc(mel_db: np.ndarray, n_mfcc: int = 20) -> np.ndarray:
    """``librosa.feature.mfcc(S=mel_db, n_mfcc=n_mfcc)`` (DCT-II, orthonormal, no lifter), as
    a float64 product cast to the input's precision: librosa's values to float32 rounding."""
    out = _dct_basis(mel_db.shape[-2], n_mfcc) @ mel_db.astype(np.float64)
    return out.astype(mel_db.dtype)


def onset_strength(mel_db: np.ndarray, n_fft: int, hop_length: int) -> np.ndarray:
    """``librosa.onset.onset_strength(S=mel_db, n_fft=…, hop_length=…, aggregate=np.median)``:
    the median over bands of the positive first difference, centred."""
    S = np.atleast_2d(mel_db)
    onset_env = np.maximum(0.0, S[..., 1:] - S[..., :-1])
    agg = np.empty((1, onset_env.shape[-1]), dtype=onset_env.dtype)
    agg[0] = np.median(onset_env, axis=-2)
    pad_width = 1 + n_fft // (2 * hop_length)
    agg = np.pad(agg, [(0, 0), (pad_width, 0)], mode="constant")
    return agg[..., : S.shape[-1]][0]


def tempo(onset_env: np.ndarray, sr: float, hop_length: int) -> float:
    """``librosa.feature.tempo(onset_envelope=onset_env, sr=sr, hop_length=hop_length)[0]``:
    the autocorrelation tempogram over 8-s windows, averaged, weighted by a log-normal prior
    around 120 BPM (up to 320 BPM)."""
    win_length = int(np.floor(int(8.0 * sr) // hop_length))
    n = onset_env.shape[-1]
    half = win_length // 2
    padded = np.pad(onset_env, (half, half), mode="linear_ramp", end_values=[0, 0])
    frames = frame(padded, win_length, 1)[..., :n] * hann(win_length)[:, None]
    n_pad = next_fast_len(2 * win_length - 1)
    spectrum = np.fft.rfft(frames, n=n_pad, axis=-2)
    autocorr = np.fft.irfft(spectrum.real**2 + spectrum.imag**2, n=n_pad, axis=-2)[:win_length]
    tg = np.mean(normalize(autocorr, norm=np.inf, axis=-2), axis=-1, keepdims=True)
    bpms = np.zeros(win_length, dtype=np.float64)
    bpms[0] = np.inf
    bpms[1:] = 60.0 * sr / (hop_length * np.arange(1.0, win_length))
    logprior = -0.5 * ((np.log2(bpms) - np.log2(120)) / 1.0) ** 2
    logprior[: int(np.argmax(bpms < 320.0))] = -np.inf
    best = np.argmax(np.log1p(1e6 * tg) + logprior[:, None], axis=-2)
    return float(np.take(bpms, best)[0])


def pitch_tuning(
    frequencies: np.ndarray, resolution: float = 0.01, bins_per_octave: int = 12
) -> float:
    """``librosa.pitch_tuning(frequencies, resolution=…, bins_per_octave=…)``: the most common
    deviation (in fractions of a bin) of the frequencies from equal temperament at A440."""
    frequencies = np.atleast_1d(frequencies)
    frequencies = frequencies[frequencies > 0]
    if not np.any(frequencies):
        return 0.0
    residual = np.mod(bins_per_octave * _hz_to_octs(frequencies), 1.0)
    residual[residual >= 0.5] -= 1.0
    bins = np.linspace(-0.5, 0.5, int(np.ceil(1.0 / resolution)) + 1)
    counts, edges = np.histogram(residual, bins)
    return float(edges[np.argmax(counts)])
