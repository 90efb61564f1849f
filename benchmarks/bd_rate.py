"""Comparing rate-distortion curves: Bjøntegaard delta rate, and the rate one curve needs for a given PSNR.

Written here rather than taken from PyPI's `bjontegaard` (1.3.0, read before
deciding): that package needs SciPy (not otherwise a dependency here) and
matplotlib at import time, by default demands equal point counts for both
curves, and its interpolators are Akima/PCHIP/cubic splines; the ~20 lines
below are the classic VCEG-M33 calculation (cubic polynomial fit of log-rate
as a function of PSNR, integrated over the PSNR range both curves cover),
numpy only, which is what CompressAI and most learned-compression papers report.

Rates are bytes per image (any positive unit: BD-rate is a ratio). Curves
are reduced to their Pareto front first (a point that another point of the
same curve beats on both rate and PSNR is not part of the curve).
"""

from __future__ import annotations

import math

import numpy as np

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


def bd_rate(rates_anchor, psnrs_anchor, rates_test, psnrs_test) -> float:
    """Average rate difference of test against anchor at equal PSNR, in percent (negative: test needs fewer bytes).

    Raises ValueError when a curve has fewer than MIN_POINTS Pareto points or the PSNR ranges do not overlap.
    """
    ra, pa = pareto(rates_anchor, psnrs_anchor)
    rt, pt = pareto(rates_test, psnrs_test)
    if len(ra) < MIN_POINTS or len(rt) < MIN_POINTS:
        raise ValueError(f"BD-rate needs >= {MIN_POINTS} points per curve (have {len(ra)} and {len(rt)} on the Pareto fronts)")
    low, high = max(pa.min(), pt.min()), min(pa.max(), pt.max())
    if low >= high:
        raise ValueError(f"PSNR ranges do not overlap ({pa.min():.2f}-{pa.max():.2f} vs {pt.min():.2f}-{pt.max():.2f} dB)")
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
