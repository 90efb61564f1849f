"""Arrays in files, read slice by slice: raw (IDX, .npy) or compressed (gzip IDX, .npz member).

Its own module because two formats share it: idx (IDX files) and arrays
(.npy, .npz); neither owns it, and arrays imports idx, not the reverse.
Inputs are opened with open_regular: only regular files are read, so a FIFO
or a link to a device named like an array cannot hang pack or feed it
without end.
"""

from __future__ import annotations

import contextlib
import math
import os
import stat
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np

from .errors import InputError

CHUNK = 1 << 20  # bytes read at a time when data is checked or skipped (bounded memory)
# What a damaged or changed compressed stream raises (gzip.BadGzipFile is an OSError; zipfile raises
# RuntimeError for an encrypted member, NotImplementedError for an unknown compression).
STREAM_ERRORS = (OSError, EOFError, zlib.error, zipfile.BadZipFile, RuntimeError, NotImplementedError)


def open_regular(path: str | os.PathLike) -> BinaryIO:
    """`path` opened for reading if it is a regular file; InputError otherwise.

    O_NONBLOCK: opening a FIFO that has no writer must not hang; cleared once fstat shows a regular file.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InputError(f"{path}: not a regular file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return open(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _shape_text(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


class FileArray:
    """An array stored raw in a regular file (IDX, .npy) at `offset`, read slice by slice with ordinary reads.

    Unlike a memory map, the pages read do not count against the process
    (RSS stays flat for a million images); only the slice asked for is in memory.
    The caller has checked that the file holds exactly the data of `shape`.
    """

    def __init__(self, path: Path, offset: int, shape: tuple[int, ...], dtype=np.uint8):
        self.path, self.offset, self.shape = path, offset, tuple(shape)
        self.dtype = np.dtype(dtype)
        self.ndim = len(self.shape)
        self._row = math.prod(self.shape[1:])

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        whole = self[0 : len(self)]
        return whole if dtype is None else whole.astype(dtype)

    def __getitem__(self, index: slice) -> np.ndarray:
        start, stop, step = index.indices(len(self))
        if step != 1:
            raise ValueError("FileArray takes contiguous slices")
        count = max(stop - start, 0)
        with open_regular(self.path) as f:  # again: the path may have been replaced since it was checked
            f.seek(self.offset + start * self._row * self.dtype.itemsize)
            data = np.fromfile(f, dtype=self.dtype, count=count * self._row)
        if data.size != count * self._row:
            raise InputError(f"{self.path}: file ended early (truncated?)")
        return data.reshape(count, *self.shape[1:])

    def reshape(self, *shape) -> "FileArray":
        shape = _new_shape(self, shape)
        return FileArray(self.path, self.offset, shape, self.dtype)


def _new_shape(array, shape: tuple) -> tuple[int, ...]:
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], tuple) else shape
    shape = tuple(len(array) if s == -1 else s for s in shape)
    if math.prod(shape) != math.prod(array.shape) or shape[0] != len(array):
        raise ValueError("a file array reshapes only within an element")
    return shape


# Opens the data of a StreamArray afresh: the stream it returns starts at the first data byte; whatever it
# opens is closed with the ExitStack it was given.
Opener = Callable[[contextlib.ExitStack], BinaryIO]


class StreamArray:
    """An array stored compressed (gzip IDX, .npz member), decompressed front to back slice by slice.

    Only the slice asked for is in memory. Slices are meant to come in order
    (pack's do); a slice before the last one read starts the stream again.
    check() reads the whole stream once (in CHUNK pieces) so that data that
    does not match the header is refused before any image is used; a slice
    that ends the array also checks that nothing follows it.
    """

    def __init__(self, name: str, opener: Opener, shape: tuple[int, ...], dtype=np.uint8):
        self.name, self.opener, self.shape = name, opener, tuple(shape)
        self.dtype = np.dtype(dtype)
        self.ndim = len(self.shape)
        self._row = math.prod(self.shape[1:]) * self.dtype.itemsize
        self._stack: contextlib.ExitStack | None = None
        self._stream: BinaryIO | None = None
        self._at = 0  # rows read from the open stream

    @property
    def nbytes(self) -> int:
        return len(self) * self._row

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        whole = self[0 : len(self)]
        return whole if dtype is None else whole.astype(dtype)

    def __del__(self) -> None:
        self.close()

    def close(self) -> None:
        if self._stack is not None:
            self._stack.close()
        self._stack = self._stream = None

    def _restart(self) -> BinaryIO:
        self.close()
        self._stack = contextlib.ExitStack()
        try:
            self._stream = self.opener(self._stack)
        except BaseException:
            self.close()
            raise
        self._at = 0
        return self._stream

    def _fill(self, stream: BinaryIO, buffer: memoryview) -> int:
        got = 0
        while got < len(buffer):
            n = stream.readinto(buffer[got:])
            if not n:
                break
            got += n
        return got

    def _short(self, got: int) -> InputError:
        return InputError(
            f"{self.name}: data ends early: header says {_shape_text(self.shape)} ({self.nbytes} bytes), holds {got}"
        )

    def _expect_end(self, stream: BinaryIO) -> None:
        if stream.read(1):
            raise InputError(f"{self.name}: holds more data than its header says ({_shape_text(self.shape)})")

    def check(self) -> None:
        """Read the whole stream once: exactly the data its header promises, or InputError."""
        try:
            self._check()
        except STREAM_ERRORS as err:
            raise InputError(f"{self.name}: cannot read ({err})") from None

    def _check(self) -> None:
        stream, chunk = self._restart(), memoryview(bytearray(CHUNK))
        try:
            left = self.nbytes
            while left:
                got = self._fill(stream, chunk[: min(left, CHUNK)])
                if got == 0:
                    raise self._short(self.nbytes - left)
                left -= got
            self._expect_end(stream)
        finally:
            self.close()

    def __getitem__(self, index: slice) -> np.ndarray:
        start, stop, step = index.indices(len(self))
        if step != 1:
            raise ValueError("StreamArray takes contiguous slices")
        try:
            return self._read(start, max(stop - start, 0))
        except STREAM_ERRORS as err:
            self.close()
            raise InputError(f"{self.name}: cannot read ({err})") from None

    def _read(self, start: int, count: int) -> np.ndarray:
        stream = self._stream if self._stream is not None and start >= self._at else self._restart()
        skip = (start - self._at) * self._row
        while skip:  # forward to `start`, a chunk at a time
            got = len(stream.read(min(skip, CHUNK)))
            if got == 0:
                self.close()
                raise self._short(start * self._row - skip)
            skip -= got
        out = np.empty(count * self._row, np.uint8)
        got = self._fill(stream, memoryview(out))
        if got != out.size:
            self.close()
            raise self._short(start * self._row + got)
        self._at = start + count
        if self._at == len(self):
            try:
                self._expect_end(stream)
            finally:
                self.close()
        return out.view(self.dtype).reshape(count, *self.shape[1:])

    def reshape(self, *shape) -> "StreamArray":
        return StreamArray(self.name, self.opener, _new_shape(self, shape), self.dtype)
