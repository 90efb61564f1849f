"""The TensorFlow Compression baseline (tfc_baseline.py beside this file): shapes, one training step, exact coding.

python -m pytest benchmarks
"""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("tensorflow")
from . import tfc_baseline as tfc  # noqa: E402 - after the skip: it imports TensorFlow


@pytest.fixture(scope="module")
def model():
    return tfc.TFCModel()


def test_layer_shapes_follow_the_tutorial(model):
    assert model.analysis.output_shape == (None, 50)
    assert model.synthesis.output_shape == (None, 28, 28, 1)
    shapes = [layer.output.shape[1:] for layer in model.analysis.layers]
    assert shapes == [(14, 14, 20), (7, 7, 50), (2450,), (500,), (50,)]
    shapes = [layer.output.shape[1:] for layer in model.synthesis.layers]
    assert shapes == [(500,), (2450,), (7, 7, 50), (14, 14, 20), (28, 28, 1)]


def test_rate_is_the_noisy_logistic_information():
    # at scale 1 the mass on [-1/2, 1/2] is sigmoid(1/2) - sigmoid(-1/2); far in the tail it stays finite
    bits = tfc.noisy_logistic_bits(np.zeros((1, 50), np.float32), np.zeros(50, np.float32)).numpy()
    mass = 1 / (1 + math.exp(-0.5)) - 1 / (1 + math.exp(0.5))
    assert bits[0] == pytest.approx(-50 * math.log2(mass), rel=1e-5)
    far = tfc.noisy_logistic_bits(np.full((1, 50), 200.0, np.float32), np.full(50, -3.0, np.float32)).numpy()
    assert np.isfinite(far).all() and far[0] > 50 * 1000


def test_one_training_step_gives_finite_losses(train_fixture):
    model = tfc.TFCModel()
    x = tfc._as_float(train_fixture[:64])
    before = [v.numpy().copy() for v in model.variables]
    loss, rate, distortion = (float(v) for v in model.train_step(x, 1000.0))
    assert all(math.isfinite(v) for v in (loss, rate, distortion))
    assert rate > 0 and 0 < distortion < 1
    assert loss == pytest.approx(rate + 1000.0 * distortion, rel=1e-5)
    assert any(not np.array_equal(b, v.numpy()) for b, v in zip(before, model.variables))


def test_encode_decode_shapes_and_types(model, example_images):
    latents = model.encode(example_images[:8])
    assert latents.shape == (8, 50) and latents.dtype == np.int32
    decoded = model.decode(latents)
    assert decoded.shape == (8, 28, 28) and decoded.dtype == np.uint8


def test_entropy_coding_round_trip_is_exact_with_escapes():
    rng = np.random.default_rng(0)
    train = np.rint(rng.laplace(0, 3, (500, 50))).astype(np.int32)
    coder = tfc.coder_for(train)
    test = np.rint(rng.laplace(0, 3, (40, 50))).astype(np.int32)
    test[0, :3] = [1000, -70000, 2**31 - 1]  # far outside every table: escapes
    data = tfc.write_file(coder, test)
    assert int.from_bytes(data[:4], "little") == 40
    assert np.array_equal(tfc.read_file(coder, data), test)
    # typical latents cost far less than their raw int32 bytes
    assert len(tfc.write_file(coder, test[1:])) < test[1:].size
