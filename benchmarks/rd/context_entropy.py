"""How much a context-conditioned entropy model could save over the per-latent tables aec codes with.

    AEC_DATA=../shared/data/mnist python -m benchmarks.rd.context_entropy [--quality 3]

The latents of a level (effort 0) for the 60,000 MNIST training digits fit
count tables (add-0.5 smoothing); the 10,000 test digits' latents are then
costed in bits under them (cross-entropy, an ideal coder's size; file
overheads left out). First with one table per latent (what the model file
holds), then with each latent's table chosen by a context that a decoder
would already know: the previous latent's value, its magnitude, the mean
magnitude of all earlier latents, the two previous values, and, as a
generous bound, whichever other latent helps each one most. Small savings
mean the per-latent tables are close to what any such model can do, and
better pictures per byte must come from the networks.
"""

from __future__ import annotations

import argparse

import numpy as np

from aec.datasets import load_mnist
from aec.models import resolve_model
from aec.search import search_latents

from ..common import command_line, write_results


def cross_entropy_bits(train: np.ndarray, test: np.ndarray, train_ctx: np.ndarray, test_ctx: np.ndarray) -> float:
    """Bits of the test symbols under per-context counts of the training symbols (add-0.5 smoothing)."""
    low = min(train.min(), test.min())
    width = max(train.max(), test.max()) - low + 1
    counts = np.full((max(train_ctx.max(), test_ctx.max()) + 1, width), 0.5)
    np.add.at(counts, (train_ctx, train - low), 1)
    p = counts / counts.sum(axis=1, keepdims=True)
    return float(-np.log2(p[test_ctx, test - low]).sum())


def context(q: np.ndarray, j: int, kind: str) -> np.ndarray:
    """Context of latent j for each image, from latents a decoder has already decoded (0..j-1)."""
    if j == 0 or kind == "none":
        return np.zeros(len(q), np.int64)
    if kind == "previous value":
        return np.clip(q[:, j - 1], -3, 3) + 3
    if kind == "previous magnitude":
        return np.minimum(np.abs(q[:, j - 1]), 4)
    if kind == "mean magnitude so far":
        return np.minimum(np.abs(q[:, :j]).sum(axis=1) // max(1, j // 2), 7)
    if kind == "two previous values":
        before = q[:, j - 2] if j > 1 else np.zeros(len(q), np.int64)
        return (np.clip(q[:, j - 1], -2, 2) + 2) * 5 + np.clip(before, -2, 2) + 2
    raise ValueError(kind)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quality", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    model = resolve_model(None, quality=args.quality)
    train = search_latents(model, load_mnist("train")[0], 0).astype(np.int64)
    test = search_latents(model, load_mnist("test")[0], 0).astype(np.int64)
    n = len(test)

    def bytes_per_image(kind: str) -> float:
        bits = 0.0
        for j in range(test.shape[1]):
            bits += cross_entropy_bits(train[:, j], test[:, j], context(train, j, kind), context(test, j, kind))
        return bits / n / 8

    kinds = ["none", "previous value", "previous magnitude", "mean magnitude so far", "two previous values"]
    sizes = {kind: bytes_per_image(kind) for kind in kinds}
    best = 0.0
    for j in range(test.shape[1]):  # any other latent, each latent its best: more than a decoder could use
        options = [cross_entropy_bits(train[:, j], test[:, j], context(train, 0, "none"), context(test, 0, "none"))]
        for i in (i for i in range(test.shape[1]) if i != j):
            options.append(
                cross_entropy_bits(
                    train[:, j], test[:, j], np.clip(train[:, i], -3, 3) + 3, np.clip(test[:, i], -3, 3) + 3
                )
            )
        best += min(options)
    sizes["best other latent, each its own (bound)"] = best / n / 8
    base = sizes["none"]
    for kind, size in sizes.items():
        print(f"{kind:42s} {size:7.3f} B/image  {100 * (size / base - 1):+5.1f}%")
    results = {"command": command_line(), "model": model.name, "bytes_per_image": sizes}
    print(f"wrote {write_results('context_entropy', results, path=args.json)}")


if __name__ == "__main__":
    main()
