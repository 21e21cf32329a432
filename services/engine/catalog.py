"""The catalogue of functions a model may use: @RISK distributions, property functions, Excel.

Every front end asks this module three questions: is a function supported (and with how many
arguments), is it a distribution, and are its constant parameters valid. Distribution names
are the ``Sample.distribution`` names of :mod:`ir` (the @RISK name without ``Risk``, lower
case) and parameters keep @RISK's order and meaning:

==============  =====================================  ==========================================
name            parameters                             domain checked here
==============  =====================================  ==========================================
normal          mean, sd                               sd > 0
triang          min, mode, max                         min <= mode <= max, min < max
trigen          bottom, mode, top, bottom%, top%       bottom <= mode <= top, 0 <= b% < t% <= 100
pert            min, mode, max                         min <= mode <= max, min < max
uniform         min, max                               min < max
lognorm         mean, sd (of the lognormal itself)     mean > 0, sd > 0
lognorm2        mu, sigma (of the underlying normal)   sigma > 0
discrete        {values}, {probabilities}              same length, p >= 0, sum(p) > 0
binomial        n, p                                   n integer >= 0, 0 <= p <= 1
poisson         lambda                                 lambda > 0
expon           beta (the mean)                        beta > 0
gamma           alpha, beta                            alpha > 0, beta > 0
beta            alpha1, alpha2                         both > 0
betageneral     alpha1, alpha2, min, max               both > 0, min < max
weibull         alpha (shape), beta (scale)            both > 0
cumul           min, max, {x}, {p}                     min < max, x increasing in [min, max],
                                                       p non-decreasing in [0, 1], same length
==============  =====================================  ==========================================

Parameters that are not constants (another uncertain cell) are checked per trial by the
backends instead: an invalid draw there is NaN (an Excel ``#NUM!``), never an exception.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import NoReturn

import numpy as np

from services.engine.errors import FormulaError, ParameterError
from services.engine.ir import Const, Table

#: Excel's limit on the number of arguments of a function call.
MAX_ARGS = 255


@dataclass(frozen=True, slots=True)
class Distribution:
    """An @RISK distribution: its parameter names and which of them are constant tables."""

    name: str
    params: tuple[str, ...]
    tables: frozenset[int] = frozenset()

    @property
    def risk_name(self) -> str:
        """The spreadsheet spelling, e.g. ``RiskLognorm2``."""
        return "Risk" + _RISK_SPELLING.get(self.name, self.name.capitalize())


@dataclass(frozen=True, slots=True)
class Function:
    """An Excel function: its ``Apply.fn`` name and how many arguments it takes."""

    name: str
    min_args: int
    max_args: int = MAX_ARGS


_RISK_SPELLING = {"betageneral": "BetaGeneral", "lognorm2": "Lognorm2"}

DISTRIBUTIONS: dict[str, Distribution] = {
    d.name: d
    for d in (
        Distribution("normal", ("mean", "sd")),
        Distribution("triang", ("min", "mode", "max")),
        Distribution("trigen", ("bottom", "mode", "top", "bottom_pct", "top_pct")),
        Distribution("pert", ("min", "mode", "max")),
        Distribution("uniform", ("min", "max")),
        Distribution("lognorm", ("mean", "sd")),
        Distribution("lognorm2", ("mu", "sigma")),
        Distribution("discrete", ("values", "probabilities"), frozenset({0, 1})),
        Distribution("binomial", ("n", "p")),
        Distribution("poisson", ("lambda",)),
        Distribution("expon", ("beta",)),
        Distribution("gamma", ("alpha", "beta")),
        Distribution("beta", ("alpha1", "alpha2")),
        Distribution("betageneral", ("alpha1", "alpha2", "min", "max")),
        Distribution("weibull", ("alpha", "beta")),
        Distribution("cumul", ("min", "max", "x", "p"), frozenset({2, 3})),
    )
}

#: Property functions, allowed only as trailing arguments of a distribution.
PROPERTIES: dict[str, Function] = {
    f.name: f
    for f in (
        Function("riskname", 1, 1),
        Function("risktruncate", 0, 2),
        Function("riskcorrmat", 2, 3),
        Function("riskseed", 1, 1),
    )
}

#: ``RiskOutput()``, ``RiskOutput(name)`` or ``RiskOutput(name, range name, position)``.
OUTPUT = Function("riskoutput", 0, 3)

#: Excel operators (``Apply.fn`` names) with their arity.
OPERATORS: dict[str, int] = {
    "add": 2,
    "sub": 2,
    "mul": 2,
    "div": 2,
    "pow": 2,
    "eq": 2,
    "ne": 2,
    "lt": 2,
    "le": 2,
    "gt": 2,
    "ge": 2,
    "concat": 2,
    "neg": 1,
    "percent": 1,
}

FUNCTIONS: dict[str, Function] = {
    f.name: f
    for f in (
        Function("if", 2, 3),
        Function("and", 1),
        Function("or", 1),
        Function("not", 1, 1),
        Function("iferror", 2, 2),
        Function("sum", 1),
        Function("sumproduct", 1),
        Function("average", 1),
        Function("min", 1),
        Function("max", 1),
        Function("abs", 1, 1),
        Function("exp", 1, 1),
        Function("ln", 1, 1),
        Function("log", 1, 2),
        Function("log10", 1, 1),
        Function("sqrt", 1, 1),
        Function("power", 2, 2),
        Function("round", 2, 2),
        Function("roundup", 2, 2),
        Function("rounddown", 2, 2),
        Function("int", 1, 1),
        Function("mod", 2, 2),
        Function("sign", 1, 1),
        Function("npv", 2),
        Function("pv", 3, 5),
        Function("fv", 3, 5),
        Function("pmt", 3, 5),
        Function("choose", 2),
        Function("index", 2, 3),
        Function("match", 2, 3),
        Function("vlookup", 3, 4),
    )
}

#: Functions whose arguments are ranges expanded into argument lists (or Tables).
RANGE_FUNCTIONS = frozenset({"sum", "sumproduct", "average", "min", "max", "and", "or", "npv"})

#: Functions taking a constant table: argument index → the table's position.
TABLE_ARGUMENTS: dict[str, int] = {"index": 0, "match": 1, "vlookup": 1}


def distribution(function_name: str) -> Distribution | None:
    """The distribution for a spreadsheet name (``RiskNormal``/``normal``), else None."""
    key = function_name.lower()
    key = key[4:] if key.startswith("risk") else key
    return DISTRIBUTIONS.get(key)


def check_arity(function: str, count: int, lo: int, hi: int, location: str) -> None:
    """Raise FormulaError when ``count`` arguments is outside ``[lo, hi]``."""
    if lo <= count <= hi:
        return
    want = f"{lo}" if lo == hi else f"{lo} to {hi}" if hi < MAX_ARGS else f"at least {lo}"
    raise FormulaError(f"takes {want} arguments, got {count}", location, function)


Param = float | Sequence[float]


def validate(dist: Distribution, params: Sequence[Param | None], location: str) -> None:
    """Check the constant parameters of one distribution; ``None`` marks a non-constant one.

    Raises :class:`ParameterError` naming ``location`` and the @RISK function, e.g.
    ``Sheet1!B2: RiskNormal: sd must be > 0, got -1``.
    """
    fn = dist.risk_name
    check_arity(fn, len(params), len(dist.params), len(dist.params), location)

    def fail(reason: str) -> NoReturn:
        raise ParameterError(reason, location, fn)

    scalars: dict[str, float] = {}
    tables: dict[str, tuple[float, ...]] = {}
    for i, (pname, value) in enumerate(zip(dist.params, params, strict=True)):
        if value is None:
            continue
        if i in dist.tables:
            if isinstance(value, (int, float)):
                value = (float(value),)
            tables[pname] = tuple(float(v) for v in value)
            if not all(math.isfinite(v) for v in tables[pname]):
                fail(f"{pname} must be finite numbers")
        else:
            if not isinstance(value, (int, float)):
                fail(f"{pname} must be a single number, not a range")
            if not math.isfinite(value):
                fail(f"{pname} must be a finite number, got {value}")
            scalars[pname] = float(value)
    _CHECKS[dist.name](scalars, tables, fail)


#: Largest count (binomial n, Poisson lambda) that is a whole number in double precision.
MAX_COUNT = 2.0**53
#: Least probability a truncation window above the median may keep: below it, the window's
#: uniforms ``F(lo) + u (F(hi) - F(lo))`` are too coarse in double precision.
MIN_UPPER_MASS = 2.0**-40
_EXTREMES = (2.0**-53, 0.5, 1.0 - 2.0**-53)  # the smallest, middle and largest uniform


def check_domain(
    dist: Distribution,
    params: Sequence[object],
    truncate: tuple[float | None, float | None] | None,
    location: str,
) -> None:
    """Refuse constant parameters the samplers cannot honour in double precision: counts
    beyond :data:`MAX_COUNT`, truncation windows holding (next to) no probability, values
    that overflow (``RiskNormal(1e308,1e308)``). Parameters that vary between trials are
    checked per trial instead (NaN, an Excel ``#NUM!``, where they fail)."""
    values: list[float | Table] = []
    for p in params:
        if isinstance(p, Const):
            values.append(p.value)
        elif isinstance(p, Table):
            values.append(p)
        else:
            return
    reason = _domain(dist.name, tuple(values), truncate)
    if reason:
        raise ParameterError(reason, location, dist.risk_name)


@functools.lru_cache(maxsize=4096)
def _domain(
    name: str, params: tuple[float | Table, ...], truncate: tuple[float | None, float | None] | None
) -> str:
    """Why the sampler cannot honour these parameters, or "" (cached: wide models repeat)."""
    from services.engine import sampling  # NumPy/SciPy, for the numeric probes only

    spec = DISTRIBUTIONS[name]
    for pname, value in zip(spec.params, params, strict=True):
        if pname in ("n", "lambda") and isinstance(value, float) and value > MAX_COUNT:
            return (
                f"{pname} must be at most 2^53 ({MAX_COUNT:.0f}) to count whole trials in "
                f"double precision, got {_fmt(value)}"
            )
    window = truncate if truncate is not None and truncate != (None, None) else None
    if window is not None:
        f_lo, f_hi = (float(f) for f in sampling.truncation_cdfs(name, params, *window))
        shown = f"RiskTruncate({_bound(window[0])},{_bound(window[1])})"
        if not f_hi - f_lo > 0:
            return (
                f"{shown} leaves no probability: the window lies where it is 0 in double precision"
            )
        if f_lo > 0.5 and f_hi - f_lo < MIN_UPPER_MASS:
            return (
                f"{shown} keeps a probability of {f_hi - f_lo:.3g}, too little to sample in "
                f"double precision above the median (at least {MIN_UPPER_MASS:.3g})"
            )
    u = np.array(_EXTREMES)
    x = sampling.sample(name, u, params, window)
    if not np.all(np.isfinite(x)):
        low, mid, high = (f"{v:g}" for v in x)
        scalars = [(p, v) for p, v in zip(spec.params, params, strict=True) if isinstance(v, float)]
        given = " and ".join(f"{p} {_fmt(v)}" for p, v in scalars)
        return (
            f"with {given} its values leave the range of double precision (±1.8e308): "
            f"{low}, {mid} and {high} at its smallest, middle and largest quantiles"
        )
    return ""


def _bound(value: float | None) -> str:
    return "" if value is None else _fmt(value)


_Scalars = dict[str, float]
_Tables = dict[str, tuple[float, ...]]
_Fail = Callable[[str], NoReturn]
_Check = Callable[[_Scalars, _Tables, _Fail], None]


def _positive(*names: str) -> _Check:
    def check(s: _Scalars, t: _Tables, fail: _Fail) -> None:
        for n in names:
            if n in s and s[n] <= 0:
                fail(f"{n} must be > 0, got {_fmt(s[n])}")

    return check


def _ordered(lo: str, mid: str | None, hi: str) -> _Check:
    def check(s: _Scalars, t: _Tables, fail: _Fail) -> None:
        if lo in s and hi in s and not s[lo] < s[hi]:
            fail(f"{lo} ({_fmt(s[lo])}) must be < {hi} ({_fmt(s[hi])})")
        if mid is None or mid not in s:
            return
        if lo in s and s[mid] < s[lo]:
            fail(f"{mid} ({_fmt(s[mid])}) must be >= {lo} ({_fmt(s[lo])})")
        if hi in s and s[mid] > s[hi]:
            fail(f"{mid} ({_fmt(s[mid])}) must be <= {hi} ({_fmt(s[hi])})")

    return check


def _all(*checks: _Check) -> _Check:
    def check(s: _Scalars, t: _Tables, fail: _Fail) -> None:
        for c in checks:
            c(s, t, fail)

    return check


def _trigen_pcts(s: _Scalars, t: _Tables, fail: _Fail) -> None:
    b, p = s.get("bottom_pct"), s.get("top_pct")
    if b is not None and not 0 <= b < 100:
        fail(f"bottom_pct must be in [0, 100), got {_fmt(b)}")
    if p is not None and not 0 < p <= 100:
        fail(f"top_pct must be in (0, 100], got {_fmt(p)}")
    if b is not None and p is not None and not b < p:
        fail(f"bottom_pct ({_fmt(b)}) must be < top_pct ({_fmt(p)})")


def _binomial(s: _Scalars, t: _Tables, fail: _Fail) -> None:
    n, p = s.get("n"), s.get("p")
    if n is not None and (n < 0 or n != int(n)):
        fail(f"n must be a whole number >= 0, got {_fmt(n)}")
    if p is not None and not 0 <= p <= 1:
        fail(f"p must be in [0, 1], got {_fmt(p)}")


def _probabilities(values: str, probs: str) -> _Check:
    def check(s: _Scalars, t: _Tables, fail: _Fail) -> None:
        v, p = t.get(values), t.get(probs)
        if v is not None and p is not None and len(v) != len(p):
            fail(f"{values} has {len(v)} entries but {probs} has {len(p)}")
        if p is not None and any(x < 0 for x in p):
            fail(f"{probs} must all be >= 0")
        if p is not None and not sum(p) > 0:
            fail(f"{probs} must sum to a positive number")

    return check


def _cumul(s: _Scalars, t: _Tables, fail: _Fail) -> None:
    x, p = t.get("x"), t.get("p")
    if x is not None and p is not None and len(x) != len(p):
        fail(f"x has {len(x)} entries but p has {len(p)}")
    if x is not None:
        if any(b <= a for a, b in pairwise(x)):
            fail("x must be strictly increasing")
        lo, hi = s.get("min", -math.inf), s.get("max", math.inf)
        if x and (x[0] < lo or x[-1] > hi):
            fail(f"x must lie within [min, max] = [{_fmt(lo)}, {_fmt(hi)}]")
    if p is not None:
        if any(not 0 <= v <= 1 for v in p):
            fail("p must lie in [0, 1]")
        if any(b < a for a, b in pairwise(p)):
            fail("p must be non-decreasing")


def _fmt(x: float) -> str:
    return f"{x:g}"


_CHECKS: dict[str, _Check] = {
    "normal": _positive("sd"),
    "triang": _ordered("min", "mode", "max"),
    "trigen": _all(_ordered("bottom", "mode", "top"), _trigen_pcts),
    "pert": _ordered("min", "mode", "max"),
    "uniform": _ordered("min", None, "max"),
    "lognorm": _positive("mean", "sd"),
    "lognorm2": _positive("sigma"),
    "discrete": _probabilities("values", "probabilities"),
    "binomial": _binomial,
    "poisson": _positive("lambda"),
    "expon": _positive("beta"),
    "gamma": _positive("alpha", "beta"),
    "beta": _positive("alpha1", "alpha2"),
    "betageneral": _all(_positive("alpha1", "alpha2"), _ordered("min", None, "max")),
    "weibull": _positive("alpha", "beta"),
    "cumul": _all(_ordered("min", None, "max"), _cumul),
}


# --- Excel semantics on constants, used for constant folding ---------------------------------
#
# Errors are NaN, as in the backends' arrays: #DIV/0!, #NUM! (including overflow, since Excel
# has no infinities), #N/A from lookups, #VALUE! from an out-of-range CHOOSE. NaN propagates
# through every function except IFERROR, exactly as an Excel error does.

NAN = math.nan


def evaluate(fn: str, args: Sequence[float | Table]) -> float:
    """The value of ``Apply(fn, args)`` when every argument is a constant."""
    if fn in _TABLE_FNS:
        if any(not isinstance(a, Table) and not math.isfinite(a) for a in args):
            return NAN
        value = _TABLE_FNS[fn](*args)
    else:
        nums = [float(a) for a in args]  # type: ignore[arg-type]
        if fn == "iferror":
            return nums[1] if math.isnan(nums[0]) else nums[0]
        if fn == "if":
            c, a, b = nums
            return NAN if math.isnan(c) else a if c != 0 else b
        if fn == "choose":
            i = nums[0]
            ok = not math.isnan(i) and 1 <= int(i) < len(nums)
            return nums[int(i)] if ok else NAN
        if any(math.isnan(x) for x in nums):
            return NAN
        try:
            value = _SCALAR_FNS[fn](*nums)
        except (ZeroDivisionError, OverflowError, ValueError):
            return NAN
    value = float(value)
    return value if math.isfinite(value) else NAN


def _pow(a: float, b: float) -> float:
    if a == 0 and b < 0:
        return NAN
    if a < 0 and b != int(b):
        return NAN
    return a**b


def _round(x: float, digits: float, mode: str) -> float:
    """Excel ROUND/ROUNDUP/ROUNDDOWN: scale by 10^digits, then half away / away / toward zero."""
    scale = 10.0 ** int(digits)
    y = abs(x) * scale
    r = math.floor(y + 0.5) if mode == "half" else math.ceil(y) if mode == "up" else math.floor(y)
    return math.copysign(r / scale, x) if r else 0.0


def _tvm(rate: float, nper: float, pmt: float, pv: float, kind: float) -> tuple[float, float]:
    """(growth (1+r)^n, annuity factor) shared by PV, FV and PMT."""
    if rate == 0:
        return 1.0, nper
    g = (1 + rate) ** nper
    return g, (1 + rate * (kind != 0)) * (g - 1) / rate


def _pv(rate: float, nper: float, pmt: float, fv: float = 0, kind: float = 0) -> float:
    g, a = _tvm(rate, nper, pmt, 0, kind)
    return -(fv + pmt * a) / g


def _fv(rate: float, nper: float, pmt: float, pv: float = 0, kind: float = 0) -> float:
    g, a = _tvm(rate, nper, pmt, pv, kind)
    return -(pv * g + pmt * a)


def _pmt(rate: float, nper: float, pv: float, fv: float = 0, kind: float = 0) -> float:
    g, a = _tvm(rate, nper, 0, pv, kind)
    return -(fv + pv * g) / a


def _log(x: float, base: float = 10.0) -> float:
    return math.log(x) / math.log(base)


def _mod(a: float, b: float) -> float:
    return a - b * math.floor(a / b)


def _average(*xs: float) -> float:
    return sum(xs) / len(xs)


def _npv(rate: float, *values: float) -> float:
    return sum(v / (1 + rate) ** i for i, v in enumerate(values, start=1))


def _cell(t: Table, row: float, col: float) -> float:
    r, c = int(row), int(col)
    if not (1 <= r <= t.rows and 1 <= c <= t.cols):
        return NAN
    return t.values[(r - 1) * t.cols + (c - 1)]


def _match(x: float, t: Table, kind: float = 1) -> float:
    """Position of ``x`` in a one-row or one-column table (1: sorted ascending, <=)."""
    values = t.values
    if math.isnan(x) or math.isnan(kind):
        return NAN
    if kind == 0:
        return next((i + 1.0 for i, v in enumerate(values) if v == x), NAN)
    if kind > 0:
        hits = [i for i, v in enumerate(values) if v <= x]
    else:
        hits = [i for i, v in enumerate(values) if v >= x]
    return NAN if not hits else float(max(hits) + 1)


def _vlookup(x: float, t: Table, col: float, approximate: float = 1) -> float:
    if math.isnan(x) or math.isnan(col) or not 1 <= int(col) <= t.cols:
        return NAN
    firsts = [t.values[r * t.cols] for r in range(t.rows)]
    if approximate == 0:
        row = next((r for r, v in enumerate(firsts) if v == x), None)
    else:
        row = max((r for r, v in enumerate(firsts) if v <= x), default=None)
    return NAN if row is None else t.values[row * t.cols + int(col) - 1]


def _truth(x: float) -> float:
    return 1.0 if x else 0.0


_SCALAR_FNS: dict[str, Callable[..., float]] = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow": _pow,
    "neg": lambda a: -a,
    "percent": lambda a: a / 100,
    "eq": lambda a, b: _truth(a == b),
    "ne": lambda a, b: _truth(a != b),
    "lt": lambda a, b: _truth(a < b),
    "le": lambda a, b: _truth(a <= b),
    "gt": lambda a, b: _truth(a > b),
    "ge": lambda a, b: _truth(a >= b),
    "and": lambda *xs: _truth(all(xs)),
    "or": lambda *xs: _truth(any(xs)),
    "not": lambda a: _truth(not a),
    "sum": lambda *xs: sum(xs),
    "average": _average,
    "min": lambda *xs: min(xs),
    "max": lambda *xs: max(xs),
    "abs": abs,
    "exp": math.exp,
    "ln": math.log,
    "log": _log,
    "log10": math.log10,
    "sqrt": math.sqrt,
    "power": _pow,
    "round": lambda x, d: _round(x, d, "half"),
    "roundup": lambda x, d: _round(x, d, "up"),
    "rounddown": lambda x, d: _round(x, d, "down"),
    "int": math.floor,
    "mod": _mod,
    "sign": lambda x: float((x > 0) - (x < 0)),
    "npv": _npv,
    "pv": _pv,
    "fv": _fv,
    "pmt": _pmt,
}

_TABLE_FNS: dict[str, Callable[..., float]] = {"index": _cell, "match": _match, "vlookup": _vlookup}

#: @RISK property functions that only describe an input for reports; accepted and ignored.
IGNORED_PROPERTIES = frozenset({"riskstatic", "riskunits", "riskcategory", "riskcollect"})
