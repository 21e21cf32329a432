"""The candidate families of a fit: maximum-likelihood estimates in @RISK's parameters.

Each :class:`Candidate` fits a sample (sorted float64, finite, not constant) and returns its
parameters in the order and meaning of the engine's own distribution of the same name
(``catalog.DISTRIBUTIONS``), so ``=Risk<Family>(params)`` samples what was fitted; and it
turns those parameters into the SciPy distribution the goodness-of-fit statistics use. The
tests check every candidate's SciPy quantiles against the engine's sampler.

Estimates are maximum likelihood with the location fixed where @RISK's family has none
(gamma, Weibull, lognormal, exponential and inverse Gaussian start at 0). Two are not
plain maximum likelihood, because the likelihood has no maximum in the bounds: BetaGeneral
puts its bounds one sample spacing (range / (n - 1)) outside the data and fits the shapes
by maximum likelihood; Triang maximises over the bounds and mode jointly but keeps the bounds
outside the data (the likelihood is 0 there). Uniform and Pareto take the sample's extremes,
their maximum-likelihood estimates. Binomial ``n`` and negative binomial ``s`` are whole
numbers (the engine's families require it), found by a search of the profile likelihood.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize, stats

__all__ = ["CANDIDATES", "Candidate", "Unfit"]

Params = tuple[float, ...]
Frozen = Any  # a frozen SciPy distribution (rv_continuous_frozen or rv_discrete_frozen)


class Unfit(Exception):
    """A candidate that does not apply to the sample, or whose estimate does not exist."""


@dataclass(frozen=True)
class Candidate:
    """One family: the engine's distribution name, its @RISK parameter names, and how to fit."""

    name: str  # the engine's distribution name (``lognorm``), spelled ``RiskLognorm``
    params: tuple[str, ...]
    fit: Callable[[np.ndarray], Params]  # sorted sample → @RISK parameters (raises Unfit)
    scipy: Callable[..., Frozen]  # @RISK parameters → the SciPy distribution
    discrete: bool = False
    whole: tuple[int, ...] = ()  # parameters that are whole numbers (printed without decimals)


def _positive(x: np.ndarray, family: str) -> None:
    if x[0] <= 0.0:
        raise Unfit(f"{family} needs values > 0; the least is {x[0]:.6g}")


def _normal(x: np.ndarray) -> Params:
    return float(np.mean(x)), float(np.std(x))


def _lognorm(x: np.ndarray) -> Params:
    _positive(x, "a lognormal")
    logs = np.log(x)
    mu, s = float(np.mean(logs)), float(np.std(logs))
    if s == 0.0:
        raise Unfit("the logarithms of the values are all equal")
    mean = math.exp(mu + s * s / 2)
    return mean, mean * math.sqrt(math.expm1(s * s))


def _lognorm_scipy(mean: float, sd: float) -> Frozen:
    s2 = math.log1p((sd / mean) ** 2)
    return stats.lognorm(math.sqrt(s2), scale=math.exp(math.log(mean) - s2 / 2))


def _expon(x: np.ndarray) -> Params:
    if x[0] < 0.0:
        raise Unfit(f"an exponential needs values >= 0; the least is {x[0]:.6g}")
    return (float(np.mean(x)),)


def _gamma(x: np.ndarray) -> Params:
    _positive(x, "a gamma")
    shape, _, scale = stats.gamma.fit(x, floc=0.0)
    return float(shape), float(scale)


def _weibull(x: np.ndarray) -> Params:
    """Shape k solves 1/k + mean(log x) = sum(x^k log x) / sum(x^k); then scale follows."""
    _positive(x, "a Weibull")
    logs = np.log(x)
    mean_log = float(np.mean(logs))
    z = logs - logs[-1]  # x^k / max^k, so the sums never overflow

    def score(log_k: float) -> float:
        k = math.exp(log_k)
        w = np.exp(k * z)
        return 1.0 / k + mean_log - float(np.dot(w, logs) / np.sum(w))

    try:
        k = math.exp(optimize.brentq(score, -10.0, 10.0, xtol=1e-12))
    except ValueError as exc:
        raise Unfit("no Weibull shape between e^-10 and e^10 fits") from exc
    scale = math.exp(logs[-1] + math.log(float(np.mean(np.exp(k * z)))) / k)
    return k, scale


