# ruff: noqa: E501  (C source)
"""The @RISK distribution families beyond the original sixteen, on every back end.

Each :class:`Family` holds, in @RISK's parameter order and conventions: the constant-parameter
check (naming the parameter), the quantile (inverse CDF) and CDF for NumPy, the validity of
per-trial parameters, the C++ ``ppf_``/``cdf_`` functions of the generated source (one C++
unit per family, emitted only into models that sample it) and the mean used as the static
value of ``RiskLock``. Importing this module registers the families with :mod:`.sampling`
(NumPy), :mod:`.cuda.codegen` (C++) and, through :mod:`.catalog`, the front ends.

==============  ===========================  ================================================
@RISK           parameters                   value
==============  ===========================  ================================================
IntUniform      min, max                     integers min..max, equally likely
DUniform        {x}                          one of the values x, equally likely
Bernoulli       p                            1 with probability p, else 0
Geomet          p                            failures before the first success
Negbin          s, p                         failures before the s-th success
Hypergeo        n, D, M                      successes in n draws from M holding D
Logistic        alpha, beta                  location, scale
Loglogistic     gamma, beta, alpha           location, scale, shape
Pareto          theta, a                     shape, minimum
Pareto2         b, q                         scale, shape (Lomax, from 0)
Student         nu                           Student's t, nu degrees of freedom
ChiSq           nu                           chi-squared
F               nu1, nu2                     Fisher's F
Erlang          m, beta                      gamma with whole shape m, scale beta
Erf             h                            normal with mean 0, sd 1/(h sqrt 2)
ExtValue        alpha, beta                  Gumbel (largest value): location, scale
ExtValueMin     alpha, beta                  Gumbel (smallest value): location, scale
InvGauss        mu, lambda                   inverse Gaussian: mean, shape
Laplace         mu, sigma                    double exponential: mean, standard deviation
Levy            a, c                         location, scale
Rayleigh        b                            scale
Pearson5        alpha, beta                  inverse gamma: shape, scale
Pearson6        beta1, beta2, beta           beta prime: shapes, scale
General         min, max, {x}, {p}           density p at the points x, 0 at min and max,
                                             linear in between
Histogrm        min, max, {p}                equal-width bins over [min, max], weights p
CumulD          min, max, {x}, {p}           p = P(X > x) at the points x (descending)
Kumaraswamy     alpha1, alpha2, min, max     shapes, range
Dagum           gamma, beta, alpha1, alpha2  location, scale, shapes:
                                             F = (1 + ((x - gamma)/beta)^-alpha1)^-alpha2
Frechet         gamma, beta, alpha           location, scale, shape
Cauchy          gamma, beta                  location, scale
Reciprocal      min, max                     density proportional to 1/x, 0 < min < max
==============  ===========================  ================================================

Quantiles are closed forms where they exist; Student, ChiSq, F, Erlang, Pearson5 and
Pearson6 go through the incomplete gamma and beta inverses (tabulated in NumPy for constant
parameters, as the original gamma and beta are); InvGauss by a safeguarded Newton iteration
that NumPy and C++ run alike; counting families by their CDF. Tables of the General,
Histogrm, CumulD and DUniform families are prepared once at compile time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special, stats

from services.engine import checks, sampling
from services.engine.cuda import codegen
from services.engine.excel import registry
from services.engine.ir import Table

Param = Any  # a float or a float64 array; tables are ir.Table
_EULER = 0.5772156649015329


@dataclass(frozen=True)
class Family:
    """One distribution family (see the module docstring)."""

    spelling: str
    params: tuple[str, ...]
    check: checks.Check
    ppf: Callable[..., Any]
    cdf: Callable[..., Any]
    valid: Callable[..., Any]
    cpp: str
    cpp_valid: str = "true"
    tables: tuple[int, ...] = ()
    discrete: bool = False
    mean: Callable[..., float] | None = None
    cpp_args: Callable[[list[str], list[Table], Callable[[Sequence[float]], str]], str] | None = (
        None
    )
    cpp_name: str = ""
    constant: bool = False  # parameters must be constant (tables prepared at compile time)


FAMILIES: dict[str, Family] = {}


def _family(name: str, family: Family) -> None:
    FAMILIES[name] = family


# ------------------------------------------------------------------------- NumPy helpers


def _gamma_q(u: np.ndarray, a: Param) -> np.ndarray:
    """Lower quantile of Gamma(a, 1) (tabulated for a constant shape)."""
    return sampling._gamma_quantile(np.array(u, dtype=np.float64, copy=True), a)


def _beta_odds(u: np.ndarray, a1: Param, a2: Param) -> np.ndarray:
    """``q / (1 - q)`` for the Beta(a1, a2) quantile q, exact in both tails."""
    if np.ndim(a1) == 0 and np.ndim(a2) == 0:
        table = sampling.quantile_table("beta", (float(a1), float(a2)))
        if table is not None:
            y = sampling._interpolate(np.array(u, dtype=np.float64, copy=True), table)
            odds = np.exp(y, out=y)  # the table covers (0, 1): its ends are 0 and infinity
            result: np.ndarray = np.where(u >= 1.0, np.inf, np.where(u <= 0.0, 0.0, odds))
            return result
    q = special.betaincinv(a1, a2, u)
    c = special.betaincinv(a2, a1, 1.0 - u)
    result = np.where(q < 0.5, q / (1.0 - q), (1.0 - c) / c)
    return result


def _exact(*params: Param) -> tuple[Param, ...]:
    """Moments that never call for the normal approximation (these families are exact)."""
    zero = np.zeros(np.broadcast_shapes(*(np.shape(p) for p in params)))
    return zero, zero, zero, zero, zero


def _counting(dist: stats.rv_discrete, order: Callable[..., tuple[Any, ...]]) -> Callable[..., Any]:
    base = sampling._counting_ppf(dist, _exact)

    def ppf(u: np.ndarray, *params: Param) -> np.ndarray:
        return base(u, *order(*params))

    return ppf


def _pos(*xs: Param) -> Param:
    ok: Param = True
    for x in xs:
        ok = np.logical_and(ok, np.greater(x, 0.0))
    return ok


def _whole(x: Param, least: float) -> Param:
    return np.greater_equal(x, least) & np.equal(x, np.floor(x))


# ------------------------------------------------------------------------- discrete families

_family(
    "intuniform",
    Family(
        "IntUniform",
        ("min", "max"),
        checks.every(
            checks.whole("min", None), checks.whole("max", None), checks.ordered("min", None, "max")
        ),
        ppf=lambda u, a, b: a + np.floor(u * (b - a + 1.0)),
        cdf=lambda x, a, b: np.clip((np.floor(x) - a + 1.0) / (b - a + 1.0), 0.0, 1.0),
        valid=lambda a, b: (a < b) & np.equal(a, np.floor(a)) & np.equal(b, np.floor(b)),
        cpp=r"""
