"""Classic codecs for the rate-distortion benchmark, one small class each, one interface.

Modelled on CompressAI's compressai/utils/bench: every codec has a `name`, a
`parameter` (its quality knob, or None) and `run(images) -> CodecResult`,
which codes a whole set of uint8 [N, 28, 28] images and returns the total
bytes stored and the decoded images.

Byte counts are what a user stores:
- per-image formats (PNG, WebP, JPEG, AVIF): the sum of the complete files,
  container and header included (the "folder" of files, without file-system
  overhead or names). `folder_xz_bytes` adds the "whole folder" number: the
  files concatenated and compressed with xz (lzma preset 9e), i.e. what an
  archive of the folder could save on the repeated headers.
- whole-set codecs (xz of the raw pixels, PCA): one stream for the set, with
  its header. `coded_bytes` is the payload without the header where that is
  meaningful (PCA), else None.
"""

from __future__ import annotations

import io
import lzma
import struct
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

XZ_PRESET = 9 | lzma.PRESET_EXTREME


@dataclass
class CodecResult:
    codec: str
    parameter: float | int | None
    images: int
    whole_bytes: int  # everything stored for the set
    decoded: np.ndarray = field(repr=False)  # uint8 [N, 28, 28]
    coded_bytes: int | None = None  # payload alone, where meaningful
    folder_xz_bytes: int | None = None  # per-image formats: xz of the concatenated files
    lossless: bool = False
    notes: str = ""


def xz(data: bytes) -> bytes:
    return lzma.compress(data, format=lzma.FORMAT_XZ, preset=XZ_PRESET)


def _check(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"images must be uint8 [N, H, W], not {images.dtype} {images.shape}")
    return images


# --- per-image formats through Pillow ------------------------------------------

class PerImageCodec:
    """A format that stores one file per image; subclasses set `format` and `save_options()`."""

    name = "?"
    format = "?"
    lossless = False
    parameter: int | None = None

    def __init__(self, parameter: int | None = None):
        self.parameter = parameter

    def save_options(self) -> dict:
        return {}

    def encode_one(self, image: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(image, "L").save(buffer, self.format, **self.save_options())
        return buffer.getvalue()

    @staticmethod
    def decode_one(data: bytes) -> np.ndarray:
        # WebP stores grey as RGB (Y plane plus flat chroma); back to L by luminance.
        return np.asarray(Image.open(io.BytesIO(data)).convert("L"))

    def run(self, images: np.ndarray, folder_xz: bool = True) -> CodecResult:
        images = _check(images)
        files = [self.encode_one(image) for image in images]
        decoded = np.stack([self.decode_one(f) for f in files])
        return CodecResult(
            codec=self.name, parameter=self.parameter, images=len(images),
            whole_bytes=sum(map(len, files)), decoded=decoded,
            folder_xz_bytes=len(xz(b"".join(files))) if folder_xz else None,
            lossless=self.lossless, notes=self.notes(),
        )

    def notes(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.save_options().items())


class PNG(PerImageCodec):
    name, format, lossless = "PNG", "PNG", True

    def save_options(self) -> dict:
        return {"optimize": True}


class WebPLossless(PerImageCodec):
    name, format, lossless = "WebP lossless", "WEBP", True

    def save_options(self) -> dict:
        return {"lossless": True, "quality": 100, "method": 6}


class WebP(PerImageCodec):
    """Lossy WebP, method 6 (slowest, smallest); parameter = quality 0..100."""

    name, format = "WebP", "WEBP"

    def save_options(self) -> dict:
        return {"quality": int(self.parameter), "method": 6}


class JPEG(PerImageCodec):
    """Baseline JPEG, greyscale (one component), optimised Huffman tables; parameter = quality 1..100."""

    name, format = "JPEG", "JPEG"

    def save_options(self) -> dict:
        return {"quality": int(self.parameter), "optimize": True}


class AVIF(PerImageCodec):
    """AVIF through Pillow's plugin (libavif), 4:0:0 greyscale, Pillow's default speed 6; parameter = quality 0..100."""

    name, format = "AVIF", "AVIF"

    def save_options(self) -> dict:
        return {"quality": int(self.parameter), "subsampling": "4:0:0", "speed": 6, "max_threads": 1}


# --- whole-set codecs ------------------------------------------------------------

class XZRaw:
    """xz (lzma preset 9e, .xz container) of the raw uint8 pixel array; lossless."""

    name = "xz raw pixels"
    parameter = None

    def run(self, images: np.ndarray) -> CodecResult:
        images = _check(images)
        header = struct.pack("<III", *images.shape)
        data = xz(header + images.tobytes())
        back = lzma.decompress(data)
        shape = struct.unpack("<III", back[:12])
        decoded = np.frombuffer(back[12:], np.uint8).reshape(shape)
        return CodecResult(self.name, None, len(images), len(data), decoded, lossless=True,
                           notes="lzma preset 9e, .xz container, 12-byte shape header inside")


@dataclass
class PCABasis:
    """Mean and the first k principal components of training images on the [0, 1] scale."""

    mean: np.ndarray  # float64 [784]
    components: np.ndarray  # float64 [k, 784], orthonormal rows
    stds: np.ndarray  # float64 [k], std of each coefficient on the training images

    @classmethod
    def fit(cls, train_images: np.ndarray, k: int = 32) -> "PCABasis":
        x = _check(train_images).reshape(len(train_images), -1).astype(np.float64) / 255.0
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
        import constriction

        k = len(self.basis.stds)
        sigma = np.maximum(self.basis.stds / self.parameter, 0.1)
        bound = int(np.ceil(8 * sigma.max())) + 1  # +-8 training stds; beyond that the encoder clips
        family = constriction.stream.model.QuantizedGaussian(-bound, bound)
        stds = np.tile(sigma, count)
        return family, np.zeros(count * k), stds, bound

    def run(self, images: np.ndarray) -> CodecResult:
        images = _check(images)
        n, k = len(images), len(self.basis.stds)
        q = np.rint(self.basis.project(images) / self.parameter).astype(np.int64)
        if self.coder == "ans":
            import constriction

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
        return CodecResult(self.name, self.parameter, n, len(payload) + self.HEADER_BYTES, decoded,
                           coded_bytes=len(payload), notes=f"step {self.parameter} on [0,1] pixels")


# --- the sweep ------------------------------------------------------------------

WEBP_QUALITIES = (0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100)
JPEG_QUALITIES = (5, 10, 20, 30, 50, 70, 90, 95)
AVIF_QUALITIES = (0, 25, 50, 75, 95)
PCA_STEPS = (3.2, 1.6, 0.8, 0.4, 0.2, 0.1)


def sweep(basis: PCABasis | None, webp=WEBP_QUALITIES, jpeg=JPEG_QUALITIES, avif=AVIF_QUALITIES,
          pca_steps=PCA_STEPS) -> list:
    """Every classic codec point, in plot order (codecs with basis=None skip PCA)."""
    codecs: list = [PNG(), WebPLossless(), XZRaw()]
    codecs += [WebP(q) for q in webp]
    codecs += [JPEG(q) for q in jpeg]
    codecs += [AVIF(q) for q in avif]
    if basis is not None:
        codecs += [PCA(basis, s, "ans") for s in pca_steps]
        codecs += [PCA(basis, s, "xz") for s in pca_steps]
    return codecs
