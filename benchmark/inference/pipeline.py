"""How ``predict`` gets from audio files to class probabilities: extract, then batch inference.

:func:`run_pipeline` is what :func:`benchmark.inference.predict.predict_files` runs (so ``predict``,
``evaluate`` and the served model share it). Two stages:

1. **Extraction**, per file: decode once per (sample rate, length) the model's inputs need,
   compute every distinct feature set (name, params, input kind) **once** however many estimators
   read it, and measure the file's band. With ``jobs > 1`` files are extracted in a process pool
   (:mod:`benchmark.inference.pool`: its workers import the feature code and nothing of the
   model, so never JAX, Keras, LightGBM or MLflow). A file that cannot be used is an error,
   returned, never raised; a worker process that dies (a decoder crash) costs only its file.
2. **Inference**, per batch of extracted files (in input order): each estimator's
   ``predict_proba`` is called once on the rows of the whole batch; per file and window the rows'
   probabilities are averaged (segments), an ensemble combines its members per window, and the
   windows are averaged: the same numbers the file-by-file computation gives.

Results stream in the order of the input paths: a batch goes out when it is full, when its
first file has waited ``max_wait_s`` (or ten times what the last batch's inference took, so that
a model whose ``predict_proba`` calls cost much, a 24-member ensemble's ~0.4 s, spends at most
~10 % of the time on them) or when nothing is left to extract.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmark.errors import GenrebenchError
from benchmark.inference.model_inputs import model_extractors, model_inputs
from benchmark.inference.pool import FILE_TIMEOUT_S, fork_early, in_pool, in_process
from benchmark.scoring import align_proba

if TYPE_CHECKING:
    from benchmark.audio.band_limit import FileBand
    from benchmark.features.audio_base import AudioFeatureSet
    from benchmark.inference.saved_model import SavedModel

__all__ = [
    "ExtractionError",
    "FeatureSpec",
    "FileFeatures",
    "FilePrediction",
    "PredictPlan",
    "extract_features",
    "extract_file",
    "predict_batch",
    "run_pipeline",
]

log = logging.getLogger(__name__)

#: files whose rows one ``predict_proba`` call takes at most
BATCH_SIZE = 32
#: how long the first extracted file of a batch waits for the batch to fill before it goes out
#: (at least; ``WAIT_PER_INFERENCE`` times the last batch's inference if longer)
MAX_WAIT_S = 1.0
WAIT_PER_INFERENCE = 10.0


class ExtractionError(GenrebenchError):
    """A file's features could not be computed for a reason other than its audio."""


# --- what to extract ----------------------------------------------------------------------------
@dataclass(frozen=True)
class FeatureSpec:
    """One distinct feature computation: a registered feature set's name (a config's feature
    variant goes by the set it is made of), its params (as sorted JSON, so equal params give
    equal specs) and the input kind. Small and picklable: what a worker gets."""

    name: str
    params_json: str
    input_kind: str

    @classmethod
    def of(cls, fset: AudioFeatureSet, input_kind: str) -> FeatureSpec:
        params = json.dumps(fset.params, sort_keys=True, default=str)
        return cls(fset.registered_name(), params, input_kind)

    def build(self) -> AudioFeatureSet:
        from benchmark.features import get_feature_set

        return get_feature_set(self.name, **json.loads(self.params_json))  # type: ignore[return-value]


@dataclass(frozen=True)
class PredictPlan:
    """The distinct feature computations of a model, and which one each estimator reads."""

    specs: tuple[FeatureSpec, ...]
    #: for each of the model's inputs (:func:`~benchmark.inference.model_inputs.model_inputs`),
    #: its spec's index
    input_spec: tuple[int, ...]
    #: what a pool worker imports before its first file (the feature sets' ``worker_modules``)
    preload: tuple[str, ...] = ()

    @classmethod
    def of(cls, model: SavedModel) -> PredictPlan:
        """The plan of ``model``, from its ``model.json`` (:func:`benchmark.inference.
        model_inputs.model_extractors`): known before a background load of the estimator ends."""
        specs: list[FeatureSpec] = []
        index: list[int] = []
        preload: dict[str, None] = {}
        for fset, input_kind in model_extractors(model):
            spec = FeatureSpec.of(fset, input_kind)
            if spec not in specs:
                specs.append(spec)
            index.append(specs.index(spec))
            preload.update(dict.fromkeys(fset.worker_modules))
        return cls(tuple(specs), tuple(index), tuple(preload))


