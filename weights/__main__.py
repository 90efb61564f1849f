"""Write index.json beside the current and the legacy model files (each read and verified in full)."""

import json

from ..entropy import LatentCoder
from ..modelfile import read_model
from . import FOLDER, INDEX_NAME, LEGACY, model_files

for folder in (FOLDER, LEGACY):
    entries = {}
    for path in model_files(folder):
        model = read_model(path)
        entries[path.stem] = {
            "fingerprint": model.fingerprint_hex,
            "decoder_fingerprint": model.decoder_fingerprint.hex(),
            "bytes": path.stat().st_size,
            "quality": model.quality,
            # The fewest bytes an image can cost: aec info checks a file's image count against it.
            "min_bytes_per_image": LatentCoder(model).min_bytes_per_image,
        }
    (folder / INDEX_NAME).write_text(json.dumps(entries, indent=2, sort_keys=True) + "\n")
    print(f"wrote {folder / INDEX_NAME} ({len(entries)} models)")