ALEA_HD double ppf_intuniform(double u, double a, double b) { return a + floor(u * (b - a + 1.0)); }
ALEA_HD double cdf_intuniform(double x, double a, double b) { return fmin(fmax((floor(x) - a + 1.0) / (b - a + 1.0), 0.0), 1.0); }
""",
        cpp_valid="{0} < {1} && {0} == floor({0}) && {1} == floor({1})",
        discrete=True,
        mean=lambda a, b: (a + b) / 2,
    ),
)


def _duniform_tables(xs: Table) -> tuple[np.ndarray, np.ndarray]:
    x = np.sort(np.asarray(xs.values, dtype=np.float64))
    return x, np.arange(1, len(x) + 1, dtype=np.float64) / len(x)


def _duniform_ppf(u: np.ndarray, xs: Table) -> np.ndarray:
    x, cum = _duniform_tables(xs)
    return x[np.minimum(np.searchsorted(cum, u, side="left"), len(x) - 1)]


def _duniform_cdf(v: Param, xs: Table) -> Param:
    x, cum = _duniform_tables(xs)
    idx = np.searchsorted(x, v, side="right")
    return np.where(idx > 0, cum[np.maximum(idx - 1, 0)], 0.0)


def _sorted_tables(scalars: list[str], tables: list[Table], table: Callable[..., Any]) -> str:
    x, cum = _duniform_tables(tables[0])
    return f"{table(x)}, {table(cum)}, {len(x)}"


def _nonempty(name: str) -> checks.Check:
    def check(s: checks.Scalars, t: checks.Tables, fail: checks.Fail) -> None:
        if name in t and not t[name]:
            fail(f"{name} must not be empty")

    return check


_family(
    "duniform",
    Family(
        "DUniform",
        ("values",),
        _nonempty("values"),
        ppf=_duniform_ppf,
        cdf=_duniform_cdf,
        valid=lambda xs: True,
        cpp="",
        tables=(0,),
        discrete=True,
        mean=lambda xs: float(np.mean(xs.values)),
        cpp_args=_sorted_tables,
        cpp_name="discrete",
    ),
)

_family(
    "bernoulli",
    Family(
        "Bernoulli",
        ("p",),
        checks.within("p", 0, 1),
        ppf=lambda u, p: np.where(u > 1.0 - p, 1.0, 0.0),
        cdf=lambda x, p: np.where(x < 0.0, 0.0, np.where(x < 1.0, 1.0 - p, 1.0)),
        valid=lambda p: (p >= 0) & (p <= 1),
        cpp=r"""
ALEA_HD double ppf_bernoulli(double u, double p) { return u > 1.0 - p ? 1.0 : 0.0; }
ALEA_HD double cdf_bernoulli(double x, double p) { return x < 0.0 ? 0.0 : (x < 1.0 ? 1.0 - p : 1.0); }
""",
        cpp_valid="{0} >= 0 && {0} <= 1",
        discrete=True,
        mean=lambda p: p,
    ),
)


def _geomet_ppf(u: np.ndarray, p: Param) -> np.ndarray:
    k = np.ceil(np.log1p(-u) / np.log1p(-p) - 1.0)
    return np.where(p >= 1.0, 0.0, np.maximum(k, 0.0))


_family(
    "geomet",
    Family(
        "Geomet",
        ("p",),
        checks.within("p", 0, 1, open_lo=True),
        ppf=_geomet_ppf,
        cdf=lambda x, p: np.where(x < 0.0, 0.0, -np.expm1((np.floor(x) + 1.0) * np.log1p(-p))),
        valid=lambda p: (p > 0) & (p <= 1),
        cpp=r"""
ALEA_HD double ppf_geomet(double u, double p) {
  return p >= 1.0 ? 0.0 : fmax(ceil(log1p(-u) / log1p(-p) - 1.0), 0.0);
}
ALEA_HD double cdf_geomet(double x, double p) { return x < 0.0 ? 0.0 : -expm1((floor(x) + 1.0) * log1p(-p)); }
""",
        cpp_valid="{0} > 0 && {0} <= 1",
        discrete=True,
        mean=lambda p: (1 - p) / p,
    ),
)

_family(
    "negbin",
    Family(
        "Negbin",
        ("s", "p"),
        checks.every(checks.whole("s", 1), checks.within("p", 0, 1, open_lo=True)),
        ppf=_counting(stats.nbinom, lambda s, p: (s, p)),
        cdf=lambda x, s, p: np.where(
            x < 0.0, 0.0, special.betainc(s, np.floor(np.maximum(x, 0.0)) + 1.0, p)
        ),
        valid=lambda s, p: _whole(s, 1) & (p > 0) & (p <= 1),
        cpp=r"""
ALEA_HD double cdf_negbin(double x, double s, double p) {
  double k = floor(x); return k < 0.0 ? 0.0 : (p >= 1.0 ? 1.0 : alea_betai(s, k + 1.0, p));
}
ALEA_HD_CALL double ppf_negbin(double u, double s, double p) {
  double lo = 0.0, hi = ceil(s * (1.0 - p) / p + 10.0 * sqrt(s * (1.0 - p)) / p + 10.0);
  while (cdf_negbin(hi, s, p) < u) hi *= 2.0;
  while (lo < hi) { double mid = floor(0.5 * (lo + hi)); if (cdf_negbin(mid, s, p) >= u) hi = mid; else lo = mid + 1.0; }
  return lo;
}
""",
        cpp_valid="{0} >= 1 && {0} == floor({0}) && {1} > 0 && {1} <= 1",
        discrete=True,
        mean=lambda s, p: s * (1 - p) / p,
    ),
)


def _hypergeo_check(s: checks.Scalars, t: checks.Tables, fail: checks.Fail) -> None:
    for name in ("n", "D", "M"):
        checks.whole(name, 0)(s, t, fail)
    m = s.get("M")
    for name in ("n", "D"):
        if m is not None and s.get(name, 0) > m:
            fail(f"{name} ({checks.fmt(s[name])}) must be <= M ({checks.fmt(m)})")


def _hypergeo_cdf(x: Param, n: Param, d: Param, m: Param) -> Param:
    return stats.hypergeom.cdf(np.floor(x), m, d, n)


_family(
    "hypergeo",
    Family(
        "Hypergeo",
        ("n", "D", "M"),
        _hypergeo_check,
        ppf=_counting(stats.hypergeom, lambda n, d, m: (m, d, n)),
        cdf=_hypergeo_cdf,
        valid=lambda n, d, m: _whole(n, 0) & _whole(d, 0) & _whole(m, 0) & (n <= m) & (d <= m),
        cpp=r"""
