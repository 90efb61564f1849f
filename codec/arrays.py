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
import itertools
import math
import os
import re
import struct
import tokenize
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

import numpy as np

from .errors import DataError, InputError, OutputError
from .filearray import FileArray, StreamArray, open_regular
from .fileio import atomic_output, file_key
from .idx import read_idx

_IDX_NAME = re.compile(r"-idx\d-ubyte(\.gz)?$|\.idx\d?(\.gz)?$", re.IGNORECASE)
ARRAY_SUFFIXES = (".npy", ".npz")
IMAGE_KEYS = ("images", "x", "x_test", "x_train", "arr_0")
LABEL_KEYS = ("labels", "y", "y_test", "y_train", "arr_1")
IN_MEMORY_LIMIT = 1 << 26  # bytes: a Fortran-order image array (not sliceable) is read whole up to this
NPZ_DIRECTORY_LIMIT = 1 << 20  # bytes of an .npz's zip directory (a real one lists a few arrays)
NPZ_NAMES_LIMIT = 256 << 20  # bytes of the names array unpack writes in an .npz (fixed width: 4 bytes a character)


def is_array_file(path: str | os.PathLike) -> bool:
    """Whether pack treats `path` (a path or a stored name) as an array of images rather than one image."""
    base = os.path.basename(os.fspath(path))
    # The substring test first: pack asks this of every input name, and most are not IDX.
    return base.lower().endswith(ARRAY_SUFFIXES) or ("idx" in base and bool(_IDX_NAME.search(base)))


def array_flags(names: list[str]) -> list[bool]:
    """is_array_file of each name; for a folder of images, one pass over all the names together
    (is_array_file costs about 1 us a name)."""
    joined = "\n".join(names).lower() + "\n"
    if "idx" in joined or any(f"{suffix}\n" in joined for suffix in ARRAY_SUFFIXES):
        return [is_array_file(name) for name in names]
    return [False] * len(names)


def _npy_header(stream: BinaryIO, name: str) -> tuple[np.dtype, tuple[int, ...], bool]:
    """(dtype, shape, Fortran order) from the .npy header at the start of `stream`, left at the first data byte."""
    try:
        major, _ = np.lib.format.read_magic(stream)
        if major not in (1, 2):
            raise ValueError(f".npy version {major} is not read")
        read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(stream)
    except (ValueError, SyntaxError, TypeError, tokenize.TokenError) as err:  # what numpy raises for a bad header
        raise InputError(f"{name}: cannot read array ({err})") from None
    if dtype.hasobject:
        raise InputError(f"{name}: holds Python objects, not numbers")
    return dtype, tuple(shape), fortran


def _data_text(shape: tuple[int, ...], need: int) -> str:
    return f"its header says [{', '.join(map(str, shape))}] ({need} data bytes)"


def _fortran_whole(lazy: FileArray | StreamArray, name: str) -> FileArray | StreamArray | np.ndarray:
    """A Fortran-order array, given as `lazy` over its data with the shape reversed: read whole (its images
    are not contiguous), so only when small."""
    if lazy.ndim < 2:
        return lazy  # one dimension: the same in either order
    if math.prod(lazy.shape) * lazy.dtype.itemsize > IN_MEMORY_LIMIT:
        raise InputError(
            f"{name}: Fortran-order arrays over {IN_MEMORY_LIMIT >> 20} MiB are not read; save it in C order"
        )
    return np.ascontiguousarray(np.asarray(lazy).T)


def _read_npy(path: Path) -> FileArray | np.ndarray:
    """A FileArray over an .npy whose size matches its header exactly (Fortran order: read whole, if small)."""
    with open_regular(path) as f:
        dtype, shape, fortran = _npy_header(f, str(path))
        offset, size = f.tell(), os.fstat(f.fileno()).st_size
    need = math.prod(shape) * dtype.itemsize
    if size - offset < need:
        raise InputError(f"{path}: truncated: {_data_text(shape, need)}, the file holds {size - offset}")
    if size - offset > need:
        raise InputError(f"{path}: holds more data than {_data_text(shape, need)}: {size - offset}")
    if fortran:
        return _fortran_whole(FileArray(path, offset, shape[::-1], dtype), str(path))
    return FileArray(path, offset, shape, dtype)


