"""Give a trained model an exact decoder (exact.py): the same pixels on every machine.

    AEC_DATA=../shared/data/mnist python -m aec.training.exact_decoder SRC.h5 OUT.h5 [--percentile 99.99]

No retraining: the float decoder's weights become int8 kernels (per-column
scales; the first layer takes the quantization step in), its hidden
activations 8-bit (each layer's scale set by a high percentile of its
activations on the training split's latents), and the sigmoid a table over a
grid on the logit. The model keeps its encoder, steps, tables and float
decoder (pack's latent search follows the float decoder's gradient), so it
packs the same latents; only the pixels it decodes change, by a few
hundredths of a dB (benchmarks/RESULTS.md). No TensorFlow needed.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys

import numpy as np

from .. import exact, runtime
from ..datasets import load_mnist
from ..exact import ExactDecoder, ExactLayer
from ..modelfile import Model, read_model, write_model

GRID = 128  # output grid points per unit of logit: pixel error well under one level
PERCENTILE = 99.99  # hidden activations above this percentile saturate at 255


def _int8_columns(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int8 kernel, float64 per-column scale) with kernel ~ int8 * scale, the largest |weight| -> 127."""
    scale = np.abs(kernel).max(axis=0) / 127
    scale[scale == 0] = 1
    return np.clip(np.rint(kernel / scale), -127, 127).astype(np.int8), scale


def _output_table() -> np.ndarray:
    """rint(255 * sigmoid(g / GRID)) for g = -R..R, R the first grid value where it reaches 0 and 255."""
    r = int(np.ceil(GRID * np.log(254.5 / 0.5)))  # 255 sigmoid(z) >= 254.5 from z = log(509) on
    g = np.arange(-r, r + 1, dtype=np.float64) / GRID
    table = np.rint(255 / (1 + np.exp(-g)))
    assert table[0] == 0 and table[-1] == 255
    return table.astype(np.uint8)


def exact_decoder(model: Model, latents: np.ndarray, percentile: float = PERCENTILE) -> ExactDecoder:
    """An exact decoder for `model`, its activation scales fitted on integer `latents` [N, latents]."""
    layers = model.decoder
    if [layer.activation for layer in layers[:-1]] != ["relu"] * (len(layers) - 1) or layers[-1].activation != (
        "sigmoid"
    ):
        raise ValueError("the exact decoder takes ReLU hidden layers and a sigmoid output")
    # Layer 0 sees the integer latents: the step goes into its kernel.
    kernel, scale = _int8_columns(model.quant_step[:, None].astype(np.float64) * layers[0].kernel)
    input_limit = int((exact.EXACT_SUM - 1) // max(int(np.abs(kernel.astype(np.int64)).sum(axis=0).max()), 1))
    x = np.clip(latents, -input_limit, input_limit).astype(np.float64)  # the integer inputs of layer 0
    input_scale = 1.0  # real value of one unit of x
    exact_layers = []
    for i, layer in enumerate(layers):
        if i:
            kernel, scale = _int8_columns(layer.kernel.astype(np.float64))
        real = (x @ kernel.astype(np.float64)) * (scale * input_scale) + layer.bias  # pre-activation
        if i < len(layers) - 1:
            unit = max(float(np.percentile(np.maximum(real, 0), percentile)), 1e-12) / exact.HIDDEN_MAX
            m, c = scale * input_scale / unit, layer.bias / unit
        else:
            m, c = scale * input_scale * GRID, layer.bias * GRID
        exact_layers.append(ExactLayer(kernel, m.astype(np.float32), c.astype(np.float32)))
        if i < len(layers) - 1:
            # The next layer's inputs, computed exactly as the decoder will.
            acc = (x.astype(np.float32) @ kernel.astype(np.float32)) * exact_layers[-1].scale + exact_layers[-1].offset
            x = np.clip(np.rint(acc), 0, exact.HIDDEN_MAX).astype(np.float64)
            input_scale = unit
    return ExactDecoder(exact_layers, input_limit, _output_table())


def with_exact_decoder(model: Model, images: np.ndarray, percentile: float = PERCENTILE) -> Model:
    """`model` with an exact decoder fitted on the latents of `images` (uint8 [N, H, W])."""
    latents = runtime.encode_latents(model, images)
    metadata = dict(model.metadata)
    metadata["exact_decoder"] = {
        "from_fingerprint": model.fingerprint_hex,
        "percentile": percentile,
        "grid": GRID,
        "fitted_on_images": int(len(images)),
    }
    return dataclasses.replace(
        model, exact=exact_decoder(model, latents, percentile), metadata=metadata, fingerprint=b""
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("out")
    parser.add_argument("--percentile", type=float, default=PERCENTILE)
    parser.add_argument("--data", default=None, help="MNIST folder (default: $AEC_DATA, the user cache, ...)")
    args = parser.parse_args(argv)
    images, _ = load_mnist("train", args.data)
    model = with_exact_decoder(read_model(args.source), images, args.percentile)
    model.metadata["exact_decoder"]["command"] = "python -m aec.training.exact_decoder " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    model = dataclasses.replace(model, fingerprint=b"")
    write_model(model, args.out)
    print(f"wrote {args.out}: {model.name}, decoder fingerprint {model.decoder_fingerprint.hex()[:16]}")


if __name__ == "__main__":
    main()
