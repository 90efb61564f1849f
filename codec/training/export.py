"""Turn a trained Keras codec into a model file for pack/unpack.

The entropy tables are fitted on the integer latents that the NumPy runtime
(the contract) gives for the training images, so the coder's probabilities
are exact integers that any machine reads back identically.
"""

from __future__ import annotations

import numpy as np

from .. import runtime
from ..modelfile import Dense, Model
from .model import Codec

TABLE_MARGIN = 2  # values beyond the training range but this close still get a table slot


def _dense_layers(keras_model) -> list[Dense]:
    layers = []
    for layer in keras_model.layers:
        kernel, bias = layer.get_weights()
        layers.append(Dense(kernel.astype(np.float32), bias.astype(np.float32), layer.get_config()["activation"]))
    return layers


def fit_tables(latents: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-latent (low, counts): a histogram of each column plus one for every slot, escape last."""
    low = latents.min(axis=0).astype(np.int64) - TABLE_MARGIN
    high = latents.max(axis=0).astype(np.int64) + TABLE_MARGIN
    width = int((high - low).max()) + 2  # + escape slot
    counts = np.ones((latents.shape[1], width), dtype=np.uint32)
    for j in range(latents.shape[1]):
        hist = np.bincount(latents[:, j] - low[j], minlength=width - 1)
        counts[j, : width - 1] += hist.astype(np.uint32)
    return low.astype(np.int32), counts


def tables_for(model: Model, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """fit_tables on the integer latents the NumPy runtime gives `model` for `images` (4,096 at a time)."""
    return fit_tables(
        np.concatenate([runtime.encode_latents(model, images[i : i + 4096]) for i in range(0, len(images), 4096)])
    )


def export_model(codec: Codec, x_train: np.ndarray, name: str, quality: int, metadata: dict) -> Model:
    encoder, decoder = _dense_layers(codec.encoder), _dense_layers(codec.decoder)
    latent_count = encoder[-1].kernel.shape[1]
    draft = Model(
        name=name,
        quality=quality,
        image_shape=tuple(codec.arch.image_shape),
        encoder=encoder,
        decoder=decoder,
        quant_step=np.ones(latent_count, np.float32),
        table_low=np.zeros(latent_count, np.int32),
        table_counts=np.ones((latent_count, 2), np.uint32),
    )
    low, counts = tables_for(draft, x_train)
    return Model(
        name=name,
        quality=quality,
        image_shape=draft.image_shape,
        encoder=encoder,
        decoder=decoder,
        quant_step=draft.quant_step,
        table_low=low,
        table_counts=counts,
        metadata=metadata,
    )


def keras_models(model: Model):
    """Keras (encoder, decoder) carrying a model file's weights: the reference the NumPy runtime is held to."""
    from . import quiet_tf  # noqa: F401 - silences TensorFlow's start-up: imported before tensorflow and keras

    # isort: split
    import keras

    def build(layers: list[Dense], inputs: int) -> keras.Sequential:
        net = keras.Sequential(
            [keras.Input((inputs,))]
            + [keras.layers.Dense(layer.kernel.shape[1], activation=layer.activation) for layer in layers]
        )
        for keras_layer, layer in zip(net.layers, layers):
            keras_layer.set_weights([layer.kernel, layer.bias])
        return net

    return build(model.encoder, model.pixels), build(model.decoder, model.latents)
