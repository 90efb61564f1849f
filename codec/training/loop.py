"""The fit loop: one custom training step for every tf.distribute strategy.

Keras 3 model.fit fails under MultiWorkerMirroredStrategy
(keras-team/keras#20585), so the step is written with strategy.run and
compute_average_loss; the default strategy (one CPU or GPU) takes the same path.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from .model import Architecture, Codec


@dataclass
class TrainConfig:
    lmbda: float = 10000.0  # weight of MSE (on [0,1], mean over pixels) against bits per image
    epochs: int = 60
    batch_size: int = 256
    learning_rate: float = 1e-3
    final_lr_fraction: float = 0.2  # the last 20% of epochs run at a tenth of the rate
    seed: int = 0


@dataclass
class EpochReport:
    epoch: int
    loss: float
    train_bits: float
    val_bits: float
    val_mse: float
    seconds: float

    @property
    def val_psnr(self) -> float:
        return 10 * math.log10(1 / max(self.val_mse, 1e-12))


def _as_float(images: np.ndarray) -> np.ndarray:
    return (images.reshape(len(images), -1).astype(np.float32)) / np.float32(255)


def evaluate(codec: Codec, images: np.ndarray, batch: int = 2000) -> tuple[float, float]:
    """(estimated bits per image from the prior, MSE of uint8 reconstructions) with rounded latents."""
    bits, sq = 0.0, 0.0
    for i in range(0, len(images), batch):
        x = _as_float(images[i:i + batch])
        x_hat, b = codec(x, training=False)
        x_hat = np.clip(np.rint(np.asarray(x_hat) * 255), 0, 255) / 255
        bits += float(np.sum(b))
        sq += float(np.sum((x_hat - x) ** 2))
    return bits / len(images), sq / images.size


def train(
    x_train: np.ndarray,
    x_val: np.ndarray,
    arch: Architecture,
    config: TrainConfig,
    strategy: tf.distribute.Strategy | None = None,
    on_epoch: Callable[[EpochReport], None] = lambda r: None,
) -> Codec:
    strategy = strategy or tf.distribute.get_strategy()
    keras.utils.set_random_seed(config.seed)
    with strategy.scope():
        codec = Codec(arch)
        codec(tf.zeros((1, arch.image_shape[0] * arch.image_shape[1])))  # creates the variables
        optimizer = keras.optimizers.Adam(learning_rate=config.learning_rate)

    data = (
        tf.data.Dataset.from_tensor_slices(_as_float(x_train))
        .shuffle(len(x_train), seed=config.seed, reshuffle_each_iteration=True)
        .batch(config.batch_size, drop_remainder=True)
        .prefetch(2)
    )
    dist_data = strategy.experimental_distribute_dataset(data)
    lmbda = tf.constant(config.lmbda, tf.float32)

    def step(x):
        with tf.GradientTape() as tape:
            x_hat, bits = codec(x, training=True)
            mse = tf.reduce_mean(tf.square(x_hat - x), axis=-1)
            per_example = bits + lmbda * mse
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=config.batch_size)
        grads = tape.gradient(loss, codec.trainable_variables)
        optimizer.apply_gradients(zip(grads, codec.trainable_variables))
        return loss, tf.nn.compute_average_loss(bits, global_batch_size=config.batch_size)

    @tf.function
    def distributed_step(x):
        loss, bits = strategy.run(step, args=(x,))
        return (strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None),
                strategy.reduce(tf.distribute.ReduceOp.SUM, bits, axis=None))

    slow_from = int(round(config.epochs * (1 - config.final_lr_fraction)))
    for epoch in range(1, config.epochs + 1):
        if epoch > slow_from:
            optimizer.learning_rate.assign(config.learning_rate * 0.1)
        start = time.perf_counter()
        total, total_bits, steps = 0.0, 0.0, 0
        for x in dist_data:
            loss, bits = distributed_step(x)
            total += float(loss)
            total_bits += float(bits)
            steps += 1
        val_bits, val_mse = evaluate(codec, x_val)
        on_epoch(EpochReport(epoch, total / steps, total_bits / steps, val_bits, val_mse,
                             time.perf_counter() - start))
    return codec
