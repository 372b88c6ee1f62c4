"""The pure-numpy TensorFlow checkpoint reader: generated bundles (every dtype, shapes, prefix
compression, several blocks, damage of each kind) and the real MSD_musicnn checkpoint of the
installed musicnn wheel (skipped when it is not installed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tf_bundle import write_tf_checkpoint

from benchmark.features._musicnn import CONV_SHAPES, INSTALL_HINT, checkpoint_dir
from benchmark.features._tf_checkpoint import (
    CheckpointError,
    TfCheckpoint,
    crc32c,
    masked_crc32c,
)

TENSORS = {
    "model/conv2d/kernel": np.arange(7 * 3 * 1 * 4, dtype=np.float32).reshape(7, 3, 1, 4) / 10,
    "model/conv2d/bias": np.array([-1.5, 0.0, 2.25, 1e-30], np.float32),
    "model/dense/kernel": np.random.default_rng(0).standard_normal((5, 3)),
    "global_step": np.array(1234567, np.int64),
    "flags": np.array([True, False, True]),
    "ids": np.array([-3, 0, 7], np.int32),
    "bytes": np.arange(5, dtype=np.uint8),
    "half": np.array([0.5, -2.0], np.float16),
    "empty": np.zeros((0, 3), np.float32),
}


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    prefix = tmp_path / "model.ckpt-10"
    write_tf_checkpoint(prefix, TENSORS)
    return prefix


def test_crc32c_known_values():
    assert crc32c(b"") == 0
    assert crc32c(b"123456789") == 0xE3069283  # the standard CRC-32C check value
    assert masked_crc32c(b"") == 0xA282EAD8


def test_reads_every_tensor_with_its_dtype_and_shape(bundle):
    ckpt = TfCheckpoint(bundle)
    assert ckpt.names() == sorted(TENSORS)
    for name, want in TENSORS.items():
        got = ckpt.read(name, verify=True)
        assert got.dtype == want.dtype, name
        assert got.shape == want.shape == ckpt.shape(name), name
        np.testing.assert_array_equal(got, want)
    assert "global_step" in ckpt and "nope" not in ckpt
    assert ckpt["global_step"].ndim == 0
    ckpt["model/conv2d/bias"][0] = 99  # a fresh, writable array each time
    assert ckpt["model/conv2d/bias"][0] == -1.5


def test_a_folder_is_the_prefix_of_a_checkpoint_saved_without_a_name(tmp_path):
    folder = tmp_path / "MSD_like"
    folder.mkdir()
    write_tf_checkpoint(str(folder) + "/", {"w": np.ones(2, np.float32)})
    assert (folder / ".index").is_file()
    assert TfCheckpoint(folder).names() == ["w"]


def test_unknown_name_says_which_file(bundle):
    with pytest.raises(KeyError, match="nope.*model.ckpt-10.index"):
        TfCheckpoint(bundle).read("nope")


def test_missing_index_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint index"):
        TfCheckpoint(tmp_path / "absent")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: b[:-1] + b"\0", "magic"),
        (lambda b: b[:20], "footer"),
        (lambda b: b[:5] + bytes([b[5] ^ 0xFF]) + b[6:], "CRC mismatch"),
    ],
    ids=["magic", "truncated", "flipped-byte"],
)
def test_damaged_index_is_refused(bundle, damage, message):
    index = Path(f"{bundle}.index")
    index.write_bytes(damage(index.read_bytes()))
    with pytest.raises(CheckpointError, match=message):
        TfCheckpoint(bundle)


def test_compressed_blocks_are_refused_with_the_reason(tmp_path):
    write_tf_checkpoint(tmp_path / "c", {"w": np.ones(2, np.float32)}, compression=1)
    with pytest.raises(CheckpointError, match="compressed table block"):
        TfCheckpoint(tmp_path / "c")


def test_damaged_data_is_caught(bundle):
    data = Path(f"{bundle}.data-00000-of-00001")
    raw = bytearray(data.read_bytes())
    ckpt = TfCheckpoint(bundle)
    entry = ckpt.entries["model/dense/kernel"]
    raw[entry.offset] ^= 0x01
    data.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="CRC mismatch in model/dense/kernel"):
        ckpt.read("model/dense/kernel", verify=True)
    data.write_bytes(bytes(raw[: entry.offset + 3]))
    with pytest.raises(CheckpointError, match="truncated"):
        ckpt.read("model/dense/kernel")


# --- the real checkpoint -----------------------------------------------------------------------
#: some of MSD_musicnn's variables (musicnn's models.build_musicnn, TF's auto names)
MSD_MUSICNN_SHAPES = {f"{n}/kernel": s for n, s in CONV_SHAPES.items()} | {
    "batch_normalization/gamma": (1,),
    "batch_normalization_9/moving_variance": (1506,),
    "dense/kernel": (1506, 200),
    "batch_normalization_10/moving_mean": (200,),
    "dense_1/kernel": (200, 50),
    "dense_1/bias": (50,),
}


@pytest.fixture(scope="module")
def msd_checkpoint() -> Path:
    folder = checkpoint_dir()
    if folder is None:
        pytest.skip(f"musicnn's weights are not installed ({INSTALL_HINT})")
    return folder


def test_reads_the_installed_msd_musicnn_checkpoint(msd_checkpoint):
    ckpt = TfCheckpoint(msd_checkpoint)
    names = ckpt.names()
    assert len(names) == 150  # 64 variables, 2 Adam slots of the 42 trainable, 2 Adam powers
    for name, shape in MSD_MUSICNN_SHAPES.items():
        assert ckpt.shape(name) == shape, name
        assert ckpt.dtype(name) == np.float32
    weights = [n for n in names if "Adam" not in n and not n.endswith("_power")]
    assert len(weights) == 11 * 4 + 8 * 2 + 2 * 2  # batch norms, convolutions, dense layers
    for name in ("batch_normalization/gamma", "conv2d_7/bias", "dense_1/bias"):
        assert np.isfinite(ckpt.read(name, verify=True)).all()
    variances = ckpt["batch_normalization_9/moving_variance"]
    assert (variances > 0).all()
