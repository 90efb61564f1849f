"""Contact sheets: decoded images in a grid, each beside its original when asked (`aec show`)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from PIL import Image

from .dataset import Dataset
from .errors import InputError
from .images import read_gray
from .members import select

GAP = 4  # pixels between cells, at scale 1
PAIR_GAP = 1  # between an original and its decoded image
BACKGROUND = 96  # mid-grey: tells a black digit background from the gaps


def pick(data: Dataset, patterns: list[str] | None, limit: int) -> np.ndarray:
    """Indices of the images to show: those `patterns` select (members.py), else the first ones; at most `limit`."""
    if patterns:
        indices = select(data.names, patterns, data.path).indices
    else:
        indices = np.arange(len(data))
    return indices[:limit]


def _original(folder: Path, name: str, shape: tuple[int, int]) -> np.ndarray:
    """The original image `name` under `folder`, as 8-bit grayscale at the model's size (for display only)."""
    path = folder / name
    if not path.is_file():
        raise InputError(f"{path}: no original to compare with (--compare names the folder that was packed)")
    gray, _ = read_gray(path)
    if gray.shape != shape:
        gray = np.asarray(Image.fromarray(gray).resize((shape[1], shape[0]), Image.Resampling.LANCZOS))
    return gray


def contact_sheet(
    data: Dataset, indices: np.ndarray, compare: str | os.PathLike | None = None, columns: int = 0, scale: int = 3
) -> Image.Image:
    """A grayscale image: the decoded images of `indices` in a grid (with each original to its left, given
    the folder that was packed), scaled up `scale` times without smoothing."""
    if not len(indices):
        raise InputError(f"{data.path}: no images to show")
    decoded = data[indices]
    h, w = data.image_shape
    names = data.names if compare is not None else None
    per_cell = 2 if compare is not None else 1
    columns = columns or max(1, min(len(indices), round(math.sqrt(len(indices) * 1.6 / per_cell))))
    rows = math.ceil(len(indices) / columns)
    cell_w = per_cell * w + (per_cell - 1) * PAIR_GAP
    sheet = np.full((rows * (h + GAP) + GAP, columns * (cell_w + GAP) + GAP), BACKGROUND, np.uint8)
    for k, index in enumerate(indices.tolist()):
        y = GAP + (k // columns) * (h + GAP)
        x = GAP + (k % columns) * (cell_w + GAP)
        if compare is not None:
            sheet[y : y + h, x : x + w] = _original(Path(compare), names[index], (h, w))
            x += w + PAIR_GAP
        sheet[y : y + h, x : x + w] = decoded[k]
    image = Image.fromarray(sheet, "L")
    return image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST) if scale > 1 else image
