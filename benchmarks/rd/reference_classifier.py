"""The reference classifier: does a decoded digit stay the same digit?

    AEC_DATA=../shared/data/mnist nice -n 19 python -m benchmarks.rd.reference_classifier [--epochs 3] [--seed 0]

A small Keras CNN (Conv 32 - pool - Conv 64 - pool - Dense 128 - Dense 10)
trained on the 60,000 MNIST training digits only. The weights are cached in
benchmarks/results/reference_classifier.weights.npz together with the command
that made them and the test accuracy on the original (uncoded) test digits;
benchmarks/results/reference_classifier.json repeats those facts.

Use from other benchmarks:

    from benchmarks.rd.reference_classifier import accuracy
    share = accuracy(decoded_uint8_images, labels)   # trains first if no cache
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

CACHE = RESULTS / "reference_classifier.weights.npz"


def build_model():
    import keras  # here, not at the top: TensorFlow takes seconds to import, and `--help` need not wait

    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(64, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.25),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10),
        ]
    )


def _prepare(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.shape[1:] not in ((28, 28), (784,)):
        raise ValueError(f"expected uint8 [N, 28, 28] images, got {images.dtype} {images.shape}")
    return images.reshape(-1, 28, 28, 1).astype(np.float32) / 255.0


def train(epochs: int = 3, seed: int = 0, out: Path = CACHE, command: str | None = None) -> dict:
    import keras  # as in build_model

    keras.utils.set_random_seed(seed)
    x_train, y_train = load_mnist("train")
    x_test, y_test = load_mnist("test")
    model = build_model()
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    start = time.perf_counter()
    model.fit(_prepare(x_train), y_train.astype(np.int64), epochs=epochs, batch_size=128, verbose=2)
    seconds = time.perf_counter() - start
    logits = model.predict(_prepare(x_test), batch_size=1000, verbose=0)
    test_accuracy = float(np.mean(np.argmax(logits, axis=1) == y_test))
    facts = {
        "command": command or "python -m benchmarks.rd.reference_classifier",
        "epochs": epochs,
        "seed": seed,
        "train_seconds": round(seconds, 1),
        "test_accuracy_on_originals": test_accuracy,
        "keras": keras.__version__,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    weights = model.get_weights()
    np.savez(out, **{f"w{i}": w for i, w in enumerate(weights)}, facts=np.array(json.dumps(facts)))
    write_results("reference_classifier", facts, out.with_name("reference_classifier.json"))
    return facts


@functools.lru_cache(maxsize=2)
def load(path: str = str(CACHE)):
    """The cached Keras classifier (trains it first, with the defaults, if there is no cache)."""
    if not Path(path).exists():
        train(out=Path(path), command="benchmarks.rd.reference_classifier.load() (no cache found; default settings)")
    model = build_model()
    with np.load(path) as npz:
        count = sum(1 for k in npz.files if k.startswith("w"))
        model.set_weights([npz[f"w{i}"] for i in range(count)])
    return model


def predict(images: np.ndarray, path: Path = CACHE) -> np.ndarray:
    """Predicted labels for uint8 images [N, 28, 28]."""
    logits = load(str(path)).predict(_prepare(images), batch_size=1000, verbose=0)
    return np.argmax(logits, axis=1)


def accuracy(decoded_images: np.ndarray, labels: np.ndarray, path: Path = CACHE) -> float:
    """Share of images the reference classifier labels as `labels` (the true labels of the originals)."""
    return float(np.mean(predict(decoded_images, path) == np.asarray(labels)))


def facts(path: Path = CACHE) -> dict:
    with np.load(path) as npz:
        return json.loads(str(npz["facts"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=CACHE)
    args = parser.parse_args()
    print(json.dumps(train(args.epochs, args.seed, args.out, command_line()), indent=2))


if __name__ == "__main__":
    main()
