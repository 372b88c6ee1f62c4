"""Track-level scoring: segment aggregation by mean probability and by vote, column alignment."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import loaded_on_import

from benchmark.scoring import (
    PROBA_FLOOR,
    aggregate_tracks,
    align_proba,
    score_tracks,
    true_class_log_loss,
)


def test_align_proba_puts_columns_at_their_class_index() -> None:
    proba = np.array([[0.2, 0.8], [0.6, 0.4]])
    out = align_proba(proba, np.array([1, 3]), 4)
    np.testing.assert_array_equal(out, [[0, 0.2, 0, 0.8], [0, 0.6, 0, 0.4]])


def test_aggregate_tracks_mean_and_vote_differ_where_they_should() -> None:
    # track a: two segments say class 0 weakly, one says class 1 strongly, so the mean
    # probability picks class 1 (0.617 vs 0.383) while the majority vote picks class 0
    rows = np.array(
        [
            [0.55, 0.45],  # a
            [0.55, 0.45],  # a
            [0.05, 0.95],  # a
            [0.1, 0.9],  # b
        ]
    )
    tracks = np.array(["a", "a", "a", "b"])
    pred = aggregate_tracks(rows, tracks)
    assert list(pred.track_ids) == ["a", "b"]
    np.testing.assert_allclose(pred.proba[0], [0.3833333, 0.6166667], atol=1e-6)
    assert list(pred.pred) == [1, 1]  # mean probability picks class 1 for a
    assert list(pred.vote) == [0, 1]  # two of three segments vote class 0


def test_aggregate_keeps_first_seen_order_and_breaks_vote_ties_by_mean() -> None:
    rows = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8]])
    pred = aggregate_tracks(rows, np.array(["z", "y", "y"]))
    assert list(pred.track_ids) == ["z", "y"]
    # y: one vote each; mean is (0.3, 0.7) so the tie goes to class 1
    assert pred.vote[1] == 1


def test_score_tracks_matches_hand_counts() -> None:
    proba = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]])
    pred = aggregate_tracks(proba, np.array(["t1", "t2", "t3", "t4"]))
    y = np.array([0, 1, 1, 2])
    m = score_tracks(y, pred, 3)
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["accuracy_vote"] == pytest.approx(0.75)
    # recall per class: 1, 0.5, 1 -> 0.8333
    assert m["balanced_accuracy"] == pytest.approx(5 / 6)
    expected_ll = -np.mean(np.log([0.9, 0.7, 0.3, 0.8]))
    assert m["log_loss"] == pytest.approx(expected_ll, rel=1e-6)


def test_score_tracks_log_loss_is_finite_for_a_confident_miss() -> None:
    pred = aggregate_tracks(np.array([[1.0, 0.0]]), np.array(["t"]))
    m = score_tracks(np.array([1]), pred, 2)
    assert np.isfinite(m["log_loss"]) and m["log_loss"] > 10


def test_true_class_log_loss_is_the_mean_negative_log_of_the_true_class() -> None:
    proba = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1]])
    y = np.array([0, 1, 1])
    assert true_class_log_loss(proba, y) == pytest.approx(-np.mean(np.log([0.9, 0.7, 0.3])))


def test_true_class_log_loss_floors_a_confident_miss_as_score_tracks_does() -> None:
    # one floor for every log loss: a zero on the true class costs -log(PROBA_FLOOR), no inf
    assert true_class_log_loss(np.array([[1.0, 0.0]]), np.array([1])) == pytest.approx(
        -np.log(PROBA_FLOOR)
    )
    proba = np.array([[0.6, 0.4], [0.25, 0.75]])
    pred = aggregate_tracks(proba, np.array(["a", "b"]))
    y = np.array([1, 1])
    assert score_tracks(y, pred, 2)["log_loss"] == pytest.approx(true_class_log_loss(proba, y))


def test_scoring_imports_neither_sklearn_nor_pandas() -> None:
    # the inference pool imports align_proba: its start-up must not load either library
    assert loaded_on_import(["benchmark.scoring"], ["sklearn", "pandas"]) == []
