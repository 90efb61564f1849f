"""aec.training.augment: digits re-drawn as other hands write them, for training and the held-out set."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("scipy")

from aec.training.augment import augment, epoch_rows  # noqa: E402


def test_redrawn_digits_are_new_images_of_the_same_kind(train_fixture):
    digits = train_fixture[:200]
    redrawn = augment(digits, np.random.default_rng(0))
    assert redrawn.shape == digits.shape and redrawn.dtype == np.uint8
    changed = np.abs(redrawn.astype(int) - digits).mean(axis=(1, 2))
    assert (changed > 1).mean() > 0.95  # nearly every digit moves
    # Still a white digit on black: about as much ink, none of it lost outright, a dark border.
    ink, ink_after = (digits > 127).sum(axis=(1, 2)), (redrawn > 127).sum(axis=(1, 2))
    assert 0.6 < np.median(ink_after / ink) < 1.6
    assert redrawn.reshape(len(redrawn), -1).max(axis=1).min() >= 64  # thinned, never erased
    assert redrawn[:, [0, -1], :].mean() < 8 and redrawn[:, :, [0, -1]].mean() < 8


def test_the_same_seed_draws_the_same_hands(train_fixture):
    digits = train_fixture[:20]
    a = augment(digits, np.random.default_rng(7))
    assert np.array_equal(a, augment(digits, np.random.default_rng(7)))
    assert not np.array_equal(a, augment(digits, np.random.default_rng(8)))
    assert augment(digits[:0], np.random.default_rng(7)).shape == (0, 28, 28)


def test_each_epoch_replaces_its_share_of_images_with_copies():
    rows = epoch_rows(seed=0, epoch=3, n=20_000, share=0.5, variants=2)
    assert set(np.unique(rows).tolist()) == {0, 1, 2}
    assert abs((rows > 0).mean() - 0.5) < 0.02
    assert np.array_equal(rows, epoch_rows(0, 3, 20_000, 0.5, 2))  # resumable: fixed by (seed, epoch)
    assert not np.array_equal(rows, epoch_rows(0, 4, 20_000, 0.5, 2))
    assert not epoch_rows(0, 3, 100, 0.0, 2).any()
