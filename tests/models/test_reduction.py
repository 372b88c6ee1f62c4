"""The reduction step: PCA clipped to what the rows allow, and fit on training rows only.

The leak-detecting fixture gives the outer test rows a direction and a scale the training rows
lack: a PCA that saw them has another mean and other components, and a model fit with it
predicts the test rows differently from one fit on the training rows alone.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from helpers import fold_job
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from benchmark.errors import ConfigError
from benchmark.models import resolve_family
from benchmark.models._common import add_reduction, make_pipeline
from benchmark.models._reduction import ClippedPCA
from benchmark.models._variants import variant_space
from benchmark.results import PairKey
from benchmark.scoring import align_proba
from benchmark.tuning.fold import refit, run_fold
from benchmark.tuning.job import FoldJob, fold_rows


@parametrize_with_checks([ClippedPCA(3)])
def test_the_reduction_is_a_well_behaved_scikit_learn_transformer(estimator, check) -> None:
    check(estimator)


@pytest.mark.parametrize(
    ("shape", "asked", "kept"),
    [((40, 6), 128, 6), ((5, 30), 128, 5), ((40, 30), 8, 8), ((3, 5), 4, 3)],
)
def test_components_are_clipped_to_the_rows_and_columns_it_is_fit_on(
    shape: tuple[int, int], asked: int, kept: int
) -> None:
    X = np.random.default_rng(0).normal(size=shape)
    pca = ClippedPCA(asked).fit(X)
    assert pca.n_components_ == kept and pca.n_components == asked  # the param is untouched
    assert pca.transform(X).shape == (shape[0], kept)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "8"])
def test_a_component_count_that_is_no_positive_integer_fails(bad: object) -> None:
    with pytest.raises(ValueError, match="n_components must be an integer >= 1"):
        ClippedPCA(bad).fit(np.ones((4, 3)))  # type: ignore[arg-type]


def test_the_pipeline_shape_puts_the_reduction_between_scaling_and_model() -> None:
    model = LogisticRegression()
    assert [n for n, _ in make_pipeline(model, scale=True).steps] == ["scale", "model"]
    shaped = make_pipeline(model, scale=True, reduce=ClippedPCA(4))
    assert [n for n, _ in shaped.steps] == ["scale", "reduce", "model"]
    added = add_reduction(make_pipeline(model, scale=False), ClippedPCA(4))
    assert [n for n, _ in added.steps] == ["reduce", "model"]
    with pytest.raises(ConfigError, match=r"\[scale →\] model pipeline"):
        add_reduction(shaped, ClippedPCA(2))  # a second reduction
    with pytest.raises(ConfigError, match=r"\[scale →\] model pipeline"):
        add_reduction(model, ClippedPCA(2))  # no pipeline at all


def test_a_variant_without_pca_components_builds_its_base_pipeline_unchanged() -> None:
    family = resolve_family("logreg_c", "logreg")
    steps = family.build({"penalty": "l2", "C": 0.5}, 0).steps
    base = resolve_family("logreg").build({"penalty": "l2", "C": 0.5}, 0).steps
    assert [n for n, _ in steps] == [n for n, _ in base] == ["scale", "model"]
    assert repr(steps) == repr(base)


def _leaky_job(tmp_path: Path, components: int = 3) -> FoldJob:
    """A fold job whose outer test rows would change a PCA: shifted far along a direction
    of their own, with one column blown up."""
    job = fold_job(tmp_path, n_trials=2)
    X = job.X.copy()
    test = fold_rows(job, job.test_tracks, training=False)
    X[test, 0] += 50.0
    X[test, 3] *= 40.0
    spec = {"of": "logreg", "fixed": {"pca_components": components}}
    space = variant_space("logreg_pca", spec, source="test").to_dict()
    return replace(job, X=X, pair=PairKey("synthetic", "logreg_pca", "holdout"), space=space)


def _expected_pca(X: np.ndarray, components: int) -> PCA:
    return PCA(n_components=components, svd_solver="full").fit(StandardScaler().fit_transform(X))


def test_the_harness_fits_the_pca_on_the_training_rows_only(tmp_path: Path) -> None:
    job = _leaky_job(tmp_path)
    params = {"penalty": "l2", "C": 1.0, "pca_components": 3}
    model = refit(job, params)
    fitted = model.named_steps["reduce"].pca_
    train = fold_rows(job, job.train_tracks, training=True)
    honest = _expected_pca(job.X[train], 3)
    np.testing.assert_allclose(fitted.mean_, honest.mean_, atol=1e-12)
    np.testing.assert_allclose(fitted.components_, honest.components_, atol=1e-10)
    # the fixture detects a leak: with the test rows, mean and components are others
    leaky = _expected_pca(job.X, 3)
    assert not np.allclose(leaky.components_, honest.components_, atol=1e-3)
    assert not np.allclose(
        StandardScaler().fit(job.X).mean_, model.named_steps["scale"].mean_, atol=1e-3
    )


def test_an_outer_fold_predicts_with_a_reduction_fit_without_its_test_rows(
    tmp_path: Path,
) -> None:
    job = _leaky_job(tmp_path)
    out = run_fold(job)
    assert out.status == "done", out.message
    assert out.params["pca_components"] == 3
    train = fold_rows(job, job.train_tracks, training=True)
    test = fold_rows(job, job.test_tracks, training=False)
    honest = resolve_family("logreg_pca", "logreg").build(out.params, job.seed)
    honest.fit(job.X[train], job.y[train])
    expected = align_proba(honest.predict_proba(job.X[test]), honest.classes_, len(job.classes))
    by_track = out.predictions.set_index("track_id").loc[job.row_track[test]]
    columns = [f"proba_{c}" for c in job.classes]
    np.testing.assert_allclose(by_track[columns].to_numpy(), expected, atol=1e-9)
    # the fixture detects a leak: a scaler and PCA that had seen the test rows (the model
    # itself still fit on the training rows) predict them otherwise
    leaky = resolve_family("logreg_pca", "logreg").build(out.params, job.seed)
    leaky[:-1].fit(job.X)
    leaky[-1].fit(leaky[:-1].transform(job.X[train]), job.y[train])
    leaked = align_proba(leaky.predict_proba(job.X[test]), leaky.classes_, len(job.classes))
    assert not np.allclose(leaked, expected, atol=1e-3)
