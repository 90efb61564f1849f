"""Cheap searches at pack time: how much of effort 1's gain each buys, for what time.

    AEC_DATA=../shared/data/mnist python -m benchmarks.rd.refine_steps [--images 10000] [--quality 3]

The default pack (effort 0) rounds the encoder's latents. Searches, each
keeping per image only what lowers J = bits + lambda * MSE (search.py):
- gradient steps: before rounding, K steps of effort 2's gradient descent
  (Adam, the rate relaxed between the tables' integers);
- ranked moves (search._ranked_moves, effort 1 of the shipped levels): from
  the rounded latents, the decoder's gradient and the tables' bits predict
  each one-step move's change of J; the K best predicted moves are tried one
  at a time (one decode each), for R rounds;
- the coordinate descent that effort 1 runs for models without a ranked
  moves setting (two passes, about 64 decodes an image);
- effort 1 and 2 as pack runs them for this level, and as it runs them for
  a model without ranked-moves settings (the older searches).
Rate from the entropy tables (no container), PSNR of the decoded uint8 test
digits, and the time of the latents' computation against effort 0's, in one
process, one after the other.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from aec import runtime
from aec import search as latent_search
from aec.datasets import load_mnist
from aec.metrics import mse, psnr
from aec.models import resolve_model

from ..common import command_line, write_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--quality", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    model = resolve_model(None, quality=args.quality)
    images = load_mnist("test")[0][: args.images]
    costs = latent_search._Costs(model, images, latent_search.search_lambda(model, 1))
    rows = []

    def measure(name: str, compute) -> None:
        start = time.perf_counter()
        latents = compute()
        seconds = time.perf_counter() - start
        decoded = runtime.decode_latents(model, latents.astype(np.int32)).reshape(images.shape)
        rows.append(
            {
                "method": name,
                "table_bytes_per_image": float(costs.rate(latents.astype(np.int64)).mean() / 8),
                "psnr_db": psnr(mse(images, decoded)),
                "seconds": seconds,
            }
        )

    def refined(steps: int, rate: float):
        def compute():
            continuous = runtime.analyse(model, images)
            rounded = runtime.quantize(model, continuous).astype(np.int64)
            moved = latent_search._gradient_descent(costs, continuous, steps=steps, learning_rate=rate)
            return np.where((costs(moved) < costs(rounded))[:, None], moved, rounded)

        return compute

    def ranked(best: int, rounds: int):
        def compute():
            latents = runtime.encode_latents(model, images).astype(np.int64)
            return latent_search._ranked_moves(costs, latents, best, rounds)

        return compute

    def descent():
        latents = runtime.encode_latents(model, images).astype(np.int64)
        return latent_search._guided_descent(costs, latents, passes=2)

    measure("effort 0", lambda: runtime.encode_latents(model, images))
    for steps, rate in ((1, 0.1), (2, 0.05), (5, 0.05), (10, 0.05)):
        measure(f"{steps} gradient steps (lr {rate})", refined(steps, rate))
    for best, rounds in ((4, 1), (8, 1), (4, 2), (8, 2), (8, 3), (16, 3)):
        measure(f"ranked moves: {best} best, {rounds} round{'s' if rounds > 1 else ''}", ranked(best, rounds))
    measure("coordinate descent (2 passes)", descent)
    older = dataclasses.replace(
        model, metadata={"search": {"lambda": model.metadata["search"]["lambda"]}}, fingerprint=b""
    )
    for effort in (1, 2):
        setting = latent_search.ranked_search(model, effort)
        measure(f"effort {effort}: {setting}", lambda: latent_search.search_latents(model, images, effort))
        measure(f"effort {effort}, the older search", lambda: latent_search.search_latents(older, images, effort))
    base = rows[0]
    for row in rows:
        row["time_vs_effort_0"] = row["seconds"] / base["seconds"]
        print(
            f"{row['method']:32s} {row['table_bytes_per_image']:6.2f} B  {row['psnr_db']:6.2f} dB  "
            f"{row['time_vs_effort_0']:6.1f}x effort 0's time"
        )
    results = {"command": command_line(), "model": model.name, "images": len(images), "rows": rows}
    print(f"wrote {write_results('refine_steps', results, path=args.json)}")


if __name__ == "__main__":
    main()
