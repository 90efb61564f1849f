"""Image arrays as files: IDX (raw or gzip, as MNIST ships), .npy and .npz, in and out.

Dataset users keep digits as arrays, not as thousands of PNG files; pack
reads them directly and unpack can write one array file back. Labels travel
with the images when the input has them: an .npz 'labels' (or 'y') array, or
the IDX labels file beside an IDX images file (MNIST's naming:
...-images-idx3-ubyte -> ...-labels-idx1-ubyte).
"""

from __future__ import annotations

import gzip
import os
import re
import zipfile
from pathlib import Path

import numpy as np

from .errors import InputError, OutputError

_IDX_NAME = re.compile(r"-idx\d-ubyte(\.gz)?$|\.idx\d?(\.gz)?$", re.IGNORECASE)
ARRAY_SUFFIXES = (".npy", ".npz")
IMAGE_KEYS = ("images", "x", "x_test", "x_train", "arr_0")
LABEL_KEYS = ("labels", "y", "y_test", "y_train", "arr_1")


def is_array_file(path: str | os.PathLike) -> bool:
    """Whether pack treats `path` (a path or a stored name) as an array of images rather than one image."""
    base = os.path.basename(os.fspath(path))
    # The substring test first: pack asks this of every input name, and most are not IDX.
    return base.lower().endswith(ARRAY_SUFFIXES) or ("idx" in base and bool(_IDX_NAME.search(base)))


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


def _npy_file_array(path: Path) -> FileArray | None:
    """A FileArray over a plain uint8 C-order .npy, or None (then np.load reads it)."""
    with open(path, "rb") as f:
        major, _ = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(f)
        offset = f.tell()
    if dtype != np.uint8 or fortran or len(shape) < 2:
        return None
    return FileArray(path, offset, tuple(shape))


def _read_idx(path: Path) -> np.ndarray | FileArray:
    """An IDX file as an array: read slice by slice when raw and large, in memory when gzip."""
    from .datasets import parse_idx
    from .errors import DataError

    try:
        with open(path, "rb") as f:
            head = f.read(4 + 4 * 4)
        if head[:3] == b"\0\0\x08" and len(head) >= 4 and path.stat().st_size > 1 << 20:
            ndim = head[3]
            with open(path, "rb") as f:
                header = f.read(4 + 4 * ndim)
            dims = tuple(int.from_bytes(header[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
            if len(header) != 4 + 4 * ndim or path.stat().st_size != len(header) + int(np.prod(dims, dtype=np.int64)):
                raise DataError(f"{path}: IDX header does not match the file size")
            return FileArray(path, len(header), dims)
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        return parse_idx(raw, str(path))
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise InputError(f"{path}: cannot read ({err})") from None
    except DataError as err:
        raise InputError(str(err)) from None


def _idx_labels_for(path: Path) -> Path | None:
    name = re.sub(r"images-idx3", "labels-idx1", path.name, flags=re.IGNORECASE)
    if name == path.name:
        return None
    for candidate in (name, name + ".gz", re.sub(r"\.gz$", "", name)):
        if (path.parent / candidate).is_file():
            return path.parent / candidate
    return None


def _as_images(array: np.ndarray, path: Path, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    if array.dtype != np.uint8:
        raise InputError(f"{path}: images must be uint8, not {array.dtype}")
    if array.ndim == 3 and array.shape[1:] == (h, w):
        return array
    if array.ndim == 2 and array.shape[1] == h * w:
        return array.reshape(len(array), h, w)
    raise InputError(f"{path}: array of shape {list(array.shape)} is not [N, {h}, {w}] or [N, {h * w}]")


def _as_labels(labels: np.ndarray | None, count: int, path: Path) -> np.ndarray | None:
    if labels is None:
        return None
    if labels.ndim != 1 or len(labels) != count or not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"{path}: labels must be {count} integers, not {labels.dtype} {list(labels.shape)}")
    if labels.size and (labels.min() < -(2**31) or labels.max() > 2**31 - 1):
        raise InputError(f"{path}: labels out of the int32 range")
    return labels.astype(np.int32)


def has_labels(path: Path) -> bool:
    """Whether an array file brings labels (checked before reading it, so the container can say so up front)."""
    if path.suffix.lower() == ".npz":
        try:
            with zipfile.ZipFile(path) as z:
                return any(Path(n).stem in LABEL_KEYS for n in z.namelist())
        except (OSError, zipfile.BadZipFile):
            return False
    return path.suffix.lower() != ".npy" and _idx_labels_for(path) is not None


def read_array_file(path: Path, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray | None]:
    """(uint8 images [N, H, W], int32 labels [N] or None) from an IDX, .npy or .npz file."""
    suffix = path.suffix.lower()
    labels = None
    try:
        if suffix == ".npy":
            array = _npy_file_array(path) or np.load(path, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as npz:
                keys = list(npz.keys())
                image_key = next((k for k in IMAGE_KEYS if k in keys), keys[0] if len(keys) == 1 else None)
                if image_key is None:
                    raise InputError(f"{path}: which array are the images? (holds {', '.join(keys) or 'none'}; "
                                     f"name it images, or save only one)")
                array = npz[image_key]
                label_key = next((k for k in LABEL_KEYS if k in keys and k != image_key), None)
                labels = npz[label_key] if label_key else None
        else:
            array = _read_idx(path)
            label_file = _idx_labels_for(path)
            labels = _read_idx(label_file) if label_file else None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise InputError(f"{path}: cannot read array ({err})") from None
    images = _as_images(array if isinstance(array, FileArray) else np.asarray(array), path, shape)
    return images, _as_labels(labels, len(images), path)


def write_array_file(path: Path, images: np.ndarray, labels: np.ndarray | None, names: list[str],
                     force: bool = False) -> list[Path]:
    """Write .npy (images; labels beside as NAME-labels.npy) or .npz (images, labels, names), atomically."""
    from .fileio import atomic_output

    path = Path(path)
    written = []
    if path.suffix.lower() == ".npz":
        with atomic_output(path, force=force) as f:
            extra = {"labels": labels} if labels is not None else {}
            np.savez_compressed(f, images=images, names=np.array(names), **extra)
        return [path]
    if path.suffix.lower() != ".npy":
        raise OutputError(f"{path}: array output must end in .npy or .npz")
    with atomic_output(path, force=force) as f:
        np.save(f, images, allow_pickle=False)
    written.append(path)
    if labels is not None:
        label_path = path.with_name(path.stem + "-labels.npy")
        with atomic_output(label_path, force=force) as f:
            np.save(f, labels, allow_pickle=False)
        written.append(label_path)
    return written


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file of a uint8 array (used by tests and benchmarks to make MNIST-shaped inputs)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()

