"""``genrebench predict``: the genre of your own songs, with a benchmark's saved model.

A saved model is a folder holding

* ``model.joblib``: a fitted scikit-learn estimator (the whole pipeline, preprocessing
  included) whose ``predict_proba`` columns are class indices (``estimator.classes_`` ⊆
  ``0 … n_classes - 1``);
* ``model.json``: what is needed to use it on audio: ``{"feature_set": name,
  "feature_params": {...}, "view": "tabular", "classes": [...], "pair": {...},
  "params": {...}, "benchmark": ..., "protocol_scores": {...}, "training_audio": {...}}``
  (plus the versions it was saved with); ``training_audio`` is the
  :class:`~benchmark.band_limit.TrainingBand` of the training clips (sample rate, bandwidth).
  An exported ensemble (``"kind": "ensemble"``) holds an
  :class:`~benchmark.ensembles.EnsembleModel` instead, and ``model.json`` lists its
  ``members`` (feature set, params, view and weight of each).

:func:`save_model` and :func:`load_model` write and read it; :func:`find_model` finds the newest
``results/*/final_model/``. Prediction decodes the audio (first 30 s, or every 30 s window of
the song with ``windows=True``), computes the model's feature set on it — a model trained on
Kaggle's CSVs (``csv_30s``/``csv_3s``) gets the same 57 features computed by ``librosa_30s`` /
``librosa_3s`` — and averages the class probabilities over segments and windows. Each file's
sample rate and effective bandwidth are measured and compared with the training audio's
(:mod:`benchmark.band_limit`): a band-limited file (16 kHz, a low-passed MP3) gets a warning.
Many files go through :mod:`benchmark.predict_pipeline` (extraction in a process pool, each
distinct feature set once per file, batch inference), with the numbers of :func:`predict_file`.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.band_limit import FileBand, TrainingBand
from benchmark.errors import ConfigError, GenrebenchError
from benchmark.features.audio_base import AudioFeatureSet

__all__ = [
    "FilePrediction",
    "ModelError",
    "SavedModel",
    "ModelInput",
    "audio_files_in",
    "find_model",
    "load_model",
    "model_extractors",
    "model_inputs",
    "predict_file",
    "predict_files",
    "save_model",
    "write_predictions",
]

MODEL_FILE = "model.joblib"
META_FILE = "model.json"
FINAL_MODEL_DIR = "final_model"
#: feature sets read from Kaggle's files, and the audio set that computes the same features
_VERSIONED = ("genrebench", "scikit-learn", "numpy", "librosa", "lightgbm")


class ModelError(GenrebenchError):
    """A saved model folder is missing, incomplete or unusable."""


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
    def view(self) -> str:
        return str(self.meta.get("view") or "tabular")

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
def _versions() -> dict[str, str]:
    out = {}
    for name in _VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def save_model(directory: str | os.PathLike[str], estimator: Any, meta: dict[str, Any]) -> Path:
    """Write ``estimator`` and ``meta`` to ``directory`` (created; files replaced atomically).

    ``meta`` needs ``feature_set`` (a registered feature set) and ``classes`` (the genre of
    each class index); ``feature_params``, ``view``, ``pair``, ``params``, ``benchmark`` and
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
    meta.setdefault("view", "tabular")
    meta.setdefault("saved_at", datetime.now(UTC).isoformat(timespec="seconds"))
    meta.setdefault("versions", _versions())
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
    os.replace(tmp, folder / META_FILE)  # last: a folder with model.json is complete
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
    meta_path, model_path = folder / META_FILE, folder / MODEL_FILE
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
    found = [p.parent for p in root.glob(f"*/{FINAL_MODEL_DIR}/{META_FILE}")]
    if not found:
        raise ModelError(
            f"no saved model found (no {root}/*/{FINAL_MODEL_DIR}/{META_FILE}): run a benchmark "
            "first (genrebench run …), which saves its best pair there, or pass --model DIR"
        )
    return max(found, key=lambda p: (p / META_FILE).stat().st_mtime)


# --- extraction ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelInput:
    """How one estimator of a saved model gets its rows from a decoded clip."""

    fset: AudioFeatureSet
    view: str
    estimator: Any


