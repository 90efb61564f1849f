"""The quality guarantee: no image below the floor, no pixel beyond --max-error.

Pack knows every image's decoded pixels (the decoder is cheap), so it checks
each image against the floor (--min-psnr, on by default) as it encodes. An
image below it is rescued with a residual (codec/residual.py) at the largest
max error that meets the floor. (Searching its latents again at effort 1
rescues most of them for no bytes, but costs about 36 ms an image: it would
double the default pack's time for 0.2% of its bytes.) --max-error N gives every image a residual with
bound N (N = 0: lossless). The residual itself is coded per chunk, after the
latents, where the chunk's stream is written (packing.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import runtime
from .errors import InputError
from .levels import Level, model_floor
from .metrics import image_psnrs
from .modelfile import Model
from .record import FLAG_RESCUED, FLAG_RESIDUAL
from .residual import quantise

# Max errors tried for a rescue, coarsest (cheapest) first; 0 always meets any floor.
RESCUE_ERRORS = (128, 96, 72, 56, 44, 36, 28, 22, 17, 13, 10, 8, 6, 5, 4, 3, 2, 1, 0)
NO_RESIDUAL = -1
RESCUE_WARNING_SHARE = 0.05  # 5x the share of MNIST test digits a model's own floor rescues


def rescue_warning(rescued: int, images: int, floor: float, model_floor: float) -> str | None:
    """The one warning pack gives when many images needed rescue below the model's own safety floor, or
    None. (Above it, as at levels 4 and 5 or with a higher --min-psnr, the residuals are what was asked.)"""
    if not images or rescued <= RESCUE_WARNING_SHARE * images or floor > model_floor:
        return None
    return (
        f"warning: {rescued} of {images} images ({rescued / images:.0%}) fell below the {floor:g} dB quality floor "
        "and were rescued with a residual (more bytes): they look unlike the digits the model was trained on; "
        "`aec train` on images like them makes a model that fits them"
    )


# With --max-error and no level asked for, pack uses level 1: the cheapest latents are the best
# prediction for the residual (fewest bytes in all, benchmarks/RESULTS.md "Lossless and near-lossless").
RESIDUAL_LEVEL = 1


def guarantee_for(
    model: Model, min_psnr: float | None = None, max_error: int | None = None, level: Level | None = None
) -> "Guarantee":
    """Pack's guarantee with `model`: min_psnr None means the floor of `level`, else the model's own."""
    if model.exact is None:
        # A residual needs the same prediction on every machine: only exact decoders give one.
        if max_error is not None or (min_psnr or 0) > 0:
            raise InputError(
                f"model {model.name} has no exact decoder: --min-psnr and --max-error need one (any shipped level)"
            )
        return Guarantee()
    if min_psnr is not None and not (min_psnr >= 0 and np.isfinite(min_psnr)):
        raise InputError(f"--min-psnr must be 0 (no floor) or more dB, not {min_psnr}")
    if max_error is not None and not 0 <= max_error <= 255:
        raise InputError(f"--max-error must be 0..255, not {max_error}")
    if min_psnr is None:
        min_psnr = model_floor(model) if level is None else level.floor
    return Guarantee(float(min_psnr), max_error)


@dataclass(frozen=True)
class Guarantee:
    """What pack promises for every image: PSNR at least min_psnr (0: no floor), and with max_error,
    every pixel within +-max_error of its input (0: lossless)."""

    min_psnr: float = 0.0
    max_error: int | None = None

    def __post_init__(self):
        if not (self.min_psnr >= 0 and np.isfinite(self.min_psnr)):
            raise ValueError("min_psnr must be a finite number of dB, 0 or more")
        if self.max_error is not None and not 0 <= self.max_error <= 255:
            raise ValueError("max_error must be 0..255")

    @property
    def active(self) -> bool:
        return self.min_psnr > 0 or self.max_error is not None


@dataclass
class Guarded:
    """Pack's result for a batch of images under a guarantee."""

    latents: np.ndarray  # int32 [n, latents]
    pixels: np.ndarray  # uint8 [n, H, W]: what unpack will give back
    flags: np.ndarray  # uint8 [n]: FLAG_RESIDUAL, FLAG_RESCUED
    max_errors: np.ndarray  # int16 [n]: NO_RESIDUAL or the residual's bound
    originals: np.ndarray  # uint8 [images with a residual, H, W]: what the residual codes


def guard(
    model: Model, images: np.ndarray, latents: np.ndarray, guarantee: Guarantee, decoded: np.ndarray | None = None
) -> Guarded:
    """Check (and rescue) every image of a batch coded as `latents` against the guarantee (`decoded`: the
    latents' pixels, where the caller has them)."""
    n = len(images)
    pixels = runtime.decode_latents(model, latents) if decoded is None else decoded.copy()
    flags = np.zeros(n, np.uint8)
    max_errors = np.full(n, NO_RESIDUAL, np.int16)
    if guarantee.max_error is not None:
        max_errors[:] = guarantee.max_error
        pixels = quantise(images, max_errors)
    if guarantee.min_psnr > 0 and n:
        below = np.flatnonzero(image_psnrs(images, pixels) < guarantee.min_psnr)
        for i in below.tolist():
            bound = (
                RESCUE_ERRORS if guarantee.max_error is None else [e for e in RESCUE_ERRORS if e < guarantee.max_error]
            )
            for error in bound:
                candidate = quantise(images[i : i + 1], np.array([error]))
                if error == 0 or image_psnrs(images[i : i + 1], candidate)[0] >= guarantee.min_psnr:
                    break
            max_errors[i], pixels[i] = error, candidate[0]
            flags[i] |= FLAG_RESCUED
    has_residual = max_errors >= 0
    flags[has_residual] |= FLAG_RESIDUAL
    return Guarded(latents, pixels, flags, max_errors, np.ascontiguousarray(images[has_residual]))
