"""Effort 0's search of the worst-coded images: what each threshold and way of moving buys, for what CPU.

    AEC_DATA=../shared/data/mnist python -m benchmarks.rd.effort0_search [--images 10000] [--json OUT]

The default pack (effort 0) searches only the images whose encoder latents
decode below a level's threshold (search.touch_up, the shipped levels'
metadata "search": {"effort 0": ...}). For levels 1-3, on the MNIST test
digits and on the same digits re-drawn once (benchmarks.rd.levels' held-out
other hands), this measures, against the encoder alone:
- the shipped setting, and thresholds 1 dB below and above it;
- gradient moves: one gradient, the K best predicted moves made together, one
  exact decode to keep or drop them (K = 2 is shipped at levels 1 and 2, 4 at
  level 3; at the shipped threshold also 2, 4 and 8, and the shipped K for
  two rounds);
- ranked moves as effort 1 makes them, K tried one decode at a time (4, 1 round).
Rate from the entropy tables (no container), PSNR of the whole set (its mean
squared error), the share of images searched, and the search's CPU time per
image of the set in one thread, in pack's batches of 256 (a reader process's
task): the time to weigh against pack's read floor of about 60 us an image.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
from threadpoolctl import threadpool_limits

from aec import runtime, search
from aec.datasets import load_mnist
from aec.metrics import image_psnrs, mse, psnr
from aec.models import resolve_model

from ..common import command_line, write_results
from .levels import held_out_digits

BATCH = 256  # pack_inputs.READ_BATCH: the images one reader task encodes together


def with_setting(model, below: float, best: int, rounds: int):
    entry = {"method": search.METHODS[0], "below": below, "best": best, "rounds": rounds}
    return dataclasses.replace(
        model, metadata={**model.metadata, "search": {**model.metadata["search"], "effort 0": entry}}
    )


def ranked_below(model, below: float, best: int, rounds: int):
    """Effort 1's ranked moves (one decode a move) on the images below `below`: the alternative."""

    def search_batch(images, latents, pixels):
        rows = np.flatnonzero(image_psnrs(images, pixels) < below)
        latents = latents.copy()
        if len(rows):
            costs = search._Costs(model, images[rows], search.search_lambda(model, 1))
            latents[rows] = search._ranked_moves(costs, latents[rows].astype(np.int64), best, rounds)
        return latents, runtime.decode_latents(model, latents)

    return search_batch


def measure(model, images: np.ndarray, search_batch) -> dict:
    latents, pixels, seconds = [], [], 0.0
    for first in range(0, len(images), BATCH):
        part = images[first : first + BATCH]
        encoded = runtime.encode_latents(model, part)
        decoded = runtime.decode_latents(model, encoded)
        start = time.process_time()
        if search_batch is not None:
            encoded, decoded = search_batch(part, encoded, decoded)
        seconds += time.process_time() - start
        latents.append(encoded)
        pixels.append(decoded)
    latents, pixels = np.concatenate(latents), np.concatenate(pixels)
    costs = search._Costs(model, images, search.search_lambda(model, 1))
    return {
        "table_bytes_per_image": float(costs.rate(latents.astype(np.int64)).mean() / 8),
        "psnr_db": psnr(mse(images, pixels)),
        "search_us_per_image": 1e6 * seconds / len(images),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    test = load_mnist("test")[0]
    sets = {"MNIST test": test[: args.images], "other hands": held_out_digits(test)[: args.images]}
    rows = []
    with threadpool_limits(1):  # as in a reader process
        for quality in (1, 2, 3):
            model = resolve_model(quality=quality)
            shipped = search.ranked_search(model, 0)
            ways = {"encoder alone": (None, None)}
            for below in (shipped.below - 1, shipped.below, shipped.below + 1):
                for best, rounds in ((2, 1), (4, 1), (8, 1), (shipped.best, 2)):
                    if below == shipped.below or (best, rounds) == (shipped.best, 1):
                        variant = with_setting(model, below, best, rounds)
                        name = f"gradient moves below {below:g} dB: {best} together, {rounds} round(s)"
                        ways[name] = (below, lambda p, e, d, m=variant: search.touch_up(m, p, e, d))
                ways[f"ranked moves below {below:g} dB: 4 one at a time, 1 round"] = (
                    below,
                    ranked_below(model, below, 4, 1),
                )
            for set_name, images in sets.items():
                encoder_psnrs = image_psnrs(
                    images, runtime.decode_latents(model, runtime.encode_latents(model, images))
                )
                base = None
                for name, (below, way) in ways.items():
                    row = {
                        "level": quality,
                        "set": set_name,
                        "search": name,
                        "shipped": name.startswith(
                            f"gradient moves below {shipped.below:g} dB: {shipped.best} together, {shipped.rounds} round("
                        ),
                    }
                    row["share_searched"] = 0.0 if below is None else float(np.mean(encoder_psnrs < below))
                    row.update(measure(model, images, way))
                    base = base or row
                    row["gain_db"] = row["psnr_db"] - base["psnr_db"]
                    rows.append(row)
                    print(
                        f"level {quality} {set_name:11s} {name:58s} {row['share_searched']:6.1%} "
                        f"{row['table_bytes_per_image']:6.3f} B {row['psnr_db']:6.2f} dB ({row['gain_db']:+.2f}) "
                        f"{row['search_us_per_image']:5.1f} us/image",
                        flush=True,
                    )
    results = {"command": command_line(), "images": args.images, "batch": BATCH, "rows": rows}
    print(f"wrote {write_results('effort0_search', results, path=args.json)}")


if __name__ == "__main__":
    main()
