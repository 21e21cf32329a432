# ruff: noqa: E501  (C source)
"""Conditional aggregates: COUNTIF(S), SUMIF(S), AVERAGEIF(S), MAXIFS, MINIFS.

A criterion (``">5"``, ``"<>0"``, ``"a*"``, ``3``, ``TRUE``, an uncertain cell) is parsed at
compile time into an operator and an operand, and each cell of the tested range into a
*condition*: known at compile time for text, blanks, logical values and constant numbers,
a ``crit_<op>`` node for per-trial numbers (an error in a tested cell matches only ``<>``).
Text compares without case, ``*`` and ``?`` are wildcards for ``=`` and ``<>`` (``~``
escapes them); numeric criteria also match text that reads as that number; ``""`` matches
blanks and empty text; ``"<>"`` matches anything not blank; ``"<>x"`` matches everything
else, blanks, text and errors included.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from services.engine import xlerror
from services.engine.excel import forms, registry
from services.engine.excel import text as xltext
from services.engine.excel.arrays import over_values
from services.engine.excel.lookup import _wildcard
from services.engine.formula import Binary
from services.engine.ir import Apply, Const, Node, Sample
from services.engine.values import EMPTY, Grid, Scalar, Value

if TYPE_CHECKING:
    from services.engine.formula import Expr
    from services.engine.lowering import Lowerer

CATEGORY = "Statistical"
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}
_PREFIXES = (("<>", "ne"), ("<=", "le"), (">=", "ge"), ("=", "eq"), ("<", "lt"), (">", "gt"))


def _crit(op: str) -> Callable[..., Any]:
    cmp = {
        "eq": np.equal,
        "ne": np.not_equal,
        "lt": np.less,
        "le": np.less_equal,
        "gt": np.greater,
        "ge": np.greater_equal,
    }[op]

    def apply(x: Any, c: Any) -> Any:
        bad = np.isnan(x) | np.isnan(c)
        return np.where(bad, 1.0 if op == "ne" else 0.0, cmp(x, c).astype(np.float64))

    return apply


_C_OPS = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
for _op, _c in _C_OPS.items():
    registry.unit(
        f"crit_{_op}",
        f"ALEA_HD double xl_crit_{_op}(double x, double c) {{ return (isnan(x) || isnan(c)) ? {1.0 if _op == 'ne' else 0.0} : xl_bool(x {_c} c); }}\n",
    )
    registry.primitive(f"crit_{_op}", _crit(_op), f"xl_crit_{_op}", (f"crit_{_op}",))


@dataclass(frozen=True)
class Criterion:
    """A parsed criterion: ``op`` and an operand that is a number, text, logical, an error
    code, a per-trial node (``logical`` True: a logical value per trial), or None for the
    empty operand (``""``, ``"="``, ``"<>"``)."""

    op: str
    number: float | None = None
    text: str | None = None
    logical: bool | None = None
    error: int = 0
    node: Node | None = None


def lower_criterion(lw: Lowerer, expr: Expr, sheet: str) -> Any:
    """A criterion argument lowered: its value, or the criterion ``">"&x`` states for an
    uncertain number x (an operator joined to a number per trial; the number is compared as
    it is, where Excel would first write it with 15 digits)."""
    if isinstance(expr, Binary) and expr.op == "concat":
        left = lw.lower(expr.left, sheet)
        ops = dict(_PREFIXES)
        if isinstance(left, str) and left in ops:
            right = lw.lower(expr.right, sheet)
            if isinstance(right, (Apply, Sample)):
                return Criterion(ops[left], node=right, logical=lw.is_logical(right) or None)
    return lw.lower(expr, sheet)


def parse(lw: Lowerer, value: Scalar | Criterion) -> Criterion:
    """The criterion a value states."""
    if isinstance(value, Criterion):
        return value
    if isinstance(value, (Apply, Sample)):
        return Criterion("eq", node=value)
    if value is EMPTY:
        return Criterion("eq", number=0.0)
    if isinstance(value, Const):
        if math.isnan(value.value):
            return Criterion("eq", error=xlerror.code(value.value))
        if lw.is_logical(value):
            return Criterion("eq", logical=value.value == 1.0)
        return Criterion("eq", number=value.value)
    text, op = str(value), "eq"
    for prefix, name in _PREFIXES:
        if text.startswith(prefix):
            op, text = name, text[len(prefix) :]
            break
    if text == "":
        return Criterion(op)
    if text.upper() in xlerror.CODES:
        return Criterion(op, error=xlerror.CODES[text.upper()])
    if text.upper() in ("TRUE", "FALSE"):
        return Criterion(op, logical=text.upper() == "TRUE")
    number = xltext.to_number(text)
    if number is not None:
        return Criterion(op, number=number)
    return Criterion(op, text=text)


def condition(lw: Lowerer, crit: Criterion, cell: Scalar) -> Node:
    """Whether ``cell`` meets ``crit``: TRUE/FALSE, or a per-trial node."""
    negate = crit.op == "ne"

    def result(flag: bool) -> Node:
        return lw.boolean(flag)

    if crit.node is not None and crit.logical:  # a logical value per trial
        if lw.is_logical(cell) and isinstance(cell, (Const, Apply, Sample)):
            return lw.apply(f"crit_{crit.op}", [cell, crit.node], logical=True)
        return result(negate)
    if crit.node is not None:
        if cell is EMPTY or lw.is_logical(cell):
            return result(negate)
        if isinstance(cell, str):
            n = xltext.to_number(cell)
            if n is None:
                return result(negate)
            cell = lw.const(n)
        return lw.apply(f"crit_{crit.op}", [cell, crit.node], logical=True)  # type: ignore[list-item]
    empty_operand = (
        crit.number is None and crit.text is None and crit.logical is None and not crit.error
    )
    if empty_operand:  # "", "=": blank or empty text; "<>": anything else
        blank = cell is EMPTY or cell == ""
        return result(blank != negate) if crit.op in ("eq", "ne") else lw.FALSE
    if cell is EMPTY:
        return result(negate)
    if crit.error:
        is_err = (
            isinstance(cell, Const)
            and math.isnan(cell.value)
            and xlerror.code(cell.value) == crit.error
        )
        if isinstance(cell, (Apply, Sample)):
            same = lw.apply("eq", [lw.apply("error.type", [cell]), lw.const(float(crit.error))])
            found = lw.apply("iferror", [same, lw.FALSE], logical=True)
            return lw.apply("not", [found]) if negate else found
        return result(is_err != negate)
    if crit.logical is not None:
        if lw.is_logical(cell) and isinstance(cell, Const):
            return result(_OPS[crit.op](cell.value == 1.0, crit.logical))
        return result(negate)
    if crit.number is not None:
        if isinstance(cell, str):
            n = xltext.to_number(cell)
            return result(_OPS[crit.op](n, crit.number) if n is not None else negate)
        if lw.is_logical(cell):
            return result(negate)
        if isinstance(cell, Const):
            if math.isnan(cell.value):
                return result(negate)
            return result(_OPS[crit.op](cell.value, crit.number))
        return lw.apply(f"crit_{crit.op}", [cell, lw.const(crit.number)], logical=True)  # type: ignore[list-item]
    assert crit.text is not None
    if not isinstance(cell, str):
        return result(negate)
    if crit.op in ("eq", "ne"):
        hit = _wildcard(crit.text).fullmatch(cell) is not None
        return result(hit != negate)
    return result(_OPS[crit.op](cell.casefold(), crit.text.casefold()))


def _cells(lw: Lowerer, expr: Expr, sheet: str) -> tuple[Grid, tuple[str, int, int] | None]:
    """The tested or aggregated cells and the range's origin (for resizing), or an array."""
    rng = lw.area(expr, sheet)
    if rng is not None:
        return lw.grid(rng), (rng.sheet, rng.top, rng.left)
    value = lw.lower(expr, sheet)
    return lw.grid(value), None


