# ruff: noqa: E501  (C source)
"""Financial functions: time value of money, loan schedules, depreciation, IRR and friends.

Sign conventions are Excel's: cash paid out is negative. The iterative ones (IRR, XIRR,
RATE) are solved per trial by :mod:`.solver` (Newton's method from the guess, default 10%,
then a bracketing search): a rate above -100% or #NUM!, as is IRR/XIRR of cash flows that do
not change sign. Where several rates solve the equation, the one Newton's method reaches
from the guess is returned, as Excel does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from services.engine.excel import forms, registry, solver
from services.engine.excel.arrays import DIV0, NUM, over_values
from services.engine.excel.mathtrig import array_items
from services.engine.ir import Node
from services.engine.values import EMPTY

if TYPE_CHECKING:
    from services.engine.formula import Expr
    from services.engine.lowering import Lowerer

CATEGORY = "Financial"


def _fn(
    name: str, numpy: Any, cpp: str, required: int, defaults: tuple[Any, ...] = (), **kw: Any
) -> None:
    forms.scalar(name, CATEGORY, numpy, cpp, required, defaults, **kw)


for _name, _prim in (("PV", "pv"), ("FV", "fv"), ("PMT", "pmt")):
    registry.function(_name, CATEGORY, 3, 5, forms.elementwise(_prim, 3, (0.0, 0.0), _name))


def _npv(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Node:
    rate = lw.scalar(args[0], sheet, "NPV")
    return lw.apply("npv", [rate, *forms.numbers(lw, args[1:], sheet, "NPV")])


registry.function("NPV", CATEGORY, 2, registry.MAX_ARGS, _npv)

# --- loan schedules ---------------------------------------------------------------------------


def _fv(r: Any, n: Any, pmt: Any, pv: Any, kind: Any) -> Any:
    with np.errstate(all="ignore"):
        g = np.power(1.0 + r, n)
        factor = np.where(r == 0, n, (1.0 + r * (kind != 0)) * (g - 1.0) / np.where(r == 0, 1.0, r))
        return -(pv * g + pmt * factor)


def _pmt(r: Any, n: Any, pv: Any, fv: Any, kind: Any) -> Any:
    with np.errstate(all="ignore"):
        g = np.power(1.0 + r, n)
        factor = np.where(r == 0, n, (1.0 + r * (kind != 0)) * (g - 1.0) / np.where(r == 0, 1.0, r))
        return -(pv * g + fv) / factor


def _ipmt(r: Any, per: Any, n: Any, pv: Any, fv: Any, kind: Any) -> Any:
    begin = kind != 0
    total = _pmt(r, n, pv, fv, kind)
    interest = _fv(r, per - 1.0, total, pv, kind) * r
    interest = np.where(begin, interest / (1.0 + r), interest)
    interest = np.where(begin & (per == 1), 0.0, interest)
    return np.where((per < 1) | (per > n), NUM, interest)


def _ppmt(r: Any, per: Any, n: Any, pv: Any, fv: Any, kind: Any) -> Any:
    return np.where(
        (per < 1) | (per > n), NUM, _pmt(r, n, pv, fv, kind) - _ipmt(r, per, n, pv, fv, kind)
    )


_LOAN_CPP = r"""
ALEA_HD double xl_ipmt_raw(double r, double per, double n, double pv, double fv, double kind) {
  double total = -(pv * pow(1.0 + r, n) + fv) / xl_factor(r, n, kind, pow(1.0 + r, n));
  double g = pow(1.0 + r, per - 1.0);
  double interest = -(pv * g + total * xl_factor(r, per - 1.0, kind, g)) * r;
  if (kind != 0.0) interest = per == 1.0 ? 0.0 : interest / (1.0 + r);
  return interest;
}
"""
registry.unit("loan", _LOAN_CPP)
_fn(
    "IPMT",
    _ipmt,
    "ALEA_HD double xl_ipmt(double r, double per, double n, double pv, double fv, double kind) { XL_ERR6(r, per, n, pv, fv, kind); if (per < 1.0 || per > n) return XL_NUM; return xl_num(xl_ipmt_raw(r, per, n, pv, fv, kind)); }\n",
    4,
    (0.0, 0.0),
    needs=("loan",),
)
_fn(
    "PPMT",
    _ppmt,
    "ALEA_HD double xl_ppmt(double r, double per, double n, double pv, double fv, double kind) { XL_ERR6(r, per, n, pv, fv, kind); if (per < 1.0 || per > n) return XL_NUM; return xl_num(xl_pmt(r, n, pv, fv, kind) - xl_ipmt_raw(r, per, n, pv, fv, kind)); }\n",
    4,
    (0.0, 0.0),
    needs=("loan",),
)


def _balance(r: Any, k: Any, total: Any, pv: Any, kind: Any) -> Any:
    """What is owed just after payment ``k`` (``pv`` before the first): minus FV, which for
    payments in advance (type 1) also holds the interest of period ``k``, not yet paid."""
    owed = -_fv(r, k, total, pv, kind)
    return np.where((kind != 0) & (k >= 1), owed / (1.0 + r), owed)


_BALANCE_CPP = r"""
ALEA_HD double xl_balance(double r, double k, double total, double pv, double kind) {
  double owed = -xl_fv(r, k, total, pv, kind);
  return kind != 0.0 && k >= 1.0 ? owed / (1.0 + r) : owed;
}
"""
registry.unit("balance", _BALANCE_CPP)


def _cumulative(principal: bool) -> Any:
    def apply(r: Any, n: Any, pv: Any, start: Any, end: Any, kind: Any) -> Any:
        s, e = np.ceil(start), np.floor(end)
        bad = (
            (r <= 0)
            | (n <= 0)
            | (pv <= 0)
            | (s < 1)
            | (e < 1)
            | (s > e)
            | ((kind != 0) & (kind != 1))
            | (e > n)
        )
        total = _pmt(r, n, pv, 0.0, kind)
        # the principal repaid over periods s..e: the balance before minus the balance then,
        # paid out (negative, as the payments); the interest is the rest of the payments
        repaid = _balance(r, s - 1.0, total, pv, kind) - _balance(r, e, total, pv, kind)
        value = -repaid if principal else total * (e - s + 1.0) + repaid
        return np.where(bad, NUM, value)

    return apply


for _name, _principal in (("CUMIPMT", False), ("CUMPRINC", True)):
    _fn(
        _name,
        _cumulative(_principal),
        f"""ALEA_HD double xl_{_name.lower()}(double r, double n, double pv, double start, double end, double kind) {{
  XL_ERR6(r, n, pv, start, end, kind); double s = ceil(start), e = floor(end);
  if (r <= 0.0 || n <= 0.0 || pv <= 0.0 || s < 1.0 || e < 1.0 || s > e || (kind != 0.0 && kind != 1.0) || e > n) return XL_NUM;
  double total = xl_pmt(r, n, pv, 0.0, kind);
  double repaid = xl_balance(r, s - 1.0, total, pv, kind) - xl_balance(r, e, total, pv, kind);
  return xl_num({"-repaid" if _principal else "total * (e - s + 1.0) + repaid"});
}}
""",
        6,
        needs=("balance",),
    )


def _nper(r: Any, pmt: Any, pv: Any, fv: Any, kind: Any) -> Any:
    with np.errstate(all="ignore"):
        z = pmt * (1.0 + r * (kind != 0)) / np.where(r == 0, 1.0, r)
        n = np.log((z - fv) / (z + pv)) / np.log1p(r)
        zero = -(pv + fv) / pmt
        return np.where(r == 0, np.where(pmt == 0, NUM, zero), n)


_fn(
    "NPER",
    _nper,
    """ALEA_HD double xl_nper(double r, double pmt, double pv, double fv, double kind) {
  XL_ERR5(r, pmt, pv, fv, kind);
  if (r == 0.0) return pmt == 0.0 ? XL_NUM : xl_num(-(pv + fv) / pmt);
  double z = pmt * (1.0 + r * (kind != 0.0 ? 1.0 : 0.0)) / r;
  return xl_num(log((z - fv) / (z + pv)) / log1p(r));
}
""",
    3,
    (0.0, 0.0),
)


def _rate(n: Any, pmt: Any, pv: Any, fv: Any, kind: Any, guess: Any) -> Any:
    """The rate of the annuity equation pv (1+r)^n + pmt (1 + r type) ((1+r)^n - 1)/r + fv = 0."""
    shape = np.broadcast_shapes(*(np.shape(a) for a in (n, pmt, pv, fv, kind, guess)))
    size = int(np.prod(shape)) if shape else 1
    n, pmt, pv, fv = (np.broadcast_to(a, shape).reshape(size) for a in (n, pmt, pv, fv))
    w = np.broadcast_to(np.not_equal(kind, 0).astype(np.float64), shape).reshape(size)

    def f_df(r: np.ndarray, trials: Any) -> tuple[np.ndarray, np.ndarray]:
        nn, p, v, f0, ww = n[trials], pmt[trials], pv[trials], fv[trials], w[trials]
        g = np.power(1.0 + r, nn)
        zero = r == 0
        rs = np.where(zero, 1.0, r)
        f = v * g + p * (1.0 + r * ww) * (g - 1.0) / rs + f0
        df = nn * v * g / (1.0 + r) + p * (
            ww * (g - 1.0) / rs
            + (1.0 + r * ww) * (nn * g / ((1.0 + r) * rs) - (g - 1.0) / (rs * rs))
        )
        f = np.where(zero, v + p * nn + f0, f)
        df = np.where(zero, v * nn + p * (ww * nn + nn * (nn - 1.0) / 2.0), df)
        return f, df

    r = solver.solve(f_df, guess, shape)
    return np.where(np.isfinite(r) & (r > -1.0), r, NUM)


_fn(
    "RATE",
    _rate,
    """ALEA_HD double xl_rate(double n, double pmt, double pv, double fv, double kind, double guess) {
  XL_ERR6(n, pmt, pv, fv, kind, guess);
  double p[5] = {n, pmt, pv, fv, kind != 0.0 ? 1.0 : 0.0};
  double r = xl_solve(p, 0, 0, 0, guess);
  return (isfinite(r) && r > -1.0) ? r : XL_NUM;
}
""",
    3,
    (0.0, 0.0, 0.1),
    needs=("solver",),
)

# --- depreciation and rates -------------------------------------------------------------------------


def _sln(cost: Any, salvage: Any, life: Any) -> Any:
    return np.where(life == 0, DIV0, (cost - salvage) / np.where(life == 0, 1.0, life))


def _syd(cost: Any, salvage: Any, life: Any, per: Any) -> Any:
    return np.where(
        (per <= 0) | (per > life),
        NUM,
        (cost - salvage) * (life - per + 1.0) * 2.0 / (life * (life + 1.0)),
    )


_fn(
    "SLN",
    _sln,
    "ALEA_HD double xl_sln(double c, double s, double l) { XL_ERR3(c, s, l); return l == 0.0 ? XL_DIV0 : xl_num((c - s) / l); }\n",
    3,
)
_fn(
    "SYD",
    _syd,
    "ALEA_HD double xl_syd(double c, double s, double l, double p) { XL_ERR4(c, s, l, p); return (p <= 0.0 || p > l) ? XL_NUM : xl_num((c - s) * (l - p + 1.0) * 2.0 / (l * (l + 1.0))); }\n",
    4,
)


def _db(cost: Any, salvage: Any, life: Any, period: Any, month: Any) -> Any:
    """Fixed-declining balance with Excel's rate rounded to three decimals, period by period."""
    ok = (cost > 0) & (salvage >= 0) & (life > 0) & (period > 0) & (month > 0) & (month < 13)
    c = np.where(ok, cost, 1.0)
    lf, per, mo = (
        np.trunc(np.where(ok, life, 1.0)),
        np.trunc(np.where(ok, period, 1.0)),
        np.trunc(np.where(ok, month, 12.0)),
    )
    ok &= per <= np.where(mo == 12, lf, lf + 1.0)
    rate = np.round(1.0 - np.power(np.where(ok, salvage, 0.0) / c, 1.0 / lf), 3)
    dep = c * rate * mo / 12.0
    total = np.zeros(np.shape(dep))
    last = int(np.max(np.minimum(per, lf))) if np.size(per) else 1
    for k in range(2, last + 1):
        active = k <= np.minimum(per, lf)
        total = np.where(active, total + dep, total)
        dep = np.where(active, (c - total) * rate, dep)
    tail = (mo != 12) & (per == lf + 1.0)
    total_t = total + dep
    dep = np.where(tail, (c - total_t) * rate * (12.0 - mo) / 12.0, dep)
    return np.where(ok, dep, NUM)


