"""Image files to uint8 arrays and back (Pillow), folder walking, safe output paths.

Rules (README "Input rules"):
- a folder is walked recursively in sorted order; names are kept relative to it;
- hidden files and folders (name starts with '.') are skipped and counted;
- symbolic links to files are followed; links to folders are not walked (no loops)
  and are listed in linked_folders_skipped;
- every other file is an input: it is packed or the pack fails naming it;
- images are converted to 8-bit grayscale ('L'): colour by luminance, alpha
  composited onto a background that contrasts with the opaque pixels (black
  behind light ink, white behind dark ink), 16-bit by its top 8 bits; a
  converted image is flagged in the container. Size and polarity are
  prepare.py's job.
"""

from __future__ import annotations

import io
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import plain_png
from .errors import InputError, OutputError
from .names import FLAG_CONVERTED, check_name


SMALL_FILE = 1 << 20  # files up to this size are read whole and tried on the plain-PNG fast path


@dataclass
class InputList:
    # In pack order, as strings: 10,000 Path objects (made, then turned back into strings
    # for the reader processes) cost 50 ms of pack's 0.7 s.
    files: list[str]
    names: list[str]  # stored relative POSIX names, same order
    hidden_skipped: list[Path] = field(default_factory=list)
    linked_folders_skipped: list[Path] = field(default_factory=list)


def _walk(root: Path, hidden: list[Path], links: list[Path]) -> list[tuple[str, str]]:
    found = []
    root_length = len(os.fspath(root).rstrip(os.sep)) + 1
    for folder, dirs, files in os.walk(root, followlinks=False):
        folder_path = Path(folder)
        prefix = folder[root_length:].replace(os.sep, "/") + "/" if len(folder) >= root_length else ""
        kept = []
        for d in sorted(dirs):
            if d.startswith("."):
                hidden.append(folder_path / d)
            elif os.path.islink(os.path.join(folder, d)):
                links.append(folder_path / d)  # not walked: no loops, nothing outside the folder given
            else:
                kept.append(d)
        dirs[:] = kept
        for f in sorted(files):
            if f.startswith("."):
                hidden.append(folder_path / f)
            else:
                found.append((prefix + f, os.path.join(folder, f)))
    return found


def collect_inputs(paths: list[str | os.PathLike]) -> InputList:
    """Expand files and folders into the ordered list of inputs with stored names."""
    entries: list[tuple[str, str]] = []
    hidden: list[Path] = []
    links: list[Path] = []
    for arg in paths:
        path = Path(arg)
        if path.is_dir():
            entries += _walk(path, hidden, links)
        elif path.is_file():
            entries.append((path.name, os.fspath(path)))
        elif path.exists():
            raise InputError(f"{path}: not a regular file or folder")
        else:
            raise InputError(f"{path}: no such file or folder")
    if not entries:
        raise InputError(f"{', '.join(map(str, paths))}: no input files found")
    seen: dict[str, str] = {}
    for name, path in entries:
        problem = check_name(name)
        if problem:
            raise InputError(f"{path}: name cannot be stored ({problem})")
        key = output_name(name)
        if key in seen:
            raise InputError(f"{path}: would unpack to the same {key} as {seen[key]}")
        seen[key] = path
    return InputList([p for _, p in entries], [n for n, _ in entries], hidden, links)


def output_name(name: str) -> str:
    """The file name unpack writes for a stored name: the same path, its suffix (if any) replaced by .png."""
    folder, _, base = name.rpartition("/")
    dot = base.rfind(".")
    stem = base[:dot] if dot > 0 else base
    return f"{folder}/{stem}.png" if folder else f"{stem}.png"


def read_gray(path: Path) -> tuple[np.ndarray, int]:
    """(uint8 [H, W] of any size, flags) of one image file; InputError names the file and the problem."""
    array, flags, _ = read_gray_sized(path)
    return array, flags


