"""scikit-learn estimators around Keras 3 networks, so neural families plug into the same tuning,
protocols, tracking and report as the classic ones.

The contract is scikit-learn's: ``__init__`` stores its arguments and nothing else; ``fit``
validates them, learns ``classes_`` and the network; ``predict_proba`` columns follow
``classes_``; ``get_params``/``set_params``/``clone`` work from the ``__init__`` signature; a
fitted estimator pickles (the network travels as its weights and is rebuilt on load).

Backend. Keras 3 runs on JAX here, set by the package (``KERAS_BACKEND`` defaults to ``"jax"``
when :func:`import_keras` first imports Keras; a backend chosen by the user beforehand is kept).
Why JAX: see the README's "Neural families" section for the measurements.

Training, the same for every network:

* ``float32`` throughout; batches are gathered from the caller's array (one gather per batch,
  never a copy of the whole array) and augmented in place;
* early stopping on an inner validation split carved from the *training data passed to fit*
  (stratified by class; by ``groups`` when given, so segments of one track stay together), on
  the validation log loss, with the best epoch's weights restored; ``max_epochs`` is the budget;
  ``validation_fraction=0`` trains exactly ``max_epochs`` epochs on all rows;
* seeded: ``random_state`` seeds the split, the batches, the augmentation and Keras (weights,
  dropout); on CPU the same seed gives the same probabilities, bit for bit;
* per-epoch reporting (for Optuna pruning): ``fit(X, y, epoch_callback=f)`` calls
  ``f(epoch, logs)`` after every epoch with the validation loss and accuracy; ``f`` may raise
  (``optuna.TrialPruned``) to stop. It is a *fit* argument, not a constructor one, so it never
  reaches ``get_params``, ``clone`` or pickles; through a Pipeline pass ``model__epoch_callback``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from benchmark.models import _crops as crops
from benchmark.models._estimator_params import check_int, check_number
from benchmark.models._keras_runtime import BACKEND, import_keras, seeded
from benchmark.scoring import true_class_log_loss

__all__ = [
    "BACKEND",
    "CropClassifier",
    "KerasClassifier",
    "import_keras",
    "softmax",
]

EpochCallback = Callable[[int, Mapping[str, float]], None]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (rows sum to 1 to machine precision)."""
    z = np.asarray(logits, dtype=np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


@functools.cache
def _dataset_class(keras: Any) -> type:
    """A ``keras.utils.PyDataset`` whose batch ``i`` of epoch ``e`` is ``make_batch(e, i)``.

    Synchronous (one worker, no multiprocessing) and never shuffled by Keras: the estimator's
    own seeded generator decides the order, so the batches are a function of (seed, epoch, i).
    """

    class Batches(keras.utils.PyDataset):
        def __init__(self, n_batches: int, make_batch: Callable[[int, int], tuple]) -> None:
            super().__init__(workers=1, use_multiprocessing=False)
            self.n_batches = n_batches
            self.make_batch = make_batch
            self.epoch = 0

        def __len__(self) -> int:
            return self.n_batches

        def __getitem__(self, index: int) -> tuple:
            return self.make_batch(self.epoch, index)

    return Batches


@functools.cache
def _monitor_class(keras: Any) -> type:
    """The Keras callback that validates after each epoch, early-stops and reports."""

    class Monitor(keras.callbacks.Callback):
        def __init__(
            self,
            estimator: KerasClassifier,
            batches: Any,
            X: np.ndarray,
            y: np.ndarray,
            valid: np.ndarray,
            epoch_callback: EpochCallback | None,
        ) -> None:
            super().__init__()
            self.estimator, self.batches = estimator, batches
            self.X, self.y, self.valid = X, y, valid
            self.epoch_callback = epoch_callback
            self.history: dict[str, list[float]] = {"loss": [], "val_loss": [], "val_accuracy": []}
            self.best_loss = math.inf
            self.best_epoch = -1
            self.best_weights: list[np.ndarray] | None = None

        def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
            self.batches.epoch = epoch

        def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
            est = self.estimator
            self.history["loss"].append(float((logs or {}).get("loss", math.nan)))
            if len(self.valid) == 0:
                self.history["val_loss"].append(math.nan)
                self.history["val_accuracy"].append(math.nan)
                self.best_epoch = epoch
            else:
                proba = est._proba_rows(self.X, self.valid)
                true = self.y[self.valid]
                val_loss = true_class_log_loss(proba, true)
                val_accuracy = float(np.mean(proba.argmax(axis=1) == true))
                self.history["val_loss"].append(val_loss)
                self.history["val_accuracy"].append(val_accuracy)
                if val_loss < self.best_loss:
                    self.best_loss, self.best_epoch = val_loss, epoch
                    self.best_weights = _weights(self.model)
                elif epoch - self.best_epoch >= est.patience:
                    self.model.stop_training = True
            if self.epoch_callback is not None:
                self.epoch_callback(epoch, {k: v[-1] for k, v in self.history.items()})

    return Monitor


class KerasClassifier(ClassifierMixin, BaseEstimator):
    """Base of the Keras-backed classifiers; not used directly.

    A subclass declares every parameter in its ``__init__`` (scikit-learn reads them from the
    signature) and implements :meth:`_network`. The shared training parameters, which every
    subclass must accept, are:

    Parameters:
        learning_rate: AdamW step size.
        weight_decay: AdamW decoupled weight decay (not on biases or batch-norm parameters).
        batch_size: rows (or crops) per training step; every step has the same shape, so the
            network compiles once (the last incomplete batch of an epoch is dropped).
        max_epochs: the training budget in epochs.
        patience: epochs without a better validation loss before training stops.
        validation_fraction: share of the training data held out for early stopping
            (0: no early stopping, train ``max_epochs`` epochs on all of it).
        random_state: the seed of everything random in ``fit``.

    Attributes (after fit):
        classes_: the sorted training labels; ``predict_proba`` columns follow them.
        n_features_in_: ``X.shape[1]`` at fit (columns; a spectrogram's frequency rows).
        input_shape_: the shape of one input row.
        history_: per-epoch ``loss`` (training), ``val_loss`` and ``val_accuracy``.
        best_epoch_: the epoch whose weights were kept (0-based).
        n_epochs_: the epochs trained.
        n_params_: the network's parameter count.
        backend_: the Keras backend it was trained on.
    """

    #: rows per prediction call (padded, so prediction compiles once per network)
    _predict_batch = 256
    #: the number of dimensions one input row must have (1: tabular or waveform, 2: image)
    _row_ndim: tuple[int, ...] = (1,)
    #: whether prediction needs rows as long as the training ones (crop models take any clip
    #: at least one crop long)
    _fixed_row_length = True

    # --- to implement ---------------------------------------------------------------------
    def _network(self, keras: Any, input_shape: tuple[int, ...], n_classes: int) -> Any:
        """The uncompiled ``keras.Model`` mapping one batch of inputs to class *logits*."""
        raise NotImplementedError

    def _check_params(self) -> None:
        """Raise ``ValueError`` for an invalid parameter (called at the start of fit)."""
        check_number(self, "learning_rate", low=0.0, low_open=True)
        check_number(self, "weight_decay", low=0.0)
        check_int(self, "batch_size", 1)
        check_int(self, "max_epochs", 1)
        check_int(self, "patience", 1)
        check_number(self, "validation_fraction", low=0.0, high=0.5)

    # --- data hooks (overridden by crop models) --------------------------------------------
    def _before_fit(self, keras: Any) -> None:
        """Record fit-time settings the network depends on."""

    def _epoch_rows(self, train: np.ndarray) -> np.ndarray:
        """The rows one epoch visits (in a random order): every training row once."""
        return train

    def _fit_input_stats(self, X: np.ndarray, rows: np.ndarray) -> None:
        """Learn input statistics from the training rows (nothing for tabular rows: the
        family's Pipeline standardizes them)."""

    def _train_batch(
        self, X: np.ndarray, Y: np.ndarray, rows: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """One training batch ``(x, y_onehot)`` from ``rows`` (gathers, so caller's arrays
        stay untouched)."""
        return X[rows], Y[rows]

    def _proba_rows(self, X: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Class probabilities of ``X[rows]`` (all rows when ``rows`` is None)."""
        idx = np.arange(len(X)) if rows is None else rows
        out = np.empty((len(idx), len(self.classes_)), dtype=np.float64)
        step = self._predict_batch
        for start in range(0, len(idx), step):
            part = idx[start : start + step]
            out[start : start + len(part)] = softmax(self._logits(X[part]))
        return out

    # --- the estimator ----------------------------------------------------------------------
    def fit(
        self,
        X: Any,
        y: Any,
        groups: Any = None,
        epoch_callback: EpochCallback | None = None,
        train_only: Any = None,
    ) -> KerasClassifier:
        """Train on ``X``, ``y``; ``groups`` (optional) keeps rows of one group on one side of
        the early-stopping split; ``epoch_callback(epoch, logs)`` is called after every epoch;
        ``train_only`` (optional, one bool per row) marks augmented copies, never validated on."""
        keras = import_keras()
        self._check_params()
        X, y = self._check_X(X, y, reset=True)
        check_classification_targets(y)  # a continuous target is no set of classes
        if groups is not None:
            groups = np.asarray(groups)
            if groups.shape != y.shape:
                raise ValueError(f"groups must have shape {y.shape}, got {groups.shape}")
        self.classes_, y_index = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes in the data, but "
                f"the data contains only one class: {self.classes_[0]!r}"
            )
        n_classes = len(self.classes_)
        seed = self._seed()
        rng = np.random.default_rng(seed)

        self._before_fit(keras)
        fraction = self.validation_fraction
        train, valid = _validation_split(y_index, groups, fraction, rng, train_only)
        self._fit_input_stats(X, train)
        Y = np.eye(n_classes, dtype=np.float32)[y_index]
        epoch_rows = self._epoch_rows(train)
        batch = min(self.batch_size, len(epoch_rows))
        n_batches = len(epoch_rows) // batch

        orders: dict[int, np.ndarray] = {}

        def make_batch(epoch: int, index: int) -> tuple[np.ndarray, np.ndarray]:
            if epoch not in orders:  # one shuffled order per epoch, from (seed, epoch) alone
                orders.clear()
                orders[epoch] = np.random.default_rng([seed, epoch]).permutation(epoch_rows)
            rows = orders[epoch][index * batch : (index + 1) * batch]
            return self._train_batch(X, Y, rows, np.random.default_rng([seed, epoch, index]))

        with seeded(seed):
            self.model_ = self._compiled_network(keras, n_classes, n_batches * self.max_epochs)
            batches = _dataset_class(keras)(n_batches, make_batch)
            monitor = _monitor_class(keras)(self, batches, X, y_index, valid, epoch_callback)
            self.model_.fit(
                batches, epochs=self.max_epochs, verbose=0, shuffle=False, callbacks=[monitor]
            )
        if monitor.best_weights is not None:
            self.model_.set_weights(monitor.best_weights)
        self.history_ = monitor.history
        self.best_epoch_ = monitor.best_epoch
        self.n_epochs_ = len(monitor.history["loss"])
        self.n_params_ = int(self.model_.count_params())
        self.backend_ = keras.backend.backend()
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """``(n_rows, n_classes)`` probabilities, columns in the order of ``classes_``."""
        check_is_fitted(self, "classes_")
        X, _ = self._check_X(X, reset=False)
        return self._proba_rows(X)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each row."""
        proba = self.predict_proba(X)  # first: it raises NotFittedError before fit
        return self.classes_[proba.argmax(axis=1)]

    # --- pickling: the network travels as its weights ---------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        # a copy: object.__getstate__ hands out the live __dict__
        state = dict(super().__getstate__())
        model = state.pop("model_", None)
        if model is not None:
            state["_weights"] = _weights(model)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        weights = state.pop("_weights", None)
        super().__setstate__(state)
        if weights is not None:
            keras = import_keras()
            self.model_ = self._network(keras, self._network_input_shape(), len(self.classes_))
            self.model_.set_weights(weights)

    # --- helpers ----------------------------------------------------------------------------
    def _seed(self) -> int:
        if self.random_state is None:
            return int(np.random.SeedSequence().entropy % (2**31))
        if isinstance(self.random_state, bool) or not isinstance(
            self.random_state, int | np.integer
        ):
            raise ValueError(
                f"random_state must be an int or None, got {self.random_state!r} "
                f"({type(self.random_state).__name__})"
            )
        return int(self.random_state) % (2**31)

    def _check_X(self, X: Any, y: Any = None, *, reset: bool) -> tuple[np.ndarray, Any]:
        """``(X, y)`` validated as scikit-learn does: ``X`` dense, finite, float32 (no copy when
        it already is), at least one row and feature, one row per label; ``y`` 1-D (a column
        is raveled with a warning). ``reset`` (fit) learns ``n_features_in_`` and the row
        shape, otherwise they are checked."""
        options: dict[str, Any] = {"dtype": np.float32, "allow_nd": self._row_ndim != (1,)}
        if reset:
            X, y = validate_data(self, X, y, reset=True, **options)
        elif self._fixed_row_length or hasattr(X, "columns"):  # a frame's columns: by name
            X = validate_data(self, X, reset=False, **options)
        else:  # clips of any length: the row shape check below says what must match
            X = check_array(X, input_name="X", estimator=self, **options)
        if X.ndim - 1 not in self._row_ndim:
            want = " or ".join(f"{d + 1}-D" for d in self._row_ndim)
            raise ValueError(f"{type(self).__name__} expects {want} input, got shape {X.shape}")
        if reset:
            self.input_shape_ = tuple(int(s) for s in X.shape[1:])
        else:
            self._check_row_shape(tuple(X.shape[1:]))
        return X, y

    def _check_row_shape(self, shape: tuple[int, ...]) -> None:
        if shape != tuple(self.input_shape_):
            raise ValueError(
                f"{type(self).__name__} was fitted on rows of shape {tuple(self.input_shape_)}, "
                f"got rows of shape {shape}"
            )

    def _learning_rate(self, keras: Any, total_steps: int) -> Any:
        """The step size: constant (as the seed author's Adam)."""
        return self.learning_rate

    def _compiled_network(self, keras: Any, n_classes: int, total_steps: int) -> Any:
        model = self._network(keras, self._network_input_shape(), n_classes)
        optimizer = keras.optimizers.AdamW(
            learning_rate=self._learning_rate(keras, total_steps), weight_decay=self.weight_decay
        )
        optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
        model.compile(
            optimizer=optimizer,
            loss=keras.losses.CategoricalCrossentropy(from_logits=True),
        )
        return model

    def _network_input_shape(self) -> tuple[int, ...]:
        return tuple(self.input_shape_)

    def _logits(self, x: np.ndarray) -> np.ndarray:
        """Logits of a batch, computed in fixed-size padded chunks (one compiled shape)."""
        step = self._predict_batch
        out = []
        for start in range(0, len(x), step):
            part = x[start : start + step]
            if len(part) < step:
                padded = np.zeros((step, *part.shape[1:]), dtype=np.float32)
                padded[: len(part)] = part
                part = padded
            out.append(np.asarray(self.model_.predict_on_batch(part))[: len(x) - start])
        return np.concatenate(out)[: len(x)]


class CropClassifier(KerasClassifier):
    """Base of networks trained on random crops of whole clips and predicting by crop vote.

    Extra shared parameters (every crop subclass accepts them):

    Parameters:
        crop_fraction: crop length as a share of the clip length (0.1 of 30 s = 3 s).
        crops_per_clip: random crops of each training clip per epoch.
        n_crops: evenly spaced crops per clip averaged at prediction (and validation).
        time_masks, time_mask: SpecAugment time masking: this many masks per training crop,
            each up to ``time_mask`` × the crop length wide.
        mixup_alpha: Beta(alpha, alpha) mixup of training crops (0: off).

    The learning rate follows a cosine decay over ``max_epochs``. Inputs are standardized
    with statistics of the training rows: per frequency row for spectrograms (``(n, H, W)``),
    one mean and scale for waveforms (``(n, T)``).
    """

    _predict_batch = 128
    _fixed_row_length = False

    def _check_params(self) -> None:
        super()._check_params()
        check_number(self, "crop_fraction", low=0.0, high=1.0, low_open=True)
        check_int(self, "n_crops", 1)
        check_int(self, "crops_per_clip", 1)
        check_int(self, "time_masks", 0)
        check_number(self, "time_mask", low=0.0, high=1.0)
        check_number(self, "mixup_alpha", low=0.0)

    def _before_fit(self, keras: Any) -> None:
        self.data_format_ = None  # fitting follows the current Keras setting
        self.data_format_ = self._data_format()

    def _check_row_shape(self, shape: tuple[int, ...]) -> None:
        """Clips may differ in length from the training ones (the crops are what counts)."""
        fitted = tuple(self.input_shape_)
        if len(shape) != len(fitted) or shape[:-1] != fitted[:-1]:
            raise ValueError(
                f"{type(self).__name__} was fitted on clips of shape {fitted}, got {shape}"
            )
        if shape[-1] < self._crop_length():
            raise ValueError(
                f"clips of {shape[-1]} time steps are shorter than the crops "
                f"({self._crop_length()} steps)"
            )

    def _epoch_rows(self, train: np.ndarray) -> np.ndarray:
        """``crops_per_clip`` random crops of every training clip per epoch."""
        return np.repeat(train, self.crops_per_clip)

    def _learning_rate(self, keras: Any, total_steps: int) -> Any:
        """Cosine decay from ``learning_rate`` to 5 % of it over the whole budget."""
        return keras.optimizers.schedules.CosineDecay(
            self.learning_rate, decay_steps=max(1, total_steps), alpha=0.05
        )

    def _crop_length(self) -> int:
        return crops.crop_length(self.input_shape_[-1], self.crop_fraction)

    def _network_input_shape(self) -> tuple[int, ...]:
        return (*self.input_shape_[:-1], self._crop_length())

    def _fit_input_stats(self, X: np.ndarray, rows: np.ndarray) -> None:
        """Mean and scale over the training rows (per frequency row of a spectrogram), in
        chunks so the training rows are never copied at once."""
        per_row = X.ndim == 3
        total = np.zeros(X.shape[1] if per_row else 1)
        total_sq = np.zeros_like(total)
        axes = (0, 2) if per_row else (0, 1)
        for start in range(0, len(rows), 64):
            chunk = X[rows[start : start + 64]].astype(np.float64)
            total += chunk.sum(axis=axes)
            total_sq += np.square(chunk).sum(axis=axes)
        count = len(rows) * X.shape[-1]
        mean = total / count
        std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
        shape = (-1, 1) if per_row else (1,)
        self.input_mean_ = mean.astype(np.float32).reshape(shape)
        self.input_scale_ = np.where(std > 1e-6, std, 1.0).astype(np.float32).reshape(shape)

    def _standardize(self, batch: np.ndarray) -> np.ndarray:
        batch -= self.input_mean_
        batch /= self.input_scale_
        return batch

    def _augment(self, batch: np.ndarray, rng: np.random.Generator) -> None:
        """In-place augmentation of a standardized training batch (time masks here)."""
        width = int(round(self.time_mask * batch.shape[-1]))
        crops.mask_time(batch, self.time_masks, width, rng)

    def _train_batch(
        self, X: np.ndarray, Y: np.ndarray, rows: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        x = self._standardize(crops.random_crops(X, rows, self._crop_length(), rng))
        self._augment(x, rng)
        x, y = crops.mixup(x, Y[rows], self.mixup_alpha, rng)
        return self._network_batch(x), y

    def _data_format(self) -> str:
        """Keras' image data format, fixed at fit (``channels_last`` unless the user set
        ``channels_first``, which the torch backend runs faster on CPU)."""
        fitted = getattr(self, "data_format_", None)
        return fitted or import_keras().config.image_data_format()

    def _network_batch(self, x: np.ndarray) -> np.ndarray:
        """Shape a batch of crops for the network: a channel axis (a view, no copy)."""
        return x[:, None] if self._data_format() == "channels_first" else x[..., None]

    def _logits(self, x: np.ndarray) -> np.ndarray:
        return super()._logits(self._network_batch(x))

    def _proba_rows(self, X: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Crop-vote probabilities: the mean over ``n_crops`` evenly spaced crops per clip."""
        idx = np.arange(len(X)) if rows is None else rows
        length, n_crops = self._crop_length(), self.n_crops
        clips_per_chunk = max(1, self._predict_batch // n_crops)
        out = np.empty((len(idx), len(self.classes_)), dtype=np.float64)
        for start in range(0, len(idx), clips_per_chunk):
            part = idx[start : start + clips_per_chunk]
            batch = self._standardize(crops.clip_crops(X[part], length, n_crops))
            out[start : start + len(part)] = crops.vote(softmax(self._logits(batch)), n_crops)
        return out


def _weights(model: Any) -> list[np.ndarray]:
    """The network's weights as NumPy copies (``Model.get_weights`` goes through a NumPy
    conversion that NumPy 2 deprecates, warning on every call)."""
    return [np.array(v.value) for v in model.weights]


def _validation_split(
    y: np.ndarray, groups: Any, fraction: float, rng: np.random.Generator, train_only: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(train_rows, valid_rows)``: about ``fraction`` of the rows held out, stratified by
    class, whole groups at a time when ``groups`` is given. Every class keeps at least one
    training unit; a class with one unit is never held out. Rows ``train_only`` (augmented
    copies) are never validated on: those of a held-out group are on neither side."""
    rows = np.arange(len(y))
    if fraction <= 0:
        return rows, rows[:0]
    if groups is None:
        units, unit_of_row = rows, rows
    else:
        units, first, unit_of_row = np.unique(groups, return_index=True, return_inverse=True)
        units = first  # one representative row per group
    unit_label = y[units]
    held = []
    for label in np.unique(unit_label):
        members = np.flatnonzero(unit_label == label)
        n_valid = min(len(members) - 1, int(round(fraction * len(members))))
        if n_valid > 0:
            held.append(rng.permutation(members)[:n_valid])
    if not held:
        return rows, rows[:0]
    held_units = np.sort(np.concatenate(held))
    is_valid = np.isin(unit_of_row, held_units)
    if train_only is not None:
        return rows[~is_valid], rows[is_valid & ~np.asarray(train_only, dtype=bool)]
    return rows[~is_valid], rows[is_valid]
