"""IDX files (the format MNIST ships in), raw or gzip: parse, read, sniff, open for slices, write.

An IDX file is two zero bytes, a type code, the number of dimensions, each
dimension as a big-endian uint32, then the data in C order. Gzip is
recognised by its magic, never by the file name. Errors are DataError; the
pack side (arrays) reports them as InputError.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from .errors import DataError
from .filearray import FileArray

IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
LAZY_BYTES = 1 << 20  # raw uint8 IDX files larger than this are read slice by slice, not into memory


def parse_idx(raw: bytes, name: str = "IDX data") -> np.ndarray:
    """Parse the bytes (or any buffer, e.g. a memory map) of an uncompressed IDX file, checking sizes first."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{name}: not an IDX file (bad magic)")
    type_code, ndim = int(raw[2]), int(raw[3])
    if type_code not in IDX_DTYPES or ndim == 0:
        raise DataError(f"{name}: unsupported IDX type 0x{type_code:02x} / {ndim} dims")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{name}: truncated IDX header")
    shape = tuple(int.from_bytes(bytes(raw[4 + 4 * i : 8 + 4 * i]), "big") for i in range(ndim))
    dtype = np.dtype(IDX_DTYPES[type_code])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(f"{name}: IDX says {shape} but holds {len(raw) - header} data bytes")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def read_idx_file(path: Path) -> bytes:
    """Raw IDX bytes of `path` (gzip is recognised by its magic, not its name)."""
    try:
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise DataError(f"{path}: cannot read ({err})") from None
    return data


def looks_like_idx(path: Path) -> bool:
    """IDX magic (two zero bytes, a known type, 1-4 dimensions), also inside gzip."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
        opener = gzip.open if head == b"\x1f\x8b" else open
        with opener(path, "rb") as f:
            magic = f.read(4)
    except (OSError, EOFError):
        return False
    return len(magic) == 4 and magic[:2] == b"\0\0" and magic[2] in IDX_DTYPES and 1 <= magic[3] <= 4


def open_raw_idx(path: Path) -> FileArray | None:
    """A FileArray over a raw uint8 IDX file larger than LAZY_BYTES; None for any other file.

    Raises OSError when the file cannot be read, DataError when its header and size disagree.
    """
    with open(path, "rb") as f:
        head = f.read(4 + 4 * 4)
    if head[:3] != b"\0\0\x08" or len(head) < 4 or path.stat().st_size <= LAZY_BYTES:
        return None
    ndim = head[3]
    with open(path, "rb") as f:
        header = f.read(4 + 4 * ndim)
    dims = tuple(int.from_bytes(header[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if len(header) != 4 + 4 * ndim or path.stat().st_size != len(header) + int(np.prod(dims, dtype=np.int64)):
        raise DataError(f"{path}: IDX header does not match the file size")
    return FileArray(path, len(header), dims)


def read_idx(path: Path) -> np.ndarray | FileArray:
    """An IDX file as an array: read slice by slice when raw and large, in memory otherwise (and when gzip)."""
    try:
        lazy = open_raw_idx(path)
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err})") from None
    return lazy if lazy is not None else parse_idx(read_idx_file(path), str(path))


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file of a uint8 array (used by tests and benchmarks to make MNIST-shaped inputs)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
