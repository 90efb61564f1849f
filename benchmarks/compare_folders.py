"""Compare a folder of original PNGs with the folder aec unpacked, and the .aec file between them.

    python benchmarks/compare_folders.py ORIGINALS/ UNPACKED/ FILE.aec
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.metrics import folder_bytes, mse, psnr, read_folder  # noqa: E402


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
    print(f"{archive.name}:{' ' * max(1, 20 - len(archive.name))}{size:,} bytes, {size / len(names):.2f} bytes per image")
    print(f"ratio vs raw pixels: {len(names) * 784 / size:.1f}x  ({len(names) * 784:,} bytes)")
    print(f"ratio vs PNG folder: {png / size:.1f}x  ({png:,} bytes of PNG files)")
    print(f"quality:             PSNR {psnr(err):.2f} dB, MSE {err:.5f} (on [0,1])")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])))
