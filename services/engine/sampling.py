"""Uniforms → distribution values by inverse CDF, with truncation and Latin Hypercube strata.

Every distribution is its quantile function applied to the trial's own uniform, so a draw
depends only on (seed, stream, trial). Parameters broadcast: each is a float or a float64
array of the chunk's shape; trials whose parameters are outside the domain give NaN.
Parameters are in @RISK order (see ``ir.Sample``); ``discrete`` and ``cumul`` take their
value/probability lists as ``ir.Table``.

Truncation (``RiskTruncate(lo, hi)``) maps ``u`` into ``[F(lo), F(hi)]`` before the
quantile (``F(lo)`` is ``P(X < lo)`` for discrete distributions) and clips the result to
``[lo, hi]`` against rounding.

Latin Hypercube (``sampling="lhs"``): trials are grouped in blocks of ``LHS_BLOCK`` aligned
to trial indices (block ``b`` holds trials ``[b*LHS_BLOCK, (b+1)*LHS_BLOCK)``). Within a
block, trial ``t`` gets stratum ``s(t)`` = the rank of its key among the block's keys, the
key being ``raw(seed, stream, t, domain=1)`` with its low 16 bits replaced by ``t``'s index
in the block (so keys are unique and any sort agrees), and its uniform is built from
the 52-bit integer ``(s(t) << 36) | (x >> 28)``, ``x`` its ordinary domain-0 word, converted
like any other (``(k + 0.5) * 2**-52``). So each stratum ``[s/2**16, (s+1)/2**16)`` holds
exactly one trial of each full block, and any chunking gives the same bits.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special, stats

from . import rng
from .ir import Table

__all__ = [
    "DISTRIBUTIONS",
    "KNOTS",
    "LHS_BLOCK",
    "W_EDGE",
    "W_STEP",
    "discrete_tables",
    "lhs_uniforms",
    "quantile_table",
    "sample",
    "tabulated",
    "trigen_bounds",
    "truncation_cdfs",
]

LHS_BLOCK = 1 << 16
_LHS_SHIFT = np.uint64(36)  # 52 bits = 16 stratum bits + 36 bits of jitter
_BLOCK_INDEX = np.arange(LHS_BLOCK, dtype=np.uint64)
_KEY_MASK = ~np.uint64(0xFFFF)
_TABLE_LIMIT = 1 << 20  # largest support tabulated for discrete quantiles

Param = float | np.ndarray


@dataclass(frozen=True)
class _Dist:
    ppf: Callable[..., Any]
    cdf: Callable[..., Any]
    valid: Callable[..., Any]
    discrete: bool = False


def _affine(x: np.ndarray, scale: Param, shift: Param) -> np.ndarray:
    """``shift + scale * x``, in place in ``x`` (a fresh array owned by the caller)."""
    x *= scale
    x += shift
    return x


def _triang_ppf(u: np.ndarray, a: Param, c: Param, b: Param) -> np.ndarray:
    """``a + sqrt(u (b-a)(c-a))`` below the mode's quantile, ``b - sqrt((1-u)(b-a)(b-c))``
    above it."""
    width = b - a
    if isinstance(u, np.ndarray) and np.ndim(a) == np.ndim(c) == np.ndim(b) == 0:
        return _triang_ppf_constant(u, float(a), float(c), float(b))
    below = u < (c - a) / width
    t = np.where(below, u * (width * (c - a)), (1.0 - u) * (width * (b - c)))
    np.sqrt(t, out=t)
    return np.where(below, a + t, b - t)


def _triang_ppf_constant(u: np.ndarray, a: float, c: float, b: float) -> np.ndarray:
    """The same bits as the general form, in place, without ``np.where``: its unpredictable
    branch per element costs more than the square root (measured 3x the whole transform)."""
    width = b - a
    above = np.greater_equal(u, (c - a) / width).view(np.uint8)
    sign = above.astype(np.float64)
    u -= sign  # u - 1 above the mode, whose magnitude is 1 - u exactly
    np.abs(u, out=u)
    u *= np.take(np.array([width * (c - a), width * (b - c)]), above)
    np.sqrt(u, out=u)
    sign *= -2.0
    sign += 1.0  # +1 below the mode, -1 above: a + t or b + (-t), both exact as before
    u *= sign
    u += np.take(np.array([a, b]), above)
    return u


def _triang_cdf(x: Param, a: Param, c: Param, b: Param) -> Param:
    width = b - a
    left = (x - a) ** 2 / (width * (c - a))
    right = 1.0 - (b - x) ** 2 / (width * (b - c))
    return np.clip(np.where(x <= c, left, right), 0.0, 1.0)


def trigen_bounds(lo: Param, c: Param, hi: Param, plo: Param, phi: Param) -> tuple[Param, Param]:
    """Min and max of the triangle whose ``plo``/``phi`` percentiles are ``lo``/``hi``.

    With width ``w = max - min``, ``lo - min`` and ``max - hi`` are closed-form functions of
    ``w``; ``w = (hi - lo) + (lo - min) + (max - hi)`` has one root, found by bisection.
    """
    p, q = plo / 100.0, 1.0 - phi / 100.0

    def gaps(w: Param) -> tuple[Param, Param]:
        below = 0.5 * (p * w + np.sqrt((p * w) ** 2 + 4.0 * p * w * (c - lo)))
        above = 0.5 * (q * w + np.sqrt((q * w) ** 2 + 4.0 * q * w * (hi - c)))
        return below, above

    def excess(w: Param) -> Param:
        below, above = gaps(w)
        return (hi - lo) + below + above - w

    low = np.asarray(hi - lo, dtype=np.float64)
    high = np.maximum(low, 1e-300) * 2.0
    for _ in range(2100):  # double until the root is bracketed (w ≤ 2**2100 · range)
        grow = excess(high) > 0
        if not np.any(grow):
            break
        high = np.where(grow, high * 2.0, high)
    for _ in range(200):  # bisection to the last bit
        mid = 0.5 * (low + high)
        if np.all((mid == low) | (mid == high)):
            break
        positive = excess(mid) > 0
        low, high = np.where(positive, mid, low), np.where(positive, high, mid)
    below, above = gaps(high)
    return lo - below, hi + above


def _trigen(fn: Callable[..., Param]) -> Callable[..., Param]:
    def apply(x: Param, lo: Param, c: Param, hi: Param, plo: Param, phi: Param) -> Param:
        a, b = trigen_bounds(lo, c, hi, plo, phi)
        return fn(x, a, c, b)

    return apply


# Gamma and beta quantiles (scipy's gammaincinv/betaincinv) cost microseconds per value.
# With constant parameters they are tabulated once: exact values at knots equally spaced
# in w = logit(u) over the whole range of uniforms (|w| <= 53 ln 2), then a quintic Hermite
# interpolation in w of y = log(q) (gamma) or y = logit(q) (beta) from the knots' values and
# their exact first and second derivatives. Power-law tails become straight lines in those
# coordinates; measured against SciPy over (0, 1), tails included (tests/engine/
# test_sampling.py), the relative error of q is below 1e-12 for shapes down to 0.1 (beta)
# and 0.05 (gamma) wherever q is a normal double. Random parameters use SciPy directly.
# The native back end evaluates the very same table (``quantile_table``).
W_EDGE = 53 * math.log(2.0)
W_STEP = 1.0 / 128.0
KNOTS = math.ceil(2 * W_EDGE / W_STEP) + 1
_QUINTIC = np.array(  # rows: a3, a4, a5 from (rise, m0, m1, k0, k1), all in cell units
    [[10.0, -6.0, -4.0, -1.5, 0.5], [-15.0, 8.0, 7.0, 1.5, -1.0], [6.0, -3.0, -3.0, -0.5, 0.5]]
)


@functools.lru_cache(maxsize=256)
def quantile_table(kind: str, params: tuple[float, ...]) -> np.ndarray | None:
    """Coefficients ``a0 .. a5`` (rows) of ``y(w)`` on each of the ``KNOTS - 1`` cells.

    ``kind`` is ``"gamma"`` (``params = (alpha,)``, ``y = log q``) or ``"beta"``
    (``(alpha1, alpha2)``, ``y = logit q``). None when a knot is not finite (extreme
    shapes whose quantiles underflow): SciPy then.

    Knot quantiles come from the nearer tail (``u = expit(w)`` below the median,
    ``1 - u = expit(-w)`` above), so neither tail is limited by the rounding of ``u``.
    ``y' = dy/dw`` is computed through its logarithm, to avoid overflow; ``y'' = y' g'``
    with ``g = log y'``: ``g' = (1 - 2u) - y' (a - q)`` (gamma), ``(1 - 2u) - y' (a1 (1 - q)
    - a2 q)`` (beta).
    """
    w = -W_EDGE + W_STEP * np.arange(KNOTS)
    p, pc = special.expit(w), special.expit(-w)
    lower = w <= 0
    with np.errstate(all="ignore"):
        if kind == "gamma":
            (a,) = params
            q = np.where(lower, special.gammaincinv(a, p), special.gammainccinv(a, pc))
            y = np.log(q)
            slope = np.exp(np.log(p * pc) - a * y + q + special.gammaln(a))
            bend = (pc - p) - slope * (a - q)
        else:
            a1, a2 = params
            q = special.betaincinv(a1, a2, p)
            c = special.betaincinv(a2, a1, pc)  # 1 - q, accurate near 1
            log_q = np.where(lower, np.log(q), np.log1p(-c))
            log_c = np.where(lower, np.log1p(-q), np.log(c))
            y = log_q - log_c
            slope = np.exp(np.log(p * pc) - a1 * log_q - a2 * log_c + special.betaln(a1, a2))
            bend = (pc - p) - slope * (a1 * np.exp(log_c) - a2 * np.exp(log_q))
        m = slope * W_STEP
        k = slope * bend * W_STEP**2
    if not all(np.all(np.isfinite(v)) for v in (y, m, k)):
        return None
    terms = np.stack([np.diff(y), m[:-1], m[1:], k[:-1], k[1:]])
    return np.ascontiguousarray(np.vstack([y[:-1], m[:-1], 0.5 * k[:-1], _QUINTIC @ terms]))


def _interpolate(u: np.ndarray, table: np.ndarray) -> np.ndarray:
    """The tabulated ``y`` at ``u``: cell ``j`` and offset ``s`` of ``logit(u)``, Horner."""
    t = 1.0 - u
    np.divide(u, t, out=t)
    np.log(t, out=t)
    t += W_EDGE
    t *= 1.0 / W_STEP
    j = t.astype(np.intp)
    np.clip(j, 0, KNOTS - 2, out=j)
    s = t
    s -= j
    x = np.take(table[5], j)
    for row in table[4::-1]:
        x *= s
        x += np.take(row, j)
    return x


def _gamma_quantile(u: np.ndarray, a: Param) -> np.ndarray:
    table = None if np.ndim(a) else quantile_table("gamma", (float(a),))
    if table is None:
        exact: np.ndarray = special.gammaincinv(a, u)
        return exact
    y = _interpolate(u, table)
    q: np.ndarray = np.exp(y, out=y)
    return q


def _beta_quantile(u: np.ndarray, a1: Param, a2: Param) -> np.ndarray:
    table = None if np.ndim(a1) or np.ndim(a2) else quantile_table("beta", (float(a1), float(a2)))
    if table is None:
        exact: np.ndarray = special.betaincinv(a1, a2, u)
        return exact
    y = _interpolate(u, table)
    q: np.ndarray = special.expit(y, out=y)
    return q


def _pert_shape(a: Param, c: Param, b: Param) -> tuple[Param, Param]:
    width = b - a
    return 1.0 + 4.0 * (c - a) / width, 1.0 + 4.0 * (b - c) / width


def _pert_ppf(u: np.ndarray, a: Param, c: Param, b: Param) -> np.ndarray:
    a1, a2 = _pert_shape(a, c, b)
    return a + (b - a) * _beta_quantile(u, a1, a2)


def _pert_cdf(x: Param, a: Param, c: Param, b: Param) -> Param:
    a1, a2 = _pert_shape(a, c, b)
    p: Param = special.betainc(a1, a2, np.clip((x - a) / (b - a), 0.0, 1.0))
    return p


def _lognorm_moments(mean: Param, sd: Param) -> tuple[Param, Param]:
    sigma2 = np.log1p((sd / mean) ** 2)
    return np.log(mean) - 0.5 * sigma2, np.sqrt(sigma2)


def _lognorm_ppf(u: np.ndarray, mean: Param, sd: Param) -> np.ndarray:
    mu, sigma = _lognorm_moments(mean, sd)
    x: np.ndarray = np.exp(mu + sigma * special.ndtri(u))
    return x


def _lognorm_cdf(x: Param, mean: Param, sd: Param) -> Param:
    mu, sigma = _lognorm_moments(mean, sd)
    p: Param = special.ndtr((np.log(np.maximum(x, 0.0)) - mu) / sigma)
    return p


def discrete_tables(values: Table, probs: Table) -> tuple[np.ndarray, np.ndarray]:
    """Values sorted ascending and their normalised cumulative probabilities."""
    x = np.asarray(values.values, dtype=np.float64)
    p = np.asarray(probs.values, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    cum = np.cumsum(p[order])
    return x[order], cum / cum[-1]


def _discrete_ppf(u: np.ndarray, values: Table, probs: Table) -> np.ndarray:
    x, cum = discrete_tables(values, probs)
    return x[np.minimum(np.searchsorted(cum, u, side="left"), len(x) - 1)]


def _discrete_cdf(x: Param, values: Table, probs: Table) -> Param:
    xs, cum = discrete_tables(values, probs)
    idx = np.searchsorted(xs, x, side="right")
    return np.where(idx > 0, cum[np.maximum(idx - 1, 0)], 0.0)


def tabulated(distribution: str, params: tuple[float | Table, ...]) -> np.ndarray | None:
    """The table this sampler reads the quantiles of ``distribution`` from, for these
    constant parameters, or None where it computes them otherwise.

    ``gamma``, ``beta``, ``pert`` and ``betageneral``: :func:`quantile_table` (its rows
    ``a0 .. a5``); ``binomial`` and ``poisson``: the CDF at 0, 1, ... (searched).
    """
    if not all(isinstance(p, float) for p in params):
        return None
    p = tuple(float(v) for v in params)  # type: ignore[arg-type]
    with np.errstate(all="ignore"):
        if distribution == "gamma":
            return quantile_table("gamma", p[:1])
        if distribution in ("beta", "betageneral"):
            return quantile_table("beta", p[:2])
        if distribution == "pert":
            a1, a2 = _pert_shape(*p)
            return quantile_table("beta", (float(a1), float(a2)))
        if distribution in _COUNTING:
            return _counting_table(_COUNTING[distribution], p)
    return None


@functools.lru_cache(maxsize=256)
def _counting_table(dist: stats.rv_discrete, params: tuple[float, ...]) -> np.ndarray | None:
    """CDF at 0, 1, ... up to the quantile of the largest uniform; None if too long."""
    top = dist.ppf(1.0 - 2.0**-53, *params)
    if not (np.isfinite(top) and top < _TABLE_LIMIT):
        return None
    return np.asarray(dist.cdf(np.arange(int(top) + 1), *params), dtype=np.float64)


# Counts with a variance beyond APPROX_VARIANCE (Poisson means, binomial n p (1 - p) above
# about a million) are drawn from the normal approximation with the Cornish-Fisher skewness
# term and a continuity correction, ceil(mean + sd (z + skew (z^2 - 1) / 6) - 1/2): exact
# quantiles would need a CDF table of millions of entries or seconds of root finding per
# draw, and the approximation's error (of order 1 / variance in the CDF) is far below what
# any run of trials can detect. The native back end computes the very same expression.
APPROX_VARIANCE = 2.0**20


def _cornish_fisher(u: np.ndarray, mean: Param, sd: Param, skew: Param, top: Param) -> Param:
    z = special.ndtri(u)
    x: Param = np.clip(np.ceil(mean + sd * (z + skew * (z * z - 1.0) / 6.0) - 0.5), 0.0, top)
    return x


def _poisson_moments(lam: Param) -> tuple[Param, Param, Param, Param, Param]:
    """(variance, mean, sd, skewness, largest value)."""
    sd = np.sqrt(lam)
    return lam, lam, sd, 1.0 / sd, np.inf


def _binomial_moments(n: Param, p: Param) -> tuple[Param, Param, Param, Param, Param]:
    var = n * p * (1.0 - p)
    sd = np.sqrt(var)
    return var, n * p, sd, (1.0 - 2.0 * p) / sd, n


def _counting_ppf(
    dist: stats.rv_discrete, moments: Callable[..., tuple[Param, ...]]
) -> Callable[..., np.ndarray]:
    """Quantile of a counting distribution: a CDF table searched when parameters are constant
    (and the table short), the normal approximation for huge variances, else SciPy."""

    def ppf(u: np.ndarray, *params: Param) -> np.ndarray:
        if all(np.ndim(p) == 0 for p in params):
            with np.errstate(all="ignore"):
                cum = _counting_table(dist, tuple(float(p) for p in params))
            if cum is not None:
                idx = np.searchsorted(cum, u, side="left")
                return np.minimum(idx, len(cum) - 1).astype(np.float64)
        u, *full = np.broadcast_arrays(u, *params)
        var, *shape = moments(*full)
        approx = var > APPROX_VARIANCE
        out = np.asarray(_cornish_fisher(u, *shape), dtype=np.float64)
        exact = ~approx
        if np.any(exact):
            out[exact] = dist.ppf(u[exact], *(p[exact] for p in full))
        return out

    return ppf


_COUNTING = {"binomial": stats.binom, "poisson": stats.poisson}


def _cumul_ppf(u: np.ndarray, lo: Param, hi: Param, xs: Table, ps: Table) -> np.ndarray:
    inner_x = np.asarray(xs.values, dtype=np.float64)
    grid = np.concatenate(([0.0], np.asarray(ps.values, dtype=np.float64), [1.0]))
    seg = np.clip(np.searchsorted(grid, u, side="left"), 1, len(grid) - 1)
    k = len(inner_x)
    x0 = np.where(seg == 1, lo, inner_x[np.clip(seg - 2, 0, max(k - 1, 0))] if k else lo)
    x1 = np.where(seg == k + 1, hi, inner_x[np.clip(seg - 1, 0, max(k - 1, 0))] if k else hi)
    p0, p1 = grid[seg - 1], grid[seg]
    x: np.ndarray = x0 + (u - p0) / (p1 - p0) * (x1 - x0)
    return x


def _cumul_cdf(x: Param, lo: Param, hi: Param, xs: Table, ps: Table) -> Param:
    inner = np.asarray(xs.values, dtype=np.float64)
    grid = np.concatenate(([0.0], np.asarray(ps.values, dtype=np.float64), [1.0]))
    k = len(inner)
    seg = np.searchsorted(inner, x, side="right")
    x0 = np.where(seg == 0, lo, inner[np.clip(seg - 1, 0, max(k - 1, 0))] if k else lo)
    x1 = np.where(seg == k, hi, inner[np.clip(seg, 0, max(k - 1, 0))] if k else hi)
    p = grid[seg] + (x - x0) / (x1 - x0) * (grid[seg + 1] - grid[seg])
    return np.where(x <= lo, 0.0, np.where(x >= hi, 1.0, np.clip(p, 0.0, 1.0)))


def _cumul_valid(lo: Param, hi: Param, xs: Table, ps: Table) -> Param:
    inner = np.asarray(xs.values, dtype=np.float64)
    ok_inner = bool(len(inner) == len(ps.values) and np.all(np.diff(inner) >= 0))
    first = inner[0] if len(inner) else hi
    last = inner[-1] if len(inner) else lo
    return ok_inner & (lo < hi) & (lo <= first) & (last <= hi)


def _resample_ppf(u: np.ndarray, method: Param, xs: Table) -> np.ndarray:
    """RiskResample's methods 1 and 3: the number at position ``floor(u n)`` of the data, in
    the data's order (their uniforms encode the position, see :mod:`.resample`)."""
    x = np.asarray(xs.values, dtype=np.float64)
    return x[np.minimum((u * len(x)).astype(np.intp), len(x) - 1)]


