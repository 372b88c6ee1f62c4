"""Training-time augmentation of the audio feature sets: extra training rows computed from
altered copies of each clip, so a model learns features that survive how users' files differ.

Each entry of ``copies`` makes one altered copy of every clip, from a chain of transforms
(``"resample"``, ``"mp3"``, ``"gain"``, chained with ``+``: ``"resample+gain"``):

* ``resample``: down to ``resample_hz`` (16 kHz) and back up to the set's rate (soxr, as
  decoding resamples): what a file recorded or converted at 16 kHz holds;
* ``mp3``: encoded as MP3 by libsndfile (LAME) at ``mp3_level`` (its compression level, constant
  bit rate) and decoded again; 0.6 is 64 kbps at 16–24 kHz (measured: 64.2 kbps at 22 050 Hz,
  64.3 at 16 000; at 32–48 kHz the same level gives 160 kbps, see ``docs/audio-and-predict.md``);
* ``gain``: a random gain in ``gain_db`` (uniform), clipped to full scale as a file would be.

The copies are extra *training* rows: each carries its source track's id (so a track and its
copies are always on one side of a split) and a copy number above 0 in
:attr:`~benchmark.features.base.FeatureMatrix.row_copy`; tuning never predicts or scores them
(:func:`benchmark.tuning.job.fold_rows`). Random draws depend on ``seed`` (the benchmark's seed by
default), the track and the copy only, so the rows are the same in any process order.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from benchmark.audio.decoding import Clip
from benchmark.errors import ConfigError

__all__ = ["Augmentation", "TRANSFORMS", "augment_clip"]

#: the transforms a copy may chain
TRANSFORMS = ("resample", "mp3", "gain")


@dataclass(frozen=True)
class Augmentation:
    """The ``augment:`` parameter of an audio feature set, validated (see the module)."""

    copies: tuple[str, ...] = ("resample", "mp3", "gain")
    resample_hz: int = 16000
    mp3_level: float = 0.6
    gain_db: tuple[float, float] = (-6.0, 6.0)
    seed: int = 0

    KEYS: ClassVar[tuple[str, ...]] = ("copies", "resample_hz", "mp3_level", "gain_db", "seed")

    @classmethod
    def parse(cls, raw: Any, where: str, sample_rate: int) -> Augmentation | None:
        """``raw`` (a mapping, ``true`` for the defaults, ``false``/``null`` for none) checked
        against the set's ``sample_rate``; every fault names the key and what it takes."""
        if raw is None or raw is False:
            return None
        if raw is True:
            raw = {}
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where}: augment must be a mapping, true or false, got {raw!r}")
        unknown = sorted(map(str, set(raw) - set(cls.KEYS)))
        if unknown:
            raise ConfigError(
                f"{where}: unknown augment key(s) {', '.join(unknown)}; known: "
                f"{', '.join(cls.KEYS)}"
            )
        aug = cls(
            copies=_copies(raw.get("copies", cls.copies), where),
            resample_hz=_int(raw.get("resample_hz", cls.resample_hz), "resample_hz", where),
            mp3_level=_level(raw.get("mp3_level", cls.mp3_level), where),
            gain_db=_gain(raw.get("gain_db", cls.gain_db), where),
            seed=_int(raw.get("seed", cls.seed), "seed", where, low=0),
        )
        needs_rate = any("resample" in c.split("+") for c in aug.copies)
        if needs_rate and not 1000 <= aug.resample_hz < sample_rate:
            raise ConfigError(
                f"{where}: augment.resample_hz must be from 1000 up to below the set's "
                f"sample_rate {sample_rate}, got {aug.resample_hz}"
            )
        return aug

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain YAML/JSON values (what keys the cache and ``model.json``)."""
        return {
            "copies": list(self.copies),
            "resample_hz": self.resample_hz,
            "mp3_level": self.mp3_level,
            "gain_db": list(self.gain_db),
            "seed": self.seed,
        }


def _copies(raw: Any, where: str) -> tuple[str, ...]:
    if isinstance(raw, str) or not isinstance(raw, list | tuple) or not raw:
        raise ConfigError(
            f"{where}: augment.copies must be a non-empty list of transforms or chains "
            f"(of {', '.join(TRANSFORMS)}, joined by '+'), got {raw!r}"
        )
    for chain in raw:
        steps = str(chain).split("+") if isinstance(chain, str) else [None]
        bad = [s for s in steps if s not in TRANSFORMS]
        if bad:
            raise ConfigError(
                f"{where}: augment.copies entry {chain!r} is not a transform or chain of "
                f"{', '.join(TRANSFORMS)} (joined by '+')"
            )
    return tuple(str(c) for c in raw)


def _int(raw: Any, key: str, where: str, low: int = 1) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < low:
        raise ConfigError(f"{where}: augment.{key} must be an int >= {low}, got {raw!r}")
    return int(raw)


def _level(raw: Any, where: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 <= raw < 1:
        raise ConfigError(
            f"{where}: augment.mp3_level must be libsndfile's compression level in [0, 1) "
            f"(0.6: 64 kbps at 16-24 kHz), got {raw!r}"
        )
    return float(raw)


def _gain(raw: Any, where: str) -> tuple[float, float]:
    ok = (
        isinstance(raw, list | tuple)
        and len(raw) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in raw)
        and raw[0] <= raw[1]
        and all(-40 <= v <= 40 for v in raw)
    )
    if not ok:
        raise ConfigError(
            f"{where}: augment.gain_db must be [low, high] in dB, low <= high, within "
            f"[-40, 40], got {raw!r}"
        )
    return float(raw[0]), float(raw[1])


# --- the transforms -------------------------------------------------------------------------
def _rng(aug: Augmentation, track: str, copy: int) -> np.random.Generator:
    blob = f"{aug.seed}:{track}:{copy}".encode()
    return np.random.default_rng(int.from_bytes(hashlib.sha256(blob).digest()[:8], "big"))


def _fit(y: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros(n, dtype=np.float32)
    out[: min(n, len(y))] = y[:n]
    return out


def resample_through(y: np.ndarray, sample_rate: int, through_hz: int) -> np.ndarray:
    """``y`` resampled to ``through_hz`` and back to ``sample_rate`` (soxr), same length."""
    import librosa

    down = librosa.resample(y, orig_sr=sample_rate, target_sr=through_hz, res_type="soxr_hq")
    up = librosa.resample(down, orig_sr=through_hz, target_sr=sample_rate, res_type="soxr_hq")
    return _fit(up, len(y))


def mp3_round_trip(y: np.ndarray, sample_rate: int, level: float) -> np.ndarray:
    """``y`` encoded as constant-bit-rate MP3 at libsndfile's compression ``level`` and
    decoded again (in memory), same length."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(
        buf,
        np.clip(y, -1.0, 1.0),
        sample_rate,
        format="MP3",
        subtype="MPEG_LAYER_III",
        compression_level=level,
        bitrate_mode="CONSTANT",
    )
    buf.seek(0)
    decoded, _ = sf.read(buf, dtype="float32", always_2d=False)
    if decoded.ndim > 1:
        decoded = decoded.mean(axis=1)
    return _fit(np.asarray(decoded, dtype=np.float32), len(y))


def augment_clip(clip: Clip, aug: Augmentation, track: str, copy: int) -> Clip:
    """Copy ``copy`` (1-based: ``aug.copies[copy - 1]``) of ``clip``; the padding stays
    silence."""
    rng = _rng(aug, track, copy)
    y = clip.audio.astype(np.float32)
    for step in aug.copies[copy - 1].split("+"):
        if step == "resample":
            y = resample_through(y, clip.sample_rate, aug.resample_hz)
        elif step == "mp3":
            y = mp3_round_trip(y, clip.sample_rate, aug.mp3_level)
        else:  # gain
            db = float(rng.uniform(*aug.gain_db))
            y = np.clip(y * np.float32(10 ** (db / 20)), -1.0, 1.0).astype(np.float32)
    return Clip(_fit(y, len(clip.samples)), clip.sample_rate, clip.n_audio, clip.path)
