"""How ``predict`` gets from audio files to class probabilities: extract, then batch inference.

:func:`run_pipeline` is what :func:`benchmark.predict.predict_files` runs (so ``predict``,
``evaluate`` and the served model share it). Two stages:

1. **Extraction**, per file: decode once per (sample rate, length) the model's inputs need,
   compute every distinct feature set (name, params, view) **once** however many estimators
   read it, and measure the file's band. With ``jobs > 1`` files are extracted in a process pool
   (``forkserver`` or ``spawn``; a lone file's worker is forked, before the model loads, when
   :func:`_fork_early` allows: the workers import the feature code and nothing of the model, so
   never JAX, Keras, LightGBM or MLflow). A file that cannot be used is an error, returned, never
   raised; a worker process that dies (a decoder crash) costs only its file: the pool is rebuilt,
   the files that were in flight with it are retried one at a time, and the one that kills a
   worker alone gets a :class:`WorkerDiedError` row.
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
import multiprocessing
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmark.errors import GenrebenchError

if TYPE_CHECKING:
    from benchmark.band_limit import FileBand
    from benchmark.features.audio_base import AudioFeatureSet
    from benchmark.predict import FilePrediction, SavedModel

__all__ = [
    "ExtractionError",
    "ExtractionTimeout",
    "FeatureSpec",
    "FileFeatures",
    "PredictPlan",
    "WorkerDiedError",
    "available_cores",
    "extract_features",
    "extract_file",
    "predict_batch",
    "run_pipeline",
]

log = logging.getLogger(__name__)

#: files whose rows one ``predict_proba`` call takes at most
BATCH_SIZE = 32
#: how long a new pool's workers may take to run a no-op after the pool broke
HEALTH_TIMEOUT_S = 120.0
#: how long the first extracted file of a batch waits for the batch to fill before it goes out
#: (at least; ``WAIT_PER_INFERENCE`` times the last batch's inference if longer)
MAX_WAIT_S = 1.0
WAIT_PER_INFERENCE = 10.0
#: a pool worker still on one file after this long is stopped and the file gets an error row
#: (a 30-s clip takes about a second; a long song with --windows, tens of seconds)
FILE_TIMEOUT_S = 600.0


class ExtractionError(GenrebenchError):
    """A file's features could not be computed for a reason other than its audio."""


class WorkerDiedError(GenrebenchError):
    """The process extracting a file's features died (a decoder crash, say)."""


class ExtractionTimeout(GenrebenchError):
    """A file's features took longer than the pipeline's ``file_timeout_s`` (a decoder stuck in
    a loop, say): its worker was stopped."""


