"""Unpack on a Dask cluster: workers decode whole chunks, this process reads the file and writes the outputs.

    aec unpack IN.aec -o OUT --cluster tcp://scheduler:8786        (pip install 'aec-codec[cluster]')

This process opens the container and reads each chunk, its lengths and
CRC-32 checked, as unpack always does (decoding.py); the chunk's bytes go to
a worker (no shared file system needed), which decodes it exactly as
decoding.py does here: entropy decoder, decoder network, residual, every
pixel checked against the checksum pack recorded. The model goes to each
worker once (scattered), with the header. Tasks are started a bounded number
ahead and taken back in file order, so unpack's writer (unpacking.py) sees
the same parts in the same order and writes the same bytes; a damaged chunk
is reported where a local unpack reports it. A chunk too big to hold whole
(decoding.PIXELS_HELD) is decoded here, as a local unpack decodes it.
"""

from __future__ import annotations

import contextlib
import functools
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from threadpoolctl import threadpool_limits

from .cluster_client import connect
from .container import Header
from .decoding import PIXEL_SLICE, PIXELS_HELD, Chunk, Opened, chunk_latents, decode_chunk, decoded_parts, pixel_slices
from .entropy import LatentCoder
from .errors import ContainerError
from .modelfile import Model
from .workers import in_order

Parts = Callable[..., Iterator[tuple[int, int, Chunk]]]  # decoding.decoded_parts, or cluster_parts on a client
AHEAD_PIXELS = 8 * PIXELS_HELD  # decoded pixels waiting to be written, at most (512 MB)


@contextlib.contextmanager
def chunk_decoder(address: str | None) -> Iterator[Parts]:
    """decoded_parts, or (with the address of a Dask scheduler) the same parts decoded by its workers,
    for as long as the context lasts (the client is closed at its end)."""
    if not address:
        yield decoded_parts
        return
    with connect(address) as client:
        yield functools.partial(cluster_parts, client)


@dataclass(eq=False)  # hashed by identity: a worker keeps its decoder beside the scattered object
class _Remote:
    """What a worker needs to decode the chunks of one file; it stands in for the Reader in an Opened
    (decoding.py reads only the header and the file's name from it)."""

    model: Model
    header: Header
    where: str


_opened: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # in a worker: _Remote -> Opened


def _decode(remote: _Remote, index: int, count: int, info: bytes, latents: bytes) -> Chunk:
    """A worker's task: decoding.decode_chunk (pixels checked) on one BLAS thread."""
    opened = _opened.get(remote)
    if opened is None:  # once per worker and file: the entropy coder's tables
        coder = LatentCoder(remote.model, remote.header.coder_id)  # checked by open_for_decoding here
        opened = _opened[remote] = Opened(remote, remote.model, coder)  # type: ignore[arg-type]
    with threadpool_limits(1):  # Dask runs a task per worker thread already: one BLAS thread each
        return decode_chunk(opened, index, count, info, latents)


def cluster_parts(
    client: Any, opened: Opened, wanted: Callable[[int], bool] | None = None
) -> Iterator[tuple[int, int, Chunk]]:
    """decoding.decoded_parts, the same parts in the same order, with the chunks decoded by the workers."""
    reader, model = opened.reader, opened.model
    remote = client.scatter(_Remote(model, reader.header, reader.where), broadcast=True)
    held = max(1, reader.header.chunk_size * model.pixels)
    ahead = max(2, min(4 * max(1, sum(client.nthreads().values())), AHEAD_PIXELS // held))

    def chunks() -> Iterator[tuple]:
        """(index, count, info, latents, None) for each chunk read and wanted, in order; a chunk that
        cannot be read ends them with (.., the error), raised when its turn comes."""
        index = -1
        try:
            for index, (count, info, latents) in enumerate(reader.chunks(opened.coder.min_bytes_per_image, wanted)):
                if info is not None:
                    yield index, count, info, latents, None
        except ContainerError as err:
            yield index, 0, b"", b"", err

    def start(task: tuple):
        index, count, info, latents, error = task
        if error is not None or count * model.pixels > PIXELS_HELD:
            return None  # raised, or decoded here, when its turn comes
        return client.submit(_decode, remote, index, count, info, latents, pure=False)

    for (index, count, info, latents, error), future in in_order(chunks(), start, ahead):
        if error is not None:
            raise error
        if future is None:  # too big to hold whole: checked, then decoded again a slice at a time
            coded, flags, geometry, labels = chunk_latents(opened, index, count, info, latents)
            slices = pixel_slices(opened, index, coded)
        else:
            pixels, flags, geometry, labels = future.result()
            slices = ((at, pixels[at : at + PIXEL_SLICE]) for at in range(0, count, PIXEL_SLICE))
        for first, pixels in slices:  # the parts decoded_parts yields
            end = first + len(pixels)
            yield (
                index,
                first,
                (pixels, flags[first:end], geometry[first:end], None if labels is None else labels[first:end]),
            )