def _resized(lw: Lowerer, expr: Expr, sheet: str, rows: int, cols: int) -> Grid:
    """SUMIF's sum range: Excel takes its top-left cell and the tested range's shape."""
    from services.engine.build import Range

    rng = lw.area(expr, sheet)
    if rng is None:
        return lw.grid(lw.lower(expr, sheet))
    return lw.grid(Range(rng.sheet, rng.top, rng.left, rng.top + rows - 1, rng.left + cols - 1))


def _conditions(
    lw: Lowerer, pairs: list[tuple[Expr, Expr]], sheet: str, crit_values: list[Any]
) -> tuple[list[Node], tuple[int, int]] | None:
    """One condition per cell: the AND of every (range, criterion) pair; None when the
    ranges differ in shape."""
    grids = [_cells(lw, rng, sheet)[0] for rng, _ in pairs]
    shape = (grids[0].rows, grids[0].cols)
    if any((g.rows, g.cols) != shape for g in grids):
        return None
    out: list[Node] = []
    for i in range(len(grids[0].items)):
        acc: Node | None = None
        for g, value in zip(grids, crit_values, strict=True):
            c = condition(lw, parse(lw, value), g.items[i])
            acc = c if acc is None else _and(lw, acc, c)
        out.append(acc)  # type: ignore[arg-type]
    return out, shape


def _and(lw: Lowerer, a: Node, b: Node) -> Node:
    if a is lw.FALSE or b is lw.FALSE:
        return lw.FALSE
    if a is lw.TRUE:
        return b
    if b is lw.TRUE:
        return a
    return lw.apply("mul", [a, b])


def _aggregate(lw: Lowerer, kind: str, conds: list[Node], values: list[Scalar]) -> Node:
    """COUNT, SUM, AVERAGE, MAX or MIN of the numbers whose condition holds."""
    zero = lw.const(0.0)
    if kind == "count":
        live = [c for c in conds if c is not lw.FALSE]
        return lw.apply("sum", live) if live else zero
    picked = [
        (c, lw.numeric(v))
        for c, v in zip(conds, values, strict=True)
        if c is not lw.FALSE and forms.is_number(lw, v)
    ]
    if kind in ("sum", "average"):
        terms = [v if c is lw.TRUE else lw.apply("if", [c, v, zero]) for c, v in picked]
        total = lw.apply("sum", terms) if terms else zero
        if kind == "sum":
            return total
        count = lw.apply("sum", [c for c, _ in picked]) if picked else zero
        return lw.apply("div", [total, count])
    if not picked:
        return zero
    flags = [c for c, _ in picked]
    return lw.apply(f"{kind}ifs", [*flags, *(v for _, v in picked)])


