"""Fit residual coder 1's starting weights on the MNIST training digits: weights/residual-prior-1.npz.

    AEC_DATA=../shared/data/mnist python -m aec.training.residual_prior [--out FILE]

The residual's adaptive tables start from these weights instead of from
nothing, so a chunk need not learn again what every digit shares (lossless
MNIST: 4 bytes an image less at 4,096 images a chunk, 15 less for 300).
For each error group, the context counts of the training digits coded at
a typical max error of the group, on level 1's predictions (the level
--max-error uses), each row scaled to at most ROW_TOTAL observations so
that a file's own statistics soon outweigh them. The file is part of the
format (docs/FORMAT.md): once landed it never changes; a new prior is a new
residual coder.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .. import residual, residual_tables, runtime
from ..datasets import load_mnist
from ..guarantee import RESIDUAL_LEVEL
from ..models import resolve_model

GROUP_ERRORS = (0, 2, 4, 16)  # one typical max error per group (residual_tables.ERROR_GROUP_EDGES)
ROW_TOTAL = 1024
SLICE = 6000


class _Counting:
    """A stand-in for the range encoder: the tables learn, nothing is coded."""

    def encode(self, *_) -> None:
        pass


def fit(images: np.ndarray, predictions: np.ndarray) -> dict[str, np.ndarray]:
    out = {"classes": [], "highs": [], "lows": []}
    for error in GROUP_ERRORS:
        counts = None
        for first in range(0, len(images), SLICE):
            part = slice(first, first + SLICE)
            bounds = np.full(len(images[part]), error, np.int64)
            tables = residual_tables.Tables(residual._Plan(bounds).groups)
            residual._code(_Counting(), None, predictions[part], bounds, images[part], tables=tables)
            seen = [(t - 1) / 2 for t in (tables.classes, tables.highs, tables.lows)]
            counts = seen if counts is None else [a + b for a, b in zip(counts, seen)]
        for name, table in zip(out, counts):
            total = table.sum(axis=1, keepdims=True)
            scaled = np.floor(table * np.minimum(1.0, ROW_TOTAL / np.maximum(total, 1)))
            out[name].append((1 + 2 * scaled).astype(np.uint16))
    return {name: np.stack(tables) for name, tables in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=residual_tables.PRIOR_FILE)
    parser.add_argument("--data", default=None)
    args = parser.parse_args()
    images, _ = load_mnist("train", args.data)
    model = resolve_model(quality=RESIDUAL_LEVEL)
    predictions = runtime.decode_latents(model, runtime.encode_latents(model, images))
    stored = residual_tables.sparse_prior(fit(images, predictions))
    np.savez_compressed(args.out, **stored)
    print(f"{args.out}: SHA-256 {residual_tables.prior_digest(stored)} (residual_tables.PRIOR_SHA256)")


if __name__ == "__main__":
    main()
