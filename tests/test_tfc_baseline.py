"""What the TFC baseline (benchmarks/rd/tfc_baseline.py) takes from aec: entropy tables fitted on another model's
integer latents, and aec's coder on them, exact with escapes. The baseline's own model is tested beside it."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("tensorflow")  # fit_tables lives in aec.training, which imports TensorFlow
from aec.entropy import LatentCoder  # noqa: E402
from aec.training.export import fit_tables  # noqa: E402


def coder_for(train: np.ndarray) -> LatentCoder:
    low, counts = fit_tables(train)
    # the two arrays LatentCoder reads from a model file
    return LatentCoder(SimpleNamespace(table_low=low, table_counts=counts))


def test_entropy_coding_round_trip_is_exact_with_escapes():
    rng = np.random.default_rng(0)
    train = np.rint(rng.laplace(0, 3, (500, 50))).astype(np.int32)
    coder = coder_for(train)
    test = np.rint(rng.laplace(0, 3, (40, 50))).astype(np.int32)
    test[0, :3] = [1000, -70000, 2**31 - 1]  # far outside every table: escapes
    assert np.array_equal(coder.decode(coder.encode(test), len(test)), test)
    # typical latents cost far less than their raw int32 bytes
    assert len(coder.encode(test[1:])) < test[1:].size
