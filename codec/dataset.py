"""An .aec file as a dataset: `aec.open(path)`, random access that decodes only the chunks it needs.

    with aec.open("train.aec") as data:
        len(data), data.names, data.labels
        data[0], data[10:20], data[[3, 1, 4]]     # uint8 [H, W] or [n, H, W], as unpack writes them
        for images, labels in data.batches(256): ...
        data.tf_dataset(256), data.torch_dataset()

Images come back as `aec unpack --format npy` writes them: inverted back
where pack inverted them, at the model's size. Only the chunks that hold the
images asked for are read (each verified); within them only the blocks of
1,024 images that hold them are entropy-decoded (entropy coder 2; a coder 1
chunk is one block), and only the images asked for go through the decoder network (and the images with a residual
in the chunks read: the residual is one stream); the latents of the last few
chunks are kept (`cache_chunks`). Pixel checksums prove that this machine's
decoder gives the file's pixels: open() decodes the first chunk in full and
checks it (checking every chunk read would cost what unpack costs, and
random access would lose its point).
Every name is checked when the file is opened (as unpack checks them); names
and labels are kept only on first use.
"""

from __future__ import annotations

import collections
import os
from typing import Any, Iterator

import numpy as np

from . import runtime
from .container import FILE_HAS_LABELS
from .decoding import Coded, Opened, checked_pixels, chunk_record, entropy_decoded, open_for_decoding, residual_pixels
from .fileinfo import list_members
from .modelfile import Model
from .names import table_pieces
from .record import FLAG_INVERTED

BLOCKS_HELD = 64  # decoded blocks of latents kept per cached chunk (1,024 images, 128 KB each)


