"""What the CLI does, callable from Python: pack/unpack files, encode/decode arrays."""

from __future__ import annotations

import collections
import contextlib
import io
import os
import shutil
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

import numpy as np

from . import runtime
from .arrays import has_labels as array_has_labels
from .arrays import is_array_file, read_array_file, write_array_file
from .container import FILE_HAS_LABELS, Header, Reader, chunk_record
from .entropy import CODER_ID, LatentCoder
from .errors import ContainerError, InputError, OutputError
from .fileio import atomic_output, write_new_file
from .images import OutputFolder, collect_inputs, encode_png, output_name, read_gray, safe_output_path
from .modelfile import Model
from .models import model_for_fingerprint, resolve_model, shipped_name
from .names import (FLAG_CONVERTED, FLAG_INVERTED, FLAG_RESIZED, GEOMETRY_FIELDS, NAMES_CODEC, TableWriter,
                    decode_image_info, decode_table, encode_image_info, has_duplicates, iter_names, name_hashes)
from .prepare import INVERT_CHOICES, Geometry, invert_batch, prepare, restore

CHUNK_SIZE = 4096  # images per chunk: the unit of streaming, integrity and random access
SPOOL_IN_MEMORY = 64 << 20  # coded chunks wait in memory up to this size, then in a temporary file
PROGRESS_STEP = 256
NO_LABEL = -1  # the label of an image without one, in a file where others have labels
READ_BATCH = 256  # image files per decoding task (bounded memory)
PARALLEL_FROM = 1024  # decode in worker processes from this many files on
Progress = Callable[[int], None]  # called with the number of images just done


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
    inverted: int = 0
    resized: int = 0
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # invalid inputs left out (--skip-invalid)
    hidden_skipped: list[Path] = field(default_factory=list)

    @property
    def bytes_per_image(self) -> float:
        return self.total_bytes / max(self.images, 1)


@dataclass
class UnpackResult:
    images: int
    written: list[Path]  # the output folder (png), or the array files written (npy/npz)
    model: str
    flags: np.ndarray
    restored_sizes: int = 0
    labels: np.ndarray | None = None


@dataclass
class Item:
    """One image ready for the model, with what pack did to it."""

    name: str
    pixels: np.ndarray
    flags: int
    geometry: Geometry | None
    label: int | None = None


def _encode_stream(out: BinaryIO, model: Model, items: Iterable[Item], chunk_size: int,
                   has_labels: bool = False) -> PackResult:
    """Code items chunk by chunk into a spool, then write header, names and the spooled chunks.

    The header and names table need the final count and names, which are
    known only once every input has been read (some may be skipped); the
    coded chunks are small (about 15 bytes an image), so spooling them costs
    little and keeps memory flat.
    """
    coder = LatentCoder(model)
    table = TableWriter()
    latent_bytes = converted = inverted = resized = chunks = 0
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
        pending: list[Item] = []

        def flush() -> None:
            nonlocal latent_bytes, chunks
            pixels = np.stack([it.pixels for it in pending])
            flags = np.array([it.flags for it in pending], np.uint8)
            rows = [it.geometry.to_array() for it in pending if it.flags & FLAG_RESIZED]
            geometry = np.stack(rows) if rows else np.zeros((0, GEOMETRY_FIELDS), np.uint16)
            labels = (np.array([NO_LABEL if it.label is None else it.label for it in pending], np.int32)
                      if has_labels else None)
            coded = coder.encode(runtime.encode_latents(model, pixels))
            spool.write(chunk_record(len(pending), encode_image_info(flags, geometry, labels), coded))
            latent_bytes += len(coded)
            chunks += 1
            pending.clear()

        for item in items:
            table.add(item.name)
            converted += bool(item.flags & FLAG_CONVERTED)
            inverted += bool(item.flags & FLAG_INVERTED)
            resized += bool(item.flags & FLAG_RESIZED)
            pending.append(item)
            if len(pending) == chunk_size:
                flush()
        if pending:
            flush()
        if not table.count:
            raise InputError("nothing to pack: no valid images")
        blob, raw_length = table.finish()
        header = Header(
            fingerprint=model.fingerprint, height=model.image_shape[0], width=model.image_shape[1],
            latents=model.latents, quality=model.quality, coder_id=CODER_ID,
            image_count=table.count, chunk_size=chunk_size, chunk_count=chunks,
            flags=FILE_HAS_LABELS if has_labels else 0,
            names_codec=NAMES_CODEC, names_stored_length=len(blob), names_raw_length=raw_length,
            names_crc=zlib.crc32(blob),
        )
        head = header.pack()
        out.write(head)
        out.write(blob)
        payload = spool.tell()
        spool.seek(0)
        shutil.copyfileobj(spool, out)
    return PackResult(
        images=table.count, total_bytes=len(head) + len(blob) + payload, header_bytes=len(head),
        names_bytes=len(blob), payload_bytes=payload, latent_bytes=latent_bytes, model=model.name,
        converted=converted, inverted=inverted, resized=resized,
    )


