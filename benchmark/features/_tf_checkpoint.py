"""A reader of TensorFlow's checkpoint files (the "tensor bundle" format of ``tf.train.Saver``
V2 and ``tf.train.Checkpoint``) in pure numpy: no TensorFlow and no protobuf package.

A checkpoint ``<prefix>`` is two kinds of file:

* ``<prefix>.index``: a LevelDB-format table (an SSTable: data blocks of prefix-compressed
  ``key → value`` entries, an index block pointing at them, a 48-byte footer ending with the
  table magic number). Its keys are the variable names in sorted order, plus the empty key for
  the bundle header; each value is a ``BundleEntryProto`` message (dtype, shape, shard, byte
  offset and size, a masked CRC-32C of the bytes), decoded here from the protobuf wire format.
* ``<prefix>.data-<shard>-of-<n>``: the tensors' raw bytes, little-endian, C order, one after
  another.

Only what TensorFlow writes for ordinary numeric variables is read: uncompressed table blocks
(tensor bundles are written without compression), numeric and boolean dtypes, whole
(unpartitioned) tensors. Anything else raises :class:`CheckpointError` naming what was met. The
CRC-32C of every index block is checked; tensor bytes are checked on request
(``verify=True``), since a pure-Python CRC runs at ~2 MB/s.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from benchmark.errors import DataError

__all__ = ["CheckpointError", "TensorEntry", "TfCheckpoint", "crc32c", "masked_crc32c"]

#: the last 8 bytes of every LevelDB table
TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
#: a block is followed by its compression type (1 byte) and its masked CRC-32C (4 bytes)
BLOCK_TRAILER = 5

#: TensorFlow's DataType enum (types.proto) → numpy dtype, little-endian
DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"),  # DT_FLOAT
    2: np.dtype("<f8"),  # DT_DOUBLE
    3: np.dtype("<i4"),  # DT_INT32
    4: np.dtype("u1"),  # DT_UINT8
    5: np.dtype("<i2"),  # DT_INT16
    6: np.dtype("i1"),  # DT_INT8
    9: np.dtype("<i8"),  # DT_INT64
    10: np.dtype("?"),  # DT_BOOL
    17: np.dtype("<u2"),  # DT_UINT16
    19: np.dtype("<f2"),  # DT_HALF
    22: np.dtype("<u4"),  # DT_UINT32
    23: np.dtype("<u8"),  # DT_UINT64
}


class CheckpointError(DataError):
    """A checkpoint file that cannot be read; the message names the file and what is wrong."""


@dataclass(frozen=True)
class TensorEntry:
    """Where one tensor lies (a ``BundleEntryProto``)."""

    name: str
    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int | None
    sliced: bool = False


# --- CRC-32C (Castagnoli), as LevelDB and TensorFlow use it ----------------------------------
@cache
def _crc_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


def crc32c(data: bytes) -> int:
    """CRC-32C of ``data`` (pure Python: fine for index blocks and small tensors)."""
    table = _crc_table()
    c = 0xFFFFFFFF
    for b in data:
        c = table[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """The CRC as stored by LevelDB/TensorFlow: rotated right by 15 bits plus a constant."""
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# --- wire formats ------------------------------------------------------------------------------
def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """A base-128 varint at ``pos``: ``(value, position after it)``."""
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 64 bits")


def _proto_fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """``(field number, value)`` of a protobuf message: varints and fixed ints as ``int``,
    length-delimited fields as ``bytes`` (groups are not used by these messages)."""
    fields: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = int.from_bytes(buf[pos : pos + 8], "little"), pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            value, pos = bytes(buf[pos : pos + n]), pos + n
        elif wire == 5:
            value, pos = int.from_bytes(buf[pos : pos + 4], "little"), pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        if pos > len(buf):
            raise ValueError("truncated protobuf message")
        fields.append((number, value))
    return fields


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _shape(buf: bytes) -> tuple[int, ...]:
    """A ``TensorShapeProto``: ``dim`` (2) is a repeated ``Dim`` whose ``size`` is field 1."""
    dims = []
    for number, value in _proto_fields(buf):
        if number == 3 and value:  # unknown_rank
            raise ValueError("a tensor of unknown rank")
        if number == 2 and isinstance(value, bytes):
            size = next((v for n, v in _proto_fields(value) if n == 1), 0)
            dims.append(_signed64(int(size)))
    return tuple(dims)


def _entry(name: str, buf: bytes) -> TensorEntry:
    """A ``BundleEntryProto``: dtype 1, shape 2, shard_id 3, offset 4, size 5, crc32c 6
    (fixed32), slices 7."""
    got: dict[int, int | bytes] = {}
    sliced = False
    for number, value in _proto_fields(buf):
        if number == 7:
            sliced = True
        else:
            got[number] = value
    shape = got.get(2, b"")
    crc = got.get(6)
    return TensorEntry(
        name=name,
        dtype=int(got.get(1, 0)),  # type: ignore[arg-type]
        shape=_shape(shape if isinstance(shape, bytes) else b""),
        shard_id=int(got.get(3, 0)),  # type: ignore[arg-type]
        offset=int(got.get(4, 0)),  # type: ignore[arg-type]
        size=int(got.get(5, 0)),  # type: ignore[arg-type]
        crc32c=None if crc is None else int(crc),  # type: ignore[arg-type]
        sliced=sliced,
    )


def _block_entries(block: bytes) -> list[tuple[bytes, bytes]]:
    """The ``(key, value)`` entries of one table block: each is ``shared``, ``non_shared`` and
    ``value_length`` varints, the key's unshared suffix and the value; the block ends with the
    restart offsets (uint32 each) and their count."""
    n_restarts = int.from_bytes(block[-4:], "little")
    end = len(block) - 4 * (n_restarts + 1)
    if end < 0:
        raise ValueError("block shorter than its restart array")
    entries: list[tuple[bytes, bytes]] = []
    key = b""
    pos = 0
    while pos < end:
        shared, pos = _varint(block, pos)
        non_shared, pos = _varint(block, pos)
        n_value, pos = _varint(block, pos)
        if shared > len(key) or pos + non_shared + n_value > end:
            raise ValueError("corrupt block entry")
        key = key[:shared] + block[pos : pos + non_shared]
        pos += non_shared
        entries.append((key, block[pos : pos + n_value]))
        pos += n_value
    return entries


def _handle(buf: bytes, pos: int = 0) -> tuple[int, int, int]:
    """A ``BlockHandle``: ``(offset, size, position after it)``."""
    offset, pos = _varint(buf, pos)
    size, pos = _varint(buf, pos)
    return offset, size, pos


# --- the checkpoint -----------------------------------------------------------------------------
class TfCheckpoint:
    """The tensors of one TensorFlow checkpoint, read lazily from its data file.

    ``TfCheckpoint(prefix)``: ``prefix`` is what ``Saver.save`` returned (``model.ckpt-1000``),
    i.e. the path without ``.index``; a checkpoint saved into a folder with an empty name
    (``musicnn/MSD_musicnn/.index``) has the folder and a trailing separator as its prefix, and
    a folder is accepted for it. ``names()`` lists the variables, ``shape(name)`` and
    ``dtype(name)`` describe one, ``ckpt[name]`` reads it as a numpy array.
    """

    def __init__(self, prefix: str | os.PathLike[str]) -> None:
        path = Path(prefix)
        if path.is_dir():
            self.prefix = str(path) + os.sep
        else:
            self.prefix = str(path)
        self.index_path = Path(self.prefix + ".index")
        if not self.index_path.is_file():
            raise CheckpointError(f"{self.index_path}: no such checkpoint index file")
        try:
            self.num_shards, self.entries = self._read_index(self.index_path.read_bytes())
        except (ValueError, IndexError) as exc:
            raise CheckpointError(
                f"{self.index_path}: not a readable tensor bundle: {exc}"
            ) from exc

    # --- the index ----------------------------------------------------------------------------
    def _read_block(self, data: bytes, offset: int, size: int) -> bytes:
        end = offset + size
        if end + BLOCK_TRAILER > len(data):
            raise ValueError(f"block at {offset} (+{size}) runs past the end of the file")
        block = data[offset:end]
        kind = data[end]
        if kind != 0:
            raise ValueError(f"compressed table block (type {kind}); only uncompressed is read")
        stored = int.from_bytes(data[end + 1 : end + BLOCK_TRAILER], "little")
        if masked_crc32c(data[offset : end + 1]) != stored:
            raise ValueError(f"CRC mismatch in the table block at offset {offset}")
        return block

    def _read_index(self, data: bytes) -> tuple[int, dict[str, TensorEntry]]:
        if len(data) < FOOTER_SIZE:
            raise ValueError("shorter than a table footer")
        footer = data[-FOOTER_SIZE:]
        if int.from_bytes(footer[-8:], "little") != TABLE_MAGIC:
            raise ValueError("no LevelDB table magic number at the end")
        _, _, pos = _handle(footer)  # the metaindex block (empty in tensor bundles)
        index_offset, index_size, _ = _handle(footer, pos)
        entries: dict[str, TensorEntry] = {}
        num_shards = 1
        for _, handle in _block_entries(self._read_block(data, index_offset, index_size)):
            offset, size, _ = _handle(handle)
            for key, value in _block_entries(self._read_block(data, offset, size)):
                if key == b"":  # BundleHeaderProto: num_shards 1, endianness 2 (0: little)
                    header = dict(_proto_fields(value))
                    num_shards = int(header.get(1, 1))  # type: ignore[arg-type]
                    if int(header.get(2, 0)) != 0:  # type: ignore[arg-type]
                        raise ValueError("a big-endian checkpoint")
                    continue
                name = key.decode("utf-8")
                entries[name] = _entry(name, value)
        return num_shards, entries

    # --- the tensors --------------------------------------------------------------------------
    def names(self) -> list[str]:
        """Variable names, sorted (as the index stores them)."""
        return sorted(self.entries)

    def __contains__(self, name: object) -> bool:
        return name in self.entries

    def _get(self, name: str) -> TensorEntry:
        try:
            return self.entries[name]
        except KeyError:
            raise KeyError(f"{name!r} is not in {self.index_path}") from None

    def shape(self, name: str) -> tuple[int, ...]:
        return self._get(name).shape

    def dtype(self, name: str) -> np.dtype:
        entry = self._get(name)
        if entry.dtype not in DTYPES:
            raise CheckpointError(f"{name}: unsupported TensorFlow dtype enum {entry.dtype}")
        return DTYPES[entry.dtype]

    def data_path(self, shard_id: int) -> Path:
        return Path(f"{self.prefix}.data-{shard_id:05d}-of-{self.num_shards:05d}")

    def read(self, name: str, *, verify: bool = False) -> np.ndarray:
        """The tensor ``name`` (a fresh array); ``verify`` checks its bytes' CRC-32C."""
        entry = self._get(name)
        if entry.sliced:
            raise CheckpointError(f"{name}: a partitioned (sliced) variable is not supported")
        dtype = self.dtype(name)
        count = int(np.prod(entry.shape, dtype=np.int64))
        if count * dtype.itemsize != entry.size:
            raise CheckpointError(
                f"{name}: {entry.size} bytes for shape {entry.shape} of {dtype} "
                f"({count * dtype.itemsize} expected)"
            )
        path = self.data_path(entry.shard_id)
        with open(path, "rb") as fh:
            fh.seek(entry.offset)
            raw = fh.read(entry.size)
        if len(raw) != entry.size:
            raise CheckpointError(f"{path}: truncated: {name} runs past the end of the file")
        if verify and entry.crc32c is not None and masked_crc32c(raw) != entry.crc32c:
            raise CheckpointError(f"{path}: CRC mismatch in {name}")
        return np.frombuffer(raw, dtype=dtype).reshape(entry.shape).copy()

    def __getitem__(self, name: str) -> np.ndarray:
        return self.read(name)
