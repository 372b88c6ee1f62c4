"""Audio in, arrays out: decoding and clip validation.

* :func:`read_audio` decodes wav, au, flac, ogg and mp3 with soundfile (libsndfile, no ffmpeg),
  mixes to mono and resamples (soxr, as ``librosa.load`` does) to a fixed rate, 22 050 Hz by
  default. A damaged file is read up to the damage, and said so.
* :func:`load_clip` returns the first 30 s (configurable) padded with silence to exactly that
  length, after checking that the audio is usable: every failure is an :class:`AudioError`
  with one clear line (missing file, not audio, empty, silent, shorter than 1 s).
* :func:`song_windows` cuts a whole song into such clips, for voting over a long song.

The feature sets computed from these clips build on
:class:`benchmark.features.audio_base.AudioFeatureSet`. librosa, soundfile and numba come with
the optional ``audio`` extra; they are imported only when audio is actually processed, so the
rest of genrebench works without them.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.errors import ConfigError, DataError

__all__ = [
    "AudioError",
    "AudioFileMissing",
    "Clip",
    "DEFAULT_SAMPLE_RATE",
    "CLIP_SECONDS",
    "EmptyAudioError",
    "MIN_SECONDS",
    "NotAudioError",
    "SilentAudioError",
    "TooShortError",
    "audio_extra_missing",
    "load_clip",
    "resample",
    "read_audio",
    "require_audio",
    "song_windows",
    "validate_audio",
]

log = logging.getLogger(__name__)

DEFAULT_SAMPLE_RATE = 22050
#: "strictly the first 30 seconds" of every clip
CLIP_SECONDS = 30.0
#: anything shorter is refused: no meaningful genre (or feature) in less than a second
MIN_SECONDS = 1.0
#: a clip with less than this share of the requested length is logged as much shorter
SHORT_SHARE = 0.9
#: a peak below this (−80 dBFS) is silence
SILENCE_PEAK = 1e-4
#: decoding reads this many seconds at a time, so a damaged file keeps what precedes the damage
_BLOCK_SECONDS = 1.0


# --- errors -------------------------------------------------------------------------------------
class AudioError(DataError):
    """An audio file that cannot be used; the message names the file and the reason."""


class AudioFileMissing(AudioError):
    """The file does not exist."""


class NotAudioError(AudioError):
    """The file exists but does not decode as audio."""


class EmptyAudioError(AudioError):
    """The file holds no samples (0 bytes, or a header without audio)."""


class SilentAudioError(EmptyAudioError):
    """The file decodes but is silent."""


class TooShortError(AudioError):
    """Less audio than the minimum (1 s)."""


def audio_extra_missing() -> str | None:
    """Why audio cannot be processed here (the optional packages are absent), or ``None``."""
    for module in ("librosa", "soundfile", "numba"):
        if importlib.util.find_spec(module) is None:
            return (
                f"needs the optional module {module!r}: pip install 'genrebench[audio]' "
                "(librosa, soundfile)"
            )
    return None


def require_audio() -> None:
    """Fail with the install hint when the optional audio packages are absent."""
    reason = audio_extra_missing()
    if reason:
        raise ConfigError(f"audio processing {reason}")


# --- decoding -----------------------------------------------------------------------------------
def read_audio(
    path: str | os.PathLike[str],
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    *,
    offset_s: float = 0.0,
    duration_s: float | None = None,
) -> np.ndarray:
    """Decode ``path`` to mono float32 at ``sample_rate``: ``duration_s`` seconds from
    ``offset_s`` (the whole file when ``None``).

    Raises :class:`AudioFileMissing`, :class:`EmptyAudioError` (0 bytes) or
    :class:`NotAudioError`. A file damaged part-way (a truncated FLAC, say) is read up to the
    damage with a warning; it is refused only when nothing before it decodes.
    """
    require_audio()
    import soundfile as sf

    p = Path(path)
    if not p.exists():
        raise AudioFileMissing(f"{p}: no such file")
    if p.is_dir():
        raise NotAudioError(f"{p}: is a folder, not an audio file")
    if p.stat().st_size == 0:
        raise EmptyAudioError(f"{p}: empty file (0 bytes)")
    try:
        fh = sf.SoundFile(p)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise NotAudioError(f"{p}: not a readable audio file ({_sf_reason(exc)})") from None
    blocks: list[np.ndarray] = []
    with fh:
        native = fh.samplerate
        start = int(round(offset_s * native))
        if start and fh.seekable():
            fh.seek(min(start, fh.frames))
        elif start:  # not seekable: read and drop
            _read_blocks(fh, p, start, [])
        want = None if duration_s is None else int(math.ceil(duration_s * native))
        _read_blocks(fh, p, want, blocks)
    y = np.concatenate(blocks) if blocks else np.zeros((0, 1), dtype=np.float32)
    y = y.mean(axis=1, dtype=np.float32) if y.shape[1] > 1 else y[:, 0]
    if native != sample_rate and y.size:
        y = resample(y, native, sample_rate)
        if duration_s is not None:
            y = y[: int(round(duration_s * sample_rate))]
    return np.ascontiguousarray(y, dtype=np.float32)


def resample(y: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """``librosa.resample(y, orig_sr=…, target_sr=…, res_type="soxr_hq")``: soxr's high
    quality, the length fixed to ``ceil(len(y) * target_sr / orig_sr)``; called directly, so
    that decoding a 44.1 kHz song does not import librosa (~1.3 s in a fresh process)."""
    if orig_sr == target_sr:
        return y
    import soxr

    n = int(np.ceil(y.shape[-1] * (float(target_sr) / orig_sr)))
    y_hat = soxr.resample(y, orig_sr, target_sr, quality="soxr_hq")
    y_hat = y_hat[:n] if len(y_hat) >= n else np.pad(y_hat, (0, n - len(y_hat)))
    return np.asarray(y_hat, dtype=y.dtype)


def _read_blocks(fh: Any, path: Path, want: int | None, blocks: list[np.ndarray]) -> None:
    """Append decoded ``(frames, channels)`` blocks until ``want`` frames or the end; an error
    after some audio keeps that audio (logged), an error before any is :class:`NotAudioError`."""
    import soundfile as sf

    block = max(1, int(_BLOCK_SECONDS * fh.samplerate))
    got = 0
    while want is None or got < want:
        n = block if want is None else min(block, want - got)
        try:
            b = fh.read(n, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as exc:
            if got == 0:
                raise NotAudioError(
                    f"{path}: not a readable audio file ({_sf_reason(exc)})"
                ) from None
            log.warning(
                "%s: damaged or truncated: decoding stopped after %.1f s (%s); using that part",
                path,
                got / fh.samplerate,
                _sf_reason(exc),
            )
            return
        if len(b) == 0:
            return
        blocks.append(b)
        got += len(b)


def _sf_reason(exc: BaseException) -> str:
    msg = str(exc).strip()
    if ": " in msg and msg.startswith("Error opening"):
        msg = msg.rsplit(": ", 1)[-1]
    return msg.rstrip(".") or type(exc).__name__


def validate_audio(
    y: np.ndarray, sample_rate: int, path: str | os.PathLike[str], min_seconds: float = MIN_SECONDS
) -> None:
    """Refuse audio no feature can be computed from: no samples, non-finite samples, shorter
    than ``min_seconds``, or silent (peak below −80 dBFS)."""
    if y.size == 0:
        raise EmptyAudioError(f"{path}: holds no audio samples")
    if not np.isfinite(y).all():
        raise NotAudioError(f"{path}: decodes to non-finite samples")
    seconds = y.size / sample_rate
    if seconds < min_seconds:
        raise TooShortError(
            f"{path}: only {seconds:.2f} s of audio; at least {min_seconds:g} s is needed"
        )
    peak = float(np.abs(y).max())
    if peak < SILENCE_PEAK:
        level = "-inf" if peak == 0 else f"{20 * math.log10(peak):.0f}"
        raise SilentAudioError(f"{path}: silent (peak level {level} dBFS)")


@dataclass(frozen=True)
class Clip:
    """One clip: ``samples`` is exactly the requested length (zero-padded), the first
    ``n_audio`` of them are real audio."""

    samples: np.ndarray
    sample_rate: int
    n_audio: int
    path: str

    @property
    def audio(self) -> np.ndarray:
        """The real audio, without the padding."""
        return self.samples[: self.n_audio]

    @property
    def seconds(self) -> float:
        return self.n_audio / self.sample_rate


def load_clip(
    path: str | os.PathLike[str],
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    seconds: float = CLIP_SECONDS,
    *,
    offset_s: float = 0.0,
    min_seconds: float = MIN_SECONDS,
) -> Clip:
    """The first ``seconds`` of ``path`` (from ``offset_s``), validated and padded with
    silence to exactly ``seconds``; a clip much shorter than that is logged."""
    y = read_audio(path, sample_rate, offset_s=offset_s, duration_s=seconds)
    validate_audio(y, sample_rate, path, min_seconds)
    return _pad_clip(y, sample_rate, seconds, str(path))


def _pad_clip(y: np.ndarray, sample_rate: int, seconds: float, path: str) -> Clip:
    n_target = int(round(seconds * sample_rate))
    n_audio = min(len(y), n_target)
    if n_audio < SHORT_SHARE * n_target:
        log.warning(
            "%s: %.1f s of audio, padded with silence to %g s", path, n_audio / sample_rate, seconds
        )
    samples = np.zeros(n_target, dtype=np.float32)
    samples[:n_audio] = y[:n_audio]
    return Clip(samples, sample_rate, n_audio, path)


def song_windows(
    path: str | os.PathLike[str],
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    seconds: float = CLIP_SECONDS,
    *,
    min_seconds: float = MIN_SECONDS,
    min_last_share: float = 1 / 3,
) -> list[Clip]:
    """The whole song as consecutive ``seconds``-long windows (for voting over a long song).
    A last, partial window is kept when it holds at least ``min_last_share`` of a window (or
    when it is the only one); silent windows inside the song are skipped."""
    y = read_audio(path, sample_rate)
    validate_audio(y, sample_rate, path, min_seconds)
    n = int(round(seconds * sample_rate))
    out: list[Clip] = []
    for start in range(0, len(y), n):
        part = y[start : start + n]
        if out and len(part) < min_last_share * n:
            break
        if (
            float(np.abs(part).max(initial=0.0)) < SILENCE_PEAK
            or len(part) < min_seconds * sample_rate
        ):
            continue
        out.append(_pad_clip(part, sample_rate, seconds, f"{path}@{start / sample_rate:.0f}s"))
    if not out:  # every window silent or too short: the song as a whole passed validation
        out.append(_pad_clip(y[:n], sample_rate, seconds, str(path)))
    return out
