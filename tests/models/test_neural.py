"""Neural families: crop/vote helpers, the Keras wrapper's estimator contract, tiny trainings.

The shared family checks (tests/models/test_models.py) already run mlp, cnn2d and cnn1d through
shape, class order, seed, clone, pickle and search-space checks; here are what is particular
to the Keras wrapper and the crop pipeline. Fits are tiny (a few epochs, a few filters).
"""

from __future__ import annotations

import importlib.util
import pickle

import numpy as np
import pytest
from sklearn.base import clone

from benchmark import testing
from benchmark.errors import ConfigError
from benchmark.models import _crops as crops

needs_keras = pytest.mark.skipif(
    importlib.util.find_spec("keras") is None or importlib.util.find_spec("jax") is None,
    reason="needs the neural extra: pip install 'genrebench[neural]'",
)

TINY_CNN = {
    "filters": 4,
    "n_blocks": 2,
    "max_epochs": 3,
    "patience": 3,
    "n_crops": 3,
    "learning_rate": 0.01,
}


# --- crops ------------------------------------------------------------------------------------
def test_crop_length_is_a_share_of_the_clip() -> None:
    assert crops.crop_length(334, 0.1) == 33  # 3 s of a 30-s Kaggle image
    assert crops.crop_length(661500, 0.1) == 66150  # 3 s at 22 050 Hz
    assert crops.crop_length(5, 0.01) == 1 and crops.crop_length(5, 1.0) == 5
    with pytest.raises(ValueError, match="fraction"):
        crops.crop_length(10, 0.0)


def test_crop_starts_cover_the_clip_evenly() -> None:
    starts = crops.crop_starts(100, 10, 10)
    assert starts[0] == 0 and starts[-1] == 90
    assert np.all(np.diff(starts) == 10)  # exactly tiling
    assert crops.crop_starts(100, 10, 1).tolist() == [45]  # one crop: centred
    assert np.all(np.diff(crops.crop_starts(100, 30, 7)) > 0)  # overlapping, still increasing
    with pytest.raises(ValueError, match="does not fit"):
        crops.crop_starts(5, 6, 2)


def test_random_crops_are_slices_of_their_own_clip() -> None:
    X = np.arange(4 * 3 * 20, dtype=np.float32).reshape(4, 3, 20)
    rows = np.array([2, 0, 2, 3])
    got = crops.random_crops(X, rows, 5, np.random.default_rng(0))
    assert got.shape == (4, 3, 5) and got.flags.c_contiguous
    for batch_row, clip in zip(got, rows, strict=True):
        start = int(batch_row[0, 0] - X[clip, 0, 0])
        np.testing.assert_array_equal(batch_row, X[clip, :, start : start + 5])
    # a waveform batch: (n, T) -> (batch, length)
    W = np.arange(2 * 50, dtype=np.float32).reshape(2, 50)
    assert crops.random_crops(W, np.array([1, 1, 0]), 7, np.random.default_rng(1)).shape == (3, 7)


def test_clip_crops_are_clip_major_and_vote_averages_them() -> None:
    X = np.arange(2 * 12, dtype=np.float32).reshape(2, 12)
    got = crops.clip_crops(X, 4, 3)
    np.testing.assert_array_equal(got[:3], [X[0, 0:4], X[0, 4:8], X[0, 8:12]])
    np.testing.assert_array_equal(got[3:], [X[1, 0:4], X[1, 4:8], X[1, 8:12]])
    proba = np.array([[1, 0], [0, 1], [1, 0], [0.2, 0.8], [0.4, 0.6], [0.6, 0.4]])
    np.testing.assert_allclose(crops.vote(proba, 3), [[2 / 3, 1 / 3], [0.4, 0.6]])
    with pytest.raises(ValueError, match="crop probabilities"):
        crops.vote(proba[:5], 3)


