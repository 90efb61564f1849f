"""IDX files (the format MNIST ships in), raw or gzip: parse, read, sniff, open for slices, write.

An IDX file is two zero bytes, a type code, the number of dimensions, each
dimension as a big-endian uint32, then the data in C order. Gzip is
recognised by its magic, never by the file name. Errors are DataError; the
pack side (arrays) reports them as InputError. Only regular files are read
(filearray.open_regular), and nothing is read whole without a bound: pack's
reader (read_idx) checks a raw file's size against its header, and
decompresses gzip in chunks, refusing more or less data than the header says.
"""

from __future__ import annotations

import gzip
import math
import os
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .errors import DataError, InputError
from .filearray import CHUNK, FileArray, StreamArray, open_regular

IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
GZIP_MAGIC = b"\x1f\x8b"
MAX_WHOLE_FILE = 1 << 30  # read_idx_file's bound on the bytes of one (decompressed) IDX file


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
    expected = math.prod(shape) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(f"{name}: IDX says {shape} but holds {len(raw) - header} data bytes")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def _read_header(stream: BinaryIO, name: str) -> tuple[np.dtype, tuple[int, ...]]:
    """(dtype, shape) from the header at the start of `stream`, which is left at the first data byte."""
    head = stream.read(4)
    if len(head) < 4 or head[:2] != b"\0\0":
        raise DataError(f"{name}: not an IDX file (bad magic)")
    type_code, ndim = head[2], head[3]
    if type_code not in IDX_DTYPES or ndim == 0:
        raise DataError(f"{name}: unsupported IDX type 0x{type_code:02x} / {ndim} dims")
    dims = stream.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise DataError(f"{name}: truncated IDX header")
    return np.dtype(IDX_DTYPES[type_code]), tuple(
        int.from_bytes(dims[i : i + 4], "big") for i in range(0, len(dims), 4)
    )


def read_idx_file(path: Path, limit: int = MAX_WHOLE_FILE) -> bytes:
    """Raw IDX bytes of `path` (gzip is recognised by its magic, not its name), at most `limit` of them."""
    try:
        with open_regular(path) as f:
            gz = f.read(2) == GZIP_MAGIC
            f.seek(0)
            stream = gzip.GzipFile(fileobj=f) if gz else f
            parts, size = [], 0
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise DataError(f"{path}: more than {limit} bytes (decompressed); not an IDX file this reads")
                parts.append(chunk)
    except InputError as err:
        raise DataError(str(err)) from None
    except (OSError, EOFError) as err:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{path}: cannot read ({err})") from None
    return b"".join(parts)


def looks_like_idx(path: Path) -> bool:
    """IDX magic (two zero bytes, a known type, 1-4 dimensions), also inside gzip."""
    try:
        with open_regular(path) as f:
            gz = f.read(2) == GZIP_MAGIC
            f.seek(0)
            magic = (gzip.GzipFile(fileobj=f) if gz else f).read(4)
    except (InputError, OSError, EOFError):
        return False
    return len(magic) == 4 and magic[:2] == b"\0\0" and magic[2] in IDX_DTYPES and 1 <= magic[3] <= 4


def _gzip_data(path: Path):
    """The StreamArray opener of a gzip IDX file: its decompressed data, past the header."""

    def opener(stack):
        stream = stack.enter_context(gzip.GzipFile(fileobj=stack.enter_context(open_regular(path))))
        _read_header(stream, str(path))
        return stream

    return opener


def read_idx(path: Path) -> FileArray | StreamArray:
    """An IDX file as an array read slice by slice, its header checked, no data read yet.

    Raw: the file's size must be the header's plus exactly the data it declares. Gzip: a StreamArray whose
    data is checked as it is read (its check() reads it all once, in bounded memory); call it, or read the
    whole array, before trusting the data. DataError for a bad header or size; InputError for a path that
    is not a regular file.
    """
    try:
        with open_regular(path) as f:
            gz = f.read(2) == GZIP_MAGIC
            f.seek(0)
            if gz:
                with gzip.GzipFile(fileobj=f) as stream:
                    dtype, shape = _read_header(stream, str(path))
            else:
                dtype, shape = _read_header(f, str(path))
                offset, size = f.tell(), os.fstat(f.fileno()).st_size
    except (OSError, EOFError) as err:
        raise DataError(f"{path}: cannot read ({err})") from None
    if gz:
        return StreamArray(str(path), _gzip_data(path), shape, dtype)
    if size - offset != math.prod(shape) * dtype.itemsize:
        raise DataError(f"{path}: IDX says {shape} but holds {size - offset} data bytes")
    return FileArray(path, offset, shape, dtype)


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file of a uint8 array (used by tests and benchmarks to make MNIST-shaped inputs)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
