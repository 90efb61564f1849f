"""The TensorFlow Compression MNIST model as a baseline, re-implemented with Keras 3.

    AEC_DATA=../shared/data/mnist nice -n 19 python -m benchmarks.rd.tfc_baseline train --lmbda 2000 \
        [--epochs 15] [--seed 0] [--limit N]
    AEC_DATA=../shared/data/mnist python -m benchmarks.rd.tfc_baseline evaluate --lmbda 2000 [--epochs 15] [--seed 0]

The model of tensorflow.org's "Learned data compression" tutorial (tensorflow/
compression): tensorflow-compression itself supports only TF 2.14, so the
parts it provides are written out here:
- analysis: Conv2D(20,5,s2) -> Conv2D(50,5,s2) -> Dense(500) -> Dense(50),
  padding "same", leaky ReLU except on the latents;
- synthesis: Dense(500) -> Dense(2450) -> 7x7x50 -> Conv2DTranspose(20,5,s2)
  -> Conv2DTranspose(1,5,s2), leaky ReLU throughout (the output too, as there);
- prior: one logistic per latent, loc 0, learned log-scale (zeros at start),
  convolved with U(-1/2, 1/2) like tfc.NoisyLogistic;
- training: pixels in [0, 1], uniform noise in place of rounding for both the
  rate and the synthesis input, loss = rate (bits per image) + lambda * mean
  absolute error, Adam 1e-3, batch 128, 15 epochs over the 60,000 training digits.

Evaluation rounds the latents to integers and codes them for real, with the
same tables and coder as aec (codec/training/export.fit_tables: per-latent
histograms of the rounded training-set latents plus one; codec/entropy.
LatentCoder: constriction's range coder, escapes for values outside a table).
The learned logistic is only the training-time rate estimate; the tables are
part of the model, as aec's are. One file holds all 10,000 test digits: a
4-byte image count and the coded stream; its size is the whole-file figure.
Decoding that stream must give back exactly the rounded latents.

Weights and the decoded test digits are cached in benchmarks/results/tfc/
(not committed); the points go to benchmarks/results/tfc_baseline.json
(committed), one entry per (lambda, epochs, seed).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path
from types import SimpleNamespace

from aec.training import quiet_tf  # noqa: F401 - silences TensorFlow's start-up: imported before tensorflow and keras

# isort: split
import keras
import numpy as np
import tensorflow as tf

from aec.datasets import load_mnist
from aec.entropy import LatentCoder
from aec.metrics import mse, psnr
from aec.training.export import fit_tables

from ..common import RESULTS, ROOT, command_line, write_results

CACHE = RESULTS / "tfc"
RESULTS_JSON = RESULTS / "tfc_baseline.json"
FAMILY = "TFC baseline (Keras 3 re-implementation)"
LATENTS = 50
BATCH = 128
LEARNING_RATE = 1e-3
HEADER_BYTES = 4  # the image count (uint32); the stream runs to the end of the file


def make_analysis() -> keras.Sequential:
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(20, 5, strides=2, padding="same", activation="leaky_relu"),
            keras.layers.Conv2D(50, 5, strides=2, padding="same", activation="leaky_relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(500, activation="leaky_relu"),
            keras.layers.Dense(LATENTS),
        ],
        name="analysis",
    )


def make_synthesis() -> keras.Sequential:
    return keras.Sequential(
        [
            keras.Input((LATENTS,)),
            keras.layers.Dense(500, activation="leaky_relu"),
            keras.layers.Dense(2450, activation="leaky_relu"),
            keras.layers.Reshape((7, 7, 50)),
            keras.layers.Conv2DTranspose(20, 5, strides=2, padding="same", activation="leaky_relu"),
            keras.layers.Conv2DTranspose(1, 5, strides=2, padding="same", activation="leaky_relu"),
        ],
        name="synthesis",
    )


def noisy_logistic_bits(y: tf.Tensor, log_scale: tf.Tensor) -> tf.Tensor:
    """-log2 of the logistic(0, exp(log_scale)) mass on [y - 1/2, y + 1/2], summed per image: the rate in bits.

    The logistic is symmetric, so |y| is used, and the CDF difference is taken in log space:
    s(a) - s(b) = s(a) * s(-b) * (1 - exp(b - a)), which does not cancel to 0 in the tails.
    """
    inv_scale = tf.exp(-log_scale)
    m = tf.abs(y)
    a = (0.5 - m) * inv_scale
    b = (-0.5 - m) * inv_scale
    log_p = tf.math.log_sigmoid(a) + tf.math.log_sigmoid(-b) + tf.math.log(-tf.math.expm1(b - a))
    return -tf.reduce_sum(log_p, axis=-1) / math.log(2.0)


class TFCModel:
    """Analysis, synthesis and the prior's per-latent log-scales; one Adam optimizer."""

    def __init__(self):
        self.analysis = make_analysis()
        self.synthesis = make_synthesis()
        self.prior_log_scale = keras.Variable(np.zeros(LATENTS, np.float32), name="prior_log_scale")
        self.optimizer = keras.optimizers.Adam(learning_rate=LEARNING_RATE)
        self._step = None

    @property
    def variables(self) -> list:
        return self.analysis.trainable_variables + self.synthesis.trainable_variables + [self.prior_log_scale]

    def losses(self, x: tf.Tensor, lmbda: float):
        """(loss, rate bits per image, mean absolute error) with uniform noise for the quantizer, as in training."""
        y = self.analysis(x, training=True)
        y_tilde = y + tf.random.uniform(tf.shape(y), -0.5, 0.5)
        rate = tf.reduce_mean(noisy_logistic_bits(y_tilde, self.prior_log_scale))
        distortion = tf.reduce_mean(tf.abs(x - self.synthesis(y_tilde, training=True)))
        return rate + lmbda * distortion, rate, distortion

    def train_step(self, x: np.ndarray, lmbda: float):
        if self._step is None:

            @tf.function(reduce_retracing=True)
            def step(x, lmbda):
                with tf.GradientTape() as tape:
                    loss, rate, distortion = self.losses(x, lmbda)
                grads = tape.gradient(loss, self.variables)
                self.optimizer.apply_gradients(zip(grads, self.variables))
                return loss, rate, distortion

            self._step = step
        return self._step(tf.constant(x), tf.constant(lmbda, tf.float32))

    def encode(self, images: np.ndarray, batch: int = 2000) -> np.ndarray:
        """uint8 [N, 28, 28] -> int32 [N, 50]: the analysis output rounded to integers (the quantizer at test time)."""
        out = [
            np.rint(self.analysis(_as_float(images[i : i + batch]), training=False).numpy())
            for i in range(0, len(images), batch)
        ]
        return np.concatenate(out).astype(np.int32)

    def decode(self, latents: np.ndarray, batch: int = 2000) -> np.ndarray:
        """int32 [N, 50] -> uint8 [N, 28, 28], rounded and saturated as the tutorial's decompressor does."""
        out = [
            self.synthesis(latents[i : i + batch].astype(np.float32), training=False).numpy()
            for i in range(0, len(latents), batch)
        ]
        return np.clip(np.rint(np.concatenate(out)[..., 0] * 255), 0, 255).astype(np.uint8)

    def estimated_bits(self, latents: np.ndarray) -> np.ndarray:
        """The learned prior's information content of integer latents, bits per image (for comparison only)."""
        return noisy_logistic_bits(tf.constant(latents, tf.float32), self.prior_log_scale).numpy()

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = [v.numpy() for v in self.variables]
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, *arrays)
        os.replace(tmp, path)

    def load(self, path: Path) -> None:
        with np.load(path) as f:
            arrays = [f[f"arr_{i}"] for i in range(len(f.files))]
        if len(arrays) != len(self.variables):
            raise ValueError(f"{path}: {len(arrays)} arrays, the model has {len(self.variables)} variables")
        for v, a in zip(self.variables, arrays):
            v.assign(a)


