"""The catalogue of @RISK functions a model may use: distributions and property functions.

Every front end asks this module: is a name a distribution (and with which parameters), are
its constant parameters valid, how many arguments may a call have, and what is the value of
an operator or Excel function whose arguments are all constant (:func:`evaluate`, which
folds with the NumPy back end's own implementation, so a folded cell and a sampled one agree
bit for bit). Excel functions themselves are described by :mod:`.excel`'s registry.

Distribution names are the ``Sample.distribution`` names of :mod:`ir` (the @RISK name
without ``Risk``, lower case) and parameters keep @RISK's order and meaning. The original
families:

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

and the families of :mod:`.distributions` (their parameters are listed there and in the
README's coverage table).

Parameters that are not constants (another uncertain cell) are checked per trial by the
backends instead: an invalid draw there is NaN (an Excel ``#NUM!``), never an exception.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn

import numpy as np

from services.engine import checks, distributions, xlerror
from services.engine.errors import FormulaError, ParameterError
from services.engine.ir import Const, Table
from services.engine.numpy_backend import FUNCTIONS as _NUMPY

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
    """A property function: its lower-case name and how many arguments it takes."""

    name: str
    min_args: int
    max_args: int = MAX_ARGS


_RISK_SPELLING = {
    "betageneral": "BetaGeneral",
    "lognorm2": "Lognorm2",
    **{name: d.spelling for name, d in distributions.FAMILIES.items()},
}

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
        *(
            Distribution(name, d.params, frozenset(d.tables))
            for name, d in distributions.FAMILIES.items()
        ),
    )
}

#: Property functions, allowed only as trailing arguments of a distribution.
PROPERTIES: dict[str, Function] = {
    f.name: f
    for f in (
        Function("riskname", 1, 1),
        Function("risktruncate", 0, 2),
        Function("risktruncatep", 0, 2),
        Function("riskshift", 1, 1),
        Function("risklock", 0, 1),
        Function("riskstatic", 1, 1),
        Function("riskcorrmat", 2, 3),
        Function("riskseed", 1, 1),
    )
}

#: @RISK property functions that only describe an input for reports; accepted and ignored.
IGNORED_PROPERTIES = frozenset({"riskunits", "riskcategory", "riskcollect", "riskisdiscrete"})


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
            items = (value,) if isinstance(value, (int, float)) else value
            tables[pname] = tuple(float(v) for v in items)
            if not all(math.isfinite(v) for v in tables[pname]):
                fail(f"{pname} must be finite numbers")
        elif not isinstance(value, (int, float)):
            fail(f"{pname} must be a single number, not a range")
        elif not math.isfinite(value):
            # an error (text in arithmetic, a division by 0) is a NaN: show its Excel code
            fail(f"{pname} must be a finite number, got {xlerror.name(value) or value}")
        else:
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
                f"double precision, got {checks.fmt(value)}"
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
        given = " and ".join(f"{p} {checks.fmt(v)}" for p, v in scalars)
        return (
            f"with {given} its values leave the range of double precision (±1.8e308): "
            f"{low}, {mid} and {high} at its smallest, middle and largest quantiles"
        )
    return ""


def _bound(value: float | None) -> str:
    return "" if value is None else checks.fmt(value)


def _trigen_pcts(s: checks.Scalars, t: checks.Tables, fail: checks.Fail) -> None:
    b, p = s.get("bottom_pct"), s.get("top_pct")
    if b is not None and not 0 <= b < 100:
        fail(f"bottom_pct must be in [0, 100), got {checks.fmt(b)}")
    if p is not None and not 0 < p <= 100:
        fail(f"top_pct must be in (0, 100], got {checks.fmt(p)}")
    if b is not None and p is not None and not b < p:
        fail(f"bottom_pct ({checks.fmt(b)}) must be < top_pct ({checks.fmt(p)})")


_CHECKS: dict[str, checks.Check] = {
    "normal": checks.positive("sd"),
    "triang": checks.ordered("min", "mode", "max"),
    "trigen": checks.every(checks.ordered("bottom", "mode", "top"), _trigen_pcts),
    "pert": checks.ordered("min", "mode", "max"),
    "uniform": checks.ordered("min", None, "max"),
    "lognorm": checks.positive("mean", "sd"),
    "lognorm2": checks.positive("sigma"),
    "discrete": checks.probabilities("values", "probabilities"),
    "binomial": checks.every(checks.whole("n", 0), checks.within("p", 0, 1)),
    "poisson": checks.positive("lambda"),
    "expon": checks.positive("beta"),
    "gamma": checks.positive("alpha", "beta"),
    "beta": checks.positive("alpha1", "alpha2"),
    "betageneral": checks.every(
        checks.positive("alpha1", "alpha2"), checks.ordered("min", None, "max")
    ),
    "weibull": checks.positive("alpha", "beta"),
    "cumul": checks.every(checks.ordered("min", None, "max"), checks.cumulative("x", "p")),
    **{name: d.check for name, d in distributions.FAMILIES.items()},
}


def evaluate(fn: str, args: Sequence[float | Table]) -> float:
    """The value of ``Apply(fn, args)`` when every argument is a constant.

    The NumPy back end's own function computes it, so folding and sampling agree; an
    infinity (overflow) is #NUM! as in Excel, and an error keeps its code.
    """
    values = [a if isinstance(a, Table) else float(a) for a in args]
    with np.errstate(all="ignore"):
        value = _NUMPY[fn](*values)
    value = float(np.asarray(value, dtype=np.float64).reshape(-1)[0])
    return value if not math.isinf(value) else xlerror.NUM
