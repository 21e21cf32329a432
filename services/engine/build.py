"""Cells and defined names → an ``ir.Model``: references, folding, inputs, outputs, correlations.

:func:`build_model` starts from the cells holding ``RiskOutput`` and walks their references
(ranges, other sheets, defined names), so only cells that reach an output become nodes.
Cells are lowered in dependency order by an explicit stack (a 100,000-cell chain does not
exhaust Python's stack); a cell met again while its own dependencies are being resolved is
a :class:`CircularReference` naming the whole cycle.

Everything that does not depend on an uncertain input folds to a ``Const`` with the same
Excel semantics as the backends (:func:`catalog.evaluate`), and equal sub-expressions are
one node object. Inputs get their streams in address order (sheet order, row, column, then
left to right within a formula), so a stream does not change when an unrelated cell does.
Formulas are lowered to nodes by :mod:`lowering`.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np

from services.engine.errors import (
    CircularReference,
    CorrelationError,
    FormulaError,
    ModelError,
)
from services.engine.formula import (
    Array,
    Binary,
    Call,
    CellContent,
    Expr,
    Formula,
    Name,
    Ref,
    Unary,
    parse,
)
from services.engine.ir import (
    Apply,
    Const,
    Correlation,
    Model,
    Node,
    Output,
    Report,
    Sample,
    Statistic,
    Table,
    postorder,
)
from services.engine.lowering import Lowerer
from services.engine.sheet import MAX_COL, MAX_ROW, address, column_letters
from services.engine.values import EMPTY

Key = tuple[str, int, int]

#: Eigenvalues of a correlation matrix down to this are rounding, not a broken matrix.
_PSD_TOLERANCE = 1e-9
MAX_FORMULA_CELLS = 200_000
"""Most formula cells one model may compile (parsing and lowering cost ~0.5 ms each)."""
MAX_RANGE_CELLS = 1_000_000
"""Largest range read cell by cell as a table (lookups, SUMPRODUCT, correlation matrices)."""
MAX_REFERENCED_CELLS = 20_000_000
"""Most cells one build may visit through ranges: bounds the time of hostile models."""


@dataclass
class Book:
    """A workbook as plain data: what :mod:`workbook` reads and :mod:`spec` synthesises.

    ``sheets`` maps each sheet title, in workbook order, to its non-empty cells keyed by
    (row, column); text cells are ``str``, formulas :class:`Formula`, errors ``nan``.
    ``names`` maps (scope sheet or None for workbook scope, upper-case name) to the name's
    formula text (``Assumptions!$B$6``, ``0.08``). ``locate`` names a cell in errors
    (default ``Sheet!A1``; specs name their field paths instead).
    """

    sheets: dict[str, dict[tuple[int, int], CellContent]]
    names: dict[tuple[str | None, str], str] = field(default_factory=dict)
    locate: Callable[[str, int, int], str] = address


@dataclass(frozen=True, slots=True)
class Range:
    """A rectangular block of one sheet, resolved and clamped to the cells it holds."""

    sheet: str
    top: int
    left: int
    bottom: int
    right: int

    @property
    def rows(self) -> int:
        """Number of rows."""
        return self.bottom - self.top + 1

    @property
    def cols(self) -> int:
        """Number of columns."""
        return self.right - self.left + 1

    def contains(self, row: int, col: int) -> bool:
        """Whether (row, col) lies inside."""
        return self.top <= row <= self.bottom and self.left <= col <= self.right

    def cells(self) -> Iterator[tuple[int, int]]:
        """(row, col) of every cell, row by row."""
        for row in range(self.top, self.bottom + 1):
            for col in range(self.left, self.right + 1):
                yield row, col


def build_model(book: Book) -> Model:
    """Compile ``book`` into a :class:`Model`; raises a :class:`ModelError` subclass naming
    the sheet and cell (and function) of the first thing refused."""
    graph = Graph(book)
    outputs = graph.output_cells()
    reporting = graph.report_cells()
    if not outputs and not reporting:
        raise ModelError("the model has no RiskOutput: nothing to simulate")
    lowerer = Lowerer(graph)
    graph.lower_cell = lowerer.lower_cell
    for key in outputs:
        graph.resolve(key)
    found = []
    for key in outputs:
        lowerer.cell = key
        node = lowerer.numeric(graph.values[key], "the output")  # type: ignore[arg-type]
        _no_statistic(node, graph.locate(key))
        found.append(
            Output(
                lowerer.output_names.get(key, graph.locate(key)),
                graph.locate(key),
                node,
                lowerer.output_convergence.get(key),
            )
        )
    reports = []
    for key in reporting:
        graph.resolve(key)
        lowerer.cell = key
        node = lowerer.numeric(graph.values[key], "the report")  # type: ignore[arg-type]
        if any(isinstance(n, Sample) for n in postorder([node])):
            raise ModelError(
                "a reporting cell (one calling RiskMean, RiskPercentile...) is computed once the "
                "simulation is done: it may use statistics and constants, not uncertain values",
                graph.locate(key),
            )
        reports.append(Report(lowerer.risk.label(), graph.locate(key), node))
    # a statistic's cell is an output of the model, if it is not one already
    known = set(outputs)
    for key in sorted(lowerer.risk.statistic_targets.values(), key=graph.order):
        if key in known:
            continue
        known.add(key)
        graph.resolve(key)
        lowerer.cell = key
        node = lowerer.numeric(graph.values[key], "a statistic's cell")  # type: ignore[arg-type]
        _no_statistic(node, graph.locate(key))
        found.append(Output(graph.locate(key), graph.locate(key), node))
    return _assemble(lowerer, found, reports)


def _no_statistic(node: Node, where: str) -> None:
    if any(isinstance(n, Statistic) for n in postorder([node])):
        raise ModelError(
            "uses a statistic of the simulation (RiskMean, RiskPercentile...), known only once "
            "it is done: an output or a cell it uses cannot",
            where,
        )


def _assemble(lw: Lowerer, found: list[Output], reports: list[Report] | None = None) -> Model:
    """Number the reachable inputs in address order and rebuild the DAG with those streams."""
    nodes = postorder([o.node for o in found])
    samples = sorted(
        (n for n in nodes if isinstance(n, Sample)), key=lambda s: lw.risk.pending[id(s)][0]
    )
    stream_of = {id(s): i for i, s in enumerate(samples)}
    names = _unique([s.name for s in samples], [s.address for s in samples])
    new: dict[int, Node] = {}

    def get(x: Node | Table) -> Node | Table:
        return x if isinstance(x, Table) else new[id(x)]

    for n in nodes:
        if isinstance(n, Sample):
            i = stream_of[id(n)]
            new[id(n)] = replace(n, stream=i, params=tuple(map(get, n.params)), name=names[i])
        elif isinstance(n, Apply):
            args = tuple(map(get, n.args))
            same = all(a is b for a, b in zip(args, n.args, strict=True))
            new[id(n)] = n if same else Apply(n.fn, args, n.address)
        else:
            new[id(n)] = n
    out_names = _unique([o.name for o in found], [o.address for o in found])
    outputs = tuple(
        replace(o, name=name, node=new[id(o.node)])
        for name, o in zip(out_names, found, strict=True)
    )
    inputs = tuple(new[id(s)] for s in samples)
    correlations = _correlations(lw, {id(s): stream_of[id(s)] for s in samples})
    named = _report_targets(outputs, found)
    return Model(
        inputs,  # type: ignore[arg-type]
        outputs,
        correlations,
        tuple(lw.warnings),
        tuple(_report(r, named) for r in reports or ()),
    )


def _report_targets(outputs: tuple[Output, ...], found: list[Output]) -> dict[str, str]:
    """What a statistic may name (a cell's address, ``name:`` and an output's name) → the
    output's name in the model."""
    named: dict[str, str] = {}
    for final, o in zip(outputs, found, strict=True):
        named.setdefault(o.address, final.name)
        named.setdefault("name:" + o.name.upper(), final.name)
    return named