ALEA_HD double alea_hyper_pmf(double k, double n, double d, double m) {
  return exp(alea_lgamma(d + 1.0) - alea_lgamma(k + 1.0) - alea_lgamma(d - k + 1.0)
             + alea_lgamma(m - d + 1.0) - alea_lgamma(n - k + 1.0) - alea_lgamma(m - d - n + k + 1.0)
             - alea_lgamma(m + 1.0) + alea_lgamma(n + 1.0) + alea_lgamma(m - n + 1.0));
}
ALEA_HD_CALL double cdf_hypergeo(double x, double n, double d, double m) {
  double lo = fmax(0.0, n + d - m), hi = fmin(n, d), k = floor(x), acc = 0.0;
  if (k < lo) return 0.0;
  if (k >= hi) return 1.0;
  for (double j = lo; j <= k; j += 1.0) acc += alea_hyper_pmf(j, n, d, m);
  return fmin(acc, 1.0);
}
ALEA_HD_CALL double ppf_hypergeo(double u, double n, double d, double m) {
  double lo = fmax(0.0, n + d - m), hi = fmin(n, d), acc = 0.0;
  for (double j = lo; j < hi; j += 1.0) { acc += alea_hyper_pmf(j, n, d, m); if (acc >= u) return j; }
  return hi;
}
""",
        cpp_valid="{0} >= 0 && {0} == floor({0}) && {1} >= 0 && {1} == floor({1}) && {2} >= 0 && {2} == floor({2}) && {0} <= {2} && {1} <= {2}",
        discrete=True,
        mean=lambda n, d, m: n * d / m if m else 0.0,
    ),
)

# ------------------------------------------------------------------------ location-scale


def _logit(u: np.ndarray) -> np.ndarray:
    return np.log(u / (1.0 - u))


_family(
    "logistic",
    Family(
        "Logistic",
        ("alpha", "beta"),
        checks.positive("beta"),
        ppf=lambda u, a, b: a + b * _logit(u),
        cdf=lambda x, a, b: special.expit((x - a) / b),
        valid=lambda a, b: b > 0,
        cpp=r"""
ALEA_HD double ppf_logistic(double u, double a, double b) { return a + b * log(u / (1.0 - u)); }
ALEA_HD double cdf_logistic(double x, double a, double b) { return 1.0 / (1.0 + exp(-(x - a) / b)); }
""",
        cpp_valid="{1} > 0",
        mean=lambda a, b: a,
    ),
)


def _loglogistic_mean(g: float, b: float, a: float) -> float:
    return g + b * (math.pi / a) / math.sin(math.pi / a) if a > 1 else math.inf


_family(
    "loglogistic",
    Family(
        "Loglogistic",
        ("gamma", "beta", "alpha"),
        checks.positive("beta", "alpha"),
        ppf=lambda u, g, b, a: g + b * (u / (1.0 - u)) ** (1.0 / a),
        cdf=lambda x, g, b, a: np.where(
            x <= g, 0.0, 1.0 / (1.0 + (np.maximum(x - g, 0.0) / b) ** -a)
        ),
        valid=lambda g, b, a: _pos(b, a),
        cpp=r"""
ALEA_HD double ppf_loglogistic(double u, double g, double b, double a) { return g + b * pow(u / (1.0 - u), 1.0 / a); }
ALEA_HD double cdf_loglogistic(double x, double g, double b, double a) { return x <= g ? 0.0 : 1.0 / (1.0 + pow((x - g) / b, -a)); }
""",
        cpp_valid="{1} > 0 && {2} > 0",
        mean=_loglogistic_mean,
    ),
)

_family(
    "pareto",
    Family(
        "Pareto",
        ("theta", "a"),
        checks.positive("theta", "a"),
        ppf=lambda u, t, a: a * np.exp(-np.log1p(-u) / t),
        cdf=lambda x, t, a: np.where(x < a, 0.0, -np.expm1(t * np.log(a / np.maximum(x, a)))),
        valid=lambda t, a: _pos(t, a),
        cpp=r"""
ALEA_HD double ppf_pareto(double u, double t, double a) { return a * exp(-log1p(-u) / t); }
ALEA_HD double cdf_pareto(double x, double t, double a) { return x < a ? 0.0 : -expm1(t * log(a / x)); }
""",
        cpp_valid="{0} > 0 && {1} > 0",
        mean=lambda t, a: t * a / (t - 1) if t > 1 else math.inf,
    ),
)

_family(
    "pareto2",
    Family(
        "Pareto2",
        ("b", "q"),
        checks.positive("b", "q"),
        ppf=lambda u, b, q: b * np.expm1(-np.log1p(-u) / q),
        cdf=lambda x, b, q: np.where(
            x < 0.0, 0.0, -np.expm1(-q * np.log1p(np.maximum(x, 0.0) / b))
        ),
        valid=lambda b, q: _pos(b, q),
        cpp=r"""
ALEA_HD double ppf_pareto2(double u, double b, double q) { return b * expm1(-log1p(-u) / q); }
ALEA_HD double cdf_pareto2(double x, double b, double q) { return x < 0.0 ? 0.0 : -expm1(-q * log1p(x / b)); }
""",
        cpp_valid="{0} > 0 && {1} > 0",
        mean=lambda b, q: b / (q - 1) if q > 1 else math.inf,
    ),
)

# ------------------------------------------------------------- through incomplete gamma/beta


def _student_ppf(u: np.ndarray, nu: Param) -> np.ndarray:
    """t = ±sqrt(nu (1 - z) / z), z the Beta(nu/2, 1/2) quantile at 2 min(u, 1 - u)."""
    if np.ndim(nu):
        result: np.ndarray = special.stdtrit(nu, u)
        return result
    p = 2.0 * np.minimum(u, 1.0 - u)
    odds = _beta_odds(p, 0.5 * nu, 0.5)  # z / (1 - z)
    result = np.where(u < 0.5, -1.0, 1.0) * np.sqrt(nu / odds)
    return result


_family(
    "student",
    Family(
        "Student",
        ("nu",),
        checks.whole("nu", 1),
        ppf=_student_ppf,
        cdf=lambda x, nu: special.stdtr(nu, x),
        valid=lambda nu: _whole(nu, 1),
        cpp=r"""
ALEA_HD_CALL double ppf_student(double u, double nu) {
  double p = 2.0 * fmin(u, 1.0 - u), z, c;
  if (p < 0.5) { z = alea_invbetai(p, 0.5 * nu, 0.5); c = 1.0 - z; }
  else { c = alea_invbetai(1.0 - p, 0.5, 0.5 * nu); z = 1.0 - c; }
  double t = sqrt(nu * c / z);
  return u < 0.5 ? -t : t;
}
ALEA_HD double cdf_student(double x, double nu) {
  double tail = 0.5 * alea_betai(0.5 * nu, 0.5, nu / (nu + x * x));
  return x < 0.0 ? tail : 1.0 - tail;
}
""",
        cpp_valid="{0} >= 1 && {0} == floor({0})",
        mean=lambda nu: 0.0 if nu > 1 else math.nan,
    ),
)

_family(
    "chisq",
    Family(
        "ChiSq",
        ("nu",),
        checks.whole("nu", 1),
        ppf=lambda u, nu: 2.0 * _gamma_q(u, 0.5 * nu),
        cdf=lambda x, nu: special.gammainc(0.5 * nu, 0.5 * np.maximum(x, 0.0)),
        valid=lambda nu: _whole(nu, 1),
        cpp=r"""
