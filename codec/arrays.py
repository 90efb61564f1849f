"""Image arrays as files: IDX (raw or gzip, as MNIST ships), .npy and .npz, in and out.

Dataset users keep digits as arrays, not as thousands of PNG files; pack
reads them directly and unpack can write one array file back. Labels travel
with the images when the input has them: an .npz 'labels' (or 'y') array, or
the IDX labels file beside an IDX images file (MNIST's naming:
...-images-idx3-ubyte -> ...-labels-idx1-ubyte). The IDX format itself is
codec/idx.py.
"""

from __future__ import annotations

import contextlib
import os
import re
import zipfile
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .errors import DataError, InputError, OutputError
from .filearray import FileArray
from .fileio import atomic_output
from .idx import read_idx

_IDX_NAME = re.compile(r"-idx\d-ubyte(\.gz)?$|\.idx\d?(\.gz)?$", re.IGNORECASE)
ARRAY_SUFFIXES = (".npy", ".npz")
IMAGE_KEYS = ("images", "x", "x_test", "x_train", "arr_0")
LABEL_KEYS = ("labels", "y", "y_test", "y_train", "arr_1")


def is_array_file(path: str | os.PathLike) -> bool:
    """Whether pack treats `path` (a path or a stored name) as an array of images rather than one image."""
    base = os.path.basename(os.fspath(path))
    # The substring test first: pack asks this of every input name, and most are not IDX.
    return base.lower().endswith(ARRAY_SUFFIXES) or ("idx" in base and bool(_IDX_NAME.search(base)))


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
    try:
        return read_idx(path)
    except DataError as err:  # pack reports unreadable inputs as InputError
        raise InputError(str(err)) from None


def _idx_labels_for(path: Path) -> Path | None:
    name = re.sub(r"images-idx3", "labels-idx1", path.name, flags=re.IGNORECASE)
    if name == path.name:
        return None
    for candidate in (name, name + ".gz", re.sub(r"\.gz$", "", name)):
        if (path.parent / candidate).is_file():
            return path.parent / candidate
    return None


def as_images(array: np.ndarray | FileArray, path: Path, shape: tuple[int, int]) -> np.ndarray | FileArray:
    """uint8 images [N, H, W] from [N, H, W] or [N, H*W] (a FileArray stays one); anything else is an InputError."""
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
                    raise InputError(
                        f"{path}: which array are the images? (holds {', '.join(keys) or 'none'}; "
                        f"name it images, or save only one)"
                    )
                array = npz[image_key]
                label_key = next((k for k in LABEL_KEYS if k in keys and k != image_key), None)
                labels = npz[label_key] if label_key else None
        else:
            array = _read_idx(path)
            label_file = _idx_labels_for(path)
            labels = _read_idx(label_file) if label_file else None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise InputError(f"{path}: cannot read array ({err})") from None
    images = as_images(array if isinstance(array, FileArray) else np.asarray(array), path, shape)
    return images, _as_labels(labels, len(images), path)


def labels_path(path: Path) -> Path:
    """Where the labels of the images in NAME.npy go: NAME-labels.npy beside it."""
    return path.with_name(path.stem + "-labels.npy")


@contextlib.contextmanager
def npy_writer(path: Path, shape: tuple[int, ...], force: bool = False) -> Iterator[Callable[[np.ndarray], None]]:
    """Write a uint8 C-order .npy of `shape` chunk by chunk (flat memory), atomically: yields write(chunk).

    Chunks are uint8 [n, *shape[1:]], in order; when the block ends they must add
    up to shape[0] images, else nothing appears at `path`.
    """
    path = Path(path)
    written = 0
    with atomic_output(path, force=force) as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": tuple(shape)})

        def write(chunk: np.ndarray) -> None:
            nonlocal written
            if chunk.dtype != np.uint8 or chunk.shape[1:] != tuple(shape[1:]):
                raise ValueError(f"chunk {chunk.dtype} {list(chunk.shape)} does not fit uint8 {list(shape)}")
            f.write(memoryview(np.ascontiguousarray(chunk)).cast("B"))
            written += len(chunk)

        yield write
        if written != shape[0]:  # a short .npy would not load: keep it from appearing
            raise OutputError(f"{path}: {written} of {shape[0]} images written")


def write_array_file(
    path: Path, images: np.ndarray, labels: np.ndarray | None, names: list[str], force: bool = False
) -> list[Path]:
    """Write .npy (images; labels beside as NAME-labels.npy) or .npz (images, labels, names), atomically."""
    path = Path(path)
    written = []
    if path.suffix.lower() == ".npz":
        with atomic_output(path, force=force) as f:
            extra = {"labels": labels} if labels is not None else {}
            np.savez_compressed(f, images=images, names=np.array(names), **extra)
        return [path]
    if path.suffix.lower() != ".npy":
        raise OutputError(f"{path}: array output must end in .npy or .npz")
    if images.dtype == np.uint8 and images.ndim >= 1:
        with npy_writer(path, images.shape, force=force) as write:
            write(images)
    else:
        with atomic_output(path, force=force) as f:
            np.save(f, images, allow_pickle=False)
    written.append(path)
    if labels is not None:
        label_path = labels_path(path)
        with atomic_output(label_path, force=force) as f:
            np.save(f, labels, allow_pickle=False)
        written.append(label_path)
    return written
