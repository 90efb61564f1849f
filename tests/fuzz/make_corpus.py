"""Seed corpus for the fuzzer: real containers (1, 20 and 48 images, flags set) and a few damaged ones.

python tests/fuzz/make_corpus.py CORPUS_DIR
"""

import hashlib
import sys
from pathlib import Path

import numpy as np
from PIL import Image

import aec
from aec.testing.hostile import mutations

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "digits"


def main(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    images = np.stack([np.asarray(Image.open(p)) for p in sorted(EXAMPLES.glob("*.png"))])
    seeds = [aec.encode(images[:1]), aec.encode(images[:20], chunk_size=8), aec.encode(images)]
    rng = np.random.default_rng(0)
    seeds += [damaged for _, damaged in mutations(seeds[1], rng, 20)]
    for data in seeds:
        (folder / hashlib.sha1(data).hexdigest()[:16]).write_bytes(data)
    print(f"wrote {len(seeds)} seeds to {folder}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "fuzz-corpus"))
