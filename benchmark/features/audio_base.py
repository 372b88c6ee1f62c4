"""The base of every feature set computed from the audio files (``genres_original/``).

:class:`AudioFeatureSet` extracts each clip in parallel (joblib, ``n_jobs``) with a progress bar,
records the clips that cannot be used in :attr:`FeatureMatrix.missing` (so the benchmark reports
the coverage) instead of failing, and computes the same rows for a single file, which is what
``genrebench predict`` needs. :class:`ClipParameters` is the decoding parameters every such set
shares (``spectrogram_img`` too, when it renders from audio); :func:`imap_progress` is the
parallel map with progress they all extract with. Decoding itself is
:mod:`benchmark.audio.decoding`.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np

from benchmark.audio.decoding import (
    CLIP_SECONDS,
    DEFAULT_SAMPLE_RATE,
    MIN_SECONDS,
    AudioError,
    Clip,
    audio_extra_missing,
    load_clip,
    require_audio,
)
from benchmark.errors import ConfigError, DataError
from benchmark.features.augmentation import Augmentation, augment_clip
from benchmark.features.base import FeatureMatrix, FeatureSet

if TYPE_CHECKING:
    from benchmark.data import Dataset

__all__ = ["AudioFeatureSet", "ClipParameters", "audio_missing_reason", "imap_progress"]

log = logging.getLogger(__name__)

#: the lowest ``band_limit_hz`` accepted: below it no genre feature is left worth computing
MIN_BAND_LIMIT_HZ = 1000

T = TypeVar("T")
R = TypeVar("R")


# --- parallel extraction with progress ------------------------------------------------------
def imap_progress(
    fn: Callable[[T], R],
    items: Sequence[T],
    *,
    n_jobs: int = 1,
    description: str = "clips",
) -> Iterator[R]:
    """``fn(item)`` for each item, yielded in order as they finish, over ``n_jobs`` worker
    processes (joblib; in this process for 1), with a progress bar on a terminal and a log line
    every ~10 % otherwise. BLAS stays single-threaded in this process (the arrays are small;
    joblib's workers do the same)."""
    from threadpoolctl import threadpool_limits

    total = len(items)
    t0 = time.perf_counter()
    progress = _progress(description, total)
    step = max(1, total // 10)
    done = 0
    try:
        with threadpool_limits(limits=1):
            if n_jobs == 1 or total <= 1:
                stream: Iterable[R] = (fn(item) for item in items)
            else:
                from joblib import Parallel, delayed

                stream = Parallel(n_jobs=n_jobs, return_as="generator")(
                    delayed(fn)(i) for i in items
                )
            for r in stream:
                done += 1
                if progress is not None:
                    progress[0].update(progress[1], completed=done)
                elif done % step == 0 or done == total:
                    rate = done / max(time.perf_counter() - t0, 1e-9)
                    log.info("%s: %d/%d (%.1f clips/s)", description, done, total, rate)
                yield r
    finally:
        if progress is not None:
            progress[0].stop()


def _progress(description: str, total: int) -> tuple[Any, Any] | None:
    if total < 2 or not sys.stderr.isatty():
        return None
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = progress.add_task(description, total=total)
    progress.start()
    return progress, task


# --- the feature-set base ---------------------------------------------------------------------
def audio_missing_reason(dataset: Dataset) -> str | None:
    """Why ``dataset`` offers no audio to extract from, or ``None``."""
    folder = dataset.path("audio")
    if not folder.is_dir():
        return f"{folder.name}/ is not in {dataset.root}"
    if dataset.tracks["audio_path"].notna().sum() == 0:
        return f"{folder} holds no <genre>/<clip>.(wav|au|flac|ogg|mp3) audio files"
    return audio_extra_missing()


def _extract_one(
    job: tuple[AudioFeatureSet, str, str, str],
) -> tuple[tuple[np.ndarray, np.ndarray | None] | None, str | None]:
    """Worker: the rows of one clip (and each row's copy number, with augmentation), or why
    there are none (never raises)."""
    fset, path, input_kind, track = job
    try:
        if fset.augmentation is None:
            return (fset.file_rows(path, input_kind), None), None
        return fset.augmented_file_rows(path, input_kind, track), None
    except AudioError as exc:
        reason = str(exc).split(": ", 1)[-1] if str(exc).startswith(str(path)) else str(exc)
        return None, reason
    except Exception as exc:  # a clip that breaks a feature must not stop the benchmark
        log.debug("extraction of %s failed", path, exc_info=True)
        return None, f"extraction failed: {type(exc).__name__}: {exc}"


class ClipParameters:
    """The decoding parameters every set computed from audio shares (its ``params``)."""

    params: dict[str, Any]
    name: ClassVar[str]
    #: the decoding rate when the parameters give none (a set whose model expects another rate,
    #: e.g. ``embedding_musicnn``'s 16 kHz, decodes at that rate directly)
    default_sample_rate: ClassVar[int] = DEFAULT_SAMPLE_RATE
    #: extraction processes (popped from the parameters: not part of the cache key)
    n_jobs: int | None
    #: the modules ``predict``'s pool workers import before their first file (what the set's
    #: extraction needs beyond numpy and the decoder: loaded once, in the fork server)
    worker_modules: ClassVar[tuple[str, ...]] = ()

    def take_clip_params(self, params: dict[str, Any]) -> None:
        """Check ``sample_rate`` and ``seconds``; move ``n_jobs`` out of ``params``."""
        n_jobs = params.pop("n_jobs", None)
        if n_jobs is not None and (not isinstance(n_jobs, int) or n_jobs == 0 or n_jobs < -1):
            raise ConfigError(f"feature set {self.name!r}: n_jobs must be a positive int or -1")
        self.n_jobs = n_jobs
        sr = params.get("sample_rate", self.default_sample_rate)
        if not isinstance(sr, int) or not 1000 <= sr <= 192000:
            raise ConfigError(f"feature set {self.name!r}: sample_rate must be an int in Hz")
        seconds = params.get("seconds", CLIP_SECONDS)
        if not isinstance(seconds, int | float) or not MIN_SECONDS <= seconds <= 600:
            raise ConfigError(f"feature set {self.name!r}: seconds must be in [1, 600]")
        limit = params.get("band_limit_hz")
        if limit is not None and (
            isinstance(limit, bool)
            or not isinstance(limit, int | float)
            or not MIN_BAND_LIMIT_HZ <= limit < sr / 2
        ):
            raise ConfigError(
                f"feature set {self.name!r}: band_limit_hz must be a frequency in Hz from "
                f"{MIN_BAND_LIMIT_HZ} up to below the Nyquist frequency sample_rate / 2 = "
                f"{sr / 2:g} (above it there is nothing to remove), got {limit!r}"
            )

    @property
    def sample_rate(self) -> int:
        return int(self.params.get("sample_rate", self.default_sample_rate))

    @property
    def seconds(self) -> float:
        return float(self.params.get("seconds", CLIP_SECONDS))

    @property
    def band_limit_hz(self) -> float | None:
        limit = self.params.get("band_limit_hz")
        return None if limit is None else float(limit)


class AudioFeatureSet(ClipParameters, FeatureSet):
    """A feature set computed from the audio files of the dataset.

    Subclasses implement :meth:`_clip_rows` (the rows of one decoded clip for an input kind) and
    :meth:`feature_names`. Common parameters (part of the cache key unless said otherwise):

    * ``sample_rate`` (:attr:`~ClipParameters.default_sample_rate`, 22050 unless the set says
      otherwise): decoding rate;
    * ``seconds`` (30): the clip length read from the start of each file (shorter clips are
      padded with silence);
    * ``band_limit_hz`` (none): cut every clip at this frequency before its features
      (:func:`benchmark.audio.band_limit.low_pass`), in training and in ``predict`` alike, so a file
      whose content stops above it gives the features of a full-band one (7500 covers audio
      resampled to 16 kHz, whose resampler keeps a transition band below 8 kHz);
    * ``n_jobs``: extraction processes (not in the cache key; default: all cores for 16 clips
      or more, else 1);
    * ``augment`` (none): extra training rows from altered copies of each clip
      (:class:`~benchmark.features.augmentation.Augmentation`: 16 kHz, MP3, gain), marked in
      :attr:`FeatureMatrix.row_copy`; in the cache key only when set.
    """

    #: the ``augment`` parameter, validated (None: no augmented copies)
    augmentation: Augmentation | None
    #: the parameters a subclass accepts besides the common ones
    params_allowed: ClassVar[frozenset[str]] = frozenset()
    #: measured CPU seconds to compute one 30-s clip's rows, decoding included (dated figures in
    #: docs/measurements/audio.md): what ``run --dry-run`` multiplies by the clips to extract;
    #: None: the dry run times one clip instead
    extract_cpu_s: ClassVar[float | None] = None
    _COMMON: ClassVar[frozenset[str]] = frozenset(
        {"sample_rate", "seconds", "band_limit_hz", "n_jobs", "augment"}
    )

    @classmethod
    def audio_counterpart(cls) -> str | None:
        return cls.name

    def __init__(self, **params: Any) -> None:
        unknown = sorted(set(params) - self._COMMON - self.params_allowed)
        if unknown:
            known = sorted(self._COMMON | self.params_allowed)
            raise ConfigError(
                f"feature set {self.name!r}: unknown parameter(s) {', '.join(unknown)}; "
                f"known: {', '.join(known)}"
            )
        self.take_clip_params(params)
        self.augmentation = Augmentation.parse(
            params.pop("augment", None),
            f"feature set {self.name!r}",
            int(params.get("sample_rate", DEFAULT_SAMPLE_RATE)),
        )
        if self.augmentation is not None:  # the full settings key the cache
            params["augment"] = self.augmentation.to_dict()
        super().__init__(**params)

    # --- per clip ---------------------------------------------------------------------------
    def clip_rows(self, clip: Clip, input_kind: str) -> np.ndarray:
        """The rows of one clip for ``input_kind``: ``(n_rows, ...)``, band-limited first when the
        set has ``band_limit_hz``."""
        limit = self.band_limit_hz
        if limit is not None:
            from benchmark.audio.band_limit import low_pass

            samples = low_pass(clip.samples, clip.sample_rate, limit)
            samples[clip.n_audio :] = 0.0  # the padding stays silence
            clip = Clip(samples, clip.sample_rate, clip.n_audio, clip.path)
        return self._clip_rows(clip, input_kind)

    @abstractmethod
    def _clip_rows(self, clip: Clip, input_kind: str) -> np.ndarray:
        """The rows of one (already band-limited) clip for ``input_kind``."""

    @abstractmethod
    def feature_names(self, input_kind: str) -> list[str] | None:
        """Column names of tabular rows, ``None`` for tensor input kinds."""

    def file_rows(self, path: str | os.PathLike[str], input_kind: str) -> np.ndarray:
        """Decode the first ``seconds`` of ``path`` and compute its rows for ``input_kind``."""
        clip = load_clip(path, self.sample_rate, self.seconds)
        return self.clip_rows(clip, input_kind)

    def augmented_file_rows(
        self, path: str | os.PathLike[str], input_kind: str, track: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`file_rows` of ``path`` followed by the rows of each augmented copy of it, and
        each row's copy number (0: the clip as found)."""
        aug = self.augmentation
        if aug is None:
            raise ValueError(f"feature set {self.name!r} has no augment settings")
        clip = load_clip(path, self.sample_rate, self.seconds)
        parts = [self.clip_rows(clip, input_kind)]
        for k in range(1, len(aug.copies) + 1):
            parts.append(self.clip_rows(augment_clip(clip, aug, track, k), input_kind))
        copy = np.concatenate([np.full(len(p), k, dtype=np.int16) for k, p in enumerate(parts)])
        return np.concatenate(parts), copy

    # --- the dataset --------------------------------------------------------------------------
    def unavailable(self, dataset: Dataset) -> str | None:
        return audio_missing_reason(dataset)

    def input_files(self, dataset: Dataset) -> list[Path]:
        return [Path(p) for p in dataset.tracks["audio_path"].dropna()]

    def _jobs_for(self, n_clips: int) -> int:
        if self.n_jobs is not None:
            return self.n_jobs if self.n_jobs > 0 else (os.cpu_count() or 1)
        return (os.cpu_count() or 1) if n_clips >= 16 else 1

    def extract(
        self, dataset: Dataset, input_kind: str
    ) -> Iterator[tuple[str, tuple[np.ndarray, np.ndarray | None] | None, str | None]]:
        """``(track_id, (rows, copy numbers or None) or None, reason or None)`` for every track
        of the dataset, in track order; tracks without an audio file come with the reason
        ``no audio file``. Copy numbers come with ``augment`` only."""
        require_audio()
        reason = audio_missing_reason(dataset)
        if reason:
            raise DataError(f"{self.name}: {reason}")
        tracks = dataset.tracks
        have = tracks[tracks["audio_path"].notna()]
        jobs = [
            (self, str(p), input_kind, str(t))
            for p, t in zip(have["audio_path"], have["track_id"], strict=True)
        ]
        t0 = time.perf_counter()
        stream = imap_progress(
            _extract_one,
            jobs,
            n_jobs=self._jobs_for(len(jobs)),
            description=f"{self.name} ({input_kind}): {len(jobs)} clips",
        )
        with_audio = set(have["track_id"])
        for tid in tracks["track_id"]:
            if tid not in with_audio:
                yield str(tid), None, "no audio file"
                continue
            rows, why = next(stream)
            if why is not None:
                log.warning("%s: skipping %s: %s", self.name, tid, why)
            yield str(tid), rows, why
        for _ in stream:  # nothing left: lets the stream close its progress bar and workers
            pass
        wall = time.perf_counter() - t0
        log.info(
            "%s (%s): %d clips in %.1f s (%.1f clips/s)",
            self.name,
            input_kind,
            len(jobs),
            wall,
            len(jobs) / max(wall, 1e-9),
        )

    def build(self, dataset: Dataset, input_kind: str) -> FeatureMatrix:
        if input_kind not in self.input_kinds:
            raise self.no_input_kind(input_kind)
        parts: list[np.ndarray] = []
        copies: list[np.ndarray] = []
        row_track: list[str] = []
        missing: dict[str, str] = {}
        for tid, got, why in self.extract(dataset, input_kind):
            if got is None:
                missing[tid] = str(why)
                continue
            rows, copy = got
            parts.append(rows)
            if copy is not None:
                copies.append(copy)
            row_track += [tid] * len(rows)
        if not parts:
            first = next(iter(missing.items()), ("", "no tracks"))
            raise DataError(
                f"{self.name}: no clip could be used ({len(missing)} skipped; "
                f"e.g. {first[0]}: {first[1]})"
            )
        return FeatureMatrix(
            X=np.concatenate(parts),
            row_track=np.asarray(row_track, dtype=str),
            feature_names=self.feature_names(input_kind),
            missing=missing or None,
            row_copy=np.concatenate(copies) if self.augmentation is not None else None,
        )