def _resample_cdf(v: Param, method: Param, xs: Table) -> Param:
    x = np.sort(np.asarray(xs.values, dtype=np.float64))
    return np.searchsorted(x, v, side="right") / len(x)


def _weibull_ppf(u: np.ndarray, alpha: Param, beta: Param) -> np.ndarray:
    x: np.ndarray = beta * (-np.log1p(-u)) ** (1.0 / alpha)
    return x


def _ordered(a: Param, c: Param, b: Param) -> Param:
    return (a <= c) & (c <= b) & (a < b)


DISTRIBUTIONS: dict[str, _Dist] = {
    "normal": _Dist(
        lambda u, m, s: _affine(special.ndtri(u, out=u), s, m),
        lambda x, m, s: special.ndtr((x - m) / s),
        lambda m, s: s > 0,
    ),
    "triang": _Dist(_triang_ppf, _triang_cdf, _ordered),
    "trigen": _Dist(
        _trigen(_triang_ppf),
        _trigen(_triang_cdf),
        lambda lo, c, hi, plo, phi: _ordered(lo, c, hi) & (plo >= 0) & (plo < phi) & (phi <= 100),
    ),
    "pert": _Dist(_pert_ppf, _pert_cdf, _ordered),
    "uniform": _Dist(
        lambda u, a, b: _affine(u, b - a, a),
        lambda x, a, b: np.clip((x - a) / (b - a), 0.0, 1.0),
        lambda a, b: a < b,
    ),
    "lognorm": _Dist(_lognorm_ppf, _lognorm_cdf, lambda m, s: (m > 0) & (s > 0)),
    "lognorm2": _Dist(
        lambda u, mu, s: np.exp(_affine(special.ndtri(u, out=u), s, mu), out=u),
        lambda x, mu, s: special.ndtr((np.log(np.maximum(x, 0.0)) - mu) / s),
        lambda mu, s: s > 0,
    ),
    "discrete": _Dist(_discrete_ppf, _discrete_cdf, lambda x, p: True, discrete=True),
    "binomial": _Dist(
        _counting_ppf(_COUNTING["binomial"], _binomial_moments),
        lambda x, n, p: special.bdtr(np.floor(x), n, p),
        lambda n, p: (n >= 0) & (n == np.floor(n)) & (p >= 0) & (p <= 1),
        discrete=True,
    ),
    "poisson": _Dist(
        _counting_ppf(_COUNTING["poisson"], _poisson_moments),
        lambda x, lam: special.pdtr(np.floor(x), lam),
        lambda lam: lam > 0,
        discrete=True,
    ),
    "expon": _Dist(
        lambda u, beta: -beta * np.log1p(-u),
        lambda x, beta: -np.expm1(-np.maximum(x, 0.0) / beta),
        lambda beta: beta > 0,
    ),
    "gamma": _Dist(
        lambda u, a, beta: beta * _gamma_quantile(u, a),
        lambda x, a, beta: special.gammainc(a, np.maximum(x, 0.0) / beta),
        lambda a, beta: (a > 0) & (beta > 0),
    ),
    "beta": _Dist(
        lambda u, a1, a2: _beta_quantile(u, a1, a2),
        lambda x, a1, a2: special.betainc(a1, a2, np.clip(x, 0.0, 1.0)),
        lambda a1, a2: (a1 > 0) & (a2 > 0),
    ),
    "betageneral": _Dist(
        lambda u, a1, a2, lo, hi: lo + (hi - lo) * _beta_quantile(u, a1, a2),
        lambda x, a1, a2, lo, hi: special.betainc(a1, a2, np.clip((x - lo) / (hi - lo), 0.0, 1.0)),
        lambda a1, a2, lo, hi: (a1 > 0) & (a2 > 0) & (lo < hi),
    ),
    "weibull": _Dist(
        _weibull_ppf,
        lambda x, alpha, beta: -np.expm1(-((np.maximum(x, 0.0) / beta) ** alpha)),
        lambda alpha, beta: (alpha > 0) & (beta > 0),
    ),
    "cumul": _Dist(_cumul_ppf, _cumul_cdf, _cumul_valid),
    "resample": _Dist(_resample_ppf, _resample_cdf, lambda method, xs: True, discrete=True),
}