ALEA_HD double ppf_chisq(double u, double nu) { return 2.0 * alea_invgammp(u, 0.5 * nu); }
ALEA_HD double cdf_chisq(double x, double nu) { return alea_gammp(0.5 * nu, 0.5 * fmax(x, 0.0)); }
""",
        cpp_valid="{0} >= 1 && {0} == floor({0})",
        mean=lambda nu: nu,
    ),
)

_BETA_ODDS_CPP = r"""
/* q / (1 - q) for the Beta(a, b) quantile q, from the nearer tail */
ALEA_HD_CALL double alea_beta_odds(double u, double a, double b) {
  if (u < 0.5) { double q = alea_invbetai(u, a, b); return q / (1.0 - q); }
  double c = alea_invbetai(1.0 - u, b, a); return (1.0 - c) / c;
}
"""
registry.unit("beta_odds", _BETA_ODDS_CPP)

_family(
    "f",
    Family(
        "F",
        ("nu1", "nu2"),
        checks.every(checks.whole("nu1", 1), checks.whole("nu2", 1)),
        ppf=lambda u, n1, n2: (n2 / n1) * _beta_odds(u, 0.5 * n1, 0.5 * n2),
        cdf=lambda x, n1, n2: special.fdtr(n1, n2, np.maximum(x, 0.0)),
        valid=lambda n1, n2: _whole(n1, 1) & _whole(n2, 1),
        cpp=r"""
ALEA_HD double ppf_f(double u, double n1, double n2) { return (n2 / n1) * alea_beta_odds(u, 0.5 * n1, 0.5 * n2); }
ALEA_HD double cdf_f(double x, double n1, double n2) {
  x = fmax(x, 0.0); return alea_betai(0.5 * n1, 0.5 * n2, n1 * x / (n1 * x + n2));
}
""",
        cpp_valid="{0} >= 1 && {0} == floor({0}) && {1} >= 1 && {1} == floor({1})",
        mean=lambda n1, n2: n2 / (n2 - 2) if n2 > 2 else math.inf,
    ),
)

_family(
    "erlang",
    Family(
        "Erlang",
        ("m", "beta"),
        checks.every(checks.whole("m", 1), checks.positive("beta")),
        ppf=lambda u, m, b: b * _gamma_q(u, m),
        cdf=lambda x, m, b: special.gammainc(m, np.maximum(x, 0.0) / b),
        valid=lambda m, b: _whole(m, 1) & (b > 0),
        cpp=r"""
ALEA_HD double ppf_erlang(double u, double m, double b) { return b * alea_invgammp(u, m); }
ALEA_HD double cdf_erlang(double x, double m, double b) { return alea_gammp(m, fmax(x, 0.0) / b); }
""",
        cpp_valid="{0} >= 1 && {0} == floor({0}) && {1} > 0",
        mean=lambda m, b: m * b,
    ),
)

_family(
    "pearson5",
    Family(
        "Pearson5",
        ("alpha", "beta"),
        checks.positive("alpha", "beta"),
        ppf=lambda u, a, b: b / _gamma_q(1.0 - u, a),
        cdf=lambda x, a, b: np.where(
            x <= 0.0, 0.0, special.gammaincc(a, b / np.maximum(x, 1e-300))
        ),
        valid=lambda a, b: _pos(a, b),
        cpp=r"""
ALEA_HD double ppf_pearson5(double u, double a, double b) { return b / alea_invgammp(1.0 - u, a); }
ALEA_HD double cdf_pearson5(double x, double a, double b) { return x <= 0.0 ? 0.0 : alea_gammq(a, b / x); }
""",
        cpp_valid="{0} > 0 && {1} > 0",
        mean=lambda a, b: b / (a - 1) if a > 1 else math.inf,
    ),
)

_family(
    "pearson6",
    Family(
        "Pearson6",
        ("beta1", "beta2", "beta"),
        checks.positive("beta1", "beta2", "beta"),
        ppf=lambda u, b1, b2, b: b * _beta_odds(u, b1, b2),
        cdf=lambda x, b1, b2, b: special.betainc(
            b1, b2, np.maximum(x, 0.0) / (np.maximum(x, 0.0) + b)
        ),
        valid=lambda b1, b2, b: _pos(b1, b2, b),
        cpp=r"""
ALEA_HD double ppf_pearson6(double u, double b1, double b2, double b) { return b * alea_beta_odds(u, b1, b2); }
ALEA_HD double cdf_pearson6(double x, double b1, double b2, double b) { x = fmax(x, 0.0); return alea_betai(b1, b2, x / (x + b)); }
""",
        cpp_valid="{0} > 0 && {1} > 0 && {2} > 0",
        mean=lambda b1, b2, b: b * b1 / (b2 - 1) if b2 > 1 else math.inf,
    ),
)

# --------------------------------------------------------------------- closed-form others

_SQRT2 = math.sqrt(2.0)

_family(
    "erf",
    Family(
        "Erf",
        ("h",),
        checks.positive("h"),
        ppf=lambda u, h: special.ndtri(u) / (h * _SQRT2),
        cdf=lambda x, h: special.ndtr(x * h * _SQRT2),
        valid=lambda h: h > 0,
        cpp=r"""
ALEA_HD double ppf_erf(double u, double h) { return normcdfinv(u) / (h * 1.4142135623730951); }
ALEA_HD double cdf_erf(double x, double h) { return normcdf(x * h * 1.4142135623730951); }
""",
        cpp_valid="{0} > 0",
        mean=lambda h: 0.0,
    ),
)

_family(
    "extvalue",
    Family(
        "ExtValue",
        ("alpha", "beta"),
        checks.positive("beta"),
        ppf=lambda u, a, b: a - b * np.log(-np.log(u)),
        cdf=lambda x, a, b: np.exp(-np.exp(-(x - a) / b)),
        valid=lambda a, b: b > 0,
        cpp=r"""
ALEA_HD double ppf_extvalue(double u, double a, double b) { return a - b * log(-log(u)); }
ALEA_HD double cdf_extvalue(double x, double a, double b) { return exp(-exp(-(x - a) / b)); }
""",
        cpp_valid="{1} > 0",
        mean=lambda a, b: a + b * _EULER,
    ),
)

_family(
    "extvaluemin",
    Family(
        "ExtValueMin",
        ("alpha", "beta"),
        checks.positive("beta"),
        ppf=lambda u, a, b: a + b * np.log(-np.log1p(-u)),
        cdf=lambda x, a, b: -np.expm1(-np.exp((x - a) / b)),
        valid=lambda a, b: b > 0,
        cpp=r"""
ALEA_HD double ppf_extvaluemin(double u, double a, double b) { return a + b * log(-log1p(-u)); }
ALEA_HD double cdf_extvaluemin(double x, double a, double b) { return -expm1(-exp((x - a) / b)); }
""",
        cpp_valid="{1} > 0",
        mean=lambda a, b: a - b * _EULER,
    ),
)


def _laplace_ppf(u: np.ndarray, mu: Param, sigma: Param) -> np.ndarray:
    b = sigma / _SQRT2
    result: np.ndarray = np.where(
        u < 0.5, mu + b * np.log(2.0 * u), mu - b * np.log(2.0 * (1.0 - u))
    )
    return result


def _laplace_cdf(x: Param, mu: Param, sigma: Param) -> Param:
    z = (x - mu) * _SQRT2 / sigma
    return np.where(
        z < 0.0, 0.5 * np.exp(np.minimum(z, 0.0)), 1.0 - 0.5 * np.exp(-np.maximum(z, 0.0))
    )


_family(
    "laplace",
    Family(
        "Laplace",
        ("mu", "sigma"),
        checks.positive("sigma"),
        ppf=_laplace_ppf,
        cdf=_laplace_cdf,
        valid=lambda mu, s: s > 0,
        cpp=r"""
