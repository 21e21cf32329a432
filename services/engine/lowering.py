"""Formula ASTs → IR nodes: operators, Excel functions, lookups and @RISK distributions.

Values met while lowering are IR nodes, text (``str``), :data:`EMPTY` (a blank cell: 0 in
arithmetic, skipped by SUM), a :class:`Range` (only as a function argument) or a ``Table``.
Text may flow through references and IF/CHOOSE but never into arithmetic: that is a
:class:`FormulaError` naming the cell, as Excel's ``#VALUE!`` would be a broken model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from services.engine import catalog
from services.engine.errors import (
    CircularReference,
    FormulaError,
    ParameterError,
)
from services.engine.formula import (
    Array,
    Binary,
    Bool,
    Call,
    ErrorLiteral,
    Expr,
    Formula,
    Missing,
    Name,
    Number,
    Ref,
    Text,
    Unary,
)
from services.engine.ir import Apply, Const, Node, Sample, Table

if TYPE_CHECKING:
    from services.engine.build import Graph, Key, Range


class _Empty:
    def __repr__(self) -> str:
        return "EMPTY"


EMPTY = _Empty()
Value = Node | Table | str | _Empty
_SEED_LIMIT = 2**64


@dataclass
class _Properties:
    name: str | None = None
    truncate: tuple[float | None, float | None] | None = None
    seed: int | None = None
    corrmat: tuple[Range, str, str, int] | None = None


class Lowerer:
    """Lowers the cells of one :class:`Graph`, recording what :func:`build.build_model` needs
    to assemble the model: inputs with their address order, correlations, output names."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.cell: Key = ("", 0, 0)
        self.occurrence = 0
        self.nodes: dict[tuple[object, ...], Node] = {}
        self.tables: dict[tuple[object, ...], Table] = {}
        self.names_in_use: set[tuple[str | None, str]] = set()
        self.pending: dict[int, tuple[tuple[int, ...], Key]] = {}  # id(Sample) → sort key, cell
        self.corr: list[tuple[Range, str, str, int, Sample, str]] = []
        self.output_names: dict[Key, str] = {}
        self.warnings: list[str] = []

    @property
    def where(self) -> str:
        return self.graph.locate(self.cell)

    def fail(self, reason: str, function: str = "") -> FormulaError:
        return FormulaError(reason, self.where, function)

    # --- cells and constants ---------------------------------------------------------------

    def lower_cell(self, key: Key, expr: Expr) -> Value | Range:
        """The value of a formula cell (its dependencies are already lowered)."""
        saved = self.cell, self.occurrence
        self.cell, self.occurrence = key, 0
        try:
            value = self.lower(expr, key[0])
            if not isinstance(value, (Const, Apply, Sample, Table, str, _Empty)):
                raise self.fail("a formula must give one value, not a range")
            return value
        finally:
            self.cell, self.occurrence = saved

    def cell_value(self, sheet: str, row: int, col: int) -> Value:
        """The value of any cell: formulas lowered (on demand if needed), constants converted."""
        key = (sheet, row, col)
        content = self.graph.content(*key)
        if isinstance(content, Formula):  # resolved already, or reached through a name
            self.graph.resolve(key)
            return self.graph.values[key]  # type: ignore[return-value]
        if content is None:
            return EMPTY
        if isinstance(content, str):
            return content
        return self.const(float(content))

    def const(self, value: float) -> Const:
        key = ("const", repr(float(value)))
        if key not in self.nodes:
            self.nodes[key] = Const(float(value))
        return self.nodes[key]  # type: ignore[return-value]

    def table(self, values: list[float], rows: int, cols: int) -> Table:
        key = (tuple(values), rows, cols)
        if key not in self.tables:
            self.tables[key] = Table(tuple(values), rows, cols)
        return self.tables[key]

    def apply(self, fn: str, args: Sequence[Node | Table]) -> Node:
        """``Apply(fn, args)``, folded when every argument is constant, shared when seen before."""
        constants = [a.value if isinstance(a, Const) else a for a in args if not _random(a)]
        if len(constants) == len(args):
            return self.const(catalog.evaluate(fn, constants))  # type: ignore[arg-type]
        zero = self.const(0.0)
        if fn == "add" and any(a is zero for a in args):  # RiskOutput()+x: x + 0 is x
            return next(a for a in args if a is not zero)  # type: ignore[return-value]
        key = ("apply", fn, *(id(a) for a in args))
        if key not in self.nodes:
            self.nodes[key] = Apply(fn, tuple(args), self.where)
        return self.nodes[key]

    def numeric(self, value: Value | Range, what: str = "an operand") -> Node:
        """A value used as a number: blank is 0, text and ranges are refused."""
        if isinstance(value, (Const, Apply, Sample)):
            return value
        if value is EMPTY:
            return self.const(0.0)
        if isinstance(value, str):
            raise self.fail(f"text {value!r} used as a number in {what}")
        raise self.fail(f"a range where one number is expected in {what}")

    # --- expressions -----------------------------------------------------------------------

    def lower(self, expr: Expr, sheet: str) -> Value | Range:
        if isinstance(expr, Number):
            return self.const(expr.value)
        if isinstance(expr, Text):
            return expr.value
        if isinstance(expr, Bool):
            return self.const(1.0 if expr.value else 0.0)
        if isinstance(expr, ErrorLiteral):
            return self.const(math.nan)
        if isinstance(expr, Missing):
            return EMPTY
        if isinstance(expr, Ref):
            rng = self.graph.range(expr, sheet, self.cell)
            return self.cell_value(rng.sheet, rng.top, rng.left) if expr.is_cell else rng
        if isinstance(expr, Name):
            return self.name(expr, sheet)
        if isinstance(expr, Array):
            return self.array(expr)
        if isinstance(expr, Unary | Binary):
            return self.operators(expr, sheet)
        return self.call(expr, sheet)

    def operators(self, expr: Unary | Binary, sheet: str) -> Value:
        """A chain of operators, down its left spine without recursion.

        ``=A1+A1+...+A1`` parses into thousands of nested left operands (and ``=A1%%%...``
        into nested percents) without nesting parentheses, so the parser's depth limit does
        not bound it; right operands are bounded by that limit.
        """
        spine: list[Unary | Binary] = []
        node: Expr = expr
        while isinstance(node, Unary | Binary):
            spine.append(node)
            node = node.operand if isinstance(node, Unary) else node.left
        value = self.lower(node, sheet)
        for op in reversed(spine):
            if isinstance(op, Unary):
                value = self.apply(op.op, [self.numeric(value)])
            else:
                value = self.binary(op, value, self.lower(op.right, sheet))
        return value  # type: ignore[return-value]

    def name(self, expr: Name, sheet: str) -> Value | Range:
        key = self.graph.name_key(expr, sheet, self.cell)
        if key in self.names_in_use:
            raise CircularReference(f"name {expr.name!r} refers to itself", self.where)
        self.names_in_use.add(key)
        try:
            return self.lower(self.graph.name_ast(key), key[0] or sheet)
        finally:
            self.names_in_use.discard(key)

    def array(self, expr: Array) -> Table:
        values = []
        for item in (x for row in expr.rows for x in row):
            if isinstance(item, Number):
                values.append(item.value)
            elif isinstance(item, Bool):
                values.append(1.0 if item.value else 0.0)
            else:
                raise self.fail("array constants may hold only numbers")
        return self.table(values, len(expr.rows), len(expr.rows[0]))

    def binary(self, expr: Binary, left: Value | Range, right: Value | Range) -> Value:
        texts = isinstance(left, (str, _Empty)) and isinstance(right, (str, _Empty))
        if expr.op == "concat":
            if not texts and not (_constant_text(left) and _constant_text(right)):
                raise self.fail("& joins text; it cannot join uncertain numbers")
            return _text(left) + _text(right)
        if expr.op in ("eq", "ne") and (isinstance(left, str) or isinstance(right, str)):
            if not texts:
                raise self.fail("text compared with a number")
            same = _text(left).upper() == _text(right).upper()
            return self.const(1.0 if same == (expr.op == "eq") else 0.0)
        return self.apply(expr.op, [self.numeric(left), self.numeric(right)])

    # --- function calls --------------------------------------------------------------------

    def call(self, expr: Call, sheet: str) -> Value | Range:
        lname = expr.name.lower()
        if lname == "riskoutput":
            return self.output(expr, sheet)
        dist = catalog.distribution(lname) if lname.startswith("risk") else None
        if dist is not None:
            return self.sample(dist, expr, sheet)
        if lname in catalog.PROPERTIES or lname in catalog.IGNORED_PROPERTIES:
            raise self.fail("allowed only as an argument of a distribution", expr.name)
        fn = catalog.FUNCTIONS.get(lname)
        if fn is None:
            raise self.fail("unsupported function", expr.name)
        catalog.check_arity(expr.name, len(expr.args), fn.min_args, fn.max_args, self.where)
        handler = getattr(self, f"fn_{lname}", None)
        if handler is not None:
            return handler(expr.args, sheet)
        return self.apply(lname, [self.numeric(self.lower(a, sheet), expr.name) for a in expr.args])

    def output(self, expr: Call, sheet: str) -> Const:
        catalog.check_arity("RiskOutput", len(expr.args), 0, 3, self.where)
        name = self.lower(expr.args[0], sheet) if expr.args else EMPTY
        if self.cell not in self.output_names:
            if isinstance(name, str) and name.strip():
                self.output_names[self.cell] = name.strip()
            elif name is EMPTY:
                self.output_names[self.cell] = self.where
            else:
                raise self.fail("the output name must be text", "RiskOutput")
        return self.const(0.0)

    # --- ranges as arguments ---------------------------------------------------------------

    def area(self, expr: Expr, sheet: str) -> Range | None:
        """The range a reference or a name for one designates, else None."""
        if isinstance(expr, Ref):
            return self.graph.range(expr, sheet, self.cell)
        if isinstance(expr, Name):
            key = self.graph.name_key(expr, sheet, self.cell)
            if key in self.names_in_use:
                raise CircularReference(f"name {expr.name!r} refers to itself", self.where)
            self.names_in_use.add(key)
            try:
                return self.area(self.graph.name_ast(key), key[0] or sheet)
            finally:
                self.names_in_use.discard(key)
        return None

    def expand(self, args: tuple[Expr, ...], sheet: str, fn: str) -> list[Node]:
        """Arguments of SUM-like functions: ranges become their numbers, blanks and text skipped."""
        out: list[Node] = []
        for arg in args:
            rng = self.area(arg, sheet)
            if rng is not None:
                for row, col in self.graph.present(rng):
                    if isinstance(self.graph.content(rng.sheet, row, col), bool):
                        continue  # Excel's SUM, AVERAGE... skip logical values in ranges
                    v = self.cell_value(rng.sheet, row, col)
                    if isinstance(v, (Const, Apply, Sample)):
                        out.append(v)
                continue
            value = self.lower(arg, sheet)
            if isinstance(value, Table):
                out.extend(self.const(x) for x in value.values)
            elif value is not EMPTY:
                out.append(self.numeric(value, fn))
        return out

    def table_arg(self, expr: Expr, sheet: str, what: str) -> Table:
        """A constant table argument: an array constant, a constant range or a number."""
        rng = self.area(expr, sheet)
        if rng is None:
            v = self.lower(expr, sheet)
            if isinstance(v, Table):
                return v
            if isinstance(v, Const):
                return self.table([v.value], 1, 1)
            raise self.fail(f"{what} must be a constant range or array")
        values = []
        for row, col in self.graph.every(rng):
            v = self.cell_value(rng.sheet, row, col)
            if v is EMPTY:
                values.append(0.0)
            elif isinstance(v, Const):
                values.append(v.value)
            elif isinstance(v, str):
                raise self.fail(f"{what} holds text {v!r}; only numbers are supported")
            else:
                raise self.fail(f"{what} must be constant, but it depends on uncertain inputs")
        return self.table(values, rng.rows, rng.cols)

    def vector(self, expr: Expr, sheet: str) -> list[Node]:
        """One SUMPRODUCT argument as a flat list (blank and text count as 0, as in Excel)."""
        rng = self.area(expr, sheet)
        if rng is None:
            v = self.lower(expr, sheet)
            if isinstance(v, Table):
                return [self.const(x) for x in v.values]
            return [self.numeric(v, "SUMPRODUCT")]
        out = []
        for row, col in self.graph.every(rng):
            v = self.cell_value(rng.sheet, row, col)
            out.append(v if isinstance(v, (Const, Apply, Sample)) else self.const(0.0))
        return out

    # --- Excel functions with their own rules ----------------------------------------------

    def fn_sum(self, args: tuple[Expr, ...], sheet: str) -> Node:
        xs = self.expand(args, sheet, "SUM")
        return self.apply("sum", list(xs)) if xs else self.const(0.0)

    def fn_average(self, args: tuple[Expr, ...], sheet: str) -> Node:
        xs = self.expand(args, sheet, "AVERAGE")
        return self.apply("average", list(xs)) if xs else self.const(math.nan)

    def fn_min(self, args: tuple[Expr, ...], sheet: str) -> Node:
        xs = self.expand(args, sheet, "MIN")
        return self.apply("min", list(xs)) if xs else self.const(0.0)

    def fn_max(self, args: tuple[Expr, ...], sheet: str) -> Node:
        xs = self.expand(args, sheet, "MAX")
        return self.apply("max", list(xs)) if xs else self.const(0.0)

    def fn_and(self, args: tuple[Expr, ...], sheet: str) -> Node:
        xs = self.expand(args, sheet, "AND")
        return self.apply("and", list(xs)) if xs else self.const(math.nan)

    def fn_or(self, args: tuple[Expr, ...], sheet: str) -> Node:
        xs = self.expand(args, sheet, "OR")
        return self.apply("or", list(xs)) if xs else self.const(math.nan)

    def fn_npv(self, args: tuple[Expr, ...], sheet: str) -> Node:
        rate = self.numeric(self.lower(args[0], sheet), "NPV")
        return self.apply("npv", [rate, *self.expand(args[1:], sheet, "NPV")])

    def fn_sumproduct(self, args: tuple[Expr, ...], sheet: str) -> Node:
        """Lowered to ``sum(mul(a1, b1, ...), ...)``: backends need no SUMPRODUCT of their own."""
        vectors = [self.vector(a, sheet) for a in args]
        if len({len(v) for v in vectors}) != 1:
            raise self.fail("SUMPRODUCT ranges differ in size", "SUMPRODUCT")
        terms = []
        for items in zip(*vectors, strict=True):
            term = items[0]
            for x in items[1:]:
                term = self.apply("mul", [term, x])
            terms.append(term)
        return self.apply("sum", list(terms))

    def fn_if(self, args: tuple[Expr, ...], sheet: str) -> Value:
        cond = self.numeric(self.lower(args[0], sheet), "IF")
        then = self.lower(args[1], sheet)
        other = self.lower(args[2], sheet) if len(args) > 2 else EMPTY
        if isinstance(cond, Const):
            if math.isnan(cond.value):
                return cond
            chosen = then if cond.value != 0 else other
            return self.const(0.0) if chosen is EMPTY else self._single(chosen)
        return self.apply("if", [cond, self.numeric(then, "IF"), self.numeric(other, "IF")])

    def fn_iferror(self, args: tuple[Expr, ...], sheet: str) -> Node:
        value = self.numeric(self.lower(args[0], sheet), "IFERROR")
        fallback = self.numeric(self.lower(args[1], sheet), "IFERROR")
        if isinstance(value, Const):
            return fallback if math.isnan(value.value) else value
        return self.apply("iferror", [value, fallback])

    def fn_choose(self, args: tuple[Expr, ...], sheet: str) -> Value:
        index = self.numeric(self.lower(args[0], sheet), "CHOOSE")
        options = [self.lower(a, sheet) for a in args[1:]]
        if isinstance(index, Const):
            i = index.value
            if math.isnan(i) or not 1 <= int(i) <= len(options):
                return self.const(math.nan)
            return self._single(options[int(i) - 1])
        return self.apply("choose", [index, *(self.numeric(o, "CHOOSE") for o in options)])

    def fn_index(self, args: tuple[Expr, ...], sheet: str) -> Value:
        """``index(Table, row, col)``; a constant position picks the cell, even an uncertain one."""
        rng = self.area(args[0], sheet)
        shape = (rng.rows, rng.cols) if rng else None
        if shape is None:
            t = self.table_arg(args[0], sheet, "the INDEX range")
            shape = (t.rows, t.cols)
        row = self.numeric(self.lower(args[1], sheet), "INDEX")
        col = self.numeric(self.lower(args[2], sheet), "INDEX") if len(args) > 2 else None
        if col is None or (isinstance(col, Const) and col.value == 0 and shape[1] == 1):
            if shape[0] == 1:
                row, col = self.const(1.0), row
            elif shape[1] == 1:
                col = self.const(1.0)
            else:
                raise self.fail("INDEX of a 2-D range needs a row and a column", "INDEX")
        if isinstance(row, Const) and isinstance(col, Const) and rng is not None:
            r, c = row.value, col.value
            if (
                math.isnan(r)
                or math.isnan(c)
                or not (1 <= r < shape[0] + 1 and 1 <= c < shape[1] + 1)
            ):
                return self.const(math.nan)
            return self.cell_value(rng.sheet, rng.top + int(r) - 1, rng.left + int(c) - 1)
        return self.apply("index", [self.table_arg(args[0], sheet, "the INDEX range"), row, col])

    def fn_match(self, args: tuple[Expr, ...], sheet: str) -> Node:
        x = self.numeric(self.lower(args[0], sheet), "MATCH")
        t = self.table_arg(args[1], sheet, "the MATCH range")
        if t.rows != 1 and t.cols != 1:
            raise self.fail("MATCH needs a single row or column", "MATCH")
        kind = self.numeric(self.lower(args[2], sheet), "MATCH") if len(args) > 2 else None
        return self.apply("match", [x, t, kind or self.const(1.0)])

    def fn_vlookup(self, args: tuple[Expr, ...], sheet: str) -> Node:
        x = self.numeric(self.lower(args[0], sheet), "VLOOKUP")
        t = self.table_arg(args[1], sheet, "the VLOOKUP table")
        col = self.numeric(self.lower(args[2], sheet), "VLOOKUP")
        approx = self.lower(args[3], sheet) if len(args) > 3 else self.const(1.0)
        return self.apply("vlookup", [x, t, col, self.numeric(approx, "VLOOKUP")])

    def fn_log(self, args: tuple[Expr, ...], sheet: str) -> Node:
        xs = [self.numeric(self.lower(a, sheet), "LOG") for a in args]
        return self.apply("log", [xs[0], xs[1] if len(xs) > 1 else self.const(10.0)])

    def _finance(self, fn: str, args: tuple[Expr, ...], sheet: str) -> Node:
        """PV, FV, PMT always get all five arguments (omitted ones are 0)."""
        xs = [self.numeric(self.lower(a, sheet), fn.upper()) for a in args]
        return self.apply(fn, xs + [self.const(0.0)] * (5 - len(xs)))

    def fn_pv(self, args: tuple[Expr, ...], sheet: str) -> Node:
        return self._finance("pv", args, sheet)

    def fn_fv(self, args: tuple[Expr, ...], sheet: str) -> Node:
        return self._finance("fv", args, sheet)

    def fn_pmt(self, args: tuple[Expr, ...], sheet: str) -> Node:
        return self._finance("pmt", args, sheet)

    def _single(self, value: Value | Range) -> Value:
        if isinstance(value, (Const, Apply, Sample, str)) or value is EMPTY:
            return value
        raise self.fail("a range where one value is expected")

    # --- @RISK distributions ---------------------------------------------------------------

    def sample(self, dist: catalog.Distribution, expr: Call, sheet: str) -> Sample:
        """One uncertain input: parameters (validated when constant) and property functions."""
        fn = dist.risk_name
        n = len(dist.params)
        if len(expr.args) < n:
            catalog.check_arity(fn, len(expr.args), n, n, self.where)
        params: list[Node | Table] = []
        for i, arg in enumerate(expr.args[:n]):
            if i in dist.tables:
                params.append(self.table_arg(arg, sheet, f"{fn} {dist.params[i]}"))
            else:
                params.append(self.numeric(self.lower(arg, sheet), fn))
        catalog.validate(dist, [_constant(p) for p in params], self.where)
        self.occurrence += 1
        props = self.properties(fn, expr.args[n:], sheet)
        catalog.check_domain(dist, params, props.truncate, self.where)
        name = props.name or self.label()
        node = Sample(
            stream=len(self.pending),
            distribution=dist.name,
            params=tuple(params),
            name=str(name),
            address=self.where,
            truncate=props.truncate,
            seed=props.seed,
        )
        self.pending[id(node)] = ((*self.graph.order(self.cell), self.occurrence), self.cell)
        self.nodes[("sample", id(node))] = node  # keeps the object (and its id) alive
        if props.corrmat is not None:
            self.corr.append((*props.corrmat, node, self.where))
        return node

    def properties(self, fn: str, args: tuple[Expr, ...], sheet: str) -> _Properties:
        """RiskName, RiskTruncate, RiskCorrmat, RiskSeed after a distribution's parameters."""
        props = _Properties()
        for arg in args:
            pname = arg.name.lower() if isinstance(arg, Call) else ""
            if pname in catalog.IGNORED_PROPERTIES:
                self.warnings.append(f"{self.where}: {arg.name} ignored")  # type: ignore[union-attr]
                continue
            spec = catalog.PROPERTIES.get(pname)
            if spec is None or not isinstance(arg, Call):
                raise self.fail("only property functions may follow the parameters", fn)
            catalog.check_arity(arg.name, len(arg.args), spec.min_args, spec.max_args, self.where)
            values = [self.lower(a, sheet) for a in arg.args] if pname != "riskcorrmat" else []
            if pname == "riskname":
                if not isinstance(values[0], str):
                    raise self.fail("RiskName needs text", fn)
                props.name = values[0]
            elif pname == "risktruncate":
                props.truncate = self.truncation(fn, values)
            elif pname == "riskseed":
                props.seed = self.seed(fn, values[0])
            else:
                props.corrmat = self.corrmat(fn, arg.args, sheet)
        return props

    def truncation(self, fn: str, values: list[Value | Range]) -> tuple[float | None, float | None]:
        bounds: list[float | None] = []
        for v in [*values, EMPTY, EMPTY][:2]:
            if v is EMPTY:
                bounds.append(None)
            elif isinstance(v, Const) and not math.isnan(v.value):
                bounds.append(v.value)
            else:
                raise self.fail("RiskTruncate bounds must be constant numbers", fn)
        lo, hi = bounds
        if lo is not None and hi is not None and not lo < hi:
            raise ParameterError(f"truncation min ({lo:g}) must be < max ({hi:g})", self.where, fn)
        return lo, hi

    def seed(self, fn: str, value: Value | Range) -> int:
        """A constant whole number, or digits as text (exact beyond 2^53, as specs need)."""
        if isinstance(value, str) and value.strip().isdigit():
            seed = int(value)
        elif isinstance(value, Const) and math.isfinite(value.value):
            seed = int(value.value) if value.value == int(value.value) else -1
        else:
            seed = -1
        if not 0 <= seed < _SEED_LIMIT:
            raise ParameterError("RiskSeed needs a whole number in [0, 2^64)", self.where, fn)
        return seed

    def corrmat(self, fn: str, args: tuple[Expr, ...], sheet: str) -> tuple[Range, str, str, int]:
        """(matrix range, instance, label, position): one matrix is one range and instance."""
        rng = self.area(args[0], sheet)
        if rng is None:
            raise self.fail("RiskCorrmat needs the matrix as a range or a defined name", fn)
        position = self.lower(args[1], sheet)
        if not isinstance(position, Const) or position.value != int(position.value):
            raise self.fail("RiskCorrmat position must be a whole number", fn)
        label = args[0].name if isinstance(args[0], Name) else self.graph.range_label(rng)
        instance = ""
        if len(args) > 2:
            value = self.lower(args[2], sheet)
            instance = value if isinstance(value, str) else f"{_constant(value)}"
            label += f" ({instance})"
        return rng, instance, label, int(position.value)

    def label(self) -> str:
        """Default input name: the nearest text to the left on the same row, else the cell."""
        sheet, row, col = self.cell
        for c in range(col - 1, 0, -1):
            content = self.graph.content(sheet, row, c)
            if isinstance(content, str) and content.strip():
                return content.strip()
        return self.where


def _random(value: object) -> bool:
    return isinstance(value, (Apply, Sample))


def _constant(value: object) -> float | tuple[float, ...] | None:
    if isinstance(value, Const):
        return value.value
    if isinstance(value, Table):
        return value.values
    return None


def _constant_text(value: object) -> bool:
    return isinstance(value, (str, _Empty, Const))


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Const):
        return f"{value.value:.15g}"
    return ""
