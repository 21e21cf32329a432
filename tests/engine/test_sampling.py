"""Inverse-CDF sampling: every distribution against SciPy, truncation, NaN parameters, LHS."""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import pytest
from scipy import stats

from services.engine import rng, sampling
from services.engine.ir import Table
from tests.engine.models import DISTRIBUTIONS as EXACT

N = 200_000
HALF = 3 / (1 - math.sqrt(0.2))  # Trigen(2,5,8,10,90) is a symmetric triangle of this half-width


def _mu_sigma(mean: float, sd: float) -> tuple[float, float]:
    s2 = math.log1p((sd / mean) ** 2)
    return math.log(mean) - s2 / 2, math.sqrt(s2)


LN_MU, LN_SIGMA = _mu_sigma(10, 3)

# name → (params in @RISK order, the same distribution in SciPy's parameterisation)
CASES = {
    "normal": ((10.0, 2.0), stats.norm(10, 2)),
    "triang": ((1.0, 2.0, 6.0), stats.triang(0.2, loc=1, scale=5)),
    "trigen": ((2.0, 5.0, 8.0, 10.0, 90.0), stats.triang(0.5, loc=5 - HALF, scale=2 * HALF)),
    "pert": ((0.0, 3.0, 10.0), stats.beta(1 + 4 * 0.3, 1 + 4 * 0.7, loc=0, scale=10)),
    "uniform": ((5.0, 15.0), stats.uniform(5, 10)),
    "lognorm": ((10.0, 3.0), stats.lognorm(LN_SIGMA, scale=math.exp(LN_MU))),
    "lognorm2": ((1.0, 0.5), stats.lognorm(0.5, scale=math.e)),
    "discrete": (
        (Table((1.0, 2.0, 3.0), 1, 3), Table((1.0, 2.0, 1.0), 1, 3)),
        stats.rv_discrete(values=([1, 2, 3], [0.25, 0.5, 0.25])),
    ),
    "binomial": ((10.0, 0.3), stats.binom(10, 0.3)),
    "poisson": ((4.0,), stats.poisson(4)),
    "expon": ((5.0,), stats.expon(scale=5)),
    "gamma": ((2.0, 3.0), stats.gamma(2, scale=3)),
    "beta": ((2.0, 5.0), stats.beta(2, 5)),
    "betageneral": ((2.0, 5.0, 10.0, 20.0), stats.beta(2, 5, loc=10, scale=10)),
    "weibull": ((2.0, 10.0), stats.weibull_min(2, scale=10)),
}
CUMUL = (0.0, 10.0, Table((2.0, 5.0, 8.0), 1, 3), Table((0.2, 0.5, 0.9), 1, 3))


def _u(n: int = N, stream: int = 0) -> np.ndarray:
    return rng.uniforms(2024, stream, 0, n)


def test_every_original_distribution_is_covered() -> None:
    """The first sixteen families here; every family in tests/engine/test_distributions.py."""
    assert set(CASES) | {"cumul"} == set(EXACT)


