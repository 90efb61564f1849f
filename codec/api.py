"""What the CLI does, callable from Python: pack/unpack files, encode/decode arrays."""

from __future__ import annotations

import io
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

import numpy as np

from . import runtime
from .container import Header, Reader, Writer, header_size
from .entropy import CODER_ID, LatentCoder
from .errors import AecError, ContainerError, InputError, OutputError
from .fileio import atomic_output
from .images import InputList, collect_inputs, encode_png, output_name, read_image, safe_output_path
from .modelfile import Model
from .models import model_for_fingerprint, resolve_model, shipped_name
from .names import NAMES_CODEC, decode_flags, decode_table, encode_flags, encode_table

CHUNK_SIZE = 4096  # images per chunk: the unit of streaming, integrity and random access
Progress = Callable[[int], None]  # called with the number of images just done
PROGRESS_STEP = 256


def _no_progress(_: int) -> None:
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
    input_bytes: int = 0
    converted: int = 0
    hidden_skipped: list[Path] = field(default_factory=list)

    @property
    def bytes_per_image(self) -> float:
        return self.total_bytes / max(self.images, 1)


@dataclass
class UnpackResult:
    images: int
    written: list[Path]
    model: str
    flags: np.ndarray


class _CountingWriter:
    """Passes writes through and counts bytes (the output may be a pipe)."""

    def __init__(self, raw: BinaryIO):
        self.raw, self.count = raw, 0

    def write(self, data: bytes) -> int:
        self.raw.write(data)
        self.count += len(data)
        return len(data)