ALEA_HD double ppf_laplace(double u, double mu, double s) {
  double b = s / 1.4142135623730951;
  return u < 0.5 ? mu + b * log(2.0 * u) : mu - b * log(2.0 * (1.0 - u));
}
ALEA_HD double cdf_laplace(double x, double mu, double s) {
  double z = (x - mu) * 1.4142135623730951 / s; return z < 0.0 ? 0.5 * exp(z) : 1.0 - 0.5 * exp(-z);
}
""",
        cpp_valid="{1} > 0",
        mean=lambda mu, s: mu,
    ),
)


def _levy_ppf(u: np.ndarray, a: Param, c: Param) -> np.ndarray:
    z = special.ndtri(0.5 * u)
    result: np.ndarray = a + c / (z * z)
    return result


_family(
    "levy",
    Family(
        "Levy",
        ("a", "c"),
        checks.positive("c"),
        ppf=_levy_ppf,
        cdf=lambda x, a, c: np.where(
            x <= a, 0.0, 2.0 * special.ndtr(-np.sqrt(c / np.maximum(x - a, 1e-300)))
        ),
        valid=lambda a, c: c > 0,
        cpp=r"""
ALEA_HD double ppf_levy(double u, double a, double c) { double z = normcdfinv(0.5 * u); return a + c / (z * z); }
ALEA_HD double cdf_levy(double x, double a, double c) { return x <= a ? 0.0 : 2.0 * normcdf(-sqrt(c / (x - a))); }
""",
        cpp_valid="{1} > 0",
        mean=lambda a, c: math.inf,
    ),
)

_family(
    "rayleigh",
    Family(
        "Rayleigh",
        ("b",),
        checks.positive("b"),
        ppf=lambda u, b: b * np.sqrt(-2.0 * np.log1p(-u)),
        cdf=lambda x, b: -np.expm1(-0.5 * (np.maximum(x, 0.0) / b) ** 2),
        valid=lambda b: b > 0,
        cpp=r"""
ALEA_HD double ppf_rayleigh(double u, double b) { return b * sqrt(-2.0 * log1p(-u)); }
ALEA_HD double cdf_rayleigh(double x, double b) { x = fmax(x, 0.0) / b; return -expm1(-0.5 * x * x); }
""",
        cpp_valid="{0} > 0",
        mean=lambda b: b * math.sqrt(math.pi / 2),
    ),
)


def _kumaraswamy_ppf(u: np.ndarray, a1: Param, a2: Param, lo: Param, hi: Param) -> np.ndarray:
    z = (-np.expm1(np.log1p(-u) / a2)) ** (1.0 / a1)
    result: np.ndarray = lo + (hi - lo) * z
    return result


def _kumaraswamy_cdf(x: Param, a1: Param, a2: Param, lo: Param, hi: Param) -> Param:
    z = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return -np.expm1(a2 * np.log1p(-(z**a1)))


def _kumaraswamy_mean(a1: float, a2: float, lo: float, hi: float) -> float:
    m = a2 * math.exp(special.betaln(1 + 1 / a1, a2))
    return lo + (hi - lo) * m


_family(
    "kumaraswamy",
    Family(
        "Kumaraswamy",
        ("alpha1", "alpha2", "min", "max"),
        checks.every(checks.positive("alpha1", "alpha2"), checks.ordered("min", None, "max")),
        ppf=_kumaraswamy_ppf,
        cdf=_kumaraswamy_cdf,
        valid=lambda a1, a2, lo, hi: _pos(a1, a2) & (lo < hi),
        cpp=r"""
ALEA_HD double ppf_kumaraswamy(double u, double a1, double a2, double lo, double hi) {
  return lo + (hi - lo) * pow(-expm1(log1p(-u) / a2), 1.0 / a1);
}
ALEA_HD double cdf_kumaraswamy(double x, double a1, double a2, double lo, double hi) {
  double z = fmin(fmax((x - lo) / (hi - lo), 0.0), 1.0); return -expm1(a2 * log1p(-pow(z, a1)));
}
""",
        cpp_valid="{0} > 0 && {1} > 0 && {2} < {3}",
        mean=_kumaraswamy_mean,
    ),
)


def _dagum_ppf(u: np.ndarray, g: Param, b: Param, a1: Param, a2: Param) -> np.ndarray:
    result: np.ndarray = g + b * np.expm1(-np.log(u) / a2) ** (-1.0 / a1)
    return result


def _dagum_cdf(x: Param, g: Param, b: Param, a1: Param, a2: Param) -> Param:
    y = np.maximum(x - g, 0.0) / b
    with np.errstate(divide="ignore"):
        return np.where(x <= g, 0.0, np.exp(-a2 * np.log1p(y ** (-a1))))


def _dagum_mean(g: float, b: float, a1: float, a2: float) -> float:
    if a1 <= 1:
        return math.inf
    return g + b * math.exp(
        special.gammaln(a2 + 1 / a1) + special.gammaln(1 - 1 / a1) - special.gammaln(a2)
    )


_family(
    "dagum",
    Family(
        "Dagum",
        ("gamma", "beta", "alpha1", "alpha2"),
        checks.positive("beta", "alpha1", "alpha2"),
        ppf=_dagum_ppf,
        cdf=_dagum_cdf,
        valid=lambda g, b, a1, a2: _pos(b, a1, a2),
        cpp=r"""
ALEA_HD double ppf_dagum(double u, double g, double b, double a1, double a2) { return g + b * pow(expm1(-log(u) / a2), -1.0 / a1); }
ALEA_HD double cdf_dagum(double x, double g, double b, double a1, double a2) {
  return x <= g ? 0.0 : exp(-a2 * log1p(pow((x - g) / b, -a1)));
}
""",
        cpp_valid="{1} > 0 && {2} > 0 && {3} > 0",
        mean=_dagum_mean,
    ),
)

_family(
    "frechet",
    Family(
        "Frechet",
        ("gamma", "beta", "alpha"),
        checks.positive("beta", "alpha"),
        ppf=lambda u, g, b, a: g + b * (-np.log(u)) ** (-1.0 / a),
        cdf=lambda x, g, b, a: np.where(
            x <= g, 0.0, np.exp(-((np.maximum(x - g, 1e-300) / b) ** -a))
        ),
        valid=lambda g, b, a: _pos(b, a),
        cpp=r"""
