"""The NumPy runtime (the codec's contract) against the Keras model it came from."""

import numpy as np
import pytest

from aec import runtime, weights
from aec.modelfile import read_model

tf = pytest.importorskip("tensorflow")


def test_numpy_encoder_and_decoder_match_keras(shipped_model, example_images, train_fixture):
    from aec.training.export import keras_models

    encoder, decoder = keras_models(shipped_model)
    images = np.concatenate([example_images, train_fixture])
    x = images.reshape(len(images), -1).astype(np.float32) / 255

    y_keras = np.asarray(encoder(x))
    y_numpy = runtime.analyse(shipped_model, images)
    assert np.max(np.abs(y_keras - y_numpy)) <= 1e-4

    q_numpy = runtime.quantize(shipped_model, y_numpy)
    q_keras = np.rint(y_keras).astype(np.int32)
    # Keras and NumPy sum in different orders (about 1e-6 apart), so a latent
    # within that distance of a rounding boundary (x.5) may round either way.
    # Everywhere else the integers must be identical.
    near_tie = np.abs(np.abs(y_numpy - np.floor(y_numpy)) - 0.5) < 1e-4
    assert np.array_equal(q_numpy[~near_tie], q_keras[~near_tie])
    assert near_tie.mean() < 1e-3
    assert np.all(np.abs(q_numpy - q_keras) <= 1)

    x_keras = np.asarray(decoder(q_numpy.astype(np.float32))).reshape(len(images), 28, 28)
    x_numpy = runtime.synthesise(shipped_model, q_numpy)
    assert np.max(np.abs(x_keras - x_numpy)) <= 1e-4


def test_decoded_uint8_is_rounded_reconstruction(example_images):
    """A float-decoder model (the legacy levels) decodes to its rounded float reconstruction."""
    model = read_model(weights.LEGACY / "mnist-q3.h5")
    assert model.exact is None
    q = runtime.encode_latents(model, example_images)
    assert q.dtype == np.int32 and q.shape == (len(example_images), model.latents)
    out = runtime.decode_latents(model, q)
    assert out.dtype == np.uint8 and out.shape == example_images.shape
    assert np.array_equal(out, np.clip(np.rint(runtime.synthesise(model, q) * 255), 0, 255))
