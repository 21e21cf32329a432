# ruff: noqa: E501  (C source)
"""Logical functions (IF, IFS, SWITCH, AND, XOR, IFERROR, IFNA...) and information functions
(ISERROR, ISNA, ISNUMBER, ISBLANK, N, NA, ERROR.TYPE...).

What a value *is* (text, blank, logical, a number) is known when the model is compiled; only
whether a number is an error varies per trial, so ``ISTEXT`` folds while ``ISERROR`` of an
uncertain cell becomes a primitive.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from services.engine import xlerror
from services.engine.excel import forms, registry
from services.engine.excel.arrays import NA, propagate
from services.engine.ir import Apply, Const, Node, Sample
from services.engine.values import EMPTY, Scalar, Value

if TYPE_CHECKING:
    from services.engine.formula import Expr
    from services.engine.lowering import Lowerer

LOGICAL = "Logical"
INFORMATION = "Information"


def _is_error(v: Scalar) -> bool:
    return isinstance(v, Const) and math.isnan(v.value)


def select(lw: Lowerer, cond: Scalar, then: Scalar, other: Scalar, what: str) -> Scalar:
    """IF on scalars: a constant condition picks a branch of any type; a per-trial one
    needs numbers in both branches."""
    c = lw.numeric(cond, what)
    if isinstance(c, Const):
        if math.isnan(c.value):
            return c
        chosen = then if c.value != 0 else other
        return lw.const(0.0) if chosen is EMPTY else chosen
    a, b = lw.numeric(then, what), lw.numeric(other, what)
    return lw.apply("if", [c, a, b], lw.is_logical(a) and lw.is_logical(b))


def _if(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Value:
    cond, then = lw.lower(args[0], sheet), lw.lower(args[1], sheet)
    other = lw.lower(args[2], sheet) if len(args) > 2 else lw.FALSE
    return lw.broadcast(lambda v: select(lw, v[0], v[1], v[2], "IF"), [cond, then, other])


def _ifs(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Value:
    if len(args) % 2:
        raise lw.fail("takes condition and value pairs", "IFS")
    values = [lw.lower(a, sheet) for a in args]

    def one(v: list[Scalar]) -> Scalar:
        result: Scalar = lw.error("#N/A")
        for i in range(len(v) - 2, -1, -2):
            result = select(lw, v[i], v[i + 1], result, "IFS")
        return result

    return lw.broadcast(one, values)


def _switch(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Value:
    values = [lw.lower(a, sheet) for a in args]

    def one(v: list[Scalar]) -> Scalar:
        expr, rest = v[0], v[1:]
        result: Scalar = rest[-1] if len(rest) % 2 else lw.error("#N/A")
        cases = rest[: len(rest) - len(rest) % 2]
        for i in range(len(cases) - 2, -1, -2):
            result = select(lw, lw.compare("eq", expr, cases[i]), cases[i + 1], result, "SWITCH")
        return result

    return lw.broadcast(one, values)


def _logicals(lw: Lowerer, args: tuple[Expr, ...], sheet: str, what: str) -> list[Node] | None:
    """Values of AND, OR, XOR: numbers and logical values; text in references skipped."""
    out: list[Node] = []
    for value, direct in forms.items(lw, args, sheet):
        if direct:
            if isinstance(value, str) and value.upper() in ("TRUE", "FALSE"):
                out.append(lw.boolean(value.upper() == "TRUE"))
            else:
                out.append(lw.numeric(value, what))
        elif isinstance(value, (Const, Apply, Sample)):
            out.append(value)
    return out or None


def _and_or(fn: str) -> Any:
    def lower(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Node:
        values = _logicals(lw, args, sheet, fn.upper())
        return lw.apply(fn, values) if values else lw.error("#VALUE!")

    return lower


def _xor(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Node:
    values = _logicals(lw, args, sheet, "XOR")
    if not values:
        return lw.error("#VALUE!")
    zero = lw.const(0.0)
    count = lw.apply("sum", [lw.apply("ne", [v, zero]) for v in values])
    return lw.apply("eq", [lw.apply("mod", [count, lw.const(2.0)]), lw.const(1.0)])


def _catch(fn: str, only_na: bool) -> Any:
    def lower(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Value:
        value, fallback = lw.lower(args[0], sheet), lw.lower(args[1], sheet)

        def one(v: list[Scalar]) -> Scalar:
            x, alt = v
            if not isinstance(x, (Apply, Sample)):
                caught = _is_error(x) and (not only_na or xlerror.code(x.value) == 7)  # type: ignore[union-attr]
                chosen = alt if caught else x
                return lw.const(0.0) if chosen is EMPTY else chosen
            a = lw.numeric(alt, fn.upper())
            return lw.apply(fn, [x, a], lw.is_logical(x) and lw.is_logical(a))

        return lw.broadcast(one, [value, fallback])

    return lower


def _ifna_np(a: Any, b: Any) -> Any:
    return np.where(xlerror.codes(a) == 7, b, a)


registry.unit(
    "ifna",
    "ALEA_HD double xl_ifna(double a, double b) { return xl_code(a) == 7 ? b : a; }\n",
)
registry.primitive("ifna", _ifna_np, "xl_ifna", ("ifna",))

registry.function("IF", LOGICAL, 2, 3, _if)
registry.function("IFS", LOGICAL, 2, registry.MAX_ARGS, _ifs)
registry.function("SWITCH", LOGICAL, 3, registry.MAX_ARGS, _switch)
registry.function("AND", LOGICAL, 1, registry.MAX_ARGS, _and_or("and"))
registry.function("OR", LOGICAL, 1, registry.MAX_ARGS, _and_or("or"))
registry.function("XOR", LOGICAL, 1, registry.MAX_ARGS, _xor)
registry.function("NOT", LOGICAL, 1, 1, forms.elementwise("not", 1, (), "NOT", logical=True))
registry.function("IFERROR", LOGICAL, 2, 2, _catch("iferror", only_na=False))
registry.function("IFNA", LOGICAL, 2, 2, _catch("ifna", only_na=True))
registry.function("TRUE", LOGICAL, 0, 0, forms.constant(1.0, logical=True))
registry.function("FALSE", LOGICAL, 0, 0, forms.constant(0.0, logical=True))

# --- information ------------------------------------------------------------------------------


def _error_test(fn: str, test: Any) -> Any:
    """ISERROR, ISERR, ISNA: static for constants and non-numbers, a primitive per trial."""

    def lower(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Value:
        def one(v: list[Scalar]) -> Scalar:
            x = v[0]
            if isinstance(x, (Apply, Sample)):
                return lw.apply(fn, [x], logical=True)
            if isinstance(x, Const):
                return lw.boolean(bool(test(np.array([x.value]))[0]))
            return lw.FALSE

        return lw.broadcast(one, [lw.lower(args[0], sheet)])

    return lower


def _iserror(x: Any) -> Any:
    return (~np.isfinite(x)).astype(np.float64)


def _iserr(x: Any) -> Any:
    codes = xlerror.codes(np.where(np.isinf(x), np.nan, x))
    return ((codes != 0) & (codes != 7)).astype(np.float64)


def _isna(x: Any) -> Any:
    return (xlerror.codes(x) == 7).astype(np.float64)


def _isnumber(x: Any) -> Any:
    return np.isfinite(x).astype(np.float64)


for _fn, _test, _cpp in (
    ("iserror", _iserror, "!isfinite(x)"),
    ("iserr", _iserr, "!isfinite(x) && xl_code(x) != 7"),
    ("isna", _isna, "xl_code(x) == 7"),
    ("isnumber", _isnumber, "isfinite(x)"),
):
    registry.unit(_fn, f"ALEA_HD double xl_{_fn}(double x) {{ return xl_bool({_cpp}); }}\n")
    registry.primitive(_fn, _test, f"xl_{_fn}", (_fn,))
    if _fn != "isnumber":
        registry.function(_fn.upper(), INFORMATION, 1, 1, _error_test(_fn, _test))


def _static(test: Any) -> Any:
    """An IS function whose answer is known at compile time from the value's type."""

    def lower(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Value:
        return lw.broadcast(lambda v: lw.boolean(test(lw, v[0])), [lw.lower(args[0], sheet)])

    return lower


def _isnumber_lower(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Value:
    def one(v: list[Scalar]) -> Scalar:
        x = v[0]
        if not forms.is_number(lw, x):
            return lw.FALSE
        if isinstance(x, Const):
            return lw.boolean(math.isfinite(x.value))
        return lw.apply("isnumber", [x], logical=True)  # type: ignore[list-item]

    return lw.broadcast(one, [lw.lower(args[0], sheet)])


registry.function("ISNUMBER", INFORMATION, 1, 1, _isnumber_lower)
registry.function("ISBLANK", INFORMATION, 1, 1, _static(lambda lw, v: v is EMPTY))
registry.function("ISTEXT", INFORMATION, 1, 1, _static(lambda lw, v: isinstance(v, str)))
registry.function("ISNONTEXT", INFORMATION, 1, 1, _static(lambda lw, v: not isinstance(v, str)))
registry.function("ISLOGICAL", INFORMATION, 1, 1, _static(lambda lw, v: lw.is_logical(v)))


def _parity(odd: bool) -> Any:
    def apply(x: Any) -> Any:
        return (np.mod(np.trunc(x), 2.0) != 0.0) == odd

    return apply


for _name, _odd in (("ISEVEN", False), ("ISODD", True)):
    forms.scalar(
        _name,
        INFORMATION,
        lambda x, _o=_odd: _parity(_o)(x).astype(np.float64),
        f"ALEA_HD double xl_{_name.lower()}(double x) {{ XL_ERR1(x); return xl_bool((fmod(trunc(x), 2.0) != 0.0) == {'true' if _odd else 'false'}); }}\n",
        1,
        logical=True,
    )


def _n(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Value:
    def one(v: list[Scalar]) -> Scalar:
        x = v[0]
        if isinstance(x, str) or x is EMPTY:
            return lw.const(0.0)
        if lw.is_logical(x):  # N(TRUE) is the number 1, no longer a logical value
            if isinstance(x, Const):
                return lw.const(x.value)
            return lw.apply("mul", [x, lw.const(1.0)])  # type: ignore[list-item]
        return x

    return lw.broadcast(one, [lw.lower(args[0], sheet)])


def _error_type_np(x: Any) -> Any:
    codes = xlerror.codes(np.where(np.isinf(x), np.nan, x))
    return np.where(codes == 0, NA, codes.astype(np.float64))


registry.unit(
    "error.type",
    "ALEA_HD double xl_error_type(double x) { if (isinf(x)) return 6.0; int c = xl_code(x); return c == 0 ? XL_NA : (double)c; }\n",
)
registry.primitive("error.type", _error_type_np, "xl_error_type", ("error.type",))


def _error_type(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Value:
    def one(v: list[Scalar]) -> Scalar:
        x = v[0]
        if isinstance(x, (Apply, Sample)):
            return lw.apply("error.type", [x])
        if _is_error(x):
            return lw.const(float(xlerror.code(x.value)))  # type: ignore[union-attr]
        return lw.error("#N/A")

    return lw.broadcast(one, [lw.lower(args[0], sheet)])


def _keep_error(x: Any, v: Any) -> Any:
    """``x`` where it is an error, else ``v`` (a comparison whose outcome the types decide)."""
    return propagate(np.broadcast_to(np.asarray(v, dtype=np.float64), np.shape(x)).copy(), x)


registry.unit(
    "keep_error", "ALEA_HD double xl_keep_error(double x, double v) { return isnan(x) ? x : v; }\n"
)
registry.primitive("keep_error", _keep_error, "xl_keep_error", ("keep_error",))

registry.function("N", INFORMATION, 1, 1, _n)
registry.function("NA", INFORMATION, 0, 0, lambda lw, args, sheet: lw.error("#N/A"))
registry.function("ERROR.TYPE", INFORMATION, 1, 1, _error_type)
