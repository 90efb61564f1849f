"""Figures every benchmark reports the same way."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image


def mse(original: np.ndarray, decoded: np.ndarray) -> float:
    """Mean squared error on the [0, 1] scale (the seed autoencoder's figure)."""
    diff = original.astype(np.float64) / 255 - decoded.astype(np.float64) / 255
    return float(np.mean(diff**2))


def psnr(mse_value: float) -> float:
    return 10 * math.log10(1 / mse_value) if mse_value > 0 else float("inf")


def read_folder(folder: Path, names: list[str]) -> np.ndarray:
    return np.stack([np.asarray(Image.open(folder / n).convert("L")) for n in names])


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
