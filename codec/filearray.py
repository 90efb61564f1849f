"""A uint8 array in a file, read slice by slice.

Its own module because two formats share it: idx (large raw IDX files) and
arrays (.npy); neither owns it, and arrays imports idx, not the reverse.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import InputError


class FileArray:
    """A uint8 array stored in a file (raw IDX or .npy), read slice by slice with ordinary reads.

    Unlike a memory map, the pages read do not count against the process
    (RSS stays flat for a million images); only the slice asked for is in memory.
    """

    def __init__(self, path: Path, offset: int, shape: tuple[int, ...]):
        self.path, self.offset, self.shape = path, offset, shape
        self.dtype = np.dtype(np.uint8)
        self.ndim = len(shape)
        self._row = int(np.prod(shape[1:], dtype=np.int64))

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: slice) -> np.ndarray:
        start, stop, step = index.indices(len(self))
        if step != 1:
            raise ValueError("FileArray takes contiguous slices")
        count = max(stop - start, 0)
        with open(self.path, "rb") as f:
            f.seek(self.offset + start * self._row)
            data = np.fromfile(f, dtype=np.uint8, count=count * self._row)
        if data.size != count * self._row:
            raise InputError(f"{self.path}: file ended early (truncated?)")
        return data.reshape(count, *self.shape[1:])

    def reshape(self, *shape) -> "FileArray":
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], tuple) else shape
        shape = tuple(len(self) if s == -1 else s for s in shape)
        if int(np.prod(shape)) != int(np.prod(self.shape)) or shape[0] != len(self):
            raise ValueError("FileArray reshapes only within an image")
        return FileArray(self.path, self.offset, shape)