def truncation_cdfs(
    distribution: str, params: tuple[Param | Table, ...], lo: float | None, hi: float | None
) -> tuple[Param, Param]:
    """``(P(X < lo), P(X <= hi))`` of a truncation window (0 and 1 for an open side)."""
    dist = DISTRIBUTIONS[distribution]
    with np.errstate(all="ignore"):
        if lo is None:
            f_lo: Param = 0.0
        else:  # P(X < lo): for a discrete distribution, the CDF just below lo
            f_lo = dist.cdf(np.nextafter(lo, -np.inf) if dist.discrete else lo, *params)
        f_hi = 1.0 if hi is None else dist.cdf(hi, *params)
    return f_lo, f_hi


_BELOW_ONE = float(np.nextafter(1.0, 0.0))


def _truncated(
    distribution: str,
    u: np.ndarray,
    params: tuple[Param | Table, ...],
    lo: float | None,
    hi: float | None,
) -> np.ndarray:
    dist = DISTRIBUTIONS[distribution]
    f_lo, f_hi = truncation_cdfs(distribution, params, lo, hi)
    mass = f_hi - f_lo
    # F(lo) + u (F(hi) - F(lo)) rounds to 1 for the largest uniforms when the window is open
    # above (RiskTruncate(0,) of a normal): keep it below 1, as an untruncated draw is, so the
    # quantile stays finite.
    x = dist.ppf(np.minimum(f_lo + u * mass, _BELOW_ONE), *params)
    x = np.where(mass > 0, x, np.nan)
    return np.clip(x, -np.inf if lo is None else lo, np.inf if hi is None else hi)