def _extreme_ifs(largest: bool) -> Callable[..., Any]:
    def compute(rows: np.ndarray) -> Any:
        n = rows.shape[0] // 2
        flags, values = rows[:n], rows[n:]
        on = flags != 0
        fill = -np.inf if largest else np.inf
        masked = np.where(on, values, fill)
        picked = masked.max(axis=0) if largest else masked.min(axis=0)
        return np.where(on.any(axis=0), picked, 0.0)

    return compute


def _extreme_ifs_prim(largest: bool) -> Callable[..., Any]:
    """Only the values whose condition holds may carry their error into the result."""
    compute = over_values(0, _extreme_ifs(largest))

    def apply(*args: Any) -> Any:
        n = len(args) // 2
        flags, values = args[:n], args[n:]
        quiet = [np.where(np.not_equal(f, 0), v, 0.0) for f, v in zip(flags, values, strict=True)]
        return compute(*flags, *quiet)

    return apply


for _kind, _largest in (("max", True), ("min", False)):
    registry.unit(
        f"{_kind}ifs",
        f"""ALEA_HD double xl_{_kind}ifs(double* v, int n2) {{
  int n = n2 / 2; bool any = false; double best = 0.0;
  for (int i = 0; i < n; ++i) {{
    if (v[i] == 0.0) continue;
    double x = v[n + i]; if (isnan(x)) return x;
    if (!any || x {">" if _largest else "<"} best) best = x;
    any = true;
  }}
  return best;
}}
""",
    )
    registry.primitive(
        f"{_kind}ifs", _extreme_ifs_prim(_largest), f"xl_{_kind}ifs", (f"{_kind}ifs",), fixed=0
    )


def _if_single(kind: str) -> Any:
    """COUNTIF(range, criterion), SUMIF/AVERAGEIF(range, criterion[, sum_range])."""

    def lower(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Value:
        tested, _ = _cells(lw, args[0], sheet)
        criterion = lower_criterion(lw, args[1], sheet)

        def one(v: list[Any]) -> Node:
            conds = [condition(lw, parse(lw, v[0]), cell) for cell in tested.items]
            if kind == "count":
                return _aggregate(lw, kind, conds, [])
            source = (
                _resized(lw, args[2], sheet, tested.rows, tested.cols) if len(args) > 2 else tested
            )
            if len(source.items) != len(conds):
                return lw.error("#VALUE!")
            return _aggregate(lw, kind, conds, list(source.items))

        if isinstance(criterion, Criterion):
            return one([criterion])
        return lw.broadcast(one, [criterion])

    return lower


def _if_many(kind: str) -> Any:
    """COUNTIFS(r1, c1, ...), SUMIFS/AVERAGEIFS/MAXIFS/MINIFS(values, r1, c1, ...)."""

    def lower(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Node:
        rest = args if kind == "count" else args[1:]
        if len(rest) % 2 or not rest:
            raise lw.fail("takes range and criterion pairs", kind.upper() + "IFS")
        pairs = [(rest[i], rest[i + 1]) for i in range(0, len(rest), 2)]
        crit_values: list[Any] = []
        for _, c in pairs:
            value = lower_criterion(lw, c, sheet)
            if isinstance(value, Criterion):
                crit_values.append(value)
                continue
            if lw.is_array(value):
                raise lw.fail("criteria must be single values", kind.upper() + "IFS")
            crit_values.append(
                lw.numeric(value, "a criterion") if isinstance(value, Grid) else value
            )
        found = _conditions(lw, pairs, sheet, crit_values)
        if found is None:
            return lw.error("#VALUE!")
        conds, shape = found
        values: list[Scalar] = []
        if kind != "count":
            source, _ = _cells(lw, args[0], sheet)
            if (source.rows, source.cols) != shape:
                return lw.error("#VALUE!")
            values = list(source.items)
        return _aggregate(lw, kind, conds, values)

    return lower


for _name, _lo, _hi, _lower in (
    ("COUNTIF", 2, 2, _if_single("count")),
    ("SUMIF", 2, 3, _if_single("sum")),
    ("AVERAGEIF", 2, 3, _if_single("average")),
    ("COUNTIFS", 2, registry.MAX_ARGS, _if_many("count")),
    ("SUMIFS", 3, registry.MAX_ARGS, _if_many("sum")),
    ("AVERAGEIFS", 3, registry.MAX_ARGS, _if_many("average")),
    ("MAXIFS", 3, registry.MAX_ARGS, _if_many("max")),
    ("MINIFS", 3, registry.MAX_ARGS, _if_many("min")),
):
    registry.function(_name, CATEGORY, _lo, _hi, _lower)
