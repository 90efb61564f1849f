"""The figures aec reports, one definition for `aec bench`, training, the benchmarks and the tests.

- MSE on the [0, 1] pixel scale, in float64; PSNR in dB from it (peak 1).
- BD-rate: the average rate difference of two rate-distortion curves at equal PSNR.

BD-rate is written here rather than taken from PyPI's `bjontegaard` (1.3.0, read before
deciding): that package needs SciPy (not otherwise a dependency here) and matplotlib at
import time, by default demands equal point counts for both curves, and its interpolators
are Akima/PCHIP/cubic splines. `bd_rate` is the classic VCEG-M33 calculation (cubic
polynomial fit of log-rate as a function of PSNR, integrated over the PSNR range both
curves cover), numpy only, which is what CompressAI and most learned-compression papers
report; `bd_rate_pchip` is the modern variant that needs only two points per curve.

Rates are bytes per image (any positive unit: BD-rate is a ratio). Curves are reduced to
their Pareto front first (a point that another point of the same curve beats on both rate
and PSNR is not part of the curve).
"""

from __future__ import annotations

import math

import numpy as np


def mse(original: np.ndarray, decoded: np.ndarray) -> float:
    """Mean squared error on the [0, 1] scale, over every pixel of every image."""
    diff = original.astype(np.float64) / 255 - decoded.astype(np.float64) / 255
    return float(np.mean(diff**2))


def psnr(mse_value: float) -> float:
    """PSNR in dB of an MSE on the [0, 1] scale; inf for 0 (lossless)."""
    return 10 * math.log10(1 / mse_value) if mse_value > 0 else float("inf")


def image_psnrs(original: np.ndarray, decoded: np.ndarray) -> np.ndarray:
    """Each image's PSNR in dB (uint8 [n, H, W] pairs), float64 [n]; inf where an image is exact."""
    diff = original.astype(np.int32) - decoded.astype(np.int32)
    squared = np.einsum("nhw,nhw->n", diff, diff).astype(np.float64) / (255.0**2 * diff[0].size if len(diff) else 1)
    with np.errstate(divide="ignore"):
        return np.where(squared > 0, -10 * np.log10(np.where(squared > 0, squared, 1)), np.inf)


# --- BD-rate, VCEG-M33 (cubic polynomial) --------------------------------------

MIN_POINTS = 4  # a cubic fit needs at least four points


def pareto(rates, psnrs) -> tuple[np.ndarray, np.ndarray]:
    """The points no other point beats on both axes (fewer or equal bytes and higher PSNR), by rising rate."""
    rates, psnrs = np.asarray(rates, float), np.asarray(psnrs, float)
    keep = np.isfinite(rates) & np.isfinite(psnrs) & (rates > 0)
    rates, psnrs = rates[keep], psnrs[keep]
    order = np.lexsort((-psnrs, rates))
    front_r, front_p, best = [], [], -math.inf
    for r, p in zip(rates[order], psnrs[order]):
        if p > best:
            front_r.append(r)
            front_p.append(p)
            best = p
    return np.array(front_r), np.array(front_p)


def _fronts(rates_anchor, psnrs_anchor, rates_test, psnrs_test, min_points: int):
    """((rates, psnrs) of each curve's Pareto front, and the PSNR range both cover); ValueError when a front
    has fewer than `min_points` points or the ranges do not overlap."""
    ra, pa = pareto(rates_anchor, psnrs_anchor)
    rt, pt = pareto(rates_test, psnrs_test)
    if len(ra) < min_points or len(rt) < min_points:
        raise ValueError(
            f"BD-rate needs >= {min_points} points per curve (have {len(ra)} and {len(rt)} on the Pareto fronts)"
        )
    low, high = max(pa.min(), pt.min()), min(pa.max(), pt.max())
    if low >= high:
        raise ValueError(
            f"PSNR ranges do not overlap ({pa.min():.2f}-{pa.max():.2f} vs {pt.min():.2f}-{pt.max():.2f} dB)"
        )
    return (ra, pa), (rt, pt), low, high


