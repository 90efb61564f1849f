"""Fixtures for the tests of the rate-distortion benchmark's own baselines (python -m pytest benchmarks)."""

import numpy as np
import pytest

from ..common import ROOT
from ..common import example_images as _example_images


@pytest.fixture(scope="session")
def example_images() -> np.ndarray:
    return _example_images()


@pytest.fixture(scope="session")
def train_fixture() -> np.ndarray:
    """300 MNIST training digits, uint8 [300, 28, 28] (the test suite's fixture file)."""
    with np.load(ROOT / "tests" / "fixtures" / "mnist-train-300.npz") as npz:
        return npz["images"]
