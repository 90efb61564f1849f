"""The rate-distortion tools, fast and without MNIST: aec.classic's codecs on example digits, aec.metrics' BD-rate
on known curves. The PCA baseline is tested beside it, in benchmarks/rd/."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aec import classic as cc
from aec.metrics import bd_rate, bd_rate_pchip, mse, pareto, pchip_integral, psnr, rate_at_psnr


@pytest.fixture(scope="module")
def digits(example_images) -> np.ndarray:
    return example_images[:20]


@pytest.mark.parametrize("codec", [cc.PNG(), cc.WebPLossless(), cc.XZRaw()], ids=lambda c: c.name)
def test_lossless_codecs_are_exact(codec, digits):
    result = codec.run(digits)
    assert result.lossless and result.images == 20
    assert np.array_equal(result.decoded, digits)
    assert 0 < result.whole_bytes < digits.size  # smaller than raw pixels, even with headers


@pytest.mark.parametrize("make", [cc.WebP, cc.JPEG, cc.AVIF], ids=lambda m: m.__name__)
def test_lossy_per_image_codecs_trade_bytes_for_quality(make, digits):
    low, high = make(5).run(digits), make(90).run(digits)
    for r in (low, high):
        assert r.decoded.shape == digits.shape and r.decoded.dtype == np.uint8
        # whole bytes are the complete files: each at least its container's magic number
        assert r.whole_bytes >= 20 * 4 and r.folder_xz_bytes is not None
    assert high.whole_bytes > low.whole_bytes
    assert mse(digits, high.decoded) < mse(digits, low.decoded)


def test_per_image_bytes_are_whole_files(digits):
    codec = cc.WebP(50)
    files = [codec.encode_one(d) for d in digits]
    assert all(f[:4] == b"RIFF" and f[8:12] == b"WEBP" for f in files)
    assert codec.run(digits).whole_bytes == sum(map(len, files))


# --- BD-rate -------------------------------------------------------------------

PSNRS = np.array([20.0, 23.0, 26.0, 29.0, 32.0])
RATES = np.array([10.0, 16.0, 30.0, 55.0, 100.0])


@pytest.mark.parametrize("factor", [0.5, 0.8, 1.0, 1.3])
def test_bd_rate_of_a_scaled_curve_is_the_scale(factor):
    # log-rate shifted by a constant: exactly (factor - 1) at every PSNR, whatever the fit
    assert bd_rate(RATES, PSNRS, RATES * factor, PSNRS) == pytest.approx((factor - 1) * 100, abs=1e-9)


def test_bd_rate_on_a_known_polynomial_and_partial_overlap():
    # anchor: ln R = 0.1 p (exact cubic); test: ln R = 0.1 p - 0.05 (p - 25) over 24..30 dB only
    pa = np.linspace(20, 30, 6)
    pt = np.linspace(24, 34, 6)
    ra = np.exp(0.1 * pa)
    rt = np.exp(0.1 * pt - 0.05 * (pt - 25))
    # over the overlap 24..30 the mean log difference is -0.05 * (27 - 25) = -0.1
    assert bd_rate(ra, pa, rt, pt) == pytest.approx((math.exp(-0.1) - 1) * 100, abs=1e-9)


def test_bd_rate_refuses_too_few_points_or_no_overlap():
    with pytest.raises(ValueError, match=">= 4 points"):
        bd_rate(RATES, PSNRS, [14.7], [23.5])
    with pytest.raises(ValueError, match="do not overlap"):
        bd_rate(RATES, PSNRS, RATES, PSNRS + 50)


def test_pareto_drops_dominated_points_and_lossless():
    r, p = pareto([10, 12, 20, 30, 40], [20, 19, 25, 24, math.inf])
    assert list(r) == [10, 20] and list(p) == [20, 25]


def test_rate_at_psnr_interpolates_in_log_rate():
    assert rate_at_psnr(RATES, PSNRS, 23.0) == pytest.approx(16.0)
    assert rate_at_psnr([10, 40], [20, 30], 25.0) == pytest.approx(20.0)  # geometric midpoint
    assert rate_at_psnr(RATES, PSNRS, 19.0) is None and rate_at_psnr(RATES, PSNRS, 33.0) is None
    assert psnr(mse(np.zeros((1, 2, 2), np.uint8), np.full((1, 2, 2), 255, np.uint8))) == 0.0


# --- PCHIP BD-rate (2-3 point curves) --------------------------------------------


@pytest.mark.parametrize("factor", [0.5, 0.8, 1.3])
@pytest.mark.parametrize("n", [2, 3, 5])
def test_pchip_bd_rate_of_a_scaled_curve_is_the_scale(factor, n):
    assert bd_rate_pchip(RATES[:n], PSNRS[:n], RATES[:n] * factor, PSNRS[:n]) == pytest.approx(
        (factor - 1) * 100, abs=1e-9
    )


def test_pchip_bd_rate_on_straight_lines_and_partial_overlap():
    # ln R linear in PSNR: PCHIP reproduces a line exactly, whatever the point spacing
    pa, pt = np.array([20.0, 21.0, 30.0]), np.array([24.0, 27.0, 34.0])
    ra, rt = np.exp(0.1 * pa), np.exp(0.1 * pt - 0.05 * (pt - 25))
    assert bd_rate_pchip(ra, pa, rt, pt) == pytest.approx((math.exp(-0.1) - 1) * 100, abs=1e-9)


def test_pchip_integral_by_hand():
    # y = x^2 at 0, 1, 2: Fritsch-Carlson slopes 0, 1.5, 4 (worked out by hand); pieces
    # 1.5 t^2 - 0.5 t^3 on [0, 1] and 1 + 1.5 t + 2 t^2 - 0.5 t^3 on [1, 2]
    assert pchip_integral([0, 1, 2], [0, 1, 4], 0, 1) == pytest.approx(0.375)
    assert pchip_integral([0, 1, 2], [0, 1, 4], 0, 2) == pytest.approx(8 / 3)
    assert pchip_integral([0, 1, 2], [0, 1, 4], 0.5, 1.5) == pytest.approx(
        (1.5 / 3 - 0.5 / 4) - (1.5 / 3 * 0.125 - 0.5 / 4 * 0.0625) + (0.5 + 1.5 / 8 + 2 / 24 - 0.5 / 64)
    )


def test_pchip_bd_rate_refuses_one_point_or_no_overlap():
    with pytest.raises(ValueError, match=">= 2 points"):
        bd_rate_pchip(RATES, PSNRS, [14.7], [23.5])
    with pytest.raises(ValueError, match="do not overlap"):
        bd_rate_pchip(RATES, PSNRS, RATES, PSNRS + 50)
