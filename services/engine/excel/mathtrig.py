# ruff: noqa: E501  (C source)
"""Math and trigonometry functions: element-wise ones, sums and products over ranges."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import special

from services.engine.excel import forms, registry
from services.engine.excel.arrays import DIV0, NUM, propagate, stack
from services.engine.excel.arrays import elementwise as wrap
from services.engine.ir import Apply, Const, Node, Sample
from services.engine.values import EMPTY, Scalar

if TYPE_CHECKING:
    from services.engine.formula import Expr
    from services.engine.lowering import Lowerer

CATEGORY = "Math and trigonometry"
_TWO27 = 2.0**27


def _fn(
    name: str, numpy: Any, cpp: str, required: int = 1, defaults: tuple[Any, ...] = (), **kw: Any
) -> None:
    forms.scalar(name, CATEGORY, numpy, cpp, required, defaults, **kw)


# --- existing primitives (numpy_backend and codegen know them), new Excel entry points ------

for _name, _prim, _req, _defaults in (
    ("ABS", "abs", 1, ()),
    ("EXP", "exp", 1, ()),
    ("LN", "ln", 1, ()),
    ("LOG10", "log10", 1, ()),
    ("LOG", "log", 1, (10.0,)),
    ("SQRT", "sqrt", 1, ()),
    ("POWER", "power", 2, ()),
    ("ROUND", "round", 2, ()),
    ("ROUNDUP", "roundup", 2, ()),
    ("ROUNDDOWN", "rounddown", 2, ()),
    ("INT", "int", 1, ()),
    ("MOD", "mod", 2, ()),
    ("SIGN", "sign", 1, ()),
):
    registry.function(
        _name,
        CATEGORY,
        _req,
        _req + len(_defaults),
        forms.elementwise(_prim, _req, _defaults, _name),
    )

# --- trigonometry -------------------------------------------------------------------------


def _reciprocal(f: Any) -> Any:
    def apply(x: Any) -> Any:
        v = f(x)
        return np.where(v == 0.0, DIV0, 1.0 / np.where(v == 0.0, 1.0, v))

    return apply


_TRIG = {
    "SIN": (np.sin, "sin(x)"),
    "COS": (np.cos, "cos(x)"),
    "TAN": (np.tan, "tan(x)"),
    "ASIN": (np.arcsin, "asin(x)"),
    "ACOS": (np.arccos, "acos(x)"),
    "ATAN": (np.arctan, "atan(x)"),
    "SINH": (np.sinh, "sinh(x)"),
    "COSH": (np.cosh, "cosh(x)"),
    "TANH": (np.tanh, "tanh(x)"),
    "ASINH": (np.arcsinh, "asinh(x)"),
    "ACOSH": (np.arccosh, "acosh(x)"),
    "ATANH": (np.arctanh, "atanh(x)"),
    "DEGREES": (np.degrees, "x * (180.0 / 3.141592653589793)"),
    "RADIANS": (np.radians, "x * (3.141592653589793 / 180.0)"),
    "SQRTPI": (lambda x: np.sqrt(x * np.pi), "sqrt(x * 3.141592653589793)"),
    "ACOT": (lambda x: np.pi / 2 - np.arctan(x), "1.5707963267948966 - atan(x)"),
}
for _name, (_np, _c) in _TRIG.items():
    _fn(
        _name,
        _np,
        f"ALEA_HD double xl_{_name.lower()}(double x) {{ XL_ERR1(x); return xl_num({_c}); }}\n",
    )

for _name, _base in (
    ("COT", "tan"),
    ("CSC", "sin"),
    ("SEC", "cos"),
    ("COTH", "tanh"),
    ("CSCH", "sinh"),
    ("SECH", "cosh"),
):
    _fn(
        _name,
        _reciprocal(getattr(np, _base)),
        f"ALEA_HD double xl_{_name.lower()}(double x) {{ XL_ERR1(x); double v = {_base}(x); return v == 0.0 ? XL_DIV0 : xl_num(1.0 / v); }}\n",
    )


def _acoth(x: Any) -> Any:
    return np.where(np.abs(x) <= 1.0, NUM, np.arctanh(1.0 / np.where(x == 0.0, 2.0, x)))


_fn(
    "ACOTH",
    _acoth,
    "ALEA_HD double xl_acoth(double x) { XL_ERR1(x); return fabs(x) <= 1.0 ? XL_NUM : atanh(1.0 / x); }\n",
)


def _atan2(x: Any, y: Any) -> Any:
    return np.where((x == 0.0) & (y == 0.0), DIV0, np.arctan2(y, x))


_fn(
    "ATAN2",
    _atan2,
    "ALEA_HD double xl_atan2(double x, double y) { XL_ERR2(x, y); return (x == 0.0 && y == 0.0) ? XL_DIV0 : atan2(y, x); }\n",
    required=2,
)

registry.function("PI", CATEGORY, 0, 0, forms.constant(math.pi))

# --- rounding -----------------------------------------------------------------------------


def _even(x: Any) -> Any:
    v = np.ceil(np.abs(x) / 2.0) * 2.0
    return np.where(x < 0, -v, v)


def _odd(x: Any) -> Any:
    v = np.ceil((np.abs(x) - 1.0) / 2.0) * 2.0 + 1.0
    return np.where(x < 0, -v, v)


_fn(
    "EVEN",
    _even,
    "ALEA_HD double xl_even(double x) { XL_ERR1(x); double v = ceil(fabs(x) / 2.0) * 2.0; return x < 0 ? -v : v; }\n",
)
_fn(
    "ODD",
    _odd,
    "ALEA_HD double xl_odd(double x) { XL_ERR1(x); double v = ceil((fabs(x) - 1.0) / 2.0) * 2.0 + 1.0; return x < 0 ? -v : v; }\n",
)


def _trunc(x: Any, d: Any) -> Any:
    f = np.power(10.0, np.trunc(d))
    return np.trunc(x * f) / f


_fn(
    "TRUNC",
    _trunc,
    "ALEA_HD double xl_trunc(double x, double d) { XL_ERR2(x, d); double f = pow(10.0, trunc(d)); return trunc(x * f) / f; }\n",
    required=1,
    defaults=(0.0,),
)


def _quotient(n: Any, d: Any) -> Any:
    return np.where(d == 0.0, DIV0, np.trunc(n / np.where(d == 0.0, 1.0, d)))


_fn(
    "QUOTIENT",
    _quotient,
    "ALEA_HD double xl_quotient(double n, double d) { XL_ERR2(n, d); return d == 0.0 ? XL_DIV0 : xl_num(trunc(n / d)); }\n",
    required=2,
)


def _mround(x: Any, m: Any) -> Any:
    safe = np.where(m == 0.0, 1.0, m)
    q = x / safe
    r = np.sign(q) * np.floor(np.abs(q) + 0.5) * safe
    return np.where(m == 0.0, 0.0, np.where(x * m < 0, NUM, r))


_fn(
    "MROUND",
    _mround,
    """ALEA_HD double xl_mround(double x, double m) {
  XL_ERR2(x, m);
  if (m == 0.0) return 0.0;
  if (x * m < 0.0) return XL_NUM;
  double q = x / m; return xl_sign(q) * floor(fabs(q) + 0.5) * m;
}
""",
    required=2,
)


def _ceiling(x: Any, s: Any) -> Any:
    safe = np.where(s == 0.0, 1.0, s)
    r = np.ceil(x / safe) * safe
    return np.where(s == 0.0, 0.0, np.where((s < 0) & (x > 0), NUM, r))


def _floor(x: Any, s: Any) -> Any:
    safe = np.where(s == 0.0, 1.0, s)
    r = np.floor(x / safe) * safe
    return np.where(s == 0.0, DIV0, np.where((s < 0) & (x > 0), NUM, r))


_fn(
    "CEILING",
    _ceiling,
    "ALEA_HD double xl_ceiling(double x, double s) { XL_ERR2(x, s); if (s == 0.0) return 0.0; if (s < 0.0 && x > 0.0) return XL_NUM; return ceil(x / s) * s; }\n",
    required=2,
)
_fn(
    "FLOOR",
    _floor,
    "ALEA_HD double xl_floor(double x, double s) { XL_ERR2(x, s); if (s == 0.0) return XL_DIV0; if (s < 0.0 && x > 0.0) return XL_NUM; return floor(x / s) * s; }\n",
    required=2,
)


def _rounding_math(up: bool) -> Any:
    """CEILING.MATH / FLOOR.MATH: |significance|; mode != 0 turns negatives the other way."""

    def apply(x: Any, s: Any, mode: Any) -> Any:
        s = np.abs(s)
        safe = np.where(s == 0.0, 1.0, s)
        q = x / safe
        toward = np.ceil(q) if up else np.floor(q)
        away = -np.ceil(np.abs(q)) if up else -np.floor(np.abs(q))
        r = np.where((x < 0) & (mode != 0), away, toward) * safe
        return np.where(s == 0.0, 0.0, r)

    return apply


_fn(
    "CEILING.MATH",
    _rounding_math(True),
    """ALEA_HD double xl_ceiling_math(double x, double s, double mode) {
  XL_ERR3(x, s, mode); s = fabs(s); if (s == 0.0) return 0.0;
  double q = x / s; return ((x < 0.0 && mode != 0.0) ? -ceil(fabs(q)) : ceil(q)) * s;
}
""",
    required=1,
    defaults=(1.0, 0.0),
)
_fn(
    "FLOOR.MATH",
    _rounding_math(False),
    """ALEA_HD double xl_floor_math(double x, double s, double mode) {
  XL_ERR3(x, s, mode); s = fabs(s); if (s == 0.0) return 0.0;
  double q = x / s; return ((x < 0.0 && mode != 0.0) ? -floor(fabs(q)) : floor(q)) * s;
}
""",
    required=1,
    defaults=(1.0, 0.0),
)
for _name, _prim in (
    ("CEILING.PRECISE", "ceiling.math"),
    ("ISO.CEILING", "ceiling.math"),
    ("FLOOR.PRECISE", "floor.math"),
):
    registry.function(_name, CATEGORY, 1, 2, forms.elementwise(_prim, 1, (1.0, 0.0), _name))

# --- combinatorics ----------------------------------------------------------------------------


def _fact(x: Any) -> Any:
    n = np.trunc(x)
    return np.where(n < 0, NUM, special.gamma(n + 1.0))


def _factdouble(x: Any) -> Any:
    n = np.trunc(x)
    k = np.where(n < 1, 1.0, n)
    # n!! = 2^(n/2) (n/2)! for even n; n! / (n-1)!! for odd n, by gamma functions
    even = np.exp2(k / 2.0) * special.gamma(k / 2.0 + 1.0)
    odd = special.gamma(k + 1.0) / (np.exp2((k - 1.0) / 2.0) * special.gamma((k - 1.0) / 2.0 + 1.0))
    r = np.where(np.mod(k, 2.0) == 0.0, even, odd)
    r = np.round(r)
    return np.where(n < -1, NUM, np.where(n < 1, 1.0, r))


_fn(
    "FACT",
    _fact,
    "ALEA_HD double xl_fact(double x) { XL_ERR1(x); double n = trunc(x); return n < 0.0 ? XL_NUM : xl_num(tgamma(n + 1.0)); }\n",
)
_fn(
    "FACTDOUBLE",
    _factdouble,
    """ALEA_HD double xl_factdouble(double x) {
  XL_ERR1(x); double n = trunc(x);
  if (n < -1.0) return XL_NUM;
  if (n < 1.0) return 1.0;
  double r = fmod(n, 2.0) == 0.0 ? exp2(n / 2.0) * tgamma(n / 2.0 + 1.0)
                                 : tgamma(n + 1.0) / (exp2((n - 1.0) / 2.0) * tgamma((n - 1.0) / 2.0 + 1.0));
  return xl_num(round(r));
}
""",
)


def _combin(n: Any, k: Any) -> Any:
    n, k = np.trunc(n), np.trunc(k)
    bad = (n < 0) | (k < 0) | (n < k)
    r = np.round(special.comb(np.where(bad, 1.0, n), np.where(bad, 0.0, k), exact=False))
    return np.where(bad, NUM, r)


def _permut(n: Any, k: Any) -> Any:
    n, k = np.trunc(n), np.trunc(k)
    bad = (n < 0) | (k < 0) | (n < k)
    r = np.round(
        special.poch(np.where(bad, 1.0, n) - np.where(bad, 0.0, k) + 1.0, np.where(bad, 0.0, k))
    )
    return np.where(bad, NUM, r)


_COMB_CPP = """ALEA_HD double xl_comb_raw(double n, double k) {  /* C(n, k), 0 <= k <= n whole */
  if (k > n - k) k = n - k;
  if (k < 30.0) { double r = 1.0; for (double i = 1.0; i <= k; i += 1.0) r = r * (n - k + i) / i; return round(r); }
  return round(exp(alea_lgamma(n + 1.0) - alea_lgamma(k + 1.0) - alea_lgamma(n - k + 1.0)));
}
"""
registry.unit("comb", _COMB_CPP)
_fn(
    "COMBIN",
    _combin,
    "ALEA_HD double xl_combin(double n, double k) { XL_ERR2(n, k); n = trunc(n); k = trunc(k); if (n < 0.0 || k < 0.0 || n < k) return XL_NUM; return xl_num(xl_comb_raw(n, k)); }\n",
    required=2,
    needs=("comb",),
)


def _combina(n: Any, k: Any) -> Any:
    n, k = np.trunc(n), np.trunc(k)
    bad = (n < 0) | (k < 0) | ((n == 0) & (k > 0))
    return np.where(bad, NUM, np.where(k == 0, 1.0, _combin(n + k - 1.0, k)))


_fn(
    "COMBINA",
    _combina,
    "ALEA_HD double xl_combina(double n, double k) { XL_ERR2(n, k); n = trunc(n); k = trunc(k); if (n < 0.0 || k < 0.0 || (n == 0.0 && k > 0.0)) return XL_NUM; return k == 0.0 ? 1.0 : xl_num(xl_comb_raw(n + k - 1.0, k)); }\n",
    required=2,
    needs=("comb",),
)
_fn(
    "PERMUT",
    _permut,
    """ALEA_HD double xl_permut(double n, double k) {
  XL_ERR2(n, k); n = trunc(n); k = trunc(k);
  if (n < 0.0 || k < 0.0 || n < k) return XL_NUM;
  if (k < 30.0) { double r = 1.0; for (double i = 0.0; i < k; i += 1.0) r *= n - i; return xl_num(r); }
  return xl_num(round(exp(alea_lgamma(n + 1.0) - alea_lgamma(n - k + 1.0))));
}
""",
    required=2,
)


def _permutationa(n: Any, k: Any) -> Any:
    n, k = np.trunc(n), np.trunc(k)
    return np.where((n < 0) | (k < 0), NUM, np.power(n, k))


_fn(
    "PERMUTATIONA",
    _permutationa,
    "ALEA_HD double xl_permutationa(double n, double k) { XL_ERR2(n, k); n = trunc(n); k = trunc(k); return (n < 0.0 || k < 0.0) ? XL_NUM : xl_num(pow(n, k)); }\n",
    required=2,
)


def _gcd2(a: Any, b: Any) -> Any:
    a, b = np.trunc(a), np.trunc(b)
    bad = (a < 0) | (b < 0) | (a >= 2.0**53) | (b >= 2.0**53)
    r = np.gcd(np.where(bad, 0, a).astype(np.int64), np.where(bad, 0, b).astype(np.int64))
    return np.where(bad, NUM, r.astype(np.float64))


def _lcm2(a: Any, b: Any) -> Any:
    a, b = np.trunc(a), np.trunc(b)
    bad = (a < 0) | (b < 0) | (a >= 2.0**53) | (b >= 2.0**53)
    ai, bi = np.where(bad, 0, a).astype(np.int64), np.where(bad, 0, b).astype(np.int64)
    g = np.gcd(ai, bi)
    r = np.where(
        g == 0, 0.0, (ai.astype(np.float64) / np.where(g == 0, 1, g)) * bi.astype(np.float64)
    )
    return np.where(bad, NUM, r)


_GCD_CPP = """ALEA_HD double xl_gcd2(double a, double b) {
  XL_ERR2(a, b); a = trunc(a); b = trunc(b);
  if (a < 0.0 || b < 0.0 || a >= 9007199254740992.0 || b >= 9007199254740992.0) return XL_NUM;
  u64 x = (u64)a, y = (u64)b; while (y) { u64 t = x % y; x = y; y = t; } return (double)x;
}
"""
registry.unit("gcd2", _GCD_CPP)
registry.primitive("gcd2", wrap(_gcd2), "xl_gcd2", ("gcd2",))
registry.unit(
    "lcm2",
    """ALEA_HD double xl_lcm2(double a, double b) {
  XL_ERR2(a, b); a = trunc(a); b = trunc(b);
  if (a < 0.0 || b < 0.0 || a >= 9007199254740992.0 || b >= 9007199254740992.0) return XL_NUM;
  double g = xl_gcd2(a, b); return g == 0.0 ? 0.0 : xl_num((a / g) * b);
}
""",
    ("gcd2",),
)
registry.primitive("lcm2", wrap(_lcm2), "xl_lcm2", ("lcm2",))


def strict_numbers(
    lw: Lowerer, args: tuple[Expr, ...], sheet: str, what: str, blanks: bool = False
) -> list[Node] | None:
    """Every value a number (Analysis ToolPak rule): None when any is text, logical or a blank
    cell (``blanks``: blank cells are left out instead); text given directly is coerced."""
    out: list[Node] = []
    for arg in args:
        rng = lw.area(arg, sheet)
        if rng is not None:
            values = [v for v in lw.grid(rng).items if not (blanks and v is EMPTY)]
            if any(not forms.is_number(lw, v) for v in values):
                return None
            out.extend(v for v in values if isinstance(v, (Const, Apply, Sample)))
            continue
        value = lw.lower(arg, sheet)
        if lw.is_logical(value):
            return None
        out.append(lw.numeric(value, what))
    return out


def _gcd_lcm(fn: str, what: str) -> Any:
    def lower(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Node:
        values = strict_numbers(lw, args, sheet, what)
        if not values:
            return lw.error("#VALUE!")
        acc = lw.apply(fn, [values[0], values[0]]) if len(values) == 1 else values[0]
        for v in values[1:]:
            acc = lw.apply(fn, [acc, v])
        return acc

    return lower


registry.function("GCD", CATEGORY, 1, registry.MAX_ARGS, _gcd_lcm("gcd2", "GCD"))
registry.function("LCM", CATEGORY, 1, registry.MAX_ARGS, _gcd_lcm("lcm2", "LCM"))

# --- sums and products ------------------------------------------------------------------------


def _sum(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Node:
    xs = forms.numbers(lw, args, sheet, "SUM")
    return lw.apply("sum", xs) if xs else lw.const(0.0)


def _product(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Node:
    return forms.fold(lw, "mul", forms.numbers(lw, args, sheet, "PRODUCT"), 0.0)


def _sumsq(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Node:
    xs = forms.numbers(lw, args, sheet, "SUMSQ")
    return lw.apply("sum", [lw.apply("mul", [x, x]) for x in xs]) if xs else lw.const(0.0)


def _multinomial(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Node:
    values = strict_numbers(lw, args, sheet, "MULTINOMIAL", blanks=True)
    return lw.apply("multinomial", values) if values else lw.error("#VALUE!")


def _multinomial_np(*xs: Any) -> Any:
    rows = stack([np.trunc(x) for x in xs])
    bad = (rows < 0).any(axis=0)
    r = special.gammaln(rows.sum(axis=0) + 1.0) - special.gammaln(rows + 1.0).sum(axis=0)
    out = np.where(bad, NUM, np.round(np.exp(r)))
    out = propagate(out, *xs)
    return out[0] if all(np.ndim(x) == 0 for x in xs) else out


registry.unit(
    "multinomial",
    """ALEA_HD double xl_multinomial(double* v, int n) {
  double total = 0.0, r = 0.0;
  for (int i = 0; i < n; ++i) XL_ERR1(v[i]);
  for (int i = 0; i < n; ++i) { double k = trunc(v[i]); if (k < 0.0) return XL_NUM; total += k; r -= alea_lgamma(k + 1.0); }
  return xl_num(round(exp(r + alea_lgamma(total + 1.0))));
}
""",
)
registry.primitive("multinomial", _multinomial_np, "xl_multinomial", ("multinomial",), fixed=0)

registry.function("SUM", CATEGORY, 1, registry.MAX_ARGS, _sum)
registry.function("PRODUCT", CATEGORY, 1, registry.MAX_ARGS, _product)
registry.function("SUMSQ", CATEGORY, 1, registry.MAX_ARGS, _sumsq)
registry.function("MULTINOMIAL", CATEGORY, 1, registry.MAX_ARGS, _multinomial)


def array_items(lw: Lowerer, expr: Expr, sheet: str) -> list[Scalar]:
    """Every item of an array argument (blanks included), row by row."""
    rng = lw.area(expr, sheet)
    return list(lw.grid(rng if rng is not None else lw.lower(expr, sheet)).items)


def _sumproduct(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Node:
    """Σ of products item by item; anything but a number (text, blank, TRUE) counts as 0."""
    vectors = [array_items(lw, a, sheet) for a in args]
    if len({len(v) for v in vectors}) != 1:
        return lw.error("#VALUE!")
    zero = lw.const(0.0)
    terms = []
    for items in zip(*vectors, strict=True):
        factors = [v if forms.is_number(lw, v) else zero for v in items]
        term = factors[0]
        for f in factors[1:]:
            term = lw.apply("mul", [term, f])
        terms.append(term)
    return lw.apply("sum", terms)


registry.function("SUMPRODUCT", CATEGORY, 1, registry.MAX_ARGS, _sumproduct)


def pairs(lw: Lowerer, xs: Expr, ys: Expr, sheet: str) -> list[tuple[Node, Node]] | None:
    """Pairs of numbers of two same-sized arrays; a pair with a non-number is skipped;
    None when the sizes differ."""
    a, b = array_items(lw, xs, sheet), array_items(lw, ys, sheet)
    if len(a) != len(b):
        return None
    return [
        (x, y)  # type: ignore[misc]
        for x, y in zip(a, b, strict=True)
        if forms.is_number(lw, x) and forms.is_number(lw, y)
    ]


def _sum_pairs(kind: str) -> Any:
    def lower(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Node:
        found = pairs(lw, args[0], args[1], sheet)
        if found is None:
            return lw.error("#N/A")
        if not found:
            return lw.error("#DIV/0!")
        terms = []
        for x, y in found:
            if kind == "x2my2":
                t = lw.apply("sub", [lw.apply("mul", [x, x]), lw.apply("mul", [y, y])])
            elif kind == "x2py2":
                t = lw.apply("add", [lw.apply("mul", [x, x]), lw.apply("mul", [y, y])])
            else:
                d = lw.apply("sub", [x, y])
                t = lw.apply("mul", [d, d])
            terms.append(t)
        return lw.apply("sum", terms)

    return lower


for _name, _kind in (("SUMX2MY2", "x2my2"), ("SUMX2PY2", "x2py2"), ("SUMXMY2", "xmy2")):
    registry.function(_name, CATEGORY, 2, 2, _sum_pairs(_kind))


# --- random numbers: inputs drawn from the simulation's own streams ----------------------------


def _rand(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Node:
    """RAND(): a Uniform(0, 1) input, reproducible by seed and in sensitivity like any other."""
    return lw.risk.new_input("uniform", (lw.const(0.0), lw.const(1.0)), lw.risk.label())


def _randbetween(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Node:
    """RANDBETWEEN(bottom, top): an IntUniform input over the whole numbers between them."""
    lo = lw.apply(
        "ceiling.math", [lw.scalar(args[0], sheet, "RANDBETWEEN"), lw.const(1.0), lw.const(0.0)]
    )
    hi = lw.apply(
        "floor.math", [lw.scalar(args[1], sheet, "RANDBETWEEN"), lw.const(1.0), lw.const(0.0)]
    )
    if isinstance(lo, Const) and isinstance(hi, Const):
        if not lo.value <= hi.value:
            return lw.error("#NUM!")
        if lo.value == hi.value:
            return lo
    return lw.risk.new_input("intuniform", (lo, hi), lw.risk.label())


registry.function("RAND", CATEGORY, 0, 0, _rand)
registry.function("RANDBETWEEN", CATEGORY, 2, 2, _randbetween)
