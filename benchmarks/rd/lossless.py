"""Lossless and near-lossless on the 10,000 MNIST test digits, beside the classic lossless coders; the floor's cost.

    AEC_DATA=../shared/data/mnist python -m benchmarks.rd.lossless [--images N] [--repeat R]

Whole-file bytes per image (names and headers included for aec: the digits are
packed from a .npy, as `aec pack test.npy --lossless` does), pack and unpack
speed of that CLI command (one process each, best of R), and beside them: xz -9e
of the raw pixels, PNG, WebP lossless, JPEG-LS (imagecodecs, per file, and its
files compressed together with xz) and JPEG XL lossless (imagecodecs) at the
same max errors where the coder has one. Then the quality floor at each level:
how many digits it rescues, what they cost, the lowest PSNR left.
"""

from __future__ import annotations

import argparse
import io
import json
import lzma
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

import aec
from aec.datasets import load_mnist
from aec.levels import LEVELS
from aec.metrics import image_psnrs

from ..common import results_path, write_results

MAX_ERRORS = (0, 1, 2, 4, 8)


def cli_seconds(args: list, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "aec", *map(str, args)], check=True, capture_output=True)
        best = min(best, time.perf_counter() - start)
    return best


def aec_rows(images: np.ndarray, repeat: int) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        source = tmp / "test.npy"
        np.save(source, images)
        for error in MAX_ERRORS:
            packed = tmp / f"n{error}.aec"
            pack = cli_seconds(["pack", source, "-o", packed, "-f", "--max-error", error], repeat)
            unpack = cli_seconds(["unpack", packed, "-o", tmp / "out.npy", "-f", "--format", "npy"], repeat)
            back = np.load(tmp / "out.npy")
            worst = int(np.abs(back.astype(int) - images).max())
            assert worst <= error, f"max error {error} broken: {worst}"
            size = packed.stat().st_size
            rows.append(
                {
                    "codec": "aec",
                    "max_error": error,
                    "bytes_per_image": size / len(images),
                    "bits_per_pixel": 8 * size / images.size,
                    "worst_error": worst,
                    "psnr_db": float(np.mean(np.minimum(image_psnrs(images, back), 99))),
                    "pack_images_per_s": len(images) / pack,
                    "unpack_images_per_s": len(images) / unpack,
                    "decode_images_per_s": decode_rate(packed.read_bytes(), len(images)),
                }
            )
            print(rows[-1], flush=True)
    return rows


def decode_rate(data: bytes, count: int) -> float:
    start = time.perf_counter()
    aec.decode(data)
    return count / (time.perf_counter() - start)


def pillow_bytes(images: np.ndarray, fmt: str, **options) -> int:
    total = 0
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(image, "L").save(buffer, fmt, **options)
        total += buffer.tell()
    return total


def classic_rows(images: np.ndarray) -> list[dict]:
    n = len(images)
    rows = [
        {"codec": "xz -9e of the raw pixels", "max_error": 0,
         "bytes_per_image": len(lzma.compress(images.tobytes(), preset=9 | lzma.PRESET_EXTREME)) / n},
        {"codec": "PNG (Pillow, optimize)", "max_error": 0,
         "bytes_per_image": pillow_bytes(images, "PNG", optimize=True) / n},
        {"codec": "WebP lossless (Pillow, method 6)", "max_error": 0,
         "bytes_per_image": pillow_bytes(images, "WEBP", lossless=True, quality=100, method=6) / n},
    ]  # fmt: skip
    try:
        import imagecodecs  # optional: the benchmark's comparison coders, not a product dependency
    except ImportError:
        print("imagecodecs not installed: JPEG-LS and JPEG XL left out", flush=True)
        return rows
    for error in MAX_ERRORS:
        files = [imagecodecs.jpegls_encode(image, level=error) for image in images]
        for data, image in zip(files[:50], images[:50]):
            assert np.abs(imagecodecs.jpegls_decode(data).astype(int) - image).max() <= error
        rows.append(
            {
                "codec": "JPEG-LS (imagecodecs, per file)",
                "max_error": error,
                "bytes_per_image": sum(map(len, files)) / n,
            }
        )
        together = lzma.compress(b"".join(files), preset=9 | lzma.PRESET_EXTREME)
        rows.append({"codec": "JPEG-LS files, xz -9e together", "max_error": error,
                     "bytes_per_image": len(together) / n})  # fmt: skip
    files = [imagecodecs.jpegxl_encode(image, lossless=True, effort=9) for image in images]
    assert np.array_equal(imagecodecs.jpegxl_decode(files[0]), images[0])
    rows.append({"codec": "JPEG XL lossless (imagecodecs, effort 9)", "max_error": 0,
                 "bytes_per_image": sum(map(len, files)) / n})  # fmt: skip
    for row in rows:
        row["bits_per_pixel"] = 8 * row["bytes_per_image"] / images[0].size
        print(row, flush=True)
    return rows


def floor_rows(images: np.ndarray) -> list[dict]:
    rows = []
    for level, floor in ((number, entry.floor) for number, entry in LEVELS.items()):
        plain = aec.encode(images, quality=level, min_psnr=0)
        floored = aec.encode(images, quality=level)
        facts = aec.info(floored)
        back = aec.decode(floored)
        rows.append(
            {
                "level": level,
                "floor_db": floor,
                "rescued": facts["images_rescued"],
                "rescued_share": facts["images_rescued"] / len(images),
                "residual_bytes": facts["residual_bytes"],
                "bytes_per_image_without": len(plain) / len(images),
                "bytes_per_image_with": len(floored) / len(images),
                "growth": len(floored) / len(plain) - 1,
                "lowest_psnr_without": float(image_psnrs(images, aec.decode(plain)).min()),
                "lowest_psnr_with": float(image_psnrs(images, back).min()),
            }
        )
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, default=results_path("lossless"))
    parser.add_argument(
        "--floor-only", action="store_true", help="re-measure the floor rows alone, keep the rest of --json"
    )
    parser.add_argument("--aec-only", action="store_true", help="re-measure aec's rows alone, keep the rest of --json")
    args = parser.parse_args()
    images, _ = load_mnist("test")
    images = images[: args.images]
    if args.floor_only:
        results = json.loads(args.json.read_text())
        results["floor"] = floor_rows(images)
        results["floor_command"] = "python -m benchmarks.rd.lossless --floor-only"
        write_results("lossless", results, args.json)
        return
    if args.aec_only:
        results = json.loads(args.json.read_text())
        results["aec"] = aec_rows(images, args.repeat)
        results["aec_command"] = "python -m benchmarks.rd.lossless --aec-only"
        write_results("lossless", results, args.json)
        return
    results = {
        "command": "python -m benchmarks.rd.lossless" + (f" --images {args.images}" if args.images != 10_000 else ""),
        "images": len(images),
        "aec": aec_rows(images, args.repeat),
        "classic": classic_rows(images),
        "floor": floor_rows(images),
    }
    write_results("lossless", results, args.json)


if __name__ == "__main__":
    main()
