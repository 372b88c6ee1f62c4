"""Tensor feature sets computed from the audio: ``logmel`` (log-mel spectrograms) and
``waveform`` (raw samples), for the neural families, each with compact ``"tabular"`` rows
(band statistics, :func:`benchmark.features.spectrogram.band_statistics`) so the classic
families can use them too.

Input kinds:

* ``logmel`` ``"image"``: ``(n, n_mels, frames)`` float32 in dB (``librosa.power_to_db`` with
  ``ref=1``, floored ``top_db`` below the clip's peak); row 0 is the lowest mel band, as in
  ``spectrogram_img``. 128 x 1292 for 30 s at the defaults.
* ``waveform`` ``"waveform"``: ``(n, seconds * sample_rate)``, the first 30 s of each clip,
  mono, zero-padded; ``sample_rate`` downsamples (e.g. 8000 or 16000), ``dtype: float16``
  halves the cache (float32 by default).
* ``"tabular"`` of both: the spectrogram (log-mel, or for ``waveform`` a linear-frequency
  log-power STFT of the stored samples) scaled per clip to [0, 1] (``top_db`` below its peak
  → 0, peak → 1, like Kaggle's pictures) and summarised per frequency band.

The tensor rows are cached as one raw array file per (set, parameters, data) plus a JSON
sidecar, and read back memory-mapped (1000 clips: ~660 MB of log-mel, ~2.6 GB of float32
waveform at 22 050 Hz). Random crops and crop voting live with the neural families
(:mod:`benchmark.models._crops`).
"""

from __future__ import annotations

import json
import os
import tempfile
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from benchmark.audio.decoding import Clip
from benchmark.errors import ConfigError, DataError
from benchmark.features.audio_base import AudioFeatureSet
from benchmark.features.base import FeatureMatrix
from benchmark.features.spectrogram import band_statistics

if TYPE_CHECKING:
    from benchmark.data import Dataset

__all__ = ["LogMel", "Waveform", "log_mel", "unit_scale"]