def _zip_directory_fits(f: BinaryIO, path: Path) -> None:
    """Refuse a zip whose directory is larger than an .npz of images has (zipfile would read it all).

    Its size is in the end record (or the ZIP64 record before it), found as zipfile finds it.
    """
    size = os.fstat(f.fileno()).st_size
    tail_len = min(size, 22 + 0xFFFF + 20 + 56)  # end record, longest comment, ZIP64 locator and record
    f.seek(size - tail_len)
    tail = f.read(tail_len)
    f.seek(0)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        return  # not a zip: ZipFile says so
    entries, directory = struct.unpack_from("<HI", tail, at + 10)
    if at >= 76 and tail[at - 20 : at - 16] == b"PK\x06\x07" and tail[at - 76 : at - 72] == b"PK\x06\x06":
        entries, directory = struct.unpack_from("<QQ", tail, at - 76 + 32)
    if directory > NPZ_DIRECTORY_LIMIT:
        raise InputError(f"{path}: zip directory of {entries} entries ({directory} bytes) is too large for an .npz")


def _npz_member_data(path: Path, member: str):
    """The StreamArray opener of an .npz member: its decompressed data, past the .npy header."""

    def opener(stack):
        f = stack.enter_context(open_regular(path))
        _zip_directory_fits(f, path)
        stream = stack.enter_context(stack.enter_context(zipfile.ZipFile(f)).open(member))
        _npy_header(stream, f"{path}: {member}")
        return stream

    return opener


def _npz_member(path: Path, z: zipfile.ZipFile, info: zipfile.ZipInfo) -> StreamArray | np.ndarray:
    """An .npz member as a StreamArray, its header checked against the size the zip declares for it."""
    name = f"{path}: {info.filename}"
    if not info.filename.endswith(".npy"):
        raise InputError(f"{name}: not an .npy array")
    with z.open(info) as stream:
        dtype, shape, fortran = _npy_header(stream, name)
        header = stream.tell()
    need = math.prod(shape) * dtype.itemsize
    if info.file_size != header + need:
        raise InputError(f"{name}: the zip declares {info.file_size - header} data bytes, {_data_text(shape, need)}")
    if fortran:
        return _fortran_whole(StreamArray(name, _npz_member_data(path, info.filename), shape[::-1], dtype), name)
    return StreamArray(name, _npz_member_data(path, info.filename), shape, dtype)


def _read_npz(path: Path) -> tuple[StreamArray | np.ndarray, StreamArray | np.ndarray | None]:
    """(images, labels or None) of an .npz, neither read yet; keys as np.load names them."""
    with open_regular(path) as f:
        _zip_directory_fits(f, path)
        with zipfile.ZipFile(f) as z:
            members = {(i.filename[:-4] if i.filename.endswith(".npy") else i.filename): i for i in z.infolist()}
            keys = list(members)
            image_key = next((k for k in IMAGE_KEYS if k in keys), keys[0] if len(keys) == 1 else None)
            if image_key is None:
                raise InputError(
                    f"{path}: which array are the images? (holds {', '.join(keys) or 'none'}; "
                    f"name it images, or save only one)"
                )
            label_key = next((k for k in LABEL_KEYS if k in keys and k != image_key), None)
            images = _npz_member(path, z, members[image_key])
            labels = _npz_member(path, z, members[label_key]) if label_key else None
    return images, labels


def _read_idx(path: Path) -> FileArray | StreamArray:
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


