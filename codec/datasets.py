"""Training data: find MNIST, verify it, load it; or load the user's own images.

Search order for MNIST (DESIGN.md): an explicit path, $AEC_DATA, the user
cache ($XDG_CACHE_HOME/aec/mnist or ~/.cache/aec/mnist), then Keras' cache
(~/.keras/datasets/mnist.npz). Every IDX file is checked against the SHA-256
of the original uncompressed file before use. `aec fetch-mnist` (codec/fetch.py)
fills the user cache.

load_training_images() (`aec train --data`) also takes the user's own
images: a folder of image files (read exactly as `aec pack` reads them), an
IDX file (raw or gzip), or a .npy/.npz array of uint8 [N, 28, 28] or [N, 784].
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .arrays import as_images, read_array_file
from .errors import DataError, InputError, list_problems
from .idx import looks_like_idx, parse_idx, read_idx_file
from .inputs import collect_inputs
from .prepare import load_prepared

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
    "run `aec fetch-mnist`, set AEC_DATA to a folder with the four MNIST IDX files (raw or .gz), or pass --data"
)


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


def find_idx(folder: Path, stem: str) -> Path | None:
    """folder/stem, else folder/stem.gz, else None."""
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _load_split_from_folder(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels = (_verified_idx(folder, stem) for stem in SPLIT_FILES[split])
    return images, labels


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


def _is_keras_archive(path: Path) -> bool:
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {"x_train", "y_train", "x_test", "y_test"} <= set(npz.files)
    except (OSError, ValueError, EOFError):
        return False


def has_mnist(place: Path) -> bool:
    if place.is_dir():
        return all(find_idx(place, s) for files in SPLIT_FILES.values() for s in files)
    return place.is_file() and place.suffix == ".npz" and _is_keras_archive(place)


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


# --- training data from anywhere ---------------------------------------------


@dataclass
class TrainingData:
    images: np.ndarray  # uint8 [N, H, W]
    source: str  # the path given, or where MNIST was found
    kind: str  # mnist (verified IDX), mnist-npz (Keras' archive), images (image files), idx, npy, npz

    @property
    def sha256(self) -> str:
        """SHA-256 over the shape and pixels: names exactly what was trained on."""
        digest = hashlib.sha256(str(self.images.shape).encode())
        digest.update(np.ascontiguousarray(self.images).tobytes())
        return digest.hexdigest()


def load_training_images(
    data: str | os.PathLike | None = None, shape: tuple[int, int] = (28, 28), invert: str = "auto", resize: bool = False
) -> TrainingData:
    """The images `aec train --data` names; MNIST's training split when `data` is None.

    A folder holding train-images-idx3-ubyte[.gz] is MNIST (SHA-256 verified);
    any other folder is a folder of image files, read and prepared exactly as
    `aec pack` does with the same `invert` and `resize` (hidden files
    skipped, every other file must be an image; see codec.prepare). A file is
    .npy, .npz, an IDX file (raw or gzip) or a single image. Arrays are taken
    as they are: uint8, white digits on black, 28x28.
    """
    if data is None:
        place = locate_mnist(None)
        if place.is_dir():
            return TrainingData(_verified_idx(place, SPLIT_FILES["train"][0]), str(place), "mnist")
        return TrainingData(_load_split_from_npz(place, "train")[0], str(place), "mnist-npz")
    path = Path(data)
    if path.is_dir():
        if find_idx(path, SPLIT_FILES["train"][0]):
            return TrainingData(_verified_idx(path, SPLIT_FILES["train"][0]), str(path), "mnist")
        return TrainingData(_read_image_files(path, shape, invert, resize), str(path), "images")
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if not path.is_file():
        raise InputError(f"{path}: not a regular file or folder")
    suffix = path.suffix.lower()
    if suffix == ".npz" and _is_keras_archive(path):
        with np.load(path, allow_pickle=False) as npz:
            mnist = npz["x_train"].shape == (60000, 28, 28)
        if mnist:
            return TrainingData(_load_split_from_npz(path, "train")[0], str(path), "mnist-npz")
    if suffix in (".npy", ".npz") or looks_like_idx(path):
        array, _ = read_array_file(path, shape)  # the same reader as `aec pack`
        array = array[0 : len(array)]  # training holds all images in memory anyway
        kind = suffix[1:] if suffix in (".npy", ".npz") else "idx"
        return TrainingData(_check_images(array, path, shape), str(path), kind)
    return TrainingData(_read_image_files(path, shape, invert, resize), str(path), "images")


def _verified_idx(folder: Path, stem: str) -> np.ndarray:
    path = find_idx(folder, stem)
    if path is None:
        raise DataError(f"{folder}: no {stem} (or {stem}.gz); {HOW_TO_PROVIDE}")
    raw = read_idx_file(path)
    digest = hashlib.sha256(raw).hexdigest()
    if digest != MNIST_SHA256[stem]:
        raise DataError(f"{path}: SHA-256 {digest[:12]}... is not MNIST's {stem}; file damaged?")
    return parse_idx(raw, str(path))


def _check_images(array: np.ndarray, path: Path, shape: tuple[int, int]) -> np.ndarray:
    """uint8 [N, H, W] (or [N, H*W], reshaped), at least two images, contiguous."""
    images = as_images(array, path, shape)
    if len(images) < 2:
        raise InputError(f"{path}: {len(images)} image(s); training needs at least 2 (one is held out for validation)")
    return np.ascontiguousarray(images)


def _read_image_files(path: Path, shape: tuple[int, int], invert: str, resize: bool) -> np.ndarray:
    """Every image under `path`, through the same reader and preparation as `aec pack`."""
    inputs = collect_inputs([path])
    images = np.zeros((len(inputs.files), *shape), np.uint8)
    problems = []
    for i, file in enumerate(inputs.files):
        try:
            images[i] = load_prepared(file, shape, invert, resize)[0]
        except InputError as err:
            problems.append(str(err))
    if problems:
        raise InputError(
            f"{len(problems)} of {len(inputs.files)} files under {path} cannot be used: {list_problems(problems)}"
        )
    return _check_images(images, path, shape)
