"""The per-image record: what pack did to each image (flags), where a resized image came
from (geometry) and its label. Stored zlib-compressed per chunk (docs/FORMAT.md)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from .errors import ContainerError

# Per-image flag bits (one byte per image).
FLAG_CONVERTED = 1 << 0  # colour/alpha/palette/16-bit converted to 8-bit grayscale
FLAG_INVERTED = 1 << 1  # black-on-white input inverted for the model
FLAG_RESIZED = 1 << 2  # resized to the model's geometry
FLAG_RESIDUAL = 1 << 3  # a residual follows the latents: pixels within the record's max error (format 2)
FLAG_RESCUED = 1 << 4  # below the quality floor as first coded: searched again or given a residual (format 2)
KNOWN_FLAGS = FLAG_CONVERTED | FLAG_INVERTED | FLAG_RESIZED | FLAG_RESIDUAL | FLAG_RESCUED
FORMAT_2_FLAGS = FLAG_RESIDUAL | FLAG_RESCUED  # a file with any of these is written as format 2.0
NO_LABEL = -1  # the label of an image without one, in a file where others have labels
# The residual decoder holds all of a chunk's residual images at once (its tables adapt across them):
# about 40 bytes a pixel and its tables, so this bounds its memory near 150 MB for 28x28 images.
MAX_RESIDUAL_IMAGES = 4096
FLAG_WORDS = {
    FLAG_CONVERTED: "converted",
    FLAG_INVERTED: "inverted",
    FLAG_RESIZED: "resized",
    FLAG_RESIDUAL: "residual",
    FLAG_RESCUED: "rescued",
}


def flag_words(flags: int) -> list[str]:
    """What pack did to an image, in words (aec list)."""
    return [word for bit, word in FLAG_WORDS.items() if flags & bit]


GEOMETRY_FIELDS = 10  # per resized image: width, height, ink box (4), place in frame (4), as uint16
# The largest original canvas: pack's limit on input images (images.MAX_PIXELS), so that a few bytes of
# record cannot ask --restore-size for a 65535x65535 canvas.
MAX_CANVAS_PIXELS = 4096 * 4096


@dataclass(frozen=True)
class Geometry:
    """Where a resized digit came from: original size, ink box, and its place in the model frame."""

    width: int
    height: int
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the original (x1, y1 exclusive)
    place: tuple[int, int, int, int]  # x, y, w, h of the scaled box in the model frame

    def to_array(self) -> np.ndarray:
        return np.array([self.width, self.height, *self.box, *self.place], dtype="<u2")

    @classmethod
    def from_array(cls, a) -> "Geometry":
        a = [int(v) for v in a]
        return cls(a[0], a[1], (a[2], a[3], a[4], a[5]), (a[6], a[7], a[8], a[9]))

    def valid_for(self, shape: tuple[int, int]) -> bool:
        x0, y0, x1, y1 = self.box
        x, y, w, h = self.place
        return (
            0 <= x0 < x1 <= self.width
            and 0 <= y0 < y1 <= self.height
            and self.width * self.height <= MAX_CANVAS_PIXELS
            and w >= 1
            and h >= 1
            and x + w <= shape[1]
            and y + h <= shape[0]
        )


@dataclass(frozen=True)
class Record:
    """A chunk's per-image record, decoded."""

    flags: np.ndarray  # uint8 [count]
    geometry: np.ndarray  # uint16 [resized, GEOMETRY_FIELDS]
    labels: np.ndarray | None  # int32 [count]
    max_errors: np.ndarray  # uint8 [images with FLAG_RESIDUAL]: each one's bound on |pixel - original|
    residual_bytes: int = 0  # what the chunk's residual took (informational)


