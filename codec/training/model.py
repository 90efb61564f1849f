"""The Keras side of the codec: encoder, decoder, and the learned prior.

Rate-distortion training as in Ballé et al. (2017): during training the
latents get uniform noise in place of rounding for the rate term, while the
decoder sees the rounded latents through a straight-through gradient (so it
learns to decode exactly what the coder will give it). The prior is a
per-latent mixture of logistics; its job is only to make the rate term
differentiable. The shipped entropy tables are the exact histograms of the
quantized training latents (see export.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from . import quiet_tf  # noqa: F401 - silences TensorFlow's start-up: imported before tensorflow and keras

# isort: split
import keras
import numpy as np
import tensorflow as tf


@dataclass
class Architecture:
    latents: int = 32
    hidden: list[int] = field(default_factory=lambda: [512, 512])
    activation: str = "relu"
    image_shape: tuple[int, int] = (28, 28)
    mixture: int = 3

    def to_dict(self) -> dict:
        return asdict(self)


def build_encoder(arch: Architecture) -> keras.Sequential:
    pixels = arch.image_shape[0] * arch.image_shape[1]
    layers = [keras.Input((pixels,))]
    layers += [keras.layers.Dense(u, activation=arch.activation) for u in arch.hidden]
    layers.append(keras.layers.Dense(arch.latents, activation="linear"))
    return keras.Sequential(layers, name="encoder")


def build_decoder(arch: Architecture) -> keras.Sequential:
    pixels = arch.image_shape[0] * arch.image_shape[1]
    layers = [keras.Input((arch.latents,))]
    layers += [keras.layers.Dense(u, activation=arch.activation) for u in reversed(arch.hidden)]
    layers.append(keras.layers.Dense(pixels, activation="sigmoid"))
    return keras.Sequential(layers, name="decoder")


class LogisticMixturePrior(keras.layers.Layer):
    """Per-latent mixture of logistics; call(y) gives P(y - 1/2 < Y < y + 1/2)."""

    def __init__(self, latents: int, components: int, **kwargs):
        super().__init__(**kwargs)
        spread = np.linspace(-1.0, 1.0, components, dtype=np.float32)
        self.logits = self.add_weight(shape=(latents, components), initializer="zeros", name="logits")
        self.means = self.add_weight(
            shape=(latents, components),
            name="means",
            initializer=keras.initializers.Constant(np.tile(spread, (latents, 1))),
        )
        self.log_scales = self.add_weight(
            shape=(latents, components), name="log_scales", initializer=keras.initializers.Constant(0.5)
        )

    def call(self, y):
        y = tf.expand_dims(y, -1)
        inv_scale = tf.exp(-self.log_scales)
        upper = (y + 0.5 - self.means) * inv_scale
        lower = (y - 0.5 - self.means) * inv_scale
        # Evaluate on the side of the distribution where the difference of
        # sigmoids does not cancel (Ballé's trick).
        sign = -tf.sign(upper + lower)
        sign = tf.where(sign == 0, tf.ones_like(sign), sign)
        per_component = tf.abs(tf.sigmoid(sign * upper) - tf.sigmoid(sign * lower))
        weights = tf.nn.softmax(self.logits, axis=-1)
        return tf.reduce_sum(per_component * weights, axis=-1)


class Codec(keras.Model):
    """Encoder + prior + decoder; call() returns (reconstruction, bits per image)."""

    def __init__(self, arch: Architecture, **kwargs):
        super().__init__(**kwargs)
        self.arch = arch
        self.encoder = build_encoder(arch)
        self.decoder = build_decoder(arch)
        self.prior = LogisticMixturePrior(arch.latents, arch.mixture, name="prior")

    def call(self, x, training=False, noise_seed=None):
        """noise_seed: a stateless-RNG seed (int [2]) for the training noise.

        The training loop derives it from the step number and the replica, so
        the noise is the same in a resumed run and under any strategy; without
        it, TensorFlow's stateful generator is used.
        """
        y = self.encoder(x)
        if training and noise_seed is not None:
            noisy = y + tf.random.stateless_uniform(tf.shape(y), noise_seed, -0.5, 0.5)
        elif training:
            noisy = y + tf.random.uniform(tf.shape(y), -0.5, 0.5)
        else:
            noisy = tf.round(y)
        rounded = y + tf.stop_gradient(tf.round(y) - y)
        likelihood = tf.maximum(self.prior(noisy), 1e-9)
        bits = -tf.reduce_sum(tf.math.log(likelihood), axis=-1) / np.log(2.0)
        return self.decoder(rounded), bits
