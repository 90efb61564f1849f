"""Image files to uint8 arrays and back (Pillow).

Rules (README "Input rules"):
- only regular files are read (a FIFO or a device is an invalid input), and
  only images of at most MAX_PIXELS pixels, checked from the header before
  any pixel is decoded; conversions stay in 8-, 16- or 32-bit arrays, so an
  image costs a bounded multiple of its pixel count;
- images are converted to 8-bit grayscale ('L'): colour by luminance,
  16-bit by its top 8 bits; a converted image is flagged in the container;
- alpha: when every pixel has the same alpha it says nothing about the digit
  and is ignored (all transparent: a blank, black image); otherwise the image
  is taken as it looks best as a digit on a plain background: composited
  onto black, onto white, or its colours as they are (see _digit_score).
  Size and polarity (a dark digit on white is inverted) are prepare.py's job.
"""

from __future__ import annotations

import io
import math
import os
import stat
import warnings
from pathlib import Path

import numpy as np

from . import plain_png
from .errors import InputError
from .record import FLAG_CONVERTED

SMALL_FILE = 1 << 20  # files up to this size are read whole and tried on the plain-PNG fast path
# At most 4096x4096 pixels (or as many in another shape): 67 MB decoded as RGBA, and a bounded few times
# that while converted, where a 315 KB 9000x9000 PNG once cost 2.6 GB. MNIST digits are 28x28.
MAX_PIXELS = 4096 * 4096
INK_CONTRAST = 64  # a pixel this far from the background counts as ink when composites are compared
SCORE_PIXELS = 1 << 18  # composites of larger images are compared on a subsample of about this many pixels


def read_gray(path: Path) -> tuple[np.ndarray, int]:
    """(uint8 [H, W] of any size, flags) of one image file; InputError names the file and the problem."""
    array, flags, _ = read_gray_sized(path)
    return array, flags


def read_gray_sized(path: Path) -> tuple[np.ndarray, int, int]:
    """read_gray(path) and the file's size in bytes, from one open (pack reads thousands of these)."""
    result = read_gray_many([path])[0]
    if isinstance(result, InputError):
        raise result
    return result


def read_gray_many(paths: list) -> list[tuple[np.ndarray, int, int] | InputError]:
    """read_gray_sized of each path, or the InputError that names it (returned, so that one bad file
    of a batch does not hide the others).

    Small files are read with bare os.read into bytes (7 us less per file than a buffered file
    object, measured on the MNIST PNGs) and the plain 8-bit grayscale PNGs among them decoded
    together (plain_png.decode_many); anything else is handed to Image.open.
    """
    out: list = []
    for path in paths:
        try:
            out.append(_read_file(path))
        except InputError as err:
            out.append(err)
    small = [i for i, r in enumerate(out) if isinstance(r, tuple) and len(r) == 2]  # (bytes, size)
    for i, array in zip(small, plain_png.decode_many([out[i][0] for i in small])):
        data, size = out[i]
        try:
            out[i] = (array, 0, size) if array is not None else (*_read_with_pillow(paths[i], data), size)
        except InputError as err:
            out[i] = err
    return out


def _read_file(path) -> tuple:
    """A regular, non-empty file (else InputError): (its bytes, its size) if it is small, else
    (uint8 [H, W], flags, size) as Pillow reads it from the same open file."""
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
                return _read_to_end(fd, size, path), size
            return (*_read_with_pillow(path, open(fd, "rb", closefd=False)), size)
        finally:
            os.close(fd)
    except OSError as err:
        raise InputError(f"{path}: cannot read image ({err})") from None


def _read_with_pillow(path, source) -> tuple[np.ndarray, int]:
    """(uint8 [H, W], flags) of an image Pillow reads from `source`: the file's bytes, or a file object."""
    from PIL import Image, UnidentifiedImageError

    try:
        source = io.BytesIO(source) if isinstance(source, bytes) else source
        flags = 0
        with source, warnings.catch_warnings():
            # Pillow warns of "decompression bombs" above 89 M pixels (MAX_PIXELS refuses them first) and of
            # damaged tags; a file it cannot read is one error line, not warnings on stderr.
            warnings.simplefilter("ignore")
            with Image.open(source) as img:
                width, height = img.size
                if width * height > MAX_PIXELS:
                    raise InputError(
                        f"{path}: image of {width}x{height} is too large ({width * height} pixels; "
                        f"at most {MAX_PIXELS}, 4096x4096)"
                    )
                img.load()
                if img.mode == "L":
                    array = np.asarray(img, dtype=np.uint8)
                else:
                    flags |= FLAG_CONVERTED
                    array = _to_gray(img)
    except UnidentifiedImageError:
        raise InputError(f"{path}: not an image Pillow can read") from None
    except Image.DecompressionBombError as err:
        raise InputError(f"{path}: image too large ({err})") from None
    except (OSError, ValueError, SyntaxError, EOFError, TypeError) as err:  # TypeError: Pillow on damaged TIFF tags
        raise InputError(f"{path}: cannot read image ({err})") from None
    if array.ndim != 2 or 0 in array.shape:
        raise InputError(f"{path}: not a single-channel image after conversion ({array.shape})")
    return array, flags