def _report(report: Report, named: dict[str, str]) -> Report:
    """The report with its statistics naming the model's outputs."""
    new: dict[int, Node] = {}
    for n in postorder([report.node]):
        if isinstance(n, Statistic):
            key = "name:" + n.output[5:].upper() if n.output.startswith("name:") else n.output
            if key not in named:
                raise ModelError(f"no output named {n.output[5:]!r}", report.address)
            new[id(n)] = replace(n, output=named[key])
        elif isinstance(n, Apply):
            args = tuple(a if isinstance(a, Table) else new[id(a)] for a in n.args)
            new[id(n)] = Apply(n.fn, args, n.address)
        else:
            new[id(n)] = n
    return replace(report, node=new[id(report.node)])


def _correlations(lw: Lowerer, stream_of: dict[int, int]) -> tuple[Correlation, ...]:
    """One Correlation per RiskCorrmat matrix, over the inputs that reach an output."""
    groups: dict[tuple[Range, str], tuple[str, dict[int, tuple[Sample, str]]]] = {}
    used: set[int] = set()
    for rng, instance, first_label, position, sample, where in lw.risk.corr:
        label, members = groups.setdefault((rng, instance), (first_label, {}))
        if position in members:
            raise CorrelationError(
                f"position {position} of {label} used twice", where, "RiskCorrmat"
            )
        if id(sample) in used:
            raise CorrelationError(
                "an input may be in one correlation matrix only", where, "RiskCorrmat"
            )
        members[position] = (sample, where)
        used.add(id(sample))
    result = []
    for (rng, _), (label, members) in groups.items():
        matrix = _matrix(lw, rng, label)
        for position, (_, where) in members.items():
            if not 1 <= position <= len(matrix):
                size = f"{len(matrix)}x{len(matrix)}"
                reason = f"position {position} is outside the {size} matrix {label}"
                raise CorrelationError(reason, where, "RiskCorrmat")
        kept = sorted((p, stream_of[id(s)]) for p, (s, _) in members.items() if id(s) in stream_of)
        if len(kept) < 2:
            continue
        sub = tuple(tuple(matrix[p - 1][q - 1] for q, _ in kept) for p, _ in kept)
        result.append(Correlation(label, tuple(s for _, s in kept), sub))
    return tuple(result)


