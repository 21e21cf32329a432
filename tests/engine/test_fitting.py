"""Distribution fitting against SciPy: parameters recovered, the true family ranked first by
BIC (AIC may prefer a family that nests it: gamma over exponential),
formulas the engine samples as fitted, bootstrapped p-values that separate right from wrong,
and hostile samples refused with a clear reason before any work.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from scipy import stats

from services.engine import catalog, sampling
from services.engine.fitting import MAX_VALUES, FitError, Kind, fit
from services.engine.fitting.families import CANDIDATES

N = 3000

# (generator, the candidate that should win, SciPy's own fit in the candidate's terms)
TRUE_FAMILIES = [
    (stats.norm(5.0, 2.0), "normal", lambda x: stats.norm.fit(x)),
    (stats.lognorm(0.6, scale=20.0), "lognorm", lambda x: stats.lognorm.fit(x, floc=0)),
    (stats.expon(scale=4.0), "expon", lambda x: stats.expon.fit(x, floc=0)),
    (stats.gamma(3.0, scale=2.0), "gamma", lambda x: stats.gamma.fit(x, floc=0)),
    (stats.weibull_min(1.3, scale=8.0), "weibull", lambda x: stats.weibull_min.fit(x, floc=0)),
    (stats.beta(2.0, 5.0), "beta", lambda x: stats.beta.fit(x, floc=0, fscale=1)),
    (stats.uniform(3.0, 7.0), "uniform", lambda x: stats.uniform.fit(x)),
    (stats.logistic(10.0, 3.0), "logistic", lambda x: stats.logistic.fit(x)),
    (stats.gumbel_r(50.0, 12.0), "extvalue", lambda x: stats.gumbel_r.fit(x)),
    (stats.gumbel_l(50.0, 12.0), "extvaluemin", lambda x: stats.gumbel_l.fit(x)),
    (stats.pareto(3.0, scale=2.0), "pareto", lambda x: stats.pareto.fit(x, floc=0)),
    (stats.laplace(1.0, 2.0), "laplace", lambda x: stats.laplace.fit(x)),
    (stats.invgauss(0.5, scale=4.0), "invgauss", lambda x: stats.invgauss.fit(x, floc=0)),
    (stats.triang(0.3, loc=1.0, scale=5.0), "triang", None),
]
TRUE_COUNTS = [
    (stats.poisson(4.0), "poisson"),
    (stats.geom(0.2, loc=-1), "geomet"),
    (stats.nbinom(3, 0.3), "negbin"),
    (stats.binom(12, 0.4), "binomial"),
]
_BY_NAME = {c.name: c for c in CANDIDATES}


def _sample(dist: object, seed: int) -> np.ndarray:
    return np.asarray(dist.rvs(N, random_state=seed), dtype=np.float64)  # type: ignore[attr-defined]


def _params(report: object, name: str) -> tuple[float, ...]:
    (found,) = [f for f in report.fits if f.distribution == name]  # type: ignore[attr-defined]
    return tuple(v for _, v in found.params)


@pytest.mark.parametrize(
    ("dist", "name", "scipy_fit"), TRUE_FAMILIES, ids=[t[1] for t in TRUE_FAMILIES]
)
def test_continuous_family_recovered_and_ranked_first(dist, name, scipy_fit) -> None:
    x = _sample(dist, seed=11)
    report = fit(x, replicates=0)
    assert not report.discrete
    by_bic = sorted(report.fits, key=lambda f: f.bic)
    assert by_bic[0].distribution == name, [f.formula for f in by_bic[:3]]
    assert by_bic[0].bic_rank == 1 and report.fits[0].aic_rank == 1
    ours = _BY_NAME[name].scipy(*_params(report, name))
    u = np.array([0.01, 0.1, 0.5, 0.9, 0.99])
    if scipy_fit is not None:  # the same maximum as SciPy's own estimator
        theirs = dist.dist(*scipy_fit(x))
        np.testing.assert_allclose(ours.ppf(u), theirs.ppf(u), rtol=1e-4)
    # and near the truth
    np.testing.assert_allclose(
        ours.ppf(u[1:4]), dist.ppf(u[1:4]), rtol=0.06, atol=0.06 * dist.std()
    )


@pytest.mark.parametrize(("dist", "name"), TRUE_COUNTS, ids=[t[1] for t in TRUE_COUNTS])
def test_counting_family_ranked_first(dist, name) -> None:
    x = _sample(dist, seed=12)
    report = fit(x, replicates=0)
    assert report.discrete
    by_bic = sorted(report.fits, key=lambda f: f.bic)
    assert by_bic[0].distribution == name, [f.formula for f in by_bic[:3]]
    ours = _BY_NAME[name].scipy(*_params(report, name))
    assert ours.mean() == pytest.approx(dist.mean(), rel=0.05)
    assert ours.std() == pytest.approx(dist.std(), rel=0.1)


def test_poisson_and_geometric_are_the_closed_form_maxima() -> None:
    x = _sample(stats.poisson(4.0), seed=13)
    report = fit(x, replicates=0)
    assert _params(report, "poisson") == pytest.approx((x.mean(),))
    assert _params(report, "geomet") == pytest.approx((1.0 / (1.0 + x.mean()),))


@pytest.mark.parametrize("candidate", CANDIDATES, ids=lambda c: c.name)
def test_formula_samples_what_was_fitted(candidate) -> None:
    """The formula's numbers, checked and sampled by the engine, give the fitted quantiles."""
    source = stats.nbinom(3, 0.3) if candidate.discrete else stats.beta(2.0, 5.0)
    if candidate.name == "binomial":  # fitted only to counts less dispersed than a Poisson
        source = stats.binom(12, 0.4)
    data = _sample(source, seed=14)
    report = fit(data, kind=Kind.DISCRETE if candidate.discrete else Kind.CONTINUOUS, replicates=0)
    (found,) = [f for f in report.fits if f.distribution == candidate.name]
    call = re.fullmatch(r"=(Risk\w+)\((.*)\)", found.formula)
    assert call is not None and call.group(1) == found.function
    params = tuple(float(v) for v in call.group(2).split(", "))
    distribution = catalog.distribution(found.function)
    assert distribution is not None and distribution.name == candidate.name
    catalog.validate(distribution, params, "fit")
    u = np.linspace(0.005, 0.995, 199)
    engine = sampling.sample(candidate.name, u.copy(), params)
    np.testing.assert_allclose(engine, candidate.scipy(*params).ppf(u), rtol=1e-6, atol=1e-9)


