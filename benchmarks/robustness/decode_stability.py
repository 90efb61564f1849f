"""One .aec file decodes to the same PNG bytes in fresh processes and after a reinstall.

    AEC_DATA=../shared/data/mnist python -m benchmarks.robustness.decode_stability [--limit N] [--effort E] \
        [--json FILE]

Packs the MNIST test digits at every shipped quality level (at pack --effort E), unpacks each file
in two fresh processes of this installation, then installs the package from
this source tree into a new virtual environment (pip install ., as a user
would) and unpacks again there. Reports the SHA-256 of every unpacked folder
(sorted names and bytes) and whether all three agree.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

import aec
from aec.datasets import load_mnist

from ..common import ROOT, results_path, write_results


def folder_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.png")):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def unpack_with(python: str, packed: Path, out: Path) -> str:
    command = [python, "-c", "from aec.cli.main import run; run()", "unpack", str(packed), "-o", str(out), "-q"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=out.parent)
    if done.returncode:
        raise SystemExit(f"unpack failed with {python}: {done.stderr[-400:]}")
    return folder_digest(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--effort", type=int, default=0, choices=aec.EFFORTS)
    parser.add_argument("--json", type=Path, default=results_path("decode_stability"))
    args = parser.parse_args()
    images, _ = load_mnist("test")
    images = images[: args.limit]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "digits").mkdir()
        for i, image in enumerate(images):
            Image.fromarray(image).save(tmp / "digits" / f"{i:05d}.png")
        venv = tmp / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        fresh_python = str(venv / "bin" / "python")
        subprocess.run([fresh_python, "-m", "pip", "install", "--quiet", str(ROOT)], check=True)
        rows = {}
        for quality in sorted(aec.models.quality_levels()):
            packed = tmp / f"q{quality}.aec"
            aec.pack([tmp / "digits"], packed, quality=quality, effort=args.effort)
            digests = [
                unpack_with(sys.executable, packed, tmp / f"q{quality}-a"),
                unpack_with(sys.executable, packed, tmp / f"q{quality}-b"),
                unpack_with(fresh_python, packed, tmp / f"q{quality}-reinstalled"),
            ]
            rows[quality] = {
                "images": len(images),
                "effort": args.effort,
                "sha256": digests,
                "identical": len(set(digests)) == 1,
            }
            print(
                f"quality {quality}: {len(images)} images, folder SHA-256 {digests[0][:16]}..., "
                f"fresh process x2 + reinstalled: {'identical' if rows[quality]['identical'] else 'DIFFERENT'}"
            )
    write_results(
        "decode_stability", {"levels": rows, "all_identical": all(r["identical"] for r in rows.values())}, args.json
    )
    if not all(r["identical"] for r in rows.values()):
        raise SystemExit("decoding differed")


if __name__ == "__main__":
    main()
