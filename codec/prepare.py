"""Fit any grayscale image to what the model knows, and undo it on unpack.

MNIST digits are white on black, 28x28, the digit scaled into a 20x20 box and
centred by its centre of mass. Images that differ are:
- inverted when their background is light (--invert auto: most border
  pixels are above mid-grey), flagged so unpack can invert back;
- refused when their size differs, unless resize is asked for: then the ink's
  bounding box is scaled into 20x20 and centred by mass in 28x28, as MNIST
  was made, and the geometry is recorded so unpack --restore-size can put
  the decoded digit back at its original size and place.
"""

from __future__ import annotations

from enum import Enum

import numpy as np

from .errors import ContainerError, InputError
from .images import read_gray
from .record import FLAG_INVERTED, FLAG_RESIZED, Geometry


class Invert(str, Enum):
    """The polarity rule (--invert): auto inverts images with a light background; never; always."""

    AUTO = "auto"
    NEVER = "never"
    ALWAYS = "always"


INVERT_CHOICES = tuple(choice.value for choice in Invert)
BOX = 20  # MNIST's digit box inside the 28x28 frame
INK_THRESHOLD = 32  # pixels above this count as ink when finding the bounding box


def looks_inverted(gray: np.ndarray) -> bool:
    """Dark digit on a light background? Yes when most border pixels are light (> 127)."""
    light = (
        np.count_nonzero(gray[0] > 127)
        + np.count_nonzero(gray[-1] > 127)
        + np.count_nonzero(gray[1:-1, 0] > 127)
        + np.count_nonzero(gray[1:-1, -1] > 127)
    )
    border = 2 * gray.shape[1] + 2 * max(gray.shape[0] - 2, 0)
    return 2 * light > border


def invert_batch(images: np.ndarray, invert: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """prepare()'s polarity rule for a whole uint8 [N, H, W] array at once: (images, flags)."""
    if invert == "never":
        return images, np.zeros(len(images), np.uint8)
    if invert == "always":
        flip = np.ones(len(images), bool)
    else:
        border = np.concatenate([images[:, 0], images[:, -1], images[:, 1:-1, 0], images[:, 1:-1, -1]], axis=1)
        flip = 2 * np.count_nonzero(border > 127, axis=1) > border.shape[1]
    out = np.where(flip[:, None, None], 255 - images, images).astype(np.uint8)
    return out, np.where(flip, FLAG_INVERTED, 0).astype(np.uint8)


def fit_mnist_style(gray: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, Geometry]:
    """Scale the ink's bounding box into a 20x20 box and centre it by mass in the model frame."""
    from PIL import Image

    h, w = gray.shape
    rows = np.flatnonzero((gray > INK_THRESHOLD).any(axis=1))
    cols = np.flatnonzero((gray > INK_THRESHOLD).any(axis=0))
    if rows.size == 0:  # no ink: a blank frame that restores to a blank image
        return np.zeros(shape, np.uint8), Geometry(w, h, (0, 0, w, h), (0, 0, shape[1], shape[0]))
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    box = min(BOX, shape[0], shape[1])
    scale = box / max(x1 - x0, y1 - y0)
    sw, sh = max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))
    crop = Image.fromarray(np.ascontiguousarray(gray[y0:y1, x0:x1]))
    scaled = np.asarray(crop.resize((sw, sh), Image.Resampling.LANCZOS), dtype=np.float64)
    mass = scaled.sum()
    cy = (scaled.sum(axis=1) @ np.arange(sh)) / mass if mass else sh / 2
    cx = (scaled.sum(axis=0) @ np.arange(sw)) / mass if mass else sw / 2
    x = int(np.clip(round((shape[1] - 1) / 2 - cx), 0, shape[1] - sw))
    y = int(np.clip(round((shape[0] - 1) / 2 - cy), 0, shape[0] - sh))
    frame = np.zeros(shape, np.uint8)
    frame[y : y + sh, x : x + sw] = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return frame, Geometry(w, h, (int(x0), int(y0), int(x1), int(y1)), (x, y, sw, sh))


def prepare(
    gray: np.ndarray, shape: tuple[int, int], invert: str = "auto", resize: bool = False
) -> tuple[np.ndarray, int, Geometry | None]:
    """(model-ready uint8 [H, W], flags, geometry or None). InputError says what is wrong."""
    flags = 0
    if invert == "always" or (invert == "auto" and looks_inverted(gray)):
        gray = 255 - gray
        flags |= FLAG_INVERTED
    if gray.shape == shape:
        return gray, flags, None
    if not resize:
        raise InputError(
            f"image is {gray.shape[1]}x{gray.shape[0]}, the model needs "
            f"{shape[1]}x{shape[0]} (use --resize to fit it MNIST-style)"
        )
    if max(gray.shape) > 65535:
        raise InputError(f"image is {gray.shape[1]}x{gray.shape[0]}, too large to resize")
    frame, geometry = fit_mnist_style(gray, shape)
    return frame, flags | FLAG_RESIZED, geometry


def load_prepared(
    path, shape: tuple[int, int], invert: str = "auto", resize: bool = False
) -> tuple[np.ndarray, int, Geometry | None]:
    """An image file as pack, train and bench see it: (pixels, flags, geometry); InputError names the file."""
    gray, flags = read_gray(path)
    try:
        pixels, more_flags, geometry = prepare(gray, shape, invert=invert, resize=resize)
    except InputError as err:
        raise InputError(f"{path}: {err}") from None
    return pixels, flags | more_flags, geometry


def restore(pixels: np.ndarray, flags: int, geometry: Geometry | None, restore_size: bool) -> np.ndarray:
    """Undo prepare() on a decoded image: back to the original size (if asked) and polarity."""
    from PIL import Image

    if restore_size and geometry is not None:
        if not geometry.valid_for(pixels.shape):  # the reader checks this; a canvas is never unbounded
            raise ContainerError(f"impossible geometry {geometry}")
        x0, y0, x1, y1 = geometry.box
        x, y, w, h = geometry.place
        digit = Image.fromarray(np.ascontiguousarray(pixels[y : y + h, x : x + w]))
        canvas = np.zeros((geometry.height, geometry.width), np.uint8)
        canvas[y0:y1, x0:x1] = np.asarray(digit.resize((x1 - x0, y1 - y0), Image.Resampling.LANCZOS))
        pixels = canvas
    if flags & FLAG_INVERTED:
        pixels = 255 - pixels
    return pixels