def _read_and_prepare(path: Path, shape: tuple[int, int], invert: str, resize: bool):
    """(pixels, flags, geometry) of one image file, or the InputError that names it."""
    try:
        gray, flags = read_gray(path)
        try:
            pixels, more_flags, geometry = prepare(gray, shape, invert=invert, resize=resize)
        except InputError as err:
            raise InputError(f"{path}: {err}") from None
        return pixels, flags | more_flags, geometry
    except InputError as err:
        return err


def _array_names(stored_name: str, count: int, alone: bool) -> list[str]:
    """Names for the images of an array file: 0.png, 1.png ... (alone), else under a folder named after the file."""
    width = len(str(max(count - 1, 0)))
    stem = stored_name[:-3] if stored_name.lower().endswith(".gz") else stored_name
    prefix = "" if alone else str(Path(stem).with_suffix("")) + "/"
    return [f"{prefix}{i:0{width}d}.png" for i in range(count)]


def _read_batch(paths: list[Path], shape: tuple[int, int], invert: str, resize: bool) -> list:
    """_read_and_prepare over a batch (one task for a worker process)."""
    return [_read_and_prepare(path, shape, invert, resize) for path in paths]


def _reading_pool(workers: int, files: int):
    """Worker processes for decoding image files, or None to decode in this process.

    Decoding a 28x28 PNG is mostly Python overhead in Pillow, so threads
    contend for the GIL (measured: 2 threads slower than 1); forked
    processes scale. Small packs are not worth the fork.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    if workers < 2 or files < PARALLEL_FROM or "fork" not in multiprocessing.get_all_start_methods():
        return None
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"))


def _prepared_inputs(files: list[Path], names: list[str], shape: tuple[int, int], invert: str, resize: bool,
                     skip_invalid: bool, skipped: list[tuple[Path, str]], progress: Progress,
                     workers: int) -> Iterator[Item]:
    """Read and prepare every input (image files in batches, in worker processes when many; array
    files whole); a bad one is skipped (recorded) or, at the end, fails the pack naming every bad file."""
    problems: list[str] = []

    def refuse(path: Path, err: InputError) -> None:
        reason = str(err)
        if skip_invalid:
            skipped.append((path, reason[len(str(path)) + 2:] if reason.startswith(f"{path}: ") else reason))
        else:
            problems.append(reason)

    def batches() -> Iterator[tuple[int, int]]:
        start = 0
        while start < len(files):
            end = start + 1
            if not is_array_file(files[start]):
                while end < len(files) and end - start < READ_BATCH and not is_array_file(files[end]):
                    end += 1
            yield start, end
            start = end

    alone = len(files) == 1
    pool = _reading_pool(workers, len(files))
    with contextlib.ExitStack() as stack:
        if pool is not None:
            stack.enter_context(pool)
        pending: collections.deque = collections.deque()  # (start, end, future or None), in input order
        todo = batches()

        def submit_next() -> bool:
            span = next(todo, None)
            if span is None:
                return False
            start, end = span
            future = None
            if pool is not None and not is_array_file(files[start]):
                future = pool.submit(_read_batch, files[start:end], shape, invert, resize)
            pending.append((start, end, future))
            return True

        for _ in range(2 * max(workers, 1)):  # keep every worker busy, memory bounded
            submit_next()
        while pending:
            start, end, future = pending.popleft()
            submit_next()
            if is_array_file(files[start]):
                path = files[start]
                try:
                    images, labels = read_array_file(path, shape)
                    pixels, flags = invert_batch(images, invert)
                except InputError as err:
                    refuse(path, err if str(err).startswith(str(path)) else InputError(f"{path}: {err}"))
                else:
                    if not problems:
                        for i, name in enumerate(_array_names(names[start], len(images), alone)):
                            yield Item(name, pixels[i], int(flags[i]), None,
                                       None if labels is None else int(labels[i]))
                progress(1)
                continue
            results = future.result() if future is not None else _read_batch(files[start:end], shape, invert, resize)
            for path, name, result in zip(files[start:end], names[start:end], results):
                if isinstance(result, InputError):
                    refuse(path, result)
                elif not problems:
                    yield Item(name, *result)
            progress(end - start)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise InputError(f"{len(problems)} of {len(files)} inputs cannot be packed "
                         f"(--skip-invalid packs the rest): {shown}")


def _check_array_prefixes(files: list[Path], names: list[str]) -> None:
    """Images of an array file are stored under a folder named after it: no other input may use that folder."""
    if len(files) == 1:
        return
    prefixes = {}
    for path, name in zip(files, names):
        if is_array_file(path):
            prefix = _array_names(name, 1, alone=False)[0].rsplit("/", 1)[0] + "/"
            if prefix in prefixes:
                raise InputError(f"{path}: its images would be stored under {prefix} as those of {prefixes[prefix]}")
            prefixes[prefix] = path
    if prefixes:
        for path, name in zip(files, names):
            for prefix, array in prefixes.items():
                if not is_array_file(path) and output_name(name).startswith(prefix):
                    raise InputError(f"{path}: clashes with the images of {array}, stored under {prefix}")


def pack(paths: list[str | os.PathLike], output: str | os.PathLike | BinaryIO,
         model: str | os.PathLike | Model | None = None, force: bool = False,
         invert: str = "auto", resize: bool = False, skip_invalid: bool = False,
         chunk_size: int = CHUNK_SIZE, progress: Progress = _no_progress,
         on_start: Callable[[int], None] = _no_progress, workers: int | None = None) -> PackResult:
    """Pack image files, array files (IDX, .npy, .npz) and folders into one .aec file (or a binary stream).

    invert: 'auto' (light backgrounds are inverted and flagged), 'never', 'always'.
    resize: fit images of other sizes MNIST-style (else they are an error).
    skip_invalid: leave out unreadable or unfit files (listed in result.skipped) instead of failing.
    """
    if invert not in INVERT_CHOICES:
        raise ValueError(f"invert must be one of {INVERT_CHOICES}")
    if not 1 <= chunk_size <= 1 << 20:
        raise ValueError("chunk_size must be 1..1048576")
    inputs = collect_inputs(paths)
    _check_array_prefixes(inputs.files, inputs.names)
    codec_model = resolve_model(model)
    on_start(len(inputs.files))
    skipped: list[tuple[Path, str]] = []
    labelled = any(is_array_file(f) and array_has_labels(f) for f in inputs.files)
    items = _prepared_inputs(inputs.files, inputs.names, codec_model.image_shape, invert, resize,
                             skip_invalid, skipped, progress, workers or os.cpu_count() or 1)
    if hasattr(output, "write"):
        result = _encode_stream(output, codec_model, items, chunk_size, labelled)
    else:
        with atomic_output(Path(output), force=force) as out:
            result = _encode_stream(out, codec_model, items, chunk_size, labelled)
    result.skipped = skipped
    result.hidden_skipped = inputs.hidden_skipped
    skipped_paths = {p for p, _ in skipped}
    result.input_bytes = sum(p.stat().st_size for p in inputs.files if p not in skipped_paths)
    return result


def _open_container(source: str | os.PathLike | BinaryIO | bytes) -> Reader:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        return Reader(io.BytesIO(data), len(data), "data")
    if hasattr(source, "read"):
        data = source.read()
        name = getattr(source, "name", "input")
        return Reader(io.BytesIO(data), len(data), "stdin" if name == "<stdin>" else str(name))
    path = Path(source)
    try:
        f = open(path, "rb")
        size = os.fstat(f.fileno()).st_size
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not an .aec file") from None
    except OSError as err:
        raise InputError(f"{path}: cannot open ({err.strerror})") from None
    try:
        return Reader(f, size, str(path))
    except BaseException:
        f.close()
        raise


@dataclass
class _Opened:
    reader: Reader
    model: Model
    coder: LatentCoder


def _open_for_decoding(source, model) -> _Opened:
    reader = _open_container(source)
    try:
        codec_model = model_for_fingerprint(reader.header.fingerprint, model)
        h = reader.header
        if (h.height, h.width) != codec_model.image_shape or h.latents != codec_model.latents:
            raise ContainerError(f"{reader.where}: header geometry or latent count does not match model {codec_model.name}")
        if h.coder_id != CODER_ID:
            raise ContainerError(f"{reader.where}: unknown entropy coder {h.coder_id}")
        coder = LatentCoder(codec_model)
        reader.check_capacity(coder.min_bytes_per_image)
        return _Opened(reader, codec_model, coder)
    except BaseException:
        reader.stream.close()
        raise


def _decoded_chunks(opened: _Opened
                    ) -> Iterator[tuple[np.ndarray, np.ndarray, list[Geometry | None], np.ndarray | None]]:
    """(uint8 images as the model gives them, flags, geometry per image, labels or None) for each chunk."""
    reader, model = opened.reader, opened.model
    labelled = bool(reader.header.flags & FILE_HAS_LABELS)
    for index, (count, info, latents) in enumerate(reader.chunks(opened.coder.min_bytes_per_image)):
        try:
            flags, rows, labels = decode_image_info(info, count, labelled)
            q = opened.coder.decode(latents, count)
        except ContainerError as err:
            raise ContainerError(f"{reader.where}: chunk {index + 1}: {err}") from None
        geometry: list[Geometry | None] = [None] * count
        for row, i in zip(rows, np.flatnonzero(flags & FLAG_RESIZED)):
            g = Geometry.from_array(row)
            if not g.valid_for(model.image_shape):
                raise ContainerError(f"{reader.where}: chunk {index + 1}: image {i + 1} has an impossible geometry")
            geometry[i] = g
        yield runtime.decode_latents(model, q), flags, geometry, labels


class _Rollback:
    """Files and folders an unpack created, removed again if it fails (the target stays as it was).

    Files are written in name order, so the first `written` targets are
    ours: counting them keeps memory flat for millions of files.
    """

    def __init__(self):
        self.written = 0  # files of completed chunks
        self.pending: list[Path] = []  # targets of the chunk being written (some may not exist yet)
        self.folders: list[Path] = []

    def make_folders(self, folder: Path) -> None:
        missing = []
        while not folder.exists():
            missing.append(folder)
            folder = folder.parent
        for f in reversed(missing):
            f.mkdir()
            self.folders.append(f)

    def undo(self, targets: Iterator[Path]) -> None:
        for _, f in zip(range(self.written), targets):
            f.unlink(missing_ok=True)
        for f in self.pending:
            Path(f).unlink(missing_ok=True)
        for d in reversed(self.folders):
            try:
                d.rmdir()
            except OSError:
                pass


def unpack(source: str | os.PathLike | BinaryIO | bytes, out_dir: str | os.PathLike,
           model: str | os.PathLike | Model | None = None, force: bool = False, restore_size: bool = False,
           format: str = "png", progress: Progress = _no_progress,
           on_start: Callable[[int], None] = _no_progress) -> UnpackResult:
    """Decode an .aec file into PNG files under out_dir, with the stored relative names.

    Inverted images are inverted back; with restore_size, resized images get
    their original size back. format='npy' or 'npz' writes one array file
    (out_dir is then its path) with the labels, if the file has them. If
    anything fails, the files and folders this call created are removed again.
    """
    if format not in ("png", "npy", "npz"):
        raise ValueError("format must be png, npy or npz")
    if format != "png" and restore_size:
        raise InputError("--restore-size needs --format png: an array holds one size")
    opened = _open_for_decoding(source, model)
    reader = opened.reader
    with reader.stream:
        h = reader.header

        def stored_names() -> Iterator[str]:
            return iter_names(reader.names_blob, h.names_raw_length, h.image_count)

        if format != "png":
            return _unpack_to_array(opened, stored_names, Path(out_dir), format, force, progress, on_start)
        out = Path(out_dir)
        if out.exists() and not out.is_dir():
            raise OutputError(f"{out}: exists and is not a folder")
        folder = OutputFolder(out)
        # First pass over the names: every target is safe, distinct, and (without force) free.
        existing = []
        for name in stored_names():
            target = folder.target(output_name(name))
            if not force and os.path.lexists(target):
                existing.append(target)
        _refuse_duplicates(stored_names, reader.where)
        if existing:
            more = f" and {len(existing) - 3} more" if len(existing) > 3 else ""
            verb = "exists" if len(existing) == 1 else "exist"
            raise OutputError(f"{', '.join(existing[:3])}{more}: already {verb} (use --force to overwrite)")
        on_start(h.image_count)
        rollback = _Rollback()
        all_flags, all_labels, restored, index = [], [], 0, 0
        names = stored_names()
        made: set[str] = set()
        try:
            rollback.make_folders(out)
            for images, flags, geometry, labels in _decoded_chunks(opened):
                rollback.pending = targets = []
                for i, image in enumerate(images):
                    name = output_name(next(names))
                    parent = name.rpartition("/")[0]
                    if parent not in made:
                        rollback.make_folders(out / parent)
                        made.add(parent)
                    target = folder.target(name)  # checked again, now that its folder exists
                    targets.append(target)
                    write_new_file(target, encode_png(restore(image, int(flags[i]), geometry[i], restore_size)),
                                   force=force)
                    if i % PROGRESS_STEP == PROGRESS_STEP - 1:
                        progress(PROGRESS_STEP)
                progress(len(images) % PROGRESS_STEP)
                rollback.written += len(images)
                rollback.pending = []
                restored += sum(1 for g in geometry if g is not None) if restore_size else 0
                index += len(images)
                all_flags.append(flags)
                if labels is not None:
                    all_labels.append(labels)
        except BaseException:
            rollback.undo((out / output_name(n) for n in stored_names()))
            raise
    return UnpackResult(index, [out], opened.model.name,
                        np.concatenate(all_flags) if all_flags else np.zeros(0, np.uint8), restored,
                        np.concatenate(all_labels) if all_labels else None)


def _refuse_duplicates(stored_names: Callable[[], Iterator[str]], where: str) -> None:
    """No two stored names may unpack to the same file: 64-bit hashes first, exact names only if two hashes meet."""
    if has_duplicates(name_hashes(output_name(n) for n in stored_names())):
        targets = [output_name(n) for n in stored_names()]
        if len(set(targets)) != len(targets):
            raise ContainerError(f"{where}: names table: two stored names unpack to the same file")


def _unpack_to_array(opened: _Opened, stored_names: Callable[[], Iterator[str]], path: Path, format: str,
                     force: bool, progress: Progress, on_start: Callable[[int], None]) -> UnpackResult:
    """One array file: .npy streamed chunk by chunk (flat memory), .npz gathered in memory (it compresses)."""
    if path.suffix.lower() != f".{format}":
        path = path.with_name(path.name + f".{format}")
    h = opened.reader.header
    names = list(stored_names()) if format == "npz" else None
    on_start(h.image_count)
    shape = (h.image_count, *opened.model.image_shape)
    images, flags, labels = [], [], []
    with contextlib.ExitStack() as stack:
        if format == "npy":
            f = stack.enter_context(atomic_output(path, force=force))
            np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": shape})
        for chunk, chunk_flags, _, chunk_labels in _decoded_chunks(opened):
            inverted = (chunk_flags & FLAG_INVERTED).astype(bool)
            chunk = np.where(inverted[:, None, None], 255 - chunk, chunk).astype(np.uint8)
            if format == "npy":
                f.write(chunk.tobytes())
            else:
                images.append(chunk)
            flags.append(chunk_flags)
            if chunk_labels is not None:
                labels.append(chunk_labels)
            progress(len(chunk))
    all_labels = np.concatenate(labels) if labels else None
    if format == "npz":
        all_images = np.concatenate(images) if images else np.zeros(shape, np.uint8)
        written = write_array_file(path, all_images, all_labels, names, force=force)
    else:
        written = [path]
        if all_labels is not None:
            label_path = path.with_name(path.stem + "-labels.npy")
            with atomic_output(label_path, force=force) as f:
                np.save(f, all_labels, allow_pickle=False)
            written.append(label_path)
    return UnpackResult(h.image_count, written, opened.model.name,
                        np.concatenate(flags) if flags else np.zeros(0, np.uint8), 0, all_labels)


def verify(source: str | os.PathLike | BinaryIO | bytes,
           model: str | os.PathLike | Model | None = None) -> dict:
    """Decode everything (names, checksums, latents, pixels) and write nothing: `aec unpack --test`."""
    opened = _open_for_decoding(source, model)
    with opened.reader.stream:
        h = opened.reader.header
        _refuse_duplicates(lambda: iter_names(opened.reader.names_blob, h.names_raw_length, h.image_count),
                           opened.reader.where)
        images = sum(len(chunk[0]) for chunk in _decoded_chunks(opened))
        return {"file": opened.reader.where, "images": images, "model": opened.model.name, "ok": True}


def encode(images: np.ndarray, model: str | os.PathLike | Model | None = None,
           chunk_size: int = CHUNK_SIZE) -> bytes:
    """uint8 images [N, H, W] -> the bytes of an .aec container (names 0.png, 1.png, ...)."""
    codec_model = resolve_model(model)
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != codec_model.image_shape:
        raise InputError(f"images must be uint8 [N, {codec_model.image_shape[0]}, {codec_model.image_shape[1]}], "
                         f"not {images.dtype} {list(images.shape)}")
    if len(images) == 0:
        raise InputError("no images to encode")
    width = len(str(len(images) - 1))
    items = (Item(f"{i:0{width}d}.png", image, 0, None) for i, image in enumerate(images))
    buffer = io.BytesIO()
    _encode_stream(buffer, codec_model, items, chunk_size)
    return buffer.getvalue()


def decode(data: bytes | str | os.PathLike, model: str | os.PathLike | Model | None = None) -> np.ndarray:
    """An .aec container (bytes or path) -> uint8 images [N, H, W] as the model sees them, in stored order."""
    opened = _open_for_decoding(data, model)
    with opened.reader.stream:
        h = opened.reader.header
        decode_table(opened.reader.names_blob, h.names_raw_length, h.image_count)
        parts = [images for images, _, _, _ in _decoded_chunks(opened)]
    return np.concatenate(parts) if parts else np.zeros((0, *opened.model.image_shape), np.uint8)


def info(source: str | os.PathLike | BinaryIO | bytes) -> dict:
    """What is inside a container, without decoding images (every checksum is verified)."""
    reader = _open_container(source)
    with reader.stream:
        h = reader.header
        first_names = []
        for i, name in enumerate(iter_names(reader.names_blob, h.names_raw_length, h.image_count)):
            if i < 5:
                first_names.append(name)
        latent_bytes = chunk_overhead = 0
        counts = {"converted": 0, "inverted": 0, "resized": 0}
        labelled = bool(h.flags & FILE_HAS_LABELS)
        for count, image_info, latents in reader.chunks():
            latent_bytes += len(latents)
            chunk_overhead += 16 + len(image_info)
            flags, _, _ = decode_image_info(image_info, count, labelled)
            for key, bit in (("converted", FLAG_CONVERTED), ("inverted", FLAG_INVERTED), ("resized", FLAG_RESIZED)):
                counts[key] += int(np.count_nonzero(flags & bit))
        total = reader.size
    head = reader.names_offset
    return {
        "file": reader.where,
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
        "images_converted": counts["converted"],
        "images_inverted": counts["inverted"],
        "images_resized": counts["resized"],
        "labels": labelled,
        "first_names": first_names,
    }
