"""Formula ASTs → IR nodes, with Excel's rules for values, operators and function calls.

Values met while lowering are IR nodes (numbers, per trial or constant; an Excel error is a
NaN carrying its code, see :mod:`.xlerror`), text (``str``), :data:`EMPTY` (a blank cell),
a ``Table`` (a constant numeric array), a :class:`Grid` (an array of values: a range in an
array context, an array constant holding text, ``TRANSPOSE``...) or a ``Range`` (a reference,
only as a function argument). ``TRUE`` and ``FALSE`` are two distinguished ``Const`` objects
and comparisons are *logical* nodes, so ``SUM`` can skip logical values in ranges and
``ISLOGICAL`` can answer, as in Excel.

Coercion follows Excel: in arithmetic a blank is 0, a logical 1 or 0, text that reads as a
number (``"3"``, ``"5%"``, ``"1/31/2024"``) that number and any other text ``#VALUE!`` (with a
model warning). Comparisons order number < text < logical; text compares without case.
Text computed per trial cannot exist: ``&`` of an uncertain number is refused naming the cell.
Excel functions are lowered by their entry in :mod:`.excel`'s registry; @RISK distributions
by :mod:`.risk`.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from services.engine import catalog, excel, modelling, xlerror
from services.engine.errors import CircularReference, FormulaError
from services.engine.excel import text as xltext
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
from services.engine.ir import Apply, Const, Convergence, Node, Sample, Table
from services.engine.risk import Risk, is_random
from services.engine.values import EMPTY, Grid, Scalar, Value, _Empty

if TYPE_CHECKING:
    from services.engine.build import Graph, Key, Range


#: Operators and primitives whose result is TRUE or FALSE.
LOGICAL = frozenset({"eq", "ne", "lt", "le", "gt", "ge", "and", "or", "not", "xor"})
_COMPARE = {"eq", "ne", "lt", "le", "gt", "ge"}
_MAX_INDIRECTION = 64  # OFFSET/INDIRECT resolved cells nested this deep are refused
MAX_NESTING = 150
"""Most levels lowering nests, a formula's own (at most :data:`formula.MAX_DEPTH`) plus
those of the defined names and OFFSET/INDIRECT cells it reads through: lowering recurses
once per level, a few Python frames each, so this keeps it well inside the interpreter's
stack whatever the chain of names (``=n1`` with ``n1`` ``=SUM(SUM(...n2...))``...)."""


#: What Excel writes for operators of its own that are not modelled: the file holds a function
#: the user never typed, so the refusal says which operator it is.
_UNSUPPORTED = {
    "SINGLE": "the @ operator (implicit intersection, stored as _xlfn.SINGLE) is not supported: "
    "refer to the one cell or value meant",
    "ANCHORARRAY": "a spilled range reference (A1#, stored as _xlfn.ANCHORARRAY) is not "
    "supported: spilled arrays are not modelled, refer to the range itself",
}


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
        self.in_progress: list[Key] = []
        self.nesting = 0  # lower() calls in progress
        self.output_names: dict[Key, str] = {}
        self.output_convergence: dict[Key, Convergence] = {}
        self.warnings: list[str] = []
        self.logicals: set[int] = set()
        self.TRUE = Const(1.0)
        self.FALSE = Const(0.0)
        self.risk = Risk(self)

    @property
    def where(self) -> str:
        return self.graph.locate(self.cell)

    def fail(self, reason: str, function: str = "") -> FormulaError:
        return FormulaError(reason, self.where, function)

    def warn(self, message: str) -> None:
        """A model warning about the current cell (each message once)."""
        text = f"{self.where}: {message}"
        if text not in self.warnings:
            self.warnings.append(text)

    # --- cells and constants ---------------------------------------------------------------

    def lower_cell(self, key: Key, expr: Expr) -> Value:
        """The value of a formula cell (its dependencies are already lowered)."""
        saved = self.cell, self.occurrence
        self.cell, self.occurrence = key, 0
        self.in_progress.append(key)
        try:
            return self.one_value(self.lower(expr, key[0]))
        finally:
            self.in_progress.pop()
            self.cell, self.occurrence = saved

    def one_value(self, value: Value | Range) -> Scalar:
        """What the cell itself holds of a formula's value: an array's (or a range's) first
        item, where Excel's dynamic arrays would spill the rest into the cells below and to
        the right (a warning says so; spilled cells are not modelled)."""
        if isinstance(value, (Const, Apply, Sample, str, _Empty)):
            return value
        grid = self.grid(value)
        if grid.rows * grid.cols > 1:
            self.warn("an array result in one cell: its first value is used (no spill)")
        return grid.items[0]

    def cell_value(self, sheet: str, row: int, col: int) -> Value:
        """The value of any cell: formulas lowered (on demand if needed), constants converted."""
        key = (sheet, row, col)
        content = self.graph.content(*key)
        if isinstance(content, Formula):
            if key not in self.graph.values:  # reached through OFFSET, INDIRECT or a name
                if key in self.in_progress:
                    path = " -> ".join(self.graph.locate(k) for k in (*self.in_progress, key))
                    raise CircularReference(f"circular reference {path}", self.where)
                if len(self.in_progress) > _MAX_INDIRECTION:
                    raise self.fail("references resolved through OFFSET/INDIRECT nest too deep")
                self.graph.resolve(key)
            return self.graph.values[key]  # type: ignore[return-value]
        if content is None:
            return EMPTY
        if isinstance(content, bool):
            return self.boolean(content)
        if isinstance(content, str):
            return content
        return self.const(float(content))

    def const(self, value: float) -> Const:
        bits = struct.pack("<d", float(value))  # errors differ by their NaN payload
        key = ("const", bits)
        if key not in self.nodes:
            self.nodes[key] = Const(float(value))
        return self.nodes[key]  # type: ignore[return-value]

    def error(self, code: str) -> Const:
        """The constant Excel error ``code`` (``"#N/A"``...)."""
        return self.const(xlerror.error(xlerror.CODES[code]))

    def boolean(self, flag: bool) -> Const:
        return self.TRUE if flag else self.FALSE

    def is_logical(self, value: object) -> bool:
        """Whether ``value`` is TRUE, FALSE or a node that is always one of them."""
        return value is self.TRUE or value is self.FALSE or id(value) in self.logicals

    def table(self, values: Sequence[float], rows: int, cols: int) -> Table:
        key = (tuple(struct.pack("<d", v) for v in values), rows, cols)
        if key not in self.tables:
            self.tables[key] = Table(tuple(float(v) for v in values), rows, cols)
        return self.tables[key]

    def apply(self, fn: str, args: Sequence[Node | Table], logical: bool = False) -> Node:
        """``Apply(fn, args)``, folded when every argument is constant, shared when seen before.

        ``logical``: the result is TRUE or FALSE (operators in :data:`LOGICAL` always are).
        """
        logical = logical or fn in LOGICAL
        constants = [a.value if isinstance(a, Const) else a for a in args if not is_random(a)]
        if len(constants) == len(args):
            value = catalog.evaluate(fn, constants)  # type: ignore[arg-type]
            if logical and value in (0.0, 1.0):
                return self.boolean(value == 1.0)
            return self.const(value)
        zero = self.const(0.0)
        if fn == "add" and any(a is zero for a in args):  # RiskOutput()+x: x + 0 is x
            return next(a for a in args if a is not zero)  # type: ignore[return-value]
        key = ("apply", fn, *(id(a) for a in args))
        if key not in self.nodes:
            self.nodes[key] = Apply(fn, tuple(args), self.where)
            if logical:
                self.logicals.add(id(self.nodes[key]))
        return self.nodes[key]

    def numeric(self, value: Value | Range, what: str = "an operand") -> Node:
        """A value used as one number, as Excel's arithmetic coerces it."""
        if isinstance(value, (Const, Apply, Sample)):
            return value
        if value is EMPTY:
            return self.const(0.0)
        if isinstance(value, str):
            number = xltext.to_number(value)
            if number is None:
                self.warn(f"text {_shown(value)} used as a number in {what} is #VALUE!")
                return self.error("#VALUE!")
            return self.const(number)
        if isinstance(value, Table) and len(value.values) == 1:
            return self.const(value.values[0])
        if isinstance(value, Grid) and len(value.items) == 1:
            return self.numeric(value.items[0], what)
        raise self.fail(f"a range where one number is expected in {what}")

    def scalar(self, expr: Expr, sheet: str, what: str) -> Node:
        """An argument that must be one number."""
        return self.numeric(self.lower(expr, sheet), what)

    # --- expressions -----------------------------------------------------------------------

    def lower(self, expr: Expr, sheet: str) -> Value | Range:
        if self.nesting >= MAX_NESTING:
            raise self.fail(
                f"formula nests deeper than {MAX_NESTING} levels, counting the defined names "
                "and the cells reached through OFFSET or INDIRECT that it reads"
            )
        self.nesting += 1
        try:  # one frame per level, not two: the interpreter's stack is what is bounded
            if isinstance(expr, Number):
                return self.const(expr.value)
            if isinstance(expr, Text):
                return expr.value
            if isinstance(expr, Bool):
                return self.boolean(expr.value)
            if isinstance(expr, ErrorLiteral):
                code = expr.code if expr.code in xlerror.CODES else "#VALUE!"
                return self.error(code)
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
        finally:
            self.nesting -= 1

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
                value = self.broadcast(self._unary(op.op), [value])
            else:
                right = self.lower(op.right, sheet)
                value = self.broadcast(self._binary(op.op), [value, right])
        return value  # type: ignore[return-value]

    def _unary(self, fn: str) -> Callable[[list[Scalar]], Value]:
        return lambda v: self.apply(fn, [self.numeric(v[0])])

    def _binary(self, fn: str) -> Callable[[list[Scalar]], Value]:
        return lambda v: self.operate(fn, v[0], v[1])

    def name(self, expr: Name, sheet: str) -> Value | Range:
        key = self.graph.name_key(expr, sheet, self.cell)
        if key in self.names_in_use:
            raise CircularReference(f"name {expr.name!r} refers to itself", self.where)
        self.names_in_use.add(key)
        try:
            return self.lower(self.graph.name_ast(key), key[0] or sheet)
        finally:
            self.names_in_use.discard(key)

    def array(self, expr: Array) -> Table | Grid:
        """``{1,2;3,4}``: a Table when it holds numbers (and errors) only, else a Grid."""
        items: list[Scalar] = []
        for item in (x for row in expr.rows for x in row):
            value = self.lower(item, "")
            assert isinstance(value, (Const, str)), value
            items.append(value)
        rows, cols = len(expr.rows), len(expr.rows[0])
        if all(isinstance(v, Const) and not self.is_logical(v) for v in items):
            return self.table([v.value for v in items], rows, cols)  # type: ignore[union-attr]
        return Grid(rows, cols, tuple(items))

    # --- operators ---------------------------------------------------------------------------

    def is_array(self, value: object) -> bool:
        """A multi-cell range, Grid or Table: element-wise operations broadcast over it."""
        if isinstance(value, Grid):
            return len(value.items) > 1
        if isinstance(value, Table):
            return len(value.values) > 1
        return hasattr(value, "rows") and value.rows * value.cols > 1  # type: ignore[attr-defined]

    def grid(self, value: Value | Range) -> Grid:
        """Any value as a Grid: a range's cells (blanks included), a Table's numbers."""
        if isinstance(value, Grid):
            return value
        if isinstance(value, Table):
            return Grid(value.rows, value.cols, tuple(self.const(v) for v in value.values))
        if isinstance(value, (Const, Apply, Sample, str, _Empty)):
            return Grid(1, 1, (value,))
        rng = value
        cells = tuple(self.cell_value(rng.sheet, r, c) for r, c in self.graph.every(rng))
        assert all(isinstance(c, (Const, Apply, Sample, str, _Empty)) for c in cells)
        return Grid(rng.rows, rng.cols, cells)  # type: ignore[arg-type]

    def broadcast(
        self, fn: Callable[[list[Scalar]], Value], values: Sequence[Value | Range]
    ) -> Value:
        """``fn`` of scalars, applied element by element when some values are arrays.

        Arrays of different shapes extend as in Excel: a single row or column repeats, and
        positions beyond a larger array's extent are #N/A.
        """
        if not any(self.is_array(v) for v in values):
            return fn([self.grid(v).items[0] if not _scalar(v) else v for v in values])  # type: ignore[misc]
        grids = [self.grid(v) for v in values]
        rows, cols = max(g.rows for g in grids), max(g.cols for g in grids)
        items: list[Scalar] = []
        for r in range(rows):
            for c in range(cols):
                args: list[Scalar] = []
                for g in grids:
                    inside = (g.rows == 1 or r < g.rows) and (g.cols == 1 or c < g.cols)
                    args.append(g.at(r, c) if inside else self.error("#N/A"))
                item = fn(args)
                if not isinstance(item, (Const, Apply, Sample, str, _Empty)):
                    raise self.fail("an array inside an array is not supported")
                items.append(item)
        return Grid(rows, cols, tuple(items))

    def operate(self, op: str, left: Scalar, right: Scalar) -> Scalar:
        """One binary operator on scalars, with Excel's coercions."""
        if op == "concat":
            return self.concat(left, right)
        if op in _COMPARE:
            return self.compare(op, left, right)
        return self.apply(op, [self.numeric(left), self.numeric(right)])

    def concat(self, left: Scalar, right: Scalar) -> Scalar:
        for side in (left, right):
            if isinstance(side, Const) and math.isnan(side.value):
                return side
            if isinstance(side, (Apply, Sample)):
                raise self.fail("& joins text; it cannot join uncertain numbers")
        return self.text_of(left) + self.text_of(right)

    def text_of(self, value: Scalar) -> str:
        """A constant as Excel shows it in text: ``TRUE``, ``0.3``, ``1E+21``."""
        if isinstance(value, str):
            return value
        if value is EMPTY:
            return ""
        if self.is_logical(value):
            return "TRUE" if value is self.TRUE else "FALSE"
        assert isinstance(value, Const)
        return xltext.number_text(value.value)

    def kind(self, value: Scalar) -> int:
        """Excel's comparison order: number 0 < text 1 < logical 2."""
        if isinstance(value, str):
            return 1
        return 2 if self.is_logical(value) else 0

    def blank_as(self, partner: Scalar) -> Scalar:
        """A blank next to ``partner`` in a comparison: "", FALSE or 0 to match its type."""
        if isinstance(partner, str):
            return ""
        return self.FALSE if self.is_logical(partner) else self.const(0.0)

    def compare(self, op: str, left: Scalar, right: Scalar) -> Node:
        """``=``, ``<``... with Excel's types: a blank is 0, "" or FALSE next to its partner."""
        if left is EMPTY:
            left = self.blank_as(right) if right is not EMPTY else self.const(0.0)
        if right is EMPTY:
            right = self.blank_as(left)
        for side in (left, right):
            if isinstance(side, Const) and math.isnan(side.value):
                return side
        kl, kr = self.kind(left), self.kind(right)
        if kl == kr == 1:
            a, b = str(left).casefold(), str(right).casefold()
            return self.boolean(_ORDER[op](a, b))
        if kl == kr:
            return self.apply(op, [self.numeric(left), self.numeric(right)])
        outcome: Node = self.boolean(_ORDER[op](kl, kr))
        for side in (right, left):  # an uncertain side's error still wins, the left first
            if isinstance(side, (Apply, Sample)):
                outcome = self.apply("keep_error", [side, outcome], logical=True)
        return outcome

    # --- function calls --------------------------------------------------------------------

    def call(self, expr: Call, sheet: str) -> Value | Range:
        lname = expr.name.lower()
        if lname == "riskoutput":
            return self.output(expr, sheet)
        if lname in modelling.LOWERINGS:
            modelled: Value | Range = modelling.LOWERINGS[lname](self, expr, sheet)
            return modelled
        if lname.startswith("risk"):
            lowered = self.risk.call(lname, expr, sheet)
            if lowered is not None:
                value: Value | Range = lowered
                return value
        spec = excel.FUNCTIONS.get(expr.name.upper())
        if spec is None:
            raise self.fail(_UNSUPPORTED.get(expr.name.upper(), "unsupported function"), expr.name)
        catalog.check_arity(expr.name, len(expr.args), spec.min_args, spec.max_args, self.where)
        result: Value | Range = spec.lower(self, expr.args, sheet)
        return result

    def output(self, expr: Call, sheet: str) -> Const:
        """``RiskOutput(name, range name, position, property functions...)``: the output's
        name, and its ``RiskConvergence`` (other property functions only describe it)."""
        from services.engine import convergence  # it runs models: imports the back ends

        name = self.lower(expr.args[0], sheet) if expr.args else EMPTY
        for prop in expr.args[3:]:
            pname = prop.name.lower() if isinstance(prop, Call) else ""
            if pname == "riskconvergence":
                assert isinstance(prop, Call)
                self.output_convergence[self.cell] = convergence.lower(self, prop, sheet)
            elif pname in catalog.IGNORED_PROPERTIES:
                self.warn(f"{prop.name} ignored")  # type: ignore[union-attr]
            else:
                raise self.fail("only property functions may follow the position", "RiskOutput")
        if self.cell not in self.output_names:
            if isinstance(name, str) and name.strip():
                self.output_names[self.cell] = name.strip()
            elif name is EMPTY:
                self.output_names[self.cell] = self.where
            else:
                raise self.fail("the output name must be text", "RiskOutput")
        return self.const(0.0)

    def area(self, expr: Expr, sheet: str) -> Range | None:
        """The range a reference designates (a cell, a range, a name for one, or a call of
        OFFSET, INDIRECT or INDEX that returns one), else None."""
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
        if isinstance(expr, Call) and expr.name.upper() in excel.REFERENCES:
            spec = excel.FUNCTIONS[expr.name.upper()]
            catalog.check_arity(expr.name, len(expr.args), spec.min_args, spec.max_args, self.where)
            return excel.REFERENCES[expr.name.upper()](self, expr.args, sheet)
        return None

    def table_arg(self, expr: Expr, sheet: str, what: str) -> Table:
        """A constant numeric table argument: an array constant, a constant range or a number.

        Blank cells are 0; text and per-trial values are refused naming ``what``.
        """
        rng = self.area(expr, sheet)
        value = self.lower(expr, sheet) if rng is None else self.grid(rng)
        if isinstance(value, Table):
            return value
        if isinstance(value, Const):
            return self.table([value.value], 1, 1)
        if not isinstance(value, Grid):
            raise self.fail(f"{what} must be a constant range or array")
        values = []
        for v in value.items:
            if v is EMPTY:
                values.append(0.0)
            elif isinstance(v, Const):
                values.append(v.value)
            elif isinstance(v, str):
                raise self.fail(f"{what} holds text {_shown(v)}; only numbers are supported")
            else:
                raise self.fail(f"{what} must be constant, but it depends on uncertain inputs")
        return self.table(values, value.rows, value.cols)


_ORDER: dict[str, Callable[[object, object], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,  # type: ignore[operator]
    "le": lambda a, b: a <= b,  # type: ignore[operator]
    "gt": lambda a, b: a > b,  # type: ignore[operator]
    "ge": lambda a, b: a >= b,  # type: ignore[operator]
}


def _scalar(value: object) -> bool:
    return isinstance(value, (Const, Apply, Sample, str, _Empty))


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")
