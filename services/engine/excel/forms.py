"""The shapes of Excel function calls, as lowerings shared by the category modules.

* :func:`elementwise`: every argument one number (arrays broadcast, as in array formulas),
  trailing optional arguments filled with their defaults.
* :func:`items`: the values of SUM-like arguments, each with whether it came from a
  reference or array (where Excel skips text, logical values and blanks) or was given
  directly (where it coerces them).
* :func:`numbers`: those values as numbers, by Excel's rules for SUM, AVERAGE, MAX...
* :func:`numbers_a`: the same for the ``A`` functions (AVERAGEA, MAXA...): text is 0 and
  logical values count.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from services.engine.excel.registry import Lowering
from services.engine.ir import Apply, Const, Node, Sample, Table
from services.engine.values import EMPTY, Grid, Scalar, Value

if TYPE_CHECKING:
    from services.engine.formula import Expr
    from services.engine.lowering import Lowerer


def elementwise(
    fn: str,
    required: int,
    defaults: Sequence[float] = (),
    label: str = "",
    logical: bool = False,
    strict: bool = False,
    flags: Sequence[int] = (),
) -> Lowering:
    """``Apply(fn, numbers)``: ``required`` arguments, then optional ones whose ``defaults``
    fill the call when they are left out.

    ``strict``: a logical argument is #VALUE! (Excel's Analysis ToolPak functions: EDATE,
    EFFECT, GCD, YEARFRAC...). ``flags``: positions of TRUE/FALSE arguments such as
    ``cumulative``, where text other than "TRUE" or "FALSE" is #VALUE!.
    """
    what = label or fn.upper()

    def argument(lw: Lowerer, i: int, v: Scalar) -> Node:
        if strict and lw.is_logical(v):
            return lw.error("#VALUE!")
        if i in flags and isinstance(v, str):
            word = v.strip().upper()
            return lw.boolean(word == "TRUE") if word in ("TRUE", "FALSE") else lw.error("#VALUE!")
        return lw.numeric(v, what)

    def lower(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Any:
        values = [lw.lower(a, sheet) for a in args]
        tail = [lw.const(d) for d in defaults[len(args) - required :]]

        def one(scalars: list[Scalar]) -> Node:
            nodes = [argument(lw, i, v) for i, v in enumerate(scalars)]
            return lw.apply(fn, [*nodes, *tail], logical)

        return lw.broadcast(one, values)

    return lower


def strict_scalar(lw: Lowerer, expr: Expr, sheet: str, what: str) -> Node:
    """One number, where a logical value is #VALUE! (Analysis ToolPak functions)."""
    value = lw.lower(expr, sheet)
    return lw.error("#VALUE!") if lw.is_logical(value) else lw.numeric(value, what)


def flag(lw: Lowerer, value: Value, what: str) -> Node:
    """A TRUE/FALSE argument: text reads only as "TRUE" or "FALSE", anything else #VALUE!."""
    if isinstance(value, str):
        word = value.strip().upper()
        return lw.boolean(word == "TRUE") if word in ("TRUE", "FALSE") else lw.error("#VALUE!")
    return lw.numeric(value, what)


