"""Compare a folder of original PNGs with the folder aec unpacked, and the .aec file between them.

python -m benchmarks.rd.compare_folders ORIGINALS/ UNPACKED/ FILE.aec
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aec.metrics import mse, psnr

from ..common import folder_bytes, read_folder


def main(originals: Path, unpacked: Path, archive: Path) -> int:
    names = sorted(p.relative_to(originals).with_suffix(".png").as_posix() for p in originals.rglob("*") if p.is_file())
    missing = [n for n in names if not (unpacked / n).is_file()]
    if missing:
        print(f"MISSING after unpack: {len(missing)} files, e.g. {missing[:3]}", file=sys.stderr)
        return 1
    a, b = read_folder(originals, names), read_folder(unpacked, names)
    size, png = archive.stat().st_size, folder_bytes(originals)
    err = mse(a, b)
    print(f"images:              {len(names)} (every name came back)")
    print(
        f"{archive.name}:{' ' * max(1, 20 - len(archive.name))}{size:,} bytes, {size / len(names):.2f} bytes per image"
    )
    print(f"ratio vs raw pixels: {len(names) * 784 / size:.1f}x  ({len(names) * 784:,} bytes)")
    print(f"ratio vs PNG folder: {png / size:.1f}x  ({png:,} bytes of PNG files)")
    print(f"quality:             PSNR {psnr(err):.2f} dB, MSE {err:.5f} (on [0,1])")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("originals", type=Path, help="the folder that was packed")
    parser.add_argument("unpacked", type=Path, help="the folder aec unpacked it to")
    parser.add_argument("archive", type=Path, help="the .aec file")
    args = parser.parse_args()
    sys.exit(main(args.originals, args.unpacked, args.archive))