def available_cores() -> int:
    """The CPU cores this process may run on (``--jobs``'s default)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# --- what to extract ----------------------------------------------------------------------------
@dataclass(frozen=True)
class FeatureSpec:
    """One distinct feature computation: a registered feature set's name (a config's feature
    variant goes by the set it is made of), its params (as sorted JSON, so equal params give
    equal specs) and the view. Small and picklable: what a worker gets."""

    name: str
    params_json: str
    view: str

    @classmethod
    def of(cls, fset: AudioFeatureSet, view: str) -> FeatureSpec:
        params = json.dumps(fset.params, sort_keys=True, default=str)
        return cls(fset.registered_name(), params, view)

    def build(self) -> AudioFeatureSet:
        from benchmark.features import get_feature_set

        return get_feature_set(self.name, **json.loads(self.params_json))  # type: ignore[return-value]


@dataclass(frozen=True)
class PredictPlan:
    """The distinct feature computations of a model, and which one each estimator reads."""

    specs: tuple[FeatureSpec, ...]
    #: for each of the model's inputs (:func:`benchmark.predict.model_inputs`), its spec's index
    input_spec: tuple[int, ...]
    #: what a pool worker imports before its first file (the feature sets' ``worker_modules``)
    preload: tuple[str, ...] = ()

    @classmethod
    def of(cls, model: SavedModel) -> PredictPlan:
        """The plan of ``model``, from its ``model.json`` (:func:`benchmark.predict.
        model_extractors`): known before a background load of the estimator ends."""
        from benchmark.predict import model_extractors

        specs: list[FeatureSpec] = []
        index: list[int] = []
        preload: dict[str, None] = {}
        for fset, view in model_extractors(model):
            spec = FeatureSpec.of(fset, view)
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
    """The features of one file; raises :class:`~benchmark.audio.AudioError` subclasses for a
    file that cannot be used."""
    from benchmark.audio import load_clip, song_windows
    from benchmark.band_limit import measure_file

    fsets = [_fset(s) for s in specs]
    decoded: dict[tuple[int, float], list[Any]] = {}
    for f in fsets:
        key = (f.sample_rate, f.seconds)
        if key not in decoded:
            decoded[key] = song_windows(path, *key) if windows else [load_clip(path, *key)]
    n_clips = min(len(c) for c in decoded.values())
    rows = [
        [f.clip_rows(decoded[(f.sample_rate, f.seconds)][k], s.view) for k in range(n_clips)]
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


# --- extraction in this process or in a pool ----------------------------------------------------
#: ``(index, result)`` as files finish, ``None`` while waiting (so the consumer can look at time)
_Source = Generator[tuple[int, "FileFeatures | GenrebenchError"] | None, None, None]


def _in_process(
    extract: Extract, specs: Sequence[FeatureSpec], paths: Sequence[str], windows: bool
) -> _Source:
    from threadpoolctl import threadpool_limits

    for i, path in enumerate(paths):
        with threadpool_limits(limits=1):  # one clip's small matrices: BLAS threads only contend
            result = extract(specs, path, windows)
        yield i, result


def _worker_init() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)  # one process per core: no BLAS threads on top


#: what the fork server imports once, so that every worker forked from it starts with the
#: decoding code loaded; to these each model adds its feature sets' ``worker_modules`` (numba's
#: kernels, matplotlib's renderer: most of a cold worker's first file), never the model's
#: libraries
_PRELOAD = (
    "__main__",
    "benchmark.predict_pipeline",
    "benchmark.audio",
    "benchmark.band_limit",
    "benchmark.features",
    "soundfile",
    "soxr",
    "threadpoolctl",
)


#: libraries whose native threads (OpenMP, JAX's and torch's pools) a fork must not copy: once
#: one is imported, a worker always comes from the fork server
_THREADED_RUNTIMES = ("sklearn", "lightgbm", "jax", "jaxlib", "torch", "tensorflow", "mlflow")


def _fork_early() -> bool:
    """Whether a lone file's worker may be forked from this process: on Linux, while no thread
    but the main one runs and no model runtime is loaded (the CLI's fresh process before the
    model loads: numpy's idle, fork-safe BLAS pool is all a fork copies). Saves the fork
    server's start-up (~0.2 s) on the path a user waits on."""
    import threading

    return (
        sys.platform == "linux"
        and "fork" in multiprocessing.get_all_start_methods()
        and threading.active_count() == 1
        and not any(name in sys.modules for name in _THREADED_RUNTIMES)
    )


def _context(preload: Sequence[str] = (), fork: bool = False) -> Any:
    if fork:  # only ever as _fork_early allows
        return multiprocessing.get_context("fork")
    # otherwise never fork: the parent may hold threads (a loading model's, its runtime's)
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        modules = list(dict.fromkeys([*_PRELOAD, *preload]))
        ctx.set_forkserver_preload(modules)  # used when the server (re)starts
        return ctx
    return multiprocessing.get_context("spawn")


def _pool(jobs: int, preload: Sequence[str], fork: bool = False) -> ProcessPoolExecutor:
    # with fork, the executor starts its workers before its own threads
    return ProcessPoolExecutor(
        max_workers=jobs, mp_context=_context(preload, fork), initializer=_worker_init
    )


def _ping() -> bool:
    return True


def _healthy(pool: ProcessPoolExecutor) -> bool:
    """Whether ``pool``'s workers start at all (a pool broken by every start, say by a main
    module without the ``if __name__ == "__main__"`` guard, would blame each file in turn)."""
    try:
        return pool.submit(_ping).result(timeout=HEALTH_TIMEOUT_S)
    except (BrokenProcessPool, TimeoutError):
        return False


def _died(path: str) -> WorkerDiedError:
    return WorkerDiedError(
        f"{path}: the worker process extracting its features died (a decoder crash?); "
        "no prediction for this file"
    )


def _hung(path: str, timeout_s: float) -> ExtractionTimeout:
    return ExtractionTimeout(
        f"{path}: extracting its features took longer than {timeout_s:g} s (a decoder stuck?); "
        "its worker was stopped, no prediction for this file"
    )


def _stop(pool: ProcessPoolExecutor, kill: bool) -> None:
    """Shut ``pool`` down; with ``kill``, first terminate its workers (one is stuck on a file
    and would never take the shutdown's sentinel)."""
    if kill:
        terminate = getattr(pool, "terminate_workers", None)  # Python 3.14
        if terminate is not None:
            terminate()
        else:
            workers = getattr(pool, "_processes", None) or {}
            for proc in list(workers.values()):
                proc.terminate()
    pool.shutdown(wait=not kill, cancel_futures=True)


def _in_pool(
    extract: Extract,
    specs: Sequence[FeatureSpec],
    paths: Sequence[str],
    windows: bool,
    jobs: int,
    ahead: Callable[[], int],
    preload: Sequence[str] = (),
    fork_first: bool = False,
    on_started: Callable[[], None] | None = None,
    timeout_s: float | None = FILE_TIMEOUT_S,
) -> _Source:
    """``(index, result)`` as files finish (``None`` now and then while waiting); files are
    submitted while their index is below ``ahead()`` (the consumer's look-ahead). When the pool
    breaks, the files in flight are retried one at a time in a new pool: one that breaks it alone
    is the culprit and gets a :class:`WorkerDiedError`. A file in flight for over ``timeout_s``
    is handled the same way, the workers stopped: retried alone, it gets an
    :class:`ExtractionTimeout` if it overruns again. ``fork_first``: the first pool forks its
    workers (:func:`_fork_early`), a rebuilt one never does; ``on_started`` runs once the first
    files are submitted (their workers exist)."""
    todo = deque(range(len(paths)))
    alone: deque[int] = deque()
    running: dict[Future[Any], int] = {}
    sent_at: dict[Future[Any], float] = {}
    pool = _pool(jobs, preload, fork=fork_first)

    def submit(queue: deque[int]) -> bool:
        i = queue.popleft()
        try:
            fut = pool.submit(extract, specs, paths[i], windows)
        except BrokenProcessPool:  # broke since the last look: the file was not sent
            queue.appendleft(i)
            return False
        running[fut], sent_at[fut] = i, time.monotonic()
        return True

    def overdue() -> bool:
        now = time.monotonic()
        return timeout_s is not None and any(now - sent_at[f] > timeout_s for f in running)

    try:
        while todo or alone or running:
            broken = hung = False
            if alone:
                broken = not running and not submit(alone)
            else:
                # two per worker: the next file is queued while this process runs inference
                while not broken and todo and len(running) < 2 * jobs and todo[0] < ahead():
                    broken = not submit(todo)
            if on_started is not None:
                on_started()
                on_started = None
            if not broken:
                done, _ = wait(running, timeout=0.25, return_when=FIRST_COMPLETED)
                for fut in done:
                    try:
                        result = fut.result()
                    except BrokenProcessPool:
                        broken = True
                        continue
                    sent_at.pop(fut)
                    yield running.pop(fut), result
                hung = not broken and overdue()
                if not broken and not hung:
                    if not done:
                        yield None
                    continue
            suspects = sorted(running.values())
            running.clear()
            sent_at.clear()
            _stop(pool, kill=hung)
            pool = _pool(jobs, preload)
            if not _healthy(pool):
                log.warning("predict: pool workers do not start; extracting in this process")
                rest = sorted({*suspects, *alone, *todo})
                for item in _in_process(extract, specs, [paths[i] for i in rest], windows):
                    if item is not None:
                        yield rest[item[0]], item[1]
                return
            if len(suspects) == 1:  # it was the only file in flight: the culprit
                path = paths[suspects[0]]
                yield suspects[0], _hung(path, timeout_s or 0.0) if hung else _died(path)
            else:
                alone.extendleft(reversed(suspects))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


# --- batch inference ----------------------------------------------------------------------------
def _aligned(proba: np.ndarray, model_classes: Any, n_classes: int) -> np.ndarray:
    """:func:`benchmark.scoring.align_proba`, without importing the scoring module's pandas
    and scikit-learn metrics into ``predict``."""
    out = np.zeros((len(proba), n_classes), dtype=np.float64)
    out[:, np.asarray(model_classes, dtype=int)] = proba
    return out


def predict_batch(
    model: SavedModel,
    plan: PredictPlan,
    inputs: Sequence[Any],
    batch: Sequence[FileFeatures],
    windows: bool,
) -> list[FilePrediction]:
    """The predictions of extracted files: one ``predict_proba`` per estimator on all their
    rows; segment means per window, the ensemble's combination per window, window means per file
    (exactly as :func:`benchmark.predict.predict_file` computes them one file at a time)."""
    from benchmark.band_limit import band_warning
    from benchmark.predict import FilePrediction

    n = len(model.classes)
    per_input = []
    for inp, s in zip(inputs, plan.input_spec, strict=True):
        blocks = [r for ff in batch for r in ff.rows[s]]  # one block per (file, window)
        p = np.asarray(inp.estimator.predict_proba(np.concatenate(blocks)), dtype=np.float64)
        cols = getattr(inp.estimator, "classes_", np.arange(p.shape[1]))
        p = _aligned(p, cols, n)
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
    (:func:`benchmark.predict.load_model`), so its extraction overlaps the unpickling).
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
    in_pool = min(int(jobs), len(files)) > 1 or (int(jobs) > 1 and model.loading)
    jobs = max(1, min(int(jobs), len(files)))
    batch_size = max(1, batch_size)
    ready: dict[int, FileFeatures | GenrebenchError] = {}
    pending: list[tuple[str, FileFeatures | GenrebenchError]] = []
    taken = 0  # files moved from ready to pending: the stream's position
    first_at = 0.0
    wait_s = max_wait_s  # grows to WAIT_PER_INFERENCE × the last batch's inference
    lookahead = batch_size + 4 * jobs
    fork_first = in_pool and len(files) == 1 and model.loading and _fork_early()
    if not fork_first:
        model.start_loading()  # the fork-server pool's workers do not copy this process
    source = (
        _in_process(extract, plan.specs, files, windows)
        if not in_pool
        else _in_pool(
            extract,
            plan.specs,
            files,
            windows,
            jobs,
            lambda: taken + lookahead,
            plan.preload,
            fork_first=fork_first,
            on_started=model.start_loading,
            timeout_s=file_timeout_s,
        )
    )

    def flush() -> list[tuple[str, FilePrediction | GenrebenchError]]:
        nonlocal wait_s
        feats = [r for _, r in pending if isinstance(r, FileFeatures)]
        if not inputs:  # even for a batch of errors: a model that cannot load must say so
            from benchmark.predict import model_inputs

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
