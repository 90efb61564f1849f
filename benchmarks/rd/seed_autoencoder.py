"""The seed baseline: the original single-layer 784-32-784 autoencoder, latents at 8 bits.

    AEC_DATA=../shared/data/mnist nice -n 19 python -m benchmarks.rd.seed_autoencoder [--epochs 50] [--seed 0]

Dense(32, relu) -> Dense(784, sigmoid), Adam, binary cross-entropy, 50
epochs, batch 256, trained on the 60,000 MNIST training digits. Weights are
cached in benchmarks/results/seed_autoencoder.weights.npz (with the command
and facts; the .json beside it repeats them). Inference is plain numpy.

Coding: each of the 32 latents is quantized to 8 bits between its own
minimum and maximum over the images being coded (uniform, 256 levels), so one
image costs exactly 32 bytes; the 32 (min, max) float32 pairs (256 bytes) are
side information counted once per file in the whole-file figure.
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path

import numpy as np

from aec.datasets import load_mnist

from ..common import RESULTS, command_line, write_results

CACHE = RESULTS / "seed_autoencoder.weights.npz"
SIDE_INFO_BYTES = 32 * 2 * 4  # per-latent min and max, float32


def train(epochs: int = 50, seed: int = 0, out: Path = CACHE, command: str | None = None) -> dict:
    import keras  # here, not at the top: TensorFlow takes seconds to import, and coding needs only numpy

    keras.utils.set_random_seed(seed)
    x_train = load_mnist("train")[0].reshape(-1, 784).astype(np.float32) / 255.0
    x_test = load_mnist("test")[0].reshape(-1, 784).astype(np.float32) / 255.0
    model = keras.Sequential(
        [
            keras.Input((784,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(784, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy")
    start = time.perf_counter()
    history = model.fit(
        x_train, x_train, epochs=epochs, batch_size=256, shuffle=True, validation_data=(x_test, x_test), verbose=2
    )
    seconds = time.perf_counter() - start
    w1, b1, w2, b2 = model.get_weights()
    facts = {
        "command": command or "python -m benchmarks.rd.seed_autoencoder",
        "epochs": epochs,
        "batch_size": 256,
        "seed": seed,
        "train_seconds": round(seconds, 1),
        "final_train_loss": float(history.history["loss"][-1]),
        "final_test_loss": float(history.history["val_loss"][-1]),
        "keras": keras.__version__,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, w1=w1, b1=b1, w2=w2, b2=b2, facts=np.array(json.dumps(facts)))
    write_results("seed_autoencoder", facts, out.with_name("seed_autoencoder.json"))
    return facts


@functools.lru_cache(maxsize=2)
def load(path: str = str(CACHE)) -> tuple[np.ndarray, ...]:
    if not Path(path).exists():
        raise FileNotFoundError(f"{path}: no cached seed autoencoder; run python -m benchmarks.rd.seed_autoencoder")
    with np.load(path) as npz:
        return tuple(npz[k].astype(np.float64) for k in ("w1", "b1", "w2", "b2"))


def facts(path: Path = CACHE) -> dict:
    with np.load(path) as npz:
        return json.loads(str(npz["facts"]))


def latents(images: np.ndarray, path: Path = CACHE) -> np.ndarray:
    w1, b1, _, _ = load(str(path))
    x = images.reshape(len(images), 784).astype(np.float64) / 255.0
    return np.maximum(x @ w1 + b1, 0.0)


def reconstruct(z: np.ndarray, path: Path = CACHE) -> np.ndarray:
    """Latents -> uint8 images [N, 28, 28] (sigmoid output rounded to 0..255)."""
    _, _, w2, b2 = load(str(path))
    y = 1.0 / (1.0 + np.exp(-(z @ w2 + b2)))
    return np.clip(np.rint(y * 255.0), 0, 255).astype(np.uint8).reshape(-1, 28, 28)


def quantize(z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-latent min/max 8-bit quantization: (codes uint8 [N, 32], low float32 [32], high float32 [32])."""
    low = z.min(axis=0).astype(np.float32)
    high = z.max(axis=0).astype(np.float32)
    span = np.where(high > low, high - low, 1.0).astype(np.float64)
    codes = np.clip(np.rint((z - low) / span * 255.0), 0, 255).astype(np.uint8)
    return codes, low, high


def dequantize(codes: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    span = np.where(high > low, high - low, 1.0).astype(np.float64)
    return low.astype(np.float64) + codes.astype(np.float64) / 255.0 * span


def code(images: np.ndarray, path: Path = CACHE) -> tuple[int, int, np.ndarray]:
    """(whole bytes, coded-latent bytes, decoded uint8 images) for a set of images."""
    codes, low, high = quantize(latents(images, path))
    payload = codes.tobytes() + low.tobytes() + high.tobytes()
    decoded = reconstruct(dequantize(codes, low, high), path)
    return len(payload), codes.size, decoded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=CACHE)
    args = parser.parse_args()
    print(json.dumps(train(args.epochs, args.seed, args.out, command_line()), indent=2))


if __name__ == "__main__":
    main()
