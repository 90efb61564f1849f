"""Unpack: an .aec container into PNG files (or one array file), with rollback; and unpack --test.

decoding.py turns the chunks into pixels; this module undoes what pack did
to each image (polarity, size), writes the outputs and, if anything fails,
removes what it created. verify() runs exactly the checks unpack runs, and
writes nothing.
"""

from __future__ import annotations

import contextlib
import functools
import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

import numpy as np

from .arrays import labels_path, npy_writer, npz_names_width, npz_writer, write_labels_beside
from .cluster_unpack import Parts, chunk_decoder
from .container import FILE_HAS_LABELS
from .decoding import Chunk, Opened, decoded_parts, open_for_decoding, repeated_name, verify_chunks
from .dirfd import UNKNOWN, Rollback, Tree
from .errors import ContainerError, InputError, OutputError
from .fileio import OutputFolder, write_file_at
from .images import encode_png
from .members import Selection, everything, select
from .modelfile import Model
from .name_rules import output_name, unpack_problem
from .names import has_duplicates, name_hashes
from .prepare import restore
from .record import FLAG_INVERTED
from .workers import worker_pool

WRITE_BATCH = 256  # PNG files per writing task
Progress = Callable[[float], None]  # images just written


class OutputFormat(str, Enum):
    """What unpack writes (--format): one PNG file per stored name, or one array file."""

    PNG = "png"
    NPY = "npy"
    NPZ = "npz"


def _no_progress(_: float) -> None:
    pass


@dataclass
class UnpackResult:
    images: int
    written: list[Path]  # the output folder (png), or the array files written (npy/npz)
    model: str
    flags: np.ndarray
    restored_sizes: int = 0
    labels: np.ndarray | None = None


def unpack(
    source: str | os.PathLike | BinaryIO | bytes,
    out_dir: str | os.PathLike,
    model: str | os.PathLike | Model | None = None,
    force: bool = False,
    restore_size: bool = False,
    format: OutputFormat | str = OutputFormat.PNG,
    progress: Progress = _no_progress,
    on_start: Callable[[int], None] = _no_progress,
    workers: int | None = None,
    members: list[str] | None = None,
    cluster: str | None = None,
) -> UnpackResult:
    """Decode an .aec file into PNG files under out_dir, with the stored relative names.

    Inverted images are inverted back; with restore_size, resized images get
    their original size back. format='npy' or 'npz' writes one array file
    (out_dir is then its path) with the labels, if the file has them. members:
    names and globs (members.py) of the only images to write; only the chunks
    that hold them are read and decoded. cluster: the address of a Dask scheduler whose workers decode
    the chunks (cluster_unpack.py); the outputs are the same, byte for byte. If anything fails, the files
    and folders this call created are removed again.
    """
    if format not in tuple(OutputFormat):
        raise ValueError("format must be png, npy or npz")
    format = OutputFormat(format)
    if format != OutputFormat.PNG and restore_size:
        raise InputError("--restore-size needs --format png: an array holds one size")
    opened = open_for_decoding(source, model)
    reader = opened.reader
    with reader.stream, contextlib.ExitStack() as connection:
        h = reader.header
        chosen = everything(h.image_count) if members is None else select(opened.stored_names(), members, reader.where)
        parts = connection.enter_context(chunk_decoder(cluster))  # before anything is written

        def stored_names() -> Iterator[str]:
            return chosen.filter(opened.stored_names())

        if format != OutputFormat.PNG:
            return _unpack_to_array(opened, chosen, Path(out_dir), format, force, progress, on_start, parts)
        out = Path(out_dir)
        if out.exists() and not out.is_dir():
            raise OutputError(f"{out}: exists and is not a folder")
        folder = OutputFolder(out)
        # One pass over the names before writing: every target is safe, distinct, and (without force) free.
        existing, found = [], 0  # the first few targets that exist (named), and how many do

        def checked_outputs() -> Iterator[str]:
            nonlocal found
            for name in stored_names():
                out_name = output_name(name)
                target = folder.target(out_name)
                if not force and os.path.lexists(target):
                    found += 1
                    if len(existing) < 3:
                        existing.append(target)
                yield out_name

        _refuse_duplicates(checked_outputs(), stored_names, reader.where)
        if existing:
            more = f" and {found - 3} more" if found > 3 else ""
            verb = "exists" if found == 1 else "exist"
            raise OutputError(f"{', '.join(existing)}{more}: already {verb} (use --force to overwrite)")
        on_start(chosen.count)
        # Folders made are capped by the image count: a few bytes of names could ask for millions.
        rollback = Rollback(out, force, folder_limit=4 * chosen.count + 4096)
        all_flags, all_labels, restored, index = [], [], 0, 0
        names = stored_names()
        pool = worker_pool(workers, chosen.count)
        try:
            with contextlib.ExitStack() as stack:
                if pool is not None:
                    stack.enter_context(pool)
                tree = rollback.open()
                for images, flags, geometry, labels in _chosen_parts(opened, chosen, parts):
                    chunk_names = [output_name(next(names)) for _ in range(len(images))]
                    parent = None
                    for name in chunk_names:  # made here, in order, so that the record is the main process's
                        folder_name = name.rpartition("/")[0]
                        if folder_name != parent:
                            tree.folder(folder_name, make=True)
                            parent = folder_name
                    error = _write_chunk(rollback, pool, (images, flags, geometry, chunk_names), restore_size, progress)
                    rollback.written(chunk_names)
                    if error is not None:
                        raise error
                    restored += sum(1 for g in geometry if g is not None) if restore_size else 0
                    index += len(images)
                    all_flags.append(flags)
                    if labels is not None:
                        all_labels.append(labels)
        except BaseException:
            rollback.undo(output_name(n) for n in stored_names())
            raise
        rollback.tree.close()
    return UnpackResult(
        index,
        [out],
        opened.model.name,
        np.concatenate(all_flags) if all_flags else np.zeros(0, np.uint8),
        restored,
        np.concatenate(all_labels) if all_labels else None,
    )


