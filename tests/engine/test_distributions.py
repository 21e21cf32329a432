"""Every @RISK distribution against an independent reference: SciPy, or a closed form.

For each family, 10^6 draws (the engine's own Philox uniforms through its inverse CDF) must
pass a Kolmogorov-Smirnov test against the reference CDF (or, for counting distributions,
match the reference probabilities bin by bin), and their mean and standard deviation must
agree with the reference moments where those are finite; quantiles must equal the
reference's to 1e-9 relative. Constant-parameter validation names the parameter, and
RiskLock's static value is the reference mean.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from scipy import optimize, special, stats

from services.engine import catalog, distributions, rng, sampling
from services.engine.errors import ParameterError
from services.engine.ir import Table

N = 1_000_000
pytestmark = [
    # SciPy's binomial CDF takes n as a float array; its inverse Gaussian quantile gives up,
    # with a warning, in tails the tests reach by root finding instead
    pytest.mark.filterwarnings("ignore:non-integer arg n is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Error in function boost:RuntimeWarning"),
]
SQRT2 = math.sqrt(2.0)


def _t(*values: float) -> Table:
    return Table(tuple(float(v) for v in values), len(values), 1)


@dataclass(frozen=True)
class Reference:
    """An independent description of one distribution: a frozen SciPy distribution, or a
    CDF with its moments (None where a moment is infinite or undefined)."""

    params: tuple[Any, ...]
    frozen: Any = None
    cdf: Callable[[np.ndarray], np.ndarray] | None = None
    mean: float | None = None
    sd: float | None = None
    discrete: bool = False
    source: str = ""  # what the reference is, where it is not a SciPy distribution

    def described(self) -> str:
        """The reference as the coverage table names it."""
        if self.source:
            return self.source
        return f"SciPy `{getattr(self.frozen, 'dist', self.frozen).name}`"

    def cdf_of(self, x: np.ndarray) -> np.ndarray:
        return self.cdf(x) if self.cdf is not None else self.frozen.cdf(x)

    def moments(self) -> tuple[float | None, float | None]:
        if self.frozen is None:
            return self.mean, self.sd
        m, v = (float(s) for s in self.frozen.stats(moments="mv"))
        return (m if math.isfinite(m) else None, math.sqrt(v) if math.isfinite(v) else None)


def _mu_sigma(mean: float, sd: float) -> tuple[float, float]:
    s2 = math.log1p((sd / mean) ** 2)
    return math.log(mean) - s2 / 2, math.sqrt(s2)


_LN_MU, _LN_SIGMA = _mu_sigma(10, 3)
_HALF = 3 / (1 - math.sqrt(0.2))  # Trigen(2,5,8,10,90) as a symmetric triangle


def _kumaraswamy(a: float, b: float, lo: float, hi: float) -> Reference:
    def raw(n: int) -> float:  # E[Z^n] = b B(1 + n/a, b)
        return b * math.exp(special.betaln(1 + n / a, b))

    m1, m2 = raw(1), raw(2)
    return Reference(
        (a, b, lo, hi),
        source="closed-form CDF and moments",
        cdf=lambda x: 1 - (1 - np.clip((x - lo) / (hi - lo), 0, 1) ** a) ** b,
        mean=lo + (hi - lo) * m1,
        sd=(hi - lo) * math.sqrt(m2 - m1 * m1),
    )


def _piecewise_cdf(xs: list[float], cum: list[float]) -> Callable[[np.ndarray], np.ndarray]:
    return lambda x: np.interp(x, xs, cum)


def _general(lo: float, hi: float, x: list[float], p: list[float]) -> Reference:
    """RiskGeneral: the density through (lo, 0), (x_i, p_i), (hi, 0), integrated numerically
    on a fine grid (independent of the engine's closed-form segments)."""
    pts, dens = [lo, *x, hi], [0.0, *p, 0.0]
    grid = np.linspace(lo, hi, 2_000_001)
    f = np.interp(grid, pts, dens)
    area = np.concatenate([[0.0], np.cumsum((f[1:] + f[:-1]) / 2 * np.diff(grid))])
    cum = area / area[-1]
    density = f / area[-1]
    mean = float(np.trapezoid(grid * density, grid))
    var = float(np.trapezoid((grid - mean) ** 2 * density, grid))
    return Reference(
        (lo, hi, _t(*x), _t(*p)),
        source="the density integrated numerically on a fine grid",
        cdf=lambda v: np.interp(v, grid, cum),
        mean=mean,
        sd=math.sqrt(var),
    )


def _histogram(lo: float, hi: float, p: list[float]) -> Reference:
    edges = np.linspace(lo, hi, len(p) + 1)
    w = np.asarray(p) / sum(p)
    mids = (edges[1:] + edges[:-1]) / 2
    width = (hi - lo) / len(p)
    mean = float(np.sum(w * mids))
    var = float(np.sum(w * ((mids - mean) ** 2 + width**2 / 12)))
    cum = np.concatenate([[0.0], np.cumsum(w)])
    return Reference(
        (lo, hi, _t(*p)),
        source="closed-form CDF and moments",
        cdf=_piecewise_cdf(list(edges), list(cum)),
        mean=mean,
        sd=math.sqrt(var),
    )


def _cumul(lo: float, hi: float, x: list[float], p: list[float], descending: bool) -> Reference:
    up = [1 - v for v in p] if descending else p
    xs, cum = [lo, *x, hi], [0.0, *up, 1.0]
    seg_p = np.diff(cum)
    a, b = np.asarray(xs[:-1]), np.asarray(xs[1:])
    mean = float(np.sum(seg_p * (a + b) / 2))
    second = float(np.sum(seg_p * (a * a + a * b + b * b) / 3))
    return Reference(
        (lo, hi, _t(*x), _t(*p)),
        source="closed-form CDF and moments",
        cdf=_piecewise_cdf(xs, cum),
        mean=mean,
        sd=math.sqrt(second - mean * mean),
    )


def _discrete(values: list[float], probs: list[float]) -> Reference:
    pk = np.asarray(probs) / sum(probs)
    return Reference(
        (_t(*values), _t(*probs)),
        stats.rv_discrete(values=(values, pk)),
        discrete=True,
        source="SciPy `rv_discrete` of the table",
    )


#: Every distribution of the catalogue: params in @RISK order → its reference.
TABLE: dict[str, Reference] = {
    "normal": Reference((10.0, 2.0), stats.norm(10, 2)),
    "triang": Reference((1.0, 2.0, 6.0), stats.triang(0.2, loc=1, scale=5)),
    "trigen": Reference(
        (2.0, 5.0, 8.0, 10.0, 90.0), stats.triang(0.5, loc=5 - _HALF, scale=2 * _HALF)
    ),
    "pert": Reference((0.0, 3.0, 10.0), stats.beta(1 + 4 * 0.3, 1 + 4 * 0.7, loc=0, scale=10)),
    "uniform": Reference((5.0, 15.0), stats.uniform(5, 10)),
    "lognorm": Reference((10.0, 3.0), stats.lognorm(_LN_SIGMA, scale=math.exp(_LN_MU))),
    "lognorm2": Reference((1.0, 0.5), stats.lognorm(0.5, scale=math.e)),
    "discrete": _discrete([3.0, 1.0, 2.0], [1.0, 2.0, 1.0]),
    "binomial": Reference((10.0, 0.3), stats.binom(10, 0.3), discrete=True),
    "poisson": Reference((4.0,), stats.poisson(4), discrete=True),
    "expon": Reference((5.0,), stats.expon(scale=5)),
    "gamma": Reference((2.0, 3.0), stats.gamma(2, scale=3)),
    "beta": Reference((2.0, 5.0), stats.beta(2, 5)),
    "betageneral": Reference((2.0, 5.0, 10.0, 20.0), stats.beta(2, 5, loc=10, scale=10)),
    "weibull": Reference((2.0, 10.0), stats.weibull_min(2, scale=10)),
    "cumul": _cumul(0.0, 10.0, [2.0, 5.0, 8.0], [0.2, 0.5, 0.9], descending=False),
    "intuniform": Reference((-3.0, 7.0), stats.randint(-3, 8), discrete=True),
    "duniform": Reference(
        (_t(2.5, -1.0, 4.0, 10.0),),
        stats.rv_discrete(values=([-1.0, 2.5, 4.0, 10.0], [0.25] * 4)),
        discrete=True,
        source="SciPy `rv_discrete` of the table",
    ),
    "bernoulli": Reference((0.3,), stats.bernoulli(0.3), discrete=True),
    "geomet": Reference((0.2,), stats.geom(0.2, loc=-1), discrete=True),
    "negbin": Reference((3.0, 0.4), stats.nbinom(3, 0.4), discrete=True),
    "hypergeo": Reference((10.0, 7.0, 30.0), stats.hypergeom(30, 7, 10), discrete=True),
    "logistic": Reference((2.0, 1.5), stats.logistic(2, 1.5)),
    "loglogistic": Reference((1.0, 2.0, 5.0), stats.fisk(5, loc=1, scale=2)),
    "pareto": Reference((5.0, 2.0), stats.pareto(5, scale=2)),
    "pareto2": Reference((3.0, 5.0), stats.lomax(5, scale=3)),
    "student": Reference((7.0,), stats.t(7)),
    "chisq": Reference((5.0,), stats.chi2(5)),
    "f": Reference((6.0, 12.0), stats.f(6, 12)),
    "erlang": Reference((3.0, 2.0), stats.erlang(3, scale=2)),
    "erf": Reference((2.0,), stats.norm(0, 1 / (2 * SQRT2))),
    "extvalue": Reference((1.0, 2.0), stats.gumbel_r(1, 2)),
    "extvaluemin": Reference((1.0, 2.0), stats.gumbel_l(1, 2)),
    "invgauss": Reference((2.0, 5.0), stats.invgauss(2 / 5, scale=5)),
    "laplace": Reference((1.0, 3.0), stats.laplace(1, 3 / SQRT2)),
    "levy": Reference((1.0, 0.5), stats.levy(1, 0.5)),
    "rayleigh": Reference((2.0,), stats.rayleigh(scale=2)),
    "pearson5": Reference((5.0, 8.0), stats.invgamma(5, scale=8)),
    "pearson6": Reference((3.0, 6.0, 2.0), stats.betaprime(3, 6, scale=2)),
    "general": _general(0.0, 10.0, [2.0, 5.0, 7.0], [1.0, 3.0, 2.0]),
    "histogrm": _histogram(0.0, 10.0, [1.0, 3.0, 4.0, 2.0]),
    "cumuld": _cumul(0.0, 10.0, [2.0, 5.0, 8.0], [0.8, 0.5, 0.1], descending=True),
    "kumaraswamy": _kumaraswamy(2.0, 3.0, 10.0, 20.0),
    "dagum": Reference((1.0, 2.0, 5.0, 3.0), stats.burr(5, 3, loc=1, scale=2)),
    "frechet": Reference((1.0, 2.0, 5.0), stats.invweibull(5, loc=1, scale=2)),
    "cauchy": Reference((1.0, 2.0), stats.cauchy(1, 2)),
    "reciprocal": Reference((1.0, 100.0), stats.loguniform(1, 100)),
}


def test_every_catalogue_distribution_has_a_reference() -> None:
    assert set(TABLE) == set(catalog.DISTRIBUTIONS)
    # and the sampler has no other, but RiskResample's methods 1 and 3 (whose uniforms are
    # positions in the data: tests/engine/test_resample.py)
    assert set(sampling.DISTRIBUTIONS) == set(catalog.DISTRIBUTIONS) | {"resample"}
    assert len(TABLE) >= 40


@pytest.fixture(scope="module")
def uniforms() -> np.ndarray:
    return rng.uniforms(2026, 0, 0, N)


@pytest.mark.parametrize("name", sorted(TABLE))
def test_a_million_draws_match_the_reference(name: str, uniforms: np.ndarray) -> None:
    ref = TABLE[name]
    x = sampling.sample(name, uniforms.copy(), ref.params)
    assert np.isfinite(x).all()
    mean, sd = ref.moments()
    if mean is not None and sd is not None:
        assert abs(x.mean() - mean) < 5 * sd / math.sqrt(N), (x.mean(), mean)
        assert x.std(ddof=1) == pytest.approx(sd, rel=0.02)
    if ref.discrete:
        support, counts = np.unique(x, return_counts=True)
        pmf = ref.frozen.pmf(support)
        assert np.all(pmf > 0)  # nothing drawn outside the support
        assert np.all(np.abs(counts / N - pmf) < 5 * np.sqrt(pmf * (1 - pmf) / N) + 1e-6)
    else:
        assert stats.kstest(x, ref.cdf_of).pvalue > 1e-3


@pytest.mark.parametrize("name", sorted(n for n, r in TABLE.items() if r.frozen is not None))
def test_quantiles_equal_the_reference(name: str) -> None:
    ref = TABLE[name]
    tails = np.round(np.array([1e-12, 1e-9, 1e-6]) * 2.0**53) / 2.0**53  # on the uniforms' grid
    u = np.concatenate(
        [rng.uniforms(7, 1, 0, 5000), [2.0**-53, 0.5 - 2.0**-53, 1 - 2.0**-53], tails, 1 - tails]
    )
    got = sampling.sample(name, u.copy(), ref.params)
    with np.errstate(all="ignore"):  # each tail from the reference's accurate side
        want = np.where(u < 0.5, ref.frozen.ppf(u), ref.frozen.isf(1.0 - u))
    if name == "invgauss":  # SciPy's quantile is not accurate in the tails, its CDF is
        want = np.array([_root(ref.frozen, p, x) for p, x in zip(u, got, strict=True)])
    if ref.discrete:  # the quantile of a counting distribution is the first k with F(k) >= u
        inner = (u > 1e-9) & (u < 1 - 1e-9)  # SciPy's own CDF is not exact further out
        np.testing.assert_array_equal(got[inner], want[inner])
    else:
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-300)