def _extractor(
    feature_set: str, feature_params: dict[str, Any], view: str, feature_of: str | None = None
) -> AudioFeatureSet:
    """The audio feature set computing ``feature_set``'s values (its own params only if it is
    itself computed from audio: Kaggle's CSV params mean nothing to librosa). ``feature_of``:
    the registered set a config's feature variant ``feature_set`` is made of."""
    from benchmark.features import all_feature_sets, get_feature_set

    known = all_feature_sets()
    if feature_of is not None:
        return _extractor(feature_of, feature_params, view).named(feature_set)
    own = known.get(feature_set)
    name = own.audio_counterpart() if own is not None else None
    if name is None or name not in known:
        computable = sorted(n for n, c in known.items() if c.audio_counterpart())
        raise ModelError(
            f"the model uses feature set {feature_set!r}, which is read from the dataset's "
            "files, not computed from audio; predict needs a model trained on one of "
            f"{', '.join(computable)}"
        )
    params = dict(feature_params or {}) if name == feature_set else {}
    params.pop("n_jobs", None)
    try:
        fset = get_feature_set(name, **params)
    except ConfigError as exc:
        raise ModelError(f"the model's feature parameters are not usable: {exc}") from None
    if view not in fset.views or not hasattr(fset, "clip_rows"):
        raise ModelError(f"feature set {name!r} cannot give the {view!r} view of a clip")
    return fset  # type: ignore[return-value]


#: ``(feature set, feature params, view, the registered set a feature variant is made of)``
Input = tuple[str, dict[str, Any], str, str | None]


def _member_inputs(members: Sequence[Any]) -> list[Input]:
    """``(feature set, feature params, view, feature_of)`` of ensemble members given as objects
    (the estimator's) or as ``model.json`` records."""
    out = []
    for m in members:
        get = m.get if isinstance(m, dict) else lambda k, m=m: getattr(m, k, None)
        of = get("feature_of")
        out.append(
            (
                str(get("feature_set")),
                dict(get("feature_params") or {}),
                str(get("view") or "tabular"),
                None if of is None else str(of),
            )
        )
    return out


def _inputs_of(model: SavedModel) -> list[Input]:
    """``(feature set, feature params, view, feature_of)`` of each of the model's inputs, from
    ``model.json`` alone when it lists an ensemble's members (never waiting for a background
    load); an ensemble saved without that list is asked."""
    if not model.is_ensemble:
        of = model.meta.get("feature_of")
        params = dict(model.meta.get("feature_params") or {})
        return [(model.feature_set, params, model.view, None if of is None else str(of))]
    listed = model.meta.get("members")
    if (
        isinstance(listed, list)
        and listed
        and all(isinstance(m, dict) and "feature_set" in m for m in listed)
    ):
        return _member_inputs(listed)
    return _member_inputs(model.estimator.members)


def model_extractors(model: SavedModel) -> list[tuple[AudioFeatureSet, str]]:
    """``(audio feature set, view)`` of each of the model's inputs: what extraction computes,
    known before the estimator is loaded."""
    return [
        (_extractor(name, params, view, of), view) for name, params, view, of in _inputs_of(model)
    ]


def model_inputs(model: SavedModel) -> list[ModelInput]:
    """One input per estimator: the model's own, or each ensemble member's, in the order of
    :func:`model_extractors` (``model.json``'s list of members must be the estimator's)."""
    extractors = model_extractors(model)
    if not model.is_ensemble:
        return [ModelInput(fset, view, model.estimator) for fset, view in extractors]
    members = list(model.estimator.members)
    listed, found = _inputs_of(model), _member_inputs(members)
    if json.dumps(listed, sort_keys=True, default=str) != json.dumps(
        found, sort_keys=True, default=str
    ):
        raise ModelError(
            f"{model.path}: the members listed in {META_FILE} are not those of {MODEL_FILE}; "
            "the folder is damaged: export the model again"
        )
    return [
        ModelInput(fset, view, m.estimator)
        for (fset, view), m in zip(extractors, members, strict=True)
    ]


