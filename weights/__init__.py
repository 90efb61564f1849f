"""Shipped model files (package data). See README.md in this folder for the model card."""

from pathlib import Path

FOLDER = Path(__file__).resolve().parent


def model_files() -> list[Path]:
    """Every shipped model file, sorted by name."""
    return sorted(FOLDER.glob("*.h5"))