def test_masks_zero_bands_no_wider_than_asked() -> None:
    rng = np.random.default_rng(0)
    batch = np.ones((64, 10, 30), dtype=np.float32)
    crops.mask_time(batch, 1, 6, rng)
    zero_cols = (batch == 0).all(axis=1).sum(axis=1)  # per sample, fully zeroed columns
    assert zero_cols.max() <= 6 and zero_cols.sum() > 0
    assert np.all((batch == 0) | (batch == 1))
    spec = np.ones((64, 10, 30), dtype=np.float32)
    crops.mask_frequency(spec, 2, 3, rng)
    zero_rows = (spec == 0).all(axis=2).sum(axis=1)
    assert zero_rows.max() <= 6 and zero_rows.sum() > 0
    untouched = np.ones((4, 10, 30), dtype=np.float32)
    crops.mask_time(untouched, 0, 6, rng)
    assert untouched.min() == 1.0


def test_mixup_mixes_inputs_and_targets_alike() -> None:
    rng = np.random.default_rng(0)
    x = np.repeat(np.arange(8, dtype=np.float32)[:, None], 5, axis=1)
    y = np.eye(8, dtype=np.float32)
    mx, my = crops.mixup(x.copy(), y.copy(), 0.4, rng)
    np.testing.assert_allclose(my.sum(axis=1), 1.0, rtol=1e-6)
    # each mixed row is the label-weighted mean of the original rows
    np.testing.assert_allclose(mx[:, 0], my @ np.arange(8, dtype=np.float32), rtol=1e-5)
    same_x, same_y = crops.mixup(x.copy(), y.copy(), 0.0, rng)
    np.testing.assert_array_equal(same_x, x)
    np.testing.assert_array_equal(same_y, y)


# --- the wrapper ------------------------------------------------------------------------------
def test_validation_split_is_stratified_and_keeps_groups_together() -> None:
    from benchmark.models._keras import _validation_split

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(5), 20)
    train, valid = _validation_split(y, None, 0.2, rng)
    assert np.bincount(y[valid]).tolist() == [4] * 5
    assert len(np.intersect1d(train, valid)) == 0 and len(train) + len(valid) == 100
    groups = np.repeat(np.arange(25), 4)  # four segments per track, one class per track
    train, valid = _validation_split(y, groups, 0.2, rng)
    assert not set(groups[train]) & set(groups[valid])
    assert len(valid) == 20
    # a class with a single unit is never held out; fraction 0 holds nothing out
    train, valid = _validation_split(np.array([0, 0, 0, 0, 1]), None, 0.5, rng)
    assert 4 in train and len(valid) == 2
    assert len(_validation_split(y, None, 0.0, rng)[1]) == 0


def test_augmented_copies_are_never_in_the_early_stopping_validation() -> None:
    from benchmark.models._keras import _validation_split

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(5), 20)
    groups = np.repeat(np.arange(50), 2)  # each track: its clip as found, then one copy
    copy = np.tile([False, True], 50)
    train, valid = _validation_split(y, groups, 0.2, rng, copy)
    assert len(valid) == 10 and not copy[valid].any()
    assert copy[train].sum() == 40  # the copies of training tracks are trained on
    # the copies of validation tracks are on neither side
    assert not set(groups[train]) & set(groups[valid])
    plain_train, plain_valid = _validation_split(y, groups, 0.2, np.random.default_rng(0))
    assert set(groups[plain_valid]) == set(groups[valid])


@needs_keras
def test_keras_backend_is_set_by_the_package() -> None:
    from benchmark.models._keras import BACKEND, import_keras

    keras = import_keras()
    assert BACKEND == "jax"
    assert keras.backend.backend() == BACKEND


@needs_keras
def test_init_stores_params_only_and_fit_validates_them() -> None:
    from benchmark.models.neural import CNN2DClassifier, MLPKerasClassifier

    model = MLPKerasClassifier(hidden_layer_sizes=(3,), activation="nope", random_state=1)
    assert model.activation == "nope" and not hasattr(model, "classes_")
    assert clone(model).get_params() == model.get_params()
    X, y = testing.make_tabular_problem(40, 4)
    with pytest.raises(ValueError, match="'activation' parameter of MLPKerasClassifier"):
        model.fit(X, y)
    with pytest.raises(ValueError, match="'batch_size'"):
        MLPKerasClassifier(batch_size=0).fit(X, y)
    with pytest.raises(ValueError, match="3-D input"):
        CNN2DClassifier().fit(X, y)
    with pytest.raises(ValueError, match="NaN"):
        MLPKerasClassifier().fit(np.full_like(X, np.nan), y)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        MLPKerasClassifier().predict_proba(X)


