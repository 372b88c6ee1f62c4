"""A minimal writer of TensorFlow's checkpoint format (a tensor bundle: a LevelDB-table
``.index`` of ``BundleEntryProto`` values and a raw ``.data-00000-of-00001`` file), so the
pure-numpy reader (:mod:`benchmark.features._tf_checkpoint`) and the musicnn port can be tested
on generated checkpoints without TensorFlow."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmark.features._tf_checkpoint import DTYPES, TABLE_MAGIC, masked_crc32c

__all__ = ["write_tf_checkpoint"]

_ENUM = {dtype: enum for enum, dtype in DTYPES.items()}


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, value: int | bytes, fixed32: bool = False) -> bytes:
    if fixed32:
        return _varint(number << 3 | 5) + int(value).to_bytes(4, "little")  # type: ignore[arg-type]
    if isinstance(value, bytes):
        return _varint(number << 3 | 2) + _varint(len(value)) + value
    return _varint(number << 3) + _varint(value)


def _block(entries: list[tuple[bytes, bytes]], restart_every: int = 2) -> bytes:
    """Prefix-compressed entries, a restart point every ``restart_every`` entries."""
    out = bytearray()
    restarts = []
    previous = b""
    for i, (key, value) in enumerate(entries):
        shared = 0
        if i % restart_every == 0:
            restarts.append(len(out))
        else:
            while shared < min(len(key), len(previous)) and key[shared] == previous[shared]:
                shared += 1
        out += _varint(shared) + _varint(len(key) - shared) + _varint(len(value))
        out += key[shared:] + value
        previous = key
    if not restarts:
        restarts = [0]
    for r in restarts:
        out += r.to_bytes(4, "little")
    out += len(restarts).to_bytes(4, "little")
    return bytes(out)


def write_tf_checkpoint(
    prefix: Path | str, tensors: dict[str, np.ndarray], *, compression: int = 0, crc: bool = True
) -> Path:
    """Write ``tensors`` as the checkpoint ``prefix`` (``prefix.index`` and its data file);
    ``compression`` is the block type byte written (0: none, as TensorFlow writes bundles);
    ``crc=False`` leaves the tensors' CRCs out (the pure-Python CRC is slow on megabytes)."""
    prefix = str(prefix)
    data = bytearray()
    entries = [(b"", _field(1, 1) + _field(3, _field(1, 1)))]  # num_shards 1, version
    for name in sorted(tensors):
        arr = np.asarray(tensors[name], order="C")  # (ascontiguousarray makes a scalar 1-d)
        dtype = arr.dtype.newbyteorder("<")
        raw = arr.astype(dtype).tobytes()
        shape = b"".join(_field(2, _field(1, d)) for d in arr.shape)
        entry = _field(1, _ENUM[dtype])
        entry += _field(2, shape) + _field(4, len(data)) + _field(5, len(raw))
        if crc:
            entry += _field(6, masked_crc32c(raw), fixed32=True)
        entries.append((name.encode(), entry))
        data += raw
    Path(f"{prefix}.data-00000-of-00001").write_bytes(bytes(data))

    table = bytearray()

    def add(block: bytes) -> bytes:
        handle = _varint(len(table)) + _varint(len(block))
        kind = bytes([compression])
        table.extend(block + kind + masked_crc32c(block + kind).to_bytes(4, "little"))
        return handle

    # two data blocks, so the index block has more than one entry
    half = max(1, len(entries) // 2)
    index = []
    for part in (entries[:half], entries[half:]):
        if part:
            index.append((part[-1][0] + b"\xff", add(_block(part))))
    meta = add(_block([]))
    index_handle = add(_block(index, restart_every=1))
    footer = (meta + index_handle).ljust(40, b"\0") + TABLE_MAGIC.to_bytes(8, "little")
    table += footer
    path = Path(f"{prefix}.index")
    path.write_bytes(bytes(table))
    return path
