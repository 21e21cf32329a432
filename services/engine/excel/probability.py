# ruff: noqa: E501  (C source)
"""Distribution functions of Excel (NORM.DIST, NORM.INV, T.DIST, BINOM.DIST...) and their
pre-2010 names, element-wise.

NumPy computes them with SciPy's special functions; the generated C++ with CUDA's
``normcdf``/``normcdfinv`` and the incomplete gamma and beta functions (and their inverses)
of the prelude, accurate to about 1e-12 relative. Domains follow Excel: probabilities of an
inverse strictly inside (0, 1) where Excel requires it, whole degrees of freedom truncated,
#NUM! outside.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import special, stats

from services.engine.excel import forms, registry
from services.engine.excel.arrays import DIV0, NUM
from services.engine.excel.arrays import elementwise as _wrap

CATEGORY = "Statistical"
_SQRT2PI = math.sqrt(2 * math.pi)


def _fn(
    name: str, numpy: Any, cpp: str, required: int, defaults: tuple[Any, ...] = (), **kw: Any
) -> None:
    forms.scalar(
        name,
        CATEGORY,
        numpy,
        cpp,
        required,
        defaults,
        **kw,
    )


def _alias(name: str, primitive: str, required: int, defaults: tuple[Any, ...] = ()) -> None:
    """A second name (often the pre-2010 one) of a registered primitive."""
    flags = (forms.CUMULATIVE[name],) if name in forms.CUMULATIVE else ()
    strict = name in forms.ANALYSIS_TOOLPAK
    lower = forms.elementwise(primitive, required, defaults, name, flags=flags, strict=strict)
    registry.function(name, CATEGORY, required, required + len(defaults), lower)


def _cum(flag: Any, cdf: Any, pdf: Any) -> Any:
    return np.where(flag != 0, cdf, pdf)


# --- normal and lognormal ----------------------------------------------------------------------


def _norm_dist(x: Any, m: Any, s: Any, cum: Any) -> Any:
    z = (x - m) / np.where(s > 0, s, 1.0)
    r = _cum(cum, special.ndtr(z), np.exp(-0.5 * z * z) / (_SQRT2PI * s))
    return np.where(s <= 0, NUM, r)


def _norm_inv(p: Any, m: Any, s: Any) -> Any:
    return np.where((p <= 0) | (p >= 1) | (s <= 0), NUM, m + s * special.ndtri(p))


_fn(
    "NORM.DIST",
    _norm_dist,
    """ALEA_HD double xl_norm_dist(double x, double m, double s, double cum) {
  XL_ERR4(x, m, s, cum); if (s <= 0.0) return XL_NUM;
  double z = (x - m) / s; return cum != 0.0 ? normcdf(z) : exp(-0.5 * z * z) / (2.5066282746310002 * s);
}
""",
    4,
)
_fn(
    "NORM.INV",
    _norm_inv,
    "ALEA_HD double xl_norm_inv(double p, double m, double s) { XL_ERR3(p, m, s); return (p <= 0.0 || p >= 1.0 || s <= 0.0) ? XL_NUM : m + s * normcdfinv(p); }\n",
    3,
)
_alias("NORMDIST", "norm.dist", 4)
_alias("NORMINV", "norm.inv", 3)


def _std_normal(kind: str) -> Any:
    """NORM.S.DIST(z, cum), NORMSDIST(z), NORM.S.INV(p): the standard normal through the
    general primitives with mean 0 and sd 1 inserted after the first argument."""

    def lower(lw: Any, args: tuple[Any, ...], sheet: str) -> Any:
        values = [lw.lower(a, sheet) for a in args]
        zero, one = lw.const(0.0), lw.const(1.0)

        def apply(v: list[Any]) -> Any:
            first = lw.numeric(v[0], kind)
            if kind == "NORM.S.INV" or kind == "NORMSINV":
                return lw.apply("norm.inv", [first, zero, one])
            cum = forms.flag(lw, v[1], kind) if len(v) > 1 else one
            return lw.apply("norm.dist", [first, zero, one, cum])

        return lw.broadcast(apply, values)

    return lower


registry.function("NORM.S.DIST", CATEGORY, 2, 2, _std_normal("NORM.S.DIST"))
registry.function("NORMSDIST", CATEGORY, 1, 1, _std_normal("NORMSDIST"))
registry.function("NORM.S.INV", CATEGORY, 1, 1, _std_normal("NORM.S.INV"))
registry.function("NORMSINV", CATEGORY, 1, 1, _std_normal("NORMSINV"))


def _lognorm_dist(x: Any, m: Any, s: Any, cum: Any) -> Any:
    bad = (x <= 0) | (s <= 0)
    xs, ss = np.where(bad, 1.0, x), np.where(bad, 1.0, s)
    z = (np.log(xs) - m) / ss
    r = _cum(cum, special.ndtr(z), np.exp(-0.5 * z * z) / (_SQRT2PI * ss * xs))
    return np.where(bad, NUM, r)


def _lognorm_inv(p: Any, m: Any, s: Any) -> Any:
    return np.where((p <= 0) | (p >= 1) | (s <= 0), NUM, np.exp(m + s * special.ndtri(p)))


_fn(
    "LOGNORM.DIST",
    _lognorm_dist,
    """ALEA_HD double xl_lognorm_dist(double x, double m, double s, double cum) {
  XL_ERR4(x, m, s, cum); if (x <= 0.0 || s <= 0.0) return XL_NUM;
  double z = (log(x) - m) / s; return cum != 0.0 ? normcdf(z) : exp(-0.5 * z * z) / (2.5066282746310002 * s * x);
}
""",
    4,
)
_fn(
    "LOGNORM.INV",
    _lognorm_inv,
    "ALEA_HD double xl_lognorm_inv(double p, double m, double s) { XL_ERR3(p, m, s); return (p <= 0.0 || p >= 1.0 || s <= 0.0) ? XL_NUM : xl_num(exp(m + s * normcdfinv(p))); }\n",
    3,
)
_alias("LOGINV", "lognorm.inv", 3)
registry.function(
    "LOGNORMDIST", CATEGORY, 3, 3, forms.elementwise("lognorm.dist", 3, (1.0,), "LOGNORMDIST")
)

# --- exponential, gamma, beta, Weibull ------------------------------------------------------------


def _expon_dist(x: Any, lam: Any, cum: Any) -> Any:
    r = _cum(cum, -np.expm1(-lam * x), lam * np.exp(-lam * x))
    return np.where((x < 0) | (lam <= 0), NUM, r)


_fn(
    "EXPON.DIST",
    _expon_dist,
    "ALEA_HD double xl_expon_dist(double x, double l, double cum) { XL_ERR3(x, l, cum); if (x < 0.0 || l <= 0.0) return XL_NUM; return cum != 0.0 ? -expm1(-l * x) : l * exp(-l * x); }\n",
    3,
)
_alias("EXPONDIST", "expon.dist", 3)


def _gamma_dist(x: Any, a: Any, b: Any, cum: Any) -> Any:
    bad = (x < 0) | (a <= 0) | (b <= 0)
    aa, bb = np.where(bad, 1.0, a), np.where(bad, 1.0, b)
    pdf = stats.gamma.pdf(np.where(bad, 1.0, x), aa, scale=bb)
    return np.where(bad, NUM, _cum(cum, special.gammainc(aa, np.maximum(x, 0.0) / bb), pdf))


def _gamma_inv(p: Any, a: Any, b: Any) -> Any:
    bad = (p < 0) | (p > 1) | (a <= 0) | (b <= 0)
    return np.where(
        bad,
        NUM,
        np.where(bad, 1.0, b) * special.gammaincinv(np.where(bad, 1.0, a), np.clip(p, 0.0, 1.0)),
    )


registry.unit(
    "gamma_pdf",
    "ALEA_HD double xl_gamma_pdf(double x, double a, double b) { if (x == 0.0) return a < 1.0 ? INFINITY : (a == 1.0 ? 1.0 / b : 0.0); return exp((a - 1.0) * log(x / b) - x / b - alea_lgamma(a)) / b; }\n",
)
_fn(
    "GAMMA.DIST",
    _gamma_dist,
    "ALEA_HD double xl_gamma_dist(double x, double a, double b, double cum) { XL_ERR4(x, a, b, cum); if (x < 0.0 || a <= 0.0 || b <= 0.0) return XL_NUM; return xl_num(cum != 0.0 ? alea_gammp(a, x / b) : xl_gamma_pdf(x, a, b)); }\n",
    4,
    needs=("gamma_pdf",),
)
_fn(
    "GAMMA.INV",
    _gamma_inv,
    "ALEA_HD double xl_gamma_inv(double p, double a, double b) { XL_ERR3(p, a, b); if (p < 0.0 || p > 1.0 || a <= 0.0 || b <= 0.0) return XL_NUM; return xl_num(b * alea_invgammp(p, a)); }\n",
    3,
)
_alias("GAMMADIST", "gamma.dist", 4)
_alias("GAMMAINV", "gamma.inv", 3)


def _gammaln(x: Any) -> Any:
    return np.where(x <= 0, NUM, special.gammaln(np.where(x <= 0, 1.0, x)))


def _gamma(x: Any) -> Any:
    return np.where((x <= 0) & (x == np.floor(x)), NUM, special.gamma(x))


_fn(
    "GAMMALN",
    _gammaln,
    "ALEA_HD double xl_gammaln(double x) { XL_ERR1(x); return x <= 0.0 ? XL_NUM : alea_lgamma(x); }\n",
    1,
)
_alias("GAMMALN.PRECISE", "gammaln", 1)
_fn(
    "GAMMA",
    _gamma,
    "ALEA_HD double xl_gamma(double x) { XL_ERR1(x); return (x <= 0.0 && x == floor(x)) ? XL_NUM : xl_num(tgamma(x)); }\n",
    1,
)


def _beta_dist(x: Any, a: Any, b: Any, cum: Any, lo: Any, hi: Any) -> Any:
    bad = (x < lo) | (x > hi) | (lo >= hi) | (a <= 0) | (b <= 0)
    width = np.where(bad, 1.0, hi - lo)
    z = np.clip((x - lo) / width, 0.0, 1.0)
    aa, bb = np.where(bad, 1.0, a), np.where(bad, 1.0, b)
    pdf = stats.beta.pdf(z, aa, bb) / width
    return np.where(bad, NUM, _cum(cum, special.betainc(aa, bb, z), pdf))


def _beta_inv(p: Any, a: Any, b: Any, lo: Any, hi: Any) -> Any:
    bad = (p <= 0) | (p >= 1) | (a <= 0) | (b <= 0) | (lo >= hi)
    q = special.betaincinv(np.where(bad, 1.0, a), np.where(bad, 1.0, b), np.where(bad, 0.5, p))
    return np.where(bad, NUM, lo + (hi - lo) * q)


_fn(
    "BETA.DIST",
    _beta_dist,
    """ALEA_HD double xl_beta_dist(double x, double a, double b, double cum, double lo, double hi) {
  XL_ERR6(x, a, b, cum, lo, hi);
  if (x < lo || x > hi || lo >= hi || a <= 0.0 || b <= 0.0) return XL_NUM;
  double w = hi - lo, z = (x - lo) / w;
  if (cum != 0.0) return alea_betai(a, b, z);
  if (z == 0.0 || z == 1.0) { double e = z == 0.0 ? a : b; return e < 1.0 ? XL_NUM : (e == 1.0 ? exp(-(alea_lgamma(a) + alea_lgamma(b) - alea_lgamma(a + b))) / w : 0.0); }
  return xl_num(exp((a - 1.0) * log(z) + (b - 1.0) * log1p(-z) - (alea_lgamma(a) + alea_lgamma(b) - alea_lgamma(a + b))) / w);
}
""",
    4,
    (0.0, 1.0),
)
_fn(
    "BETA.INV",
    _beta_inv,
    "ALEA_HD double xl_beta_inv(double p, double a, double b, double lo, double hi) { XL_ERR5(p, a, b, lo, hi); if (p <= 0.0 || p >= 1.0 || a <= 0.0 || b <= 0.0 || lo >= hi) return XL_NUM; return lo + (hi - lo) * alea_invbetai(p, a, b); }\n",
    3,
    (0.0, 1.0),
)
_alias("BETAINV", "beta.inv", 3, (0.0, 1.0))


def _betadist_lower() -> Any:
    def lower(lw: Any, args: tuple[Any, ...], sheet: str) -> Any:
        nodes = [lw.scalar(a, sheet, "BETADIST") for a in args]
        lo = nodes[3] if len(nodes) > 3 else lw.const(0.0)
        hi = nodes[4] if len(nodes) > 4 else lw.const(1.0)
        return lw.apply("beta.dist", [*nodes[:3], lw.const(1.0), lo, hi])

    return lower


registry.function("BETADIST", CATEGORY, 3, 5, _betadist_lower())


def _weibull_dist(x: Any, a: Any, b: Any, cum: Any) -> Any:
    bad = (x < 0) | (a <= 0) | (b <= 0)
    aa, bb = np.where(bad, 1.0, a), np.where(bad, 1.0, b)
    z = np.maximum(x, 0.0) / bb
    cdf = -np.expm1(-np.power(z, aa))
    pdf = aa / bb * np.power(z, aa - 1.0) * np.exp(-np.power(z, aa))
    return np.where(bad, NUM, _cum(cum, cdf, pdf))


_fn(
    "WEIBULL.DIST",
    _weibull_dist,
    """ALEA_HD double xl_weibull_dist(double x, double a, double b, double cum) {
  XL_ERR4(x, a, b, cum); if (x < 0.0 || a <= 0.0 || b <= 0.0) return XL_NUM;
  double z = x / b; return xl_num(cum != 0.0 ? -expm1(-pow(z, a)) : a / b * pow(z, a - 1.0) * exp(-pow(z, a)));
}
""",
    4,
)
_alias("WEIBULL", "weibull.dist", 4)

# --- counting distributions ---------------------------------------------------------------------


def _binom_dist(k: Any, n: Any, p: Any, cum: Any) -> Any:
    k, n = np.trunc(k), np.trunc(n)
    bad = (p < 0) | (p > 1) | (k < 0) | (k > n)
    r = _cum(cum, stats.binom.cdf(k, n, p), stats.binom.pmf(k, n, p))
    return np.where(bad, NUM, r)


def _binom_inv(n: Any, p: Any, alpha: Any) -> Any:
    n = np.trunc(n)
    bad = (p < 0) | (p > 1) | (alpha <= 0) | (alpha >= 1) | (n < 0)
    r = stats.binom.ppf(np.where(bad, 0.5, alpha), np.where(bad, 1.0, n), np.where(bad, 0.5, p))
    return np.where(bad, NUM, r)


registry.unit(
    "binom",
    r"""
