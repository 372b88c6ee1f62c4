"""The saved-model folder: what ``genrebench run``/``export`` writes and ``predict`` reads.

A saved model is a folder holding

* ``model.joblib``: a fitted scikit-learn estimator (the whole pipeline, preprocessing
  included) whose ``predict_proba`` columns are class indices (``estimator.classes_`` ⊆
  ``0 … n_classes - 1``);
* ``model.json``: what is needed to use it on audio: ``{"feature_set": name,
  "feature_params": {...}, "input_kind": "tabular", "classes": [...], "pair": {...},
  "params": {...}, "benchmark": ..., "protocol_scores": {...}, "training_audio": {...}}``
  (plus the versions it was saved with, :func:`benchmark.package_versions`); ``training_audio``
  is the :class:`~benchmark.audio.band_limit.TrainingBand` of the training clips (sample rate,
  bandwidth). An exported ensemble (``"kind": "ensemble"``) holds an
  :class:`~benchmark.ensembles.EnsembleModel` instead, and ``model.json`` lists its
  ``members`` (feature set, params, input kind and weight of each). A folder saved before the
  rename says ``"view"`` for ``"input_kind"`` (in ``model.json`` and its members) and loads as
  it is (:func:`input_kind_of`).

:func:`save_model` and :func:`load_model` write and read it; :func:`find_model` finds the newest
``results/*/final_model/``. What the model needs of a file is
:mod:`benchmark.inference.model_inputs`'; how files become predictions,
:mod:`benchmark.inference.pipeline`'s.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from benchmark import package_versions
from benchmark.audio.band_limit import TrainingBand
from benchmark.errors import GenrebenchError
from benchmark.results import FINAL_MODEL_DIR, MODEL_FILE, MODEL_META_FILE

__all__ = [
    "ModelError",
    "SavedModel",
    "find_model",
    "input_kind_of",
    "load_model",
    "save_model",
]


class ModelError(GenrebenchError):
    """A saved model folder is missing, incomplete or unusable."""


#: what ``model.json`` and its member records called ``input_kind`` before the rename
_OLD_INPUT_KIND_KEY = "view"


def input_kind_of(record: Mapping[str, Any]) -> str:
    """The input kind a ``model.json`` or one of its member records names (``Family.input_kind``):
    ``input_kind``, or ``view`` in a model saved before the rename; ``"tabular"`` if neither."""
    return str(record.get("input_kind") or record.get(_OLD_INPUT_KIND_KEY) or "tabular")


class SavedModel:
    """A loaded model folder: its ``model.json`` (``meta``) and its estimator.

    The estimator may be loaded in the background (``load_model(..., background=True)``):
    everything that only reads ``meta`` (classes, the feature sets to extract, the description)
    answers at once; the unpickling starts in a thread at :meth:`start_loading` (``predict``'s
    pipeline calls it once its first worker exists) or at the first use of ``estimator``, which
    waits for it (raising its error, if it failed). That is how ``predict`` extracts the first
    files while ``model.joblib`` is unpickled."""

    def __init__(
        self,
        path: Path,
        estimator: Any,
        meta: dict[str, Any],
        *,
        loader: Callable[[], Any] | None = None,
    ) -> None:
        self.path, self.meta = path, meta
        self._estimator, self._loader = estimator, loader
        self._loading: Future[Any] | None = None

    def start_loading(self) -> None:
        """Start the background load (once; a no-op for a model loaded already)."""
        if self._loader is not None and self._loading is None:
            from concurrent.futures import ThreadPoolExecutor

            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="genrebench-load")
            self._loading = pool.submit(self._loader)
            pool.shutdown(wait=False)  # the thread ends with the load

    @property
    def estimator(self) -> Any:
        self.start_loading()
        if self._loading is not None:
            self._estimator = self._loading.result()
            self._loading = self._loader = None
        return self._estimator

    @property
    def loading(self) -> bool:
        """Whether the estimator is still to be loaded, or being loaded, in the background."""
        if self._loading is None:
            return self._loader is not None
        return not self._loading.done()

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])

    @property
    def feature_set(self) -> str:
        return str(self.meta["feature_set"])

    @property
    def input_kind(self) -> str:
        return input_kind_of(self.meta)

    @property
    def is_ensemble(self) -> bool:
        return self.meta.get("kind") == "ensemble"

    @property
    def training_band(self) -> TrainingBand:
        """What the model knows of its training audio (``unknown`` for older models)."""
        return TrainingBand.from_meta(self.meta)

    def describe(self) -> str:
        pair = self.meta.get("pair") or {}
        family = pair.get("family", "?")
        bench = self.meta.get("benchmark")
        where = f" (benchmark {bench})" if bench else ""
        return f"{self.feature_set} · {family}{where} from {self.path}"


# --- saving and loading -------------------------------------------------------------------------
def save_model(directory: str | os.PathLike[str], estimator: Any, meta: dict[str, Any]) -> Path:
    """Write ``estimator`` and ``meta`` to ``directory`` (created; files replaced atomically).

    ``meta`` needs ``feature_set`` (a registered feature set) and ``classes`` (the genre of
    each class index); ``feature_params``, ``input_kind``, ``pair``, ``params``, ``benchmark`` and
    ``protocol_scores`` are kept as given. The estimator must have ``predict_proba`` and its
    ``classes_`` must be class indices. Returns the folder.
    """
    import joblib

    from benchmark.features import all_feature_sets

    meta = dict(meta)
    for key in ("feature_set", "classes"):
        if key not in meta:
            raise ModelError(f"save_model: meta needs {key!r}")
    classes = list(meta["classes"])
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise ModelError("save_model: classes must be two or more distinct names")
    ensemble = meta.get("kind") == "ensemble"
    members = getattr(estimator, "members", []) if ensemble else [estimator]
    named = (
        [(m.feature_set, getattr(m, "feature_of", None)) for m in members]
        if ensemble
        else [(meta["feature_set"], meta.get("feature_of"))]
    )
    for sets, of in named:  # a config's feature variant: the set it is made of is registered
        if (of or sets) not in all_feature_sets():
            raise ModelError(f"save_model: unknown feature set {of or sets!r}")
    if ensemble and not (members and hasattr(estimator, "combine")):
        raise ModelError("save_model: an ensemble needs members and a combine method")
    for m in members:
        est = m.estimator if ensemble else m
        if not hasattr(est, "predict_proba"):
            raise ModelError(f"save_model: {type(est).__name__} has no predict_proba")
        _check_classes(getattr(est, "classes_", None), len(classes), "save_model")
    meta.setdefault("feature_params", {})
    meta["input_kind"] = input_kind_of(meta)  # a caller's old "view" key is written anew
    meta.pop(_OLD_INPUT_KIND_KEY, None)
    meta.setdefault("saved_at", datetime.now(UTC).isoformat(timespec="seconds"))
    meta.setdefault("versions", package_versions())
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".joblib.tmp")
    os.close(fd)
    try:
        joblib.dump(estimator, tmp)
        os.replace(tmp, folder / MODEL_FILE)
    finally:
        Path(tmp).unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".json.tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(meta, fh, indent=2, default=str)
    os.replace(tmp, folder / MODEL_META_FILE)  # last: a folder with model.json is complete
    return folder


def _check_classes(model_classes: Any, n_classes: int, where: str) -> None:
    if model_classes is None:
        return
    idx = np.asarray(model_classes)
    if idx.dtype.kind not in "iu" or idx.min() < 0 or idx.max() >= n_classes:
        raise ModelError(
            f"{where}: the estimator's classes_ must be class indices 0..{n_classes - 1}, "
            f"got {idx.tolist()[:5]}"
        )


def load_model(directory: str | os.PathLike[str], *, background: bool = False) -> SavedModel:
    """Read a model folder written by :func:`save_model`. ``model.json`` is read and checked
    here; with ``background`` the estimator is unpickled in a thread (see :class:`SavedModel`),
    so that the caller can start on the audio meanwhile."""
    folder = Path(directory)
    if not folder.is_dir():
        raise ModelError(f"model folder {folder} does not exist")
    meta_path, model_path = folder / MODEL_META_FILE, folder / MODEL_FILE
    for p in (meta_path, model_path):
        if not p.is_file():
            raise ModelError(f"{folder} is not a saved model: {p.name} is missing")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"{meta_path}: not readable JSON ({exc})") from None
    for key in ("feature_set", "classes"):
        if key not in meta:
            raise ModelError(f"{meta_path}: no {key!r} entry")
    if not background:
        return SavedModel(folder, _load_estimator(model_path, meta), meta)
    return SavedModel(
        folder, None, meta, loader=functools.partial(_load_estimator, model_path, meta)
    )


def _load_estimator(model_path: Path, meta: dict[str, Any]) -> Any:
    import joblib

    try:
        estimator = joblib.load(model_path)
    except Exception as exc:  # unpickling can fail in many ways (versions, truncation)
        raise ModelError(
            f"{model_path}: cannot be loaded ({type(exc).__name__}: {exc}); saved with "
            f"{meta.get('versions', 'unknown versions')}"
        ) from None
    _check_classes(getattr(estimator, "classes_", None), len(meta["classes"]), str(model_path))
    return estimator


def find_model(results_root: str | os.PathLike[str] = "results") -> Path:
    """The newest ``<results_root>/*/final_model/`` holding a saved model."""
    root = Path(results_root)
    found = [p.parent for p in root.glob(f"*/{FINAL_MODEL_DIR}/{MODEL_META_FILE}")]
    if not found:
        raise ModelError(
            f"no saved model found (no {root}/*/{FINAL_MODEL_DIR}/{MODEL_META_FILE}): run a "
            "benchmark first (genrebench run …), which saves its best pair there, or pass --model "
            "DIR"
        )
    return max(found, key=lambda p: (p / MODEL_META_FILE).stat().st_mtime)
