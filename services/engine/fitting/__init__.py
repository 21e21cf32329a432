"""Distribution fitting: every applicable @RISK family fitted to a sample, ranked.

:func:`fit` takes a sample of numbers and fits each candidate of :mod:`.families` that
applies to it by maximum likelihood, continuous families for real-valued data and counting
families for whole numbers (``kind`` chooses; by default whole numbers >= 0 are counts).
Candidates are ranked by AIC (``2k - 2 log L``) and BIC (``k log n - 2 log L``), ``k`` counting
every estimated parameter, bounds included; each comes with its @RISK formula, goodness-of-fit
statistics with bootstrapped p-values (:mod:`.goodness`) and P-P and Q-Q points.

Bounded work: at most ``MAX_VALUES`` values; the bootstrap at most ``MAX_REPLICATES``
replicates of at most ``goodness.BOOTSTRAP_SIZE`` values per candidate. Same sample, same
report (the bootstrap's generator is seeded from ``seed``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np

from services.engine import catalog, sampling  # catalog registers every family

from . import goodness
from .families import CANDIDATES, Candidate, Unfit

__all__ = [
    "DEFAULT_REPLICATES",
    "MAX_REPLICATES",
    "MAX_VALUES",
    "MIN_VALUES",
    "Fit",
    "FitError",
    "Kind",
    "Report",
    "fit",
    "formula",
]

MIN_VALUES = 5
MAX_VALUES = 1_000_000
MAX_COUNT = 2**31  # counting families are fitted to whole numbers 0..MAX_COUNT
DEFAULT_REPLICATES = 50
MAX_REPLICATES = 200
PLOT_POINTS = 100


class FitError(ValueError):
    """A sample that cannot be fitted (empty, too small or large, not finite, constant)."""


class Kind(Enum):
    """Which families to try."""

    AUTO = "auto"  # counts for whole numbers >= 0, else continuous
    CONTINUOUS = "continuous"
    DISCRETE = "discrete"


@dataclass(frozen=True)
class Fit:
    """One fitted candidate; p-values are None where not defined or not bootstrapped."""

    distribution: str  # the engine's name, ``lognorm``
    function: str  # ``RiskLognorm``
    params: tuple[tuple[str, float], ...]
    formula: str  # ``=RiskLognorm(10.2, 3.1)``
    log_likelihood: float
    aic: float
    bic: float
    aic_rank: int
    bic_rank: int
    ks: float | None  # the KS distance D
    ks_p: float | None
    ad: float | None
    ad_p: float | None
    chi_square: float | None
    chi_square_p: float | None
    chi_square_bins: int
    replicates: int  # bootstrap replicates that counted
    pp: tuple[tuple[float, float], ...]  # (empirical probability, fitted probability)
    qq: tuple[tuple[float, float], ...]  # (data quantile, fitted quantile)


@dataclass(frozen=True)
class Report:
    """The ranked fits of one sample (best AIC first) and the candidates that did not apply."""

    count: int
    discrete: bool
    mean: float
    sd: float
    minimum: float
    maximum: float
    fits: tuple[Fit, ...]
    skipped: tuple[tuple[str, str], ...]  # (function, why)


def formula(candidate: Candidate, params: Sequence[float]) -> str:
    """``=RiskName(p1, p2)`` with 10 significant digits (whole parameters as integers)."""
    text = [str(int(v)) if i in candidate.whole else f"{v:.10g}" for i, v in enumerate(params)]
    return f"={_spelling(candidate.name)}({', '.join(text)})"


def _spelling(name: str) -> str:
    return catalog.DISTRIBUTIONS[name].risk_name


def _sample(values: Sequence[float] | np.ndarray) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise FitError("no values to fit")
    if x.size > MAX_VALUES:
        raise FitError(f"{x.size:,} values: at most {MAX_VALUES:,} can be fitted")
    bad = np.flatnonzero(~np.isfinite(x))
    if bad.size:
        raise FitError(f"value {bad[0] + 1} is {x[bad[0]]}: every value must be a finite number")
    if x.size < MIN_VALUES:
        raise FitError(f"{x.size} values: a fit needs at least {MIN_VALUES}")
    x = np.sort(x)
    if x[0] == x[-1]:
        raise FitError(f"every value is {x[0]:.10g}: a constant has no distribution to fit")
    return x


def _is_discrete(x: np.ndarray, kind: Kind) -> bool:
    counts = bool(np.all(x == np.floor(x))) and x[0] >= 0.0 and x[-1] <= MAX_COUNT
    if kind is Kind.DISCRETE and not counts:
        raise FitError(f"discrete families need whole numbers from 0 to {MAX_COUNT:,}")
    return kind is Kind.DISCRETE or (kind is Kind.AUTO and counts)


def fit(
    values: Sequence[float] | np.ndarray,
    kind: Kind = Kind.AUTO,
    replicates: int = DEFAULT_REPLICATES,
    seed: int = 0,
) -> Report:
    """Fit every applicable candidate to ``values`` and rank them (see the module docstring).

    Raises :class:`FitError` for a sample that cannot be fitted; a candidate that does not
    apply (lognormal of negative data) or whose estimate fails is listed in ``skipped``.
    """
    if not 0 <= replicates <= MAX_REPLICATES:
        raise FitError(f"replicates must be 0 to {MAX_REPLICATES}, got {replicates}")
    x = _sample(values)
    discrete = _is_discrete(x, kind)
    # Overflow, underflow and log(0) are expected in the fits of extreme data and handled
    # (a non-finite estimate or likelihood skips the candidate); NumPy need not warn.
    with np.errstate(all="ignore"):
        return _fit(x, discrete, replicates, seed)


def _fit(x: np.ndarray, discrete: bool, replicates: int, seed: int) -> Report:
    fitted: list[tuple[Candidate, tuple[float, ...], float]] = []
    skipped: list[tuple[str, str]] = []
    for candidate in CANDIDATES:
        if candidate.discrete != discrete:
            continue
        try:
            params = _estimate(candidate, x)
        except Unfit as exc:
            skipped.append((_spelling(candidate.name), str(exc)))
            continue
        ll = _log_likelihood(candidate, x, params)
        if not math.isfinite(ll):
            skipped.append((_spelling(candidate.name), "the fit gives the data no likelihood"))
            continue
        fitted.append((candidate, params, ll))
    n = len(x)
    aic = [2 * len(c.params) - 2 * ll for c, _, ll in fitted]
    bic = [len(c.params) * math.log(n) - 2 * ll for c, _, ll in fitted]
    aic_rank, bic_rank = _ranks(aic), _ranks(bic)
    fits = [
        _report(c, x, p, ll, aic[i], bic[i], aic_rank[i], bic_rank[i], replicates, seed + i)
        for i, (c, p, ll) in enumerate(fitted)
    ]
    fits.sort(key=lambda f: (f.aic_rank, f.bic_rank))
    return Report(
        count=n,
        discrete=discrete,
        mean=float(np.mean(x)),
        sd=float(np.std(x, ddof=1)),
        minimum=float(x[0]),
        maximum=float(x[-1]),
        fits=tuple(fits),
        skipped=tuple(skipped),
    )


def _estimate(candidate: Candidate, x: np.ndarray) -> tuple[float, ...]:
    try:
        params = candidate.fit(x)
    except (ValueError, ArithmeticError, RuntimeError) as exc:  # SciPy's FitError too
        raise Unfit(f"no maximum-likelihood estimate ({exc})") from exc
    if not all(math.isfinite(v) for v in params):
        raise Unfit("no finite maximum-likelihood estimate")
    return params


def _log_likelihood(candidate: Candidate, x: np.ndarray, params: tuple[float, ...]) -> float:
    dist = candidate.scipy(*params)
    density = dist.logpmf(x) if candidate.discrete else dist.logpdf(x)
    return float(np.sum(density))


def _ranks(scores: list[float]) -> list[int]:
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0] * len(scores)
    for rank, i in enumerate(order, 1):
        ranks[i] = rank
    return ranks


def _report(
    candidate: Candidate,
    x: np.ndarray,
    params: tuple[float, ...],
    ll: float,
    aic: float,
    bic: float,
    aic_rank: int,
    bic_rank: int,
    replicates: int,
    seed: int,
) -> Fit:
    observed = goodness.observe(candidate, x, params)
    p, used = goodness.bootstrap(candidate, len(x), params, observed, replicates, seed)
    n = len(x)
    pp, qq = _plot_points(candidate, x, params)
    return Fit(
        distribution=candidate.name,
        function=_spelling(candidate.name),
        params=tuple(zip(candidate.params, params, strict=True)),
        formula=formula(candidate, params),
        log_likelihood=ll,
        aic=aic,
        bic=bic,
        aic_rank=aic_rank,
        bic_rank=bic_rank,
        ks=None if observed.ks is None else observed.ks / math.sqrt(n),
        ks_p=p[0],
        ad=observed.ad,
        ad_p=p[1],
        chi_square=observed.chi_square,
        chi_square_p=p[2],
        chi_square_bins=observed.chi_square_bins,
        replicates=used,
        pp=pp,
        qq=qq,
    )


def _plot_points(
    candidate: Candidate, x: np.ndarray, params: tuple[float, ...]
) -> tuple[tuple[tuple[float, float], ...], tuple[tuple[float, float], ...]]:
    """At most PLOT_POINTS order statistics: P-P (empirical, fitted probability) and Q-Q
    (data value, fitted quantile at the plotting position (i + 0.5) / n)."""
    n = len(x)
    index = np.unique(np.linspace(0, n - 1, min(n, PLOT_POINTS)).round().astype(np.int64))
    position = (index + 0.5) / n
    dist = candidate.scipy(*params)
    fitted_p = np.asarray(dist.cdf(x[index]), dtype=np.float64)
    fitted_q = sampling.sample(candidate.name, position.copy(), params)  # the engine's quantiles
    pp = tuple((float(a), float(b)) for a, b in zip(position, fitted_p, strict=True))
    qq = tuple((float(a), float(b)) for a, b in zip(x[index], fitted_q, strict=True))
    return pp, qq