def bd_rate(rates_anchor, psnrs_anchor, rates_test, psnrs_test) -> float:
    """Average rate difference of test against anchor at equal PSNR, in percent (negative: test needs fewer bytes).

    Raises ValueError when a curve has fewer than MIN_POINTS Pareto points or the PSNR ranges do not overlap.
    """
    (ra, pa), (rt, pt), low, high = _fronts(rates_anchor, psnrs_anchor, rates_test, psnrs_test, MIN_POINTS)
    fit_a = np.polyint(np.polyfit(pa, np.log(ra), 3))
    fit_t = np.polyint(np.polyfit(pt, np.log(rt), 3))
    mean_a = (np.polyval(fit_a, high) - np.polyval(fit_a, low)) / (high - low)
    mean_t = (np.polyval(fit_t, high) - np.polyval(fit_t, low)) / (high - low)
    return float((math.exp(mean_t - mean_a) - 1) * 100)


def rate_at_psnr(rates, psnrs, target: float) -> float | None:
    """The rate a curve needs for `target` dB, interpolated linearly in log-rate between its Pareto points;
    None when the target lies outside the PSNR range the curve covers."""
    r, p = pareto(rates, psnrs)
    if len(r) == 0 or not (p.min() <= target <= p.max()):
        return None
    return float(np.exp(np.interp(target, p, np.log(r))))


# --- Piecewise-cubic (PCHIP) BD-rate, for curves of 2-3 points -------------------
#
# The modern Bjøntegaard variant (VCEG-AL22 / JVET's CTC spreadsheet) interpolates
# ln(rate) against PSNR with a shape-preserving piecewise cubic (PCHIP, Fritsch-Carlson
# derivatives) instead of one cubic polynomial, and integrates it exactly. It needs only
# two points per curve (two points: a straight line in log-rate), which is what a few
# quality levels or a three-lambda baseline give. SciPy's PchipInterpolator would do, but
# SciPy is not a dependency here, so the ~30 lines are below, following SciPy's derivative rules.

PCHIP_MIN_POINTS = 2


def _pchip_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    h = np.diff(x)
    s = np.diff(y) / h
    if len(x) == 2:
        return np.array([s[0], s[0]])
    d = np.zeros_like(y)
    for k in range(1, len(x) - 1):  # weighted harmonic mean where the slopes agree in sign, else a flat spot
        if s[k - 1] * s[k] > 0:
            w1, w2 = 2 * h[k] + h[k - 1], h[k] + 2 * h[k - 1]
            d[k] = (w1 + w2) / (w1 / s[k - 1] + w2 / s[k])

    def end(h0, h1, s0, s1):  # one-sided three-point estimate, kept shape-preserving
        e = ((2 * h0 + h1) * s0 - h0 * s1) / (h0 + h1)
        if np.sign(e) != np.sign(s0):
            return 0.0
        if np.sign(s0) != np.sign(s1) and abs(e) > 3 * abs(s0):
            return 3 * s0
        return e

    d[0] = end(h[0], h[1], s[0], s[1])
    d[-1] = end(h[-1], h[-2], s[-1], s[-2])
    return d


def pchip_integral(x, y, low: float, high: float) -> float:
    """Exact integral over [low, high] (inside [x[0], x[-1]]) of the PCHIP interpolant through (x, y), x rising."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    d = _pchip_slopes(x, y)
    total = 0.0
    for k in range(len(x) - 1):
        a, b = max(low, x[k]), min(high, x[k + 1])
        if a >= b:
            continue
        h = x[k + 1] - x[k]
        s = (y[k + 1] - y[k]) / h
        c2, c3 = (3 * s - 2 * d[k] - d[k + 1]) / h, (d[k] + d[k + 1] - 2 * s) / h**2  # y[k] + d t + c2 t^2 + c3 t^3

        def antiderivative(t):
            return y[k] * t + d[k] * t**2 / 2 + c2 * t**3 / 3 + c3 * t**4 / 4

        total += antiderivative(b - x[k]) - antiderivative(a - x[k])
    return total


def bd_rate_pchip(rates_anchor, psnrs_anchor, rates_test, psnrs_test) -> float:
    """As bd_rate, with ln(rate) interpolated by PCHIP over PSNR: computable from 2 Pareto points per curve.

    Raises ValueError when a curve has fewer than PCHIP_MIN_POINTS Pareto points or the PSNR ranges do not overlap.
    """
    (ra, pa), (rt, pt), low, high = _fronts(rates_anchor, psnrs_anchor, rates_test, psnrs_test, PCHIP_MIN_POINTS)
    # Pareto fronts rise in rate and PSNR together, so PSNR is strictly increasing: a valid abscissa
    mean_a = pchip_integral(pa, np.log(ra), low, high) / (high - low)
    mean_t = pchip_integral(pt, np.log(rt), low, high) / (high - low)
    return float((math.exp(mean_t - mean_a) - 1) * 100)
