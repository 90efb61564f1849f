"""Shipped model files from trained ones: int8 kernels, and extra quality levels made by
re-quantizing a model's latents with a finer step.

    AEC_DATA=../shared/data/mnist python -m aec.training.compact SRC.h5 OUT.h5 \
        [--step-scale S --quality Q --name NAME] [--search-lambda L1 [L2]] [--keep-float]

- int8 kernels (per-column scale, model file format version 2) take a quarter of
  the bytes for a few hundredths of a dB (weights/README.md).
- --step-scale S quantizes the same latents with step S (S < 1: more bytes, better
  pictures). Finer steps on mnist-q3's weights are as good as models trained for
  those rates, at no training cost; coarser steps (S > 1) lose to models trained
  for the lower rate, so the low levels keep their own models (figures in
  weights/README.md and benchmarks/RESULTS.md).
- --search-lambda L1 [L2] records the lambda that `aec pack --effort 1` (L1) and
  `--effort 2` (L2, default L1) weigh distortion with (search.py); they
  place the level's points on the curves. Without them the search uses the
  lambda the model was trained with.
- The entropy tables are refitted (export.tables_for) on the integer latents that
  the NumPy runtime gives for the 60,000 MNIST training images with the final
  weights and step, as `aec train` does.

No TensorFlow needed.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys

import numpy as np

from ..datasets import load_mnist
from ..modelfile import Model, int8_layer, read_model, write_model
from .export import tables_for


def rebuild(
    model: Model,
    images: np.ndarray,
    step_scale: float = 1.0,
    quality: int | None = None,
    name: str | None = None,
    int8: bool = True,
    note: dict | None = None,
    search_lambda: tuple[float, float] | None = None,
) -> Model:
    """`model` with int8 kernels (unless int8=False) and its step times step_scale, tables refitted on `images`;
    search_lambda: (effort 1, effort 2) lambdas recorded for pack's latent search (else any the model has is kept)."""
    layers = {
        part: [int8_layer(layer) if int8 and layer.kernel_scale is None else layer for layer in getattr(model, part)]
        for part in ("encoder", "decoder")
    }
    metadata = dict(model.metadata)
    metadata["derived_from"] = {
        "name": model.name,
        "fingerprint": model.fingerprint_hex,
        "step_scale": step_scale,
        "int8_kernels": int8,
        **(note or {}),
    }
    if search_lambda is not None:
        if not all(value > 0 for value in search_lambda):
            raise ValueError("search lambdas must be positive")
        metadata["search"] = {"lambda": {str(effort): float(value) for effort, value in zip((1, 2), search_lambda)}}
    draft = dataclasses.replace(
        model,
        name=name or model.name,
        quality=model.quality if quality is None else quality,
        quant_step=model.quant_step * np.float32(step_scale),
        metadata=metadata,
        fingerprint=b"",
        exact=None,  # an exact decoder folds in the old step: make it again (training/exact_decoder.py)
        **layers,
    )
    low, counts = tables_for(draft, images)
    return dataclasses.replace(draft, table_low=low, table_counts=counts, fingerprint=b"")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("out")
    parser.add_argument("--step-scale", type=float, default=1.0)
    parser.add_argument("--quality", type=int, default=None)
    parser.add_argument("--name", default=None)
    parser.add_argument(
        "--search-lambda",
        type=float,
        nargs="+",
        default=None,
        metavar="L",
        help="lambda for pack's latent search at --effort 1 [and 2]; default: the training lambda",
    )
    parser.add_argument("--keep-float", action="store_true", help="keep float32 kernels")
    args = parser.parse_args(argv)
    search_lambdas = None
    if args.search_lambda is not None:
        if len(args.search_lambda) > 2:
            parser.error("--search-lambda takes one or two values (effort 1, effort 2)")
        search_lambdas = (args.search_lambda[0], args.search_lambda[-1])
    images, _ = load_mnist("train")
    command = "python -m aec.training.compact " + shlex.join(sys.argv[1:] if argv is None else argv)
    model = rebuild(
        read_model(args.source),
        images,
        args.step_scale,
        args.quality,
        args.name,
        int8=not args.keep_float,
        note={"command": command},
        search_lambda=search_lambdas,
    )
    write_model(model, args.out)
    print(f"{args.out}: {model.name}, quality {model.quality}, fingerprint {model.fingerprint_hex[:12]}")


if __name__ == "__main__":
    main()