def _beta(x: np.ndarray) -> Params:
    if x[0] <= 0.0 or x[-1] >= 1.0:
        raise Unfit("a beta needs values strictly between 0 and 1")
    a1, a2, _, _ = stats.beta.fit(x, floc=0.0, fscale=1.0)
    return float(a1), float(a2)


def _betageneral(x: np.ndarray) -> Params:
    spacing = (x[-1] - x[0]) / (len(x) - 1)
    lo, hi = float(x[0] - spacing), float(x[-1] + spacing)
    a1, a2, _, _ = stats.beta.fit(x, floc=lo, fscale=hi - lo)
    return float(a1), float(a2), lo, hi


def _uniform(x: np.ndarray) -> Params:
    return float(x[0]), float(x[-1])


_TRIANG_SEARCH = 20_000


def _triang(x: np.ndarray) -> Params:
    """Bounds by Nelder-Mead outside the data; for given bounds the best mode is one of the
    order statistics (Oliver 1972), found for all of them at once with cumulative sums.
    Past ``_TRIANG_SEARCH`` values the bounds are searched on that many evenly spaced order
    statistics (the extremes included), and the mode is then chosen among all of them."""
    search = x
    if len(x) > _TRIANG_SEARCH:
        search = x[np.linspace(0, len(x) - 1, _TRIANG_SEARCH).astype(np.int64)]
    lo, hi = _triang_bounds(search)
    return lo, _triang_mode(x, lo, hi)[1], hi


