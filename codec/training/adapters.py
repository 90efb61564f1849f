"""An .aec file (aec.open) as the datasets training frameworks read: tf.data and PyTorch.

Here, beside the other code that imports TensorFlow, so that the library
itself never does; each framework is imported only when its adapter is asked for.
"""

from __future__ import annotations

import numpy as np


def tf_dataset(data, batch_size: int = 256):
    """A tf.data.Dataset of (uint8 images [n, H, W], int64 labels [n]) batches; labels -1 where there are none."""
    import tensorflow as tf

    height, width = data.image_shape

    def generate():
        for images, labels in data.batches(batch_size):
            yield images, (labels if labels is not None else np.full(len(images), -1, np.int64))

    signature = (tf.TensorSpec((None, height, width), tf.uint8), tf.TensorSpec((None,), tf.int64))
    return tf.data.Dataset.from_generator(generate, output_signature=signature)


def torch_dataset(data):
    """A map-style torch.utils.data.Dataset of (uint8 image tensor [H, W], label; -1 where there is none)."""
    import torch
    from torch.utils.data import Dataset

    class AecTorchDataset(Dataset):
        def __len__(self) -> int:
            return len(data)

        def __getitem__(self, index: int):
            labels = data.labels
            return torch.from_numpy(data[index]), -1 if labels is None else int(labels[index])

    return AecTorchDataset()