@cache
def _mel_basis(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> Any:
    import librosa
    import scipy.sparse

    return scipy.sparse.csr_matrix(
        librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    )


def log_mel(
    y: np.ndarray,
    sr: int,
    *,
    n_mels: int = 128,
    n_fft: int = 2048,
    hop_length: int = 512,
    fmin: float = 0.0,
    fmax: float | None = None,
    top_db: float = 80.0,
) -> np.ndarray:
    """``power_to_db(melspectrogram(y))`` with librosa's defaults: ``(n_mels, frames)`` float32."""
    import librosa

    D = librosa.stft(y, n_fft=n_fft, hop_length=hop_length)
    power = np.abs(D) ** 2
    mel = _mel_basis(sr, n_fft, n_mels, fmin, fmax) @ power
    return librosa.power_to_db(mel, top_db=top_db).astype(np.float32)


def unit_scale(db: np.ndarray, top_db: float) -> np.ndarray:
    """dB values of one spectrogram mapped to [0, 1]: its peak → 1, ``top_db`` below → 0."""
    return np.clip((db - db.max() + top_db) / top_db, 0.0, 1.0).astype(np.float32)


class _TensorSet(AudioFeatureSet):
    """An audio set with one tensor input kind (memory-mapped cache) and a tabular summary of it."""

    tensor_kind: ClassVar[str]
    #: parameters used only by the tabular rows (they do not key the tensor cache)
    tabular_only: ClassVar[frozenset[str]] = frozenset({"bands"})
    #: librosa's STFT and filters (not yet in benchmark.audio.spectral)
    worker_modules = ("librosa.core.spectrum", "librosa.core.audio", "librosa.filters")

    def __init__(self, **params: Any) -> None:
        for key in self.int_params:
            value = params.get(key)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(f"feature set {self.name!r}: {key} must be a positive integer")
        super().__init__(**params)

    int_params: ClassVar[tuple[str, ...]] = ("bands",)

    @property
    def bands(self) -> int:
        return int(self.params.get("bands", 32))

    def feature_names(self, input_kind: str) -> list[str] | None:
        if input_kind != "tabular":
            return None
        _, names = band_statistics(np.zeros((1, max(self.bands, 1), 2), np.float32), self.bands)
        return names

    def _clip_rows(self, clip: Clip, input_kind: str) -> np.ndarray:
        tensor = self.clip_tensor(clip)
        if input_kind == self.tensor_kind:
            return tensor[None]
        if input_kind == "tabular":
            image = self.tabular_image(clip, tensor)
            if self.bands > image.shape[0]:
                raise ConfigError(
                    f"{self.name}: bands={self.bands} exceeds the {image.shape[0]} frequency rows"
                )
            return band_statistics(image[None], self.bands)[0]
        raise self.no_input_kind(input_kind)

    def clip_tensor(self, clip: Clip) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def tabular_image(self, clip: Clip, tensor: np.ndarray) -> np.ndarray:
        """A ``(frequency, time)`` array in [0, 1], row 0 the lowest frequency."""
        raise NotImplementedError  # pragma: no cover - abstract

    # --- cache ------------------------------------------------------------------------------
    def cache_key(self, dataset: Dataset, input_kind: str) -> str:
        """As :meth:`FeatureSet.cache_key`; tabular-only parameters do not key the tensor."""
        if input_kind == self.tensor_kind and self.tabular_only & set(self.params):
            rest = {k: v for k, v in self.params.items() if k not in self.tabular_only}
            return type(self)(**rest).cache_key(dataset, input_kind)
        return super().cache_key(dataset, input_kind)

    def _tensor_paths(
        self, dataset: Dataset, input_kind: str, cache_dir: Path
    ) -> tuple[Path, Path]:
        key = self.cache_key(dataset, input_kind)
        # a stored format: existing caches are found by this name, so it stays name-kind-key
        base = Path(cache_dir) / f"{self.name}-{input_kind}-{key}"
        return base.with_suffix(".json"), base.with_suffix(".dat")

    def is_cached(self, dataset: Dataset, input_kind: str, cache_dir: Path | None) -> bool:
        if input_kind != self.tensor_kind or cache_dir is None:
            return super().is_cached(dataset, input_kind, cache_dir)
        return all(p.exists() for p in self._tensor_paths(dataset, input_kind, cache_dir))

    def load(self, dataset: Dataset, input_kind: str, cache_dir: Path | None) -> FeatureMatrix:
        """As :meth:`FeatureSet.load`; the tensor rows are streamed to one raw array file as the
        clips are extracted (never all in memory) and read back memory-mapped."""
        if input_kind != self.tensor_kind or cache_dir is None:
            return super().load(dataset, input_kind, cache_dir)
        meta_path, data_path = self._tensor_paths(dataset, input_kind, cache_dir)
        if meta_path.exists() and data_path.exists():
            fm = _read_tensor_cache(meta_path, data_path)
            if fm is not None:
                return fm
        return self._write_tensor_cache(dataset, input_kind, meta_path, data_path)

    def _write_tensor_cache(
        self, dataset: Dataset, input_kind: str, meta_path: Path, data_path: Path
    ) -> FeatureMatrix:
        meta_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=meta_path.parent, suffix=".dat.tmp")
        row_track: list[str] = []
        row_copy: list[int] = []
        missing: dict[str, str] = {}
        shape: tuple[int, ...] | None = None
        dtype = np.dtype(self.tensor_dtype)
        try:
            with os.fdopen(fd, "wb") as fh:
                for tid, got, why in self.extract(dataset, input_kind):
                    if got is None:
                        missing[tid] = str(why)
                        continue
                    rows, copy = got
                    if copy is not None:
                        row_copy += [int(c) for c in copy]
                    if shape is None:
                        shape = tuple(rows.shape[1:])
                    elif tuple(rows.shape[1:]) != shape:  # pragma: no cover - fixed by params
                        raise DataError(
                            f"{self.name}: {tid} has shape {rows.shape[1:]}, not {shape}"
                        )
                    fh.write(np.ascontiguousarray(rows, dtype=dtype).tobytes())
                    row_track += [tid] * len(rows)
            if shape is None:
                first = next(iter(missing.items()), ("", "no tracks"))
                raise DataError(
                    f"{self.name}: no clip could be used ({len(missing)} skipped; "
                    f"e.g. {first[0]}: {first[1]})"
                )
            os.replace(tmp, data_path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        meta = {
            "shape": [len(row_track), *shape],
            "dtype": dtype.str,
            "row_track": row_track,
            "missing": missing or None,
        }
        if self.augmentation is not None:  # only with augmentation: other caches stay as they were
            meta["row_copy"] = row_copy
        fd, tmp_meta = tempfile.mkstemp(dir=meta_path.parent, suffix=".json.tmp")
        with os.fdopen(fd, "w") as fh:
            json.dump(meta, fh)
        os.replace(tmp_meta, meta_path)  # the sidecar last: its presence marks a complete cache
        fm = _read_tensor_cache(meta_path, data_path)
        assert fm is not None
        return fm

    @property
    def tensor_dtype(self) -> str:
        return "float32"


def _read_tensor_cache(meta_path: Path, data_path: Path) -> FeatureMatrix | None:
    """The cached tensor rows, memory-mapped; ``None`` when the files do not match."""
    try:
        meta = json.loads(meta_path.read_text())
        shape = tuple(int(s) for s in meta["shape"])
        dtype = np.dtype(meta["dtype"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if data_path.stat().st_size != int(np.prod(shape)) * dtype.itemsize:
        return None
    X = np.memmap(data_path, dtype=dtype, mode="r", shape=shape)
    return FeatureMatrix(
        X=X,
        row_track=np.asarray(meta["row_track"], dtype=str),
        feature_names=None,
        missing=meta.get("missing"),
        row_copy=None if meta.get("row_copy") is None else np.asarray(meta["row_copy"], np.int16),
    )


class LogMel(_TensorSet):
    """Log-mel spectrograms of the first 30 s (``"image"``: ``(n, n_mels, frames)`` dB) and
    their band statistics (``"tabular"``).

    Parameters: ``n_mels`` (128), ``n_fft`` (2048), ``hop_length`` (512), ``fmin`` (0),
    ``fmax`` (sample_rate / 2), ``top_db`` (80), ``bands`` (tabular, 32), plus ``sample_rate``,
    ``seconds``, ``band_limit_hz`` and ``n_jobs``.
    """

    name = "logmel"
    input_kinds = ("tabular", "image")
    version = 1
    extract_cpu_s = 0.08  # docs/measurements/audio.md
    tensor_kind = "image"
    params_allowed = frozenset({"n_mels", "n_fft", "hop_length", "fmin", "fmax", "top_db", "bands"})
    int_params = ("n_mels", "n_fft", "hop_length", "bands")

    def __init__(self, **params: Any) -> None:
        for key in ("fmin", "fmax", "top_db"):
            value = params.get(key)
            if value is not None and (not isinstance(value, int | float) or value < 0):
                raise ConfigError(f"feature set {self.name!r}: {key} must be a number >= 0")
        super().__init__(**params)

    def clip_tensor(self, clip: Clip) -> np.ndarray:
        p = self.params
        return log_mel(
            clip.samples,
            clip.sample_rate,
            n_mels=int(p.get("n_mels", 128)),
            n_fft=int(p.get("n_fft", 2048)),
            hop_length=int(p.get("hop_length", 512)),
            fmin=float(p.get("fmin", 0.0)),
            fmax=None if p.get("fmax") is None else float(p["fmax"]),
            top_db=float(p.get("top_db", 80.0)),
        )

    def tabular_image(self, clip: Clip, tensor: np.ndarray) -> np.ndarray:
        return unit_scale(tensor, float(self.params.get("top_db", 80.0)))


class Waveform(_TensorSet):
    """The first 30 s of raw samples (``"waveform"``: ``(n, seconds * sample_rate)``), and band
    statistics of their linear-frequency spectrogram (``"tabular"``).

    Parameters: ``sample_rate`` (22050; lower it to downsample), ``seconds`` (30), ``dtype``
    (``float32`` or ``float16``), ``n_fft`` (tabular STFT size, 512), ``bands`` (tabular, 32),
    ``band_limit_hz``, ``n_jobs``.
    """

    name = "waveform"
    input_kinds = ("tabular", "waveform")
    version = 1
    tensor_kind = "waveform"
    params_allowed = frozenset({"dtype", "n_fft", "bands"})
    tabular_only = frozenset({"bands", "n_fft"})
    int_params = ("n_fft", "bands")

    def __init__(self, **params: Any) -> None:
        if params.get("dtype", "float32") not in ("float32", "float16"):
            raise ConfigError(f"feature set {self.name!r}: dtype must be float32 or float16")
        super().__init__(**params)

    @property
    def tensor_dtype(self) -> str:
        return str(self.params.get("dtype", "float32"))

    def clip_tensor(self, clip: Clip) -> np.ndarray:
        return clip.samples.astype(self.tensor_dtype)

    def tabular_image(self, clip: Clip, tensor: np.ndarray) -> np.ndarray:
        import librosa

        n_fft = int(self.params.get("n_fft", 512))
        power = np.abs(librosa.stft(clip.samples, n_fft=n_fft, hop_length=n_fft // 2)) ** 2
        return unit_scale(librosa.power_to_db(power, top_db=80.0), 80.0)
