"""Shipped model files (package data). See README.md in this folder for the model card.

index.json maps each shipped model's name to its fingerprint and size, so
that `aec info` can name the model that made a file without importing h5py
or reading weights (start-up time). Regenerate it after changing a model:
`python -m aec.weights`.
"""

import json
from pathlib import Path

FOLDER = Path(__file__).resolve().parent
INDEX = FOLDER / "index.json"


def model_files() -> list[Path]:
    """Every shipped model file, sorted by name."""
    return sorted(FOLDER.glob("*.h5"))


def index() -> dict:
    """name -> {"fingerprint": hex, "bytes": size} as recorded; {} if there is no index."""
    try:
        return json.loads(INDEX.read_text())
    except (OSError, ValueError):
        return {}
