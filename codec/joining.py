"""`aec cat`: join .aec files made with the same model into one, without running the encoder.

Names, labels and per-image records are kept, in the order of the inputs.
Where every input but the last fills its chunks exactly (same chunk size and
entropy coder), the chunks are copied as they are, checksums and all: the
result is the file pack would have written for the inputs together. Otherwise the chunks are
cut anew: latents are entropy-decoded and coded again (no network runs for
that), and for exact-decoder models the images are decoded once more, to
record the new chunks' pixel checksums.
"""

from __future__ import annotations

import contextlib
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

import numpy as np

from . import runtime
from .checksums import chunk_blocks, image_crcs
from .container import FILE_HAS_LABELS, VERSION_RESIDUAL, Header, Reader, Writer, open_container
from .decoding import Opened, checked_pixels, chunk_latents, open_for_decoding
from .errors import InputError
from .fileio import atomic_output
from .modelfile import Model
from .models import shipped_min_bytes_per_image
from .names import NAMES_CODEC, TableWriter, hash_name, iter_names, name_hashes, table_pieces
from .pack_inputs import Batch
from .packing import write_container
from .record import NO_LABEL, decode_record, encode_image_info


@dataclass
class CatResult:
    images: int
    total_bytes: int
    files: int
    copied_chunks: bool  # chunks copied as they were (else cut anew)


def _all_names(readers: list[Reader]) -> Iterator[str]:
    for reader in readers:
        h = reader.header
        yield from iter_names(reader.names_blob, h.names_raw_length, h.image_count)


def _check_models(readers: list[Reader]) -> None:
    first = readers[0]
    for reader in readers[1:]:
        if reader.header.fingerprint != first.header.fingerprint:
            raise InputError(
                f"{reader.where}: made with model {reader.header.fingerprint.hex()[:12]}, "
                f"{first.where} with model {first.header.fingerprint.hex()[:12]}: only files of one model join"
            )


def _check_unique(readers: list[Reader], hashes: np.ndarray, hashed: Callable[[str], int]) -> None:
    """InputError naming a name two inputs share, if the names' 64-bit hashes (`hashed` of each) say there
    may be one; only the names whose hashes meet are held to compare."""
    ordered = np.sort(hashes)
    met = set(ordered[1:][ordered[1:] == ordered[:-1]].tolist())
    if met:
        seen: dict[str, str] = {}
        for reader in readers:
            h = reader.header
            for name in iter_names(reader.names_blob, h.names_raw_length, h.image_count):
                if hashed(name) in met:
                    if name in seen:
                        raise InputError(f"{reader.where}: {name!r} is also in {seen[name]}: names must be unique")
                    seen[name] = reader.where


def _blake(name: str) -> int:
    return int(name_hashes([name])[0])


def _copyable(readers: list[Reader]) -> bool:
    size, coder = readers[0].header.chunk_size, readers[0].header.coder_id
    return all(r.header.chunk_size == size and r.header.coder_id == coder for r in readers) and all(
        r.header.image_count % size == 0 for r in readers[:-1]
    )


def _with_labels(info: bytes, count: int, labelled: bool) -> bytes:
    """A chunk's per-image record as a file with labels needs it (NO_LABEL where the source had none)."""
    if labelled:
        return info
    record = decode_record(info, count, False)
    labels = np.full(count, NO_LABEL, np.int32)
    return encode_image_info(record.flags, record.geometry, labels, record.max_errors, record.residual_bytes)


