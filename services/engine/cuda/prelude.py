# ruff: noqa: E501  (C source)
"""The fixed part of every generated source: Philox, uniforms, Excel helpers, quantiles.

Everything is ``__host__ __device__`` so the very same code is compiled for the GPU, by
``nvcc`` with the host compiler for a CPU test harness, and, as C99 (the macros turn the
CUDA qualifiers into ``static inline``), by the system C compiler into the native back end. Conventions mirror ``rng.py`` and
``sampling.py`` exactly; where the arithmetic differs (CUDA's ``normcdfinv``/``normcdf``
against SciPy's ``ndtri``/``ndtr``; the incomplete gamma and beta functions below against
SciPy's) quantiles agree within 1e-12 relative for shape parameters of 0.5 and more, and
within 1e-10 down to shapes of 0.05 (measured over 200,000 draws each; the tests check
1e-9); counting distributions (binomial, Poisson) give the same integers.

Incomplete gamma/beta: series and Lentz continued fractions (Numerical Recipes, 3rd ed.,
6.2 and 6.4), inverted by Halley's method from NR's starting points, on the lower tail or
the upper tail (whichever is smaller, so quantiles near 1 keep their precision). Counting
distributions (binomial, Poisson) invert their CDF by bisection over the integers.
"""

from ..xlerror import CPP as _ERRORS

