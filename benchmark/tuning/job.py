"""What one (feature set, family, protocol, outer fold) is: the fold job, its seeds and its rows.

A :class:`FoldJob` carries everything a worker needs, picklable; :func:`fold_rows` is the one
place train and test rows are chosen (outer split, inner folds, refit, final model alike), and
:func:`check_no_leak` refuses a job whose tuning could see its outer test part.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchmark.errors import GenrebenchError
from benchmark.models import Family, resolve_family
from benchmark.results import PairKey
from benchmark.scoring import align_proba

__all__ = [
    "FoldJob",
    "check_no_leak",
    "derive_seed",
    "fit_predict",
    "fold_rows",
    "job_family",
    "study_name",
    "track_labels",
]


def study_name(benchmark: str, pair: PairKey, fold: int, config_digest: str) -> str:
    """Deterministic and unique per config: a changed config never resumes an old study."""
    return (
        f"{benchmark}:{pair.feature_set}:{pair.family}:{pair.protocol}:fold{fold}:{config_digest}"
    )


def derive_seed(seed: int, *parts: object) -> int:
    """A stable 31-bit seed from the benchmark seed and names (``hash()`` is salted per run)."""
    blob = ":".join(str(p) for p in (seed, *parts)).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:4], "big") & 0x7FFFFFFF


@dataclass(frozen=True)
class FoldJob:
    """Everything one (pair, outer fold) needs, picklable for a worker process.

    ``X``/``row_track``/``y`` are all rows of the feature set; the job selects rows by track id
    (:func:`fold_rows`), so a track absent from the feature set is simply not there (coverage is
    reported). ``row_copy`` marks the rows of augmented copies (``> 0``), which are trained on
    and never predicted or scored.
    """

    benchmark: str
    pair: PairKey
    fold: int
    X: np.ndarray
    row_track: np.ndarray
    y: np.ndarray
    classes: tuple[str, ...]
    train_tracks: np.ndarray
    test_tracks: np.ndarray
    inner_splits: Sequence[tuple[np.ndarray, np.ndarray]]
    space: Mapping[str, Any]
    storage_url: str
    study_name: str
    n_trials: int
    timeout_s: float | None
    seed: int
    fail_fast: bool = False
    #: the run's wall-clock budget ends at this ``time.time()``: no trial starts after it (the
    #: study keeps what finished and is refit); None: no budget
    deadline: float | None = None
    #: how hopeless trials are stopped early: median | successive_halving | hyperband | none
    pruner: str = "median"
    #: the study's trials without a run budget (None: ``n_trials``): a study the budget cuts
    #: short keeps the planned share of random start-up trials (:func:`startup_trials`)
    planned_trials: int | None = None
    #: the config's ``search_seed``: seeds the sampler instead of ``seed`` (None: ``seed``),
    #: so the same folds and models can be searched again with other luck
    search_seed: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: each row's copy number (0: the clip as found, k > 0: its k-th augmented copy, a
    #: training row only); None: the feature set has no augmented rows
    row_copy: np.ndarray | None = None


def job_family(job: FoldJob) -> Family:
    """The family that builds ``job``'s models: a registered one, or a config's variant of one
    (its search space names the base in ``of``, so a worker needs no config to build it)."""
    return resolve_family(job.pair.family, job.space.get("of"))


def fold_rows(job: FoldJob, tracks: np.ndarray, *, training: bool) -> np.ndarray:
    """The row indices of ``tracks``: the one place train and test rows are chosen, for the
    outer split, the inner folds, the refit and the final model alike.

    ``training``: every row of those tracks, augmented copies included (a copy carries its
    track's id, so it is on its track's side of every split). Otherwise (an outer test part,
    an inner validation fold: rows to predict and score) only the rows of the clips as found:
    an augmented copy is never predicted, so it reaches no score, no inner out-of-fold
    prediction and so no ensemble.
    """
    mask = np.isin(job.row_track, tracks)
    if not training and job.row_copy is not None:
        mask &= np.asarray(job.row_copy) == 0
    return np.flatnonzero(mask)


def fit_predict(
    job: FoldJob,
    params: Mapping[str, Any],
    train: np.ndarray,
    test: np.ndarray,
    on_epoch: Callable[[int, Mapping[str, float]], None] | None = None,
) -> tuple[Any, np.ndarray, float, float]:
    family = job_family(job)
    model = family.build(dict(params), job.seed)
    fit_params: dict[str, Any] = {}
    if family.trains_in_epochs:
        # segments of one track stay on one side of the network's early-stopping split
        fit_params["model__groups"] = job.row_track[train]
        if job.row_copy is not None:  # augmented copies: never in its early-stopping split
            fit_params["model__train_only"] = np.asarray(job.row_copy)[train] > 0
        if on_epoch is not None:
            fit_params["model__epoch_callback"] = on_epoch
    t0 = time.perf_counter()
    model.fit(job.X[train], job.y[train], **fit_params)
    t1 = time.perf_counter()
    proba = align_proba(model.predict_proba(job.X[test]), model.classes_, len(job.classes))
    t2 = time.perf_counter()
    return model, proba, t1 - t0, t2 - t1


def track_labels(job: FoldJob, track_ids: np.ndarray) -> np.ndarray:
    index = {c: i for i, c in enumerate(job.classes)}
    return np.array([index[str(t).split(".")[0]] for t in track_ids], dtype=np.int64)


def check_no_leak(job: FoldJob) -> None:
    """Refuse a job whose tuning could see the outer test part: the honesty rule, enforced
    where the work happens rather than trusted from the caller."""
    if job.row_copy is not None and len(job.row_copy) != len(job.row_track):
        raise GenrebenchError(
            f"{job.study_name}: row_copy has {len(job.row_copy)} entries for "
            f"{len(job.row_track)} rows"
        )
    test = set(map(str, job.test_tracks))
    train = set(map(str, job.train_tracks))
    if train & test:
        raise GenrebenchError(
            f"{job.study_name}: {len(train & test)} track(s) on both sides of the outer split"
        )
    for k, (a, b) in enumerate(job.inner_splits):
        inner = set(map(str, a)) | set(map(str, b))
        if not inner <= train:
            raise GenrebenchError(
                f"{job.study_name}: inner fold {k} uses {len(inner - train)} track(s) outside "
                "the outer training part"
            )