@dataclass
class FilePrediction:
    """The prediction for one file: class probabilities (mean over segments and windows)."""

    file: str
    proba: np.ndarray
    classes: list[str]
    windows: int
    seconds: float
    window_top: list[str] = field(default_factory=list)
    #: the file's sample rate and bandwidth, and why it is narrower than the training audio
    band: FileBand | None = None
    warning: str | None = None

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        order = np.argsort(-self.proba, kind="stable")[:k]
        return [(self.classes[i], float(self.proba[i])) for i in order]

    def to_dict(self, k: int = 3) -> dict[str, Any]:
        out: dict[str, Any] = {
            "file": self.file,
            "genres": [{"genre": g, "probability": round(p, 6)} for g, p in self.top(k)],
            "seconds": round(self.seconds, 2),
            "windows": self.windows,
        }
        if self.window_top:
            out["window_genres"] = self.window_top
        out.update(self.band_fields())
        return out

    def band_fields(self) -> dict[str, Any]:
        """``sample_rate_hz``, ``bandwidth_hz`` and ``warning`` (None when there is none)."""
        band = self.band
        return {
            "sample_rate_hz": band.sample_rate if band else None,
            "bandwidth_hz": round(band.bandwidth_hz) if band else None,
            "warning": self.warning,
        }


def predict_file(
    model: SavedModel, path: str | os.PathLike[str], *, windows: bool = False
) -> FilePrediction:
    """Class probabilities of one audio file: its first 30 s, or with ``windows`` the mean
    over every 30 s window of the song. An ensemble's members each compute their features
    from the same decoded audio (decoded once per sample rate and length, each distinct feature
    set computed once) and are combined. Raises :class:`~benchmark.audio.AudioError`
    subclasses for files that cannot be used (one line each)."""
    from benchmark.predict_pipeline import PredictPlan, extract_features, predict_batch

    plan = PredictPlan.of(model)
    features = extract_features(plan.specs, str(path), windows)
    return predict_batch(model, plan, model_inputs(model), [features], windows)[0]


def predict_files(
    model: SavedModel,
    paths: Sequence[str | os.PathLike[str]],
    *,
    windows: bool = False,
    jobs: int = 1,
) -> Iterator[tuple[str, FilePrediction | GenrebenchError]]:
    """``(file, prediction or its error)`` for every file, in the order given: the one path
    that ``predict``, ``evaluate`` and the served model share, so they cannot disagree. A file
    that cannot be used yields its error (one row), never stops the others. ``jobs``: processes
    extracting features (1: in this process); predictions come in batches
    (:mod:`benchmark.predict_pipeline`), the same numbers as :func:`predict_file` gives."""
    from benchmark.predict_pipeline import run_pipeline

    yield from run_pipeline(model, paths, windows=windows, jobs=jobs)


def audio_files_in(paths: Sequence[str]) -> list[str]:
    """The files to predict: each named file as given (a bad one becomes an error row), and
    every audio file under each named folder, recursively, sorted; hidden files are skipped."""
    from benchmark.data import AUDIO_EXTENSIONS

    out: list[str] = []
    for p in paths:
        if not p.strip():  # Path("") is the current folder: never walk it unasked
            raise ModelError("an empty path names no file: give audio files or a folder")
        path = Path(p)
        if not path.is_dir():
            out.append(p)
            continue
        found = [
            f
            for f in path.rglob("*")
            if f.is_file()
            and f.suffix.lower() in AUDIO_EXTENSIONS
            and not any(part.startswith(".") for part in f.relative_to(path).parts)
        ]
        if not found:
            raise ModelError(f"{path}: no audio files ({', '.join(AUDIO_EXTENSIONS)}) under it")
        out.extend(str(f) for f in sorted(found))
    return out


def write_predictions(
    path: Path, rows: Sequence[tuple[str, FilePrediction | Exception]], classes: Sequence[str]
) -> None:
    """One row per file: ``file, genre, probability, error, sample_rate_hz, bandwidth_hz,
    warning, proba_<class>…`` (CSV) or the same records as a JSON list; written atomically."""
    import pandas as pd

    records = []
    for file, result in rows:
        rec: dict[str, Any] = {"file": file, "genre": None, "probability": None, "error": None}
        rec.update(dict.fromkeys(("sample_rate_hz", "bandwidth_hz", "warning")))
        if isinstance(result, FilePrediction):
            genre, prob = result.top(1)[0]
            rec.update(genre=genre, probability=round(prob, 6), **result.band_fields())
            rec.update(
                {
                    f"proba_{c}": round(float(v), 6)
                    for c, v in zip(classes, result.proba, strict=True)
                }
            )
        else:
            rec["error"] = str(result)
            rec.update({f"proba_{c}": None for c in classes})
        records.append(rec)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=path.suffix + ".tmp")
    os.close(fd)
    try:
        if path.suffix.lower() == ".json":
            Path(tmp).write_text(json.dumps(records, indent=2))
        else:
            pd.DataFrame(records).to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