_fn(
    "DB",
    _db,
    """ALEA_HD double xl_db(double cost, double salvage, double life, double period, double month) {
  XL_ERR5(cost, salvage, life, period, month);
  if (!(cost > 0.0 && salvage >= 0.0 && life > 0.0 && period > 0.0 && month > 0.0 && month < 13.0)) return XL_NUM;
  double lf = trunc(life), per = trunc(period), mo = trunc(month);
  if (per > (mo == 12.0 ? lf : lf + 1.0)) return XL_NUM;
  double rate = nearbyint((1.0 - pow(salvage / cost, 1.0 / lf)) * 1000.0) / 1000.0;
  double dep = cost * rate * mo / 12.0, total = 0.0;
  for (double k = 2.0; k <= fmin(per, lf); k += 1.0) { total += dep; dep = (cost - total) * rate; }
  if (mo != 12.0 && per == lf + 1.0) { total += dep; dep = (cost - total) * rate * (12.0 - mo) / 12.0; }
  return xl_num(dep);
}
""",
    4,
    (12.0,),
)


def _ddb(cost: Any, salvage: Any, life: Any, period: Any, factor: Any) -> Any:
    ok = (
        (cost >= 0)
        & (salvage >= 0)
        & (salvage <= cost)
        & (period >= 1)
        & (period <= life)
        & (factor > 0)
    )
    rate = factor / np.where(life == 0, 1.0, life)
    base = 1.0 - rate
    old = np.where(rate >= 1, np.where(period == 1, cost, 0.0), cost * np.power(base, period - 1.0))
    new = np.where(rate >= 1, 0.0, cost * np.power(base, period))
    return np.where(ok, np.maximum(old - np.maximum(new, salvage), 0.0), NUM)