ALEA_HD double ppf_frechet(double u, double g, double b, double a) { return g + b * pow(-log(u), -1.0 / a); }
ALEA_HD double cdf_frechet(double x, double g, double b, double a) { return x <= g ? 0.0 : exp(-pow((x - g) / b, -a)); }
""",
        cpp_valid="{1} > 0 && {2} > 0",
        mean=lambda g, b, a: g + b * math.gamma(1 - 1 / a) if a > 1 else math.inf,
    ),
)


def _cauchy_ppf(u: np.ndarray, g: Param, b: Param) -> np.ndarray:
    """Each third of the range in the form whose tangent argument is small (no pole)."""
    mid = b * np.tan(np.pi * (u - 0.5))
    low = -b / np.tan(np.pi * u)
    high = b / np.tan(np.pi * (1.0 - u))
    result: np.ndarray = g + np.where(u < 0.25, low, np.where(u > 0.75, high, mid))
    return result


_family(
    "cauchy",
    Family(
        "Cauchy",
        ("gamma", "beta"),
        checks.positive("beta"),
        ppf=_cauchy_ppf,
        cdf=lambda x, g, b: 0.5 + np.arctan((x - g) / b) / np.pi,
        valid=lambda g, b: b > 0,
        cpp=r"""
ALEA_HD double ppf_cauchy(double u, double g, double b) {
  const double pi = 3.141592653589793;
  if (u < 0.25) return g - b / tan(pi * u);
  if (u > 0.75) return g + b / tan(pi * (1.0 - u));
  return g + b * tan(pi * (u - 0.5));
}
ALEA_HD double cdf_cauchy(double x, double g, double b) { return 0.5 + atan((x - g) / b) / 3.141592653589793; }
""",
        cpp_valid="{1} > 0",
        mean=lambda g, b: math.nan,
    ),
)

_family(
    "reciprocal",
    Family(
        "Reciprocal",
        ("min", "max"),
        checks.every(checks.positive("min"), checks.ordered("min", None, "max")),
        ppf=lambda u, lo, hi: lo * np.exp(u * np.log(hi / lo)),
        cdf=lambda x, lo, hi: np.clip(np.log(np.maximum(x, lo) / lo) / np.log(hi / lo), 0.0, 1.0),
        valid=lambda lo, hi: (lo > 0) & (lo < hi),
        cpp=r"""
ALEA_HD double ppf_reciprocal(double u, double lo, double hi) { return lo * exp(u * log(hi / lo)); }
ALEA_HD double cdf_reciprocal(double x, double lo, double hi) { return fmin(fmax(log(fmax(x, lo) / lo) / log(hi / lo), 0.0), 1.0); }
""",
        cpp_valid="{0} > 0 && {0} < {1}",
        mean=lambda lo, hi: (hi - lo) / math.log(hi / lo),
    ),
)

# ------------------------------------------------------------------------ inverse Gaussian
#
# x = mu * y with y ~ IG(1, phi), phi = lambda / mu; with z1 = sqrt(phi / y) (y - 1) and
# z2 = sqrt(phi / y) (y + 1), F(y) = N(z1) + e^(2 phi) N(-z2). Since e^(2 phi) phi(z2) =
# phi(z1) (phi the normal density), both tails are written with the Mills ratio
# R(z) = N(-z) / phi(z) and never form e^(2 phi):
#   F(y) = phi(z1) (R(-z1) + R(z2))      for y < 1, else N(z1) + phi(z1) R(z2)
#   1 - F(y) = phi(z1) (R(z1) - R(z2))   for y > 1, else N(-z1) - phi(z1) R(z2)
# R is N(-z)/phi(z) below 5 and a continued fraction above. The quantile solves F = u
# (u < 1/2) or 1 - F = 1 - u by Newton steps in log y (at most 1 each) from the lognormal
# with the same mean and variance, inside a shrinking bracket; NumPy and C++ run the same
# iteration.

_IG_STEPS = 60


def _mills(z: np.ndarray) -> np.ndarray:
    """R(z) = N(-z) / phi(z) for z >= 0."""
    low = z < 5.0
    zl = np.where(low, z, 0.0)
    small = special.ndtr(-zl) / (0.3989422804014327 * np.exp(-0.5 * zl * zl))
    zh = np.where(low, 5.0, z)
    t = zh.copy()
    for k in range(30, 0, -1):
        t = zh + k / t
    return np.where(low, small, 1.0 / t)


def _ig_tails(y: np.ndarray, phi: Any) -> tuple[np.ndarray, np.ndarray]:
    """(F(y), 1 - F(y)) of IG(1, phi), each accurate in its own tail."""
    r = np.sqrt(phi / y)
    z1, z2 = r * (y - 1.0), r * (y + 1.0)
    dens = 0.3989422804014327 * np.exp(-0.5 * z1 * z1)
    r2 = _mills(z2)
    r1 = _mills(np.abs(z1))
    below = z1 < 0
    lower = np.where(below, dens * (r1 + r2), special.ndtr(z1) + dens * r2)
    upper = np.where(below, special.ndtr(-z1) - dens * r2, dens * (r1 - r2))
    return lower, upper


def _invgauss_ppf(u: np.ndarray, mu: Param, lam: Param) -> np.ndarray:
    phi = np.asarray(lam / mu, dtype=np.float64)
    shape = np.broadcast_shapes(np.shape(u), np.shape(phi))
    u = np.broadcast_to(u, shape).ravel()
    phi = np.broadcast_to(phi, shape).ravel()
    sigma = np.sqrt(np.log1p(1.0 / phi))
    s = -0.5 * sigma * sigma + sigma * special.ndtri(u)  # log y of the matching lognormal
    lo, hi = np.full(s.shape, -np.inf), np.full(s.shape, np.inf)
    upper_tail = u >= 0.5
    target = np.where(upper_tail, 1.0 - u, u)
    live = np.arange(s.size)
    for _ in range(_IG_STEPS):  # only the trials still moving are computed
        if live.size == 0:
            break
        sl, ph = s[live], phi[live]
        y = np.exp(sl)
        lower, upper = _ig_tails(y, ph)
        g = np.where(upper_tail[live], target[live] - upper, lower - target[live])  # up in s
        lo[live] = np.where(g < 0, sl, lo[live])
        hi[live] = np.where(g >= 0, sl, hi[live])
        dens = np.sqrt(ph / (2.0 * np.pi * y)) * np.exp(-ph * (y - 1.0) ** 2 / (2.0 * y))
        nxt = sl - np.clip(g / np.maximum(dens, 1e-300), -1.0, 1.0)  # dF/ds = f(y) y
        a, b = lo[live], hi[live]
        inside = (nxt > a) & (nxt < b) & np.isfinite(nxt)
        both = np.isfinite(a) & np.isfinite(b)
        fallback = np.where(both, 0.5 * (a + b), np.where(np.isfinite(a), a + 1.0, b - 1.0))
        nxt = np.where(inside, nxt, fallback)
        done = np.abs(nxt - sl) <= 1e-14 * np.maximum(1.0, np.abs(sl))
        s[live] = nxt
        live = live[~done]
    result: np.ndarray = (
        (mu * np.exp(s)).reshape(shape) if np.ndim(mu) == 0 else mu * np.exp(s).reshape(shape)
    )
    return result


def _invgauss_cdf(x: Param, mu: Param, lam: Param) -> Param:
    y = np.maximum(np.asarray(x, dtype=np.float64) / mu, 1e-300)
    lower, _ = _ig_tails(np.atleast_1d(y), np.atleast_1d(lam / mu))
    lower = lower.reshape(np.shape(y))
    return np.where(np.asarray(x) <= 0.0, 0.0, np.clip(lower, 0.0, 1.0))


_family(
    "invgauss",
    Family(
        "InvGauss",
        ("mu", "lambda"),
        checks.positive("mu", "lambda"),
        ppf=_invgauss_ppf,
        cdf=_invgauss_cdf,
        valid=lambda mu, lam: _pos(mu, lam),
        cpp=r"""