@dataclass
class FileFeatures:
    """What extraction gives for one file: ``rows[s][k]`` are the rows of spec ``s`` for window
    ``k`` (one window unless predicting ``windows``)."""

    file: str
    rows: list[list[np.ndarray]]
    windows: int
    seconds: float
    band: FileBand


#: feature sets built in this process, by spec (a worker builds each once)
_BUILT: dict[FeatureSpec, AudioFeatureSet] = {}


def _fset(spec: FeatureSpec) -> AudioFeatureSet:
    if spec not in _BUILT:
        _BUILT[spec] = spec.build()
    return _BUILT[spec]


def extract_features(specs: Sequence[FeatureSpec], path: str, windows: bool) -> FileFeatures:
    """The features of one file; raises :class:`~benchmark.audio.decoding.AudioError`
    subclasses for a file that cannot be used."""
    from benchmark.audio.band_limit import measure_file
    from benchmark.audio.decoding import load_clip, song_windows

    fsets = [_fset(s) for s in specs]
    decoded: dict[tuple[int, float], list[Any]] = {}
    for f in fsets:
        key = (f.sample_rate, f.seconds)
        if key not in decoded:
            decoded[key] = song_windows(path, *key) if windows else [load_clip(path, *key)]
    n_clips = min(len(c) for c in decoded.values())
    rows = [
        [f.clip_rows(decoded[(f.sample_rate, f.seconds)][k], s.input_kind) for k in range(n_clips)]
        for f, s in zip(fsets, specs, strict=True)
    ]
    clips = next(iter(decoded.values()))[:n_clips]
    widest = max(decoded)  # the highest decoding rate: the widest band any input sees
    audio = np.concatenate([c.audio for c in decoded[widest][:n_clips]])
    return FileFeatures(
        file=path,
        rows=rows,
        windows=n_clips,
        seconds=float(sum(c.seconds for c in clips)),
        band=measure_file(path, audio, widest[0]),
    )


def extract_file(
    specs: Sequence[FeatureSpec], path: str, windows: bool
) -> FileFeatures | GenrebenchError:
    """The features of one file, or why it cannot be used (returned, not raised, so a pool
    sends it back whole)."""
    try:
        return extract_features(specs, path, windows)
    except GenrebenchError as exc:
        return exc
    except Exception as exc:  # a decoder's or feature's own failure on this file: its row
        return ExtractionError(f"{path}: extraction failed: {type(exc).__name__}: {exc}")


#: the per-file extraction a pool worker runs (:func:`extract_file`)
Extract = Callable[[Sequence[FeatureSpec], str, bool], "FileFeatures | GenrebenchError"]


#: what the fork server imports once, so that every worker forked from it starts with the
#: decoding code loaded; to these each model adds its feature sets' ``worker_modules`` (numba's
#: kernels, matplotlib's renderer: most of a cold worker's first file), never the model's
#: libraries
_PRELOAD = (
    "__main__",
    "benchmark.inference.pipeline",
    "benchmark.audio.decoding",
    "benchmark.audio.band_limit",
    "benchmark.features",
    "soundfile",
    "soxr",
    "threadpoolctl",
)


# --- batch inference ----------------------------------------------------------------------------
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


def predict_batch(
    model: SavedModel,
    plan: PredictPlan,
    inputs: Sequence[Any],
    batch: Sequence[FileFeatures],
    windows: bool,
) -> list[FilePrediction]:
    """The predictions of extracted files: one ``predict_proba`` per estimator on all their
    rows; segment means per window, the ensemble's combination per window, window means per
    file (exactly as :func:`benchmark.inference.predict.predict_file` computes them one file at
    a time)."""
    from benchmark.audio.band_limit import band_warning

    n = len(model.classes)
    per_input = []
    for inp, s in zip(inputs, plan.input_spec, strict=True):
        blocks = [r for ff in batch for r in ff.rows[s]]  # one block per (file, window)
        p = np.asarray(inp.estimator.predict_proba(np.concatenate(blocks)), dtype=np.float64)
        cols = getattr(inp.estimator, "classes_", np.arange(p.shape[1]))
        p = align_proba(p, cols, n)
        bounds = np.cumsum([0] + [len(b) for b in blocks])
        per_input.append(
            np.stack([p[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:], strict=True)])
        )
    window_proba = model.estimator.combine(per_input) if model.is_ensemble else per_input[0]
    limits = [i.fset.band_limit_hz for i in inputs]
    out, start = [], 0
    for ff in batch:
        probas = window_proba[start : start + ff.windows]
        start += ff.windows
        out.append(
            FilePrediction(
                file=ff.file,
                proba=np.mean(probas, axis=0),
                classes=model.classes,
                windows=ff.windows,
                seconds=ff.seconds,
                window_top=[model.classes[int(np.argmax(p))] for p in probas] if windows else [],
                band=ff.band,
                warning=band_warning(ff.band, model.training_band, limits),
            )
        )
    return out


