"""Integer latents to bytes and back, with constriction's range coder.

One coder stream per chunk of images (a stream's flush costs a few bytes, as
much as a whole image's latents at low quality); coder 2 cuts a chunk into
blocks of 1,024 images, one stream each, so that a reader can decode the
few blocks that hold the images it wants. Within a chunk the symbols
go column by column, latent 0 of every image first, so each column is coded
with its own fixed table in one call. Values outside a table are coded as
the escape symbol, and after all columns their zigzag value as two 16-bit
uniform symbols: any int32 round-trips.

The probabilities handed to constriction are the integer counts from the
model file converted to float64, which is exact, so every machine builds the
same quantized tables.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .errors import ContainerError
from .modelfile import Model

CODER_RANGE = 1  # constriction queue.RangeEncoder, Categorical(perfect=False), column order, 2x16-bit escapes
CODER_BLOCKS = 2  # coder 1 on each block of BLOCK_IMAGES images, a table of the blocks' lengths first
CODERS = (CODER_RANGE, CODER_BLOCKS)
# A reader that wants a few images decodes only their blocks: 256 random images of a million-image file
# decode a quarter of what whole 4,096-image chunks cost, for about 0.01 bytes per image.
BLOCK_IMAGES = 1024


def coder_for(first_chunk_images: int) -> int:
    """The coder pack writes: blocks only where a chunk holds more than one block's images (otherwise the
    two are the same but for the table, and files stay exactly what coder 1 made, readable by older aec)."""
    return CODER_BLOCKS if first_chunk_images > BLOCK_IMAGES else CODER_RANGE


def _zigzag(v: np.ndarray) -> np.ndarray:
    v = v.astype(np.int64)
    return ((v << 1) ^ (v >> 63)).astype(np.uint32)


def _unzigzag(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.int64)
    return ((z >> 1) ^ -(z & 1)).astype(np.int32)


class LatentCoder:
    """Entropy coder for one model's tables; build once, use for every chunk."""

    def __init__(self, model: Model, coder_id: int = CODER_RANGE):
        import constriction  # imported here: only needed once coding starts

        if coder_id not in CODERS:
            raise ContainerError(f"unknown entropy coder {coder_id} (this aec reads 1 and 2: upgrade aec)")
        self.coder_id = coder_id
        self._stream = constriction.stream
        self.low = model.table_low.astype(np.int64)
        self.escape = model.table_counts.shape[1] - 1
        self.models = [
            constriction.stream.model.Categorical(row.astype(np.float64), perfect=False) for row in model.table_counts
        ]
        self.half_word = constriction.stream.model.Uniform(1 << 16)
        self.categorical = constriction.stream.model.Categorical(perfect=False)  # rows given per symbol
        counts = model.table_counts.astype(np.float64)
        fewest_bits = -np.log2(counts.max(axis=1) / counts.sum(axis=1)).sum()
        # The fewest bytes any image can cost (all latents at their likeliest
        # value), with a margin for the coder's fixed-point probabilities.
        self.min_bytes_per_image = 0.95 * fewest_bits / 8

    def encode(self, latents: np.ndarray) -> bytes:
        """int32 [N, latents] -> bytes (a whole number of 32-bit words)."""
        return self.encode_with(latents)[0]

    def encode_with(self, latents: np.ndarray, then: Callable | None = None) -> tuple[bytes, int]:
        """int32 [N, latents] -> (bytes, a whole number of 32-bit words; the bits `then` added).

        `then(encoder, categorical)`, if given, codes more symbols (the residual) into the same
        stream after the latents (coder 2: the last block's): one flush for both."""
        if self.coder_id == CODER_RANGE:
            return self._encode_block(latents, then)
        blocks = [latents[i : i + BLOCK_IMAGES] for i in range(0, max(len(latents), 1), BLOCK_IMAGES)]
        coded = [self._encode_block(block, then if i == len(blocks) - 1 else None) for i, block in enumerate(blocks)]
        words = np.array([len(data) // 4 for data, _ in coded], "<u4")
        return words.tobytes() + b"".join(data for data, _ in coded), coded[-1][1]

    def _encode_block(self, latents: np.ndarray, then: Callable | None) -> tuple[bytes, int]:
        symbols = latents.astype(np.int64) - self.low
        outside = (symbols < 0) | (symbols >= self.escape)
        symbols[outside] = self.escape
        symbols = symbols.astype(np.int32)
        encoder = self._stream.queue.RangeEncoder()
        for j, model in enumerate(self.models):
            encoder.encode(np.ascontiguousarray(symbols[:, j]), model)
        escaped = _zigzag(latents.T[outside.T])  # column order, as the decoder will find them
        if escaped.size:
            halves = np.stack([escaped >> 16, escaped & 0xFFFF], axis=1).reshape(-1).astype(np.int32)
            encoder.encode(halves, self.half_word)
        added = 0
        if then is not None:
            before = encoder.num_bits()
            then(encoder, self.categorical)
            added = encoder.num_bits() - before
        return encoder.get_compressed().astype("<u4").tobytes(), added

    def decode(self, data: bytes, count: int) -> np.ndarray:
        """bytes -> int32 [count, latents]; raises ContainerError if the data cannot be decoded."""
        return self.decode_stream(data, count)[0]

    def blocks(self, data: bytes, count: int) -> list[tuple[int, int, bytes]]:
        """(first image, images, bytes) of each independently decodable stream of a chunk's latents."""
        if self.coder_id == CODER_RANGE:
            return [(0, count, data)]
        n = max(-(-count // BLOCK_IMAGES), 1)
        if len(data) < 4 * n:
            raise ContainerError("latent stream shorter than its table of blocks")
        words = np.frombuffer(data, "<u4", n).astype(np.int64)
        if 4 * (n + int(words.sum())) != len(data):
            raise ContainerError("latent blocks' lengths do not add up to the latent stream's")
        ends = 4 * (n + np.cumsum(words))
        starts = np.concatenate([[4 * n], ends[:-1]])
        return [
            (i * BLOCK_IMAGES, min(BLOCK_IMAGES, count - i * BLOCK_IMAGES), data[a:b])
            for i, (a, b) in enumerate(zip(starts.tolist(), ends.tolist()))
        ]

    def decode_stream(self, data: bytes, count: int) -> tuple[np.ndarray, object]:
        """(int32 [count, latents], the range decoder positioned after them, for a residual)."""
        latents = np.empty((count, len(self.models)), np.int32)
        decoder = None
        for first, images, block in self.blocks(data, count):
            latents[first : first + images], decoder = self._decode_block(block, images)
        return latents, decoder

    def decode_rows(self, data: bytes, count: int, rows: np.ndarray, cache: dict | None = None) -> np.ndarray:
        """int32 [len(rows), latents] of the chunk's images `rows`, decoding only the blocks that hold them
        (`cache`: block index -> latents, kept between calls by the caller)."""
        cache = {} if cache is None else cache
        out = np.empty((len(rows), len(self.models)), np.int32)
        step = BLOCK_IMAGES if self.coder_id == CODER_BLOCKS else max(count, 1)
        which = np.asarray(rows) // step
        pieces = None
        for block in sorted(set(which.tolist())):  # (np.unique would import numpy.ma: 15 ms of a one-image read)
            if block not in cache:
                pieces = pieces or self.blocks(data, count)
                _, images, piece = pieces[block]
                cache[block] = self._decode_block(piece, images)[0]
            at = np.flatnonzero(which == block)
            out[at] = cache[block][np.asarray(rows)[at] - block * step]
        return out

    def _decode_block(self, data: bytes, count: int) -> tuple[np.ndarray, object]:
        if len(data) % 4:
            raise ContainerError("latent stream length is not a whole number of 32-bit words")
        words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
        # Column by column straight into int32 (a chunk of 2^20 images needs 4 bytes a latent, not 16), then
        # checked and offset all at once: per-column NumPy calls cost as much as the decoding on small blocks.
        latents = np.empty((count, len(self.models)), np.int32)
        try:
            decoder = self._stream.queue.RangeDecoder(words)
            if count:
                for j, model in enumerate(self.models):
                    latents[:, j] = decoder.decode(model, count)
            outside = latents == self.escape
            top = int(latents.max(initial=0)) + int(self.low.max(initial=0))
            bottom = int(latents.min(initial=0)) + int(self.low.min(initial=0))
            if top > 2**31 - 1 or bottom < -(2**31):  # coarse; then exactly, a column at a time
                for j in range(len(self.models)):
                    values = latents[:, j].astype(np.int64) + self.low[j]
                    if np.any(((values > 2**31 - 1) | (values < -(2**31))) & ~outside[:, j]):
                        raise ContainerError("latent stream decodes to out-of-range values")
            latents += self.low.astype(np.int32)  # wraps only where escaped, and those are set below
            latents[outside] = 0
            n_escaped = int(outside.sum())
            if n_escaped:
                halves = decoder.decode(self.half_word, 2 * n_escaped).astype(np.uint32).reshape(-1, 2)
                latents.T[outside.T] = _unzigzag((halves[:, 0] << 16) | halves[:, 1])  # column order
        except (ValueError, RuntimeError, OverflowError, AssertionError) as err:  # constriction asserts on bad data
            raise ContainerError(f"latent stream cannot be decoded ({err})") from None
        return latents, decoder