def _write_container(out: BinaryIO, model: Model, names: list[str],
                     chunks: Iterator[tuple[np.ndarray, np.ndarray]], chunk_size: int) -> PackResult:
    counter = _CountingWriter(out)
    blob, raw_length = encode_table(names)
    header = Header(
        fingerprint=model.fingerprint, height=model.image_shape[0], width=model.image_shape[1],
        latents=model.latents, quality=model.quality, coder_id=CODER_ID,
        image_count=len(names), chunk_size=chunk_size, chunk_count=-(-len(names) // chunk_size),
        flags=0, names_codec=NAMES_CODEC, names_stored_length=len(blob), names_raw_length=raw_length,
        names_crc=zlib.crc32(blob),
    )
    writer = Writer(counter, header, blob)
    coder = LatentCoder(model)
    latent_bytes, converted = 0, 0
    for images, flags in chunks:
        coded = coder.encode(runtime.encode_latents(model, images))
        writer.write_chunk(len(images), encode_flags(flags), coded)
        latent_bytes += len(coded)
        converted += int(np.count_nonzero(flags))
    writer.finish()
    head = header_size()
    return PackResult(
        images=len(names), total_bytes=counter.count, header_bytes=head, names_bytes=len(blob),
        payload_bytes=counter.count - head - len(blob), latent_bytes=latent_bytes,
        model=model.name, converted=converted,
    )


def _read_chunks(inputs: InputList, shape: tuple[int, int], chunk_size: int,
                 progress: Progress) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Images and flags chunk by chunk; every bad file is collected, then all are reported at once."""
    problems: list[str] = []
    for start in range(0, len(inputs.files), chunk_size):
        paths = inputs.files[start:start + chunk_size]
        images = np.zeros((len(paths), *shape), np.uint8)
        flags = np.zeros(len(paths), np.uint8)
        for i, path in enumerate(paths):
            try:
                images[i], flags[i] = read_image(path, shape)
            except InputError as err:
                problems.append(str(err))
            if i % PROGRESS_STEP == PROGRESS_STEP - 1:
                progress(PROGRESS_STEP)
        progress(len(paths) % PROGRESS_STEP)
        if not problems:
            yield images, flags
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise InputError(f"{len(problems)} of {len(inputs.files)} inputs cannot be packed: {shown}")


def pack(paths: list[str | os.PathLike], output: str | os.PathLike | BinaryIO,
         model: str | os.PathLike | Model | None = None, force: bool = False,
         chunk_size: int = CHUNK_SIZE, progress: Progress = _no_progress,
         on_start: Callable[[int], None] = _no_progress) -> PackResult:
    """Pack image files and folders into one .aec file (or a binary stream such as stdout)."""
    inputs = collect_inputs(paths)
    codec_model = resolve_model(model)
    on_start(len(inputs.files))
    chunks = _read_chunks(inputs, codec_model.image_shape, chunk_size, progress)
    if hasattr(output, "write"):
        result = _write_container(output, codec_model, inputs.names, chunks, chunk_size)
    else:
        with atomic_output(Path(output), force=force) as out:
            result = _write_container(out, codec_model, inputs.names, chunks, chunk_size)
    result.hidden_skipped = inputs.hidden_skipped
    result.input_bytes = sum(p.stat().st_size for p in inputs.files)
    return result


def _open_container(source: str | os.PathLike | BinaryIO | bytes) -> tuple[Reader, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        return Reader(io.BytesIO(data), len(data), "data"), "data"
    if hasattr(source, "read"):
        data = source.read()
        name = getattr(source, "name", "input")
        return Reader(io.BytesIO(data), len(data), str(name)), str(name)
    path = Path(source)
    try:
        f = open(path, "rb")
        size = os.fstat(f.fileno()).st_size
    except OSError as err:
        raise InputError(f"{path}: cannot open ({err.strerror})") from None
    try:
        return Reader(f, size, str(path)), str(path)
    except BaseException:
        f.close()
        raise


def _decoded_chunks(reader: Reader, model: Model, where: str) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    coder = LatentCoder(model)
    for index, (count, flags, latents) in enumerate(reader.chunks()):
        try:
            q = coder.decode(latents, count)
            yield runtime.decode_latents(model, q), decode_flags(flags, count)
        except ContainerError as err:
            raise ContainerError(f"{where}: chunk {index + 1}: {err}") from None


def _check_header_model(reader: Reader, model: Model, where: str) -> None:
    h = reader.header
    if (h.height, h.width) != model.image_shape or h.latents != model.latents or h.coder_id != CODER_ID:
        raise ContainerError(f"{where}: header geometry/latents/coder do not match model {model.name}")


def unpack(source: str | os.PathLike | BinaryIO | bytes, out_dir: str | os.PathLike,
           model: str | os.PathLike | Model | None = None, force: bool = False,
           progress: Progress = _no_progress, on_start: Callable[[int], None] = _no_progress) -> UnpackResult:
    """Decode an .aec file into PNG files under out_dir, with the stored relative names."""
    reader, where = _open_container(source)
    with reader.stream:
        codec_model = model_for_fingerprint(reader.header.fingerprint, model)
        _check_header_model(reader, codec_model, where)
        names = decode_table(reader.names_blob, reader.header.names_raw_length, reader.header.image_count)
        out = Path(out_dir)
        if out.exists() and not out.is_dir():
            raise OutputError(f"{out}: exists and is not a folder")
        targets = [safe_output_path(out, output_name(n)) for n in names]
        if len(set(targets)) != len(targets):
            raise ContainerError(f"{where}: two stored names unpack to the same file")
        if not force:
            existing = [str(t) for t in targets if t.exists() or t.is_symlink()]
            if existing:
                more = f" and {len(existing) - 3} more" if len(existing) > 3 else ""
                raise OutputError(f"{', '.join(existing[:3])}{more}: already exist{'s' if len(existing) == 1 else ''} (use --force to overwrite)")
        on_start(len(names))
        written, all_flags, index = [], [], 0
        for images, flags in _decoded_chunks(reader, codec_model, where):
            for i, image in enumerate(images):
                target = targets[index]
                target.parent.mkdir(parents=True, exist_ok=True)
                safe_output_path(out, output_name(names[index]))  # again: folders now exist
                with atomic_output(target, force=force, durable=False) as f:
                    f.write(encode_png(image))
                written.append(target)
                index += 1
                if i % PROGRESS_STEP == PROGRESS_STEP - 1:
                    progress(PROGRESS_STEP)
            all_flags.append(flags)
            progress(len(images) % PROGRESS_STEP)
    return UnpackResult(len(written), written, codec_model.name,
                        np.concatenate(all_flags) if all_flags else np.zeros(0, np.uint8))


def encode(images: np.ndarray, model: str | os.PathLike | Model | None = None,
           chunk_size: int = CHUNK_SIZE) -> bytes:
    """uint8 images [N, H, W] -> the bytes of an .aec container (names 0.png, 1.png, ...)."""
    codec_model = resolve_model(model)
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != codec_model.image_shape:
        raise InputError(f"images must be uint8 [N, {codec_model.image_shape[0]}, {codec_model.image_shape[1]}], not {images.dtype} {list(images.shape)}")
    if len(images) == 0:
        raise InputError("no images to encode")
    width = len(str(len(images) - 1))
    names = [f"{i:0{width}d}.png" for i in range(len(images))]
    chunks = ((images[s:s + chunk_size], np.zeros(len(images[s:s + chunk_size]), np.uint8))
              for s in range(0, len(images), chunk_size))
    buffer = io.BytesIO()
    _write_container(buffer, codec_model, names, chunks, chunk_size)
    return buffer.getvalue()


def decode(data: bytes | str | os.PathLike, model: str | os.PathLike | Model | None = None) -> np.ndarray:
    """An .aec container (bytes or path) -> uint8 images [N, H, W], in stored order."""
    reader, where = _open_container(data)
    with reader.stream:
        codec_model = model_for_fingerprint(reader.header.fingerprint, model)
        _check_header_model(reader, codec_model, where)
        decode_table(reader.names_blob, reader.header.names_raw_length, reader.header.image_count)
        parts = [images for images, _ in _decoded_chunks(reader, codec_model, where)]
    if not parts:
        return np.zeros((0, *codec_model.image_shape), np.uint8)
    return np.concatenate(parts)


def info(source: str | os.PathLike | BinaryIO | bytes) -> dict:
    """What is inside a container, without decoding images (every checksum is verified)."""
    reader, where = _open_container(source)
    with reader.stream:
        h = reader.header
        names = decode_table(reader.names_blob, h.names_raw_length, h.image_count)
        latent_bytes = chunk_overhead = flagged = 0
        for count, flags, latents in reader.chunks():
            latent_bytes += len(latents)
            chunk_overhead += 16 + len(flags)
            flagged += int(np.count_nonzero(decode_flags(flags, count)))
        total = reader.size
    head = header_size()
    return {
        "file": where,
        "format_version": "1.0",
        "images": h.image_count,
        "image_size": [h.width, h.height],
        "latents": h.latents,
        "quality": h.quality,
        "model": shipped_name(h.fingerprint),
        "model_fingerprint": h.fingerprint.hex(),
        "coder": "constriction-range-categorical" if h.coder_id == CODER_ID else f"unknown ({h.coder_id})",
        "chunks": h.chunk_count,
        "total_bytes": total,
        "bytes_per_image": total / max(h.image_count, 1),
        "header_bytes": head,
        "names_bytes": h.names_stored_length,
        "payload_bytes": total - head - h.names_stored_length,
        "latent_bytes": latent_bytes,
        "chunk_overhead_bytes": chunk_overhead,
        "flagged_images": flagged,
        "first_names": names[:5],
    }
