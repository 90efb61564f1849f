"""The five levels against the ones they replaced, on MNIST test and on other hands' digits, side by side.

    AEC_DATA=../shared/data/mnist python -m benchmarks.rd.levels [--images N] [--effort E]...

Two test sets: the 10,000 MNIST test digits, and the same digits each
re-drawn once by aec.training.augment with seed 2026 (slant, rotation, size,
position, elastic wobble, thicker or thinner strokes: handwriting unlike
MNIST's in the ways real collections differ; no model trained on these, the
training copies are drawn from the training digits). For the levels
(aec.levels: each with its model and floor) and the legacy levels they
replaced (weights/legacy/mnist-qN-exact.h5, with their model's default
floor), at each effort: whole-file bytes per image
(aec.encode; its names table included), PSNR of the whole set (uint8) and,
on MNIST test, the reference classifier's accuracy on the decoded digits,
then BD-rate (PCHIP) of each curve against the old one at the same effort
and against WebP's curve in results/rd.json (the same test digits), and
the gap between the two sets.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

import aec
from aec import weights
from aec.datasets import load_mnist
from aec.metrics import bd_rate_pchip, image_psnrs, mse, psnr
from aec.modelfile import read_model
from aec.training.augment import augment

from ..common import results_path, write_results
from .reference_classifier import accuracy

HELD_OUT_SEED = 2026
LEVELS = (1, 2, 3, 4, 5)


def held_out_digits(images: np.ndarray) -> np.ndarray:
    """The held-out set: each digit re-drawn once, from HELD_OUT_SEED."""
    return augment(images, np.random.default_rng(HELD_OUT_SEED))


def measure(coder: dict, images: np.ndarray, effort: int, labels: np.ndarray | None = None) -> dict:
    """`coder`: aec.encode's model or quality option (a level brings its floor)."""
    data = aec.encode(images, effort=effort, **coder)
    decoded = aec.decode(data)
    extra = {} if labels is None else {"classifier_accuracy": accuracy(decoded, labels)}
    return {
        **extra,
        "bytes_per_image": len(data) / len(images),
        "psnr_db": psnr(mse(images, decoded)),
        "lowest_psnr_db": float(image_psnrs(images, decoded).min()),
        "rescued": int(aec.info(data)["images_rescued"]),
    }


def webp_curve() -> tuple[list[float], list[float]] | None:
    try:
        points = json.loads(results_path("rd").read_text())["points"]
    except (OSError, ValueError, KeyError):
        return None
    webp = [p for p in points if p["family"] == "WebP"]
    return [p["whole_bytes_per_image"] for p in webp], [p["psnr_db"] for p in webp]


def bd(anchor: list[dict], test: list[dict]) -> float | None:
    try:
        return bd_rate_pchip(
            [r["bytes_per_image"] for r in anchor],
            [r["psnr_db"] for r in anchor],
            [r["bytes_per_image"] for r in test],
            [r["psnr_db"] for r in test],
        )
    except ValueError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--effort", type=int, action="append", default=None, help="default: 0")
    args = parser.parse_args()
    efforts = args.effort or [0]
    test, labels = load_mnist("test")
    labels = labels[: args.images]
    sets = {"mnist_test": test[: args.images]}
    sets["held_out"] = held_out_digits(sets["mnist_test"])
    models = {
        "new": [{"quality": q} for q in LEVELS],
        "old": [{"model": read_model(weights.LEGACY / f"mnist-q{q}-exact.h5")} for q in LEVELS],
    }
    results: dict = {"images": len(test[: args.images]), "held_out_seed": HELD_OUT_SEED, "curves": {}, "bd_rate": {}}
    webp = webp_curve()
    for effort in efforts:
        for which, levels in models.items():
            for set_name, images in sets.items():
                rows = []
                for number, coder in zip(LEVELS, levels):
                    set_labels = labels if set_name == "mnist_test" else None
                    row = {"level": number, **measure(coder, images, effort, set_labels)}
                    rows.append(row)
                    print(
                        f"effort {effort}, {which} level {number}, {set_name}: "
                        f"{row['bytes_per_image']:.2f} B, {row['psnr_db']:.2f} dB "
                        f"(lowest {row['lowest_psnr_db']:.2f}, rescued {row['rescued']}"
                        f"{', classifier %.2f%%' % (100 * row['classifier_accuracy']) if set_labels is not None else ''})",
                        flush=True,
                    )
                results["curves"][f"{which} effort {effort} {set_name}"] = rows
        for set_name in sets:
            new, old = (results["curves"][f"{w} effort {effort} {set_name}"] for w in ("new", "old"))
            entry = {"new_vs_old_percent": bd(old, new)}
            if webp is not None and set_name == "mnist_test":
                webp_rows = [{"bytes_per_image": b, "psnr_db": q} for b, q in zip(*webp)]
                entry["new_vs_webp_percent"] = bd(webp_rows, new)
                entry["old_vs_webp_percent"] = bd(webp_rows, old)
            results["bd_rate"][f"effort {effort} {set_name}"] = entry
            print(f"effort {effort}, {set_name}: BD-rate {entry}", flush=True)
    write_results("levels", results)


if __name__ == "__main__":
    main()