PRELUDE = (
    r"""
#ifdef __CUDACC__
#include <cmath>
#include <cstdint>
#include <cstring>
#define ALEA_HD __host__ __device__ inline
/* iterative special functions stay calls: compile time and registers of the fused kernel */
#define ALEA_HD_CALL __host__ __device__ __noinline__
#else  /* the native CPU library: the same source as C99, built by the system C compiler */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#define ALEA_HD static inline
#define ALEA_HD_CALL static __attribute__((noinline))
#endif
typedef unsigned long long u64;
/* lgamma through one call: CUDA inlines its lgamma (hundreds of instructions) at every use,
   and a model with hundreds of COMBIN or MULTINOMIAL cells then compiles for minutes */
ALEA_HD_CALL double alea_lgamma(double x) { return lgamma(x); }
"""
    + _ERRORS
    + r"""

#ifndef __CUDACC__
/* CUDA's normcdfinv and normcdf for the CPU: Wichura's AS 241 (PPND16, relative error about
   1e-16, within 1e-15 of SciPy's ndtri) and ndtr over the C library's erf/erfc (within 1e-14
   of SciPy's). The central formula covers 85% of the uniforms with one rational function:
   alea_normal_column computes it for a whole column (a loop the compiler vectorises), then
   the tails, with the same bits as normcdfinv value by value. */
ALEA_HD double alea_ndtri_central(double p) {  /* |p - 0.5| <= 0.425 */
  double q = p - 0.5, r = 0.180625 - q * q;
  return q * (((((((r * 2509.0809287301226727 + 33430.575583588128105) * r
                   + 67265.770927008700853) * r + 45921.953931549871457) * r
                 + 13731.693765509461125) * r + 1971.5909503065514427) * r
               + 133.14166789178437745) * r + 3.387132872796366608)
         / (((((((r * 5226.495278852545925 + 28729.085735721942674) * r
                 + 39307.89580009271061) * r + 21213.794301586595867) * r
               + 5394.1960214247511077) * r + 687.1870074920579083) * r
             + 42.313330701600911252) * r + 1.0);
}
ALEA_HD_CALL double alea_ndtri_tail(double p) {  /* the rest, 0, 1 and NaN included */
  if (!(p > 0.0 && p < 1.0)) return p == 0.0 ? -INFINITY : p == 1.0 ? INFINITY : NAN;
  double q = p - 0.5, r = sqrt(-log(q < 0.0 ? p : 1.0 - p)), x;
  if (r <= 5.0) {
    r -= 1.6;
    x = (((((((r * 7.7454501427834140764e-4 + 0.0227238449892691845833) * r
              + 0.24178072517745061177) * r + 1.27045825245236838258) * r
            + 3.64784832476320460504) * r + 5.7694972214606914055) * r
          + 4.6303378461565452959) * r + 1.42343711074968357734)
        / (((((((r * 1.05075007164441684324e-9 + 5.475938084995344946e-4) * r
                + 0.0151986665636164571966) * r + 0.14810397642748007459) * r
              + 0.68976733498510000455) * r + 1.6763848301838038494) * r
            + 2.05319162663775882187) * r + 1.0);
  } else {
    r -= 5.0;
    x = (((((((r * 2.01033439929228813265e-7 + 2.71155556874348757815e-5) * r
              + 0.0012426609473880784386) * r + 0.026532189526576123093) * r
            + 0.29656057182850489123) * r + 1.7848265399172913358) * r
          + 5.4637849111641143699) * r + 6.6579046435011037772)
        / (((((((r * 2.04426310338993978564e-15 + 1.4215117583164458887e-7) * r
                + 1.8463183175100546818e-5) * r + 7.868691311456132591e-4) * r
              + 0.0148753612908506148525) * r + 0.13692988092273580531) * r
            + 0.59983220655588793769) * r + 1.0);
  }
  return q < 0.0 ? -x : x;
}
ALEA_HD bool alea_ndtri_is_central(double p) { return fabs(p - 0.5) <= 0.425; }
ALEA_HD_CALL double normcdfinv(double p) {  /* a call: inlined 50 times it triples compile time */
  return alea_ndtri_is_central(p) ? alea_ndtri_central(p) : alea_ndtri_tail(p);
}
/* Rows rows[0 .. k-1] of x (stride apart), which hold the same uniforms (an input and its
   RiskSimtable copies): row rows[j] becomes m[j] + s[j] * normcdfinv(u), ppf_normal over n
   trials with normcdfinv computed once per trial, 64 trials at a time: the central formula
   for all, then the tails, listed first so that no branch mispredicts. */
ALEA_HD_CALL void alea_normal_columns(double* x, u64 stride, u64 n, int k, const int* rows,
                                      const double* m, const double* s) {
  double z[64];
  const double* u = x + (u64)rows[0] * stride;
  for (u64 first = 0; first < n; first += 64) {
    int len = n - first < 64 ? (int)(n - first) : 64, tails[64], found = 0;
    for (int i = 0; i < len; ++i) z[i] = alea_ndtri_central(u[first + i]);
    for (int i = 0; i < len; ++i) { tails[found] = i; found += !alea_ndtri_is_central(u[first + i]); }
    for (int i = 0; i < found; ++i) z[tails[i]] = alea_ndtri_tail(u[first + tails[i]]);
    for (int j = 0; j < k; ++j) {
      double* out = x + (u64)rows[j] * stride + first;
      for (int i = 0; i < len; ++i) out[i] = m[j] + s[j] * z[i];
    }
  }
}
ALEA_HD double normcdf(double a) {
  double x = a * 0.70710678118654752440, z = fabs(x);
  if (isnan(a)) return NAN;
  if (z < 0.70710678118654752440) return 0.5 + 0.5 * erf(x);
  double y = 0.5 * erfc(z);
  return x > 0.0 ? 1.0 - y : y;
}
#endif

/* ---- Philox4x64-10 (Random123), key = (seed, stream), counter = (i / 4, domain, 0, 0) */
ALEA_HD u64 alea_mul128(u64 a, u64 b, u64* hi) {  /* a * b: the low word, the high one in *hi */
#ifdef __CUDA_ARCH__
  *hi = __umul64hi(a, b);
  return a * b;
#else  /* one multiplication for both words */
  unsigned __int128 p = (unsigned __int128)a * b;
  *hi = (u64)(p >> 64);
  return (u64)p;
#endif
}

ALEA_HD void alea_philox(u64 c0, u64 c1, u64 k0, u64 k1, u64 out[4]) {
  u64 c2 = 0, c3 = 0;
  for (int r = 0; r < 10; ++r) {
    if (r) { k0 += 0x9E3779B97F4A7C15ULL; k1 += 0xBB67AE8584CAA73BULL; }
    u64 h0, h1;
    u64 l0 = alea_mul128(0xD2E7470EE14C6C93ULL, c0, &h0);
    u64 l1 = alea_mul128(0xCA5A826395121157ULL, c2, &h1);
    u64 n0 = h1 ^ c1 ^ k0, n2 = h0 ^ c3 ^ k1;
    c0 = n0; c1 = l1; c2 = n2; c3 = l0;
  }
  out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

/* u = ((x >> 12) + 0.5) * 2^-52: exact, in [2^-53, 1 - 2^-53] */
ALEA_HD double alea_unit(u64 x) { return ((double)(x >> 12) + 0.5) * 0x1p-52; }

/* ---- Excel semantics, exactly as numpy_backend: NaN is an error and propagates */
ALEA_HD double xl_bool(bool c) { return c ? 1.0 : 0.0; }
ALEA_HD double xl_div(double a, double b) {
  XL_ERR2(a, b); return b == 0.0 ? XL_DIV0 : a / b;
}
ALEA_HD double xl_cmp(double a, double b, int op) {
  XL_ERR2(a, b);
  switch (op) {
    case 0: return xl_bool(a == b); case 1: return xl_bool(a != b);
    case 2: return xl_bool(a < b);  case 3: return xl_bool(a <= b);
    case 4: return xl_bool(a > b);  default: return xl_bool(a >= b);
  }
}
ALEA_HD double xl_if(double c, double a, double b) { return isnan(c) ? c : (c != 0.0 ? a : b); }
ALEA_HD double xl_not(double a) { return isnan(a) ? a : xl_bool(a == 0.0); }
ALEA_HD double xl_iferror(double a, double b) { return isfinite(a) ? a : b; }
/* arithmetic keeps the first error operand (hardware may pass either NaN, or a canonical one) */
ALEA_HD double xl_add(double a, double b) { double r = a + b; return isnan(r) ? (isnan(a) ? a : isnan(b) ? b : r) : r; }
ALEA_HD double xl_sub(double a, double b) { double r = a - b; return isnan(r) ? (isnan(a) ? a : isnan(b) ? b : r) : r; }
ALEA_HD double xl_mul(double a, double b) { double r = a * b; return isnan(r) ? (isnan(a) ? a : isnan(b) ? b : r) : r; }
ALEA_HD double xl_neg(double a) { return isnan(a) ? a : -a; }
ALEA_HD double xl_abs(double a) { return isnan(a) ? a : fabs(a); }
ALEA_HD double xl_exp(double a) { return isnan(a) ? a : exp(a); }
ALEA_HD double xl_sqrt(double a) { return isnan(a) ? a : sqrt(a); }
ALEA_HD double xl_int(double a) { return isnan(a) ? a : floor(a); }
ALEA_HD double xl_min(double a, double b) { XL_ERR2(a, b); return fmin(a, b); }
ALEA_HD double xl_max(double a, double b) { XL_ERR2(a, b); return fmax(a, b); }
ALEA_HD double xl_sign(double a) { return isnan(a) ? a : (double)((a > 0.0) - (a < 0.0)); }
ALEA_HD double xl_scale(double d) { return pow(10.0, trunc(d)); }
ALEA_HD double xl_pow(double a, double b) {  /* 1^NaN and NaN^0 stay errors; 0^-1 #DIV/0! */
  XL_ERR2(a, b);
  if (a == 0.0 && b < 0.0) return XL_DIV0;
  if (a == 0.0 && b == 0.0) return XL_NUM;
  return xl_num(pow(a, b));
}
ALEA_HD double xl_powi(double a, int k) {  /* a^k by squaring, errors as xl_pow */
  XL_ERR1(a);
  if (a == 0.0 && k < 0) return XL_DIV0;
  if (a == 0.0 && k == 0) return XL_NUM;
  double r = 1.0, b = a;
  for (int n = k < 0 ? -k : k; n; n >>= 1, b *= b) if (n & 1) r *= b;
  return xl_num(k < 0 ? 1.0 / r : r);
}
ALEA_HD double xl_ln(double a) { XL_ERR1(a); return a > 0.0 ? log(a) : XL_NUM; }  /* 0 too */
ALEA_HD double xl_log10(double a) { XL_ERR1(a); return a > 0.0 ? log10(a) : XL_NUM; }
ALEA_HD double xl_log(double a, double base) {
  XL_ERR2(a, base);
  if (!(a > 0.0 && base > 0.0)) return XL_NUM;
  return base == 1.0 ? XL_DIV0 : log(a) / log(base);
}
ALEA_HD double xl_round(double x, double d) {
  XL_ERR2(x, d); double f = xl_scale(d); return xl_sign(x) * floor(fabs(x) * f + 0.5) / f;
}
ALEA_HD double xl_roundup(double x, double d) {
  XL_ERR2(x, d); double f = xl_scale(d); return xl_sign(x) * ceil(fabs(x) * f) / f;
}
ALEA_HD double xl_rounddown(double x, double d) {
  XL_ERR2(x, d); double f = xl_scale(d); return xl_sign(x) * floor(fabs(x) * f) / f;
}
ALEA_HD double xl_mod(double a, double b) { XL_ERR2(a, b); return b == 0.0 ? XL_DIV0 : a - b * floor(a / b); }
/* annuity payment factor: (1 + r [type != 0])((1+r)^n - 1)/r, or n when r = 0 */
ALEA_HD double xl_factor(double r, double n, double kind, double growth) {
  return r == 0.0 ? n : (1.0 + r * xl_bool(kind != 0.0)) * ((growth - 1.0) / r);
}
ALEA_HD double xl_pv(double r, double n, double pmt, double fv, double kind) {
  XL_ERR5(r, n, pmt, fv, kind);
  double g = pow(1.0 + r, n); return -((fv + pmt * xl_factor(r, n, kind, g)) / g);
}
ALEA_HD double xl_fv(double r, double n, double pmt, double pv, double kind) {
  XL_ERR5(r, n, pmt, pv, kind);
  double g = pow(1.0 + r, n); return -(pv * g + pmt * xl_factor(r, n, kind, g));
}
ALEA_HD double xl_pmt(double r, double n, double pv, double fv, double kind) {
  XL_ERR5(r, n, pv, fv, kind);
  double g = pow(1.0 + r, n); return xl_div(-(pv * g + fv), xl_factor(r, n, kind, g));
}
ALEA_HD double xl_pick(const double* t, int rows, int cols, double row, double col) {
  XL_ERR2(row, col);
  double r = floor(row) - 1.0, c = floor(col) - 1.0;
  if (!(r >= 0.0 && r < rows && c >= 0.0 && c < cols)) return XL_REF;
  return t[(long)r * cols + (long)c];
}
ALEA_HD double xl_index(const double* t, int rows, int cols, double row) {  /* INDEX(t, k) */
  return rows == 1 ? xl_pick(t, rows, cols, 1.0, row) : xl_pick(t, rows, cols, row, 1.0);
}
/* MATCH position (1-based) of x among n keys t[0], t[stride], ...: kind 0 exact (first
   equal key), > 0 the last key <= x, < 0 the last key >= x (for keys sorted the way Excel
   documents, the binary search of numpy_backend finds the same position). */
ALEA_HD double xl_position(const double* t, int n, int stride, double x, double kind) {
  XL_ERR2(x, kind);
  int hit = 0;
  for (int i = 0; i < n; ++i) {
    double k = t[i * stride];
    if (kind == 0.0) { if (k == x) return i + 1.0; }
    else if (kind > 0.0 ? k <= x : -k <= -x) hit = i + 1;
  }
  return hit == 0 ? XL_NA : (double)hit;
}
ALEA_HD double xl_vlookup(double x, const double* t, int rows, int cols, double col, double exact) {
  return xl_pick(t, rows, cols, xl_position(t, rows, cols, x, exact), col);
}

/* ---- incomplete gamma and beta (NR3 6.2, 6.4) */
#define ALEA_EPS 1e-16
#define ALEA_FPMIN 1e-300
ALEA_HD_CALL double alea_gser(double a, double x) {  /* P(a, x) by series, x < a + 1 */
  double ap = a, sum = 1.0 / a, del = sum;
  for (int i = 0; i < 100000; ++i) {
    ap += 1.0; del *= x / ap; sum += del;
    if (fabs(del) < fabs(sum) * ALEA_EPS) break;
  }
  return sum * exp(-x + a * log(x) - alea_lgamma(a));
}
ALEA_HD_CALL double alea_gcf(double a, double x) {  /* Q(a, x) by continued fraction, x >= a + 1 */
  double b = x + 1.0 - a, c = 1.0 / ALEA_FPMIN, d = 1.0 / b, h = d;
  for (int i = 1; i < 100000; ++i) {
    double an = -i * (i - a);
    b += 2.0; d = an * d + b; if (fabs(d) < ALEA_FPMIN) d = ALEA_FPMIN;
    c = b + an / c; if (fabs(c) < ALEA_FPMIN) c = ALEA_FPMIN;
    d = 1.0 / d; double del = d * c; h *= del;
    if (fabs(del - 1.0) <= ALEA_EPS) break;
  }
  return exp(-x + a * log(x) - alea_lgamma(a)) * h;
}
ALEA_HD double alea_gammp(double a, double x) {
  if (x <= 0.0) return 0.0;
  return x < a + 1.0 ? alea_gser(a, x) : 1.0 - alea_gcf(a, x);
}
ALEA_HD double alea_gammq(double a, double x) {
  if (x <= 0.0) return 1.0;
  return x < a + 1.0 ? 1.0 - alea_gser(a, x) : alea_gcf(a, x);
}
ALEA_HD_CALL double alea_invgammp(double p, double a) {  /* x with P(a, x) = p */
  double x, t, u, a1 = a - 1.0, gln = alea_lgamma(a), lna1 = 0.0, afac = 0.0;
  if (!(p > 0.0)) return p == 0.0 ? 0.0 : NAN;
  if (!(p < 1.0)) return p == 1.0 ? INFINITY : NAN;
  if (a > 1.0) {
    lna1 = log(a1); afac = exp(a1 * (lna1 - 1.0) - gln);
    double pp = p < 0.5 ? p : 1.0 - p;
    t = sqrt(-2.0 * log(pp));
    x = (2.30753 + t * 0.27061) / (1.0 + t * (0.99229 + t * 0.04481)) - t;
    if (p < 0.5) x = -x;
    x = fmax(1e-3, a * pow(1.0 - 1.0 / (9.0 * a) - x / (3.0 * sqrt(a)), 3));
  } else {
    t = 1.0 - a * (0.253 + a * 0.12);
    x = p < t ? pow(p / t, 1.0 / a) : 1.0 - log(1.0 - (p - t) / (1.0 - t));
  }
  for (int j = 0; j < 40; ++j) {
    if (x <= 0.0) return 0.0;
    double err = p < 0.5 ? alea_gammp(a, x) - p : (1.0 - p) - alea_gammq(a, x);
    t = a > 1.0 ? afac * exp(-(x - a1) + a1 * (log(x) - lna1)) : exp(-x + a1 * log(x) - gln);
    if (t == 0.0) break;
    u = err / t;
    x -= (t = u / (1.0 - 0.5 * fmin(1.0, u * ((a - 1.0) / x - 1.0))));
    if (x <= 0.0) x = 0.5 * (x + t);
    if (fabs(t) <= 1e-15 * x) break;
  }
  return x;
}
ALEA_HD_CALL double alea_betacf(double a, double b, double x) {
  double qab = a + b, qap = a + 1.0, qam = a - 1.0, c = 1.0, d = 1.0 - qab * x / qap;
  if (fabs(d) < ALEA_FPMIN) d = ALEA_FPMIN;
  d = 1.0 / d; double h = d;
  for (int m = 1; m < 100000; ++m) {
    int m2 = 2 * m;
    double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
    d = 1.0 + aa * d; if (fabs(d) < ALEA_FPMIN) d = ALEA_FPMIN;
    c = 1.0 + aa / c; if (fabs(c) < ALEA_FPMIN) c = ALEA_FPMIN;
    d = 1.0 / d; h *= d * c;
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
    d = 1.0 + aa * d; if (fabs(d) < ALEA_FPMIN) d = ALEA_FPMIN;
    c = 1.0 + aa / c; if (fabs(c) < ALEA_FPMIN) c = ALEA_FPMIN;
    d = 1.0 / d; double del = d * c; h *= del;
    if (fabs(del - 1.0) <= ALEA_EPS) break;
  }
  return h;
}
/* I_x(a, b); the upper tail 1 - I_x(a, b) = I_{1-x}(b, a) is obtained by swapping. */
ALEA_HD double alea_betai(double a, double b, double x) {
  if (x <= 0.0) return 0.0;
  if (x >= 1.0) return 1.0;
  double bt = exp(alea_lgamma(a + b) - alea_lgamma(a) - alea_lgamma(b) + a * log(x) + b * log1p(-x));
  if (x < (a + 1.0) / (a + b + 2.0)) return bt * alea_betacf(a, b, x) / a;
  return 1.0 - bt * alea_betacf(b, a, 1.0 - x) / b;
}
ALEA_HD_CALL double alea_invbetai(double p, double a, double b) {  /* x with I_x(a, b) = p */
  double x, t, u, w, a1 = a - 1.0, b1 = b - 1.0;
  if (!(p > 0.0)) return p == 0.0 ? 0.0 : NAN;
  if (!(p < 1.0)) return p == 1.0 ? 1.0 : NAN;
  if (a >= 1.0 && b >= 1.0) {
    double pp = p < 0.5 ? p : 1.0 - p;
    t = sqrt(-2.0 * log(pp));
    x = (2.30753 + t * 0.27061) / (1.0 + t * (0.99229 + t * 0.04481)) - t;
    if (p < 0.5) x = -x;
    double al = (x * x - 3.0) / 6.0, h = 2.0 / (1.0 / (2.0 * a - 1.0) + 1.0 / (2.0 * b - 1.0));
    w = (x * sqrt(al + h) / h) - (1.0 / (2.0 * b - 1) - 1.0 / (2.0 * a - 1.0)) * (al + 5.0 / 6.0 - 2.0 / (3.0 * h));
    x = a / (a + b * exp(2.0 * w));
  } else {
    double lna = log(a / (a + b)), lnb = log(b / (a + b));
    t = exp(a * lna) / a; u = exp(b * lnb) / b; w = t + u;
    x = p < t / w ? pow(a * w * p, 1.0 / a) : 1.0 - pow(b * w * (1.0 - p), 1.0 / b);
  }
  double afac = -alea_lgamma(a) - alea_lgamma(b) + alea_lgamma(a + b);
  for (int j = 0; j < 40; ++j) {
    if (x == 0.0 || x == 1.0) return x;
    double err = p < 0.5 ? alea_betai(a, b, x) - p : alea_betai(b, a, 1.0 - x) - (1.0 - p);
    if (p >= 0.5) err = -err;
    t = exp(a1 * log(x) + b1 * log1p(-x) + afac);
    if (t == 0.0) break;
    u = err / t;
    x -= (t = u / (1.0 - 0.5 * fmin(1.0, u * (a1 / x - b1 / (1.0 - x)))));
    if (x <= 0.0) x = 0.5 * (x + t);
    if (x >= 1.0) x = 0.5 * (x + t + 1.0);
    if (fabs(t) <= 1e-15 * x && j > 0) break;
  }
  return x;
}

/* ---- distributions: quantile (ppf), CDF, validity; invalid parameters give NaN */
ALEA_HD bool alea_ordered(double a, double c, double b) { return a <= c && c <= b && a < b; }
ALEA_HD double ppf_normal(double u, double m, double s) { return m + s * normcdfinv(u); }
ALEA_HD double cdf_normal(double x, double m, double s) { return normcdf((x - m) / s); }
ALEA_HD double ppf_triang(double u, double a, double c, double b) {  /* branch-free: vectorises */
  double w = b - a;
  bool low = u < (c - a) / w;
  double r = sqrt(low ? u * w * (c - a) : (1.0 - u) * w * (b - c));
  return low ? a + r : b - r;
}
ALEA_HD double cdf_triang(double x, double a, double c, double b) {
  double w = b - a;
  double v = x <= c ? (x - a) * (x - a) / (w * (c - a)) : 1.0 - (b - x) * (b - x) / (w * (b - c));
  return fmin(fmax(v, 0.0), 1.0);
}
/* Trigen: min and max of the triangle whose plo/phi percentiles are lo/hi, by bisection on
   the width exactly as sampling._trigen_bounds. */
ALEA_HD double alea_trigen_excess(double w, double lo, double c, double hi, double p, double q,
                                  double* below, double* above) {
  *below = 0.5 * (p * w + sqrt((p * w) * (p * w) + 4.0 * p * w * (c - lo)));
  *above = 0.5 * (q * w + sqrt((q * w) * (q * w) + 4.0 * q * w * (hi - c)));
  return (hi - lo) + *below + *above - w;
}
ALEA_HD_CALL void alea_trigen(double lo, double c, double hi, double plo, double phi, double* a, double* b) {
  double p = plo / 100.0, q = 1.0 - phi / 100.0, below, above;
  double low = hi - lo, high = fmax(low, 1e-300) * 2.0;
  for (int i = 0; i < 2100 && alea_trigen_excess(high, lo, c, hi, p, q, &below, &above) > 0; ++i)
    high *= 2.0;
  for (int i = 0; i < 200; ++i) {
    double mid = 0.5 * (low + high);
    if (mid == low || mid == high) break;
    if (alea_trigen_excess(mid, lo, c, hi, p, q, &below, &above) > 0) low = mid; else high = mid;
  }
  alea_trigen_excess(high, lo, c, hi, p, q, &below, &above);
  *a = lo - below; *b = hi + above;
}
ALEA_HD double ppf_trigen(double u, double lo, double c, double hi, double plo, double phi) {
  double a, b; alea_trigen(lo, c, hi, plo, phi, &a, &b); return ppf_triang(u, a, c, b);
}
ALEA_HD double cdf_trigen(double x, double lo, double c, double hi, double plo, double phi) {
  double a, b; alea_trigen(lo, c, hi, plo, phi, &a, &b); return cdf_triang(x, a, c, b);
}
ALEA_HD bool valid_trigen(double lo, double c, double hi, double plo, double phi) {
  return alea_ordered(lo, c, hi) && plo >= 0.0 && plo < phi && phi <= 100.0;
}
ALEA_HD double ppf_pert(double u, double a, double c, double b) {
  double w = b - a;
  return a + w * alea_invbetai(u, 1.0 + 4.0 * (c - a) / w, 1.0 + 4.0 * (b - c) / w);
}
ALEA_HD double cdf_pert(double x, double a, double c, double b) {
  double w = b - a;
  return alea_betai(1.0 + 4.0 * (c - a) / w, 1.0 + 4.0 * (b - c) / w, fmin(fmax((x - a) / w, 0.0), 1.0));
}
ALEA_HD double ppf_uniform(double u, double a, double b) { return a + (b - a) * u; }
ALEA_HD double cdf_uniform(double x, double a, double b) { return fmin(fmax((x - a) / (b - a), 0.0), 1.0); }
ALEA_HD double ppf_lognorm2(double u, double mu, double s) { return exp(mu + s * normcdfinv(u)); }
ALEA_HD double cdf_lognorm2(double x, double mu, double s) { return normcdf((log(fmax(x, 0.0)) - mu) / s); }
ALEA_HD double ppf_lognorm(double u, double m, double s) {
  double s2 = log1p((s / m) * (s / m)); return ppf_lognorm2(u, log(m) - 0.5 * s2, sqrt(s2));
}
ALEA_HD double cdf_lognorm(double x, double m, double s) {
  double s2 = log1p((s / m) * (s / m)); return cdf_lognorm2(x, log(m) - 0.5 * s2, sqrt(s2));
}
/* discrete: xs sorted ascending, cum normalised cumulative probabilities */
ALEA_HD double ppf_discrete(double u, const double* xs, const double* cum, int n) {
  int i = 0; while (i < n - 1 && cum[i] < u) ++i; return xs[i];
}
ALEA_HD double cdf_discrete(double x, const double* xs, const double* cum, int n) {
  int i = 0; while (i < n && xs[i] <= x) ++i; return i > 0 ? cum[i - 1] : 0.0;
}
/* RiskResample in order (method 1) and without replacement (method 3), as resample.py: the
   "uniform" of trial t is (i + 0.5) / n for the position i of its number in the data, t mod n,
   shuffled in block t / n by 11 Feistel rounds on 2h bits and an offset, keyed by 12 Philox
   words (cycle walking); ppf_resample reads the number back, in the data's order */
ALEA_HD u64 alea_mix64(u64 z) {  /* splitmix64's finaliser */
  z ^= z >> 30; z *= 0xBF58476D1CE4E5B9ULL; z ^= z >> 27; z *= 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
ALEA_HD double alea_resample_unit(u64 t, u64 n, int h, int shuffled, u64 key, u64 source) {
  u64 i = t % n;
  if (shuffled) {
    const u64 half = (1ULL << h) - 1, whole = (1ULL << 2 * h) - 1, k = t / n;
    u64 w[12];
    for (int c = 0; c < 3; ++c) alea_philox(3 * k + c, ALEA_RESAMPLE_DOMAIN, key, source, w + 4 * c);
    do {
      u64 l = i >> h, r = i & half;
      for (int j = 1; j < 12; ++j) {
        l ^= alea_mix64(r ^ w[j]) & half;
        const u64 swap = l; l = r; r = swap;
      }
      i = (((l << h) | r) + w[0]) & whole;
    } while (i >= n);
  }
  return ((double)i + 0.5) / (double)n;
}
ALEA_HD double ppf_resample(double u, const double* xs, int n) {
  const int i = (int)(u * n); return xs[i < n ? i : n - 1];
}
ALEA_HD double cdf_binomial(double x, double n, double p) {
  double k = floor(x);
  if (k < 0.0) return 0.0;
  if (k >= n) return 1.0;
  return alea_betai(n - k, k + 1.0, 1.0 - p);
}
/* counts of huge variance: the normal approximation of sampling._cornish_fisher */
ALEA_HD double alea_cornish(double u, double mean, double sd, double skew, double top) {
  double z = normcdfinv(u);
  return fmin(fmax(ceil(mean + sd * (z + skew * (z * z - 1.0) / 6.0) - 0.5), 0.0), top);
}
ALEA_HD_CALL double ppf_binomial(double u, double n, double p) {
  double var = n * p * (1.0 - p);
  if (var > ALEA_APPROX_VARIANCE)
    return alea_cornish(u, n * p, sqrt(var), (1.0 - 2.0 * p) / sqrt(var), n);
  double lo = 0.0, hi = n;
  while (lo < hi) { double mid = floor(0.5 * (lo + hi)); if (cdf_binomial(mid, n, p) >= u) hi = mid; else lo = mid + 1.0; }
  return lo;
}
ALEA_HD double cdf_poisson(double x, double lam) {
  double k = floor(x); return k < 0.0 ? 0.0 : alea_gammq(k + 1.0, lam);
}
ALEA_HD_CALL double ppf_poisson(double u, double lam) {
  if (lam > ALEA_APPROX_VARIANCE) return alea_cornish(u, lam, sqrt(lam), 1.0 / sqrt(lam), INFINITY);
  double lo = 0.0, hi = ceil(lam + 10.0 * sqrt(lam) + 10.0);
  while (cdf_poisson(hi, lam) < u) hi *= 2.0;
  while (lo < hi) { double mid = floor(0.5 * (lo + hi)); if (cdf_poisson(mid, lam) >= u) hi = mid; else lo = mid + 1.0; }
  return lo;
}
ALEA_HD double ppf_expon(double u, double beta) { return -beta * log1p(-u); }
ALEA_HD double cdf_expon(double x, double beta) { return -expm1(-fmax(x, 0.0) / beta); }
ALEA_HD double ppf_gamma(double u, double a, double beta) { return beta * alea_invgammp(u, a); }
ALEA_HD double cdf_gamma(double x, double a, double beta) { return alea_gammp(a, fmax(x, 0.0) / beta); }
ALEA_HD double ppf_beta(double u, double a1, double a2) { return alea_invbetai(u, a1, a2); }
ALEA_HD double cdf_beta(double x, double a1, double a2) { return alea_betai(a1, a2, fmin(fmax(x, 0.0), 1.0)); }
ALEA_HD double ppf_betageneral(double u, double a1, double a2, double lo, double hi) {
  return lo + (hi - lo) * alea_invbetai(u, a1, a2);
}
ALEA_HD double cdf_betageneral(double x, double a1, double a2, double lo, double hi) {
  return alea_betai(a1, a2, fmin(fmax((x - lo) / (hi - lo), 0.0), 1.0));
}
ALEA_HD double ppf_weibull(double u, double alpha, double beta) { return beta * pow(-log1p(-u), 1.0 / alpha); }
ALEA_HD double cdf_weibull(double x, double alpha, double beta) { return -expm1(-pow(fmax(x, 0.0) / beta, alpha)); }
/* cumul: inner points xs/ps (n of them) between (lo, 0) and (hi, 1) */
ALEA_HD double ppf_cumul(double u, double lo, double hi, const double* xs, const double* ps, int n) {
  int seg = 1; while (seg < n + 1 && (seg - 1 < n ? ps[seg - 1] : 1.0) < u) ++seg;
  double p0 = seg == 1 ? 0.0 : ps[seg - 2], p1 = seg == n + 1 ? 1.0 : ps[seg - 1];
  double x0 = seg == 1 ? lo : xs[seg - 2], x1 = seg == n + 1 ? hi : xs[seg - 1];
  return x0 + (u - p0) / (p1 - p0) * (x1 - x0);
}
ALEA_HD double cdf_cumul(double x, double lo, double hi, const double* xs, const double* ps, int n) {
  if (x <= lo) return 0.0;
  if (x >= hi) return 1.0;
  double x0 = lo, p0 = 0.0;
  for (int i = 0; i <= n; ++i) {
    double x1 = i < n ? xs[i] : hi, p1 = i < n ? ps[i] : 1.0;
    if (x < x1) return x1 > x0 ? p0 + (x - x0) / (x1 - x0) * (p1 - p0) : p1;
    x0 = x1; p0 = p1;
  }
  return 1.0;
}
/* ---- quantiles read from the tables the sampler builds for constant parameters
   (sampling.tabulated), passed in by the native back end: the same cells and the same
   arithmetic as sampling._interpolate (quintic in logit u) and the counting search */
ALEA_HD double alea_quintic(double u, const double* c) {
  double t = 1.0 - u;
  t = u / t;
  t = log(t);
  t += ALEA_W_EDGE;
  t *= ALEA_W_SCALE;
  long j = !(t > 0.0) ? 0 : t > ALEA_KNOTS - 2 ? ALEA_KNOTS - 2 : (long)t;
  double s = t - (double)j;
  const double* a = c + 6 * j;
  return ((((a[5] * s + a[4]) * s + a[3]) * s + a[2]) * s + a[1]) * s + a[0];
}
ALEA_HD double alea_expit(double y) { return 1.0 / (1.0 + exp(-y)); }
ALEA_HD double alea_count(double u, const double* c) {  /* c: n, then the CDF at 0 .. n-1 */
  long n = (long)c[0], lo = 0, hi = n;
  while (lo < hi) { long mid = lo + (hi - lo) / 2; if (c[1 + mid] < u) lo = mid + 1; else hi = mid; }
  return (double)(lo < n - 1 ? lo : n - 1);
}
ALEA_HD double tab_gamma(double u, const double* c, double a, double beta) {
  return beta * exp(alea_quintic(u, c));
}
ALEA_HD double tab_beta(double u, const double* c, double a1, double a2) {
  return alea_expit(alea_quintic(u, c));
}
ALEA_HD double tab_pert(double u, const double* c, double a, double m, double b) {
  return a + (b - a) * alea_expit(alea_quintic(u, c));
}
ALEA_HD double tab_betageneral(double u, const double* c, double a1, double a2, double lo, double hi) {
  return lo + (hi - lo) * alea_expit(alea_quintic(u, c));
}
ALEA_HD double tab_binomial(double u, const double* c, double n, double p) { return alea_count(u, c); }
ALEA_HD double tab_poisson(double u, const double* c, double lam) { return alea_count(u, c); }

/* truncation: u -> F(lo) + u (F(hi) - F(lo)), quantile, clipped into [lo, hi]; kept below 1
   (sampling._truncated): a window open above rounds to 1 for the largest uniforms */
ALEA_HD double alea_trunc_u(double u, double flo, double fhi) {
  return fhi > flo ? fmin(flo + u * (fhi - flo), 0x1.fffffffffffffp-1) : NAN;
}
ALEA_HD double alea_clip(double x, double lo, double hi) {  /* NaN stays NaN, as np.clip */
  return isnan(x) ? x : fmin(fmax(x, lo), hi);
}
"""
)