def _root(frozen: Any, u: float, near: float) -> float:
    """The x with F(x) = u (or 1 - F(x) = 1 - u above the median), by Brent's method on the
    reference's own CDF, bracketed around ``near``."""
    lower_tail = u < 0.5

    def f(x: float) -> float:
        return float(frozen.cdf(x) - u) if lower_tail else float((1.0 - u) - frozen.sf(x))

    lo, hi = near, near
    while f(lo) > 0:
        lo /= 2
    while f(hi) < 0:
        hi *= 2
    return optimize.brentq(f, lo, hi, xtol=1e-300, rtol=1e-15, maxiter=500)


@pytest.mark.parametrize("name", sorted(TABLE))
def test_cdf_equals_the_reference(name: str) -> None:
    """The CDF the engine truncates with is the reference's."""
    ref = TABLE[name]
    x = sampling.sample(name, rng.uniforms(3, 2, 0, 2000), ref.params)
    got = sampling.DISTRIBUTIONS[name].cdf(x, *ref.params)
    np.testing.assert_allclose(got, ref.cdf_of(x), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("name", sorted(n for n, r in TABLE.items() if r.moments()[0] is not None))
def test_lock_holds_the_mean(name: str) -> None:
    ref = TABLE[name]
    params = [p if isinstance(p, Table) else _Const(p) for p in ref.params]
    assert distributions.static_value(name, params) == pytest.approx(ref.moments()[0], rel=1e-6)


def test_lock_without_a_mean_holds_the_median() -> None:
    for name in ("cauchy", "levy"):
        ref = TABLE[name]
        value = distributions.static_value(name, [_Const(p) for p in ref.params])
        assert value == pytest.approx(ref.frozen.median(), rel=1e-9)


@dataclass(frozen=True)
class _Const:
    value: float


@pytest.mark.parametrize(
    ("name", "params", "reason"),
    [
        ("intuniform", (1.5, 4), "min must be a whole number"),
        ("intuniform", (4, 1), "min (4) must be < max (1)"),
        ("bernoulli", (1.2,), "p must be in [0, 1]"),
        ("geomet", (0,), "p must be in (0, 1]"),
        ("negbin", (0, 0.5), "s must be a whole number >= 1"),
        ("hypergeo", (10, 40, 30), "D (40) must be <= M (30)"),
        ("logistic", (0, -1), "beta must be > 0"),
        ("loglogistic", (0, 1, 0), "alpha must be > 0"),
        ("pareto", (0, 1), "theta must be > 0"),
        ("student", (2.5,), "nu must be a whole number >= 1"),
        ("f", (3, 0), "nu2 must be a whole number >= 1"),
        ("erlang", (2.5, 1), "m must be a whole number >= 1"),
        ("invgauss", (1, 0), "lambda must be > 0"),
        ("laplace", (0, 0), "sigma must be > 0"),
        ("pearson6", (1, 1, -2), "beta must be > 0"),
        ("general", (0, 10, (2, 5), (1, -1)), "p must all be >= 0"),
        ("general", (0, 10, (5, 2), (1, 1)), "x must be strictly increasing"),
        ("histogrm", (10, 0, (1, 2)), "min (10) must be < max (0)"),
        ("cumuld", (0, 10, (2, 5), (0.2, 0.5)), "p must be non-increasing"),
        ("kumaraswamy", (1, 1, 5, 5), "min (5) must be < max (5)"),
        ("dagum", (0, 1, 1, 0), "alpha2 must be > 0"),
        ("reciprocal", (0, 5), "min must be > 0"),
        ("duniform", ((),), "values must not be empty"),
    ],
)
def test_invalid_constant_parameters_name_the_parameter(
    name: str, params: tuple, reason: str
) -> None:
    dist = catalog.DISTRIBUTIONS[name]
    with pytest.raises(ParameterError) as err:
        catalog.validate(dist, params, "S!B2")
    assert reason in err.value.reason and err.value.location == "S!B2"
    assert err.value.function == dist.risk_name


@pytest.mark.parametrize(
    "name", sorted(n for n, f in distributions.FAMILIES.items() if not f.constant)
)
def test_invalid_per_trial_parameters_give_nan(name: str) -> None:
    """Each new family's validity test, per trial: NaN parameters give NaN, valid ones not."""
    ref = TABLE[name]
    u = rng.uniforms(5, 3, 0, 2)
    good = sampling.sample(name, u.copy(), ref.params)
    assert np.isfinite(good).all()
    scalars = [i for i, p in enumerate(ref.params) if not isinstance(p, Table)]
    if not scalars:
        return
    params = list(ref.params)
    params[scalars[0]] = np.array([params[scalars[0]], np.nan])
    got = sampling.sample(name, u.copy(), tuple(params))
    assert np.isfinite(got[0]) and np.isnan(got[1])