_fn(
    "DDB",
    _ddb,
    """ALEA_HD double xl_ddb(double cost, double salvage, double life, double period, double factor) {
  XL_ERR5(cost, salvage, life, period, factor);
  if (!(cost >= 0.0 && salvage >= 0.0 && salvage <= cost && period >= 1.0 && period <= life && factor > 0.0)) return XL_NUM;
  double rate = factor / life, old_v, new_v;
  if (rate >= 1.0) { new_v = 0.0; old_v = period == 1.0 ? cost : 0.0; }
  else { old_v = cost * pow(1.0 - rate, period - 1.0); new_v = cost * pow(1.0 - rate, period); }
  return xl_num(fmax(old_v - fmax(new_v, salvage), 0.0));
}
""",
    4,
    (2.0,),
)


def _effect(nominal: Any, npery: Any) -> Any:
    p = np.trunc(npery)
    return np.where(
        (nominal <= 0) | (p < 1), NUM, np.power(1.0 + nominal / np.where(p < 1, 1.0, p), p) - 1.0
    )


def _nominal(effect: Any, npery: Any) -> Any:
    p = np.trunc(npery)
    return np.where(
        (effect <= 0) | (p < 1),
        NUM,
        p * (np.power(1.0 + effect, 1.0 / np.where(p < 1, 1.0, p)) - 1.0),
    )


