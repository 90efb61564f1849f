"""`aec bench`: aec beside PNG and WebP on the user's own images.

For each quality level (levels.py), aec --lossless and each classic format:
bytes per image, ratio against raw pixels, PSNR (mean and lowest), how many
images the quality floor rescued and what they took, and encode/decode time
per image, measured in this process on the same images.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .arrays import is_array_file, read_array_file
from .classic import PNG, WebP, WebPLossless
from .decoding import decode
from .fileinfo import info
from .guarantee import RESIDUAL_LEVEL
from .inputs import collect_inputs
from .levels import DEFAULT_LEVEL, LEVELS
from .metrics import image_psnrs, mse, psnr
from .models import resolve_model
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
    models = {number: resolve_model(quality=number) for number in LEVELS}
    shape = models[DEFAULT_LEVEL].image_shape
    images, names = load_images(path, shape, limit)
    n = len(images)
    rows = []

    def add(codec_name: str, total: int, decoded: np.ndarray, encode_s: float, decode_s: float, data=None) -> None:
        facts = info(data) if data is not None else {}
        rows.append(
            {
                "codec": codec_name,
                "bytes_per_image": total / n,
                "ratio_vs_raw": images.size / total,
                "psnr_db": _psnr(images, decoded),
                "lowest_psnr_db": None
                if np.array_equal(images, decoded)
                else float(image_psnrs(images, decoded).min()),
                "encode_us_per_image": 1e6 * encode_s / n,
                "decode_us_per_image": 1e6 * decode_s / n,
                "rescued": facts.get("images_rescued"),  # below the quality floor: given a residual
                "rescue_bytes": facts.get("residual_bytes") if facts.get("images_rescued") else None,
            }
        )

    def run_aec(label: str, model, **options) -> None:
        start = time.perf_counter()
        data = encode(images, names=names, **options)
        encode_s = time.perf_counter() - start
        start = time.perf_counter()
        decoded = decode(data, model=model)
        add(label, len(data), decoded, encode_s, time.perf_counter() - start, data)

    for effort in efforts:
        for number, model in models.items():
            run_aec(f"aec -Q {number} effort {effort}", model, quality=number, effort=effort)
    run_aec("aec --lossless", models[RESIDUAL_LEVEL], max_error=0)
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
        f"{'codec':<28} {'B/image':>9} {'ratio':>7} {'PSNR dB':>8} {'lowest':>7} {'enc us':>8} {'dec us':>8} rescued",
    ]
    for r in result["rows"]:
        psnr = "lossless" if r["psnr_db"] is None else f"{r['psnr_db']:.2f}"
        lowest = "-" if r["lowest_psnr_db"] is None else f"{r['lowest_psnr_db']:.1f}"
        rescued = (
            ""
            if r["rescued"] is None
            else f"{r['rescued']}" + (f" ({r['rescue_bytes']:,} B)" if r["rescue_bytes"] else "")
        )
        lines.append(
            f"{r['codec']:<28} {r['bytes_per_image']:>9.2f} {r['ratio_vs_raw']:>6.1f}x {psnr:>8} {lowest:>7} "
            f"{r['encode_us_per_image']:>8.1f} {r['decode_us_per_image']:>8.1f} {rescued}"
        )
    return "\n".join(lines)