def items(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> list[tuple[Scalar, bool]]:
    """(value, direct) for every value of SUM-like arguments, left to right.

    A reference contributes its non-blank cells (blanks are never values here); an array
    (a Grid or Table) its items; anything else is one direct value.
    """
    out: list[tuple[Scalar, bool]] = []
    for arg in args:
        rng = lw.area(arg, sheet)
        if rng is not None:
            for row, col in lw.graph.present(rng):
                out.append((lw.cell_value(rng.sheet, row, col), False))  # type: ignore[arg-type]
            continue
        value = lw.lower(arg, sheet)
        if isinstance(value, Table):
            out.extend((lw.const(v), False) for v in value.values)
        elif isinstance(value, Grid):
            out.extend((v, False) for v in value.items if v is not EMPTY)
        elif hasattr(value, "rows"):  # a range from an expression such as A1:A3 inside IF
            grid = lw.grid(value)
            out.extend((v, False) for v in grid.items if v is not EMPTY)
        else:
            out.append((value, True))
    return out


def is_number(lw: Lowerer, value: Scalar) -> bool:
    """A numeric value that is not TRUE/FALSE (it may still be an error in some trials)."""
    return isinstance(value, (Const, Apply, Sample)) and not lw.is_logical(value)


def numbers(lw: Lowerer, args: tuple[Expr, ...], sheet: str, fn: str) -> list[Node]:
    """Values of SUM, AVERAGE, MAX...: numbers from references and arrays (text, logical
    values and blanks skipped); direct arguments coerced (``"3"`` is 3, TRUE is 1, an
    omitted argument 0, other text #VALUE!)."""
    out: list[Node] = []
    for value, direct in items(lw, args, sheet):
        if direct:
            out.append(lw.numeric(value, fn))
        elif is_number(lw, value):
            out.append(value)  # type: ignore[arg-type]
    return out


def numbers_a(lw: Lowerer, args: tuple[Expr, ...], sheet: str, fn: str) -> list[Node]:
    """Values of AVERAGEA, MAXA...: as :func:`numbers`, but in references and arrays text
    counts as 0 and logical values as 1 or 0."""
    out: list[Node] = []
    for value, direct in items(lw, args, sheet):
        if direct:
            out.append(lw.numeric(value, fn))
        elif isinstance(value, str):
            out.append(lw.const(0.0))
        elif value is not EMPTY:
            out.append(value)  # type: ignore[arg-type]
    return out


def fold(lw: Lowerer, fn: str, values: list[Node], empty: float) -> Node:
    """``fn`` applied left to right over ``values`` (``empty`` when there are none)."""
    if not values:
        return lw.const(empty)
    acc = values[0]
    for v in values[1:]:
        acc = lw.apply(fn, [acc, v])
    return acc


def variadic(fn: str, what: str, gather: Callable[..., list[Node]] = numbers) -> Lowering:
    """``Apply(fn, values)`` over SUM-like arguments (a variadic primitive)."""

    def lower(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Any:
        return lw.apply(fn, gather(lw, args, sheet, what))

    return lower


def constant(value: float, logical: bool = False) -> Lowering:
    """A function of no arguments with a constant value (``PI()``, ``TRUE()``)."""

    def lower(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Any:
        return lw.boolean(value == 1.0) if logical else lw.const(value)

    return lower


#: Excel's Analysis ToolPak functions refuse a logical argument with #VALUE!.
ANALYSIS_TOOLPAK = frozenset(
    {
        "EDATE",
        "EOMONTH",
        "EFFECT",
        "NOMINAL",
        "ERF",
        "ERF.PRECISE",
        "ERFC",
        "ERFC.PRECISE",
        "FACTDOUBLE",
        "MROUND",
        "ISEVEN",
        "ISODD",
        "QUOTIENT",
        "YEARFRAC",
    }
)
#: Argument positions of ``cumulative`` flags.
CUMULATIVE = {
    "NORM.DIST": 3,
    "NORMDIST": 3,
    "LOGNORM.DIST": 3,
    "EXPON.DIST": 2,
    "EXPONDIST": 2,
    "GAMMA.DIST": 3,
    "GAMMADIST": 3,
    "BETA.DIST": 3,
    "BINOM.DIST": 3,
    "BINOMDIST": 3,
    "POISSON.DIST": 2,
    "POISSON": 2,
    "WEIBULL.DIST": 3,
    "WEIBULL": 3,
    "T.DIST": 2,
    "CHISQ.DIST": 2,
    "F.DIST": 3,
    "NEGBINOM.DIST": 3,
    "HYPGEOM.DIST": 4,
}


def scalar(
    name: str,
    category: str,
    numpy: Callable[..., Any],
    cpp: str,
    required: int,
    defaults: Sequence[float] = (),
    *,
    logical: bool = False,
    needs: Sequence[str] = (),
    primitive: str = "",
    strict: bool = False,
    flags: Sequence[int] = (),
) -> None:
    """Register an element-wise Excel function and its primitive in one go.

    ``numpy`` computes the value (NaN or an error code where Excel gives an error) and is
    wrapped with Excel's error rule and #NUM! for overflow; ``cpp`` is the C++ unit that
    defines ``xl_<primitive>`` (dots become underscores) with the same semantics.
    """
    from services.engine.excel import registry
    from services.engine.excel.arrays import elementwise as wrap

    prim = primitive or name.lower()
    cname = "xl_" + prim.replace(".", "_")
    if prim not in registry.PRIMITIVES:
        registry.unit(prim, cpp, needs)
        registry.primitive(prim, wrap(numpy), cname, (prim,))
    strict = strict or name in ANALYSIS_TOOLPAK
    flags = (*flags, CUMULATIVE[name]) if name in CUMULATIVE else flags
    registry.function(
        name,
        category,
        required,
        required + len(defaults),
        elementwise(prim, required, defaults, name, logical, strict, flags),
    )