@pytest.mark.parametrize("name", sorted(CASES))
def test_quantiles_equal_scipy(name: str) -> None:
    params, ref = CASES[name]
    u = np.concatenate([_u(2_000), [1e-12, 1e-6, 0.5, 1 - 1e-6, 1 - 2.0**-53]])
    got = sampling.sample(name, u.copy(), params)
    np.testing.assert_allclose(got, ref.ppf(u), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", sorted(EXACT))
def test_moments_and_ks(name: str) -> None:
    _, mean, sd = EXACT[name]
    params = CUMUL if name == "cumul" else CASES[name][0]
    x = sampling.sample(name, _u(), params)
    assert abs(x.mean() - mean) < 4 * sd / math.sqrt(N)
    assert x.std(ddof=1) == pytest.approx(sd, rel=0.01)
    if name in ("discrete", "binomial", "poisson"):
        support, counts = np.unique(x, return_counts=True)
        pmf = CASES[name][1].pmf(support)
        assert np.all(pmf > 0)  # nothing drawn outside the support
        assert np.all(np.abs(counts / N - pmf) < 5 * np.sqrt(pmf * (1 - pmf) / N) + 1e-5)
    elif name != "cumul":
        assert stats.kstest(x, CASES[name][1].cdf).pvalue > 1e-3


def test_cumul_is_piecewise_linear() -> None:
    u = _u(1000)
    xp, fp = [0, 2, 5, 8, 10], [0, 0.2, 0.5, 0.9, 1]
    np.testing.assert_allclose(sampling.sample("cumul", u.copy(), CUMUL), np.interp(u, fp, xp))


def test_trigen_hits_its_percentiles() -> None:
    x = sampling.sample("trigen", _u(), (1.0, 2.0, 6.0, 5.0, 80.0))  # asymmetric
    assert np.mean(x <= 1.0) == pytest.approx(0.05, abs=0.003)
    assert np.mean(x <= 6.0) == pytest.approx(0.80, abs=0.003)


def test_discrete_values_need_not_be_sorted() -> None:
    params = (Table((3.0, 1.0, 2.0), 3, 1), Table((1.0, 1.0, 2.0), 3, 1))
    x = sampling.sample("discrete", _u(), params)
    assert set(np.unique(x)) == {1.0, 2.0, 3.0}
    assert np.mean(x == 2.0) == pytest.approx(0.5, abs=0.005)


def test_vector_parameters_match_scalar_ones() -> None:
    u = _u(1000)
    means = np.linspace(-5, 5, 1000)
    got = sampling.sample("normal", u.copy(), (means, 2.0))
    np.testing.assert_array_equal(got, means + 2.0 * stats.norm.ppf(u))
    n = np.floor(np.linspace(0, 20, 1000))
    np.testing.assert_array_equal(
        sampling.sample("binomial", u.copy(), (n, 0.4)), stats.binom.ppf(u, n, 0.4)
    )


@pytest.mark.parametrize(
    "a,c,b",
    [(20.0, 30.0, 50.0), (0.0, 0.0, 1.0), (0.0, 1.0, 1.0), (-3.5, 2.25, 1e6), (-0.1, 0.05, 0.2)],
)
def test_triangular_constant_parameters_give_the_bits_of_per_trial_ones(a, c, b) -> None:
    """Constant parameters take a branch-free path; it must not change a single bit."""
    u = np.concatenate([_u(10_000), [2.0**-53, 1 - 2.0**-53]])
    if b > a:
        u = np.concatenate([u, [(c - a) / (b - a)]])  # exactly at the mode's quantile
    per_trial = [np.full(u.size, p) for p in (a, c, b)]
    want = sampling.sample("triang", u.copy(), tuple(per_trial))
    np.testing.assert_array_equal(sampling.sample("triang", u.copy(), (a, c, b)), want)
    assert np.all((want >= a) & (want <= b))


@pytest.mark.parametrize(
    "name,params",
    [
        ("normal", (0.0, np.array([1.0, -1.0, 0.0, np.nan]))),
        ("triang", (np.array([0.0, 3.0, 0.0, 0.0]), 2.0, np.array([4.0, 4.0, 0.0, np.inf]))),
        ("uniform", (np.array([0.0, 2.0, 1.0, 0.0]), np.array([1.0, 1.0, 1.0, np.nan]))),
        ("gamma", (np.array([1.0, -1.0, 0.0, 2.0]), np.array([1.0, 1.0, 1.0, 0.0]))),
        ("poisson", (np.array([2.0, -2.0, 0.0, np.nan]),)),
        ("binomial", (np.array([5.0, 2.5, -1.0, 5.0]), np.array([0.5, 0.5, 0.5, 1.5]))),
    ],
)
def test_invalid_per_trial_parameters_give_nan(name: str, params: tuple) -> None:
    x = sampling.sample(name, _u(4), params)
    assert np.isfinite(x[0])
    assert np.isnan(x[1:]).all()


def test_constant_invalid_parameters_give_all_nan() -> None:
    assert np.isnan(sampling.sample("lognorm", _u(10), (-1.0, 1.0))).all()


def test_truncated_normal_equals_scipy_truncnorm() -> None:
    u = _u(5000)
    x = sampling.sample("normal", u.copy(), (1.0, 2.0), (0.0, 3.0))
    ref = stats.truncnorm(-0.5, 1.0, loc=1.0, scale=2.0).ppf(u)
    np.testing.assert_allclose(x, ref, rtol=1e-7)
    assert x.min() >= 0.0 and x.max() <= 3.0


def test_one_sided_truncation() -> None:
    x = sampling.sample("expon", _u(), (5.0,), (None, 2.0))
    assert x.max() <= 2.0
    expected = stats.truncexpon(2.0 / 5.0, scale=5.0).mean()
    assert x.mean() == pytest.approx(expected, rel=0.01)
    y = sampling.sample("normal", _u(), (0.0, 1.0), (1.5, None))
    assert y.min() >= 1.5


def test_truncated_discrete_keeps_conditional_probabilities() -> None:
    x = sampling.sample("poisson", _u(), (4.0,), (2.0, 6.0))
    support, counts = np.unique(x, return_counts=True)
    assert support.tolist() == [2.0, 3.0, 4.0, 5.0, 6.0]
    pmf = stats.poisson(4).pmf(support)
    np.testing.assert_allclose(counts / N, pmf / pmf.sum(), atol=0.005)
    z = sampling.sample(
        "discrete", _u(), (Table((1.0, 2.0, 3.0), 1, 3), Table((1.0,) * 3, 1, 3)), (1.5, 3.0)
    )
    assert set(np.unique(z)) == {2.0, 3.0}


def test_truncation_to_an_empty_range_is_nan() -> None:
    assert np.isnan(sampling.sample("uniform", _u(10), (0.0, 1.0), (2.0, 3.0))).all()


def test_lhs_puts_one_trial_in_each_stratum_per_block() -> None:
    block = sampling.LHS_BLOCK
    u = sampling.lhs_uniforms(7, 3, 0, 2 * block + 100)
    for b in range(2):
        strata = np.floor(u[b * block : (b + 1) * block] * block).astype(np.int64)
        assert np.array_equal(np.sort(strata), np.arange(block))
    assert u.min() > 0.0 and u.max() < 1.0
    assert not np.array_equal(u[:block], u[block : 2 * block])


def test_lhs_is_chunk_invariant() -> None:
    block = sampling.LHS_BLOCK
    whole = sampling.lhs_uniforms(7, 3, 10, 2 * block)
    cuts = [10, 11, block - 1, block + 5, 2 * block + 10]
    parts = [sampling.lhs_uniforms(7, 3, a, b - a) for a, b in pairwise(cuts)]
    assert np.array_equal(np.concatenate(parts), whole)


def test_lhs_reduces_the_error_of_the_mean() -> None:
    block = sampling.LHS_BLOCK
    lhs = [
        sampling.sample("normal", sampling.lhs_uniforms(1, s, 0, block), (0.0, 1.0))
        for s in range(20)
    ]
    mc = [sampling.sample("normal", rng.uniforms(1, s, 0, block), (0.0, 1.0)) for s in range(20)]
    lhs_err = np.sqrt(np.mean([x.mean() ** 2 for x in lhs]))
    mc_err = np.sqrt(np.mean([x.mean() ** 2 for x in mc]))
    assert lhs_err < mc_err / 20


@pytest.mark.parametrize(
    "name,params",
    [
        ("gamma", (0.1, 1.0)),
        ("gamma", (0.5, 2.0)),
        ("gamma", (9.5, 1.0)),
        ("gamma", (200.0, 0.5)),
        ("gamma", (0.05, 1.0)),
        ("gamma", (1e5, 1.0)),
        ("beta", (0.1, 0.1)),
        ("beta", (0.3, 0.7)),
        ("beta", (50.0, 60.0)),
        ("beta", (0.05, 3.0)),
        ("beta", (3.0, 0.05)),
        ("beta", (0.01, 0.01)),
        ("pert", (0.0, 0.0, 1.0)),
        ("pert", (0.0, 1.0, 1.0)),
    ],
)
def test_tabulated_quantiles_match_scipy_across_shapes(name: str, params: tuple) -> None:
    """Constant-shape gamma/beta quantiles are interpolated from a table: 1e-12 relative."""
    u = np.concatenate([_u(20_000), [2.0**-53, 2.0**-52, 1e-10, 1 - 1e-10, 1 - 2.0**-53]])
    if name == "gamma":
        ref = params[1] * stats.gamma(params[0]).ppf(u)
    elif name == "beta":
        ref = stats.beta(*params).ppf(u)
    else:
        lo, mode, hi = params
        ref = lo + (hi - lo) * stats.beta(
            1 + 4 * (mode - lo) / (hi - lo), 1 + 4 * (hi - mode) / (hi - lo)
        ).ppf(u)
    got = sampling.sample(name, u.copy(), params)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-300)


