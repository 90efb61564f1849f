"""The checksums of decoded pixels that pack records in the header and readers compare before using pixels:
one per image first (pack's reader processes compute them beside the encoder), then per chunk and per block
of a chunk (docs/FORMAT.md, header body)."""

from __future__ import annotations

import zlib

import numpy as np

from .entropy import BLOCK_IMAGES
from .record import FLAG_RESIDUAL


def image_crcs(pixels: np.ndarray) -> np.ndarray:
    """uint32 [n]: the CRC-32 of each image's decoded pixels (uint8 [n, ...], row-major)."""
    flat = np.ascontiguousarray(pixels, np.uint8)
    flat = flat.reshape(len(flat), int(np.prod(flat.shape[1:])))  # (not -1: a batch may have no images)
    return np.fromiter((zlib.crc32(row) for row in flat), np.uint32, len(flat))


def chunk_pixel_crc(crcs: np.ndarray) -> int:
    """A chunk's pixel checksum (1.1): the CRC-32 of its images' pixel CRC-32s, as little-endian uint32.
    Per image first, so that pack's reader processes compute them beside the encoder."""
    return zlib.crc32(np.asarray(crcs, "<u4").tobytes())


def block_pixel_crcs(crcs: np.ndarray, flags: np.ndarray) -> list[int]:
    """A chunk's block checksums (1.2, 2.1), from its images' pixel CRC-32s and flags: for each block of
    BLOCK_IMAGES images, chunk_pixel_crc of its images without a residual. Those are the decoder's pixels,
    so one block checks alone; an image with a residual needs the chunk's one residual stream, and the
    chunk's checksum covers it."""
    plain = (np.asarray(flags) & FLAG_RESIDUAL) == 0
    return [
        chunk_pixel_crc(crcs[i : i + BLOCK_IMAGES][plain[i : i + BLOCK_IMAGES]])
        for i in range(0, max(len(crcs), 1), BLOCK_IMAGES)
    ]


def chunk_blocks(images: int) -> int:
    """Blocks of BLOCK_IMAGES in a chunk of `images` (at least one)."""
    return max(-(-images // BLOCK_IMAGES), 1)