def _as_float(images: np.ndarray) -> np.ndarray:
    return (images.astype(np.float32) / 255.0)[..., None]


def run_name(lmbda: float, epochs: int, seed: int, limit: int | None = None) -> str:
    return f"lmbda{lmbda:g}-e{epochs}-s{seed}" + (f"-n{limit}" if limit else "")


def train(images: np.ndarray, lmbda: float, epochs: int, seed: int, log=print) -> tuple[TFCModel, float]:
    keras.utils.set_random_seed(seed)
    model = TFCModel()
    rng = np.random.default_rng(seed)
    x_all = _as_float(images)
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(x_all))
        sums = np.zeros(3)
        steps = 0
        for i in range(0, len(order), BATCH):
            sums += [float(v) for v in model.train_step(x_all[order[i : i + BATCH]], lmbda)]
            steps += 1
        loss, rate, mae = sums / steps
        log(
            f"epoch {epoch}/{epochs}: loss {loss:.2f}, rate {rate:.2f} bits ({rate / 8:.2f} B), "
            f"MAE {mae:.4f}, {time.perf_counter() - start:.0f} s"
        )
    return model, time.perf_counter() - start


class Tables(SimpleNamespace):
    """What aec.entropy.LatentCoder reads from a model file: table_low [latents], table_counts [latents, K]."""


