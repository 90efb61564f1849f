"""The exact decoder: the same pixels from the same latents on every machine (docs/FORMAT.md).

A float decoder's pixels depend on the order in which BLAS sums each dot
product (it differs between kernels, CPUs and thread counts) and on the
exp() of the maths library. This decoder ("int8-exact-1") keeps every
matrix product in integers that float32 represents exactly, whatever the
order of summation, and otherwise uses only IEEE-754 float32 operations
that are correctly rounded everywhere (multiply, add, round to nearest even,
clamp):

    x0 = clamp(latents, -input_limit, input_limit)            integers
    for each hidden layer:  acc = x @ kernel                   int8 kernel: |acc| < 2^24, exact
                            x = clamp(rint(acc * scale + offset), 0, 255)     (ReLU, 8 bits)
    output layer:           acc = x @ kernel
                            g = clamp(rint(acc * scale + offset), -R, R)      (a grid on the logit)
                            pixel = output_table[g + R]                       (the sigmoid, tabulated)

`acc * scale` and `+ offset` are two float32 operations, each rounded (no
fused multiply-add). Bounds (checked when a model is built): every product
input x weight is an integer, and the sum of their magnitudes stays below
2^24, so each partial sum of any order is exact in float32.

Made from a trained float model by training/exact.py; a model carries it in
its file (model file version 3), and it alone decides the pixels.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np
from threadpoolctl import ThreadpoolController

from .errors import ModelError

ARITHMETIC = "int8-exact-1"
EXACT_SUM = 1 << 24  # float32 holds every integer up to this exactly
HIDDEN_MAX = 255  # hidden activations are 8-bit


@dataclass
class ExactLayer:
    kernel: np.ndarray  # int8 [in, out]
    scale: np.ndarray  # float32 [out]
    offset: np.ndarray  # float32 [out]

    def __post_init__(self):
        self.kernel = np.asarray(self.kernel)
        self.scale = np.asarray(self.scale, np.float32)
        self.offset = np.asarray(self.offset, np.float32)
        # The kernel as float32 integers, for BLAS (cached: the decoder's inner loop).
        self.kernel_f32 = self.kernel.astype(np.float32)


@dataclass
class ExactDecoder:
    layers: list[ExactLayer]
    input_limit: int  # latents are clamped to +-input_limit before the first layer
    output_table: np.ndarray  # uint8 [2R+1]: the pixel of each output grid value -R..R

    def __post_init__(self):
        self.output_table = np.asarray(self.output_table)

    @property
    def grid_limit(self) -> int:
        return (len(self.output_table) - 1) // 2

    def validate(self, name: str, latents: int, pixels: int) -> None:
        """Shapes, types and the bounds that make every sum exact; ModelError otherwise."""
        if not self.layers:
            raise ModelError(f"model {name}: exact decoder has no layers")
        if self.output_table.dtype != np.uint8 or self.output_table.ndim != 1 or len(self.output_table) % 2 != 1:
            raise ModelError(f"model {name}: exact decoder output table must be uint8 of odd length")
        width, largest_input = latents, self.input_limit
        if not 1 <= self.input_limit < EXACT_SUM:
            raise ModelError(f"model {name}: exact decoder input limit out of range")
        for i, layer in enumerate(self.layers):
            k, s, o = layer.kernel, layer.scale, layer.offset
            if k.dtype != np.int8 or k.ndim != 2 or k.shape[0] != width:
                raise ModelError(f"model {name}: exact decoder layer {i} has inconsistent shapes or types")
            if (
                s.shape != (k.shape[1],)
                or o.shape != s.shape
                or not (np.all(np.isfinite(s)) and np.all(np.isfinite(o)))
            ):
                raise ModelError(f"model {name}: exact decoder layer {i} has bad scales or offsets")
            worst = int(np.abs(k.astype(np.int64)).sum(axis=0).max(initial=0)) * largest_input
            if worst >= EXACT_SUM:
                raise ModelError(
                    f"model {name}: exact decoder layer {i} can sum to {worst}, beyond float32's exact range"
                )
            width, largest_input = k.shape[1], HIDDEN_MAX
        if width != pixels:
            raise ModelError(f"model {name}: exact decoder gives {width} outputs, images have {pixels}")

    def canonical_arrays(self) -> list[tuple[str, np.ndarray]]:
        items = []
        for i, layer in enumerate(self.layers):
            items += [
                (f"exact/{i}/kernel", layer.kernel),
                (f"exact/{i}/scale", layer.scale),
                (f"exact/{i}/offset", layer.offset),
            ]
        items.append(("exact/output_table", self.output_table))
        return items


# Below this many images one BLAS thread is faster: waking a pool of threads for a few rows costs
# milliseconds (25x the work on a busy 2-core machine), and the sums are exact in any order anyway.
ONE_THREAD_BELOW = 2048


@functools.cache
def _blas() -> ThreadpoolController:
    return ThreadpoolController()  # inspects the loaded libraries once (milliseconds)


# A big batch is cut into one part per BLAS thread, each decoded on its own Python thread with a
# one-thread BLAS: the matrix products cost the same, and the elementwise passes (scale, offset, rint,
# clamp, the output table: a third of the time, one core in NumPy) run on every core. 1.2-1.3x on this
# 2-core VM (benchmarks/RESULTS.md, "Exact decoder"). Each row's arithmetic is unchanged, so the pixels
# are too. Worker processes and Dask tasks limit BLAS to one thread, so they stay on one.
ROWS_PER_PART = 1024


def _blas_threads() -> int:
    return max((c.num_threads for c in _blas().lib_controllers if c.user_api == "blas"), default=1)


@functools.cache
def _threads(count: int, process: int):
    """A pool of `count` threads for this process (a forked child gets its own: threads do not survive fork)."""
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(count, thread_name_prefix="aec-decode")


def decode(decoder: ExactDecoder, latents: np.ndarray) -> np.ndarray:
    """int latents [N, latents] -> uint8 pixels [N, outputs], bit-identical on every machine."""
    if len(latents) < ONE_THREAD_BELOW:
        with _blas().limit(limits=1, user_api="blas"):
            return _decode(decoder, latents)
    parts = min(_blas_threads(), len(latents) // ROWS_PER_PART)
    if parts < 2:
        return _decode(decoder, latents)
    size = -(-len(latents) // parts)
    with _blas().limit(limits=1, user_api="blas"):
        pieces = _threads(parts, os.getpid()).map(
            lambda first: _decode(decoder, latents[first : first + size]), range(0, len(latents), size)
        )
        return np.concatenate(list(pieces))


def _decode(decoder: ExactDecoder, latents: np.ndarray) -> np.ndarray:
    x = np.clip(np.asarray(latents), -decoder.input_limit, decoder.input_limit).astype(np.float32)
    for layer in decoder.layers[:-1]:
        x = np.clip(_affine(x, layer), 0, HIDDEN_MAX)  # ReLU and 8 bits
    r = decoder.grid_limit
    index = np.clip(_affine(x, decoder.layers[-1]), -r, r).astype(np.int32)
    index += r
    return decoder.output_table[index]


def _affine(x: np.ndarray, layer: ExactLayer) -> np.ndarray:
    """rint(acc * scale + offset) in float32, acc = x @ kernel exact (integers below 2^24, any order of summation)."""
    acc = x @ layer.kernel_f32
    acc *= layer.scale
    acc += layer.offset
    return np.rint(acc, out=acc)