def read_gray_sized(path: Path) -> tuple[np.ndarray, int, int]:
    """read_gray(path) and the file's size in bytes, from one open (pack reads thousands of these).

    Small files are read with bare os.read into bytes (7 us less per file than
    a buffered file object, measured on the MNIST PNGs) and tried on the
    plain-PNG fast path; anything else is handed to Image.open.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        # O_NONBLOCK: opening a FIFO that has no writer must not hang pack.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        try:
            status = os.fstat(fd)
            if not stat.S_ISREG(status.st_mode):
                raise InputError(f"{path}: not a regular file")
            size = status.st_size
            if size == 0:
                raise InputError(f"{path}: empty file")
            if size <= SMALL_FILE:
                data = _read_to_end(fd, size)
                array = plain_png.decode(data)
                source = io.BytesIO(data) if array is None else None
            else:
                array, source = None, open(fd, "rb", closefd=False)
            flags = 0
            if array is None:
                with source, Image.open(source) as img:
                    img.load()
                    if img.mode != "L":
                        flags |= FLAG_CONVERTED
                        img = _to_gray(img)
                    array = np.asarray(img, dtype=np.uint8)
        finally:
            os.close(fd)
    except UnidentifiedImageError:
        raise InputError(f"{path}: not an image Pillow can read") from None
    except Image.DecompressionBombError as err:
        raise InputError(f"{path}: image too large ({err})") from None
    except (OSError, ValueError, SyntaxError, EOFError) as err:
        raise InputError(f"{path}: cannot read image ({err})") from None
    if array.ndim != 2 or 0 in array.shape:
        raise InputError(f"{path}: not a single-channel image after conversion ({array.shape})")
    return array, flags, size


def _read_to_end(fd: int, size: int) -> bytes:
    """The whole file: one read of the size fstat gave, more only after a short read or a change."""
    data = os.read(fd, size + 1)
    if len(data) != size:
        parts = [data]
        while chunk := os.read(fd, 1 << 16):
            parts.append(chunk)
        data = b"".join(parts)
    return data


def _to_gray(img):
    from PIL import Image

    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit (Pillow may hand it over as 32-bit 'I'): keep the top 8 of 16 bits.
        wide = np.asarray(img).astype(np.int64)
        return Image.fromarray((wide >> 8).clip(0, 255).astype(np.uint8), "L")
    if img.mode == "F":
        return Image.fromarray(np.nan_to_num(np.asarray(img)).clip(0, 255).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA"):
        # Transparent areas become background, in the shade that contrasts
        # with the opaque (ink) pixels: black behind light ink, white behind
        # dark ink (which --invert auto then turns white on black).
        rgba = img.convert("RGBA")
        alpha = np.asarray(rgba.getchannel("A"), dtype=np.float64)
        ink = np.asarray(rgba.convert("L"), dtype=np.float64)
        weight = alpha.sum()
        light_ink = weight == 0 or (ink * alpha).sum() / weight > 127
        shade = 0 if light_ink else 255
        background = Image.new("RGBA", img.size, (shade, shade, shade, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("L")


def safe_output_path(out_dir: Path, name: str) -> Path:
    """out_dir / name, refusing any name that could land outside out_dir."""
    problem = check_name(name)
    if problem:
        raise OutputError(f"{name!r}: refusing to write ({problem})")
    target = out_dir / name
    root = out_dir.resolve()
    # resolve() follows symlinks already in the target folder: a link there
    # that points elsewhere must not carry the output with it.
    resolved = target.parent.resolve() / target.name
    if root != resolved.parent and root not in resolved.parents:
        raise OutputError(f"{target}: refusing to write outside {out_dir} (symbolic link in the way?)")
    if target.is_symlink():
        raise OutputError(f"{target}: refusing to write through a symbolic link")
    return target


class OutputFolder:
    """Targets under one output folder for many names, each folder checked once (not once per file).

    A folder is trusted once it exists and resolves inside the root; files
    are then created without following links (write_new_file refuses an
    existing name, a symbolic link included).
    """

    def __init__(self, root: Path):
        self.root = Path(root)
        self._root = os.fspath(root)
        self._trusted: set[str] = set()

    def target(self, name: str) -> str:
        problem = check_name(name)
        if problem:
            raise OutputError(f"{name!r}: refusing to write ({problem})")
        parent = name.rpartition("/")[0]
        if parent not in self._trusted:
            safe_output_path(self.root, name)
            if os.path.isdir(os.path.join(self._root, parent)):
                self._trusted.add(parent)
        return os.path.join(self._root, name)


def encode_png(image: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image, "L").save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()