def sample(
    distribution: str,
    u: np.ndarray,
    params: tuple[Param | Table, ...],
    truncate: tuple[float | None, float | None] | None = None,
) -> np.ndarray:
    """Values of ``distribution`` at uniforms ``u`` (float64, shape ``(n,)``) → float64 ``(n,)``.

    ``u`` is consumed: its buffer may be overwritten by the result.

    Non-finite or out-of-domain parameters give NaN for the trials concerned.
    """
    dist = DISTRIBUTIONS[distribution]
    with np.errstate(all="ignore"):
        valid = dist.valid(*params)
        if truncate is not None and truncate != (None, None):
            x = _truncated(distribution, u, params, *truncate)
        else:
            x = dist.ppf(u, *params)
        x = np.asarray(x, dtype=np.float64)
        ok = valid
        for p in params:
            if not isinstance(p, Table):
                ok = np.logical_and(ok, np.isfinite(p))
        if np.ndim(ok) == 0:
            return x if ok else np.full_like(u, np.nan)
        return np.where(ok, x, np.nan)


def lhs_uniforms(seed: int, stream: int, first: int, count: int) -> np.ndarray:
    """Latin Hypercube uniforms in (0, 1) of trials ``[first, first + count)`` (see module doc)."""
    words = rng.raw(seed, stream, first, count)
    np.right_shift(words, np.uint64(28), out=words)
    end = first + count
    start_block = first // LHS_BLOCK
    for block in range(start_block, (end - 1) // LHS_BLOCK + 1 if count else start_block):
        base = block * LHS_BLOCK
        keys = rng.raw(seed, stream, base, LHS_BLOCK, domain=1)
        keys &= _KEY_MASK
        keys |= _BLOCK_INDEX  # unique keys: any sort gives the same order
        strata = np.empty(LHS_BLOCK, dtype=np.uint64)
        strata[np.argsort(keys)] = _BLOCK_INDEX
        lo, hi = max(first, base), min(end, base + LHS_BLOCK)
        words[lo - first : hi - first] |= strata[lo - base : hi - base] << _LHS_SHIFT
    return rng.words_to_unit(words)
