# ruff: noqa: E501  (C source)
"""Statistical functions over the values of ranges within one trial.

AVERAGE, COUNT, MEDIAN, LARGE, PERCENTILE, STDEV, CORREL... Which cells are values is
decided at compile time (numbers from references, text and blanks skipped, see
:mod:`.forms`); the values themselves vary per trial, so each function is a variadic
primitive: NumPy computes it over the stacked values of a tile of trials, C++ over a local
array of one trial (sorting in place where an order statistic needs it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from services.engine.excel import forms, registry
from services.engine.excel import text as xltext
from services.engine.excel.arrays import DIV0, NA, NUM, over_values, row_at
from services.engine.excel.mathtrig import pairs
from services.engine.ir import Const, Node
from services.engine.values import EMPTY

if TYPE_CHECKING:
    from services.engine.formula import Expr
    from services.engine.lowering import Lowerer

CATEGORY = "Statistical"

registry.unit(
    "stats",
    r"""
#define XL_ERRV(v, n) do { for (int i_ = 0; i_ < (n); ++i_) if (isnan((v)[i_])) return (v)[i_]; } while (0)
ALEA_HD void xl_sort(double* v, int n) {  /* heapsort, ascending: no recursion, no memory */
  for (int start = n / 2 - 1, end = n; ; ) {
    int root;
    if (start >= 0) root = start--;
    else { if (--end <= 0) return; double t = v[0]; v[0] = v[end]; v[end] = t; root = 0; }
    for (;;) {
      int child = 2 * root + 1;
      if (child >= end) break;
      if (child + 1 < end && v[child + 1] > v[child]) ++child;
      if (v[root] >= v[child]) break;
      double t = v[root]; v[root] = v[child]; v[child] = t; root = child;
    }
  }
}
ALEA_HD double xl_mean(const double* v, int n) { double s = 0.0; for (int i = 0; i < n; ++i) s += v[i]; return s / n; }
ALEA_HD double xl_devsq_raw(const double* v, int n) {
  double m = xl_mean(v, n), s = 0.0; for (int i = 0; i < n; ++i) s += (v[i] - m) * (v[i] - m); return s;
}
/* sorted v: the value at 0-based fractional rank r, interpolating */
ALEA_HD double xl_at_rank(const double* v, int n, double r) {
  int k = (int)floor(r); double f = r - k;
  return k + 1 < n ? v[k] + f * (v[k + 1] - v[k]) : v[n - 1];
}
""",
)


def _prim(
    name: str,
    fixed: int,
    compute: Callable[..., Any],
    cpp: str,
    head_first: bool = True,
    needs: tuple[str, ...] = (),
) -> None:
    registry.unit(name, cpp, ("stats", *needs))
    numpy = over_values(fixed, compute, head_first)
    registry.primitive(name, numpy, "xl_" + name.replace(".", "_"), (name,), fixed)


def _lower(fn: str, what: str, gather: Callable[..., list[Node]] = forms.numbers) -> Any:
    def lower(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Node:
        return lw.apply(fn, gather(lw, args, sheet, what))

    return lower


def _with(fn: str, what: str, gather: Callable[..., list[Node]] = forms.numbers) -> Any:
    """``FN(array, k...)``: the array's values after the scalar arguments."""

    def lower(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Node:
        values = gather(lw, args[:1], sheet, what)
        head = [lw.scalar(a, sheet, what) for a in args[1:]]
        return lw.apply(fn, [*head, *values])

    return lower


def _register(name: str, lower: Any, lo: int, hi: int = registry.MAX_ARGS) -> None:
    registry.function(name, CATEGORY, lo, hi, lower)


# --- averages, extremes, counts ----------------------------------------------------------------


def _average(gather: Callable[..., list[Node]], what: str) -> Any:
    def lower(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Node:
        xs = gather(lw, args, sheet, what)
        return lw.apply("average", xs) if xs else lw.error("#DIV/0!")

    return lower


def _extreme(fn: str, gather: Callable[..., list[Node]], what: str) -> Any:
    def lower(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Node:
        xs = gather(lw, args, sheet, what)
        return lw.apply(fn, xs) if xs else lw.const(0.0)

    return lower


_register("AVERAGE", _average(forms.numbers, "AVERAGE"), 1)
_register("AVERAGEA", _average(forms.numbers_a, "AVERAGEA"), 1)
_register("MIN", _extreme("min", forms.numbers, "MIN"), 1)
_register("MAX", _extreme("max", forms.numbers, "MAX"), 1)
_register("MINA", _extreme("min", forms.numbers_a, "MINA"), 1)
_register("MAXA", _extreme("max", forms.numbers_a, "MAXA"), 1)


def _count(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Node:
    """Numbers that are not errors: known at compile time except for per-trial errors."""
    total, uncertain = 0.0, []
    for value, direct in forms.items(lw, args, sheet):
        if direct and (lw.is_logical(value) or value is EMPTY):
            total += 1
        elif direct and isinstance(value, str):
            total += xltext.to_number(value) is not None
        elif forms.is_number(lw, value):
            if isinstance(value, Const):
                total += value.value == value.value
            else:
                uncertain.append(lw.apply("isnumber", [value]))  # type: ignore[list-item]
    return lw.apply("sum", [lw.const(total), *uncertain]) if uncertain else lw.const(total)


def _counta(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Node:
    return lw.const(
        float(sum(1 for value, _ in forms.items(lw, args, sheet) if value is not EMPTY))
    )


def _countblank(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Node:
    rng = lw.area(args[0], sheet)
    if rng is None:
        raise lw.fail("needs a range", "COUNTBLANK")
    grid = lw.grid(rng)
    return lw.const(float(sum(1 for v in grid.items if v is EMPTY or v == "")))


_register("COUNT", _count, 1)
_register("COUNTA", _counta, 1)
_register("COUNTBLANK", _countblank, 1, 1)

# --- order statistics ---------------------------------------------------------------------------


def _median(rows: np.ndarray) -> Any:
    return np.median(rows, axis=0) if rows.shape[0] else NUM


_prim(
    "median",
    0,
    _median,
    r"""
ALEA_HD double xl_median(double* v, int n) {
  XL_ERRV(v, n); if (n == 0) return XL_NUM;
  xl_sort(v, n); return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}
""",
)
_register("MEDIAN", _lower("median", "MEDIAN"), 1)


def _kth(largest: bool) -> Callable[..., Any]:
    def compute(rows: np.ndarray, k: Any) -> Any:
        n = rows.shape[0]
        kk = np.ceil(np.asarray(k, dtype=np.float64))
        bad = ~((kk >= 1) & (kk <= n))
        if n == 0:
            return np.where(bad, NUM, NUM)
        srt = np.sort(rows, axis=0)
        idx = np.where(bad, 0, (n - kk) if largest else (kk - 1)).astype(np.intp)
        picked = row_at(srt, idx)
        return np.where(bad, NUM, picked)

    return compute


for _name, _largest in (("large", True), ("small", False)):
    pick = "v[n - (int)k]" if _largest else "v[(int)k - 1]"
    _prim(
        _name,
        1,
        _kth(_largest),
        f"""
ALEA_HD double xl_{_name}(double k, double* v, int n) {{
  XL_ERR1(k); XL_ERRV(v, n); k = ceil(k);
  if (k < 1.0 || k > n) return XL_NUM;
  xl_sort(v, n); return {pick};
}}
""",
    )
    _register(_name.upper(), _with(_name, _name.upper()), 2, 2)


def _percentile(exclusive: bool) -> Callable[..., Any]:
    def compute(rows: np.ndarray, p: Any) -> Any:
        n = rows.shape[0]
        p = np.asarray(p, dtype=np.float64)
        if exclusive:
            r = p * (n + 1) - 1.0
            bad = ~((r >= 0) & (r <= n - 1) & (p > 0) & (p < 1))
        else:
            r = p * (n - 1)
            bad = ~((p >= 0) & (p <= 1))
        if n == 0:
            return np.full(np.broadcast_shapes(p.shape, rows.shape[1:]), NUM)
        srt = np.sort(rows, axis=0)
        rr = np.clip(np.where(bad, 0.0, r), 0.0, n - 1)
        k = np.floor(rr).astype(np.intp)
        k1 = np.minimum(k + 1, n - 1)
        lo, hi = row_at(srt, k), row_at(srt, k1)
        return np.where(bad, NUM, lo + (rr - k) * (hi - lo))

    return compute


_prim(
    "percentile.inc",
    1,
    _percentile(False),
    """
ALEA_HD double xl_percentile_inc(double p, double* v, int n) {
  XL_ERR1(p); XL_ERRV(v, n);
  if (n == 0 || p < 0.0 || p > 1.0) return XL_NUM;
  xl_sort(v, n); return xl_at_rank(v, n, p * (n - 1));
}
""",
)
_prim(
    "percentile.exc",
    1,
    _percentile(True),
    """
ALEA_HD double xl_percentile_exc(double p, double* v, int n) {
  XL_ERR1(p); XL_ERRV(v, n);
  double r = p * (n + 1) - 1.0;
  if (n == 0 || p <= 0.0 || p >= 1.0 || r < 0.0 || r > n - 1) return XL_NUM;
  xl_sort(v, n); return xl_at_rank(v, n, r);
}
""",
)
for _name, _prim_name in (
    ("PERCENTILE", "percentile.inc"),
    ("PERCENTILE.INC", "percentile.inc"),
    ("PERCENTILE.EXC", "percentile.exc"),
):
    _register(_name, _with(_prim_name, _name), 2, 2)


def _quartile(exclusive: bool) -> Callable[..., Any]:
    """QUARTILE(array, q) = PERCENTILE(array, q/4) for a whole q in 0..4 (1..3 exclusive);
    an error among the values comes before a q out of range."""
    percentile = _percentile(exclusive)
    lowest, highest = (1.0, 3.0) if exclusive else (0.0, 4.0)

    def compute(rows: np.ndarray, q: Any) -> Any:
        q = np.trunc(np.asarray(q, dtype=np.float64))
        bad = ~((q >= lowest) & (q <= highest))
        return np.where(bad, NUM, percentile(rows, np.where(bad, 0.5, q / 4.0)))

    return compute


for _name, _exc in (("quartile.inc", False), ("quartile.exc", True)):
    _lo, _hi = (1.0, 3.0) if _exc else (0.0, 4.0)
    _prim(
        _name,
        1,
        _quartile(_exc),
        f"""
ALEA_HD double xl_{_name.replace(".", "_")}(double q, double* v, int n) {{
  XL_ERR1(q); XL_ERRV(v, n); q = trunc(q);
  if (q < {_lo!r} || q > {_hi!r}) return XL_NUM;
  return xl_percentile_{_name[-3:]}(q / 4.0, v, n);
}}
""",
        needs=("percentile." + _name[-3:],),
    )
for _name, _prim_name in (
    ("QUARTILE", "quartile.inc"),
    ("QUARTILE.INC", "quartile.inc"),
    ("QUARTILE.EXC", "quartile.exc"),
):
    _register(_name, _with(_prim_name, _name), 2, 2)


def _rank(average: bool) -> Callable[..., Any]:
    def compute(rows: np.ndarray, x: Any, order: Any) -> Any:
        ascending = np.asarray(order) != 0
        above = (rows > x).sum(axis=0)
        below = (rows < x).sum(axis=0)
        equal = (rows == x).sum(axis=0)
        first = np.where(ascending, below, above) + 1.0
        rank = first + (equal - 1) / 2.0 if average else first
        return np.where(equal == 0, NA, rank)

    return compute


for _name, _avg in (("rank.eq", False), ("rank.avg", True)):
    _prim(
        _name,
        2,
        _rank(_avg),
        f"""
ALEA_HD double xl_{_name.replace(".", "_")}(double x, double order, double* v, int n) {{
  XL_ERR2(x, order); XL_ERRV(v, n);
  int above = 0, below = 0, equal = 0;
  for (int i = 0; i < n; ++i) {{ above += v[i] > x; below += v[i] < x; equal += v[i] == x; }}
  if (equal == 0) return XL_NA;
  double first = (order != 0.0 ? below : above) + 1.0;
  return {"first + (equal - 1) / 2.0" if _avg else "first"};
}}
""",
    )


def _rank_lower(prim: str, what: str) -> Any:
    def lower(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Node:
        x = lw.scalar(args[0], sheet, what)
        rng = lw.area(args[1], sheet)
        if rng is None:
            raise lw.fail("the second argument must be a reference", what)
        values = forms.numbers(lw, args[1:2], sheet, what)
        order = lw.scalar(args[2], sheet, what) if len(args) > 2 else lw.const(0.0)
        return lw.apply(prim, [x, order, *values])

    return lower


_register("RANK", _rank_lower("rank.eq", "RANK"), 2, 3)
_register("RANK.EQ", _rank_lower("rank.eq", "RANK.EQ"), 2, 3)
_register("RANK.AVG", _rank_lower("rank.avg", "RANK.AVG"), 2, 3)


def _percentrank(exclusive: bool) -> Callable[..., Any]:
    def compute(rows: np.ndarray, x: Any, sig: Any) -> Any:
        n = rows.shape[0]
        srt = np.sort(rows, axis=0)
        digits = np.trunc(np.asarray(sig, dtype=np.float64))
        x = np.asarray(x, dtype=np.float64)
        if n == 0:
            return np.full(np.broadcast_shapes(x.shape, rows.shape[1:]), NA)
        less = (srt < x).sum(axis=0)
        pos = np.clip(less, 1, n - 1) if n > 1 else np.zeros_like(less)
        lo, hi = row_at(srt, np.maximum(pos - 1, 0)), row_at(srt, np.minimum(pos, n - 1))
        exact = (srt == x).any(axis=0)
        k = np.where(exact, less, pos - 1 + (x - lo) / np.where(hi > lo, hi - lo, 1.0))
        r = (k + 1.0) / (n + 1.0) if exclusive else np.where(n > 1, k / max(n - 1, 1), 1.0)
        scale = np.power(10.0, digits)
        r = np.trunc(r * scale) / scale
        outside = (x < srt[0]) | (x > srt[-1])
        return np.where(outside, NA, np.where(digits < 1, NUM, r))

    return compute


for _name, _exc in (("percentrank.inc", False), ("percentrank.exc", True)):
    _prim(
        _name,
        2,
        _percentrank(_exc),
        f"""
ALEA_HD double xl_{_name.replace(".", "_")}(double x, double sig, double* v, int n) {{
  XL_ERR2(x, sig); XL_ERRV(v, n);
  double digits = trunc(sig);
  if (n == 0) return XL_NA;
  xl_sort(v, n);
  if (x < v[0] || x > v[n - 1]) return XL_NA;
  if (digits < 1.0) return XL_NUM;
  int less = 0, exact = 0; for (int i = 0; i < n; ++i) {{ less += v[i] < x; exact |= v[i] == x; }}
  double k;
  if (exact) k = less;
  else {{ int pos = less < 1 ? 1 : (less > n - 1 ? n - 1 : less); double lo = v[pos - 1], hi = v[pos]; k = pos - 1 + (x - lo) / (hi > lo ? hi - lo : 1.0); }}
  double r = {"(k + 1.0) / (n + 1.0)" if _exc else "n > 1 ? k / (n - 1) : 1.0"};
  double scale = pow(10.0, digits); return trunc(r * scale) / scale;
}}
""",
    )


def _percentrank_lower(prim: str, what: str) -> Any:
    def lower(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Node:
        values = forms.numbers(lw, args[:1], sheet, what)
        x = lw.scalar(args[1], sheet, what)
        sig = lw.scalar(args[2], sheet, what) if len(args) > 2 else lw.const(3.0)
        return lw.apply(prim, [x, sig, *values])

    return lower


_register("PERCENTRANK", _percentrank_lower("percentrank.inc", "PERCENTRANK"), 2, 3)
_register("PERCENTRANK.INC", _percentrank_lower("percentrank.inc", "PERCENTRANK.INC"), 2, 3)
_register("PERCENTRANK.EXC", _percentrank_lower("percentrank.exc", "PERCENTRANK.EXC"), 2, 3)


def _mode(rows: np.ndarray) -> Any:
    n = rows.shape[0]
    if n == 0:
        return NA
    best_count = np.zeros(rows.shape[1:])
    best = np.full(rows.shape[1:], NA)
    for i in range(n):
        count = (rows == rows[i]).sum(axis=0)
        better = count > np.maximum(best_count, 1)
        best = np.where(better, rows[i], best)
        best_count = np.where(better, count, best_count)
    return best


_prim(
    "mode.sngl",
    0,
    _mode,
    """
ALEA_HD double xl_mode_sngl(double* v, int n) {
  XL_ERRV(v, n);
  int best_count = 1; double best = XL_NA;
  for (int i = 0; i < n; ++i) {
    int c = 0; for (int j = 0; j < n; ++j) c += v[j] == v[i];
    if (c > best_count) { best_count = c; best = v[i]; }
  }
  return best;
}
""",
)
_register("MODE", _lower("mode.sngl", "MODE"), 1)
_register("MODE.SNGL", _lower("mode.sngl", "MODE.SNGL"), 1)

# --- dispersion and shape -------------------------------------------------------------------


def _moments(rows: np.ndarray) -> tuple[Any, Any, int]:
    n = rows.shape[0]
    m = rows.mean(axis=0) if n else np.nan
    d = rows - m
    return m, d, n


def _var(ddof: int) -> Callable[..., Any]:
    def compute(rows: np.ndarray) -> Any:
        _, d, n = _moments(rows)
        return (d * d).sum(axis=0) / (n - ddof) if n > ddof else DIV0

    return compute


_VAR_CPP = """
ALEA_HD double xl_{name}(double* v, int n) {{ XL_ERRV(v, n); if (n <= {ddof}) return XL_DIV0; return {root}(xl_devsq_raw(v, n) / (n - {ddof})); }}
"""
for _prim_name, _ddof, _root in (
    ("var.s", 1, ""),
    ("var.p", 0, ""),
    ("stdev.s", 1, "sqrt"),
    ("stdev.p", 0, "sqrt"),
):
    compute = _var(_ddof)
    _prim(
        _prim_name,
        0,
        (lambda r, c=compute: np.sqrt(c(r))) if _root else compute,
        _VAR_CPP.format(name=_prim_name.replace(".", "_"), ddof=_ddof, root=_root),
    )
for _name, _prim_name, _gather in (
    ("VAR", "var.s", forms.numbers),
    ("VAR.S", "var.s", forms.numbers),
    ("VARA", "var.s", forms.numbers_a),
    ("VARP", "var.p", forms.numbers),
    ("VAR.P", "var.p", forms.numbers),
    ("VARPA", "var.p", forms.numbers_a),
    ("STDEV", "stdev.s", forms.numbers),
    ("STDEV.S", "stdev.s", forms.numbers),
    ("STDEVA", "stdev.s", forms.numbers_a),
    ("STDEVP", "stdev.p", forms.numbers),
    ("STDEV.P", "stdev.p", forms.numbers),
    ("STDEVPA", "stdev.p", forms.numbers_a),
):
    _register(_name, _lower(_prim_name, _name, _gather), 1)


def _devsq(rows: np.ndarray) -> Any:
    _, d, n = _moments(rows)
    return (d * d).sum(axis=0) if n else NUM


def _avedev(rows: np.ndarray) -> Any:
    _, d, n = _moments(rows)
    return np.abs(d).mean(axis=0) if n else NUM


def _geomean(rows: np.ndarray) -> Any:
    if not rows.shape[0]:
        return NUM
    return np.where((rows <= 0).any(axis=0), NUM, np.exp(np.log(np.abs(rows)).mean(axis=0)))


def _harmean(rows: np.ndarray) -> Any:
    if not rows.shape[0]:
        return NUM
    return np.where((rows <= 0).any(axis=0), NUM, rows.shape[0] / (1.0 / rows).sum(axis=0))


def _skew(population: bool) -> Callable[..., Any]:
    def compute(rows: np.ndarray) -> Any:
        _, d, n = _moments(rows)
        if n < (1 if population else 3):
            return DIV0
        m2 = (d * d).sum(axis=0)
        s = np.sqrt(m2 / (n if population else n - 1))
        z3 = ((d / np.where(s > 0, s, 1.0)) ** 3).sum(axis=0)
        r = z3 / n if population else n / ((n - 1) * (n - 2)) * z3
        return np.where(s > 0, r, DIV0)

    return compute


def _kurt(rows: np.ndarray) -> Any:
    _, d, n = _moments(rows)
    if n < 4:
        return DIV0
    s = np.sqrt((d * d).sum(axis=0) / (n - 1))
    z4 = ((d / np.where(s > 0, s, 1.0)) ** 4).sum(axis=0)
    r = n * (n + 1) / ((n - 1) * (n - 2) * (n - 3)) * z4 - 3.0 * (n - 1) ** 2 / ((n - 2) * (n - 3))
    return np.where(s > 0, r, DIV0)


_prim(
    "devsq",
    0,
    _devsq,
    "ALEA_HD double xl_devsq(double* v, int n) { XL_ERRV(v, n); return n ? xl_devsq_raw(v, n) : XL_NUM; }\n",
)
_prim(
    "avedev",
    0,
    _avedev,
    "ALEA_HD double xl_avedev(double* v, int n) { XL_ERRV(v, n); if (!n) return XL_NUM; double m = xl_mean(v, n), s = 0.0; for (int i = 0; i < n; ++i) s += fabs(v[i] - m); return s / n; }\n",
)
_prim(
    "geomean",
    0,
    _geomean,
    "ALEA_HD double xl_geomean(double* v, int n) { XL_ERRV(v, n); if (!n) return XL_NUM; double s = 0.0; for (int i = 0; i < n; ++i) { if (v[i] <= 0.0) return XL_NUM; s += log(v[i]); } return exp(s / n); }\n",
)
_prim(
    "harmean",
    0,
    _harmean,
    "ALEA_HD double xl_harmean(double* v, int n) { XL_ERRV(v, n); if (!n) return XL_NUM; double s = 0.0; for (int i = 0; i < n; ++i) { if (v[i] <= 0.0) return XL_NUM; s += 1.0 / v[i]; } return n / s; }\n",
)
_prim(
    "skew",
    0,
    _skew(False),
    """ALEA_HD double xl_skew(double* v, int n) {
  XL_ERRV(v, n); if (n < 3) return XL_DIV0;
  double m = xl_mean(v, n), s = sqrt(xl_devsq_raw(v, n) / (n - 1)), z = 0.0;
  if (!(s > 0.0)) return XL_DIV0;
  for (int i = 0; i < n; ++i) { double t = (v[i] - m) / s; z += t * t * t; }
  return (double)n / ((n - 1.0) * (n - 2.0)) * z;
}
""",
)
_prim(
    "skew.p",
    0,
    _skew(True),
    """ALEA_HD double xl_skew_p(double* v, int n) {
  XL_ERRV(v, n); if (n < 1) return XL_DIV0;
  double m = xl_mean(v, n), s = sqrt(xl_devsq_raw(v, n) / n), z = 0.0;
  if (!(s > 0.0)) return XL_DIV0;
  for (int i = 0; i < n; ++i) { double t = (v[i] - m) / s; z += t * t * t; }
  return z / n;
}
""",
)
_prim(
    "kurt",
    0,
    _kurt,
    """ALEA_HD double xl_kurt(double* v, int n) {
  XL_ERRV(v, n); if (n < 4) return XL_DIV0;
  double m = xl_mean(v, n), s = sqrt(xl_devsq_raw(v, n) / (n - 1)), z = 0.0;
  if (!(s > 0.0)) return XL_DIV0;
  for (int i = 0; i < n; ++i) { double t = (v[i] - m) / s; z += t * t * t * t; }
  double nn = n;
  return nn * (nn + 1.0) / ((nn - 1.0) * (nn - 2.0) * (nn - 3.0)) * z - 3.0 * (nn - 1.0) * (nn - 1.0) / ((nn - 2.0) * (nn - 3.0));
}
""",
)
for _name, _prim_name in (
    ("DEVSQ", "devsq"),
    ("AVEDEV", "avedev"),
    ("GEOMEAN", "geomean"),
    ("HARMEAN", "harmean"),
    ("SKEW", "skew"),
    ("SKEW.P", "skew.p"),
    ("KURT", "kurt"),
):
    _register(_name, _lower(_prim_name, _name), 1)


def _trimmean(rows: np.ndarray, p: Any) -> Any:
    n = rows.shape[0]
    p = np.asarray(p, dtype=np.float64)
    bad = ~((p >= 0) & (p < 1)) | (n == 0)
    k = np.where(bad, 0, np.floor(n * np.where(bad, 0.0, p) / 2.0)).astype(np.intp)
    if n == 0:
        return np.full(np.broadcast_shapes(p.shape, rows.shape[1:]), NUM)
    srt = np.sort(rows, axis=0)
    idx = np.arange(n).reshape(-1, *([1] * (srt.ndim - 1)))
    keep = (idx >= k) & (idx < n - k)
    r = (srt * keep).sum(axis=0) / keep.sum(axis=0)
    return np.where(bad, NUM, r)


_prim(  # the array's errors before p's, as formulas (unlike LARGE or PERCENTILE)
    "trimmean",
    1,
    _trimmean,
    """ALEA_HD double xl_trimmean(double p, double* v, int n) {
  XL_ERRV(v, n); XL_ERR1(p);
  if (p < 0.0 || p >= 1.0 || n == 0) return XL_NUM;
  int k = (int)floor(n * p / 2.0); xl_sort(v, n);
  double s = 0.0; for (int i = k; i < n - k; ++i) s += v[i]; return s / (n - 2 * k);
}
""",
    head_first=False,
)
_register("TRIMMEAN", _with("trimmean", "TRIMMEAN"), 2, 2)

# --- two variables --------------------------------------------------------------------------


def _paired(kind: str) -> Callable[..., Any]:
    def compute(rows: np.ndarray, *head: Any) -> Any:
        n = rows.shape[0] // 2
        xs, ys = rows[:n], rows[n:]
        if kind in ("slope", "intercept", "rsq", "steyx", "forecast"):  # (known_y's, known_x's)
            xs, ys = ys, xs
        if n == 0:
            return DIV0
        mx, my = xs.mean(axis=0), ys.mean(axis=0)
        dx, dy = xs - mx, ys - my
        sxy, sxx, syy = (dx * dy).sum(axis=0), (dx * dx).sum(axis=0), (dy * dy).sum(axis=0)
        with np.errstate(all="ignore"):
            if kind == "covariance.p":
                return sxy / n
            if kind == "covariance.s":
                return sxy / (n - 1) if n > 1 else DIV0
            if kind in ("correl", "rsq"):
                r = sxy / np.sqrt(sxx * syy)
                return np.where((sxx > 0) & (syy > 0), r * r if kind == "rsq" else r, DIV0)
            slope = sxy / sxx
            if kind == "slope":
                return np.where(sxx > 0, slope, DIV0)
            if kind == "intercept":
                return np.where(sxx > 0, my - slope * mx, DIV0)
            if kind == "forecast":
                return np.where(sxx > 0, my - slope * mx + slope * head[0], DIV0)
            if n < 3:
                return DIV0
            return np.where(
                sxx > 0, np.sqrt(np.maximum(syy - sxy * sxy / sxx, 0.0) / (n - 2)), DIV0
            )

    return compute


_PAIRED_CPP = """
ALEA_HD double xl_{cname}({head}double* v, int n2) {{
  {check_head}XL_ERRV(v, n2);
  int n = n2 / 2; if (n == 0) return XL_DIV0;
  const double* xs = v + {x_off}; const double* ys = v + {y_off};
  double mx = xl_mean(xs, n), my = xl_mean(ys, n), sxy = 0.0, sxx = 0.0, syy = 0.0;
  for (int i = 0; i < n; ++i) {{ double a = xs[i] - mx, b = ys[i] - my; sxy += a * b; sxx += a * a; syy += b * b; }}
  {body}
}}
"""
_PAIRED_BODY = {
    "covariance.p": "return sxy / n;",
    "covariance.s": "return n > 1 ? sxy / (n - 1) : XL_DIV0;",
    "correl": "return (sxx > 0.0 && syy > 0.0) ? sxy / sqrt(sxx * syy) : XL_DIV0;",
    "rsq": "if (!(sxx > 0.0 && syy > 0.0)) return XL_DIV0; double r = sxy / sqrt(sxx * syy); return r * r;",
    "slope": "return sxx > 0.0 ? sxy / sxx : XL_DIV0;",
    "intercept": "return sxx > 0.0 ? my - sxy / sxx * mx : XL_DIV0;",
    "forecast": "return sxx > 0.0 ? my - sxy / sxx * mx + sxy / sxx * x : XL_DIV0;",
    "steyx": "if (n < 3 || !(sxx > 0.0)) return XL_DIV0; return sqrt(fmax(syy - sxy * sxy / sxx, 0.0) / (n - 2));",
}
for _kind, _body in _PAIRED_BODY.items():
    swapped = _kind in ("slope", "intercept", "rsq", "steyx", "forecast")
    _prim(
        _kind,
        1 if _kind == "forecast" else 0,
        _paired(_kind),
        _PAIRED_CPP.format(
            cname=_kind.replace(".", "_"),
            head="double x, " if _kind == "forecast" else "",
            check_head="XL_ERR1(x); " if _kind == "forecast" else "",
            x_off="n" if swapped else "0",
            y_off="0" if swapped else "n",
            body=_body,
        ),
    )


def _paired_lower(prim: str, what: str, with_x: bool = False) -> Any:
    def lower(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Node:
        head = [lw.scalar(args[0], sheet, what)] if with_x else []
        a, b = args[1:] if with_x else args
        found = pairs(lw, a, b, sheet)
        if found is None:
            return lw.error("#N/A")
        xs = [x for x, _ in found]
        ys = [y for _, y in found]
        return lw.apply(prim, [*head, *xs, *ys])

    return lower


for _name, _prim_name in (
    ("CORREL", "correl"),
    ("PEARSON", "correl"),
    ("COVAR", "covariance.p"),
    ("COVARIANCE.P", "covariance.p"),
    ("COVARIANCE.S", "covariance.s"),
    ("SLOPE", "slope"),
    ("INTERCEPT", "intercept"),
    ("RSQ", "rsq"),
    ("STEYX", "steyx"),
):
    _register(_name, _paired_lower(_prim_name, _name), 2, 2)
_register("FORECAST", _paired_lower("forecast", "FORECAST", with_x=True), 3, 3)
_register("FORECAST.LINEAR", _paired_lower("forecast", "FORECAST.LINEAR", with_x=True), 3, 3)
