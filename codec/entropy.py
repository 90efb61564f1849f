"""Integer latents to bytes and back, with constriction's range coder.

One coder stream per chunk of images (a stream's flush costs a few bytes, as
much as a whole image's latents at low quality). Within a chunk the symbols
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

CODER_ID = 1  # constriction queue.RangeEncoder, Categorical(perfect=False), column order, 2x16-bit escapes


def _zigzag(v: np.ndarray) -> np.ndarray:
    v = v.astype(np.int64)
    return ((v << 1) ^ (v >> 63)).astype(np.uint32)


def _unzigzag(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.int64)
    return ((z >> 1) ^ -(z & 1)).astype(np.int32)


class LatentCoder:
    """Entropy coder for one model's tables; build once, use for every chunk."""

    def __init__(self, model: Model):
        import constriction  # imported here: only needed once coding starts

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
        stream after the latents: one stream per chunk, one flush."""
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

    def decode_stream(self, data: bytes, count: int) -> tuple[np.ndarray, object]:
        """(int32 [count, latents], the range decoder positioned after them, for a residual)."""
        if len(data) % 4:
            raise ContainerError("latent stream length is not a whole number of 32-bit words")
        words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
        # Column by column straight into int32: a chunk of 2^20 images needs 4 bytes a latent, not 16.
        latents = np.empty((count, len(self.models)), np.int32)
        outside = np.empty((count, len(self.models)), bool)
        try:
            decoder = self._stream.queue.RangeDecoder(words)
            for j, model in enumerate(self.models):
                symbols = decoder.decode(model, count) if count else np.zeros(0, np.int32)
                outside[:, j] = escaped = symbols == self.escape
                values = symbols.astype(np.int64) + self.low[j]
                if np.any(((values > 2**31 - 1) | (values < -(2**31))) & ~escaped):
                    raise ContainerError("latent stream decodes to out-of-range values")
                latents[:, j] = np.where(escaped, 0, values)
            n_escaped = int(outside.sum())
            if n_escaped:
                halves = decoder.decode(self.half_word, 2 * n_escaped).astype(np.uint32).reshape(-1, 2)
                latents.T[outside.T] = _unzigzag((halves[:, 0] << 16) | halves[:, 1])  # column order
        except (ValueError, RuntimeError, OverflowError, AssertionError) as err:  # constriction asserts on bad data
            raise ContainerError(f"latent stream cannot be decoded ({err})") from None
        return latents, decoder
