"""Write weights/index.json from the shipped model files (each read and verified in full)."""

import json

from ..modelfile import read_model
from . import INDEX, model_files

entries = {}
for path in model_files():
    model = read_model(path)
    entries[path.stem] = {"fingerprint": model.fingerprint_hex, "bytes": path.stat().st_size, "quality": model.quality}
INDEX.write_text(json.dumps(entries, indent=2, sort_keys=True) + "\n")
print(f"wrote {INDEX} ({len(entries)} models)")
