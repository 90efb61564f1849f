"""Pack on a Dask cluster: workers read and encode whole spans of the inputs, this process writes the one file.

    aec pack DIR -o OUT.aec --cluster tcp://scheduler:8786        (pip install 'aec-codec[cluster]')

The model goes to every worker once (scattered); each task reads a span of
image files, or a slice of an array file, by path (the workers must see the
same paths: a shared file system), prepares and encodes it exactly as pack's
own reader processes do (pack_inputs.py), and sends back the latents and
pixel checksums. Tasks are started a bounded number ahead and taken back in
input order, so the file is byte for byte the one a single-machine pack
writes (same encoder, same code).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np
from threadpoolctl import threadpool_limits

from .arrays import read_array_file
from .errors import InputError
from .guarantee import Guarantee
from .modelfile import Model
from .pack_inputs import (
    ARRAY_SLICE,
    SEARCH_SLICE,
    Batch,
    Progress,
    Refusals,
    array_names,
    encode_pixels,
    files_batch,
    read_batch,
    spans,
)
from .prepare import invert_batch
from .workers import in_order


def _array_slice(
    path: str, shape: tuple[int, int], first: int, count: int, invert: str, model: Model, effort: int, guarantee
):
    """A worker's task: (flags, Encoded) of images first..first+count of an array file."""
    with threadpool_limits(1):  # Dask runs a task per worker thread already: one BLAS thread each
        images, _ = read_array_file(Path(path), shape)
        pixels, flags = invert_batch(np.asarray(images[first : first + count]), invert)
        return flags, encode_pixels(model, pixels, effort, guarantee)


def _image_files(paths: list[str], invert: str, resize: bool, model: Model, effort: int, guarantee):
    """A worker's task: pack_inputs.read_batch on one BLAS thread."""
    with threadpool_limits(1):
        return read_batch(paths, invert, resize, model, effort, guarantee)


def cluster_batches(
    client: Any,
    files: list[str],
    names: list[str],
    arrays: list[bool],
    model: Model,
    invert: str,
    resize: bool,
    skip_invalid: bool,
    skipped: list[tuple[Path, str]],
    progress: Progress,
    effort: int = 0,
    guarantee: Guarantee = Guarantee(),
) -> Iterator[Batch]:
    """pack_inputs.encoded_batches, with the reading and encoding done by the cluster's workers."""
    refusals = Refusals(skip_invalid, skipped)
    alone = len(files) == 1
    shared_model = client.scatter(model, broadcast=True)
    ahead = 4 * max(1, sum(client.nthreads().values()))

    def tasks() -> Iterator[tuple]:
        for start, end in spans(arrays):
            if not arrays[start]:
                yield ("files", start, end)
                continue
            try:
                images, labels = read_array_file(Path(files[start]), model.image_shape)
                size = Path(files[start]).stat().st_size
            except (InputError, OSError) as err:
                refusals.refuse(
                    files[start], err if isinstance(err, InputError) else InputError(f"{files[start]}: {err}")
                )
                progress(1)
                continue
            step = SEARCH_SLICE if effort else ARRAY_SLICE  # a search takes milliseconds an image: smaller tasks
            for first in range(0, len(images), step):
                yield ("slice", start, first, min(step, len(images) - first), len(images), labels, size)

    def submit(task: tuple):
        if task[0] == "files":
            return client.submit(
                _image_files, files[task[1] : task[2]], invert, resize, shared_model, effort, guarantee, pure=False
            )
        _, start, first, count, *_ = task
        return client.submit(
            _array_slice,
            files[start],
            model.image_shape,
            first,
            count,
            invert,
            shared_model,
            effort,
            guarantee,
            pure=False,
        )

    for task, future in in_order(tasks(), submit, ahead):
        if task[0] == "files":
            _, start, end = task
            batch = files_batch(files[start:end], names[start:end], future.result(), refusals)
            if batch is not None:
                yield batch
            progress(end - start)
        else:
            _, start, first, count, total, labels, size = task
            flags, encoded = future.result()
            if not refusals.problems:
                yield Batch(
                    array_names(names[start], total, alone, first, count),
                    encoded.latents,
                    flags | encoded.flags,
                    [None] * count,
                    None if labels is None else labels[first : first + count],
                    input_bytes=size if first == 0 else 0,
                    pixel_crcs=encoded.pixel_crcs,
                    max_errors=encoded.max_errors,
                    originals=encoded.originals,
                )
            progress(count / total)
    refusals.raise_any(len(files))
