"""Augmented copies are training rows only: they follow their track into its side of every
split, are fit on, and are never predicted for an outer test part, an inner validation fold (the
inner out-of-fold rows ensembles learn from) or a score."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import fold_job

import benchmark.tuning.fold as fold_module
import benchmark.tuning.job as job_module
import benchmark.tuning.objective as objective_module
from benchmark.errors import GenrebenchError
from benchmark.tuning.fold import refit, run_fold
from benchmark.tuning.job import FoldJob, fold_rows
from benchmark.tuning.objective import inner_predictions

COPIES = 2


def augmented(job: FoldJob) -> FoldJob:
    """``job`` with ``COPIES`` noisy copies of every row, each after its track's rows."""
    rng = np.random.default_rng(3)
    n = len(job.row_track)
    X = np.concatenate([job.X] + [job.X + rng.normal(0, 0.1, job.X.shape) for _ in range(COPIES)])
    row_copy = np.repeat(np.arange(COPIES + 1, dtype=np.int16), n)
    order = np.argsort(np.tile(np.arange(n), COPIES + 1), kind="stable")
    return replace(
        job,
        X=X[order],
        row_track=np.tile(job.row_track, COPIES + 1)[order],
        y=np.tile(job.y, COPIES + 1)[order],
        row_copy=row_copy[order],
    )


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every (train rows, predicted rows) pair a fit in tuning uses (the objective's inner fits
    and the fold's outer refit both call :func:`benchmark.tuning.job.fit_predict`)."""
    calls: list[tuple[np.ndarray, np.ndarray]] = []
    real: Callable[..., Any] = job_module.fit_predict

    def recording(job: FoldJob, params: Any, train: np.ndarray, test: np.ndarray, *a: Any) -> Any:
        calls.append((train, test))
        return real(job, params, train, test, *a)

    for module in (fold_module, objective_module):
        monkeypatch.setattr(module, "fit_predict", recording)
    return calls


def test_fold_rows_train_on_copies_and_predict_only_the_clips_as_found(tmp_path: Path) -> None:
    job = augmented(fold_job(tmp_path))
    assert job.row_copy is not None
    train = fold_rows(job, job.train_tracks, training=True)
    test = fold_rows(job, job.test_tracks, training=False)
    assert set(job.row_copy[train]) == set(range(COPIES + 1))
    assert (job.row_copy[test] == 0).all()
    assert len(test) == len(job.test_tracks)
    # a copy is on its track's side: no training row belongs to a test track
    assert not set(job.row_track[train]) & set(job.test_tracks)
    # without copies, both sides are every row of their tracks, as before augmentation
    plain = fold_job(tmp_path)
    assert np.array_equal(
        fold_rows(plain, plain.test_tracks, training=False),
        fold_rows(plain, plain.test_tracks, training=True),
    )


def test_no_augmented_row_is_predicted_in_tuning_refit_or_scoring(
    tmp_path: Path, spy: list[tuple[np.ndarray, np.ndarray]]
) -> None:
    job = augmented(fold_job(tmp_path, n_trials=3))
    assert job.row_copy is not None
    out = run_fold(job)
    assert out.status == "done", out.message
    assert len(spy) >= 1 + 3 * len(job.inner_splits)  # trials' inner folds and the refit
    for train, predicted in spy:
        assert (job.row_copy[predicted] == 0).all(), "an augmented row was predicted"
        assert (job.row_copy[train] > 0).any(), "the copies were not trained on"
        assert not set(job.row_track[train]) & set(job.row_track[predicted])
    # scores and the rows ensembles learn from: one row per track as found
    assert sorted(out.predictions["track_id"]) == sorted(job.test_tracks)
    assert out.inner_predictions is not None
    assert sorted(out.inner_predictions["track_id"]) == sorted(job.train_tracks)
    assert out.n_train == len(job.train_tracks) and out.n_test == len(job.test_tracks)


def test_inner_predictions_and_the_refit_see_copies_only_as_training_rows(
    tmp_path: Path, spy: list[tuple[np.ndarray, np.ndarray]]
) -> None:
    job = augmented(fold_job(tmp_path))
    assert job.row_copy is not None
    frame = inner_predictions(job, {})
    assert len(frame) == len(job.train_tracks)
    for _, predicted in spy:
        assert (job.row_copy[predicted] == 0).all()
    model = refit(job, {})
    rows = fold_rows(job, job.train_tracks, training=True)
    assert model.n_features_in_ == job.X.shape[1] and len(rows) == (COPIES + 1) * len(
        job.train_tracks
    )


def test_a_job_whose_copy_numbers_do_not_match_its_rows_is_refused(tmp_path: Path) -> None:
    job = augmented(fold_job(tmp_path))
    assert job.row_copy is not None
    with pytest.raises(GenrebenchError, match="row_copy"):
        job_module.check_no_leak(replace(job, row_copy=job.row_copy[:-1]))
