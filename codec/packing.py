"""Pack: image files, array files and folders (or an array in memory) into one .aec container.

pack_inputs.py turns the inputs into encoded batches; this module cuts them
into chunks, entropy-codes each chunk and hands it to the container writer.
"""

from __future__ import annotations

import collections
import contextlib
import io
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

import numpy as np

from . import residual, residual_tables, runtime
from .arrays import array_flags
from .arrays import has_labels as array_has_labels
from .checksums import block_pixel_crcs, chunk_pixel_crc
from .cluster import cluster_batches
from .cluster_client import connect
from .container import FILE_HAS_LABELS, Header, Writer
from .entropy import CODER_BLOCKS, LatentCoder, coder_for
from .errors import InputError
from .fileio import atomic_output
from .guarantee import NO_RESIDUAL, RESCUE_ERRORS, RESIDUAL_LEVEL, Guarantee, guarantee_for
from .inputs import collect_inputs
from .levels import Level, level, model_floor
from .modelfile import Model
from .models import resolve_model
from .name_rules import output_name, pack_problem
from .names import NAMES_CODEC, TableWriter, has_duplicates, name_hashes
from .pack_inputs import (
    ARRAY_SLICE,
    Batch,
    Progress,
    check_array_prefixes,
    early_readers,
    encode_pixels,
    encoded_batches,
)
from .prepare import INVERT_CHOICES, Invert
from .record import (
    FLAG_CONVERTED,
    FLAG_INVERTED,
    FLAG_RESCUED,
    FLAG_RESIDUAL,
    FLAG_RESIZED,
    FORMAT_2_FLAGS,
    GEOMETRY_FIELDS,
    MAX_RESIDUAL_IMAGES,
    NO_LABEL,
    encode_image_info,
)
from .search import EFFORTS, check_search
from .workers import likely_many_files

CHUNK_SIZE = 4096  # images per chunk: the unit of streaming, integrity and random access


def _no_progress(_: float) -> None:
    pass


@dataclass
class PackResult:
    images: int
    total_bytes: int
    header_bytes: int
    names_bytes: int
    payload_bytes: int
    latent_bytes: int
    model: str
    image_shape: tuple[int, int] = (28, 28)
    input_bytes: int = 0
    converted: int = 0
    inverted: int = 0
    resized: int = 0
    rescued: int = 0  # images below the quality floor as first coded (searched again or given a residual)
    residual_images: int = 0  # images coded with a residual (--max-error, --lossless, or rescued)
    residual_bytes: int = 0  # what the residuals took
    min_psnr: float = 0.0  # the floor pack held every image to (0: none)
    model_floor: float = 0.0  # the model's own safety floor (levels.py): rescue below it is a warning
    max_error: int | None = None
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # invalid inputs left out (--skip-invalid)
    hidden_skipped: list[Path] = field(default_factory=list)
    linked_folders_skipped: list[Path] = field(default_factory=list)

    @property
    def bytes_per_image(self) -> float:
        return self.total_bytes / max(self.images, 1)

    @property
    def raw_bytes(self) -> int:
        """The packed images' pixels, one byte each."""
        return self.images * self.image_shape[0] * self.image_shape[1]


def _take(queue: collections.deque, count: int, has_labels: bool):
    """Cut exactly `count` images (or what is left) off the front of a queue of batches:
    (latents, flags, geometry rows, labels or None, pixel CRCs or None, max errors, originals)."""
    parts, taken = [], 0
    while queue and taken < count:
        part, rest = queue[0].split(count - taken)
        parts.append(part)
        if len(rest):
            queue[0] = rest
        else:
            queue.popleft()
        taken += len(part)
    latents = np.concatenate([p.latents for p in parts])
    flags = np.concatenate([p.flags for p in parts])
    rows = [g.to_array() for p in parts for g in p.geometry if g is not None]
    geometry = np.stack(rows) if rows else np.zeros((0, GEOMETRY_FIELDS), np.uint16)
    labels = None
    if has_labels:
        labels = np.concatenate(
            [p.labels if p.labels is not None else np.full(len(p), NO_LABEL, np.int32) for p in parts]
        )
    crcs = None if any(p.pixel_crcs is None for p in parts) else np.concatenate([p.pixel_crcs for p in parts])
    max_errors = np.concatenate(
        [p.max_errors if p.max_errors is not None else np.full(len(p), NO_RESIDUAL, np.int16) for p in parts]
    )
    originals = [p.originals for p in parts if p.originals is not None and len(p.originals)]
    shape = (0, *parts[0].originals.shape[1:]) if parts[0].originals is not None else (0, 0, 0)
    originals = np.concatenate(originals) if originals else np.zeros(shape, np.uint8)
    return latents, flags, geometry, labels, crcs, max_errors, originals


