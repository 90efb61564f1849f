"""`aec cat` of two big files, whole process, both ways it can join them.

    AEC_DATA=../shared/data/mnist python -m benchmarks.speed.cat [--images 1003519] [--tmp DIR]

Packs two files of --images MNIST test digits each (plus one PNG, so that
their names differ), then joins them with `aec cat`, timed with its peak
memory: once where the first file fills its chunks exactly (chunks copied:
the default --images gives 245 chunks of 4,096) and once where it does not
(one image fewer: chunks cut anew, the latents coded again and the images
decoded for the pixel checksums).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from aec.datasets import load_mnist

from ..common import command_line, write_results
from .archive import timed

AEC = [sys.executable, "-m", "aec"]


def pack_pair(tmp: Path, images: np.ndarray, tag: str) -> list[Path]:
    files = []
    for half in ("a", "b"):
        folder = tmp / f"{tag}-{half}"
        folder.mkdir()
        np.save(folder / f"{half}.npy", images)
        Image.fromarray(images[0]).save(folder / f"{half}-extra.png")
        out = tmp / f"{tag}-{half}.aec"
        subprocess.run(AEC + ["pack", str(folder / f"{half}.npy"), str(folder / f"{half}-extra.png"), "-o", str(out), "-q"],
                       check=True)  # fmt: skip
        files.append(out)
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=245 * 4096 - 1)
    parser.add_argument("--tmp", default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    test = load_mnist("test")[0]
    results = {"command": command_line(), "images_per_file": args.images + 1}
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        tmp = Path(tmp)
        for tag, count in (("copied", args.images), ("cut", args.images - 1)):
            files = pack_pair(tmp, np.resize(test, (count, *test.shape[1:])), tag)
            wall, peak, _ = timed(AEC + ["cat", *map(str, files), "-o", str(tmp / f"{tag}.aec"), "-q"])
            results[tag] = {"images": 2 * (count + 1), "seconds": wall, "peak_rss_mb": peak}
            print(f"{tag}: {2 * (count + 1):,} images joined in {wall:.2f} s, peak {peak:.0f} MB")
            for f in files:
                f.unlink()
    print(f"wrote {write_results('cat', results, path=args.json)}")


if __name__ == "__main__":
    main()
