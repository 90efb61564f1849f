"""Digits re-drawn as other hands write them: for training, and for a held-out test set.

Real digit collections differ from MNIST's in stroke thickness, slant, size,
position and the wobble of the pen. Each image gets, with its own random
draw:
- a slant (shear) of up to +-0.35 and a rotation of up to +-12 degrees,
- a scale of 0.8 to 1.15 and a shift of up to 1.5 pixels,
- an elastic distortion (Simard et al. 2003: a random displacement field,
  Gaussian-smoothed with sigma 4, its largest displacement scaled to 1.5 pixels),
- thicker strokes (grey dilation), thinner strokes (grey erosion) or neither,
  a third each.
All of it is one resampling (scipy.ndimage, bilinear) plus the morphology.
The held-out set (benchmarks/rd/handwriting.py) applies this to the MNIST
test digits with a fixed seed; training draws new variations every epoch.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

SHEAR = 0.35
ROTATION_DEGREES = 12.0
SCALE = (0.8, 1.15)
SHIFT = 1.5
ELASTIC_SIGMA = 4.0
ELASTIC_PIXELS = 1.5  # the largest displacement
_CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool)


def _warp(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = image.shape
    angle = np.deg2rad(rng.uniform(-ROTATION_DEGREES, ROTATION_DEGREES))
    shear = rng.uniform(-SHEAR, SHEAR)
    scale = rng.uniform(*SCALE)
    shift = rng.uniform(-SHIFT, SHIFT, size=2)
    # Output pixel (r, c) samples the input at centre + A^-1 (p - centre - shift).
    rotate = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    forward = scale * rotate @ np.array([[1.0, 0.0], [shear, 1.0]])  # shear: columns move with rows
    inverse = np.linalg.inv(forward)
    centre = np.array([(h - 1) / 2, (w - 1) / 2])
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float64)
    points = np.stack([rows.ravel(), cols.ravel()]) - (centre + shift)[:, None]
    source = inverse @ points + centre[:, None]
    field = rng.normal(size=(2, h, w))
    for axis in range(2):
        field[axis] = ndimage.gaussian_filter(field[axis], ELASTIC_SIGMA, mode="constant")
    field *= ELASTIC_PIXELS / max(float(np.abs(field).max()), 1e-9)
    source += field.reshape(2, -1)
    warped = ndimage.map_coordinates(image.astype(np.float64), source, order=1, mode="constant", cval=0.0)
    return warped.reshape(h, w)


def augment_one(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One uint8 [H, W] digit (white on black) re-drawn with a random hand."""
    x = _warp(image, rng)
    stroke = rng.integers(3)
    if stroke == 1:
        x = ndimage.grey_dilation(x, footprint=_CROSS)
    elif stroke == 2:
        x = ndimage.grey_erosion(x, footprint=_CROSS)
        # Erosion can remove a thin digit; keep the warped one then.
        if x.max() < 64:
            x = _warp(image, rng)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def augment(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 [N, H, W] digits, each re-drawn with its own random hand."""
    return np.stack([augment_one(image, rng) for image in images]) if len(images) else images.copy()


AUGMENT_VARIANTS = 2  # re-drawn copies of each training image, made once before the first epoch (aec train --augment)


def augmented_bank(x_train: np.ndarray, seed: int, variants: int) -> np.ndarray:
    """uint8 [1 + variants, N, H, W]: the images, then `variants` re-drawn copies, each from (seed, k)."""
    copies = [augment(x_train, np.random.default_rng([seed, 1000 + k])) for k in range(variants)]
    return np.stack([x_train, *copies])


def epoch_rows(seed: int, epoch: int, n: int, share: float, variants: int) -> np.ndarray:
    """For each training image, which row of the bank epoch `epoch` uses: 0 (as it is) or a copy."""
    draw = np.random.default_rng([seed, epoch, 1])
    picked = draw.random(n) < share
    return np.where(picked, draw.integers(1, variants + 1, n), 0)