def _triang_mode(x: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    """(log-likelihood, mode) of the best triangle on [lo, hi] for the sorted sample x."""
    n = len(x)
    below = np.concatenate(([0.0], np.cumsum(np.log(x - lo))))  # sum over i < r
    above = np.concatenate((np.cumsum(np.log(hi - x)[::-1])[::-1], [0.0]))  # i > r
    r = np.arange(n)
    ll = (
        below[r]
        - r * np.log(x - lo)
        + above[r + 1]
        - (n - 1 - r) * np.log(hi - x)
        + n * math.log(2.0 / (hi - lo))
    )
    best = int(np.argmax(ll))
    return float(ll[best]), float(x[best])


def _triang_bounds(x: np.ndarray) -> tuple[float, float]:
    n, width = len(x), float(x[-1] - x[0])

    def bounds(v: np.ndarray) -> tuple[float, float]:
        return float(x[0] - width * math.exp(v[0])), float(x[-1] + width * math.exp(v[1]))

    start = math.log(1.0 / n)
    found = optimize.minimize(
        lambda v: -_triang_mode(x, *bounds(v))[0],
        np.array([start, start]),
        method="Nelder-Mead",
        options={"xatol": 1e-6, "fatol": 1e-9, "maxiter": 400},
    )
    return bounds(found.x)


def _triang_scipy(lo: float, mode: float, hi: float) -> Frozen:
    return stats.triang((mode - lo) / (hi - lo), loc=lo, scale=hi - lo)


def _located(dist: Any) -> Callable[[np.ndarray], Params]:
    def fit(x: np.ndarray) -> Params:
        loc, scale = dist.fit(x)
        return float(loc), float(scale)

    return fit


def _pareto(x: np.ndarray) -> Params:
    _positive(x, "a Pareto")
    least = float(x[0])
    return len(x) / float(np.sum(np.log(x / least))), least


def _laplace(x: np.ndarray) -> Params:
    mu = float(np.median(x))
    return mu, float(np.mean(np.abs(x - mu))) * math.sqrt(2.0)


def _invgauss(x: np.ndarray) -> Params:
    _positive(x, "an inverse Gaussian")
    mu = float(np.mean(x))
    return mu, len(x) / float(np.sum(1.0 / x - 1.0 / mu))


# ------------------------------------------------------------------------- counts


def _counts(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.unique(x, return_counts=True)


def _whole_search(profile: Callable[[float], float], least: float, most: float) -> float:
    """The whole number in [least, most] maximising a unimodal profile log-likelihood:
    a geometric grid, then a ternary search between the best point's neighbours."""
    grid = np.unique(np.round(np.geomspace(least, most, 32)))
    values = [profile(v) for v in grid]
    best = int(np.argmax(values))
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    while hi - lo > 2:
        m1, m2 = lo + (hi - lo) // 3, hi - (hi - lo) // 3
        if profile(m1) < profile(m2):
            lo = m1
        else:
            hi = m2
    return float(max(np.arange(lo, hi + 1), key=profile))


def _nonnegative(x: np.ndarray, family: str) -> None:
    if x[0] < 0.0:
        raise Unfit(f"{family} counts from 0; the least value is {x[0]:.6g}")


def _poisson(x: np.ndarray) -> Params:
    _nonnegative(x, "a Poisson")
    return (float(np.mean(x)),)


def _binomial(x: np.ndarray) -> Params:
    _nonnegative(x, "a binomial")
    values, counts = _counts(x)
    mean = float(np.mean(x))
    if float(np.var(x)) >= mean:
        raise Unfit("a binomial needs a variance below the mean")

    def profile(n: float) -> float:
        return float(np.dot(counts, stats.binom.logpmf(values, n, mean / n)))

    most = float(x[-1])
    n = _whole_search(profile, most, max(1000.0 * most, most + 1000.0))
    return n, mean / n


def _geomet(x: np.ndarray) -> Params:
    _nonnegative(x, "a geometric")
    return (1.0 / (1.0 + float(np.mean(x))),)


def _negbin(x: np.ndarray) -> Params:
    _nonnegative(x, "a negative binomial")
    values, counts = _counts(x)
    mean = float(np.mean(x))
    if float(np.var(x)) <= mean:
        raise Unfit("a negative binomial needs a variance above the mean")

    def profile(s: float) -> float:
        return float(np.dot(counts, stats.nbinom.logpmf(values, s, s / (s + mean))))

    s = _whole_search(profile, 1.0, 1e6)
    return s, s / (s + mean)


def _intuniform(x: np.ndarray) -> Params:
    return float(x[0]), float(x[-1])


CANDIDATES: tuple[Candidate, ...] = (
    Candidate("normal", ("mean", "sd"), _normal, lambda m, s: stats.norm(m, s)),
    Candidate("lognorm", ("mean", "sd"), _lognorm, _lognorm_scipy),
    Candidate("expon", ("beta",), _expon, lambda b: stats.expon(scale=b)),
    Candidate("gamma", ("alpha", "beta"), _gamma, lambda a, b: stats.gamma(a, scale=b)),
    Candidate("weibull", ("alpha", "beta"), _weibull, lambda a, b: stats.weibull_min(a, scale=b)),
    Candidate("beta", ("alpha1", "alpha2"), _beta, lambda a1, a2: stats.beta(a1, a2)),
    Candidate(
        "betageneral",
        ("alpha1", "alpha2", "min", "max"),
        _betageneral,
        lambda a1, a2, lo, hi: stats.beta(a1, a2, loc=lo, scale=hi - lo),
    ),
    Candidate("uniform", ("min", "max"), _uniform, lambda a, b: stats.uniform(a, b - a)),
    Candidate("triang", ("min", "mode", "max"), _triang, _triang_scipy),
    Candidate(
        "logistic", ("alpha", "beta"), _located(stats.logistic), lambda a, b: stats.logistic(a, b)
    ),
    Candidate(
        "extvalue", ("alpha", "beta"), _located(stats.gumbel_r), lambda a, b: stats.gumbel_r(a, b)
    ),
    Candidate(
        "extvaluemin",
        ("alpha", "beta"),
        _located(stats.gumbel_l),
        lambda a, b: stats.gumbel_l(a, b),
    ),
    Candidate("pareto", ("theta", "a"), _pareto, lambda t, a: stats.pareto(t, scale=a)),
    Candidate(
        "laplace", ("mu", "sigma"), _laplace, lambda m, s: stats.laplace(m, s / math.sqrt(2.0))
    ),
    Candidate(
        "invgauss", ("mu", "lambda"), _invgauss, lambda m, lam: stats.invgauss(m / lam, scale=lam)
    ),
    Candidate("poisson", ("lambda",), _poisson, lambda lam: stats.poisson(lam), discrete=True),
    Candidate(
        "binomial",
        ("n", "p"),
        _binomial,
        lambda n, p: stats.binom(n, p),
        discrete=True,
        whole=(0,),
    ),
    Candidate("geomet", ("p",), _geomet, lambda p: stats.geom(p, loc=-1), discrete=True),
    Candidate(
        "negbin", ("s", "p"), _negbin, lambda s, p: stats.nbinom(s, p), discrete=True, whole=(0,)
    ),
    Candidate(
        "intuniform",
        ("min", "max"),
        _intuniform,
        lambda a, b: stats.randint(a, b + 1),
        discrete=True,
        whole=(0, 1),
    ),
)
