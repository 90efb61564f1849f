"""The PCA baseline of the rate-distortion benchmark: a linear transform fitted on MNIST, quantized and coded.

PCA with k components (the basis is fitted on the MNIST training split and is
part of the codec, not stored); coefficients quantized uniformly and coded
with constriction's ANS coder or with xz. Same interface as the classic
codecs of aec.classic: `name`, `parameter`, `run(images) -> CodecResult`.
"""

from __future__ import annotations

import lzma
from dataclasses import dataclass

import constriction
import numpy as np

from aec.classic import CodecResult, check_images, xz


@dataclass
class PCABasis:
    """Mean and the first k principal components of training images on the [0, 1] scale."""

    mean: np.ndarray  # float64 [784]
    components: np.ndarray  # float64 [k, 784], orthonormal rows
    stds: np.ndarray  # float64 [k], std of each coefficient on the training images

    @classmethod
    def fit(cls, train_images: np.ndarray, k: int = 32) -> "PCABasis":
        x = check_images(train_images).reshape(len(train_images), -1).astype(np.float64) / 255.0
        mean = x.mean(axis=0)
        centred = x - mean
        cov = centred.T @ centred / len(x)
        values, vectors = np.linalg.eigh(cov)
        order = np.argsort(values)[::-1][:k]
        components = vectors[:, order].T
        # A fixed sign per component (largest entry positive), so the basis is reproducible.
        signs = np.sign(components[np.arange(k), np.argmax(np.abs(components), axis=1)])
        components *= signs[:, None]
        stds = (centred @ components.T).std(axis=0)
        return cls(mean, components, stds)

    def project(self, images: np.ndarray) -> np.ndarray:
        x = images.reshape(len(images), -1).astype(np.float64) / 255.0
        return (x - self.mean) @ self.components.T

    def reconstruct(self, coefficients: np.ndarray, shape: tuple[int, int] = (28, 28)) -> np.ndarray:
        x = self.mean + coefficients @ self.components
        return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8).reshape(-1, *shape)


class PCA:
    """PCA with k components (basis fitted on the MNIST training split, part of the codec, not stored),
    coefficients quantized uniformly with step `parameter` (on the [0, 1] pixel scale) and coded either
    with constriction (`coder="ans"`: an ANS stack coder, each component a quantized Gaussian of mean 0
    and the component's training std, so no side information) or with xz (`coder="xz"`: the integer
    coefficients as int16, component by component, lzma preset 9e).
    Header (counted in whole bytes): image count uint32, step float32."""

    def __init__(self, basis: PCABasis, parameter: float, coder: str = "ans"):
        if coder not in ("ans", "xz"):
            raise ValueError(f"coder must be 'ans' or 'xz', not {coder!r}")
        self.basis, self.parameter, self.coder = basis, float(parameter), coder
        self.name = f"PCA-{len(basis.stds)} + {'ANS (constriction)' if coder == 'ans' else 'xz'}"

    HEADER_BYTES = 8

    def _ans_model(self, count: int):
        k = len(self.basis.stds)
        sigma = np.maximum(self.basis.stds / self.parameter, 0.1)
        bound = int(np.ceil(8 * sigma.max())) + 1  # +-8 training stds; beyond that the encoder clips
        family = constriction.stream.model.QuantizedGaussian(-bound, bound)
        stds = np.tile(sigma, count)
        return family, np.zeros(count * k), stds, bound

    def run(self, images: np.ndarray) -> CodecResult:
        images = check_images(images)
        n, k = len(images), len(self.basis.stds)
        q = np.rint(self.basis.project(images) / self.parameter).astype(np.int64)
        if self.coder == "ans":
            family, means, stds, bound = self._ans_model(n)
            q = np.clip(q, -bound, bound)
            coder = constriction.stream.stack.AnsCoder()
            coder.encode_reverse(q.reshape(-1).astype(np.int32), family, means, stds)
            payload = coder.get_compressed().tobytes()
            decoder = constriction.stream.stack.AnsCoder(np.frombuffer(payload, np.uint32).copy())
            back = decoder.decode(family, means, stds).reshape(n, k)
        else:
            q = np.clip(q, -32768, 32767)
            payload = xz(q.astype("<i2").T.tobytes())
            back = np.frombuffer(lzma.decompress(payload), "<i2").reshape(k, n).T
        decoded = self.basis.reconstruct(back.astype(np.float64) * self.parameter, images.shape[1:])
        return CodecResult(
            self.name,
            self.parameter,
            n,
            len(payload) + self.HEADER_BYTES,
            decoded,
            coded_bytes=len(payload),
            notes=f"step {self.parameter} on [0,1] pixels",
        )