ALEA_HD double xl_binom_pmf(double k, double n, double p) {
  if (p == 0.0) return k == 0.0 ? 1.0 : 0.0;
  if (p == 1.0) return k == n ? 1.0 : 0.0;
  return exp(alea_lgamma(n + 1.0) - alea_lgamma(k + 1.0) - alea_lgamma(n - k + 1.0) + k * log(p) + (n - k) * log1p(-p));
}
ALEA_HD double xl_binom_cdf(double k, double n, double p) {
  if (k >= n) return 1.0;
  if (p == 0.0) return 1.0;
  if (p == 1.0) return 0.0;
  return alea_betai(n - k, k + 1.0, 1.0 - p);
}
""",
)
_fn(
    "BINOM.DIST",
    _binom_dist,
    """ALEA_HD double xl_binom_dist(double k, double n, double p, double cum) {
  XL_ERR4(k, n, p, cum); k = trunc(k); n = trunc(n);
  if (p < 0.0 || p > 1.0 || k < 0.0 || k > n) return XL_NUM;
  return cum != 0.0 ? xl_binom_cdf(k, n, p) : xl_binom_pmf(k, n, p);
}
""",
    4,
    needs=("binom",),
)
_fn(
    "BINOM.INV",
    _binom_inv,
    """ALEA_HD double xl_binom_inv(double n, double p, double alpha) {
  XL_ERR3(n, p, alpha); n = trunc(n);
  if (p < 0.0 || p > 1.0 || alpha <= 0.0 || alpha >= 1.0 || n < 0.0) return XL_NUM;
  double lo = 0.0, hi = n;
  while (lo < hi) { double mid = floor(0.5 * (lo + hi)); if (xl_binom_cdf(mid, n, p) >= alpha) hi = mid; else lo = mid + 1.0; }
  return lo;
}
""",
    3,
    needs=("binom",),
)
_alias("BINOMDIST", "binom.dist", 4)
_alias("CRITBINOM", "binom.inv", 3)


def _poisson_dist(k: Any, lam: Any, cum: Any) -> Any:
    k = np.trunc(k)
    bad = (k < 0) | (lam < 0)
    r = _cum(cum, stats.poisson.cdf(k, lam), stats.poisson.pmf(k, lam))
    return np.where(bad, NUM, r)


_fn(
    "POISSON.DIST",
    _poisson_dist,
    """ALEA_HD double xl_poisson_dist(double k, double l, double cum) {
  XL_ERR3(k, l, cum); k = trunc(k); if (k < 0.0 || l < 0.0) return XL_NUM;
  if (l == 0.0) return cum != 0.0 ? 1.0 : (k == 0.0 ? 1.0 : 0.0);
  return cum != 0.0 ? alea_gammq(k + 1.0, l) : exp(k * log(l) - l - alea_lgamma(k + 1.0));
}
""",
    3,
)
_alias("POISSON", "poisson.dist", 3)


def _negbinom_dist(f: Any, s: Any, p: Any, cum: Any) -> Any:
    f, s = np.trunc(f), np.trunc(s)
    bad = (p <= 0) | (p > 1) | (f < 0) | (s < 1)
    r = _cum(cum, stats.nbinom.cdf(f, s, p), stats.nbinom.pmf(f, s, p))
    return np.where(bad, NUM, r)


_fn(
    "NEGBINOM.DIST",
    _negbinom_dist,
    """ALEA_HD double xl_negbinom_dist(double f, double s, double p, double cum) {
  XL_ERR4(f, s, p, cum); f = trunc(f); s = trunc(s);
  if (p <= 0.0 || p > 1.0 || f < 0.0 || s < 1.0) return XL_NUM;  /* no successes: #NUM! */
  if (p == 1.0) return cum != 0.0 ? 1.0 : (f == 0.0 ? 1.0 : 0.0);
  if (cum != 0.0) return alea_betai(s, f + 1.0, p);
  return exp(alea_lgamma(f + s) - alea_lgamma(f + 1.0) - alea_lgamma(s) + s * log(p) + f * log1p(-p));
}
""",
    4,
)
registry.function(
    "NEGBINOMDIST", CATEGORY, 3, 3, forms.elementwise("negbinom.dist", 3, (0.0,), "NEGBINOMDIST")
)


def _hypgeom_dist(k: Any, n: Any, big_k: Any, big_n: Any, cum: Any) -> Any:
    k, n, big_k, big_n = np.trunc(k), np.trunc(n), np.trunc(big_k), np.trunc(big_n)
    big_k = np.where(big_k == 0, 1.0, big_k)
    big_n = np.where(big_n == 0, 1.0, big_n)
    bad = (big_n < 0) | (n < 0) | (big_k < 0) | (big_k > big_n) | (n > big_n) | (k < 0)
    args = (k, np.where(bad, 1.0, big_n), np.where(bad, 1.0, big_k), np.where(bad, 1.0, n))
    return np.where(bad, NUM, _cum(cum, stats.hypergeom.cdf(*args), stats.hypergeom.pmf(*args)))


_fn(
    "HYPGEOM.DIST",
    _hypgeom_dist,
    """ALEA_HD double xl_hyp_pmf(double k, double n, double d, double m) {
  if (k < fmax(0.0, n + d - m) || k > fmin(n, d)) return 0.0;
  return exp(alea_lgamma(d + 1.0) - alea_lgamma(k + 1.0) - alea_lgamma(d - k + 1.0) + alea_lgamma(m - d + 1.0) - alea_lgamma(n - k + 1.0)
             - alea_lgamma(m - d - n + k + 1.0) - alea_lgamma(m + 1.0) + alea_lgamma(n + 1.0) + alea_lgamma(m - n + 1.0));
}
ALEA_HD double xl_hypgeom_dist(double k, double n, double bk, double bn, double cum) {
  XL_ERR5(k, n, bk, bn, cum); k = trunc(k); n = trunc(n); bk = trunc(bk); bn = trunc(bn);
  if (bk == 0.0) bk = 1.0;
  if (bn == 0.0) bn = 1.0;
  if (bn < 0.0 || n < 0.0 || bk < 0.0 || bk > bn || n > bn || k < 0.0) return XL_NUM;
  if (cum == 0.0) return xl_hyp_pmf(k, n, bk, bn);
  double acc = 0.0; for (double j = fmax(0.0, n + bk - bn); j <= fmin(k, fmin(n, bk)); j += 1.0) acc += xl_hyp_pmf(j, n, bk, bn);
  return fmin(acc, 1.0);
}
""",
    5,
)
registry.function(
    "HYPGEOMDIST", CATEGORY, 4, 4, forms.elementwise("hypgeom.dist", 4, (0.0,), "HYPGEOMDIST")
)

# --- Student, chi-squared, F -----------------------------------------------------------------------


def _t_dist(x: Any, df: Any, cum: Any) -> Any:
    d = np.trunc(df)
    bad = d <= 0
    dd = np.where(bad, 1.0, d)
    r = _cum(cum, special.stdtr(dd, x), stats.t.pdf(x, dd))
    return np.where(bad, np.where((cum == 0) & (d == 0), DIV0, NUM), r)


def _t_rt(x: Any, df: Any) -> Any:
    d = np.trunc(df)
    return np.where(d < 1, NUM, special.stdtr(np.where(d < 1, 1.0, d), -x))


def _t_2t(x: Any, df: Any) -> Any:
    d = np.trunc(df)
    bad = (x < 0) | (d < 1)
    return np.where(
        bad, NUM, np.minimum(1.0, 2.0 * special.stdtr(np.where(bad, 1.0, d), -np.abs(x)))
    )


def _t_inv(p: Any, df: Any) -> Any:
    d = np.trunc(df)
    bad = (p < 0) | (p > 1) | (d < 1)
    return np.where(bad, NUM, special.stdtrit(np.where(bad, 1.0, d), np.where(bad, 0.5, p)))


def _t_inv_2t(p: Any, df: Any) -> Any:
    return _t_inv(1.0 - p / 2.0, df)


registry.unit(
    "student",
    r"""