# --- the pipeline -------------------------------------------------------------------------------
def run_pipeline(
    model: SavedModel,
    paths: Sequence[str | os.PathLike[str]],
    *,
    windows: bool = False,
    jobs: int = 1,
    batch_size: int = BATCH_SIZE,
    max_wait_s: float = MAX_WAIT_S,
    extract: Extract = extract_file,
    file_timeout_s: float | None = FILE_TIMEOUT_S,
) -> Iterator[tuple[str, FilePrediction | GenrebenchError]]:
    """``(file, prediction or its error)`` for every path, in their order, as batches finish.

    ``jobs``: extraction processes (1: in this process; never more than there are files, but
    one file goes to a worker when the model is still loading in the background
    (:func:`benchmark.inference.saved_model.load_model`), so its extraction overlaps the
    unpickling).
    ``extract`` is the per-file extraction a worker runs (a picklable top-level callable; tests
    put a crashing one there). ``file_timeout_s``: how long a pool worker may spend on one file
    before it is stopped and the file gets an error row (None: no limit; files extracted in this
    process are never stopped)."""
    files = [str(p) for p in paths]
    if not files:
        return
    plan = PredictPlan.of(model)
    inputs: list[Any] = []  # the estimators: read when the first batch goes out
    # one file, spare cores and a model still unpickling: a worker extracts it meanwhile
    pooled = min(int(jobs), len(files)) > 1 or (int(jobs) > 1 and model.loading)
    jobs = max(1, min(int(jobs), len(files)))
    batch_size = max(1, batch_size)
    ready: dict[int, FileFeatures | GenrebenchError] = {}
    pending: list[tuple[str, FileFeatures | GenrebenchError]] = []
    taken = 0  # files moved from ready to pending: the stream's position
    first_at = 0.0
    wait_s = max_wait_s  # grows to WAIT_PER_INFERENCE × the last batch's inference
    lookahead = batch_size + 4 * jobs
    fork_first = pooled and len(files) == 1 and model.loading and fork_early()
    if not fork_first:
        model.start_loading()  # the fork-server pool's workers do not copy this process
    source = (
        in_process(extract, plan.specs, files, windows)
        if not pooled
        else in_pool(
            extract,
            plan.specs,
            files,
            windows,
            jobs,
            lambda: taken + lookahead,
            (*_PRELOAD, *plan.preload),
            fork_first=fork_first,
            on_started=model.start_loading,
            timeout_s=file_timeout_s,
        )
    )

    def flush() -> list[tuple[str, FilePrediction | GenrebenchError]]:
        nonlocal wait_s
        feats = [r for _, r in pending if isinstance(r, FileFeatures)]
        if not inputs:  # even for a batch of errors: a model that cannot load must say so
            inputs.extend(model_inputs(model))  # waits for a background load
        t0 = time.monotonic()
        preds = iter(predict_batch(model, plan, inputs, feats, windows) if feats else [])
        if feats:
            wait_s = max(max_wait_s, WAIT_PER_INFERENCE * (time.monotonic() - t0))
        out = [(f, next(preds) if isinstance(r, FileFeatures) else r) for f, r in pending]
        pending.clear()
        return out

    try:
        for item in source:
            if item is not None:
                ready[item[0]] = item[1]
                while taken in ready:
                    if not pending:
                        first_at = time.monotonic()
                    pending.append((files[taken], ready.pop(taken)))
                    taken += 1
            if pending and (
                len(pending) >= batch_size
                or taken == len(files)
                or time.monotonic() - first_at >= wait_s
            ):
                yield from flush()
        if pending:
            yield from flush()
    finally:
        source.close()