def as_images(array, path: Path, shape: tuple[int, int]):
    """uint8 images [N, H, W] from [N, H, W] or [N, H*W] (a FileArray or StreamArray stays one, unread);
    anything else is an InputError."""
    h, w = shape
    if array.dtype != np.uint8:
        raise InputError(f"{path}: images must be uint8, not {array.dtype}")
    if array.ndim == 3 and array.shape[1:] == (h, w):
        return array
    if array.ndim == 2 and array.shape[1] == h * w:
        return array.reshape(len(array), h, w)
    raise InputError(f"{path}: array of shape {list(array.shape)} is not [N, {h}, {w}] or [N, {h * w}]")


def _as_labels(labels, count: int, path: str | Path) -> np.ndarray | None:
    """int32 labels [count], checked from the header before any are read (so they cost 4 bytes an image)."""
    if labels is None:
        return None
    if labels.ndim != 1 or len(labels) != count or not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"{path}: labels must be {count} integers, not {labels.dtype} {list(labels.shape)}")
    labels = np.asarray(labels)
    if labels.size and (labels.min() < -(2**31) or labels.max() > 2**31 - 1):
        raise InputError(f"{path}: labels out of the int32 range")
    return labels.astype(np.int32)


def has_labels(path: Path) -> bool:
    """Whether an array file brings labels (checked before reading it, so the container can say so up front)."""
    if path.suffix.lower() == ".npz":
        try:
            with open_regular(path) as f:
                _zip_directory_fits(f, path)
                with zipfile.ZipFile(f) as z:
                    return any(Path(n).stem in LABEL_KEYS for n in z.namelist())
        except (InputError, OSError, zipfile.BadZipFile):
            return False  # reading it says why
    return path.suffix.lower() != ".npy" and _idx_labels_for(path) is not None


