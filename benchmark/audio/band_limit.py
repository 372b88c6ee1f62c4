"""How much of the spectrum a clip really holds, and whether a model saw as much in training.

A model trained on full-band 22 050 Hz clips is silently wrong on band-limited input: 40 GTZAN
clips it was trained on drop from 92.5 % to 40 % top-1 once resampled to 16 kHz (issue 17), because
roll-off, centroid, bandwidth, zero-crossing rate and the upper MFCCs all move. Two things here:

* :func:`band_edge_hz` measures a clip's *effective bandwidth*: the highest frequency whose
  long-term mean power lies within :data:`EDGE_DB` (70 dB) of the spectrum's peak (the spectrum
  median-smoothed over ~100 Hz, so one stray tone or hum line does not move it). An energy
  criterion (the frequency below which 99 % of the energy lies) was measured and rejected: it
  follows the genre, not the recording chain (2.6 kHz for reggae, 10 kHz for metal on the shared
  clips), so a dark full-band clip and a bright low-passed one overlap. Where content *stops*
  does not depend on the genre: on the 115 shared clips at 22 050 Hz it is 9.2–11.0 kHz (5 %
  quantile 9.6 kHz); the same clips through 16 kHz are 7.7–7.8 kHz, every one of them.
* :class:`TrainingBand` is what the exported model records about its training audio (sample
  rate, the 5 % quantile and median of the clips' band edges, how many were measured), and
  :func:`band_warning` compares a file with it: a file is flagged when its edge is below
  :data:`TOLERANCE` (90 %) of the training quantile, or of the model's ``band_limit_hz`` where its
  features are band-limited (a low-pass or resampler's transition band puts the measured edge a
  few percent below the cut-off: 7.7 kHz for a 16 kHz file).

:func:`low_pass` is the ``band_limit_hz`` option of the audio feature sets: a brick-wall cut at that
frequency, so a full-band clip and a band-limited copy whose content reaches past the cut-off give
the same features. A resampler keeps a transition band below its Nyquist frequency (soxr at
16 kHz: flat to about 7.6 kHz), so the limit that makes 16 kHz files safe is 7500, not 8000.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = [
    "EDGE_DB",
    "TOLERANCE",
    "FileBand",
    "TrainingBand",
    "band_edge_hz",
    "band_warning",
    "low_pass",
    "measure_file",
    "measure_training",
    "native_sample_rate",
]

log = logging.getLogger(__name__)

#: a frequency holds content when its mean power is within this many dB of the peak
EDGE_DB = 70.0
#: a file is band-limited when its edge is below this share of the training reference
TOLERANCE = 0.9
#: the training reference: this quantile of the training clips' edges (robust to a few dark ones)
TRAINING_QUANTILE = 5.0
#: at most this many training clips are measured at export (every k-th in track order)
MAX_TRAINING_CLIPS = 200
_N_FFT = 2048
_SMOOTH_BINS = 9  # ~100 Hz at 22 050 Hz


def band_edge_hz(y: np.ndarray, sample_rate: int) -> float:
    """The effective bandwidth of ``y``: the highest frequency whose smoothed long-term mean
    power is within :data:`EDGE_DB` of the peak (0 for silence)."""
    from scipy.ndimage import median_filter

    y = np.asarray(y, dtype=np.float64)
    if len(y) < _N_FFT:
        y = np.pad(y, (0, _N_FFT - len(y)))
    n_frames = 1 + (len(y) - _N_FFT) // (_N_FFT // 2)
    starts = np.arange(n_frames) * (_N_FFT // 2)
    frames = y[starts[:, None] + np.arange(_N_FFT)] * np.hanning(_N_FFT)
    power = (np.abs(np.fft.rfft(frames, axis=1)) ** 2).mean(axis=0)
    if power.max() <= 0:
        return 0.0
    db = median_filter(10 * np.log10(np.maximum(power, 1e-30)), size=_SMOOTH_BINS, mode="nearest")
    freqs = np.fft.rfftfreq(_N_FFT, 1.0 / sample_rate)
    return float(freqs[np.flatnonzero(db >= db.max() - EDGE_DB)[-1]])


def low_pass(y: np.ndarray, sample_rate: int, band_limit_hz: float) -> np.ndarray:
    """``y`` with nothing above ``band_limit_hz``: every frequency above it zeroed in one FFT of
    the whole clip (a brick wall; the same length, float32). Applying it twice changes nothing,
    so a file already band-limited below the cut-off keeps what it has."""
    spectrum = np.fft.rfft(np.asarray(y, dtype=np.float64))
    spectrum[np.fft.rfftfreq(len(y), 1.0 / sample_rate) > band_limit_hz] = 0.0
    return np.fft.irfft(spectrum, n=len(y)).astype(np.float32)


def native_sample_rate(path: str | os.PathLike[str]) -> int | None:
    """The sample rate stored in the file (before decoding resamples it), or None."""
    import soundfile as sf

    try:
        return int(sf.info(str(path)).samplerate)
    except Exception:  # unreadable headers are reported by decoding itself
        return None


@dataclass(frozen=True)
class FileBand:
    """A file's sample rate (as stored) and effective bandwidth (as decoded for the model)."""

    sample_rate: int | None
    bandwidth_hz: float