@pytest.fixture(scope="module")
def tabular() -> tuple[np.ndarray, np.ndarray]:
    X, y = testing.make_tabular_problem(200, 12)
    return ((X - X.mean(0)) / X.std(0)).astype(np.float32), y


@needs_keras
def test_mlp_seeded_reproducible_callback_early_stopping(tabular) -> None:
    """One seed, one result; another seed, another; the epoch callback sees every epoch and
    early stopping keeps the best validation epoch's weights."""
    from benchmark.models.neural import MLPKerasClassifier

    X, y = tabular
    seen: list[tuple[int, dict]] = []
    params = {"hidden_layer_sizes": (16,), "max_epochs": 12, "patience": 3, "random_state": 3}
    first = MLPKerasClassifier(**params).fit(X, y, epoch_callback=lambda e, s: seen.append((e, s)))
    second = MLPKerasClassifier(**params).fit(X, y)
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))
    other = MLPKerasClassifier(**{**params, "random_state": 4}).fit(X, y)
    assert not np.array_equal(first.predict_proba(X), other.predict_proba(X))

    assert [e for e, _ in seen] == list(range(first.n_epochs_))
    assert set(seen[0][1]) == {"loss", "val_loss", "val_accuracy"}
    losses = first.history_["val_loss"]
    assert first.best_epoch_ == int(np.argmin(losses))
    assert first.n_epochs_ == 12 or first.n_epochs_ - 1 - first.best_epoch_ >= 3
    assert first.backend_ == "jax" and first.n_params_ == 12 * 16 + 16 + 16 * 10 + 10


@needs_keras
def test_epoch_callback_can_stop_training_and_stays_out_of_params(tabular) -> None:
    optuna = pytest.importorskip("optuna")
    from benchmark.models.neural import MLPKerasClassifier

    X, y = tabular

    def prune(epoch: int, logs: dict) -> None:
        if epoch == 1:
            raise optuna.TrialPruned()

    model = MLPKerasClassifier(hidden_layer_sizes=(8,), max_epochs=50, random_state=0)
    with pytest.raises(optuna.TrialPruned):
        model.fit(X, y, epoch_callback=prune)
    assert "epoch_callback" not in model.get_params()


@needs_keras
def test_no_validation_split_trains_the_whole_budget(tabular) -> None:
    from benchmark.models.neural import MLPKerasClassifier

    X, y = tabular
    model = MLPKerasClassifier(
        hidden_layer_sizes=(8,), max_epochs=4, validation_fraction=0.0, random_state=0
    ).fit(X, y)
    assert model.n_epochs_ == 4 and model.best_epoch_ == 3
    assert np.isnan(model.history_["val_loss"]).all()


@needs_keras
def test_family_builders_and_the_seed_architecture() -> None:
    from benchmark.models import get_family

    seed = get_family("mlp").build({"architecture": "seed", "max_epochs": 5}, 0)
    net = seed.named_steps["model"]
    assert net.hidden_layer_sizes == (20, 20, 15, 12) and net.activation == "tanh"
    assert net.max_epochs == 5 and net.random_state == 0
    assert "scale" in seed.named_steps  # standardized, fit on training folds only
    tuned = get_family("mlp").build({"architecture": "tuned", "n_layers": 3, "width": 40}, 0)
    assert tuned.named_steps["model"].hidden_layer_sizes == (40, 40, 40)
    with pytest.raises(ConfigError, match="fixed"):
        get_family("mlp").build({"architecture": "seed", "width": 40}, 0)
    with pytest.raises(ConfigError, match=r"cnn2d.*\['kernel'\]"):
        get_family("cnn2d").build({"kernel": 5}, 0)
    cnn = get_family("cnn2d").build({"filters": 8}, 1)
    assert list(cnn.named_steps) == ["model"]  # the CNN standardizes its own crops