def _read_to_end(fd: int, size: int, path: Path) -> bytes:
    """The whole file: one read of the size fstat gave, more only after a short read or a change."""
    data = os.read(fd, size + 1)
    if len(data) != size:
        parts, total = [data], len(data)
        while chunk := os.read(fd, 1 << 16):
            parts.append(chunk)
            total += len(chunk)
            if total > SMALL_FILE:  # grew while being read: not a file to trust
                raise InputError(f"{path}: changed while being read")
        data = b"".join(parts)
    return data


def _to_gray(img) -> np.ndarray:
    """uint8 [H, W] of a decoded Pillow image of any mode but 'L', in arrays of at most 4 bytes a pixel."""
    if img.mode.startswith("I;16"):
        return (np.asarray(img) >> 8).astype(np.uint8)  # 16-bit: keep the top 8 bits
    if img.mode == "I":
        # 32-bit (Pillow hands some 16-bit images over so): the top 8 of 16 bits, in place.
        wide = np.array(img, dtype=np.int32)
        wide >>= 8
        return np.clip(wide, 0, 255, out=wide).astype(np.uint8)
    if img.mode == "F":
        values = np.array(img, dtype=np.float32)
        np.nan_to_num(values, copy=False)
        return np.clip(values, 0, 255, out=values).astype(np.uint8)
    if img.mode == "P" and "transparency" in img.info or img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        return _flatten_alpha(img)
    return np.asarray(img.convert("L"), dtype=np.uint8)


def _flatten_alpha(img) -> np.ndarray:
    """uint8 [H, W] of an image with alpha: see the module's rule."""
    if img.mode in ("LA", "La"):
        img = img if img.mode == "LA" else img.convert("LA")  # premultiplied La converts only to LA
        gray, alpha = np.asarray(img.getchannel("L")), np.asarray(img.getchannel("A"))
    else:
        rgba = img if img.mode == "RGBA" else img.convert("RGBA")
        gray, alpha = np.asarray(rgba.convert("L")), np.asarray(rgba.getchannel("A"))
        del rgba
    low, high = int(alpha.min()), int(alpha.max())
    if low == high:  # uniform: alpha carries no shape (all transparent: nothing to see)
        return gray if high else np.zeros_like(gray)
    mixed = gray.astype(np.uint16)
    mixed *= alpha
    mixed += 127
    mixed //= 255
    on_black = mixed.astype(np.uint8)
    del mixed
    on_white = np.subtract(255, alpha, dtype=np.uint8)
    on_white += on_black  # on_black <= alpha: no overflow
    # First of equals wins: colours as they are, then black, then white.
    return max((gray, on_black, on_white), key=_digit_score)


def _digit_score(gray: np.ndarray) -> float:
    """How much `gray` looks like ink on a plain background: the contrast of its ink against the border's
    typical shade, less how much the border varies; an image with no ink, or mostly ink, scores low."""
    border = np.concatenate([gray[0], gray[-1], gray[1:-1, 0], gray[1:-1, -1]]).astype(np.int16)
    background = int(np.median(border))
    spread = float(np.abs(border - background).mean())
    step = max(1, math.isqrt(gray.size // SCORE_PIXELS))
    diff = np.abs(gray[::step, ::step].astype(np.int16) - background)
    ink = diff > INK_CONTRAST
    count = int(np.count_nonzero(ink))
    if not count:
        return -2 * spread
    contrast = float(diff[ink].mean())
    share = count / diff.size
    if share > 0.5:  # more ink than background: the border's shade is not the background
        contrast *= 2 * (1 - share)
    return contrast - 2 * spread


def encode_png(image: np.ndarray) -> bytes:
    import io

    from PIL import Image

    # Named, so that Pillow finds the format from the extension and imports its PNG plugin alone: format="PNG"
    # imports five plugins first (25 ms, a twentieth of extracting one image). The bytes are the same.
    buffer = io.BytesIO()
    buffer.name = "image.png"
    Image.fromarray(image, "L").save(buffer, optimize=False)
    return buffer.getvalue()