def test_truncated_cumul_with_constant_and_random_bounds() -> None:
    u = _u(50_000)
    x = sampling.sample("cumul", u.copy(), CUMUL, (3.0, None))
    xp, fp = [0, 2, 5, 8, 10], [0, 0.2, 0.5, 0.9, 1]
    f_lo = np.interp(3.0, xp, fp)
    np.testing.assert_allclose(x, np.interp(f_lo + u * (1 - f_lo), fp, xp), rtol=1e-12)
    random_min = np.where(u < 0.5, 0.0, -1.0)
    y = sampling.sample("cumul", _u(50_000, stream=1), (random_min, *CUMUL[1:]), (3.0, None))
    assert np.isfinite(y).all() and y.min() >= 3.0


def test_lhs_strata_of_different_inputs_are_independent() -> None:
    block = sampling.LHS_BLOCK
    strata = [np.floor(sampling.lhs_uniforms(5, s, 0, block) * block) for s in range(4)]
    rho = stats.spearmanr(np.column_stack(strata)).statistic
    off_diagonal = rho[~np.eye(4, dtype=bool)]
    assert np.abs(off_diagonal).max() < 4 / math.sqrt(block)


@pytest.mark.parametrize(
    "name,params,mean,var,skew",
    [
        ("poisson", (4e6,), 4e6, 4e6, 1 / math.sqrt(4e6)),
        ("poisson", (1e15,), 1e15, 1e15, 1 / math.sqrt(1e15)),
        ("binomial", (1e9, 0.01), 1e7, 1e9 * 0.01 * 0.99, 0.98 / math.sqrt(1e9 * 0.01 * 0.99)),
    ],
)
def test_huge_counts_use_the_normal_approximation(name, params, mean, var, skew) -> None:
    """Whole numbers with the distribution's mean, variance and skewness, in milliseconds."""
    x = sampling.sample(name, _u(200_000), params)
    assert np.all(x == np.floor(x)) and np.all(x >= 0)
    assert abs(x.mean() - mean) < 5 * math.sqrt(var / x.size)
    assert x.var() == pytest.approx(var, rel=0.02)
    assert stats.skew(x) == pytest.approx(skew, abs=5 * math.sqrt(6 / x.size))
    per_trial = sampling.sample(name, _u(1000), tuple(np.full(1000, p) for p in params))
    np.testing.assert_array_equal(per_trial, x[:1000])