class Dataset:
    def __init__(self, path: str | os.PathLike, model: str | os.PathLike | Model | None = None, cache_chunks: int = 8):
        self.path = os.fspath(path)
        self._opened: Opened = open_for_decoding(self.path, model)
        try:
            reader = self._opened.reader
            self._offsets = reader.chunk_offsets(self._opened.coder.min_bytes_per_image)
            h = reader.header
            for _ in table_pieces(reader.names_blob, h.names_raw_length, h.image_count):
                pass  # a file with an unsafe or repeated name is refused, as unpack refuses it
        except BaseException:
            self._opened.reader.stream.close()
            raise
        self._chunk_size = reader.header.chunk_size
        self._count = reader.header.image_count
        self._cache: collections.OrderedDict[int, tuple] = collections.OrderedDict()
        self._cache_chunks = max(1, cache_chunks)
        self._names: list[str] | None = None
        self._labels: np.ndarray | None = None
        self._listed = False
        if self._count:
            try:  # fail here, not in the middle of a training run, if this machine's decoder is not the file's
                self._chunk(0, check=True)
            except BaseException:
                self.close()
                raise

    def __len__(self) -> int:
        return self._count

    def __enter__(self) -> "Dataset":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._opened.reader.stream.close()

    @property
    def model(self) -> Model:
        return self._opened.model

    @property
    def image_shape(self) -> tuple[int, int]:
        return self._opened.model.image_shape

    def _list(self) -> None:
        if not self._listed:
            members = list(list_members(self.path))
            self._names = [m.name for m in members]
            if self._opened.reader.header.flags & FILE_HAS_LABELS:
                self._labels = np.array([-1 if m.label is None else m.label for m in members], np.int64)
            self._listed = True

    @property
    def names(self) -> list[str]:
        """Every stored name, in order."""
        self._list()
        return self._names

    @property
    def labels(self) -> np.ndarray | None:
        """int64 [N] labels (-1 where an image has none), or None when the file has no labels."""
        self._list()
        return self._labels

    def _chunk(self, index: int, check: bool = False) -> dict:
        """Chunk `index` from the cache or read and verified: its latents' bytes, flags and max errors, the
                blocks of latents decoded so far, and its residual images' pixels once asked for. Only the blocks
                that hold the images asked for are entropy-decoded (entropy coder 2); a chunk's residual only when
                one of its images with a residual is asked for (it is one stream for all of them). `check`: decode the
        chunk whole and compare its pixels with pack's checksum (open() does it for the first chunk)."""
        cached = self._cache.get(index)
        if cached is not None:
            self._cache.move_to_end(index)
            return cached
        reader = self._opened.reader
        count, info, latents = reader.chunk_at(index, int(self._offsets[index]), self._opened.coder.min_bytes_per_image)
        flags, _, _, max_errors = chunk_record(self._opened, index, count, info)
        entry = {"count": count, "bytes": latents, "flags": flags, "max_errors": max_errors, "blocks": {}}
        entry["all"] = entry["residual"] = None
        if check:
            self._decode_whole(index, entry, check=True)
        self._cache[index] = entry
        if len(self._cache) > self._cache_chunks:
            self._cache.popitem(last=False)
        return entry

    def _decode_whole(self, index: int, entry: dict, check: bool = False) -> None:
        latents, decoder = entropy_decoded(self._opened, index, entry["count"], entry["bytes"])
        coded = Coded(latents, decoder, entry["max_errors"])
        entry["all"] = latents
        if check:
            pixels = checked_pixels(self._opened, index, coded)
            if coded.max_errors is not None:
                where = np.flatnonzero(coded.max_errors >= 0)
                entry["residual"] = where, pixels[where]
        elif coded.max_errors is not None:
            entry["residual"] = residual_pixels(self._opened, index, coded)

    def _latents(self, index: int, entry: dict, local: np.ndarray) -> np.ndarray:
        if entry["all"] is not None:
            return entry["all"][local]
        if len(entry["blocks"]) > BLOCKS_HELD:  # a chunk may hold 2^20 images: bound what stays decoded
            entry["blocks"].clear()
        return entropy_decoded(self._opened, index, entry["count"], entry["bytes"], local, entry["blocks"])

    def _gather(self, indices: np.ndarray) -> np.ndarray:
        chunks = indices // self._chunk_size
        q_all = np.empty((len(indices), self.model.latents), np.int32)
        f_all = np.empty(len(indices), np.uint8)
        known = []  # (positions, pixels) of images with a residual
        for chunk in np.unique(chunks):
            where = np.flatnonzero(chunks == chunk)
            entry = self._chunk(int(chunk))
            local = indices[where] - chunk * self._chunk_size
            max_errors = entry["max_errors"]
            if max_errors is not None and entry["residual"] is None and np.any(max_errors[local] >= 0):
                self._decode_whole(int(chunk), entry)
            q_all[where], f_all[where] = self._latents(int(chunk), entry, local), entry["flags"][local]
            if max_errors is None or not np.any(max_errors[local] >= 0):
                continue
            positions, values = entry["residual"]
            at = np.minimum(np.searchsorted(positions, local), len(positions) - 1)
            hit = positions[at] == local
            known.append((where[hit], values[at[hit]]))
        pixels = runtime.decode_latents(self.model, q_all)
        for where, values in known:
            pixels[where] = values
        inverted = (f_all & FLAG_INVERTED).astype(bool)
        return np.where(inverted[:, None, None], 255 - pixels, pixels).astype(np.uint8)

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            index = int(key) + (self._count if key < 0 else 0)
            if not 0 <= index < self._count:
                raise IndexError(f"image {key} out of range for {self._count} images")
            return self._gather(np.array([index]))[0]
        if isinstance(key, slice):
            return self._gather(np.arange(self._count)[key])
        indices = np.asarray(key)
        if indices.dtype == bool:
            if indices.shape != (self._count,):
                raise IndexError(f"boolean index of shape {indices.shape} for {self._count} images")
            return self._gather(np.flatnonzero(indices))
        if not np.issubdtype(indices.dtype, np.integer) or indices.ndim != 1:
            raise IndexError("index with an int, a slice, or a 1-D array of ints or bools")
        indices = np.where(indices < 0, indices + self._count, indices)
        if indices.size and (indices.min() < 0 or indices.max() >= self._count):
            raise IndexError(f"index out of range for {self._count} images")
        return self._gather(indices.astype(np.int64))

    def batches(self, batch_size: int = 256) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """(images uint8 [n, H, W], labels [n] or None) in stored order, `batch_size` at a time."""
        labels = self.labels
        for start in range(0, self._count, batch_size):
            stop = min(start + batch_size, self._count)
            yield self[start:stop], None if labels is None else labels[start:stop]

    def tf_dataset(self, batch_size: int = 256):
        """A tf.data.Dataset of (images, labels) batches (labels -1 when the file has none); needs TensorFlow."""
        from .training.adapters import tf_dataset  # TensorFlow stays out of the library's start-up

        return tf_dataset(self, batch_size)

    def torch_dataset(self):
        """A map-style torch.utils.data.Dataset of (image uint8 tensor [H, W], label); needs PyTorch."""
        from .training.adapters import torch_dataset  # PyTorch likewise

        return torch_dataset(self)


def open(path: str | os.PathLike, model: str | os.PathLike | Model | None = None, cache_chunks: int = 8) -> Dataset:
    """Open an .aec file for random access (see Dataset)."""
    return Dataset(path, model, cache_chunks)
