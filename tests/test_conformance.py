"""Conformance vectors: .aec files made by earlier versions decode to their recorded pixels, forever.

tests/conformance/vectors.json lists each file with the SHA-256 of its
decoded pixels (uint8 [N, H, W] as `decode` returns them) and the command
that made it. Vectors are added, never removed or regenerated.
"""

import hashlib
import json
import shlex
from pathlib import Path

import numpy as np
import pytest

import aec

HERE = Path(__file__).resolve().parent / "conformance"
VECTORS = json.loads((HERE / "vectors.json").read_text())
EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "digits"


@pytest.mark.parametrize("vector", VECTORS, ids=[v["file"] for v in VECTORS])
def test_vector_decodes_to_its_recorded_pixels(vector):
    data = (HERE / vector["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == vector["file_sha256"], "a vector file was changed"
    pixels = aec.decode(data)
    assert pixels.shape[0] == vector["images"]
    assert hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).hexdigest() == vector["pixels_sha256"]
    assert aec.info(data)["model_fingerprint"] == vector["fingerprint"]


PACKED_FROM_EXAMPLES = [v for v in VECTORS if v["made_with"].startswith("aec pack examples/digits")]


@pytest.mark.parametrize("vector", PACKED_FROM_EXAMPLES, ids=[v["file"] for v in PACKED_FROM_EXAMPLES])
def test_packing_the_examples_gives_the_same_bytes(vector, tmp_path):
    """pack writes the bytes it wrote before (same model, same inputs, same options)."""
    words = shlex.split(vector["made_with"])
    options = words[words.index("-o") + 2 :]
    quality = int(options[options.index("-Q") + 1]) if "-Q" in options else None
    effort = int(options[options.index("-e") + 1]) if "-e" in options else 0
    out = tmp_path / vector["file"]
    aec.pack([EXAMPLES], out, quality=quality, effort=effort)
    assert out.read_bytes() == (HERE / vector["file"]).read_bytes()