def _write_chunk(rollback: Rollback, pool, chunk: tuple, restore_size: bool, progress: Progress):
    """Write one chunk's images in batches (in worker processes if there is a pool); rollback.pending
    follows what is written. The first error of a batch, or None."""
    images, flags, geometry, names = chunk
    tree = rollback.tree
    record = rollback.pending = np.zeros((4, len(names)), np.uint64)  # as write_file_at returns, per file
    spans = [(i, min(i + WRITE_BATCH, len(names))) for i in range(0, len(names), WRITE_BATCH)]
    jobs = [
        (images[a:b], flags[a:b], geometry[a:b], names[a:b], (tree.path, tree.key), restore_size, rollback.force)
        for a, b in spans
    ]
    if pool is None:
        for (a, b), job in zip(spans, jobs):
            error = _write_batch(job, tree, record[:, a:b])[1]
            if error is not None:
                return error
            progress(b - a)
        return None
    record[0] = UNKNOWN  # until a worker reports what it wrote
    first = None
    for (a, b), (written, error) in zip(spans, pool.map(_write_batch, jobs)):
        record[:, a:b] = written
        if error is None:
            progress(b - a)
        first = first or error
    return first


_worker_trees: dict[int, Tree] = {}  # in a worker process: the output root, opened once


def _write_batch(job, tree: Tree | None = None, record: np.ndarray | None = None):
    """Restore, PNG-encode and write a batch of decoded images (one task for a worker process): (per file
    what write_file_at returned, in rows; the OutputError that stopped the batch, or None)."""
    images, flags, geometry, names, (root, root_key), restore_size, force = job
    record = np.zeros((4, len(names)), np.uint64) if record is None else record
    try:
        if tree is None:
            tree = _worker_trees.get(root_key)
            if tree is None:
                tree = _worker_trees[root_key] = Tree.reopen(root, root_key)
        for i, (image, flag, g, name) in enumerate(zip(images, flags.tolist(), geometry, names)):
            folder, _, base = name.rpartition("/")
            data = encode_png(restore(image, flag, g, restore_size))
            fd = tree.folder(folder)
            record[0, i] = UNKNOWN  # if this process dies now, the file may or may not be there
            try:
                record[:, i] = write_file_at(fd, base, data, force, tree.shown(name))
            except OutputError:
                record[0, i] = 0
                raise
    except OutputError as err:
        return record, err
    return record, None


def _refuse_duplicates(outputs: Iterable[str], stored_names: Callable[[], Iterator[str]], where: str) -> None:
    """No two stored names may unpack to the same file: 64-bit hashes of `outputs` (the output names)
    first, and the exact names, read again, only if two hashes meet."""
    if has_duplicates(name_hashes(outputs)):
        if repeated_name(lambda: map(output_name, stored_names())) is not None:
            raise ContainerError(f"{where}: names table: two stored names unpack to the same file")


