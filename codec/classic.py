"""Classic codecs behind one interface, for `aec bench` and the rate-distortion benchmark.

Modelled on CompressAI's compressai/utils/bench: every codec has a `name`, a
`parameter` (its quality knob, or None) and `run(images) -> CodecResult`,
which codes a whole set of uint8 [N, H, W] images and returns the total
bytes stored, the decoded images and the time spent coding and decoding.

Byte counts are what a user stores:
- per-image formats (PNG, WebP, JPEG, AVIF, all through Pillow): the sum of
  the complete files, container and header included (the "folder" of files,
  without file-system overhead or names). `folder_xz_bytes` adds the "whole
  folder" number: the files concatenated and compressed with xz (lzma preset
  9e), i.e. what an archive of the folder could save on the repeated headers.
- whole-set codecs (xz of the raw pixels): one stream for the set, with its
  header. `coded_bytes` is the payload without the header where that is
  meaningful, else None.
"""

from __future__ import annotations

import io
import lzma
import struct
import time
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

XZ_PRESET = 9 | lzma.PRESET_EXTREME


@dataclass
class CodecResult:
    codec: str
    parameter: float | int | None
    images: int
    whole_bytes: int  # everything stored for the set
    decoded: np.ndarray = field(repr=False)  # uint8 [N, H, W]
    coded_bytes: int | None = None  # payload alone, where meaningful
    folder_xz_bytes: int | None = None  # per-image formats: xz of the concatenated files
    lossless: bool = False
    notes: str = ""
    encode_seconds: float | None = None  # coding the whole set (folder_xz_bytes not included)
    decode_seconds: float | None = None


def xz(data: bytes) -> bytes:
    return lzma.compress(data, format=lzma.FORMAT_XZ, preset=XZ_PRESET)


def check_images(images: np.ndarray) -> np.ndarray:
    """`images` as an array, if it is uint8 [N, H, W]; ValueError otherwise."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"images must be uint8 [N, H, W], not {images.dtype} {images.shape}")
    return images


# --- per-image formats through Pillow ------------------------------------------


class PerImageCodec:
    """A format that stores one file per image; subclasses set `format` and `save_options()`."""

    name = "?"
    format = "?"
    lossless = False
    parameter: int | None = None

    def __init__(self, parameter: int | None = None):
        self.parameter = parameter

    def save_options(self) -> dict:
        return {}

    def encode_one(self, image: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(image, "L").save(buffer, self.format, **self.save_options())
        return buffer.getvalue()

    @staticmethod
    def decode_one(data: bytes) -> np.ndarray:
        # WebP stores grey as RGB (Y plane plus flat chroma); back to L by luminance.
        return np.asarray(Image.open(io.BytesIO(data)).convert("L"))

    def run(self, images: np.ndarray, folder_xz: bool = True) -> CodecResult:
        images = check_images(images)
        start = time.perf_counter()
        files = [self.encode_one(image) for image in images]
        encode_seconds = time.perf_counter() - start
        start = time.perf_counter()
        decoded = np.stack([self.decode_one(f) for f in files])
        decode_seconds = time.perf_counter() - start
        return CodecResult(
            codec=self.name,
            parameter=self.parameter,
            images=len(images),
            whole_bytes=sum(map(len, files)),
            decoded=decoded,
            folder_xz_bytes=len(xz(b"".join(files))) if folder_xz else None,
            lossless=self.lossless,
            notes=self.notes(),
            encode_seconds=encode_seconds,
            decode_seconds=decode_seconds,
        )

    def notes(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.save_options().items())


class PNG(PerImageCodec):
    name, format, lossless = "PNG", "PNG", True

    def save_options(self) -> dict:
        return {"optimize": True}


class WebPLossless(PerImageCodec):
    """Lossless WebP, method 6. In lossless mode Pillow's `quality` is how hard libwebp tries (0..100):
    `effort` sets it, None leaves Pillow's default."""

    name, format, lossless = "WebP lossless", "WEBP", True

    def __init__(self, effort: int | None = 100):
        super().__init__(None)
        self.effort = effort

    def save_options(self) -> dict:
        if self.effort is None:
            return {"lossless": True, "method": 6}
        return {"lossless": True, "quality": int(self.effort), "method": 6}


class WebP(PerImageCodec):
    """Lossy WebP, method 6 (slowest, smallest); parameter = quality 0..100."""

    name, format = "WebP", "WEBP"

    def save_options(self) -> dict:
        return {"quality": int(self.parameter), "method": 6}


class JPEG(PerImageCodec):
    """Baseline JPEG, greyscale (one component), optimised Huffman tables; parameter = quality 1..100."""

    name, format = "JPEG", "JPEG"

    def save_options(self) -> dict:
        return {"quality": int(self.parameter), "optimize": True}


class AVIF(PerImageCodec):
    """AVIF through Pillow's plugin (libavif), 4:0:0 greyscale, Pillow's default speed 6; parameter = quality 0..100."""

    name, format = "AVIF", "AVIF"

    def save_options(self) -> dict:
        return {"quality": int(self.parameter), "subsampling": "4:0:0", "speed": 6, "max_threads": 1}


# --- whole-set codecs ------------------------------------------------------------


class XZRaw:
    """xz (lzma preset 9e, .xz container) of the raw uint8 pixel array; lossless."""

    name = "xz raw pixels"
    parameter = None

    def run(self, images: np.ndarray) -> CodecResult:
        images = check_images(images)
        start = time.perf_counter()
        header = struct.pack("<III", *images.shape)
        data = xz(header + images.tobytes())
        encode_seconds = time.perf_counter() - start
        start = time.perf_counter()
        back = lzma.decompress(data)
        shape = struct.unpack("<III", back[:12])
        decoded = np.frombuffer(back[12:], np.uint8).reshape(shape)
        return CodecResult(
            self.name,
            None,
            len(images),
            len(data),
            decoded,
            lossless=True,
            notes="lzma preset 9e, .xz container, 12-byte shape header inside",
            encode_seconds=encode_seconds,
            decode_seconds=time.perf_counter() - start,
        )
