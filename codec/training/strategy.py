"""Which tf.distribute strategy trains: one device, all local GPUs, or a cluster (TF_CONFIG)."""

from __future__ import annotations

import hashlib
import os

from . import quiet_tf  # noqa: F401 - silences TensorFlow's start-up: imported before tensorflow and keras

# isort: split
import tensorflow as tf

from ..errors import AecError
from .cluster import task_from_tf_config


def digest_int(text: str) -> int:
    # 20 bits: a sum over up to 16 workers stays exact in float32.
    return int(hashlib.sha256(text.encode()).hexdigest()[:5], 16)


def strategy_kind(tf_config: str | None, gpus: int) -> str:
    """Which strategy a process uses: TF_CONFIG with a cluster, several GPUs, or neither."""
    if task_from_tf_config(tf_config or "").task_type is not None:  # TF_CONFIG names a cluster
        return "multi-worker"
    if gpus > 1:
        return "mirrored"
    return "default"


def make_strategy() -> tuple[tf.distribute.Strategy, str]:
    """The strategy for this process; call it before any other TensorFlow work (MWMS requires that)."""
    kind = strategy_kind(os.environ.get("TF_CONFIG", ""), len(tf.config.list_physical_devices("GPU")))
    if kind == "multi-worker":
        return tf.distribute.MultiWorkerMirroredStrategy(), kind
    if kind == "mirrored":
        return tf.distribute.MirroredStrategy(), kind
    return tf.distribute.get_strategy(), kind


def kind_of(strategy: tf.distribute.Strategy) -> str:
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return "multi-worker"
    if isinstance(strategy, tf.distribute.MirroredStrategy):
        return "mirrored"
    return "default"


def check_workers_agree(strategy: tf.distribute.Strategy, text: str) -> None:
    """Every worker must train on the same data and settings from the same epoch, or the all-reduce hangs later."""
    code = float(digest_int(text))

    @tf.function
    def total():
        value = strategy.run(lambda: tf.constant(code, tf.float32))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)

    if float(total()) != code * strategy.num_replicas_in_sync:
        raise AecError(
            "the workers disagree on data, options or the checkpoint to resume from "
            "(give every worker the same command; --resume needs the checkpoint folder "
            "on a shared file system)"
        )