# --- tiny end-to-end trainings ------------------------------------------------------------------
@needs_keras
def test_cnn2d_learns_generated_spectrograms_and_pickles() -> None:
    from benchmark.models.neural import CNN2DClassifier

    X, y = testing.make_image_problem(200)
    model = CNN2DClassifier(**{**TINY_CNN, "max_epochs": 6}, crop_fraction=0.25, random_state=0)
    model.fit(X, y)
    assert model.n_params_ < 5_000 and model.data_format_ == "channels_last"
    assert model.input_mean_.shape == (24, 1)  # per frequency row
    accuracy = float(np.mean(model.predict(X) == y))
    assert accuracy > 0.3, f"training accuracy {accuracy:.2f}"  # chance: 0.1
    proba = model.predict_proba(X[:7])
    loaded = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(proba, loaded.predict_proba(X[:7]))
    np.testing.assert_array_equal(proba, model.predict_proba(X[:7]))  # pickling kept it whole
    # longer clips than in training are fine (crops are what counts); other heights are not
    assert model.predict_proba(np.concatenate([X[:2], X[:2]], axis=2)).shape == (2, 10)
    with pytest.raises(ValueError, match="fitted on clips of shape"):
        model.predict_proba(X[:2, :20])


@needs_keras
def test_crop_vote_is_the_mean_of_the_crop_probabilities() -> None:
    from benchmark.models._keras import softmax
    from benchmark.models.neural import CNN2DClassifier

    X, y = testing.make_image_problem(60)
    model = CNN2DClassifier(**TINY_CNN, random_state=0).fit(X, y)
    length = model._crop_length()
    batch = model._standardize(crops.clip_crops(X[:4], length, model.n_crops))
    by_crop = softmax(model._logits(batch))
    np.testing.assert_allclose(
        model.predict_proba(X[:4]), crops.vote(by_crop, model.n_crops), rtol=1e-6
    )


@needs_keras
def test_cnn1d_learns_generated_waveforms() -> None:
    from benchmark.models.neural import CNN1DClassifier

    X, y = testing.make_waveform_problem(200)
    model = CNN1DClassifier(**{**TINY_CNN, "max_epochs": 6}, random_state=0).fit(X, y)
    assert model.input_mean_.shape == (1,)  # one mean and scale for raw audio
    accuracy = float(np.mean(model.predict(X) == y))
    assert accuracy > 0.3, f"training accuracy {accuracy:.2f}"  # chance: 0.1


@needs_keras
def test_mlp_runs_through_the_tuning_harness(tmp_path) -> None:
    """One (pair, outer fold) of ``mlp`` through run_fold: the seed network first, a tuned one
    second, refit and scored; the budget comes from the (shrunk) search space."""
    from dataclasses import replace

    from helpers import fold_job

    from benchmark.tuning.fold import run_fold
    from benchmark.tuning.search_space import load_search_space

    space = load_search_space("mlp").to_dict()
    space["params"]["max_epochs"]["choices"] = [5]
    space["defaults"]["max_epochs"] = 5
    job = replace(fold_job(tmp_path, family="mlp", n_trials=2), space=space)
    outcome = run_fold(job)
    assert outcome.status == "done", outcome.message
    assert outcome.n_trials == 2 and outcome.n_test == len(job.test_tracks)
    assert 0.0 <= outcome.metrics["accuracy"] <= 1.0
    # each trial reported its first inner fit epoch by epoch, then the running inner-CV mean
    import optuna

    from benchmark.tuning.objective import FOLD_STEP0

    for trial in optuna.load_study(study_name=job.study_name, storage=job.storage_url).trials:
        steps = sorted(trial.intermediate_values)
        epochs = [s for s in steps if s < FOLD_STEP0]
        assert epochs == list(range(len(epochs))) and 1 <= len(epochs) <= 5, steps
        assert [s for s in steps if s >= FOLD_STEP0] == [FOLD_STEP0 + i for i in range(3)]


def test_a_network_trailing_earlier_trials_is_pruned_inside_its_first_epochs() -> None:
    import optuna

    from benchmark.tuning.objective import _pruning_callback

    study = optuna.create_study(
        direction="maximize",
        pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=1),
    )
    good = study.ask()
    for epoch in range(4):
        good.report(0.8, epoch)
    study.tell(good, 0.8)
    trial = study.ask()
    on_epoch = _pruning_callback(trial)
    on_epoch(0, {"val_accuracy": 0.1})  # warm-up: never pruned
    on_epoch(1, {"val_accuracy": float("nan")})  # nothing to compare: ignored
    with pytest.raises(optuna.TrialPruned, match="epoch 2: validation accuracy 0.100"):
        on_epoch(2, {"val_accuracy": 0.1})