ALEA_HD double alea_mills(double z) {  /* N(-z) / phi(z), z >= 0 */
  if (z < 5.0) return normcdf(-z) / (0.3989422804014327 * exp(-0.5 * z * z));
  double t = z; for (int k = 30; k >= 1; --k) t = z + k / t; return 1.0 / t;
}
ALEA_HD void alea_ig_tails(double y, double phi, double* lower, double* upper) {
  double r = sqrt(phi / y), z1 = r * (y - 1.0), z2 = r * (y + 1.0);
  double dens = 0.3989422804014327 * exp(-0.5 * z1 * z1), r2 = alea_mills(z2), r1 = alea_mills(fabs(z1));
  if (z1 < 0.0) { *lower = dens * (r1 + r2); *upper = normcdf(-z1) - dens * r2; }
  else { *lower = normcdf(z1) + dens * r2; *upper = dens * (r1 - r2); }
}
ALEA_HD_CALL double ppf_invgauss(double u, double mu, double lam) {
  double phi = lam / mu, sigma = sqrt(log1p(1.0 / phi));
  double s = -0.5 * sigma * sigma + sigma * normcdfinv(u), lo = -INFINITY, hi = INFINITY;
  bool upper_tail = u >= 0.5; double target = upper_tail ? 1.0 - u : u;
  for (int i = 0; i < 60; ++i) {
    double y = exp(s), lower, upper; alea_ig_tails(y, phi, &lower, &upper);
    double g = upper_tail ? target - upper : lower - target;
    if (g < 0) lo = s; else hi = s;
    double dens = sqrt(phi / (2.0 * 3.141592653589793 * y)) * exp(-phi * (y - 1.0) * (y - 1.0) / (2.0 * y));
    double nxt = s - fmin(fmax(g / fmax(dens, 1e-300), -1.0), 1.0);
    if (!(nxt > lo && nxt < hi && isfinite(nxt)))
      nxt = (isfinite(lo) && isfinite(hi)) ? 0.5 * (lo + hi) : (isfinite(lo) ? lo + 1.0 : hi - 1.0);
    bool done = fabs(nxt - s) <= 1e-14 * fmax(1.0, fabs(s));
    s = nxt;
    if (done) break;
  }
  return mu * exp(s);
}
ALEA_HD double cdf_invgauss(double x, double mu, double lam) {
  if (x <= 0.0) return 0.0;
  double lower, upper; alea_ig_tails(x / mu, lam / mu, &lower, &upper);
  return fmin(fmax(lower, 0.0), 1.0);
}
""",
        cpp_valid="{0} > 0 && {1} > 0",
        mean=lambda mu, lam: mu,
    ),
)

# ---------------------------------------------------------------------- table families


def _general_tables(lo: float, hi: float, xs: Table, ps: Table) -> tuple[np.ndarray, ...]:
    """Points (min, x..., max), densities (0, p..., 0) normalised, cumulative areas."""
    x = np.concatenate(([lo], np.asarray(xs.values, dtype=np.float64), [hi]))
    d = np.concatenate(([0.0], np.asarray(ps.values, dtype=np.float64), [0.0]))
    areas = 0.5 * (d[1:] + d[:-1]) * np.diff(x)
    total = areas.sum()
    cum = np.concatenate(([0.0], np.cumsum(areas))) / total
    return x, d / total, cum


def _general_ppf(u: np.ndarray, lo: Param, hi: Param, xs: Table, ps: Table) -> np.ndarray:
    x, d, cum = _general_tables(float(lo), float(hi), xs, ps)
    seg = np.clip(np.searchsorted(cum, u, side="left") - 1, 0, len(x) - 2)
    r = u - cum[seg]
    d0, w = d[seg], x[seg + 1] - x[seg]
    m = (d[seg + 1] - d0) / w
    root = np.sqrt(np.maximum(d0 * d0 + 2.0 * m * r, 0.0))
    t = 2.0 * r / (d0 + root)
    result: np.ndarray = np.minimum(x[seg] + np.where(d0 + root > 0, t, 0.0), x[seg + 1])
    return result


def _general_cdf(v: Param, lo: Param, hi: Param, xs: Table, ps: Table) -> Param:
    x, d, cum = _general_tables(float(lo), float(hi), xs, ps)
    seg = np.clip(np.searchsorted(x, v, side="right") - 1, 0, len(x) - 2)
    t = np.clip(v - x[seg], 0.0, x[seg + 1] - x[seg])
    m = (d[seg + 1] - d[seg]) / (x[seg + 1] - x[seg])
    p = cum[seg] + d[seg] * t + 0.5 * m * t * t
    return np.where(v <= lo, 0.0, np.where(v >= hi, 1.0, np.clip(p, 0.0, 1.0)))


def _general_check(s: checks.Scalars, t: checks.Tables, fail: checks.Fail) -> None:
    checks.ordered("min", None, "max")(s, t, fail)
    checks.cumulative("x", "p")(s, {"x": t["x"]} if "x" in t else {}, fail)
    x, p = t.get("x"), t.get("p")
    if x is not None and p is not None and len(x) != len(p):
        fail(f"x has {len(x)} entries but p has {len(p)}")
    if p is not None:
        if any(v < 0 for v in p):
            fail("p must all be >= 0")
        if not any(v > 0 for v in p):
            fail("p must not all be 0")


def _general_mean(lo: float, hi: float, xs: Table, ps: Table) -> float:
    x, d, _ = _general_tables(lo, hi, xs, ps)
    # each trapezoid's first moment: integral of x (d0 + m (x - x0)) over the segment
    w = np.diff(x)
    return float(np.sum(w * (d[:-1] * (2 * x[:-1] + x[1:]) + d[1:] * (x[:-1] + 2 * x[1:])) / 6.0))


def _number(c_literal: str) -> float:
    """The value of a C double literal written by ``codegen.literal``."""
    return float.fromhex(c_literal.strip("()"))


def _general_cpp(scalars: list[str], tables: list[Table], table: Callable[..., Any]) -> str:
    lo, hi = (_number(s) for s in scalars)  # constant: the front end requires it
    x, d, cum = _general_tables(lo, hi, *tables)
    return f"{table(x)}, {table(d)}, {table(cum)}, {len(x)}"


_family(
    "general",
    Family(
        "General",
        ("min", "max", "x", "p"),
        _general_check,
        ppf=_general_ppf,
        cdf=_general_cdf,
        valid=lambda lo, hi, xs, ps: lo < hi,
        cpp=r"""
