"""An .aec container opened for decoding: its model found, its chunks turned into pixels.

The unpack side's first half, shared by unpack, unpack --test and decode():
container reader (verified) -> entropy decoder -> decoder network -> uint8
pixels as the model gives them, chunk by chunk.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterator

import numpy as np

from . import residual, runtime
from .container import FILE_HAS_LABELS, Reader, chunk_pixel_crc, image_crcs, open_container
from .entropy import CODER_ID, LatentCoder
from .errors import ContainerError
from .guarantee import NO_RESIDUAL
from .modelfile import Model
from .models import model_for_fingerprint
from .names import decode_table, iter_names
from .record import FLAG_RESIDUAL, FLAG_RESIZED, Geometry, decode_record


@dataclass
class Opened:
    reader: Reader
    model: Model
    coder: LatentCoder

    def stored_names(self) -> Iterator[str]:
        """The stored names, one by one (each call reads the names table again: memory stays flat)."""
        h = self.reader.header
        return iter_names(self.reader.names_blob, h.names_raw_length, h.image_count)


def open_for_decoding(
    source: str | os.PathLike | BinaryIO | bytes, model: str | os.PathLike | Model | None = None
) -> Opened:
    """Open a container and find the model that made it (`model` if given: it must match)."""
    reader = open_container(source)
    try:
        codec_model = model_for_fingerprint(reader.header.fingerprint, model)
        h = reader.header
        if (h.height, h.width) != codec_model.image_shape or h.latents != codec_model.latents:
            raise ContainerError(
                f"{reader.where}: header geometry or latent count does not match model {codec_model.name}"
            )
        if h.coder_id != CODER_ID:
            raise ContainerError(f"{reader.where}: unknown entropy coder {h.coder_id}")
        coder = LatentCoder(codec_model)
        reader.check_capacity(coder.min_bytes_per_image)
        return Opened(reader, codec_model, coder)
    except BaseException:
        reader.stream.close()
        raise


Chunk = tuple[np.ndarray, np.ndarray, list[Geometry | None], np.ndarray | None]


def decoded_chunks(opened: Opened) -> Iterator[Chunk]:
    """(uint8 images as the model gives them, flags, geometry per image, labels or None) for each chunk."""
    for _, _, chunk in selected_chunks(opened):
        yield chunk


def selected_chunks(
    opened: Opened, wanted: Callable[[int], bool] | None = None
) -> Iterator[tuple[int, int, Chunk | None]]:
    """(chunk index, image count, decoded chunk or None) for each chunk; the chunks `wanted` refuses
    are stepped over, neither read nor decoded."""
    reader = opened.reader
    for index, (count, info, latents) in enumerate(reader.chunks(opened.coder.min_bytes_per_image, wanted)):
        yield index, count, None if info is None else decode_chunk(opened, index, count, info, latents)


@dataclass
class Coded:
    """A chunk's entropy-decoded latents, and what its residual needs: the live range decoder (positioned
    after the latents) and each image's max error (NO_RESIDUAL where it has none)."""

    latents: np.ndarray  # int32 [count, latents]
    decoder: object
    max_errors: np.ndarray | None  # int16 [count], None when no image has a residual

    def __len__(self) -> int:
        return len(self.latents)


def chunk_latents(opened: Opened, index: int, count: int, info: bytes, latents: bytes):
    """One verified chunk's bytes to (Coded, flags, geometry, labels): everything but the pixels."""
    reader, model = opened.reader, opened.model
    try:
        record = decode_record(info, count, bool(reader.header.flags & FILE_HAS_LABELS))
        flags, rows, labels = record.flags, record.geometry, record.labels
        q, decoder = opened.coder.decode_stream(latents, count)
    except ContainerError as err:
        raise ContainerError(f"{reader.where}: chunk {index + 1}: {err}") from None
    max_errors = None
    if len(record.max_errors):
        max_errors = np.full(count, NO_RESIDUAL, np.int16)
        max_errors[flags & FLAG_RESIDUAL != 0] = record.max_errors
    geometry: list[Geometry | None] = [None] * count
    for row, i in zip(rows, np.flatnonzero(flags & FLAG_RESIZED)):
        g = Geometry.from_array(row)
        if not g.valid_for(model.image_shape):
            raise ContainerError(f"{reader.where}: chunk {index + 1}: image {i + 1} has an impossible geometry")
        geometry[i] = g
    return Coded(q, decoder, max_errors), flags, geometry, labels


def checked_pixels(opened: Opened, index: int, coded: Coded) -> np.ndarray:
    """The pixels of chunk `index`, checked against the checksum pack recorded."""
    reader, model = opened.reader, opened.model
    pixels = runtime.decode_latents(model, coded.latents)
    if coded.max_errors is not None:
        if model.exact is None:
            raise ContainerError(
                f"{reader.where}: chunk {index + 1}: a residual with a model that has no exact decoder"
            )
        with_residual = np.flatnonzero(coded.max_errors >= 0)
        try:
            pixels[with_residual] = residual.decode(
                coded.decoder, opened.coder.categorical, pixels[with_residual], coded.max_errors[with_residual]
            )
        except (ValueError, RuntimeError, OverflowError, AssertionError) as err:  # constriction asserts on bad data
            raise ContainerError(f"{reader.where}: chunk {index + 1}: residual cannot be decoded ({err})") from None
    expected = reader.header.pixel_crcs
    if expected is not None and chunk_pixel_crc(image_crcs(pixels)) != expected[index]:
        raise ContainerError(
            f"{reader.where}: chunk {index + 1}: the decoded pixels differ from those pack recorded "
            f"(model {model.name}); nothing was written from this chunk: report this to aec's authors, "
            "with the file, your platform and `pip list`"
        )
    return pixels


def decode_chunk(opened: Opened, index: int, count: int, info: bytes, latents: bytes) -> Chunk:
    """One verified chunk's bytes to (pixels, flags, geometry, labels), the pixels checked."""
    coded, flags, geometry, labels = chunk_latents(opened, index, count, info, latents)
    return checked_pixels(opened, index, coded), flags, geometry, labels


def decode(data: bytes | str | os.PathLike, model: str | os.PathLike | Model | None = None) -> np.ndarray:
    """An .aec container (bytes or path) -> uint8 images [N, H, W] as the model sees them, in stored order."""
    opened = open_for_decoding(data, model)
    with opened.reader.stream:
        h = opened.reader.header
        decode_table(opened.reader.names_blob, h.names_raw_length, h.image_count)
        parts = [images for images, _, _, _ in decoded_chunks(opened)]
    return np.concatenate(parts) if parts else np.zeros((0, *opened.model.image_shape), np.uint8)
