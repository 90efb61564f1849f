"""Write weights/index.json from the shipped model files (each read and verified in full)."""

import json

from codec.modelfile import read_model

from . import INDEX, model_files

entries = {path.stem: {"fingerprint": read_model(path).fingerprint_hex, "bytes": path.stat().st_size}
           for path in model_files()}
INDEX.write_text(json.dumps(entries, indent=2, sort_keys=True) + "\n")
print(f"wrote {INDEX} ({len(entries)} models)")
