"""Shipped model files (package data). See README.md in this folder for the model cards.

The models in this folder are the current levels, chosen by name or
quality. legacy/ holds every model an earlier release shipped: pack never
picks them, but unpack finds them by the decoder fingerprint a file
records, so every file ever made keeps decoding.

index.json (one per folder) maps each model's name to its fingerprints and
size, so that `aec info` can name the model that made a file without
importing h5py or reading weights (start-up time). Regenerate them after
changing a model: `python -m aec.weights`.
"""

import json
from pathlib import Path

FOLDER = Path(__file__).resolve().parent
LEGACY = FOLDER / "legacy"
INDEX_NAME = "index.json"


def model_files(folder: Path = FOLDER) -> list[Path]:
    """Every model file in `folder` (the current ones by default), sorted by name."""
    return sorted(folder.glob("*.h5"))


def index(folder: Path = FOLDER) -> dict:
    """name -> {"fingerprint", "decoder_fingerprint": hex, "bytes": size, "quality"} as recorded; {} if none."""
    try:
        return json.loads((folder / INDEX_NAME).read_text())
    except (OSError, ValueError):
        return {}