def encode_image_info(
    flags: np.ndarray,
    geometry: np.ndarray,
    labels: np.ndarray | None = None,
    max_errors: np.ndarray | None = None,
    residual_bytes: int = 0,
) -> bytes:
    """A chunk's per-image record: zlib of one flag byte per image, GEOMETRY_FIELDS
    little-endian uint16 per resized image, then (files with labels) one
    little-endian int32 label per image, then (format 2) one max-error byte per
    image with a residual and a uint32: the bytes the residual took. Empty when
    there is nothing to say."""
    if not flags.any() and labels is None:
        return b""
    resized = int(np.count_nonzero(flags & FLAG_RESIZED))
    if geometry.shape != (resized, GEOMETRY_FIELDS):
        raise ValueError("one geometry row per resized image")
    raw = flags.astype(np.uint8).tobytes() + geometry.astype("<u2").tobytes()
    if labels is not None:
        raw += labels.astype("<i4").tobytes()
    residuals = int(np.count_nonzero(flags & FLAG_RESIDUAL))
    if residuals:
        if max_errors is None or len(max_errors) != residuals:
            raise ValueError("one max error per image with a residual")
        raw += np.asarray(max_errors, np.uint8).tobytes() + int(residual_bytes).to_bytes(4, "little")
    return zlib.compress(raw, 9)


def decode_image_info(
    stored: bytes, count: int, has_labels: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(flags uint8[count], geometry uint16[resized, GEOMETRY_FIELDS], labels int32[count] or None) of one chunk."""
    record = decode_record(stored, count, has_labels)
    return record.flags, record.geometry, record.labels


def decode_record(stored: bytes, count: int, has_labels: bool = False) -> Record:
    """One chunk's record, every length checked against the image count."""
    no_errors = np.zeros(0, np.uint8)
    if not stored:
        if has_labels:
            raise ContainerError(f"image record missing: the file has labels for its {count} images")
        return Record(np.zeros(count, np.uint8), np.zeros((0, GEOMETRY_FIELDS), np.uint16), None, no_errors)
    label_bytes = 4 * count if has_labels else 0
    limit = count * (2 + 2 * GEOMETRY_FIELDS) + label_bytes + 4
    try:
        decompressor = zlib.decompressobj()
        raw = decompressor.decompress(stored, limit + 1)
    except zlib.error as err:
        raise ContainerError(f"image flags: cannot decompress ({err})") from None
    if len(raw) < count or not decompressor.eof or decompressor.unused_data:
        raise ContainerError(f"image flags: damaged record for {count} images")
    flags = np.frombuffer(raw, dtype=np.uint8, count=count).copy()
    if np.any(flags & ~np.uint8(KNOWN_FLAGS)):
        raise ContainerError("image flags: unknown flag bits")
    resized = int(np.count_nonzero(flags & FLAG_RESIZED))
    residuals = int(np.count_nonzero(flags & FLAG_RESIDUAL))
    if residuals > MAX_RESIDUAL_IMAGES:
        raise ContainerError(
            f"image flags: {residuals} images with a residual in one chunk (at most {MAX_RESIDUAL_IMAGES})"
        )
    geometry_bytes = 2 * GEOMETRY_FIELDS * resized
    residual_part = residuals + 4 if residuals else 0
    if len(raw) != count + geometry_bytes + label_bytes + residual_part:
        raise ContainerError(
            f"image flags: record of {len(raw)} bytes does not fit {count} images, {resized} with geometry"
            + (f", {residuals} with a residual" if residuals else "")
        )
    geometry = np.frombuffer(raw, dtype="<u2", offset=count, count=resized * GEOMETRY_FIELDS)
    at = count + geometry_bytes
    labels = np.frombuffer(raw, dtype="<i4", offset=at, count=count).astype(np.int32) if has_labels else None
    at += label_bytes
    max_errors, residual_bytes = no_errors, 0
    if residuals:
        max_errors = np.frombuffer(raw, dtype=np.uint8, offset=at, count=residuals).copy()
        residual_bytes = int.from_bytes(raw[at + residuals : at + residuals + 4], "little")
    return Record(
        flags, geometry.reshape(resized, GEOMETRY_FIELDS).astype(np.uint16), labels, max_errors, residual_bytes
    )