def _chosen_parts(opened: Opened, chosen: Selection, parts: Parts = decoded_parts) -> Iterator[Chunk]:
    """Each decoded part (`parts`: decoded_parts, or cluster_parts) that holds chosen images, cut down to
    them; the chunks that hold none are neither read nor decoded."""
    size = opened.reader.header.chunk_size
    if parts is decoded_parts and chosen.indices is not None:  # a few members: only the blocks that hold them
        parts = functools.partial(decoded_parts, rows=lambda index, count: chosen.within(index * size, count))
    for index, start, part in parts(opened, chosen.chunk_wanted(size)):
        keep = chosen.within(index * size + start, len(part[0]))
        if isinstance(keep, slice):
            yield part
        elif len(keep):
            images, flags, geometry, labels = part
            yield images[keep], flags[keep], [geometry[i] for i in keep], None if labels is None else labels[keep]


def _unpack_to_array(
    opened: Opened,
    chosen: Selection,
    path: Path,
    format: OutputFormat,
    force: bool,
    progress: Progress,
    on_start: Callable[[int], None],
    parts: Parts = decoded_parts,
) -> UnpackResult:
    """One array file, streamed a part at a time (flat memory, but for the labels): .npy (labels beside), or
    a compressed .npz with the labels and names."""
    if path.suffix.lower() != f".{format.value}":
        path = path.with_name(path.name + f".{format.value}")

    def names() -> Iterator[str]:
        return chosen.filter(opened.stored_names())

    labelled = bool(opened.reader.header.flags & FILE_HAS_LABELS)
    if format == OutputFormat.NPZ:
        width = npz_names_width(names(), path)  # before anything is decoded or written
    elif labelled and not force:
        for target in (path, labels_path(path)):  # both free before either is written
            if os.path.lexists(target):
                raise OutputError(f"{target}: already exists (use --force to overwrite)")
    existed = os.path.lexists(path)
    on_start(chosen.count)
    shape = (chosen.count, *opened.model.image_shape)
    flags, labels = [], []
    with contextlib.ExitStack() as stack:
        if format == OutputFormat.NPY:
            write_npy = stack.enter_context(npy_writer(path, shape, force))
        else:
            write_npz = stack.enter_context(npz_writer(path, shape, names, width, force))
        for part, part_flags, _, part_labels in _chosen_parts(opened, chosen, parts):
            inverted = (part_flags & FLAG_INVERTED).astype(bool)
            part = np.where(inverted[:, None, None], 255 - part, part).astype(np.uint8)
            if format == OutputFormat.NPY:
                write_npy(part)
            else:
                write_npz(part, part_labels)
            flags.append(part_flags)
            if part_labels is not None:
                labels.append(part_labels)
            progress(len(part))
    all_labels = np.concatenate(labels) if labels else None
    written = [path]
    if format == OutputFormat.NPY and all_labels is not None:
        written.append(write_labels_beside(path, all_labels, existed, force))
    return UnpackResult(
        chosen.count,
        written,
        opened.model.name,
        np.concatenate(flags) if flags else np.zeros(0, np.uint8),
        0,
        all_labels,
    )


def verify(
    source: str | os.PathLike | BinaryIO | bytes,
    model: str | os.PathLike | Model | None = None,
    cluster: str | None = None,
) -> dict:
    """Decode everything (names, checksums, latents, pixels) and write nothing: `aec unpack --test`
    (cluster: the chunks decoded by a Dask cluster's workers, as unpack's)."""
    opened = open_for_decoding(source, model)
    with opened.reader.stream, chunk_decoder(cluster) as parts:
        stored_names = opened.stored_names
        _refuse_duplicates((output_name(n) for n in stored_names()), stored_names, opened.reader.where)
        for name in stored_names():  # exactly what unpack checks before it writes
            problem = unpack_problem(name)
            if problem:
                raise ContainerError(f"{opened.reader.where}: names table: {name!r} cannot be unpacked ({problem})")
        images = verify_chunks(opened) if parts is decoded_parts else sum(len(p[0]) for _, _, p in parts(opened))
        return {"file": opened.reader.where, "images": images, "model": opened.model.name, "ok": True}
