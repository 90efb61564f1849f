"""MNIST: find it, verify it, load it.

Search order (DESIGN.md): an explicit path, $AEC_DATA, the user cache
($XDG_CACHE_HOME/aec/mnist or ~/.cache/aec/mnist), then Keras' cache
(~/.keras/datasets/mnist.npz). Every IDX file is checked against the SHA-256
of the original uncompressed file before use.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

import numpy as np

from .errors import DataError

# SHA-256 of the uncompressed original IDX files.
MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
HOW_TO_PROVIDE = (
    "set AEC_DATA to a folder with the four MNIST IDX files (raw or .gz), "
    "or pass --data"
)

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "aec" / "mnist"


def keras_cache_file() -> Path:
    return Path.home() / ".keras" / "datasets" / "mnist.npz"


def candidate_locations(explicit: str | os.PathLike | None = None) -> list[Path]:
    """Where MNIST is looked for, in order."""
    places = []
    if explicit:
        places.append(Path(explicit))
    if os.environ.get("AEC_DATA"):
        places.append(Path(os.environ["AEC_DATA"]))
    places += [user_cache_dir(), keras_cache_file()]
    return places


def parse_idx(raw: bytes, name: str = "IDX data") -> np.ndarray:
    """Parse the bytes of an (uncompressed) IDX file, checking sizes first."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{name}: not an IDX file (bad magic)")
    type_code, ndim = raw[2], raw[3]
    if type_code not in _IDX_DTYPES or ndim == 0:
        raise DataError(f"{name}: unsupported IDX type 0x{type_code:02x} / {ndim} dims")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{name}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[type_code])
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


def _find_idx(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _load_split_from_folder(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    arrays = []
    for stem in SPLIT_FILES[split]:
        path = _find_idx(folder, stem)
        if path is None:
            raise DataError(f"{folder}: no {stem} (or {stem}.gz); {HOW_TO_PROVIDE}")
        raw = read_idx_file(path)
        digest = hashlib.sha256(raw).hexdigest()
        if digest != MNIST_SHA256[stem]:
            raise DataError(f"{path}: SHA-256 {digest[:12]}... is not MNIST's {stem}; file damaged?")
        arrays.append(parse_idx(raw, str(path)))
    return arrays[0], arrays[1]


def _load_split_from_npz(path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    # Keras' mnist.npz holds x_train, y_train, x_test, y_test; it carries no
    # IDX bytes to hash, so check shapes and dtype instead.
    try:
        with np.load(path, allow_pickle=False) as npz:
            x, y = npz[f"x_{split}"], npz[f"y_{split}"]
    except (OSError, KeyError, ValueError) as err:
        raise DataError(f"{path}: not a Keras MNIST archive ({err})") from None
    n = 60000 if split == "train" else 10000
    if x.shape != (n, 28, 28) or x.dtype != np.uint8 or y.shape != (n,):
        raise DataError(f"{path}: unexpected MNIST shapes {x.shape} {y.shape}")
    return x, y.astype(np.uint8)


def has_mnist(place: Path) -> bool:
    if place.is_dir():
        return all(_find_idx(place, s) for files in SPLIT_FILES.values() for s in files)
    return place.is_file() and place.suffix == ".npz"


def locate_mnist(explicit: str | os.PathLike | None = None) -> Path:
    """The first place in the search order that holds MNIST."""
    places = candidate_locations(explicit)
    if explicit and not has_mnist(Path(explicit)):
        raise DataError(f"{explicit}: no MNIST IDX files there; {HOW_TO_PROVIDE}")
    for place in places:
        if has_mnist(place):
            return place
    looked = ", ".join(str(p) for p in places)
    raise DataError(f"MNIST not found (looked in {looked}); {HOW_TO_PROVIDE}")


def load_mnist(split: str = "train", data: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8[N,28,28], labels uint8[N]) of the 'train' or 'test' split."""
    if split not in SPLIT_FILES:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    place = locate_mnist(data)
    if place.is_dir():
        return _load_split_from_folder(place, split)
    return _load_split_from_npz(place, split)
