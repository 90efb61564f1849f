"""The fit loop: one custom training step for every tf.distribute strategy.

Keras 3 model.fit fails under MultiWorkerMirroredStrategy
(keras-team/keras#20585), so the step is written with strategy.run and
compute_average_loss; the default strategy (one CPU or GPU), MirroredStrategy
(several local GPUs) and MultiWorkerMirroredStrategy (TF_CONFIG) all take the
same path.

Reproducible and resumable by construction:
- the order of the training images in epoch e is a permutation drawn from
  (seed, e), so it does not depend on what ran before;
- the training noise comes from a stateless generator seeded with
  (seed, optimizer step), folded with the replica id;
- TensorFlow's op determinism is switched on;
- a checkpoint after every epoch holds the weights, the optimizer state, the
  epoch, the early-stopping state and the best weights so far.
So a run killed after epoch k and resumed gives the same weights as one that
was never interrupted (tests/test_training.py checks this).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import quiet_tf  # noqa: F401 - silences TensorFlow's start-up: imported before tensorflow and keras

# isort: split
import keras
import numpy as np
import tensorflow as tf

from ..errors import AecError, OutputError
from ..metrics import psnr
from .augment import AUGMENT_VARIANTS, augmented_bank, epoch_rows
from .cluster import SINGLE, Task, task_from_tf_config
from .model import Architecture, Codec
from .strategy import check_workers_agree, kind_of

HISTORY_FIELDS = ("loss", "train_bits", "val_bits", "val_mse", "val_loss", "seconds", "learning_rate")
VAL_BATCH = 1000  # validation images per replica per step


@dataclass
class TrainConfig:
    lmbda: float = 10000.0  # weight of MSE (on [0,1], mean over pixels) against bits per image
    epochs: int = 60
    batch_size: int = 256  # global: split evenly over the replicas
    learning_rate: float = 1e-3
    final_lr_fraction: float = 0.2  # the last 20% of epochs run at a tenth of the rate
    seed: int = 0
    # Stop when the validation loss has not improved for this many epochs
    # (0: never); the best epoch's weights are restored either way. 20 lets
    # the shipped model's 80-epoch command run to the end (weights/README.md).
    patience: int = 20
    # Share of each epoch's training images replaced by one of AUGMENT_VARIANTS re-drawn copies
    # (augment.py: other hands' slant, size, stroke and wobble); 0: the images as they are.
    augment: float = 0.0


@dataclass
class EpochReport:
    epoch: int
    loss: float  # mean training loss (bits + lambda * MSE, noisy latents)
    train_bits: float
    val_bits: float  # the prior's estimate for rounded latents
    val_mse: float  # of uint8 reconstructions, on [0,1]
    seconds: float
    val_loss: float = 0.0  # val_bits + lambda * val_mse: what early stopping watches
    learning_rate: float = 0.0
    best: bool = False  # the best validation loss so far

    @property
    def val_psnr(self) -> float:
        return psnr(max(self.val_mse, 1e-12))


@dataclass
class TrainResult:
    codec: Codec  # carrying the best epoch's weights
    history: list[EpochReport]  # every epoch trained, including those before a resume
    best_epoch: int
    stopped_early: bool
    resumed_from: int  # epochs already done when this process started (0: a fresh run)
    strategy: str  # "default", "mirrored" or "multi-worker"
    replicas: int
    task: Task = SINGLE


# --- strategies --------------------------------------------------------------


# --- the loop ----------------------------------------------------------------


def _as_float(images: np.ndarray) -> np.ndarray:
    return (images.reshape(len(images), -1).astype(np.float32)) / np.float32(255)


def epoch_order(seed: int, epoch: int, n: int, batch: int) -> np.ndarray:
    """Image indices for each step of `epoch`: [steps, batch]; the last partial batch is dropped."""
    steps = n // batch
    return np.random.default_rng([seed, epoch]).permutation(n)[: steps * batch].reshape(steps, batch)


def evaluate(codec: Codec, images: np.ndarray, batch: int = 2000) -> tuple[float, float]:
    """(estimated bits per image from the prior, MSE of uint8 reconstructions) with rounded latents."""
    bits, sq = 0.0, 0.0
    for i in range(0, len(images), batch):
        x = _as_float(images[i : i + batch])
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
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_write_dir: str | os.PathLike | None = None,
    resume: bool = False,
    identity: dict | None = None,
    progress: bool = False,
    log: Callable[[str], None] = lambda line: None,
) -> TrainResult:
    """Train a Codec; see the module docstring for what makes it reproducible and resumable.

    checkpoint_dir: where the chief's checkpoints are (read on --resume by
    every worker: it must be on a file system they share); written after
    every epoch to checkpoint_write_dir (default: the same; non-chief workers
    pass a private temporary folder, as TensorFlow's guide recommends).
    identity: what a checkpoint must match to be resumed (settings, data
    digest); stored in it.
    """
    strategy = strategy or tf.distribute.get_strategy()
    kind = kind_of(strategy)
    task = task_from_tf_config() if kind == "multi-worker" else SINGLE
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise AecError(f"--batch-size {config.batch_size} must be a multiple of the {replicas} replicas")
    replica_batch = config.batch_size // replicas
    steps = len(x_train) // config.batch_size
    if steps == 0:
        raise AecError(
            f"only {len(x_train)} training images, fewer than one batch of {config.batch_size} (lower --batch-size)"
        )
    if len(x_val) == 0:
        raise AecError("no validation images (raise --val-fraction)")

    tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(config.seed)
    pixels = arch.image_shape[0] * arch.image_shape[1]
    with strategy.scope():
        codec = Codec(arch)
        codec(tf.zeros((1, pixels)))  # creates the variables
        optimizer = keras.optimizers.Adam(learning_rate=config.learning_rate)
        optimizer.build(codec.trainable_variables)  # slots exist before a restore fills them

    # Loop state lives in variables so that one checkpoint holds all of it.
    identity_json = json.dumps(identity or {}, sort_keys=True)
    identity = json.loads(identity_json)  # as it reads back from a checkpoint (tuples become lists)
    state = {
        "epoch": tf.Variable(0, dtype=tf.int64, trainable=False),
        "best_loss": tf.Variable(np.inf, dtype=tf.float64, trainable=False),
        "best_epoch": tf.Variable(0, dtype=tf.int64, trainable=False),
        "stopped": tf.Variable(False, trainable=False),
        "history": tf.Variable(np.zeros((config.epochs, len(HISTORY_FIELDS))), dtype=tf.float64, trainable=False),
        "identity": tf.Variable(identity_json, dtype=tf.string, trainable=False),
    }
    best_weights = [tf.Variable(v.numpy(), trainable=False) for v in codec.weights]
    checkpoint = tf.train.Checkpoint(codec=codec, optimizer=optimizer, best_weights=best_weights, **state)

    resumed_from = 0
    if checkpoint_dir is not None and resume:
        latest = tf.train.latest_checkpoint(str(checkpoint_dir))
        if latest is None:
            log(f"no checkpoint in {checkpoint_dir}: starting at epoch 1")
        else:
            # Compare what the run was before restoring: other settings can mean other shapes.
            try:
                stored = json.loads(
                    tf.train.load_checkpoint(latest).get_tensor("identity/.ATTRIBUTES/VARIABLE_VALUE").decode()
                )
            except (tf.errors.OpError, ValueError, KeyError) as err:
                raise OutputError(f"{latest}: not a checkpoint aec can resume from ({_first_line(err)})") from None
            if stored != identity:
                diff = sorted(k for k in set(stored) | set(identity) if stored.get(k) != identity.get(k))
                raise OutputError(
                    f"{checkpoint_dir}: the checkpoint is from a run with different "
                    f"{', '.join(diff)}; resume with the same data and options, or --force to start over"
                )
            try:
                checkpoint.restore(latest).assert_existing_objects_matched()
            except (tf.errors.OpError, AssertionError, ValueError) as err:
                raise OutputError(f"{latest}: cannot resume from this checkpoint ({_first_line(err)})") from None
            resumed_from = int(state["epoch"].numpy())
    if task.workers > 1:
        check_workers_agree(strategy, f"{identity_json}|{resumed_from}")
    manager = None
    if checkpoint_dir is not None:
        write_dir = Path(checkpoint_write_dir or checkpoint_dir)
        manager = tf.train.CheckpointManager(checkpoint, str(write_dir), max_to_keep=1)

    lmbda = tf.constant(config.lmbda, tf.float32)
    seed = tf.constant(config.seed, tf.int64)

    def step(x):
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        noise_seed = tf.random.experimental.stateless_fold_in(
            tf.stack([seed, tf.cast(optimizer.iterations, tf.int64)]), replica
        )
        with tf.GradientTape() as tape:
            x_hat, bits = codec(x, training=True, noise_seed=noise_seed)
            mse = tf.reduce_mean(tf.square(x_hat - x), axis=-1)
            per_example = bits + lmbda * mse
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=config.batch_size)
        grads = tape.gradient(loss, codec.trainable_variables)
        optimizer.apply_gradients(zip(grads, codec.trainable_variables))
        return loss, tf.nn.compute_average_loss(bits, global_batch_size=config.batch_size)

    @tf.function
    def distributed_step(x):
        loss, bits = strategy.run(step, args=(x,))
        return (
            strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None),
            strategy.reduce(tf.distribute.ReduceOp.SUM, bits, axis=None),
        )

    def eval_step(x, weight):
        x_hat, bits = codec(x, training=False)
        x_hat = tf.round(x_hat * 255) / 255  # the uint8 image a user gets back
        sq = tf.reduce_sum(tf.square(x_hat - x), axis=-1)
        return tf.reduce_sum(bits * weight), tf.reduce_sum(sq * weight)

    @tf.function
    def distributed_eval(x, weight):
        bits, sq = strategy.run(eval_step, args=(x, weight))
        return (
            strategy.reduce(tf.distribute.ReduceOp.SUM, bits, axis=None),
            strategy.reduce(tf.distribute.ReduceOp.SUM, sq, axis=None),
        )

    bank = None
    if config.augment > 0:
        started = time.perf_counter()
        bank = augmented_bank(x_train, config.seed, AUGMENT_VARIANTS)
        log(
            f"{AUGMENT_VARIANTS} re-drawn copies of {len(x_train)} images made in {time.perf_counter() - started:.0f} s"
        )
    else:
        x_float = _as_float(x_train)
    # Validation is spread over the replicas too, padded to whole steps; the
    # padding has weight 0. The all-reduced sums are the same on every worker,
    # so every worker takes the same early-stopping decision.
    val_per_replica = min(VAL_BATCH, -(-len(x_val) // replicas))
    val_chunk = val_per_replica * replicas
    val_steps = -(-len(x_val) // val_chunk)
    val_x = np.zeros((val_steps * val_chunk, pixels), np.float32)
    val_x[: len(x_val)] = _as_float(x_val)
    val_w = np.zeros(val_steps * val_chunk, np.float32)
    val_w[: len(x_val)] = 1

    def per_replica(array: np.ndarray, width: int):
        return strategy.experimental_distribute_values_from_function(
            lambda ctx: tf.constant(
                array[ctx.replica_id_in_sync_group * width : (ctx.replica_id_in_sync_group + 1) * width]
            )
        )

    def validate() -> tuple[float, float]:
        bits, sq = 0.0, 0.0
        for s in range(val_steps):
            part = slice(s * val_chunk, (s + 1) * val_chunk)
            b, q = distributed_eval(
                per_replica(val_x[part], val_per_replica), per_replica(val_w[part], val_per_replica)
            )
            bits, sq = bits + float(b), sq + float(q)
        return bits / len(x_val), sq / (len(x_val) * pixels)

    history = [_report(epoch, state["history"].numpy()[epoch - 1]) for epoch in range(1, resumed_from + 1)]
    best_epoch = int(state["best_epoch"].numpy())
    for report in history:
        report.best = report.epoch == best_epoch
    slow_from = int(round(config.epochs * (1 - config.final_lr_fraction)))
    stopped = bool(state["stopped"].numpy())
    epoch = resumed_from
    while not stopped and epoch < config.epochs:
        epoch += 1
        learning_rate = config.learning_rate * (0.1 if epoch > slow_from else 1.0)
        optimizer.learning_rate.assign(learning_rate)
        start = time.perf_counter()
        order = epoch_order(config.seed, epoch, len(x_train), config.batch_size)
        if bank is not None:  # this epoch's images, as floats once (not a batch at a time)
            rows = epoch_rows(config.seed, epoch, len(x_train), config.augment, AUGMENT_VARIANTS)
            x_float = _as_float(bank[rows, np.arange(len(x_train))])
        total, total_bits = 0.0, 0.0
        with _progress_bar(progress, steps, f"epoch {epoch}/{config.epochs}") as advance:
            for s in range(steps):
                loss, bits = distributed_step(per_replica(x_float[order[s]], replica_batch))
                total, total_bits = total + float(loss), total_bits + float(bits)
                advance(s + 1, total / (s + 1))
        val_bits, val_mse = validate()
        val_loss = val_bits + config.lmbda * val_mse
        report = EpochReport(
            epoch,
            total / steps,
            total_bits / steps,
            val_bits,
            val_mse,
            time.perf_counter() - start,
            val_loss,
            learning_rate,
        )
        if val_loss < float(state["best_loss"].numpy()):
            state["best_loss"].assign(val_loss)
            state["best_epoch"].assign(epoch)
            for keep, var in zip(best_weights, codec.weights):
                keep.assign(var.numpy())
            report.best = True
        elif config.patience and epoch - int(state["best_epoch"].numpy()) >= config.patience:
            stopped = True
            state["stopped"].assign(True)
        state["history"][epoch - 1].assign([getattr(report, f) for f in HISTORY_FIELDS])
        state["epoch"].assign(epoch)
        if manager is not None:
            manager.save(checkpoint_number=epoch)  # every worker saves (collectives); non-chiefs to a scratch folder
        history.append(report)
        on_epoch(report)

    best_epoch = int(state["best_epoch"].numpy())
    for var, keep in zip(codec.weights, best_weights):
        var.assign(keep.numpy())
    return TrainResult(codec, history, best_epoch, stopped, resumed_from, kind, replicas, task)


def _first_line(err: Exception) -> str:
    """A short reason: TensorFlow's messages carry op and device names that mean nothing to users."""
    if isinstance(err, tf.errors.NotFoundError):
        return "checkpoint files are missing"
    if isinstance(err, tf.errors.DataLossError):
        return "checkpoint files are damaged"
    text = str(err).strip()
    line = text.splitlines()[0] if text else type(err).__name__
    return line if len(line) <= 200 else line[:197] + "..."


def _report(epoch: int, row: np.ndarray) -> EpochReport:
    values = dict(zip(HISTORY_FIELDS, (float(v) for v in row)))
    return EpochReport(
        epoch,
        values["loss"],
        values["train_bits"],
        values["val_bits"],
        values["val_mse"],
        values["seconds"],
        values["val_loss"],
        values["learning_rate"],
    )


@contextlib.contextmanager
def _progress_bar(enabled: bool, steps: int, title: str):
    """advance(done, mean_loss): a Keras progress bar on stderr while an epoch runs, if it is a terminal."""
    if not enabled or not sys.stderr.isatty():
        yield lambda done, loss: None
        return
    print(title, file=sys.stderr)
    bar = keras.utils.Progbar(steps, stateful_metrics=["loss"])
    # Progbar writes to stdout; stdout is for results, so send it to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        yield lambda done, loss: bar.update(done, [("loss", loss)])


def weights_digest(codec: Codec) -> str:
    """SHA-256 over every weight's bytes: equal on all workers after a distributed run."""
    digest = hashlib.sha256()
    for var in codec.weights:
        digest.update(np.ascontiguousarray(var.numpy()).tobytes())
    return digest.hexdigest()
