"""`aec train` end to end: load data, fit, export the model file, report its figures."""

from __future__ import annotations

import math
import os
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np

from .. import __version__, runtime
from ..datasets import load_mnist, locate_mnist
from ..entropy import LatentCoder
from ..modelfile import Model, write_model
from .export import export_model
from .loop import EpochReport, TrainConfig, train
from .model import Architecture


def measure(model: Model, images: np.ndarray) -> dict:
    """Real figures with the real coder: coded-latent bytes per image, MSE on [0,1], PSNR."""
    coder = LatentCoder(model)
    coded, sq = 0, 0.0
    for i in range(0, len(images), 4096):
        part = images[i:i + 4096]
        q = runtime.encode_latents(model, part)
        coded += len(coder.encode(q))
        recon = runtime.decode_latents(model, q)
        sq += float(np.sum((recon.astype(np.float64) - part) ** 2)) / 255**2
    mse = sq / images.size
    return {"images": len(images), "latent_bytes_per_image": coded / len(images), "mse": mse,
            "psnr_db": 10 * math.log10(1 / mse)}


def _versions() -> dict:
    import h5py
    import keras
    import tensorflow as tf

    return {"aec": __version__, "python": platform.python_version(), "numpy": np.__version__,
            "tensorflow": tf.__version__, "keras": keras.__version__, "h5py": h5py.__version__}


def train_and_export(
    out: Path,
    data: str | None = None,
    images: np.ndarray | None = None,
    name: str = "mnist-custom",
    quality: int = 3,
    arch: Architecture | None = None,
    config: TrainConfig | None = None,
    val_fraction: float = 1 / 12,
    limit: int | None = None,
    log: Callable[[str], None] = print,
) -> tuple[Model, dict]:
    arch, config = arch or Architecture(), config or TrainConfig()
    if images is None:
        images, _ = load_mnist("train", data)
        source = str(locate_mnist(data))
    else:
        source = f"array of {len(images)} images"
    if limit:
        images = images[:limit]
    n_val = max(1, int(round(len(images) * val_fraction)))
    # A fixed permutation (from the seed) decides the validation split.
    order = np.random.default_rng(config.seed).permutation(len(images))
    x_val, x_train = images[order[:n_val]], images[order[n_val:]]
    log(f"training on {len(x_train)} images from {source}, validating on {n_val}")

    def on_epoch(r: EpochReport) -> None:
        log(f"epoch {r.epoch}/{config.epochs}: loss {r.loss:.2f}, train {r.train_bits / 8:.2f} B/img, "
            f"val {r.val_bits / 8:.2f} B/img (estimate) at {r.val_psnr:.2f} dB, {r.seconds:.1f}s")

    start = time.perf_counter()
    codec_net = train(x_train, x_val, arch, config, on_epoch=on_epoch)
    seconds = time.perf_counter() - start
    metadata = {
        "architecture": arch.to_dict(),
        "training": {**asdict(config), "images": len(x_train), "val_images": n_val,
                     "data": source, "split": "train", "seconds": round(seconds, 1),
                     "command": " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:])},
        "versions": _versions(),
    }
    model = export_model(codec_net, x_train, name=name, quality=quality, metadata=metadata)
    figures = measure(model, x_val)
    model.metadata["validation"] = figures
    model = Model(**{**model.__dict__, "fingerprint": b""})  # fingerprint covers the figures too
    write_model(model, out)
    return model, figures