/* points x (n, from min to max), normalised densities d, cumulative areas c */
ALEA_HD double ppf_general(double u, const double* x, const double* d, const double* c, int n) {
  int s = 0; while (s < n - 2 && c[s + 1] < u) ++s;
  double r = u - c[s], d0 = d[s], w = x[s + 1] - x[s], m = (d[s + 1] - d0) / w;
  double root = sqrt(fmax(d0 * d0 + 2.0 * m * r, 0.0));
  double t = d0 + root > 0.0 ? 2.0 * r / (d0 + root) : 0.0;
  return fmin(x[s] + t, x[s + 1]);
}
ALEA_HD double cdf_general(double v, const double* x, const double* d, const double* c, int n) {
  if (v <= x[0]) return 0.0;
  if (v >= x[n - 1]) return 1.0;
  int s = 0; while (s < n - 2 && x[s + 1] <= v) ++s;
  double t = v - x[s], m = (d[s + 1] - d[s]) / (x[s + 1] - x[s]);
  return fmin(fmax(c[s] + d[s] * t + 0.5 * m * t * t, 0.0), 1.0);
}
""",
        tables=(2, 3),
        mean=_general_mean,
        cpp_args=_general_cpp,
        constant=True,
    ),
)


def _histogrm_points(lo: float, hi: float, ps: Table) -> tuple[Table, Table]:
    """The histogram as a Cumul: inner bin edges and their cumulative probabilities."""
    p = np.asarray(ps.values, dtype=np.float64)
    n = len(p)
    edges = lo + (hi - lo) * np.arange(1, n) / n
    cum = np.cumsum(p)[:-1] / p.sum()
    return Table(tuple(edges), n - 1, 1), Table(tuple(cum), n - 1, 1)


def _histogrm(fn: Callable[..., Any]) -> Callable[..., Any]:
    def apply(v: Param, lo: Param, hi: Param, ps: Table) -> Param:
        return fn(v, lo, hi, *_histogrm_points(float(lo), float(hi), ps))

    return apply


def _histogrm_check(s: checks.Scalars, t: checks.Tables, fail: checks.Fail) -> None:
    checks.ordered("min", None, "max")(s, t, fail)
    checks.probabilities("p", "p")(s, t, fail)


def _histogrm_mean(lo: float, hi: float, ps: Table) -> float:
    p = np.asarray(ps.values, dtype=np.float64)
    mids = lo + (hi - lo) * (np.arange(len(p)) + 0.5) / len(p)
    return float(np.sum(p * mids) / p.sum())


def _cumul_cpp(lo: str, hi: str, xs: Table, ps: Table, table: Callable[..., Any]) -> str:
    return f"{lo}, {hi}, {table(xs.values)}, {table(ps.values)}, {len(xs.values)}"


_family(
    "histogrm",
    Family(
        "Histogrm",
        ("min", "max", "p"),
        _histogrm_check,
        ppf=_histogrm(sampling._cumul_ppf),
        cdf=_histogrm(sampling._cumul_cdf),
        valid=lambda lo, hi, ps: lo < hi,
        cpp="",
        tables=(2,),
        mean=_histogrm_mean,
        cpp_args=lambda s, t, table: _cumul_cpp(
            s[0], s[1], *_histogrm_points(_number(s[0]), _number(s[1]), t[0]), table
        ),
        cpp_name="cumul",
        constant=True,
    ),
)


def _ascending(ps: Table) -> Table:
    return Table(tuple(1.0 - v for v in ps.values), ps.rows, ps.cols)


def _cumuld(fn: Callable[..., Any]) -> Callable[..., Any]:
    def apply(v: Param, lo: Param, hi: Param, xs: Table, ps: Table) -> Param:
        return fn(v, lo, hi, xs, _ascending(ps))

    return apply


def _cumul_mean(lo: float, hi: float, xs: Table, ps: Table) -> float:
    x = np.concatenate(([lo], xs.values, [hi]))
    p = np.concatenate(([0.0], ps.values, [1.0]))
    return float(np.sum(np.diff(p) * 0.5 * (x[1:] + x[:-1])))


_family(
    "cumuld",
    Family(
        "CumulD",
        ("min", "max", "x", "p"),
        checks.every(
            checks.ordered("min", None, "max"), checks.cumulative("x", "p", descending=True)
        ),
        ppf=_cumuld(sampling._cumul_ppf),
        cdf=_cumuld(sampling._cumul_cdf),
        valid=lambda lo, hi, xs, ps: sampling._cumul_valid(lo, hi, xs, _ascending(ps)),
        cpp="",
        tables=(2, 3),
        mean=lambda lo, hi, xs, ps: _cumul_mean(lo, hi, xs, _ascending(ps)),
        cpp_args=lambda s, t, table: _cumul_cpp(s[0], s[1], t[0], _ascending(t[1]), table),
        cpp_name="cumul",
    ),
)


# ------------------------------------------------------------ the original families' means


def _trigen_mean(lo: float, c: float, hi: float, plo: float, phi: float) -> float:
    a, b = sampling.trigen_bounds(lo, c, hi, plo, phi)
    return float((a + c + b) / 3)


def _discrete_mean(xs: Table, ps: Table) -> float:
    p = np.asarray(ps.values)
    return float(np.dot(xs.values, p) / p.sum())


def _lognorm2_mean(mu: float, s: float) -> float:
    return math.exp(mu + s * s / 2)


_ORIGINAL_MEANS: dict[str, Callable[..., float]] = {
    "normal": lambda m, s: m,
    "triang": lambda a, c, b: (a + c + b) / 3,
    "trigen": _trigen_mean,
    "pert": lambda a, c, b: (a + 4 * c + b) / 6,
    "uniform": lambda a, b: (a + b) / 2,
    "lognorm": lambda m, s: m,
    "lognorm2": _lognorm2_mean,
    "discrete": _discrete_mean,
    "binomial": lambda n, p: n * p,
    "poisson": lambda lam: lam,
    "expon": lambda b: b,
    "gamma": lambda a, b: a * b,
    "beta": lambda a1, a2: a1 / (a1 + a2),
    "betageneral": lambda a1, a2, lo, hi: lo + (hi - lo) * a1 / (a1 + a2),
    "weibull": lambda a, b: b * math.gamma(1 + 1 / a),
    "cumul": _cumul_mean,
}


def static_value(name: str, params: Sequence[Any]) -> float:
    """The value of a locked input: its mean, or its median where the mean does not exist.

    ``params`` are constants (``ir.Const`` or ``ir.Table``).
    """
    values = [p if isinstance(p, Table) else p.value for p in params]
    mean = FAMILIES[name].mean if name in FAMILIES else _ORIGINAL_MEANS[name]
    value = mean(*values) if mean is not None else math.nan
    if math.isfinite(value):
        return float(value)
    with np.errstate(all="ignore"):
        return float(sampling.sample(name, np.array([0.5]), tuple(values))[0])


# ------------------------------------------------------------------------ registration

for _name, _fam in FAMILIES.items():
    sampling.DISTRIBUTIONS[_name] = sampling._Dist(
        _fam.ppf, _fam.cdf, _fam.valid, discrete=_fam.discrete
    )
    if _fam.cpp:
        registry.unit(f"dist_{_name}", _fam.cpp, ("beta_odds",) if "beta_odds" in _fam.cpp else ())
    codegen.register_distribution(
        _name,
        _fam.cpp_valid,
        _fam.cpp_name or _name,
        (f"dist_{_name}",) if _fam.cpp else (),
        _fam.cpp_args,
        _fam.discrete,
    )