def _copied(readers: list[Reader], out: BinaryIO, labelled: bool) -> int:
    """Copy every chunk into one container (header, names, chunks); its size in bytes."""
    table = TableWriter(threaded=True)
    hashes = []
    for reader in readers:  # each table read once: checked, hashed, and its names written to the new table
        h = reader.header
        for piece in table_pieces(reader.names_blob, h.names_raw_length, h.image_count):
            table.add_piece(piece)
            hashes.append(piece.hashes)
    _check_unique(readers, np.concatenate(hashes) if hashes else np.zeros(0, np.uint64), hash_name)
    del hashes
    has_crcs = all(r.header.pixel_crcs is not None for r in readers)
    has_blocks = all(r.header.block_crcs is not None for r in readers)
    with Writer() as writer:
        for reader in readers:
            own_labels = bool(reader.header.flags & FILE_HAS_LABELS)
            blocks = iter(reader.header.block_crcs or ())
            for index, (count, info, latents) in enumerate(reader.chunks()):
                crc = reader.header.pixel_crcs[index] if has_crcs else None
                block_crcs = [next(blocks) for _ in range(chunk_blocks(count))] if has_blocks else None
                info = _with_labels(info, count, own_labels) if labelled else info
                format_2 = reader.header.major >= VERSION_RESIDUAL
                writer.add_chunk(count, info, latents, crc, format_2, block_crcs)
        blob, raw_length = table.finish()
        first = readers[0].header
        header = Header(
            fingerprint=first.fingerprint, height=first.height, width=first.width, latents=first.latents,
            quality=first.quality, coder_id=first.coder_id, image_count=table.count, chunk_size=first.chunk_size,
            chunk_count=writer.chunk_count, flags=FILE_HAS_LABELS if labelled else 0, names_codec=NAMES_CODEC,
            names_stored_length=len(blob), names_raw_length=raw_length, names_crc=zlib.crc32(blob),
        )  # fmt: skip
        header_bytes, payload = writer.finish(out, header, blob)
    return header_bytes + len(blob) + payload


def _batches(opened: list[Opened]) -> Iterator[Batch]:
    """Each input chunk's latents and records as a batch, for the writer to cut into chunks anew."""
    for source in opened:
        reader = source.reader
        names = source.stored_names()
        for index, (count, info, latents) in enumerate(reader.chunks(source.coder.min_bytes_per_image)):
            coded, flags, geometry, labels = chunk_latents(source, index, count, info, latents)
            batch = Batch([next(names) for _ in range(count)], coded.latents, flags, geometry, labels)
            if coded.max_errors is not None:
                # The residuals are coded per chunk: they are decoded, and coded again in their new chunks.
                pixels = checked_pixels(source, index, coded)
                batch.pixel_crcs = image_crcs(pixels)
                batch.max_errors, batch.originals = coded.max_errors, pixels[coded.max_errors >= 0]
            yield batch


def cat(sources: list[str | os.PathLike], output: str | os.PathLike, force: bool = False) -> CatResult:
    """Join .aec files of one model into `output`, in order (see the module's docstring)."""
    if not sources:
        raise InputError("nothing to join: give at least one .aec file")
    with contextlib.ExitStack() as stack:
        readers = [open_container(source) for source in sources]
        for reader in readers:
            stack.callback(reader.stream.close)
            reader.check_capacity(shipped_min_bytes_per_image(reader.header.fingerprint))
        _check_models(readers)
        labelled = any(r.header.flags & FILE_HAS_LABELS for r in readers)
        images = sum(r.header.image_count for r in readers)
        if _copyable(readers):
            with atomic_output(Path(output), force=force) as out:
                total = _copied(readers, out, labelled)
            return CatResult(images, total, len(readers), True)
        _check_unique(readers, name_hashes(_all_names(readers)), _blake)
        opened = [open_for_decoding(source) for source in sources]
        for source in opened:
            stack.callback(source.reader.stream.close)
        model = opened[0].model
        with atomic_output(Path(output), force=force) as out:
            batches = (_decoded_for_writing(model, batch) for batch in _batches(opened))
            result = write_container(
                out, model, batches, readers[0].header.chunk_size, labelled, readers[0].header.quality
            )
        return CatResult(result.images, result.total_bytes, len(readers), False)


def _decoded_for_writing(model: Model, batch: Batch) -> Batch:
    """The batch with the pixel CRCs the writer records for exact-decoder models (the images decoded again)."""
    if model.exact is not None and batch.pixel_crcs is None:
        batch.pixel_crcs = image_crcs(runtime.decode_latents(model, batch.latents))
    return batch
