"""Quality levels: the compact tool (int8 kernels, step-scaled levels) and the shipped curve."""

import numpy as np
import pytest

import aec
from aec import runtime
from aec.datasets import load_mnist
from aec.levels import DEFAULT_LEVEL, level
from aec.metrics import image_psnrs, mse, psnr
from aec.modelfile import read_model, write_model
from aec.models import quality_levels, resolve_model
from aec.training.compact import rebuild


def test_rebuild_gives_int8_kernels_scaled_steps_and_tables_that_cover_the_images(tmp_path, example_digits):
    from PIL import Image

    images = np.stack([np.asarray(Image.open(p)) for p in sorted(example_digits.glob("*.png"))])
    base = resolve_model(quality=3)
    finer = rebuild(base, images, step_scale=0.5, quality=9, name="finer")
    assert finer.name == "finer" and finer.quality == 9
    assert np.allclose(finer.quant_step, base.quant_step * 0.5)
    assert all(layer.kernel_scale is not None for layer in finer.encoder + finer.decoder)
    assert finer.metadata["derived_from"]["fingerprint"] == base.fingerprint_hex
    latents = runtime.encode_latents(finer, images)
    width = finer.table_counts.shape[1] - 1  # the last slot is the escape
    assert np.all(latents >= finer.table_low) and np.all(latents < finer.table_low + width)
    back = read_model(write_model(finer, tmp_path / "finer.h5"))
    assert back.fingerprint == finer.fingerprint
    # A finer step spends more bits on the same images and gets closer to them.
    coarse_data = aec.encode(images, model=base)
    fine_data = aec.encode(images, model=finer)
    assert len(fine_data) > len(coarse_data)
    err = [mse(images, aec.decode(d, model=m)) for d, m in ((coarse_data, base), (fine_data, finer))]
    assert err[1] < err[0]


def test_rebuild_records_the_search_lambdas_per_effort(example_images):
    from aec.search import search_lambda

    base = resolve_model(quality=1)
    rebuilt = rebuild(base, example_images, search_lambda=(100.0, 250.0))
    assert rebuilt.metadata["search"] == {"lambda": {"1": 100.0, "2": 250.0}}
    assert (search_lambda(rebuilt, 1), search_lambda(rebuilt, 2)) == (100.0, 250.0)
    with pytest.raises(ValueError, match="positive"):
        rebuild(base, example_images, search_lambda=(100.0, 0.0))


def test_shipped_levels_are_one_to_five_with_the_default_at_three():
    assert sorted(quality_levels()) == [1, 2, 3, 4, 5]
    assert resolve_model().quality == 3
    assert quality_levels()[DEFAULT_LEVEL] == aec.DEFAULT_MODEL  # pack without -Q is level 3


def test_levels_four_and_five_hold_every_image_to_their_floor(example_images):
    three = aec.encode(example_images, quality=3)
    for number, latents_of in ((4, 3), (5, 1)):
        assert (
            resolve_model(quality=number).decoder_fingerprint == resolve_model(quality=latents_of).decoder_fingerprint
        )
        data = aec.encode(example_images, quality=number)
        back = aec.decode(data)
        assert image_psnrs(example_images, back).min() >= level(number).floor
        facts = aec.info(data)
        assert facts["quality"] == number and facts["images_rescued"] > 0
        assert len(data) > len(three)
        # The floor is the level's default: 0 gives the file of the level whose latents it codes.
        plain = aec.encode(example_images, quality=number, min_psnr=0)
        alone = aec.encode(example_images, quality=latents_of, min_psnr=0)
        assert len(plain) == len(alone) and np.array_equal(aec.decode(plain), aec.decode(alone))


@pytest.mark.slow
@pytest.mark.parametrize("effort, count", [(0, 2000), (1, 500)])
def test_shipped_curve_is_monotone_on_mnist_test_digits(mnist_dir, effort, count):
    """A higher level never costs fewer bytes and never gives a worse PSNR (test digits; effort 2:
    benchmarks/rd/benchmark.py, too slow here)."""
    images, _ = load_mnist("test", mnist_dir)
    images = images[:count]
    points = []
    for quality in sorted(quality_levels()):
        data = aec.encode(images, quality=quality, effort=effort)
        points.append((len(data) / len(images), psnr(mse(images, aec.decode(data)))))
    sizes, psnrs = zip(*points)
    assert list(sizes) == sorted(sizes) and len(set(sizes)) == len(sizes), points
    assert list(psnrs) == sorted(psnrs) and len(set(psnrs)) == len(psnrs), points
    if effort == 0:  # measured (levels trained with --augment): 5.0 B at level 1, 23.9 dB at level 3
        assert sizes[0] < 5.3 and psnrs[2] > 23.7, points
        # Each level at least 0.3 dB above the one below; level 5 (its floor 28 dB) above 28 dB.
        assert all(b - a >= 0.3 for a, b in zip(psnrs, psnrs[1:])) and psnrs[4] > 28.5, points
    else:  # the search: better pictures for about the same bytes (measured on 500: 5.29 B / 20.3 dB, 14.44 B / 24.6 dB)
        assert sizes[0] < 5.5 and psnrs[0] > 20.0 and sizes[2] < 14.8 and psnrs[2] > 24.3, points
