"""A fast path for the commonest input: an 8-bit grayscale PNG, decoded by Pillow without Image.open.

Why this exists: for a 28x28 digit, Image.open's generic machinery (format
detection, chunk parsing in Python, ImageFile.load) costs about 40 us, most
of pack's time per image (measured: 41 us per file through Image.open, 28 us
through this path, on the MNIST test PNGs). Here the PNG's chunk list is
walked with struct (CRCs checked) and the pixels are decoded by Pillow's own
zlib/PNG-filter decoder (Image.frombytes with the "zip" decoder), so the
pixels are Pillow's. Anything else - other colour types or bit depths,
interlacing, transparency, an unknown critical chunk, a bad CRC, a
truncated or oversized image - returns None and goes through Image.open,
which decides and words any error. A test checks that both paths agree.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_PIXELS = 1 << 22  # bigger images take the ordinary path (and its decompression-bomb checks)
_CHUNK_HEAD = struct.Struct(">I4s")
_IHDR = struct.Struct(">IIBBBBB")
_CRC = struct.Struct(">I")


def decode(data: bytes) -> np.ndarray | None:
    """uint8 [H, W] of a plain 8-bit grayscale PNG file's bytes, or None for anything else."""
    if not data.startswith(SIGNATURE):
        return None
    pos, end, size, parts = len(SIGNATURE), len(data), None, []
    while True:
        if pos + 12 > end:
            return None  # truncated: no IEND
        length, kind = _CHUNK_HEAD.unpack_from(data, pos)
        body_end = pos + 8 + length
        if body_end + 4 > end or zlib.crc32(data[pos + 4 : body_end]) != _CRC.unpack_from(data, body_end)[0]:
            return None
        if kind == b"IHDR":
            if size is not None or length != _IHDR.size:
                return None
            width, height, depth, colour, compression, filtering, interlace = _IHDR.unpack_from(data, pos + 8)
            if (depth, colour, compression, filtering, interlace) != (8, 0, 0, 0, 0):
                return None
            if not 0 < width * height <= MAX_PIXELS:
                return None
            size = (width, height)
        elif size is None:
            return None  # IHDR must come first
        elif kind == b"IDAT":
            parts.append(data[pos + 8 : body_end])
        elif kind == b"IEND":
            break
        elif kind == b"tRNS" or not kind[0] & 0x20:
            return None  # transparency, or a critical chunk this path does not know
        pos = body_end + 4
    from PIL import Image

    try:
        image = Image.frombytes("L", size, b"".join(parts), "zip", "L")
    except (ValueError, OSError, zlib.error):
        return None
    return np.asarray(image)


def blank(height: int, width: int) -> bytes:
    """A black 8-bit grayscale PNG of this size, made without Pillow: pack's reader processes decode one
    to warm up, and saving one with Pillow would import five format plugins they never use (20-30 ms)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return _CHUNK_HEAD.pack(len(body), kind) + body + _CRC.pack(zlib.crc32(kind + body))

    rows = b"\0" * ((width + 1) * height)  # each row: filter type 0, then its pixels
    header = _IHDR.pack(width, height, 8, 0, 0, 0, 0)
    return SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
