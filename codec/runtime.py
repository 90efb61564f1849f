"""The encoder and decoder forward passes in NumPy (float32), from a model file.

This is the codec's contract: pack always quantizes with this code, so the
same aec on the same machine always writes the same latents. A model with an
exact decoder (exact.py) decodes with it, to the same pixels on every
machine; older models decode with their float decoder. TensorFlow is only
needed to train.
"""

from __future__ import annotations

import numpy as np

from . import exact
from .modelfile import Dense, Model


def _activate(z: np.ndarray, activation: str) -> np.ndarray:
    if activation == "relu":
        return np.maximum(z, 0, out=z)
    if activation == "sigmoid":
        # 1 / (1 + exp(-z)) without overflow warnings for very negative z.
        np.negative(z, out=z)
        np.clip(z, -80, 80, out=z)
        np.exp(z, out=z)
        z += 1
        return np.reciprocal(z, out=z)
    return z


def _forward(layers: list[Dense], x: np.ndarray) -> np.ndarray:
    for layer in layers:
        z = x @ layer.kernel
        z += layer.bias  # in place: one pass less over the largest arrays
        x = _activate(z, layer.activation)
    return x


def analyse(model: Model, images: np.ndarray) -> np.ndarray:
    """Continuous latents float32[N, latents] of uint8 images [N, H, W]."""
    x = np.asarray(images, dtype=np.float32).reshape(len(images), model.pixels)
    x *= np.float32(1 / 255)
    return _forward(model.encoder, x)


def quantize(model: Model, latents: np.ndarray) -> np.ndarray:
    """Integer latents: rint(y / step), clipped to int32."""
    q = np.rint(latents / model.quant_step)
    return np.clip(q, -(2**31) + 1, 2**31 - 1).astype(np.int32)


def encode_latents(model: Model, images: np.ndarray) -> np.ndarray:
    """uint8 images [N, H, W] -> int32 latents [N, latents]."""
    return quantize(model, analyse(model, images))


def synthesise(model: Model, latents: np.ndarray) -> np.ndarray:
    """Reconstruction in [0, 1], float32 [N, H, W], from integer latents."""
    y = np.asarray(latents, dtype=np.float32) * model.quant_step
    return _forward(model.decoder, y).reshape(len(y), *model.image_shape)


def to_uint8(x: np.ndarray) -> np.ndarray:
    """[0, 1] floats to uint8 pixels, rounding half to even; works in place on `x` (the decoder's own output)."""
    x *= np.float32(255)
    np.rint(x, out=x)
    np.clip(x, 0, 255, out=x)
    return x.astype(np.uint8)


def decode_latents(model: Model, latents: np.ndarray) -> np.ndarray:
    """int32 latents [N, latents] -> uint8 images [N, H, W]: the pixels unpack writes."""
    if model.exact is not None:
        return exact.decode(model.exact, latents).reshape(len(latents), *model.image_shape)
    return to_uint8(synthesise(model, latents))