def write_container(
    out: BinaryIO,
    model: Model,
    batches: Iterable[Batch],
    chunk_size: int,
    has_labels: bool = False,
    quality: int | None = None,
) -> PackResult:
    """Code batches chunk by chunk, then write the container (header, names, chunks) to `out`; the header
    records `quality` (the level packed at), else the model's own."""
    coder: LatentCoder | None = None  # chosen by the first chunk's size (entropy.coder_for)
    table = TableWriter()
    latent_bytes = converted = inverted = resized = input_bytes = rescued = residual_images = residual_bytes = 0
    with Writer() as writer:
        queue: collections.deque = collections.deque()
        queued = 0

        def flush(count: int) -> None:
            nonlocal latent_bytes, queued, residual_bytes, coder
            latents, flags, geometry, labels, crcs, max_errors, originals = _take(queue, count, has_labels)
            with_residual = np.flatnonzero(max_errors >= 0)
            if len(with_residual) > MAX_RESIDUAL_IMAGES:  # cat into chunks bigger than pack allows with residuals
                raise InputError(
                    f"a chunk of {len(with_residual)} images with a residual (at most {MAX_RESIDUAL_IMAGES})"
                )
            then = None
            if len(with_residual):
                # The residual's prediction is the exact decoder's picture: the same on every machine.
                predictions = runtime.decode_latents(model, latents[with_residual])
                bounds = max_errors[with_residual]

                def then(encoder, categorical):
                    residual.encode(encoder, categorical, originals, predictions, bounds)

            coder = coder or LatentCoder(model, coder_for(len(latents)))
            coded, bits = coder.encode_with(latents, then)
            info = encode_image_info(flags, geometry, labels, max_errors[with_residual], (bits + 7) // 8)
            # An exact decoder's pixels are the same everywhere: record them, so that unpack can prove it.
            pixel_crc = None if crcs is None else chunk_pixel_crc(crcs)
            blocks = None if crcs is None or coder.coder_id != CODER_BLOCKS else block_pixel_crcs(crcs, flags)
            format_2 = bool(np.any(flags & FORMAT_2_FLAGS))
            writer.add_chunk(len(latents), info, coded, pixel_crc, format_2, blocks)
            latent_bytes += len(coded)
            residual_bytes += (bits + 7) // 8
            queued -= len(latents)

        for batch in batches:
            input_bytes += batch.input_bytes
            if not len(batch):
                continue
            table.add_many(batch.names)
            converted += int(np.count_nonzero(batch.flags & FLAG_CONVERTED))
            inverted += int(np.count_nonzero(batch.flags & FLAG_INVERTED))
            resized += int(np.count_nonzero(batch.flags & FLAG_RESIZED))
            rescued += int(np.count_nonzero(batch.flags & FLAG_RESCUED))
            residual_images += int(np.count_nonzero(batch.flags & FLAG_RESIDUAL))
            queue.append(batch)
            queued += len(batch)
            while queued >= chunk_size:
                flush(chunk_size)
        if queued:
            flush(queued)
        if not table.count:
            raise InputError("nothing to pack: no valid images")
        blob, raw_length = table.finish()
        header = Header(
            fingerprint=model.decoder_fingerprint,
            height=model.image_shape[0],
            width=model.image_shape[1],
            latents=model.latents,
            quality=model.quality if quality is None else quality,
            coder_id=coder.coder_id,
            image_count=table.count,
            chunk_size=chunk_size,
            chunk_count=writer.chunk_count,
            flags=FILE_HAS_LABELS if has_labels else 0,
            names_codec=NAMES_CODEC,
            names_stored_length=len(blob),
            names_raw_length=raw_length,
            names_crc=zlib.crc32(blob),
        )
        header_bytes, payload = writer.finish(out, header, blob)
    return PackResult(
        images=table.count,
        total_bytes=header_bytes + len(blob) + payload,
        header_bytes=header_bytes,
        names_bytes=len(blob),
        payload_bytes=payload,
        latent_bytes=latent_bytes,
        model=model.name,
        image_shape=model.image_shape,
        converted=converted,
        inverted=inverted,
        resized=resized,
        input_bytes=input_bytes,
        rescued=rescued,
        residual_images=residual_images,
        residual_bytes=residual_bytes,
    )


def pack(
    paths: list[str | os.PathLike],
    output: str | os.PathLike | BinaryIO,
    model: str | os.PathLike | Model | None = None,
    force: bool = False,
    invert: Invert | str = Invert.AUTO,
    resize: bool = False,
    skip_invalid: bool = False,
    chunk_size: int = CHUNK_SIZE,
    progress: Progress = _no_progress,
    on_start: Callable[[int], None] = _no_progress,
    workers: int | None = None,
    quality: int | None = None,
    effort: int = 0,
    cluster: str | None = None,
    min_psnr: float | None = None,
    max_error: int | None = None,
) -> PackResult:
    """Pack image files, array files (IDX, .npy, .npz) and folders into one .aec file (or a binary stream).

    model / quality: a shipped model name or model file, or a shipped quality level (default: DEFAULT_MODEL).
    invert: 'auto' (light backgrounds are inverted and flagged), 'never', 'always'.
    resize: fit images of other sizes MNIST-style (else they are an error).
    effort: 0 (the encoder's latents: fastest), 1 or 2 (search for latents that cost less for the
    same pixels, or give better pixels for the same bytes; see search.py).
    skip_invalid: leave out unreadable or unfit files (listed in result.skipped) instead of failing.
    cluster: the address of a Dask scheduler whose workers read and encode the inputs (cluster.py); the
    file is the same, byte for byte.
    min_psnr: the quality floor in dB (None: the level's default; 0: none); images below it are rescued.
    max_error: every pixel within +-max_error of its input (0: lossless); level 1 unless model/quality say.
    """
    if invert not in INVERT_CHOICES:
        raise ValueError(f"invert must be one of {INVERT_CHOICES}")
    if not 1 <= chunk_size <= 1 << 20:
        raise ValueError("chunk_size must be 1..1048576")
    if effort not in EFFORTS:
        raise ValueError(f"effort must be one of {EFFORTS}")
    # A floor or a max error gives some images a residual: the residual coder's prior is read in a thread
    # before the first chunk needs it, beside the model load, or with many files beside the readers.
    residual = min_psnr != 0 or max_error is not None
    groups = [residual_tables.error_group(RESCUE_ERRORS[0] if max_error is None else max_error)]
    many = not cluster and likely_many_files(paths)  # then the readers start before the inputs are listed
    prior = residual_tables.preload(groups) if residual and not many else None
    codec_model, chosen = _model_for(model, quality, max_error)
    if prior is not None:
        prior.join()  # before anything forks: no thread may be mid-work in a forked process
    readers = early_readers(codec_model, workers) if many else None
    if residual and many:
        residual_tables.preload(groups)  # the readers have forked
    with readers if readers is not None else contextlib.nullcontext():
        inputs = collect_inputs(paths, skip_unlisted=skip_invalid)
        arrays = array_flags(inputs.names)
        check_array_prefixes(inputs.files, inputs.names, arrays)
        guarantee = guarantee_for(codec_model, min_psnr, max_error, chosen)
        _check_chunk_size(chunk_size, guarantee)
        check_search(codec_model, effort)  # a model without a lambda or with a bad setting fails before any work
        on_start(len(inputs.files))
        skipped: list[tuple[Path, str]] = []
        labelled = any(array_has_labels(Path(f)) for f, is_array in zip(inputs.files, arrays) if is_array)
        if cluster:
            client = connect(cluster)
            batches = cluster_batches(
                client, inputs.files, inputs.names, arrays, codec_model, invert, resize, skip_invalid, skipped, progress,
                effort, guarantee,
            )  # fmt: skip
        else:
            client = contextlib.nullcontext()
            batches = encoded_batches(
                inputs.files, inputs.names, arrays, codec_model, invert, resize, skip_invalid, skipped, progress, workers,
                effort, guarantee, readers,
            )  # fmt: skip
        with client:
            if hasattr(output, "write"):
                result = write_container(output, codec_model, batches, chunk_size, labelled, _number(chosen))
            else:
                with atomic_output(Path(output), force=force) as out:
                    result = write_container(out, codec_model, batches, chunk_size, labelled, _number(chosen))
        result.min_psnr, result.max_error = guarantee.min_psnr, guarantee.max_error
        result.model_floor = model_floor(codec_model)
        result.skipped = inputs.unlisted + skipped
        result.hidden_skipped = inputs.hidden_skipped
        result.linked_folders_skipped = inputs.linked_folders_skipped
        return result


def _check_chunk_size(chunk_size: int, guarantee: Guarantee) -> None:
    if guarantee.active and chunk_size > MAX_RESIDUAL_IMAGES:
        raise InputError(
            f"chunks of {chunk_size} images cannot carry residuals (at most {MAX_RESIDUAL_IMAGES}): "
            "use a smaller chunk size, or --min-psnr 0 without --max-error"
        )


def _model_for(model, quality: int | None, max_error: int | None) -> tuple[Model, Level | None]:
    """The model pack uses and the level asked for: the model or level asked for, else (with a residual
    for every image) RESIDUAL_LEVEL, else the default model alone."""
    if max_error is not None and model is None and quality is None:
        quality = RESIDUAL_LEVEL
    return resolve_model(model, quality), None if quality is None else level(quality)


def _number(chosen: Level | None) -> int | None:
    return None if chosen is None else chosen.number


def _check_names(names: list[str]) -> None:
    """Names given with images: each storable and unpackable, no two unpacking to one file."""
    for name in names:
        problem = pack_problem(name)
        if problem:
            raise InputError(f"{name!r}: cannot be stored ({problem})")
    if has_duplicates(name_hashes(output_name(n).casefold() for n in names)):
        raise InputError("two names unpack to the same file")


def encode(
    images: np.ndarray,
    model: str | os.PathLike | Model | None = None,
    chunk_size: int = CHUNK_SIZE,
    quality: int | None = None,
    effort: int = 0,
    names: list[str] | None = None,
    min_psnr: float | None = None,
    max_error: int | None = None,
) -> bytes:
    """uint8 images [N, H, W] -> the bytes of an .aec container; effort, min_psnr and max_error as for pack.
    names: the stored name of each image (checked as pack checks names), default 0.png, 1.png, ..."""
    if effort not in EFFORTS:
        raise ValueError(f"effort must be one of {EFFORTS}")
    codec_model, chosen = _model_for(model, quality, max_error)
    guarantee = guarantee_for(codec_model, min_psnr, max_error, chosen)
    _check_chunk_size(chunk_size, guarantee)
    check_search(codec_model, effort)
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != codec_model.image_shape:
        raise InputError(
            f"images must be uint8 [N, {codec_model.image_shape[0]}, {codec_model.image_shape[1]}], "
            f"not {images.dtype} {list(images.shape)}"
        )
    if len(images) == 0:
        raise InputError("no images to encode")
    if names is None:
        width = len(str(len(images) - 1))
        names = [f"{i:0{width}d}.png" for i in range(len(images))]
    elif len(names) != len(images):
        raise InputError(f"{len(names)} names for {len(images)} images")
    else:
        _check_names(names)
    batches = (
        Batch(
            names[first : first + len(part)],
            coded.latents,
            coded.flags,
            [None] * len(part),
            pixel_crcs=coded.pixel_crcs,
            max_errors=coded.max_errors,
            originals=coded.originals,
        )
        for first in range(0, len(images), ARRAY_SLICE)
        for part in [images[first : first + ARRAY_SLICE]]
        for coded in [encode_pixels(codec_model, part, effort, guarantee)]
    )
    buffer = io.BytesIO()
    write_container(buffer, codec_model, batches, chunk_size, quality=_number(chosen))
    return buffer.getvalue()