def test_bootstrap_p_values_separate_the_true_family_from_a_wrong_one() -> None:
    x = _sample(stats.norm(5.0, 2.0), seed=15)[:500]
    report = fit(x, replicates=99, seed=3)
    by_name = {f.distribution: f for f in report.fits}
    right, wrong = by_name["normal"], by_name["uniform"]
    assert right.replicates == wrong.replicates == 99
    assert right.ks_p > 0.05 and right.ad_p > 0.05 and right.chi_square_p > 0.01
    assert wrong.ks_p <= 0.02 and wrong.ad_p <= 0.02
    # SciPy's own Monte Carlo test with fitted parameters (the Lilliefors setting) agrees
    reference = stats.goodness_of_fit(
        stats.norm, x, statistic="ks", n_mc_samples=199, random_state=1
    )
    assert abs(right.ks_p - reference.pvalue) < 0.15
    # the statistics themselves are SciPy's at the maximum-likelihood parameters
    mle = dict(zip(("loc", "scale"), stats.norm.fit(x), strict=True))
    for name, ours in (("ks", right.ks), ("ad", right.ad)):
        theirs = stats.goodness_of_fit(
            stats.norm, x, known_params=mle, statistic=name, n_mc_samples=1, random_state=1
        )
        assert ours == pytest.approx(theirs.statistic, rel=1e-9)


def test_same_sample_same_report_and_plot_points() -> None:
    x = _sample(stats.gamma(3.0, scale=2.0), seed=16)[:300]
    first, second = fit(x, replicates=20), fit(x, replicates=20)
    assert first == second
    best = first.fits[0]
    assert 0 < len(best.pp) <= 100 and len(best.pp) == len(best.qq)
    assert all(0.0 <= p <= 1.0 and 0.0 <= q <= 1.0 for p, q in best.pp)
    assert [q[0] for q in best.qq] == sorted(q[0] for q in best.qq)


def test_candidates_follow_the_support() -> None:
    report = fit(_sample(stats.norm(0.0, 1.0), seed=17), replicates=0)
    fitted = {f.distribution for f in report.fits}
    skipped = dict(report.skipped)
    assert {"lognorm", "gamma", "weibull", "expon", "pareto"}.isdisjoint(fitted)
    assert "values > 0" in skipped["RiskLognorm"]
    counts = fit(np.array([0, 1, 1, 2, 3, 5, 2, 1]), replicates=0)
    assert counts.discrete and all(_BY_NAME[f.distribution].discrete for f in counts.fits)
    as_continuous = fit(np.array([1, 1, 2, 3, 5, 2, 1]), kind=Kind.CONTINUOUS, replicates=0)
    assert not as_continuous.discrete


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([], "no values"),
        ([3.0], "at least 5"),
        ([1.0, 2.0, math.nan, 4.0, 5.0], "value 3 is nan"),
        ([1.0, 2.0, 3.0, 4.0, math.inf], "value 5 is inf"),
        ([7.0] * 10, "constant"),
    ],
)
def test_hostile_samples_are_refused_clearly(values, message) -> None:
    with pytest.raises(FitError, match=message):
        fit(values)


def test_too_many_values_and_bad_settings_are_refused() -> None:
    with pytest.raises(FitError, match="at most 1,000,000"):
        fit(np.zeros(MAX_VALUES + 1))
    with pytest.raises(FitError, match="replicates"):
        fit([1.0, 2.0, 3.0, 4.0, 5.0], replicates=10**6)
    with pytest.raises(FitError, match="whole numbers"):
        fit([1.5, 2.0, 3.0, 4.0, 5.0], kind=Kind.DISCRETE)
