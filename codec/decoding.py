"""An .aec container opened for decoding: its model found, its chunks turned into pixels.

The unpack side's first half, shared by unpack, unpack --test and decode():
container reader (verified) -> entropy decoder -> decoder network -> uint8
pixels as the model gives them, chunk by chunk.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterable, Iterator

import numpy as np

from . import residual, runtime
from .checksums import block_pixel_crcs, chunk_blocks, image_crcs
from .container import FILE_HAS_LABELS, Reader, open_container
from .entropy import BLOCK_IMAGES, CODER_BLOCKS, LatentCoder
from .errors import ContainerError
from .guarantee import NO_RESIDUAL
from .modelfile import Model
from .models import model_for_fingerprint
from .names import iter_names, name_hashes
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
        try:
            coder = LatentCoder(codec_model, h.coder_id)
        except ContainerError as err:
            raise ContainerError(f"{reader.where}: {err}") from None
        reader.check_capacity(coder.min_bytes_per_image)
        return Opened(reader, codec_model, coder)
    except BaseException:
        reader.stream.close()
        raise


Chunk = tuple[np.ndarray, np.ndarray, list[Geometry | None], np.ndarray | None]
# Images through the decoder at once: its activations and the pixels stay a few MB whatever a chunk holds.
PIXEL_SLICE = 4096
# A chunk's pixels held while they are checked before use; a chunk with more (a chunk may hold 2^20 images)
# is decoded twice, once to check its pixels and once to use them, so that memory stays bounded.
PIXELS_HELD = 64 << 20


def decoded_parts(
    opened: Opened,
    wanted: Callable[[int], bool] | None = None,
    rows: Callable[[int, int], np.ndarray] | None = None,
) -> Iterator[tuple[int, int, Chunk]]:
    """(chunk index, first image in the chunk, part) for each part of each chunk, in order: a part is up to
    PIXEL_SLICE images' (pixels, flags, geometry, labels), every pixel checked. The chunks `wanted` refuses
    are stepped over, neither read nor decoded. `rows(index, count)`, if given, are the only images of
    chunk `index` the caller will use: where the file has block checksums and none of them has a residual,
    only the blocks that hold them are decoded (block_parts), and the part's other images may be wrong."""
    reader = opened.reader
    for index, (count, info, latents) in enumerate(reader.chunks(opened.coder.min_bytes_per_image, wanted)):
        if info is None:
            continue
        if rows is not None and reader.header.block_crcs is not None and opened.coder.coder_id == CODER_BLOCKS:
            record = chunk_record(opened, index, count, info)
            local = rows(index, count)
            if record[3] is None or not np.any(record[3][local] >= 0):
                yield from block_parts(opened, index, count, latents, record, local)
                continue
        coded, flags, geometry, labels = chunk_latents(opened, index, count, info, latents)
        for start, pixels in pixel_slices(opened, index, coded):
            end = start + len(pixels)
            part_labels = None if labels is None else labels[start:end]
            yield index, start, (pixels, flags[start:end], geometry[start:end], part_labels)