_fn(
    "EFFECT",
    _effect,
    "ALEA_HD double xl_effect(double r, double n) { XL_ERR2(r, n); double p = trunc(n); return (r <= 0.0 || p < 1.0) ? XL_NUM : xl_num(pow(1.0 + r / p, p) - 1.0); }\n",
    2,
)
_fn(
    "NOMINAL",
    _nominal,
    "ALEA_HD double xl_nominal(double r, double n) { XL_ERR2(r, n); double p = trunc(n); return (r <= 0.0 || p < 1.0) ? XL_NUM : xl_num(p * (pow(1.0 + r, 1.0 / p) - 1.0)); }\n",
    2,
)


def _pduration(rate: Any, pv: Any, fv: Any) -> Any:
    bad = (rate <= 0) | (pv <= 0) | (fv <= 0)
    return np.where(bad, NUM, (np.log(fv) - np.log(pv)) / np.log1p(rate))


def _rri(n: Any, pv: Any, fv: Any) -> Any:
    bad = (n <= 0) | (pv == 0)
    return np.where(
        bad, NUM, np.power(fv / np.where(pv == 0, 1.0, pv), 1.0 / np.where(n <= 0, 1.0, n)) - 1.0
    )


_fn(
    "PDURATION",
    _pduration,
    "ALEA_HD double xl_pduration(double r, double pv, double fv) { XL_ERR3(r, pv, fv); return (r <= 0.0 || pv <= 0.0 || fv <= 0.0) ? XL_NUM : xl_num((log(fv) - log(pv)) / log1p(r)); }\n",
    3,
)
_fn(
    "RRI",
    _rri,
    "ALEA_HD double xl_rri(double n, double pv, double fv) { XL_ERR3(n, pv, fv); return (n <= 0.0 || pv == 0.0) ? XL_NUM : xl_num(pow(fv / pv, 1.0 / n) - 1.0); }\n",
    3,
)


