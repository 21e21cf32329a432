"""Goodness-of-fit statistics of a fitted distribution, and their p-values.

Kolmogorov-Smirnov ``D`` (reported as ``D``; compared as ``sqrt(n) D``) and Anderson-Darling
``A^2`` for continuous families; chi-square ``X^2`` for every family (continuous: equiprobable
bins under the fitted distribution, ``clip(2 n^0.4, 5, 50)`` of them and at least 5 expected
values per bin; discrete: one bin per value, neighbours merged until each expects at least 5).

With parameters estimated from the same data the textbook p-values are wrong (KS and AD's far
too large), so every p-value is a parametric bootstrap: draw ``replicates`` samples of size
``m = min(n, BOOTSTRAP_SIZE)`` from the fitted distribution (through the engine's own
sampler, as a model with the candidate's formula would draw), refit the family to each, and
count how often the replicate's statistic reaches the observed one. ``sqrt(n) D``, ``A^2``
and ``X^2`` with a fixed number of bins converge in distribution as n grows, so replicates of
size m stand for size n; this bounds the work at ``replicates × m`` values per family
whatever n. The bootstrap draws from one seeded generator: same data, same p-values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from services.engine import sampling

from .families import Candidate, Frozen, Params, Unfit

__all__ = ["BOOTSTRAP_SIZE", "Statistics", "bootstrap", "observe"]

BOOTSTRAP_SIZE = 1000
_MAX_BINS = 1_000_000  # widest range of counts binned value by value
_EDGE = 1e-300  # keeps log F and log(1 - F) finite in the Anderson-Darling sum


@dataclass(frozen=True)
class Statistics:
    """Statistics of one sample against one fitted distribution; None where not defined."""

    ks: float | None  # sqrt(n) D: what the bootstrap compares
    ad: float | None
    chi_square: float | None
    chi_square_bins: int

    def vector(self) -> np.ndarray:
        return np.array([np.nan if v is None else v for v in (self.ks, self.ad, self.chi_square)])


def _continuous_bins(n: int) -> int:
    return int(min(max(round(2.0 * n**0.4), 5), 50, n // 5))


def _continuous(x: np.ndarray, dist: Frozen, bins: int) -> Statistics:
    n = len(x)
    f = np.clip(dist.cdf(x), 0.0, 1.0)
    i = np.arange(1, n + 1)
    d = max(float(np.max(i / n - f)), float(np.max(f - (i - 1) / n)))
    lo, hi = np.log(np.maximum(f, _EDGE)), np.log(np.maximum(1.0 - f[::-1], _EDGE))
    ad = -n - float(np.dot(2 * i - 1, lo + hi)) / n
    chi = None
    if bins >= 2:
        observed = np.bincount(np.minimum((f * bins).astype(np.int64), bins - 1), minlength=bins)
        expected = n / bins
        chi = float(np.sum((observed - expected) ** 2) / expected)
    return Statistics(math.sqrt(n) * d, ad, chi, bins)


def _discrete(x: np.ndarray, dist: Frozen) -> Statistics:
    """One bin per value from the fitted distribution's 1e-9 quantile to its 1 - 1e-9 one
    (and the data's extremes), the tails folded into the end bins, merged to 5 expected."""
    n = len(x)
    if x[-1] - x[0] > _MAX_BINS:
        return Statistics(None, None, None, 0)
    lo = min(float(x[0]), float(dist.ppf(1e-9)))
    hi = max(float(x[-1]), float(dist.ppf(1.0 - 1e-9)))
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi - lo > _MAX_BINS:
        return Statistics(None, None, None, 0)
    support = np.arange(lo, hi + 1.0)
    expected = n * dist.pmf(support)
    expected[0] += n * dist.cdf(lo - 1.0)
    expected[-1] += n * dist.sf(hi)
    observed = np.bincount((x - lo).astype(np.int64), minlength=len(support)).astype(np.float64)
    merged_o, merged_e, o, e = [], [], 0.0, 0.0
    for ob, ex in zip(observed, expected, strict=True):
        o, e = o + ob, e + ex
        if e >= 5.0:
            merged_o.append(o)
            merged_e.append(e)
            o, e = 0.0, 0.0
    if merged_e and e > 0.0:
        merged_o[-1] += o
        merged_e[-1] += e
    if len(merged_e) < 2:
        return Statistics(None, None, None, len(merged_e))
    eo, ee = np.array(merged_o), np.array(merged_e)
    return Statistics(None, None, float(np.sum((eo - ee) ** 2 / ee)), len(ee))


def observe(candidate: Candidate, x: np.ndarray, params: Params, bins: int = 0) -> Statistics:
    """The statistics of the sorted sample ``x`` against ``candidate`` with ``params``."""
    dist = candidate.scipy(*params)
    if candidate.discrete:
        return _discrete(x, dist)
    return _continuous(x, dist, bins or _continuous_bins(len(x)))


def bootstrap(
    candidate: Candidate,
    n: int,
    params: Params,
    observed: Statistics,
    replicates: int,
    seed: int,
) -> tuple[list[float | None], int]:
    """Bootstrap p-values of (KS, AD, chi-square) and the number of replicates that counted.

    A replicate whose refit fails (no estimate for that sample) is left out of the count.
    """
    if replicates <= 0:
        return [None, None, None], 0
    rng = np.random.default_rng(seed)
    size = min(n, BOOTSTRAP_SIZE)
    target = observed.vector()
    reached = np.zeros(3)
    used = 0
    for _ in range(replicates):
        sample = np.sort(sampling.sample(candidate.name, rng.random(size), params))
        try:
            if sample[0] == sample[-1] or not np.all(np.isfinite(sample)):
                raise Unfit("a constant or unbounded replicate")
            refit = candidate.fit(sample)
        except (Unfit, ValueError, ArithmeticError, RuntimeError):
            continue
        stats = observe(candidate, sample, refit, observed.chi_square_bins).vector()
        reached += np.nan_to_num(stats >= target * (1.0 - 1e-12), nan=0.0)
        used += 1
    p = [
        None if math.isnan(t) or used == 0 else float((1.0 + r) / (used + 1.0))
        for t, r in zip(target, reached, strict=True)
    ]
    return p, used
