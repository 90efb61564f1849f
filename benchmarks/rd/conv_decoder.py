"""Would a convolutional decoder beat the dense one at the same rate? Both trained alike, side by side.

    AEC_DATA=../shared/data/mnist python -m benchmarks.rd.conv_decoder [--epochs 15] [--lambda 50000]
        [--decoder convolutional|"dense trunk, convolutional head"]...

The shipped networks are dense (784-512-512-32 and back), and finer steps of
level 3's network saturate near 24.4 dB (benchmarks/RESULTS.md). This trains
two codecs with aec's own training loop (the same encoder, prior, lambda,
seed, epochs and data: the 60,000 MNIST training digits, 5,000 held out for
validation, no augmentation): one with the shipped dense decoder, one with a
small convolutional decoder of about the same multiply-adds (32 latents ->
dense 7x7x32 -> transposed convolutions to 14x14x16 and 28x28x8 -> a 3x3
convolution to the 28x28 picture). Each is measured on the 10,000 test digits
with rounded latents: bits per image from its trained prior (an ideal coder's
size) and PSNR of the uint8 pictures. Short trainings on 2 cores: a relative
comparison, not shipped-model figures. A dense decoder is what the exact
arithmetic (docs/FORMAT.md, Decoders) covers today; a convolutional one would
be a model-format step.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from aec.datasets import load_mnist
from aec.metrics import psnr

from ..common import command_line, write_results


def conv_decoder(arch):
    """32 latents to 784 pixels through transposed convolutions (about 0.9 M multiply-adds an image)."""
    from aec.training.model import keras  # TensorFlow only here, as in aec.training

    return keras.Sequential(
        [
            keras.Input((arch.latents,)),
            keras.layers.Dense(7 * 7 * 32, activation="relu"),
            keras.layers.Reshape((7, 7, 32)),
            keras.layers.Conv2DTranspose(16, 4, strides=2, padding="same", activation="relu"),
            keras.layers.Conv2DTranspose(8, 4, strides=2, padding="same", activation="relu"),
            keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid"),
            keras.layers.Reshape((784,)),
        ],
        name="decoder",
    )


def head_decoder(arch):
    """The dense decoder's trunk (512, 512) to 14x14x4, then one 4x4 transposed convolution to the
    28x28 picture: about the dense decoder's multiply-adds, a convolution only where it is cheap."""
    from aec.training.model import keras

    return keras.Sequential(
        [
            keras.Input((arch.latents,)),
            keras.layers.Dense(512, activation="relu"),
            keras.layers.Dense(512, activation="relu"),
            keras.layers.Dense(14 * 14 * 4, activation="relu"),
            keras.layers.Reshape((14, 14, 4)),
            keras.layers.Conv2DTranspose(1, 4, strides=2, padding="same", activation="sigmoid"),
            keras.layers.Reshape((784,)),
        ],
        name="decoder",
    )


DECODERS = {"convolutional": conv_decoder, "dense trunk, convolutional head": head_decoder}


def multiply_adds(decoder) -> int:
    total = 0
    for layer in decoder.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is None:
            continue
        if len(kernel.shape) == 2:
            total += int(np.prod(kernel.shape))
        else:  # a convolution: its kernel at every input (transposed) or output position
            height, width = (
                layer.input.shape if layer.__class__.__name__ == "Conv2DTranspose" else layer.output.shape
            )[1:3]
            total += int(np.prod(kernel.shape)) * int(height) * int(width)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--lambda", dest="lmbda", type=float, default=50000.0)
    parser.add_argument("--json", default=None)
    parser.add_argument("--decoder", action="append", choices=sorted(DECODERS), help="default: convolutional")
    args = parser.parse_args()
    from aec.training import model as training_model
    from aec.training.loop import TrainConfig, evaluate, train

    images = load_mnist("train")[0]
    test = load_mnist("test")[0]
    order = np.random.default_rng(0).permutation(len(images))
    x_val, x_train = images[order[:5000]], images[order[5000:]]
    config = TrainConfig(lmbda=args.lmbda, epochs=args.epochs, patience=0, seed=0)
    dense_builder = training_model.build_decoder
    rows = []
    chosen = [(name, DECODERS[name]) for name in args.decoder or ["convolutional"]]
    for name, builder in [("dense (shipped)", dense_builder)] + chosen:
        training_model.build_decoder = builder
        try:
            began = time.perf_counter()
            result = train(x_train, x_val, training_model.Architecture(), config)
            seconds = time.perf_counter() - began
        finally:
            training_model.build_decoder = dense_builder
        bits, mse = evaluate(result.codec, test)
        rows.append(
            {
                "decoder": name,
                "bytes_per_image": bits / 8,
                "psnr_db": psnr(mse),
                "multiply_adds": multiply_adds(result.codec.decoder),
                "train_seconds": seconds,
            }
        )
        print(
            f"{name:18s} {bits / 8:6.2f} B  {psnr(mse):6.2f} dB  {rows[-1]['multiply_adds'] / 1e6:.2f} M multiply-adds, "
            f"trained in {seconds:.0f} s"
        )
    results = {"command": command_line(), "epochs": args.epochs, "lambda": args.lmbda, "rows": rows}
    print(f"wrote {write_results('conv_decoder', results, path=args.json)}")


if __name__ == "__main__":
    main()
