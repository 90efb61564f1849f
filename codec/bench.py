"""`aec bench`: aec beside PNG and WebP on the user's own images.

For each shipped quality level and each classic format: bytes per image,
ratio against raw pixels, PSNR, and encode/decode time per image, measured
in this process on the same images.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .arrays import is_array_file, read_array_file
from .classic import PNG, WebP, WebPLossless
from .decoding import decode
from .errors import InputError
from .inputs import collect_inputs
from .metrics import mse, psnr
from .models import load_model_file, shipped_model_files
from .pack_inputs import array_names
from .packing import encode
from .prepare import load_prepared


def load_images(path: Path, shape: tuple[int, int], limit: int | None) -> tuple[np.ndarray, list[str]]:
    """(uint8 [N, H, W], the names pack would store) from a folder of images or an array file, prepared as
    pack prepares them: aec's bytes are measured with the real names table."""
    if path.is_file() and is_array_file(path):
        images = read_array_file(path, shape)[0]
        images = images[:limit] if limit else images
        return np.asarray(images), array_names(path.name, len(images), alone=True)
    inputs = collect_inputs([path])
    files, names = (inputs.files[:limit], inputs.names[:limit]) if limit else (inputs.files, inputs.names)
    return np.stack([load_prepared(file, shape)[0] for file in files]), names


def _psnr(original: np.ndarray, decoded: np.ndarray) -> float | None:
    """PSNR in dB, None when lossless (JSON has no infinity)."""
    error = mse(original, decoded)
    return None if error == 0 else psnr(error)


def run(path: Path, limit: int | None = 2000, efforts: tuple[int, ...] = (0, 1)) -> dict:
    models = {name: load_model_file(p) for name, p in shipped_model_files().items()}
    if not models:
        raise InputError("no shipped models to compare")
    shape = next(iter(models.values())).image_shape
    images, names = load_images(path, shape, limit)
    n = len(images)
    rows = []

    def add(codec_name: str, total: int, decoded: np.ndarray, encode_s: float, decode_s: float) -> None:
        rows.append(
            {
                "codec": codec_name,
                "bytes_per_image": total / n,
                "ratio_vs_raw": images.size / total,
                "psnr_db": _psnr(images, decoded),
                "encode_us_per_image": 1e6 * encode_s / n,
                "decode_us_per_image": 1e6 * decode_s / n,
            }
        )

    for effort in efforts:
        for name, model in sorted(models.items(), key=lambda kv: kv[1].quality):
            start = time.perf_counter()
            data = encode(images, model=model, effort=effort, names=names)
            encode_s = time.perf_counter() - start
            start = time.perf_counter()
            decoded = decode(data, model=model)
            add(f"aec {name} effort {effort}", len(data), decoded, encode_s, time.perf_counter() - start)
    # WebP lossless at Pillow's default effort (the RD benchmark uses the maximum): quicker, and what bench has reported
    classic = [("PNG", PNG()), ("WebP lossless", WebPLossless(effort=None))]
    classic += [(f"WebP q{quality}", WebP(quality)) for quality in (0, 50, 90)]
    for label, codec in classic:
        r = codec.run(images, folder_xz=False)
        add(label, r.whole_bytes, r.decoded, r.encode_seconds, r.decode_seconds)
    return {"source": str(path), "images": n, "raw_bytes_per_image": images[0].size, "rows": rows}


def format_table(result: dict) -> str:
    lines = [
        f"{result['images']} images from {result['source']} ({result['raw_bytes_per_image']} raw bytes each)",
        f"{'codec':<28} {'B/image':>9} {'ratio':>7} {'PSNR dB':>8} {'enc us':>8} {'dec us':>8}",
    ]
    for r in result["rows"]:
        psnr = "lossless" if r["psnr_db"] is None else f"{r['psnr_db']:.2f}"
        lines.append(
            f"{r['codec']:<28} {r['bytes_per_image']:>9.2f} {r['ratio_vs_raw']:>6.1f}x {psnr:>8} "
            f"{r['encode_us_per_image']:>8.1f} {r['decode_us_per_image']:>8.1f}"
        )
    return "\n".join(lines)
