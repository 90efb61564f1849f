"""The PCA baseline and the benchmark's codec sweep, fast and without MNIST (python -m pytest benchmarks)."""

from __future__ import annotations

import numpy as np
import pytest

from aec.metrics import mse

from .benchmark import sweep
from .pca import PCA, PCABasis


@pytest.fixture(scope="module")
def digits(example_images) -> np.ndarray:
    return example_images[:20]


@pytest.mark.parametrize("coder", ["ans", "xz"])
def test_pca_round_trips_its_quantized_coefficients(train_fixture, digits, coder):
    basis = PCABasis.fit(train_fixture, 32)
    assert np.allclose(basis.components @ basis.components.T, np.eye(32), atol=1e-8)
    coarse, fine = PCA(basis, 0.8, coder).run(digits), PCA(basis, 0.05, coder).run(digits)
    # the decoder sees exactly the quantized coefficients the encoder made
    q = np.rint(basis.project(digits) / 0.05)
    assert np.array_equal(fine.decoded, basis.reconstruct(q * 0.05))
    assert coarse.coded_bytes < fine.coded_bytes
    assert fine.whole_bytes == fine.coded_bytes + PCA.HEADER_BYTES
    assert mse(digits, fine.decoded) <= mse(digits, coarse.decoded)


def test_sweep_lists_every_codec(train_fixture):
    names = {c.name for c in sweep(PCABasis.fit(train_fixture, 8), webp=(0,), jpeg=(5,), avif=(0,), pca_steps=(1,))}
    assert names == {
        "PNG",
        "WebP lossless",
        "xz raw pixels",
        "WebP",
        "JPEG",
        "AVIF",
        "PCA-8 + ANS (constriction)",
        "PCA-8 + xz",
    }
