"""Neural families on Keras 3 (optional extra ``neural``: ``pip install 'genrebench[neural]'``).

* ``mlp`` (tabular): the seed author's 5-layer tanh network as the first trial
  (``architecture: seed``) and a tuned MLP (depth, width, activation, dropout, weight decay,
  batch norm) for every tabular feature set.
* ``cnn2d`` (image: ``spectrogram_img``, ``logmel``): a compact CNN (a few 10k parameters,
  batch norm, pooling over time — or over everything — instead of a large dense head, ~29k
  parameters at the defaults) trained on random 3-second crops
  with SpecAugment-style time/frequency masking and mixup; a clip's probabilities are the mean
  over evenly spaced crops covering it.
* ``cnn1d`` (waveform): a sample-level 1-D CNN (strided first layer, kernels of 3, max-pooling
  by 3) on raw audio, with the same crop training and voting.

The estimators (``MLPKerasClassifier``, ``CNN2DClassifier``, ``CNN1DClassifier``) share the
training loop of :mod:`benchmark.models._keras`: early stopping on a split of the training data
passed to ``fit``, seeded, float32. Keras is imported only when a model is built or fitted, so
listing families works without the extra; the families skip with an install hint without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sklearn.pipeline import Pipeline
from sklearn.utils import Tags

from benchmark.errors import ConfigError
from benchmark.models._common import make_pipeline, take_params
from benchmark.models._estimator_params import check_int, check_number, store_params
from benchmark.models._family import Family
from benchmark.models._keras import CropClassifier, KerasClassifier

__all__ = [
    "CNN1D",
    "CNN1DClassifier",
    "CNN2D",
    "CNN2DClassifier",
    "MLP",
    "MLPKerasClassifier",
    "SEED_ARCHITECTURE",
    "build_cnn1d",
    "build_cnn2d",
    "build_mlp",
]

#: what the families need importable (the install hint names the extra in the README)
REQUIRES = ("keras", "jax")

#: the seed author's network (57 → 20 → 20 → 15 → 12 → 10, tanh, Adam at 1e-3)
SEED_ARCHITECTURE: dict[str, Any] = {
    "hidden_layer_sizes": (20, 20, 15, 12),
    "activation": "tanh",
    "dropout": 0.0,
    "batch_norm": False,
    "learning_rate": 1e-3,
    "weight_decay": 0.0,
    "batch_size": 32,
}

_ACTIVATIONS = ("relu", "tanh", "elu", "gelu", "selu")
_BN_MOMENTUM = 0.9  # small data: the moving statistics must settle within a few hundred steps


def _conv_block(keras: Any, h: Any, kind: str, filters: int, pool: Any, fmt: str) -> Any:
    """Conv (kernel 3, no bias) → batch norm → ReLU → max-pool, in data format ``fmt``."""
    layers = keras.layers
    conv = layers.Conv2D if kind == "2d" else layers.Conv1D
    pooling = layers.MaxPooling2D if kind == "2d" else layers.MaxPooling1D
    h = conv(filters, 3, padding="same", use_bias=False, data_format=fmt)(h)
    h = layers.BatchNormalization(axis=_channel_axis(fmt), momentum=_BN_MOMENTUM)(h)
    h = layers.ReLU()(h)
    return pooling(pool, data_format=fmt)(h)


def _check_conv_params(est: CropClassifier, min_blocks: int) -> None:
    check_int(est, "filters", 1)
    check_int(est, "max_filters", 1)
    check_int(est, "n_blocks", min_blocks)
    check_number(est, "dropout", low=0.0, high=0.9)


def _channel_axis(fmt: str) -> int:
    return 1 if fmt == "channels_first" else -1


def _with_channel(shape: tuple[int, ...], fmt: str) -> tuple[int, ...]:
    return (1, *shape) if fmt == "channels_first" else (*shape, 1)


class MLPKerasClassifier(KerasClassifier):
    """A fully connected network on tabular rows (standardize them first: the family's
    Pipeline does).

    Parameters:
        hidden_layer_sizes: units of each hidden layer.
        activation: hidden activation (``relu``, ``tanh``, ``elu``, ``gelu``, ``selu``).
        dropout: dropout rate after each hidden layer.
        batch_norm: batch normalization before each hidden activation.
        (training parameters: see :class:`~benchmark.models._keras.KerasClassifier`)
    """

    def __init__(
        self,
        *,
        hidden_layer_sizes: tuple[int, ...] = (64, 64),
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        batch_size: int = 32,
        max_epochs: int = 200,
        patience: int = 20,
        validation_fraction: float = 0.1,
        random_state: int | None = None,
    ) -> None:
        store_params(self, locals())

    def _check_params(self) -> None:
        super()._check_params()
        sizes = self.hidden_layer_sizes
        if not isinstance(sizes, tuple | list) or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in sizes
        ):
            raise ValueError(
                "The 'hidden_layer_sizes' parameter of MLPKerasClassifier must be a tuple of "
                f"positive ints. Got {sizes!r} instead."
            )
        if self.activation not in _ACTIVATIONS:
            raise ValueError(
                "The 'activation' parameter of MLPKerasClassifier must be one of "
                f"{_ACTIVATIONS}. Got {self.activation!r} instead."
            )
        check_number(self, "dropout", low=0.0, high=0.9)
        if not isinstance(self.batch_norm, bool):
            raise ValueError(
                "The 'batch_norm' parameter of MLPKerasClassifier must be a bool. "
                f"Got {self.batch_norm!r} instead."
            )

    def _network(self, keras: Any, input_shape: tuple[int, ...], n_classes: int) -> Any:
        layers = keras.layers
        inputs = keras.Input(shape=input_shape)
        h = inputs
        for units in self.hidden_layer_sizes:
            h = layers.Dense(units, use_bias=not self.batch_norm)(h)
            if self.batch_norm:
                h = layers.BatchNormalization(momentum=_BN_MOMENTUM)(h)
            h = layers.Activation(self.activation)(h)
            if self.dropout > 0:
                h = layers.Dropout(self.dropout)(h)
        return keras.Model(inputs, layers.Dense(n_classes)(h))


class CNN2DClassifier(CropClassifier):
    """A compact CNN on spectrogram clips ``(n, H, W)`` (row 0 = lowest frequency, time last).

    The input rows are first averaged in groups of ``freq_pool`` (Kaggle's 216 image rows
    are 128 mel bands drawn taller: halving them costs little and halves the compute); then
    ``n_blocks`` blocks of conv 3x3 → batch norm → ReLU → max-pool 2x2, the filters doubling
    from ``filters`` up to ``max_filters``; then ``pooling``: ``"global"`` averages over
    frequency and time (a few 10k parameters, no dense head), ``"time"`` averages over time
    only and keeps the pooled frequency bands (the classifier sees where in the spectrum a
    pattern sits); dropout; one dense layer to the classes.

    Parameters:
        filters, max_filters, n_blocks, pooling, dropout: the network (above).
        freq_masks, freq_mask: SpecAugment frequency masking per training crop, each up to
            ``freq_mask`` × the height wide.
        (crop and training parameters: see :class:`~benchmark.models._keras.CropClassifier`)
    """

    _row_ndim = (2,)

    def __sklearn_tags__(self) -> Tags:
        """Rows are spectrograms, so ``X`` is 3-D (scikit-learn's 2-D checks do not apply)."""
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        return tags

    def __init__(
        self,
        *,
        freq_pool: int = 2,
        filters: int = 8,
        max_filters: int = 64,
        n_blocks: int = 4,
        pooling: str = "time",
        dropout: float = 0.3,
        learning_rate: float = 3e-3,
        weight_decay: float = 1e-3,
        batch_size: int = 32,
        max_epochs: int = 30,
        patience: int = 8,
        validation_fraction: float = 0.1,
        crop_fraction: float = 0.1,
        crops_per_clip: int = 2,
        n_crops: int = 10,
        time_masks: int = 1,
        time_mask: float = 0.2,
        freq_masks: int = 1,
        freq_mask: float = 0.15,
        mixup_alpha: float = 0.2,
        random_state: int | None = None,
    ) -> None:
        store_params(self, locals())

    def _check_params(self) -> None:
        super()._check_params()
        _check_conv_params(self, min_blocks=1)
        check_int(self, "freq_pool", 1)
        check_int(self, "freq_masks", 0)
        check_number(self, "freq_mask", low=0.0, high=1.0)
        if self.pooling not in ("global", "time"):
            raise ValueError(
                "The 'pooling' parameter of CNN2DClassifier must be 'global' or 'time'. "
                f"Got {self.pooling!r} instead."
            )

    def _augment(self, batch: Any, rng: Any) -> None:
        super()._augment(batch, rng)
        from benchmark.models import _crops as crops

        height = int(round(self.freq_mask * batch.shape[1]))
        crops.mask_frequency(batch, self.freq_masks, height, rng)

    def _network(self, keras: Any, input_shape: tuple[int, ...], n_classes: int) -> Any:
        layers = keras.layers
        fmt = self._data_format()
        height, width = input_shape[0], input_shape[-1]
        inputs = keras.Input(shape=_with_channel((height, width), fmt))
        h, f = inputs, self.filters
        pool = min(self.freq_pool, height)
        if pool > 1:
            h = layers.AveragePooling2D(pool_size=(pool, 1), data_format=fmt)(h)
            height //= pool
        for _ in range(self.n_blocks):
            pool = (2 if height >= 2 else 1, 2 if width >= 2 else 1)
            h = _conv_block(keras, h, "2d", f, pool, fmt)
            height, width = height // pool[0], width // pool[1]
            f = min(2 * f, self.max_filters)
        if self.pooling == "global":
            h = layers.GlobalAveragePooling2D(data_format=fmt)(h)
        else:
            h = layers.AveragePooling2D(pool_size=(1, width), data_format=fmt)(h)
            h = layers.Flatten(data_format=fmt)(h)
        if self.dropout > 0:
            h = layers.Dropout(self.dropout)(h)
        return keras.Model(inputs, layers.Dense(n_classes)(h))


class CNN1DClassifier(CropClassifier):
    """A sample-level 1-D CNN on waveform clips ``(n, T)`` (Lee et al. 2017, made small).

    A strided first layer (kernel and stride ``stem_stride``) → batch norm → ReLU, then up to
    ``n_blocks`` blocks of conv 3 → batch norm → ReLU → max-pool 3 (fewer when the crop runs
    out of samples), the filters doubling every second block from ``filters`` up to
    ``max_filters``; global average pooling; dropout; one dense layer.

    Parameters:
        filters, max_filters, n_blocks, stem_stride, dropout: the network (above).
        (crop and training parameters: see :class:`~benchmark.models._keras.CropClassifier`)
    """

    _row_ndim = (1,)

    def __init__(
        self,
        *,
        filters: int = 16,
        max_filters: int = 64,
        n_blocks: int = 6,
        stem_stride: int = 3,
        dropout: float = 0.3,
        learning_rate: float = 2e-3,
        weight_decay: float = 1e-3,
        batch_size: int = 32,
        max_epochs: int = 40,
        patience: int = 8,
        validation_fraction: float = 0.1,
        crop_fraction: float = 0.1,
        crops_per_clip: int = 2,
        n_crops: int = 10,
        time_masks: int = 1,
        time_mask: float = 0.1,
        mixup_alpha: float = 0.2,
        random_state: int | None = None,
    ) -> None:
        store_params(self, locals())

    def _check_params(self) -> None:
        super()._check_params()
        _check_conv_params(self, min_blocks=0)
        check_int(self, "stem_stride", 1)

    def _network(self, keras: Any, input_shape: tuple[int, ...], n_classes: int) -> Any:
        layers = keras.layers
        fmt = self._data_format()
        length = input_shape[-1]
        stride = min(self.stem_stride, length)
        inputs = keras.Input(shape=_with_channel((length,), fmt))
        stem = layers.Conv1D(self.filters, stride, strides=stride, use_bias=False, data_format=fmt)
        h = stem(inputs)
        h = layers.BatchNormalization(axis=_channel_axis(fmt), momentum=_BN_MOMENTUM)(h)
        h = layers.ReLU()(h)
        length //= stride
        for block in range(self.n_blocks):
            if length < 3:
                break
            f = min(self.filters * 2 ** ((block + 1) // 2), self.max_filters)
            h = _conv_block(keras, h, "1d", f, 3, fmt)
            length //= 3
        h = layers.GlobalAveragePooling1D(data_format=fmt)(h)
        if self.dropout > 0:
            h = layers.Dropout(self.dropout)(h)
        return keras.Model(inputs, layers.Dense(n_classes)(h))


# --- families ---------------------------------------------------------------------------------
#: training-budget parameters every neural family accepts besides its tuned ones; their search
#: spaces hold them as one-choice categoricals, so the budget is visible and stored with results
_BUDGET = {"max_epochs", "patience", "batch_size"}

_MLP_TUNED = {
    "architecture",
    "n_layers",
    "width",
    "activation",
    "dropout",
    "batch_norm",
    "learning_rate",
    "weight_decay",
}


def build_mlp(params: Mapping[str, Any], seed: int) -> Pipeline:
    """Standardize → :class:`MLPKerasClassifier`.

    ``architecture: seed`` is the seed author's network (its other parameters are fixed, only
    the budget applies); ``architecture: tuned`` takes ``n_layers`` hidden layers of ``width``
    units and the other tuned parameters.
    """
    p = take_params("mlp", params, _MLP_TUNED | _BUDGET)
    budget = {k: p.pop(k) for k in _BUDGET if k in p}
    architecture = p.pop("architecture", "tuned")
    if architecture == "seed":
        extra = sorted(p)
        if extra:
            raise ConfigError(f"mlp: architecture 'seed' is fixed; it takes no {extra}")
        kwargs = {**SEED_ARCHITECTURE, **budget}
    elif architecture == "tuned":
        n_layers, width = int(p.pop("n_layers", 2)), int(p.pop("width", 64))
        kwargs = {"hidden_layer_sizes": (width,) * n_layers, **p, **budget}
    else:
        raise ConfigError(f"mlp: architecture must be 'seed' or 'tuned', got {architecture!r}")
    return make_pipeline(MLPKerasClassifier(random_state=seed, **kwargs), scale=True)


_CROP_TUNED = {
    "filters",
    "n_blocks",
    "dropout",
    "learning_rate",
    "weight_decay",
    "mixup_alpha",
    "time_mask",
    "crop_fraction",
    "crops_per_clip",
    "n_crops",
}


def build_cnn2d(params: Mapping[str, Any], seed: int) -> Pipeline:
    """:class:`CNN2DClassifier` (it standardizes its crops itself; no scaler step)."""
    extra = {"pooling", "freq_mask", "freq_pool"}
    p = take_params("cnn2d", params, _CROP_TUNED | _BUDGET | extra)
    return make_pipeline(CNN2DClassifier(random_state=seed, **p), scale=False)


def build_cnn1d(params: Mapping[str, Any], seed: int) -> Pipeline:
    """:class:`CNN1DClassifier` (it standardizes its crops itself; no scaler step)."""
    p = take_params("cnn1d", params, _CROP_TUNED | _BUDGET | {"stem_stride"})
    return make_pipeline(CNN1DClassifier(random_state=seed, **p), scale=False)


#: tiny networks, a few epochs and a high step size: the shared checks need wiring, not accuracy
_FAST_CROP = {
    "max_epochs": 4,
    "patience": 4,
    "filters": 4,
    "n_blocks": 2,
    "n_crops": 3,
    "learning_rate": 0.01,
    "crop_fraction": 0.25,
}

MLP = Family(
    name="mlp",
    input_kind="tabular",
    build=build_mlp,
    description="Keras MLP: the seed's tanh network first, then depth/width/dropout tuned",
    fast_params={"max_epochs": 15, "patience": 5, "width": 32, "n_layers": 1},
    requires=REQUIRES,
    extra="neural",
    trains_in_epochs=True,
)
CNN2D = Family(
    name="cnn2d",
    input_kind="image",
    build=build_cnn2d,
    description="Compact Keras CNN on spectrogram crops (SpecAugment, mixup, crop vote)",
    fast_params=_FAST_CROP,
    requires=REQUIRES,
    extra="neural",
    trains_in_epochs=True,
)
CNN1D = Family(
    name="cnn1d",
    input_kind="waveform",
    build=build_cnn1d,
    description="Sample-level Keras 1-D CNN on raw audio crops (mixup, crop vote)",
    fast_params=_FAST_CROP,
    requires=REQUIRES,
    extra="neural",
    trains_in_epochs=True,
)
