"""The feature-set contract: what every feature set hands to the protocols and the models.

A feature set turns a :class:`~benchmark.data.Dataset` into rows. Clip-level sets give one row per
track; segment sets (csv_3s, crops) give several rows per track, and ``row_track`` says which track
each row belongs to, so splits can keep a track's rows together and scoring can aggregate them.
A set may give its tracks as several *input kinds* (``"tabular"`` rows for classic families,
``"image"`` for image models, ``"waveform"`` for raw-audio networks); each family asks for the
input kind it consumes (``Family.input_kind``).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np

if TYPE_CHECKING:
    from benchmark.data import Dataset

__all__ = ["FeatureMatrix", "FeatureSet", "fingerprint_files"]


@dataclass(frozen=True)
class FeatureMatrix:
    """Rows of one input kind of one feature set.

    Attributes:
        X: ``(n_rows, n_features)`` for the tabular kind, ``(n_rows, H, W)`` for the image kind.
        row_track: ``(n_rows,)`` track id of each row (``"blues.00000"``).
        feature_names: column names of tabular rows, else ``None``.
        missing: track ids of the dataset that this set could not provide, with the reason
            (``{"jazz.00054": "no image file"}``); the benchmark runs on the others and reports
            the coverage.
        row_copy: ``(n_rows,)`` int, 0 for a row of the clip as found and ``k`` for a row of
            its ``k``-th augmented copy (:mod:`benchmark.features.augmentation`), which is a
            training row only: never predicted, validated on or scored. ``None``: no copies.
    """

    X: np.ndarray
    row_track: np.ndarray
    feature_names: list[str] | None = None
    missing: dict[str, str] | None = None
    row_copy: np.ndarray | None = None

    def __post_init__(self) -> None:
        if len(self.X) != len(self.row_track):
            raise ValueError(
                f"FeatureMatrix needs one track id per row: X has {len(self.X)} rows, "
                f"row_track {len(self.row_track)}"
            )
        if self.row_copy is not None and len(self.row_copy) != len(self.row_track):
            raise ValueError(
                f"FeatureMatrix needs one copy number per row: row_copy has "
                f"{len(self.row_copy)}, row_track {len(self.row_track)}"
            )

    @property
    def n_copies(self) -> int:
        """Rows of augmented copies (training rows only)."""
        return 0 if self.row_copy is None else int(np.count_nonzero(self.row_copy))

    def as_found(self) -> FeatureMatrix:
        """The rows of the clips as found, without augmented copies."""
        if self.row_copy is None:
            return self
        keep = np.asarray(self.row_copy) == 0
        return FeatureMatrix(self.X[keep], self.row_track[keep], self.feature_names, self.missing)

    @property
    def tracks(self) -> np.ndarray:
        """Track ids present, in first-seen order."""
        _, idx = np.unique(self.row_track, return_index=True)
        return self.row_track[np.sort(idx)]

    @property
    def segmented(self) -> bool:
        return len(np.unique(self.row_track)) != len(self.row_track)


class FeatureSet(ABC):
    """One way of turning tracks into model inputs. Subclasses are registered by ``name``.

    Computation happens in :meth:`build`; :meth:`load` wraps it with an on-disk cache keyed by
    the set's name, parameters, input kind and a fingerprint of its input files, so a changed input
    file or parameter recomputes and an unchanged one is read back.
    """

    #: the registered name (a class attribute); an instance may carry another one, what results
    #: and messages call it (a config's feature variant, :meth:`named`), while the cache keys
    #: and ``predict`` go by :meth:`registered_name`, the computation it is
    name: str
    #: the input kinds this set can give (``Family.input_kind``: ``"tabular"``, ``"image"``,
    #: ``"waveform"``)
    input_kinds: ClassVar[tuple[str, ...]] = ("tabular",)
    #: bumped when the extraction code changes, so old caches are not reused
    version: ClassVar[int] = 1
    #: the feature set that computes this set's values from one audio file (``predict``, the
    #: final model), e.g. ``librosa_30s`` for Kaggle's ``csv_30s``; None where none does
    computed_from_audio_by: ClassVar[str | None] = None

    @classmethod
    def audio_counterpart(cls) -> str | None:
        """Name of the feature set that computes this one from audio (itself for audio sets),
        or None: a model on this set cannot classify a song."""
        return cls.computed_from_audio_by

    def __init__(self, **params: Any) -> None:
        self.params = params

    @classmethod
    def registered_name(cls) -> str:
        """The name this set's class is registered under (what computes it)."""
        return cls.name

    def named(self, name: str) -> Self:
        """This set under the name ``name`` (a config's feature variant): results, logs and
        errors say ``name``; it is still computed, and cached, as its registered set."""
        self.name = name
        return self

    def unavailable(self, dataset: Dataset) -> str | None:
        """Why this set cannot be built from ``dataset`` (a missing file), or ``None``."""
        return None

    @abstractmethod
    def input_files(self, dataset: Dataset) -> list[Path]:
        """The files this set reads; their fingerprint keys the cache."""

    @abstractmethod
    def build(self, dataset: Dataset, input_kind: str) -> FeatureMatrix:
        """Compute the ``input_kind`` rows from the dataset's files (no cache)."""

    def no_input_kind(self, input_kind: str) -> ValueError:
        """The error for asking this set for an input kind it does not give."""
        return ValueError(
            f"feature set {self.name!r} gives no {input_kind!r} input (gives {self.input_kinds})"
        )

    def cache_key(self, dataset: Dataset, input_kind: str) -> str:
        payload = {
            "name": self.registered_name(),
            "version": self.version,
            "view": input_kind,  # the kind's old name, kept: existing caches stay valid
            "params": self.params,
            "tracks": dataset.fingerprint(),
            "files": fingerprint_files(self.input_files(dataset)),
        }
        blob = json.dumps(payload, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def _cache_path(self, dataset: Dataset, input_kind: str, cache_dir: Path) -> Path:
        name, key = self.registered_name(), self.cache_key(dataset, input_kind)
        # a stored format: existing caches are found by this name, so it stays name-kind-key
        return Path(cache_dir) / f"{name}-{input_kind}-{key}.npz"

    def is_cached(self, dataset: Dataset, input_kind: str, cache_dir: Path | None) -> bool:
        """Whether :meth:`load` would read the rows back rather than build them (a dry run
        estimates what a build costs instead of building)."""
        return cache_dir is not None and self._cache_path(dataset, input_kind, cache_dir).exists()

    def load(self, dataset: Dataset, input_kind: str, cache_dir: Path | None) -> FeatureMatrix:
        """The ``input_kind`` rows, from the cache when its key matches, else built and cached
        atomically."""
        if input_kind not in self.input_kinds:
            raise self.no_input_kind(input_kind)
        if cache_dir is None:
            return self.build(dataset, input_kind)
        path = self._cache_path(dataset, input_kind, cache_dir)
        if path.exists():
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                return FeatureMatrix(
                    X=z["X"],
                    row_track=z["row_track"],
                    feature_names=meta["feature_names"],
                    missing=meta["missing"],
                    row_copy=z["row_copy"] if "row_copy" in z.files else None,
                )
        fm = self.build(dataset, input_kind)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = json.dumps({"feature_names": fm.feature_names, "missing": fm.missing})
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
        os.close(fd)
        arrays = {"X": fm.X, "row_track": fm.row_track.astype(str), "meta": np.array(meta)}
        if fm.row_copy is not None:  # only with augmentation: other caches stay as they were
            arrays["row_copy"] = np.asarray(fm.row_copy, dtype=np.int16)
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
        return fm


def fingerprint_files(paths: list[Path]) -> str:
    """Cheap, stable fingerprint of many files: name, size and modification time of each."""
    h = hashlib.sha256()
    for p in sorted(paths):
        st = p.stat()
        h.update(f"{p.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]