def block_parts(opened: Opened, index: int, count: int, latents: bytes, record, local: np.ndarray):
    """(chunk index, first image, part) for each block of chunk `index` that holds an image of `local`, each
    block decoded and its images without a residual checked against the block's checksum; the images with a
    residual are the decoder's pixels, not theirs (see decoded_parts)."""
    reader, model = opened.reader, opened.model
    flags, geometry, labels, _ = record
    first_block = index * chunk_blocks(reader.header.chunk_size)
    cache: dict = {}
    for block in sorted(set((np.asarray(local) // BLOCK_IMAGES).tolist())):  # (np.unique imports numpy.ma)
        start, stop = block * BLOCK_IMAGES, min(count, (block + 1) * BLOCK_IMAGES)
        q = entropy_decoded(opened, index, count, latents, np.arange(start, stop), cache)
        pixels = runtime.decode_latents(model, q)
        crcs = image_crcs(pixels)
        if block_pixel_crcs(crcs, flags[start:stop]) != [reader.header.block_crcs[first_block + block]]:
            raise ContainerError(_differ(reader.where, f"chunk {index + 1}, block {block + 1}", model))
        part_labels = None if labels is None else labels[start:stop]
        yield index, start, (pixels, flags[start:stop], geometry[start:stop], part_labels)


def _differ(where: str, what: str, model: Model) -> str:
    return (
        f"{where}: {what}: the decoded pixels differ from those pack recorded "
        f"(model {model.name}); nothing was written from this chunk: report this to aec's authors, "
        "with the file, your platform and `pip list`"
    )


def verify_chunks(opened: Opened) -> int:
    """Read, entropy-decode and decode every chunk, checking its pixels, keeping none: the images counted."""
    images = 0
    for index, (count, info, latents) in enumerate(opened.reader.chunks(opened.coder.min_bytes_per_image)):
        coded = chunk_latents(opened, index, count, info, latents)[0]
        _checked_pass(opened, index, coded, residual_pixels(opened, index, coded), hold=False)
        images += count
    return images


@dataclass
class Coded:
    """A chunk's entropy-decoded latents, and what its residual needs: the live range decoder (positioned
    after the latents) and each image's max error (NO_RESIDUAL where it has none)."""

    latents: np.ndarray  # int32 [count, latents]
    decoder: object
    max_errors: np.ndarray | None  # int16 [count], None when no image has a residual

    def __len__(self) -> int:
        return len(self.latents)


def chunk_record(opened: Opened, index: int, count: int, info: bytes):
    """One verified chunk's per-image record: (flags, geometry, labels, max errors or None)."""
    reader, model = opened.reader, opened.model
    try:
        record = decode_record(info, count, bool(reader.header.flags & FILE_HAS_LABELS))
    except ContainerError as err:
        raise ContainerError(f"{reader.where}: chunk {index + 1}: {err}") from None
    flags, rows, labels = record.flags, record.geometry, record.labels
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
    return flags, geometry, labels, max_errors


def chunk_latents(opened: Opened, index: int, count: int, info: bytes, latents: bytes):
    """One verified chunk's bytes to (Coded, flags, geometry, labels): everything but the pixels."""
    flags, geometry, labels, max_errors = chunk_record(opened, index, count, info)
    q, decoder = entropy_decoded(opened, index, count, latents)
    return Coded(q, decoder, max_errors), flags, geometry, labels


def entropy_decoded(opened: Opened, index: int, count: int, latents: bytes, rows=None, cache=None):
    """The chunk's latents: (int32 [count, latents], the live decoder), or with `rows` only theirs
    (decoding only the blocks that hold them; `cache` keeps decoded blocks between calls)."""
    try:
        if rows is None:
            return opened.coder.decode_stream(latents, count)
        return opened.coder.decode_rows(latents, count, rows, cache)
    except ContainerError as err:
        raise ContainerError(f"{opened.reader.where}: chunk {index + 1}: {err}") from None


def residual_pixels(opened: Opened, index: int, coded: Coded) -> tuple[np.ndarray, np.ndarray] | None:
    """(positions, pixels) of the chunk's images with a residual (at most MAX_RESIDUAL_IMAGES), or None.
    The residual decoder needs them all at once, and the decoder's pixels of these images only."""
    reader, model = opened.reader, opened.model
    if coded.max_errors is None:
        return None
    if model.exact is None:
        raise ContainerError(f"{reader.where}: chunk {index + 1}: a residual with a model that has no exact decoder")
    with_residual = np.flatnonzero(coded.max_errors >= 0)
    predictions = runtime.decode_latents(model, coded.latents[with_residual])
    try:
        pixels = residual.decode(coded.decoder, opened.coder.categorical, predictions, coded.max_errors[with_residual])
    except (ValueError, RuntimeError, OverflowError, AssertionError) as err:  # constriction asserts on bad data
        raise ContainerError(f"{reader.where}: chunk {index + 1}: residual cannot be decoded ({err})") from None
    return with_residual, pixels


def _slices(opened: Opened, coded: Coded, residuals) -> Iterator[tuple[int, np.ndarray]]:
    """(first image, uint8 pixels) of PIXEL_SLICE images at a time, the residual's pixels in place."""
    for start in range(0, len(coded), PIXEL_SLICE):
        pixels = runtime.decode_latents(opened.model, coded.latents[start : start + PIXEL_SLICE])
        if residuals is not None:
            where, values = residuals
            lo, hi = np.searchsorted(where, [start, start + len(pixels)])
            pixels[where[lo:hi] - start] = values[lo:hi]
        yield start, pixels


def _checked_pass(opened: Opened, index: int, coded: Coded, residuals, hold: bool) -> list | None:
    """Decode the chunk once and compare its pixels with the checksum pack recorded (if any); the slices
    when `hold`, else None."""
    reader, model = opened.reader, opened.model
    expected = reader.header.pixel_crcs
    held, crc = [], 0
    for start, pixels in _slices(opened, coded, residuals):
        if expected is not None:  # chunk_pixel_crc, a slice at a time
            crc = zlib.crc32(image_crcs(pixels).astype("<u4").tobytes(), crc)
        if hold:
            held.append((start, pixels))
    if expected is not None and crc != expected[index]:
        raise ContainerError(_differ(reader.where, f"chunk {index + 1}", model))
    return held if hold else None


def pixel_slices(opened: Opened, index: int, coded: Coded) -> Iterator[tuple[int, np.ndarray]]:
    """(first image, uint8 pixels [n, H, W]) of chunk `index`, PIXEL_SLICE images at a time, none before the
    whole chunk's pixels match the checksum pack recorded. Memory stays bounded: a chunk whose pixels
    exceed PIXELS_HELD is decoded twice (to check, then to use) rather than held."""
    residuals = residual_pixels(opened, index, coded)
    if opened.reader.header.pixel_crcs is None:
        yield from _slices(opened, coded, residuals)
        return
    hold = len(coded) * opened.model.pixels <= PIXELS_HELD
    held = _checked_pass(opened, index, coded, residuals, hold)
    yield from held if hold else _slices(opened, coded, residuals)


def checked_pixels(opened: Opened, index: int, coded: Coded) -> np.ndarray:
    """The pixels of chunk `index`, whole, checked against the checksum pack recorded."""
    pixels = np.empty((len(coded), *opened.model.image_shape), np.uint8)
    for start, part in _checked_pass(opened, index, coded, residual_pixels(opened, index, coded), hold=True):
        pixels[start : start + len(part)] = part
    return pixels


def decode_chunk(opened: Opened, index: int, count: int, info: bytes, latents: bytes) -> Chunk:
    """One verified chunk's bytes to (pixels, flags, geometry, labels), the pixels checked."""
    coded, flags, geometry, labels = chunk_latents(opened, index, count, info, latents)
    return checked_pixels(opened, index, coded), flags, geometry, labels


def repeated_name(names: Callable[[], Iterable[str]]) -> str | None:
    """A name that `names()` yields twice, or None, holding no names: a few bytes of LZMA can stand for
    gigabytes of them. 64-bit hashes first; only names whose hashes meet are compared."""
    hashes = name_hashes(names())
    ordered = np.sort(hashes)
    meet = set(ordered[1:][ordered[1:] == ordered[:-1]].tolist())
    if not meet:
        return None
    seen = set()
    for name, hashed in zip(names(), hashes.tolist()):
        if hashed in meet:
            if name in seen:
                return name
            seen.add(name)
    return None


def check_names(opened: Opened) -> None:
    """Every stored name read and checked, and no two alike, or ContainerError: the names table's own pieces
    (names.table_pieces) check all that, a piece at a time, without making a string of each name."""
    try:
        for _ in opened.stored_names().pieces():
            pass
    except ContainerError as err:
        raise ContainerError(f"{opened.reader.where}: {err}") from None


def decode(data: bytes | str | os.PathLike, model: str | os.PathLike | Model | None = None) -> np.ndarray:
    """An .aec container (bytes or path) -> uint8 images [N, H, W] as the model sees them, in stored order."""
    opened = open_for_decoding(data, model)
    with opened.reader.stream:
        h = opened.reader.header
        check_names(opened)
        images = np.empty((h.image_count, *opened.model.image_shape), np.uint8)
        for index, start, (pixels, _, _, _) in decoded_parts(opened):
            first = index * h.chunk_size + start
            images[first : first + len(pixels)] = pixels
    return images