def _matrix(lw: Lowerer, rng: Range, label: str) -> list[list[float]]:
    """A valid rank-correlation matrix from constant cells (a blank triangle mirrors the other)."""
    where = lw.graph.range_label(rng)

    def fail(reason: str) -> CorrelationError:
        # the label is worth repeating only when it is a name, not the range the error names
        text = reason if label == where else f"{label}: {reason}"
        return CorrelationError(text, where, "RiskCorrmat")

    if rng.rows != rng.cols:
        raise fail(f"matrix must be square, got {rng.rows}x{rng.cols}")
    n = rng.rows
    cells: list[list[float | None]] = [[None] * n for _ in range(n)]
    for row, col in lw.graph.every(rng):
        i, j = row - rng.top, col - rng.left
        v = lw.cell_value(rng.sheet, row, col)
        if isinstance(v, Const) and math.isfinite(v.value):
            cells[i][j] = v.value
        elif v is not EMPTY:
            raise fail("matrix cells must be constant numbers")
    m = np.full((n, n), np.nan)
    for i in range(n):
        for j in range(n):
            m[i, j] = (
                cells[i][j]
                if cells[i][j] is not None
                else (cells[j][i] if cells[j][i] is not None else np.nan)
            )
    if np.isnan(m).any():
        raise fail("matrix has blank cells on both sides of the diagonal")
    if np.abs(m).max() > 1:
        raise fail("coefficients must lie in [-1, 1]")
    if not np.all(np.diag(m) == 1):
        raise fail("the diagonal must be all 1")
    if not np.allclose(m, m.T, rtol=0, atol=1e-12):
        raise fail("matrix is not symmetric")
    smallest = float(np.linalg.eigvalsh(m).min())
    if smallest < -_PSD_TOLERANCE:
        raise fail(f"matrix is not positive semi-definite (smallest eigenvalue {smallest:.3g})")
    return m.tolist()


def _unique(names: list[str], addresses: list[str]) -> list[str]:
    """Names made unique: a repeated name gets its address, then a counter."""
    counts = Counter(names)
    out: list[str] = []
    taken: set[str] = set()
    for name, where in zip(names, addresses, strict=True):
        candidate = name if counts[name] == 1 else f"{name} ({where})"
        k = 2
        while candidate in taken:
            candidate, k = f"{name} ({where} #{k})", k + 1
        taken.add(candidate)
        out.append(candidate)
    return out