def read_array_file(path: Path, shape: tuple[int, int]):
    """(uint8 images [N, H, W], int32 labels [N] or None) from an IDX, .npy or .npz file.

    The images are a FileArray or StreamArray read slice by slice (a small Fortran-order array: in
    memory); their data is checked against the header before this returns, so a file that does not
    hold what it says is refused here, not halfway through a pack. Only regular files are read.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    labels, labels_at = None, str(path)
    try:
        if suffix == ".npy":
            array = _read_npy(path)
        elif suffix == ".npz":
            array, labels = _read_npz(path)
        else:
            array = _read_idx(path)
            label_path = _idx_labels_for(path)
            labels = _read_idx(label_path) if label_path else None
            labels_at = f"{path}: its labels file {label_path}"
        images = as_images(array, path, shape)
        if isinstance(images, StreamArray):
            images.check()  # the images exist before their count sizes anything (labels, names)
        return images, _as_labels(labels, len(images), labels_at)
    # zipfile raises RuntimeError for an encrypted member, NotImplementedError for an unknown compression.
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError) as err:
        raise InputError(f"{path}: cannot read array ({err})") from None


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


def npz_names_width(names: Iterable[str], path: Path) -> int:
    """The width of an .npz's names array: numpy stores names at the longest one's width, 4 bytes a character,
    so a few long names make it huge; InputError when names x width x 4 would pass NPZ_NAMES_LIMIT
    (checked as the names come, so a pass over billions stops early)."""
    count, width = 0, 1
    for name in names:
        count, width = count + 1, max(width, len(name))
        if count * width * 4 > NPZ_NAMES_LIMIT:
            raise InputError(
                f"{path}: the names would take over {NPZ_NAMES_LIMIT >> 20} MiB as an .npz array (numpy stores "
                f"every name as wide as the longest, here {width} characters): use --format npy (no names) or png"
            )
    return width


def _npy_member(z: zipfile.ZipFile, name: str, dtype: np.dtype, shape: tuple[int, ...]) -> BinaryIO:
    member = z.open(f"{name}.npy", "w", force_zip64=True)
    np.lib.format.write_array_header_1_0(member, {"descr": dtype.str, "fortran_order": False, "shape": shape})
    return member


@contextlib.contextmanager
def npz_writer(
    path: Path, shape: tuple[int, ...], names: Callable[[], Iterable[str]], width: int, force: bool = False
) -> Iterator[Callable[[np.ndarray, np.ndarray | None], None]]:
    """Write a compressed .npz (images, labels if given, names) with flat memory, atomically: yields
    write(uint8 images chunk, its int32 labels or None); the names (`names()`, shape[0] of them, at most
    `width` characters: npz_names_width) follow the images, read again, a batch at a time."""
    path = Path(path)
    written, labels = 0, []
    with atomic_output(path, force=force) as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
        with _npy_member(z, "images", np.dtype(np.uint8), tuple(shape)) as member:

            def write(chunk: np.ndarray, chunk_labels: np.ndarray | None = None) -> None:
                nonlocal written
                if chunk.dtype != np.uint8 or chunk.shape[1:] != tuple(shape[1:]):
                    raise ValueError(f"chunk {chunk.dtype} {list(chunk.shape)} does not fit uint8 {list(shape)}")
                member.write(memoryview(np.ascontiguousarray(chunk)).cast("B"))
                written += len(chunk)
                if chunk_labels is not None:
                    labels.append(np.asarray(chunk_labels, np.int32))

            yield write
        if written != shape[0]:
            raise OutputError(f"{path}: {written} of {shape[0]} images written")
        if labels:
            with _npy_member(z, "labels", np.dtype("<i4"), (shape[0],)) as member:
                member.write(np.concatenate(labels).astype("<i4").tobytes())
        dtype, count, every = np.dtype(f"<U{width}"), 0, iter(names())
        with _npy_member(z, "names", dtype, (shape[0],)) as member:
            while batch := list(itertools.islice(every, 4096)):
                if max(map(len, batch)) > width:  # numpy would cut it short without a word
                    raise ValueError(f"a name is longer than the {width} characters the names array holds")
                member.write(np.array(batch, dtype).tobytes())
                count += len(batch)
        if count != shape[0]:
            raise OutputError(f"{path}: {count} names for {shape[0]} images")


def write_array_file(
    path: Path, images: np.ndarray, labels: np.ndarray | None, names: list[str], force: bool = False
) -> list[Path]:
    """Write .npy (images; labels beside as NAME-labels.npy) or .npz (images, labels, names), atomically."""
    path = Path(path)
    if path.suffix.lower() == ".npz":
        width = npz_names_width(names, path)
        with npz_writer(path, images.shape, lambda: names, width, force=force) as write:
            write(np.asarray(images, np.uint8), labels)
        return [path]
    if path.suffix.lower() != ".npy":
        raise OutputError(f"{path}: array output must end in .npy or .npz")
    label_path = labels_path(path)
    if not force:  # both free before either is written
        for target in (path, label_path) if labels is not None else (path,):
            if os.path.lexists(target):
                raise OutputError(f"{target}: already exists (use --force to overwrite)")
    existed = os.path.lexists(path)
    if images.dtype == np.uint8 and images.ndim >= 1:
        with npy_writer(path, images.shape, force=force) as write:
            write(images)
    else:
        with atomic_output(path, force=force) as f:
            np.save(f, images, allow_pickle=False)
    if labels is None:
        return [path]
    write_labels_beside(path, labels, existed, force)
    return [path, label_path]


def _key_of(path: Path) -> int | None:
    try:
        return file_key(os.lstat(path))
    except OSError:
        return None


def write_labels_beside(path: Path, labels: np.ndarray, existed: bool, force: bool = False) -> Path:
    """Write the labels of the images just written to `path` (NAME.npy) as NAME-labels.npy; if that fails, the
    images file goes again when this call's caller made it (`existed`: it was there before), so that no
    images file is left without its labels."""
    ours = None if existed else _key_of(path)
    label_path = labels_path(path)
    try:
        with atomic_output(label_path, force=force) as f:
            np.save(f, labels, allow_pickle=False)
    except BaseException:
        if ours is not None and _key_of(path) == ours:  # the images file made, not one it replaced
            with contextlib.suppress(OSError):
                os.unlink(path)
        raise
    return label_path