def _ispmt(rate: Any, per: Any, n: Any, pv: Any) -> Any:
    return np.where(n == 0, DIV0, pv * rate * (per / np.where(n == 0, 1.0, n) - 1.0))


_fn(
    "ISPMT",
    _ispmt,
    "ALEA_HD double xl_ispmt(double r, double per, double n, double pv) { XL_ERR4(r, per, n, pv); return n == 0.0 ? XL_DIV0 : xl_num(pv * r * (per / n - 1.0)); }\n",
    4,
)


def _fvschedule(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Node:
    acc = forms.strict_scalar(lw, args[0], sheet, "FVSCHEDULE")
    one = lw.const(1.0)
    for item in array_items(lw, args[1], sheet):
        if item is EMPTY:
            continue
        if not forms.is_number(lw, item):
            return lw.error("#VALUE!")
        acc = lw.apply("mul", [acc, lw.apply("add", [one, item])])  # type: ignore[list-item]
    return acc


registry.function("FVSCHEDULE", CATEGORY, 2, 2, _fvschedule)

# --- internal rates of return -----------------------------------------------------------------------


def _discounting(values: np.ndarray, t: np.ndarray) -> solver.Function:
    """f(r) = sum v_i (1+r)^-t_i and f'(r), for trials selected by ``trials``."""

    def f_df(r: np.ndarray, trials: Any) -> tuple[np.ndarray, np.ndarray]:
        v = values[:, trials]
        tt = t if t.shape[1] == 1 else t[:, trials]
        x = 1.0 / (1.0 + r)
        powers = np.power(x, tt)
        return (v * powers).sum(axis=0), -(tt * v * powers * x).sum(axis=0)

    return f_df


def _irr(rows: np.ndarray, guess: Any) -> Any:
    n = rows.shape[0]
    shape = np.broadcast_shapes(rows.shape[1:], np.shape(guess))
    values = np.broadcast_to(rows, (n, *shape)).reshape(n, -1)
    t = np.arange(n, dtype=np.float64).reshape(-1, 1)
    r = solver.solve(_discounting(values, t), guess, shape)
    sign_change = (rows > 0).any(axis=0) & (rows < 0).any(axis=0)
    return np.where(sign_change & np.isfinite(r), r, NUM)


_DISCOUNTING_CPP = r"""
/* the rate of return of flows v at times t (periods 0, 1, ... when t is null) */
ALEA_HD double xl_rate_of_return(const double* v, const double* t, int n, double guess) {
  int pos = 0, neg = 0;
  for (int i = 0; i < n; ++i) { pos = pos || v[i] > 0.0; neg = neg || v[i] < 0.0; }
  if (!(pos && neg)) return XL_NUM;
  double r = xl_solve(0, v, t, n, guess);
  return isfinite(r) ? r : XL_NUM;
}
"""
registry.unit("discounting", _DISCOUNTING_CPP, ("solver",))
registry.unit(
    "irr",
    "ALEA_HD double xl_irr(double guess, double* v, int n) { XL_ERR1(guess); XL_ERRV(v, n); return xl_rate_of_return(v, 0, n, guess); }\n",
    ("discounting", "stats"),
)
registry.primitive("irr", over_values(1, _irr), "xl_irr", ("irr",), fixed=1)


def _irr_lower(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Node:
    values = forms.numbers(lw, args[:1], sheet, "IRR")
    guess = lw.scalar(args[1], sheet, "IRR") if len(args) > 1 else lw.const(0.1)
    return lw.apply("irr", [guess, *values])


registry.function("IRR", CATEGORY, 1, 2, _irr_lower)


def _mirr(rows: np.ndarray, finance: Any, reinvest: Any) -> Any:
    n = rows.shape[0]
    t = np.arange(n, dtype=np.float64).reshape(-1, *([1] * (rows.ndim - 1)))
    pos, neg = np.where(rows > 0, rows, 0.0), np.where(rows < 0, rows, 0.0)
    numer = np.abs((pos / np.power(1.0 + reinvest, t)).sum(axis=0))
    denom = np.abs((neg / np.power(1.0 + finance, t)).sum(axis=0))
    ok = (rows > 0).any(axis=0) & (rows < 0).any(axis=0) & (n > 1)
    r = (
        np.power(numer / np.where(denom == 0, 1.0, denom), 1.0 / max(n - 1, 1)) * (1.0 + reinvest)
        - 1.0
    )
    return np.where(ok, r, DIV0)


registry.unit(
    "mirr",
    """ALEA_HD double xl_mirr(double fr, double rr, double* v, int n) {
  XL_ERR2(fr, rr); XL_ERRV(v, n);
  double numer = 0.0, denom = 0.0; bool pos = false, neg = false;
  for (int i = 0; i < n; ++i) {
    if (v[i] > 0.0) { numer += v[i] / pow(1.0 + rr, (double)i); pos = true; }
    if (v[i] < 0.0) { denom += v[i] / pow(1.0 + fr, (double)i); neg = true; }
  }
  if (!(pos && neg && n > 1)) return XL_DIV0;
  return xl_num(pow(fabs(numer) / fabs(denom), 1.0 / (n - 1)) * (1.0 + rr) - 1.0);
}
""",
    ("stats",),
)
registry.primitive("mirr", over_values(2, _mirr), "xl_mirr", ("mirr",), fixed=2)


def _mirr_lower(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Node:
    values = forms.numbers(lw, args[:1], sheet, "MIRR")
    fr, rr = (lw.scalar(a, sheet, "MIRR") for a in args[1:])
    return lw.apply("mirr", [fr, rr, *values])


registry.function("MIRR", CATEGORY, 3, 3, _mirr_lower)


def _dated(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values, years since the first date, dates valid) of stacked values then dates."""
    n = rows.shape[0] // 2
    values, dates = rows[:n], np.floor(rows[n:])
    t = (dates - dates[:1]) / 365.0
    valid = ((dates >= dates[:1]) & (dates >= 0) & (dates < 2958466)).all(axis=0)
    return values, t, valid


def _xnpv(rows: np.ndarray, rate: Any) -> Any:
    values, t, valid = _dated(rows)
    r = (values / np.power(1.0 + rate, t)).sum(axis=0)
    return np.where(valid & (rate > 0), r, NUM)


def _xirr(rows: np.ndarray, guess: Any) -> Any:
    values, t, valid = _dated(rows)
    n = values.shape[0]
    shape = np.broadcast_shapes(rows.shape[1:], np.shape(guess))
    flat_v = np.broadcast_to(values, (n, *shape)).reshape(n, -1)
    flat_t = np.broadcast_to(t, (n, *shape)).reshape(n, -1)
    r = solver.solve(_discounting(flat_v, flat_t), guess, shape)
    sign_change = (values > 0).any(axis=0) & (values < 0).any(axis=0)
    ok = sign_change & valid & (np.asarray(guess) >= 0) & np.isfinite(r)
    return np.where(ok, r, NUM)


registry.unit(
    "dated",
    """ALEA_HD bool xl_dated(double* v, int n2, double* t) {  /* v: values then dates; t: years */
  int n = n2 / 2; double d0 = floor(v[n]);
  for (int i = 0; i < n; ++i) {
    double d = floor(v[n + i]);
    if (d < d0 || d < 0.0 || d >= 2958466.0) return false;
    t[i] = (d - d0) / 365.0;
  }
  return true;
}
""",
)
registry.unit(
    "xnpv",
    """ALEA_HD double xl_xnpv(double rate, double* v, int n2) {
  XL_ERR1(rate); XL_ERRV(v, n2);
  int n = n2 / 2; if (!xl_dated(v, n2, v + n) || !(rate > 0.0)) return XL_NUM;
  double s = 0.0; for (int i = 0; i < n; ++i) s += v[i] / pow(1.0 + rate, v[n + i]);
  return xl_num(s);
}
""",
    ("dated", "stats"),
)
registry.unit(
    "xirr",
    """ALEA_HD double xl_xirr(double guess, double* v, int n2) {
  XL_ERR1(guess); XL_ERRV(v, n2);
  int n = n2 / 2; if (!xl_dated(v, n2, v + n) || guess < 0.0) return XL_NUM;
  return xl_rate_of_return(v, v + n, n, guess);
}
""",
    ("dated", "discounting", "stats"),
)
registry.primitive("xnpv", over_values(1, _xnpv), "xl_xnpv", ("xnpv",), fixed=1)
registry.primitive("xirr", over_values(1, _xirr), "xl_xirr", ("xirr",), fixed=1)


def _dated_lower(fn: str, what: str, rate_first: bool) -> Any:
    def lower(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Node:
        if rate_first:
            head = [forms.strict_scalar(lw, args[0], sheet, what)]
            values_arg, dates_arg = args[1], args[2]
        else:
            values_arg, dates_arg = args[0], args[1]
            guess = forms.strict_scalar(lw, args[2], sheet, what) if len(args) > 2 else None
            head = [guess or lw.const(0.1)]
        values, dates = array_items(lw, values_arg, sheet), array_items(lw, dates_arg, sheet)
        if len(values) != len(dates) or not values:
            return lw.error("#NUM!")
        nodes = [*values, *dates]
        if not all(forms.is_number(lw, v) for v in nodes):
            return lw.error("#VALUE!")
        return lw.apply(fn, [*head, *nodes])  # type: ignore[list-item]

    return lower


registry.function("XNPV", CATEGORY, 3, 3, _dated_lower("xnpv", "XNPV", True))
registry.function("XIRR", CATEGORY, 2, 3, _dated_lower("xirr", "XIRR", False))