def measure_file(path: str | os.PathLike[str], y: np.ndarray, sample_rate: int) -> FileBand:
    """The band of ``path``, whose decoded audio at ``sample_rate`` is ``y``."""
    return FileBand(native_sample_rate(path), band_edge_hz(y, sample_rate))


@dataclass(frozen=True)
class TrainingBand:
    """What a model knows about its training audio (``model.json`` ``"training_audio"``).

    ``source`` is ``"measured"`` (band edges of ``clips`` training clips), ``"declared"`` (only
    the dataset's declared sample rate: a model trained on feature files without the audio)
    or ``"unknown"``.
    """

    source: str
    sample_rate: int | None = None
    bandwidth_hz: float | None = None
    bandwidth_median_hz: float | None = None
    clips: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> TrainingBand:
        """The model's record; ``unknown`` for a model saved before it was kept."""
        raw = meta.get("training_audio")
        if not isinstance(raw, dict):
            return cls("unknown")
        known = {k: raw[k] for k in cls.__dataclass_fields__ if k in raw}
        return cls(**{"source": "unknown", **known})

    def describe(self) -> str:
        if self.source == "measured" and self.bandwidth_hz is not None:
            return (
                f"training audio {_khz(self.sample_rate)}, bandwidth >= "
                f"{self.bandwidth_hz / 1000:.1f} kHz in 95 % of {self.clips} clips"
            )
        if self.sample_rate:
            return f"training audio {_khz(self.sample_rate)} (declared), bandwidth unknown"
        return "training audio unknown"


def _khz(rate: int | None) -> str:
    return "? Hz" if not rate else f"{rate} Hz"


def measure_training(
    paths: Sequence[str | os.PathLike[str]],
    sample_rate: int,
    *,
    seconds: float = 30.0,
    declared_rate: int | None = None,
) -> TrainingBand:
    """The band of the training audio: up to :data:`MAX_TRAINING_CLIPS` of ``paths`` (evenly
    spread) decoded at ``sample_rate`` as the features are. Without any usable file, the
    ``declared_rate`` of the dataset (``declared``) or ``unknown``."""
    from collections import Counter

    from benchmark.audio.decoding import AudioError, load_clip

    step = max(1, int(np.ceil(len(paths) / MAX_TRAINING_CLIPS)))
    edges: list[float] = []
    rates: Counter[int] = Counter()
    for p in list(paths)[::step]:
        try:
            clip = load_clip(p, sample_rate, seconds)
        except AudioError as exc:
            log.debug("training band: skipping %s (%s)", p, exc)
            continue
        edges.append(band_edge_hz(clip.audio, sample_rate))
        rate = native_sample_rate(p)
        if rate:
            rates[rate] += 1
    if not edges:
        return TrainingBand("declared", declared_rate) if declared_rate else TrainingBand("unknown")
    return TrainingBand(
        "measured",
        sample_rate=rates.most_common(1)[0][0] if rates else declared_rate,
        bandwidth_hz=round(float(np.percentile(edges, TRAINING_QUANTILE)), 1),
        bandwidth_median_hz=round(float(np.median(edges)), 1),
        clips=len(edges),
    )


def band_warning(
    band: FileBand, training: TrainingBand, band_limits: Sequence[float | None] = (None,)
) -> str | None:
    """Why ``band`` is narrower than what the model was trained on, or None.

    ``band_limits`` holds each model input's ``band_limit_hz`` (None: full band): a band-limited
    input needs only that much; the file is flagged when any input needs more than it holds.
    A file at a lower sample rate than the (measured or declared) training audio is flagged
    when its Nyquist frequency is below what an input needs, or below the training Nyquist
    when the training bandwidth is unknown.
    """
    ref = training.bandwidth_hz
    if ref is None and training.sample_rate:
        ref = training.sample_rate / 2
    if ref is None:
        return None
    needed = max(ref if limit is None else min(ref, limit) for limit in band_limits)
    held = band.bandwidth_hz
    if band.sample_rate:
        held = min(held, band.sample_rate / 2)
    if training.bandwidth_hz is None:  # only the declared rate is known: compare rates only
        held = band.sample_rate / 2 if band.sample_rate else needed
    if held >= TOLERANCE * needed:
        return None
    rate = f" at {band.sample_rate} Hz" if band.sample_rate else ""
    return (
        f"band-limited input: content up to {band.bandwidth_hz / 1000:.1f} kHz{rate}, the model "
        f"needs about {needed / 1000:.1f} kHz ({training.describe()}); predictions may be wrong "
        "(train with feature_params band_limit_hz to make the features robust)"
    )