def coder_for(train_latents: np.ndarray) -> LatentCoder:
    low, counts = fit_tables(train_latents)
    return LatentCoder(Tables(table_low=low, table_counts=counts))


def write_file(coder: LatentCoder, latents: np.ndarray) -> bytes:
    return np.uint32(len(latents)).astype("<u4").tobytes() + coder.encode(latents)


def read_file(coder: LatentCoder, data: bytes) -> np.ndarray:
    count = int(np.frombuffer(data[:HEADER_BYTES], "<u4")[0])
    return coder.decode(data[HEADER_BYTES:], count)


def evaluate(model: TFCModel, train_images: np.ndarray, test_images: np.ndarray) -> tuple[dict, np.ndarray]:
    """Real coding of the test digits; returns (figures, decoded uint8 digits)."""
    coder = coder_for(model.encode(train_images))
    latents = model.encode(test_images)
    data = write_file(coder, latents)
    back = read_file(coder, data)
    if not np.array_equal(back, latents):
        raise AssertionError("decoded latents differ from the coded ones")
    decoded = model.decode(back)
    n = len(test_images)
    err = mse(test_images, decoded)
    figures = {
        "bytes_per_image": len(data) / n,
        "coded_bytes_per_image": (len(data) - HEADER_BYTES) / n,
        "prior_estimate_bytes_per_image": float(model.estimated_bits(latents).mean() / 8),
        "mse": err,
        "psnr_db": psnr(err),
        "test_images": n,
        "round_trip_exact": True,
        "latent_range": [int(latents.min()), int(latents.max())],
        "table_width": int(coder.escape + 1),
    }
    return figures, decoded


def record(entry: dict, path: Path = RESULTS_JSON) -> None:
    """Add or replace the entry for (lambda, epochs, seed) in the committed JSON."""
    data = json.loads(path.read_text()) if path.exists() else {"family": FAMILY, "points": []}
    key = (entry["lambda"], entry["epochs"], entry["seed"])
    data["points"] = [p for p in data["points"] if (p["lambda"], p["epochs"], p["seed"]) != key] + [entry]
    data["points"].sort(key=lambda p: (p["epochs"], p["lambda"], p["seed"]))
    write_results("tfc_baseline", data, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["train", "evaluate"])
    parser.add_argument("--lmbda", type=float, required=True)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--limit", type=int, default=None, help="train on the first N images only (pilot runs; not recorded)"
    )
    args = parser.parse_args()
    command = command_line()

    train_images, _ = load_mnist("train")
    test_images, _ = load_mnist("test")
    if args.limit:
        train_images = train_images[: args.limit]
    name = run_name(args.lmbda, args.epochs, args.seed, args.limit)
    weights = CACHE / f"{name}.weights.npz"
    seconds = None
    if args.action == "train":
        model, seconds = train(train_images, args.lmbda, args.epochs, args.seed, log=lambda s: print(s, flush=True))
        model.save(weights)
    else:
        model = TFCModel()
        model.load(weights)
    figures, decoded = evaluate(model, train_images, test_images)
    np.savez_compressed(CACHE / f"{name}.decoded.npz", decoded=decoded)
    print(
        f"{name}: {figures['bytes_per_image']:.2f} B/image (coded {figures['coded_bytes_per_image']:.2f}, "
        f"prior estimate {figures['prior_estimate_bytes_per_image']:.2f}), PSNR {figures['psnr_db']:.2f} dB, "
        f"MSE {figures['mse']:.5f}",
        flush=True,
    )
    if args.limit:
        return  # pilot runs are not points
    entry = {"lambda": args.lmbda, "epochs": args.epochs, "seed": args.seed, **figures}
    if seconds is None and RESULTS_JSON.exists():  # keep the training time of the run that made the weights
        old = [
            p
            for p in json.loads(RESULTS_JSON.read_text())["points"]
            if (p["lambda"], p["epochs"], p["seed"]) == (args.lmbda, args.epochs, args.seed)
        ]
        seconds = old[0].get("training_seconds") if old else None
        command = old[0]["command"] if old else command
    entry.update(
        training_seconds=None if seconds is None else round(seconds, 1),
        machine=f"{os.cpu_count()} CPU cores, TensorFlow {tf.__version__}, Keras {keras.__version__}",
        command=command,
        weights=str(weights.relative_to(ROOT)),
    )
    record(entry)
    print(f"recorded in {RESULTS_JSON.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
