"""The numpy port of MSD_musicnn (:mod:`benchmark.features._musicnn`) against a plain,
trick-free reading of musicnn's ``models.py`` (every layer as written there: batch norm on every
frequency before the max, the three temporal convolutions apart, TensorFlow's ``same``
padding), on generated weights (always) and on the real checkpoint (when musicnn is installed);
its input (log-mel against musicnn's ``extractor.batch_data`` recipe) and patching.
``benchmarks/musicnn_fidelity.py`` compares with the original TensorFlow graph itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tf_bundle import write_tf_checkpoint

from benchmark.errors import ConfigError
from benchmark.features import _musicnn as mnn
from benchmark.features._tf_checkpoint import CheckpointError, TfCheckpoint

pytest.importorskip("librosa")


def random_weights(seed: int = 0) -> dict[str, np.ndarray]:
    """MSD_musicnn-shaped weights; batch-norm scales of both signs (the port's max trick)."""
    rng = np.random.default_rng(seed)
    t: dict[str, np.ndarray] = {}
    for name, shape in mnn.CONV_SHAPES.items():
        fan_in = shape[0] * shape[1]
        t[f"{name}/kernel"] = rng.standard_normal(shape) / np.sqrt(fan_in)
        t[f"{name}/bias"] = 0.1 * rng.standard_normal(shape[-1])
    for i, width in enumerate(mnn.BN_WIDTHS):
        name = f"batch_normalization_{i}" if i else "batch_normalization"
        t[f"{name}/gamma"] = rng.standard_normal(width)
        t[f"{name}/beta"] = 0.1 * rng.standard_normal(width)
        t[f"{name}/moving_mean"] = 0.1 * rng.standard_normal(width)
        t[f"{name}/moving_variance"] = rng.uniform(0.5, 2.0, width)
    t["dense/kernel"] = rng.standard_normal(mnn.DENSE_SHAPE) / np.sqrt(mnn.DENSE_SHAPE[0])
    t["dense/bias"] = 0.1 * rng.standard_normal(200)
    return {k: v.astype(np.float32) for k, v in t.items()}


def reference(x: np.ndarray, t: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """musicnn's models.build_musicnn, layer by layer, in float64 (inference mode)."""
    relu = lambda v: np.maximum(v, 0)  # noqa: E731

    def bn(v, name):
        g, b, m, var = (
            t[f"{name}/{k}"] for k in ("gamma", "beta", "moving_mean", "moving_variance")
        )
        return (v - m) / np.sqrt(var + 1e-3) * g + b

    def conv(v, name, same=False):  # v: (n, T, F), one input channel
        k = t[f"{name}/kernel"][:, :, 0, :].astype(np.float64)
        kh, kw = k.shape[:2]
        if same:  # TensorFlow: the extra row of an even kernel goes after
            v = np.pad(v, ((0, 0), ((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2)))
        win = np.lib.stride_tricks.sliding_window_view(v, (kh, kw), axis=(1, 2))
        return relu(np.tensordot(win, k, axes=([3, 4], [0, 1])) + t[f"{name}/bias"])

    pad3 = lambda v: np.pad(v, ((0, 0), (3, 3), (0, 0)))  # noqa: E731
    x = bn(x.astype(np.float64), "batch_normalization")
    f74 = bn(conv(pad3(x), "conv2d"), "batch_normalization_1").max(axis=2)
    f77 = bn(conv(pad3(x), "conv2d_1"), "batch_normalization_2").max(axis=2)
    temporal = [
        bn(conv(x, f"conv2d_{i}", same=True), f"batch_normalization_{i + 1}").max(axis=2)
        for i in (2, 3, 4)
    ]
    front = np.concatenate([f74, f77, *temporal], axis=2)
    c1 = bn(conv(pad3(front), "conv2d_5"), "batch_normalization_6")[:, :, 0]
    c2 = bn(conv(pad3(c1), "conv2d_6"), "batch_normalization_7")[:, :, 0] + c1
    c3 = bn(conv(pad3(c2), "conv2d_7"), "batch_normalization_8")[:, :, 0] + c2
    mid = np.concatenate([front, c1, c2, c3], axis=2)
    max_pool, mean_pool = mid.max(axis=1), mid.mean(axis=1)
    flat = np.stack([max_pool, mean_pool], axis=2).reshape(len(x), -1)
    hidden = relu(bn(flat, "batch_normalization_9") @ t["dense/kernel"] + t["dense/bias"])
    pen = bn(hidden, "batch_normalization_10")
    return {"penultimate": pen, "max_pool": max_pool, "mean_pool": mean_pool}


def spectrogram_patches(n: int, seed: int = 1) -> np.ndarray:
    """Log-mel-like patches: values in musicnn's range (0 to ~5), some structure in time."""
    rng = np.random.default_rng(seed)
    base = rng.gamma(2.0, 0.6, size=(n, mnn.N_FRAMES, mnn.N_MELS))
    return (base * np.linspace(1.5, 0.5, mnn.N_MELS)).astype(np.float32)


def assert_layers_close(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    for layer, width in mnn.LAYERS.items():
        assert got[layer].shape == (len(want[layer]), width)
        assert got[layer].dtype == np.float32
        scale = max(1.0, float(np.abs(want[layer]).max()))
        np.testing.assert_allclose(got[layer], want[layer], atol=2e-4 * scale, rtol=1e-4)


@pytest.fixture(scope="module")
def generated_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("ckpt") / "MSD_musicnn"
    folder.mkdir()
    weights = random_weights()
    write_tf_checkpoint(str(folder) + "/", weights, crc=False)
    return folder, weights


def test_port_matches_models_py_on_generated_weights(generated_checkpoint):
    folder, weights = generated_checkpoint
    w = mnn.load_weights(str(folder))
    assert (w.timbral[0][1].scale < 0).any() and (w.timbral[0][1].scale > 0).any()
    x = spectrogram_patches(2)
    assert_layers_close(mnn.embed_patches(x, w), reference(x, weights))


def test_port_matches_models_py_on_the_real_weights():
    folder = mnn.checkpoint_dir()
    if folder is None:
        pytest.skip(f"musicnn's weights are not installed ({mnn.INSTALL_HINT})")
    ckpt = TfCheckpoint(folder)
    weights = {n: ckpt[n] for n in ckpt.names() if "Adam" not in n}
    x = spectrogram_patches(2, seed=3)
    assert_layers_close(mnn.embed_patches(x), reference(x, weights))


def test_a_checkpoint_of_another_network_is_refused(tmp_path):
    weights = random_weights()
    weights["conv2d_5/kernel"] = weights["conv2d_5/kernel"][:, :, :, :32]
    write_tf_checkpoint(tmp_path / "other", weights, crc=False)
    with pytest.raises(CheckpointError, match=r"not an MSD_musicnn checkpoint: conv2d_5/kernel"):
        mnn.load_weights(str(tmp_path / "other"))
    weights = random_weights()
    del weights["dense/kernel"]
    write_tf_checkpoint(tmp_path / "partial", weights, crc=False)
    with pytest.raises(CheckpointError, match=r"dense/kernel has shape None"):
        mnn.load_weights(str(tmp_path / "partial"))


def test_patches_are_checked():
    with pytest.raises(ValueError, match=r"\(n, 187, 96\)"):
        mnn.embed_patches(np.zeros((2, 100, 96), np.float32))


def test_missing_weights_give_the_install_hint(monkeypatch):
    real = mnn.importlib.util.find_spec
    monkeypatch.setattr(
        mnn.importlib.util, "find_spec", lambda name: None if name == "musicnn" else real(name)
    )
    assert mnn.checkpoint_dir() is None
    reason = mnn.musicnn_missing()
    assert reason is not None and "pip install --no-deps musicnn==0.1.0" in reason
    mnn.load_weights.cache_clear()
    try:
        with pytest.raises(ConfigError, match="--no-deps musicnn==0.1.0"):
            mnn.load_weights()
    finally:
        mnn.load_weights.cache_clear()


def test_log_mel_is_musicnns_input_recipe():
    import librosa

    rng = np.random.default_rng(0)
    y = (0.1 * rng.standard_normal(mnn.SAMPLE_RATE * 4)).astype(np.float32)
    got = mnn.log_mel(y)
    mel = librosa.feature.melspectrogram(y=y, sr=16000, hop_length=256, n_fft=512, n_mels=96).T
    want = np.log10(10000 * mel.astype(np.float16) + 1)  # extractor.batch_data
    assert got.shape == want.shape == (1 + len(y) // 256, 96)
    assert got.dtype == np.float32
    # float16 rounding may round the two float32 mel values to neighbouring halves
    np.testing.assert_allclose(got, want, atol=2e-3)


def test_patches_keep_real_audio_only():
    mel = np.ones((1876, 96), np.float32)  # 30 s at 16 kHz
    assert mnn.patches(mel).shape == (10, 187, 96)
    assert len(mnn.patches(mel, n_audio_frames=2 * 187 + 94)) == 3  # half a patch counts
    assert len(mnn.patches(mel, n_audio_frames=2 * 187 + 93)) == 2
    assert len(mnn.patches(mel, n_audio_frames=10)) == 1  # the first always
    short = mnn.patches(np.ones((120, 96), np.float32))
    assert short.shape == (1, 187, 96) and short[0, 120:].max() == 0