class Graph:
    """The cells of a book, parsed on demand and lowered once each in dependency order."""

    def __init__(self, book: Book) -> None:
        self.book = book
        self.sheet_names = {name.upper(): name for name in book.sheets}
        self.sheet_order = {name: i for i, name in enumerate(book.sheets)}
        self.asts: dict[Key, Expr] = {}
        self.parsed: dict[str, Expr] = {}
        self.name_asts: dict[tuple[str | None, str], Expr] = {}
        self.values: dict[Key, object] = {}
        self.extents: dict[str, tuple[int, int]] = {}
        self.sorted_keys: dict[str, list[tuple[int, int]]] = {}
        self.visited = 0
        self.locations: dict[Key, str] = {}
        self.lower_cell: Callable[[Key, Expr], object] = _unset

    def output_cells(self) -> list[Key]:
        """Cells whose formula calls ``RiskOutput``, in address order."""
        keys = []
        for sheet, cells in self.book.sheets.items():
            for (row, col), content in cells.items():
                if isinstance(content, Formula) and "RISKOUTPUT" in content.text.upper():
                    key = (sheet, row, col)
                    if any(
                        isinstance(e, Call) and e.name.upper() == "RISKOUTPUT"
                        for e in walk(self.ast(key))
                    ):
                        keys.append(key)
        return sorted(keys, key=self.order)

    def report_cells(self) -> list[Key]:
        """Cells whose formula calls a statistics function (``RiskMean``...), in address
        order: the model's reports."""
        from services.engine.risk import STATISTICS

        named = re.compile("|".join(sorted(STATISTICS, key=len, reverse=True)), re.IGNORECASE)
        keys = []
        for sheet, cells in self.book.sheets.items():
            for (row, col), content in cells.items():
                if isinstance(content, Formula) and named.search(content.text):
                    key = (sheet, row, col)
                    if any(
                        isinstance(e, Call) and e.name.lower() in STATISTICS
                        for e in walk(self.ast(key))
                    ):
                        keys.append(key)
        return sorted(keys, key=self.order)

    def order(self, key: Key) -> tuple[int, int, int]:
        """Sort key of a cell: sheet order, row, column."""
        return (self.sheet_order[key[0]], key[1], key[2])

    def locate(self, key: Key) -> str:
        """How errors name a cell (computed once per cell)."""
        where = self.locations.get(key)
        if where is None:
            where = self.locations[key] = self.book.locate(*key)
        return where

    def ast(self, key: Key) -> Expr:
        """The parsed formula of a formula cell (parsed once, and once per distinct text:
        ASTs are immutable and references in them relative to nothing, so a column of
        ``=RiskNormal(1,0.1)`` shares one)."""
        if key not in self.asts:
            content = self.book.sheets[key[0]][key[1:]]
            assert isinstance(content, Formula)
            parsed = self.parsed.get(content.text)
            if parsed is None:
                parsed = self.parsed[content.text] = parse(content.text, self.locate(key))
            self.asts[key] = parsed
        return self.asts[key]

    def resolve(self, root: Key) -> None:
        """Lower ``root`` after everything it depends on, depth-first without recursion."""
        if root in self.values:
            return
        active: dict[Key, int] = {root: 0}
        stack: list[tuple[Key, Iterator[Key]]] = [(root, self.dependencies(root))]
        while stack:
            key, deps = stack[-1]
            for dep in deps:
                if dep in self.values:
                    continue
                if dep in active:
                    cycle = [k for k, _ in stack[active[dep] :]] + [dep]
                    path = " -> ".join(self.locate(k) for k in cycle)
                    raise CircularReference(f"circular reference {path}", self.locate(dep))
                active[dep] = len(stack)
                stack.append((dep, self.dependencies(dep)))
                break
            else:
                stack.pop()
                del active[key]
                if len(self.values) >= MAX_FORMULA_CELLS:
                    raise ModelError(f"more than {MAX_FORMULA_CELLS} formula cells reach an output")
                try:
                    self.values[key] = self.lower_cell(key, self.ast(key))
                except RecursionError:  # lowering.MAX_NESTING keeps clear of it; a backstop
                    raise FormulaError(
                        "formula nests too deeply to compile", self.locate(key)
                    ) from None

    def dependencies(self, key: Key) -> Iterator[Key]:
        """Formula cells that ``key``'s formula reads, directly or through defined names."""
        seen: set[tuple[str | None, str]] = set()
        pending = [(self.ast(key), key[0])]
        while pending:
            expr, sheet = pending.pop()
            for e in walk(expr):
                if isinstance(e, Ref):
                    yield from self.formula_cells(self.range(e, sheet, key))
                elif isinstance(e, Name):
                    scope = self.name_key(e, sheet, key)
                    if scope not in seen:
                        seen.add(scope)
                        pending.append((self.name_ast(scope), scope[0] or sheet))

    def formula_cells(self, rng: Range) -> Iterator[Key]:
        """Formula cells inside ``rng``, row by row."""
        cells = self.book.sheets[rng.sheet]
        for row, col in self.present(rng):
            if isinstance(cells[(row, col)], Formula):
                yield (rng.sheet, row, col)

    def present(self, rng: Range) -> Iterator[tuple[int, int]]:
        """Non-empty cells inside ``rng``, row by row, scanning the range or the sheet,
        whichever is smaller, so a huge range over a small sheet costs the sheet's size."""
        cells = self.book.sheets[rng.sheet]
        if rng.rows * rng.cols <= len(cells):
            self.charge(rng.rows * rng.cols)
            yield from (rc for rc in rng.cells() if rc in cells)
        else:
            self.charge(len(cells))
            if rng.sheet not in self.sorted_keys:
                self.sorted_keys[rng.sheet] = sorted(cells)
            yield from (rc for rc in self.sorted_keys[rng.sheet] if rng.contains(*rc))

    def every(self, rng: Range) -> Iterator[tuple[int, int]]:
        """Every cell of ``rng``, blank or not, row by row (tables need their full shape)."""
        if rng.rows * rng.cols > MAX_RANGE_CELLS:
            raise ModelError(
                f"range of {rng.rows * rng.cols} cells used as a table (limit {MAX_RANGE_CELLS})",
                self.range_label(rng),
            )
        self.charge(rng.rows * rng.cols)
        return rng.cells()

    def charge(self, cells: int) -> None:
        """Count cells visited through ranges; past the budget the model is refused."""
        self.visited += cells
        if self.visited > MAX_REFERENCED_CELLS:
            raise ModelError(
                f"the model reads more than {MAX_REFERENCED_CELLS} cells through ranges"
            )

    def sheet(self, name: str | None, current: str, at: Key) -> str:
        """The title of sheet ``name`` (case-insensitive), or ``current`` when None."""
        if name is None:
            return current
        found = self.sheet_names.get(name.upper())
        if found is None:
            raise FormulaError(f"no sheet named {name!r}", self.locate(at))
        return found

    def range(self, ref: Ref, current: str, at: Key) -> Range:
        """A reference resolved to its sheet; whole rows and columns end where the sheet does."""
        sheet = self.sheet(ref.sheet, current, at)
        bottom, right = ref.bottom, ref.right
        if sheet not in self.extents:
            cells = self.book.sheets[sheet]
            self.extents[sheet] = (
                max((r for r, _ in cells), default=1),
                max((c for _, c in cells), default=1),
            )
        if ref.top == 1 and bottom == MAX_ROW:  # whole columns
            bottom = max(self.extents[sheet][0], ref.top)
        if ref.left == 1 and right == MAX_COL:  # whole rows
            right = max(self.extents[sheet][1], ref.left)
        return Range(sheet, ref.top, ref.left, bottom, right)

    def name_key(self, name: Name, current: str, at: Key) -> tuple[str | None, str]:
        """The defined name meant at ``at``: sheet scope first, then the workbook's."""
        upper = name.name.upper()
        sheet = current if name.sheet is None else self.sheet(name.sheet, current, at)
        if (sheet, upper) in self.book.names:
            return (sheet, upper)
        if (None, upper) in self.book.names:
            return (None, upper)
        if upper.startswith("_XLPM."):  # how Excel stores a LET or LAMBDA parameter
            raise FormulaError(
                f"LET and LAMBDA are not supported ({name.name[6:]!r} is one of their "
                "parameters): write the value in a cell of its own",
                self.locate(at),
            )
        raise FormulaError(f"unknown name {name.name!r}", self.locate(at))

    def name_ast(self, key: tuple[str | None, str]) -> Expr:
        """The parsed definition of a defined name."""
        if key not in self.name_asts:
            self.name_asts[key] = parse(self.book.names[key], f"name {key[1]}")
        return self.name_asts[key]

    def range_label(self, rng: Range) -> str:
        """``Sheet!A1:B2`` (or the located top-left cell for one cell)."""
        first = self.locate((rng.sheet, rng.top, rng.left))
        if rng.rows == rng.cols == 1 or first == self.locate((rng.sheet, rng.bottom, rng.right)):
            return first
        return f"{first}:{column_letters(rng.right)}{rng.bottom}"

    def content(self, sheet: str, row: int, col: int) -> CellContent:
        """What a cell holds, None when empty."""
        return self.book.sheets[sheet].get((row, col))


def _unset(key: Key, expr: Expr) -> object:
    raise AssertionError("Graph.lower_cell is set by build_model")


def walk(expr: Expr) -> Iterator[Expr]:
    """Every sub-expression of ``expr``, parents first, left to right."""
    stack = [expr]
    while stack:
        e = stack.pop()
        yield e
        if isinstance(e, Call):
            stack.extend(reversed(e.args))
        elif isinstance(e, Binary):
            stack.extend((e.right, e.left))
        elif isinstance(e, Unary):
            stack.append(e.operand)
        elif isinstance(e, Array):
            stack.extend(x for row in reversed(e.rows) for x in reversed(row))