ALEA_HD double xl_t_cdf(double x, double d) {
  double tail = 0.5 * alea_betai(0.5 * d, 0.5, d / (d + x * x)); return x < 0.0 ? tail : 1.0 - tail;
}
ALEA_HD double xl_t_quantile(double p, double d) {  /* p in [0, 1] */
  if (p == 0.0) return -INFINITY;
  if (p == 1.0) return INFINITY;
  double q = 2.0 * fmin(p, 1.0 - p), z, c;
  if (q < 0.5) { z = alea_invbetai(q, 0.5 * d, 0.5); c = 1.0 - z; }
  else { c = alea_invbetai(1.0 - q, 0.5, 0.5 * d); z = 1.0 - c; }
  double t = sqrt(d * c / z); return p < 0.5 ? -t : t;
}
""",
)
_fn(
    "T.DIST",
    _t_dist,
    """ALEA_HD double xl_t_dist(double x, double df, double cum) {
  XL_ERR3(x, df, cum); double d = trunc(df);
  if (d <= 0.0) return (cum == 0.0 && d == 0.0) ? XL_DIV0 : XL_NUM;
  if (cum != 0.0) return xl_t_cdf(x, d);
  return exp(alea_lgamma(0.5 * (d + 1.0)) - alea_lgamma(0.5 * d) - 0.5 * (d + 1.0) * log1p(x * x / d)) / sqrt(d * 3.141592653589793);
}
""",
    3,
    needs=("student",),
)
_fn(
    "T.DIST.RT",
    _t_rt,
    "ALEA_HD double xl_t_dist_rt(double x, double df) { XL_ERR2(x, df); double d = trunc(df); return d < 1.0 ? XL_NUM : xl_t_cdf(-x, d); }\n",
    2,
    needs=("student",),
)
_fn(
    "T.DIST.2T",
    _t_2t,
    "ALEA_HD double xl_t_dist_2t(double x, double df) { XL_ERR2(x, df); double d = trunc(df); return (x < 0.0 || d < 1.0) ? XL_NUM : fmin(1.0, 2.0 * xl_t_cdf(-fabs(x), d)); }\n",
    2,
    needs=("student",),
)
_fn(
    "T.INV",
    _t_inv,
    "ALEA_HD double xl_t_inv(double p, double df) { XL_ERR2(p, df); double d = trunc(df); return (p < 0.0 || p > 1.0 || d < 1.0) ? XL_NUM : xl_num(xl_t_quantile(p, d)); }\n",
    2,
    needs=("student",),
)
_fn(
    "T.INV.2T",
    _t_inv_2t,
    "ALEA_HD double xl_t_inv_2t(double p, double df) { XL_ERR2(p, df); double d = trunc(df), q = 1.0 - p / 2.0; return (q < 0.0 || q > 1.0 || d < 1.0) ? XL_NUM : xl_num(xl_t_quantile(q, d)); }\n",
    2,
    needs=("student",),
)
_alias("TINV", "t.inv.2t", 2)


def _tdist(x: Any, df: Any, tails: Any) -> Any:
    t = np.trunc(tails)
    one = _t_rt(x, df)
    r = np.where(t == 1, one, 2.0 * one)
    return np.where((x < 0) | ((t != 1) & (t != 2)), NUM, r)


_fn(
    "TDIST",
    _tdist,
    "ALEA_HD double xl_tdist(double x, double df, double tails) { XL_ERR3(x, df, tails); double t = trunc(tails), d = trunc(df); if (x < 0.0 || (t != 1.0 && t != 2.0) || d < 1.0) return XL_NUM; double one = xl_t_cdf(-x, d); return t == 1.0 ? one : 2.0 * one; }\n",
    3,
    needs=("student",),
)


def _chisq_dist(x: Any, df: Any, cum: Any) -> Any:
    d = np.trunc(df)
    bad = (x < 0) | (d < 1) | (d > 1e10)
    dd = np.where(bad, 1.0, d)
    return np.where(
        bad, NUM, _cum(cum, special.chdtr(dd, np.maximum(x, 0.0)), stats.chi2.pdf(x, dd))
    )


def _chisq_rt(x: Any, df: Any) -> Any:
    d = np.trunc(df)
    bad = (x < 0) | (d < 1) | (d > 1e10)
    return np.where(bad, NUM, special.chdtrc(np.where(bad, 1.0, d), np.maximum(x, 0.0)))


def _chisq_inv(p: Any, df: Any) -> Any:
    d = np.trunc(df)
    bad = (p < 0) | (p > 1) | (d < 1) | (d > 1e10)
    return np.where(
        bad, NUM, 2.0 * special.gammaincinv(np.where(bad, 1.0, d) / 2.0, np.clip(p, 0.0, 1.0))
    )


def _chisq_inv_rt(p: Any, df: Any) -> Any:
    d = np.trunc(df)
    bad = (p < 0) | (p > 1) | (d < 1) | (d > 1e10)
    return np.where(
        bad, NUM, 2.0 * special.gammainccinv(np.where(bad, 1.0, d) / 2.0, np.clip(p, 0.0, 1.0))
    )


_CHI_OK = "x >= 0.0 && d >= 1.0 && d <= 1e10"
_fn(
    "CHISQ.DIST",
    _chisq_dist,
    f"ALEA_HD double xl_chisq_dist(double x, double df, double cum) {{ XL_ERR3(x, df, cum); double d = trunc(df); if (!({_CHI_OK})) return XL_NUM; return xl_num(cum != 0.0 ? alea_gammp(0.5 * d, 0.5 * x) : 0.5 * xl_gamma_pdf(0.5 * x, 0.5 * d, 1.0)); }}\n",
    3,
    needs=("gamma_pdf",),
)
_fn(
    "CHISQ.DIST.RT",
    _chisq_rt,
    f"ALEA_HD double xl_chisq_dist_rt(double x, double df) {{ XL_ERR2(x, df); double d = trunc(df); if (!({_CHI_OK})) return XL_NUM; return alea_gammq(0.5 * d, 0.5 * x); }}\n",
    2,
)
_fn(
    "CHISQ.INV",
    _chisq_inv,
    "ALEA_HD double xl_chisq_inv(double p, double df) { XL_ERR2(p, df); double d = trunc(df); if (p < 0.0 || p > 1.0 || d < 1.0 || d > 1e10) return XL_NUM; return xl_num(2.0 * alea_invgammp(p, 0.5 * d)); }\n",
    2,
)
_fn(
    "CHISQ.INV.RT",
    _chisq_inv_rt,
    "ALEA_HD double xl_chisq_inv_rt(double p, double df) { XL_ERR2(p, df); double d = trunc(df); if (p < 0.0 || p > 1.0 || d < 1.0 || d > 1e10) return XL_NUM; return xl_num(2.0 * alea_invgammp(1.0 - p, 0.5 * d)); }\n",
    2,
)
_alias("CHIDIST", "chisq.dist.rt", 2)
_alias("CHIINV", "chisq.inv.rt", 2)


def _f_dist(x: Any, d1: Any, d2: Any, cum: Any) -> Any:
    a, b = np.trunc(d1), np.trunc(d2)
    bad = (x < 0) | (a < 1) | (b < 1)
    aa, bb = np.where(bad, 1.0, a), np.where(bad, 1.0, b)
    return np.where(
        bad, NUM, _cum(cum, special.fdtr(aa, bb, np.maximum(x, 0.0)), stats.f.pdf(x, aa, bb))
    )


def _f_rt(x: Any, d1: Any, d2: Any) -> Any:
    a, b = np.trunc(d1), np.trunc(d2)
    bad = (x < 0) | (a < 1) | (b < 1)
    return np.where(
        bad, NUM, special.fdtrc(np.where(bad, 1.0, a), np.where(bad, 1.0, b), np.maximum(x, 0.0))
    )


def _f_inv(upper: bool) -> Any:
    def apply(p: Any, d1: Any, d2: Any) -> Any:
        a, b = np.trunc(d1), np.trunc(d2)
        bad = (p < 0) | (p > 1) | (a < 1) | (b < 1)
        aa, bb = np.where(bad, 1.0, a), np.where(bad, 1.0, b)
        q = np.clip(1.0 - p if upper else p, 0.0, 1.0)
        return np.where(bad, NUM, special.fdtri(aa, bb, q))

    return apply


_F_CPP = """ALEA_HD double xl_f_cdf(double x, double a, double b) { return alea_betai(0.5 * a, 0.5 * b, a * x / (a * x + b)); }
ALEA_HD double xl_f_quantile(double p, double a, double b) {
  if (p <= 0.0) return 0.0;
  if (p >= 1.0) return INFINITY;
  double odds = p < 0.5 ? (alea_invbetai(p, 0.5 * a, 0.5 * b) / (1.0 - alea_invbetai(p, 0.5 * a, 0.5 * b)))
                        : ((1.0 - alea_invbetai(1.0 - p, 0.5 * b, 0.5 * a)) / alea_invbetai(1.0 - p, 0.5 * b, 0.5 * a));
  return (b / a) * odds;
}
"""
registry.unit("fdist", _F_CPP)
_fn(
    "F.DIST",
    _f_dist,
    """ALEA_HD double xl_f_dist(double x, double d1, double d2, double cum) {
  XL_ERR4(x, d1, d2, cum); double a = trunc(d1), b = trunc(d2);
  if (x < 0.0 || a < 1.0 || b < 1.0) return XL_NUM;
  if (cum != 0.0) return xl_f_cdf(x, a, b);
  if (x == 0.0) return a < 2.0 ? XL_NUM : (a == 2.0 ? 1.0 : 0.0);
  return xl_num(exp(0.5 * a * log(a) + 0.5 * b * log(b) + (0.5 * a - 1.0) * log(x) - 0.5 * (a + b) * log(a * x + b)
                    - (alea_lgamma(0.5 * a) + alea_lgamma(0.5 * b) - alea_lgamma(0.5 * (a + b)))));
}
""",
    4,
    needs=("fdist",),
)
_fn(
    "F.DIST.RT",
    _f_rt,
    "ALEA_HD double xl_f_dist_rt(double x, double d1, double d2) { XL_ERR3(x, d1, d2); double a = trunc(d1), b = trunc(d2); if (x < 0.0 || a < 1.0 || b < 1.0) return XL_NUM; return alea_betai(0.5 * b, 0.5 * a, b / (a * x + b)); }\n",
    3,
)
_fn(
    "F.INV",
    _f_inv(False),
    "ALEA_HD double xl_f_inv(double p, double d1, double d2) { XL_ERR3(p, d1, d2); double a = trunc(d1), b = trunc(d2); if (p < 0.0 || p > 1.0 || a < 1.0 || b < 1.0) return XL_NUM; return xl_num(xl_f_quantile(p, a, b)); }\n",
    3,
    needs=("fdist",),
)
_fn(
    "F.INV.RT",
    _f_inv(True),
    "ALEA_HD double xl_f_inv_rt(double p, double d1, double d2) { XL_ERR3(p, d1, d2); double a = trunc(d1), b = trunc(d2); if (p < 0.0 || p > 1.0 || a < 1.0 || b < 1.0) return XL_NUM; return xl_num(xl_f_quantile(1.0 - p, a, b)); }\n",
    3,
    needs=("fdist",),
)
_alias("FDIST", "f.dist.rt", 3)
_alias("FINV", "f.inv.rt", 3)

# --- error function, transforms, confidence ------------------------------------------------------------


def _erf2(lo: Any, hi: Any) -> Any:
    return special.erf(hi) - special.erf(lo)


def _erf_lower(lw: Any, args: tuple[Any, ...], sheet: str) -> Any:
    lo = forms.strict_scalar(lw, args[0], sheet, "ERF")
    if len(args) == 1:
        return lw.apply("erf.precise", [lo])
    return lw.apply("erf2", [lo, forms.strict_scalar(lw, args[1], sheet, "ERF")])


_fn(
    "ERF.PRECISE",
    special.erf,
    "ALEA_HD double xl_erf_precise(double x) { XL_ERR1(x); return erf(x); }\n",
    1,
)
_fn("ERFC", special.erfc, "ALEA_HD double xl_erfc(double x) { XL_ERR1(x); return erfc(x); }\n", 1)
_alias("ERFC.PRECISE", "erfc", 1)
registry.unit(
    "erf2",
    "ALEA_HD double xl_erf2(double lo, double hi) { XL_ERR2(lo, hi); return erf(hi) - erf(lo); }\n",
)
registry.primitive("erf2", _wrap(_erf2), "xl_erf2", ("erf2",))
registry.function("ERF", CATEGORY, 1, 2, _erf_lower)

_fn(
    "PHI",
    lambda x: np.exp(-0.5 * x * x) / _SQRT2PI,
    "ALEA_HD double xl_phi(double x) { XL_ERR1(x); return exp(-0.5 * x * x) / 2.5066282746310002; }\n",
    1,
)
_fn(
    "GAUSS",
    lambda x: special.ndtr(x) - 0.5,
    "ALEA_HD double xl_gauss(double x) { XL_ERR1(x); return normcdf(x) - 0.5; }\n",
    1,
)
_fn(
    "FISHER",
    lambda x: np.where((x <= -1) | (x >= 1), NUM, 0.5 * np.log((1.0 + x) / (1.0 - x))),
    "ALEA_HD double xl_fisher(double x) { XL_ERR1(x); return (x <= -1.0 || x >= 1.0) ? XL_NUM : 0.5 * log((1.0 + x) / (1.0 - x)); }\n",
    1,
)
_fn(
    "FISHERINV",
    np.tanh,
    "ALEA_HD double xl_fisherinv(double y) { XL_ERR1(y); return tanh(y); }\n",
    1,
)
_fn(
    "STANDARDIZE",
    lambda x, m, s: np.where(s <= 0, NUM, (x - m) / np.where(s <= 0, 1.0, s)),
    "ALEA_HD double xl_standardize(double x, double m, double s) { XL_ERR3(x, m, s); return s <= 0.0 ? XL_NUM : (x - m) / s; }\n",
    3,
)


def _confidence_norm(alpha: Any, sd: Any, size: Any) -> Any:
    n = np.trunc(size)
    bad = (alpha <= 0) | (alpha >= 1) | (sd <= 0) | (n < 1)
    z = special.ndtri(1.0 - np.where(bad, 0.5, alpha) / 2.0)
    return np.where(bad, NUM, z * sd / np.sqrt(np.where(bad, 1.0, n)))


def _confidence_t(alpha: Any, sd: Any, size: Any) -> Any:
    n = np.trunc(size)
    bad = (alpha <= 0) | (alpha >= 1) | (sd <= 0) | (n < 1)
    df = np.where(bad | (n < 2), 1.0, n - 1.0)
    t = special.stdtrit(df, 1.0 - np.where(bad, 0.5, alpha) / 2.0)
    r = t * sd / np.sqrt(np.where(bad, 1.0, n))
    return np.where(bad, NUM, np.where(n == 1, DIV0, r))


_fn(
    "CONFIDENCE.NORM",
    _confidence_norm,
    "ALEA_HD double xl_confidence_norm(double a, double sd, double size) { XL_ERR3(a, sd, size); double n = trunc(size); if (a <= 0.0 || a >= 1.0 || sd <= 0.0 || n < 1.0) return XL_NUM; return normcdfinv(1.0 - a / 2.0) * sd / sqrt(n); }\n",
    3,
)
_alias("CONFIDENCE", "confidence.norm", 3)
_fn(
    "CONFIDENCE.T",
    _confidence_t,
    "ALEA_HD double xl_confidence_t(double a, double sd, double size) { XL_ERR3(a, sd, size); double n = trunc(size); if (a <= 0.0 || a >= 1.0 || sd <= 0.0 || n < 1.0) return XL_NUM; if (n == 1.0) return XL_DIV0; return xl_t_quantile(1.0 - a / 2.0, n - 1.0) * sd / sqrt(n); }\n",
    3,
    needs=("student",),
)
