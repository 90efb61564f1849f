"""Image files to uint8 arrays and back (Pillow).

Rules (README "Input rules"):
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
from pathlib import Path

import numpy as np

from . import plain_png
from .errors import InputError
from .record import FLAG_CONVERTED

SMALL_FILE = 1 << 20  # files up to this size are read whole and tried on the plain-PNG fast path


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


def encode_png(image: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image, "L").save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()
