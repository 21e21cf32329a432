"""Excel formulas → an abstract syntax tree, by openpyxl's tokenizer and a precedence parser.

Operator precedence follows Excel, tightest first: reference ``:`` (inside range tokens),
negation, ``%``, ``^`` (left-associative, so ``2^3^2`` is 64 and ``-2^2`` is 4),
``* /``, ``+ -``, ``&``, comparisons. Excel's intersection (a space between two ranges),
union ``(A1,B1)``, external and 3-D references are refused with a :class:`FormulaError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeAlias

from openpyxl.formula.tokenizer import Token, Tokenizer, TokenizerError

from services.engine.errors import FormulaError
from services.engine.sheet import MAX_COL, MAX_ROW, column_number

#: Formula length in characters (Excel's editor stops at 8,192; files written by other tools
#: go beyond, and parsing and lowering are linear), and nesting depth: parentheses,
#: function calls and prefix signs (Excel allows 64 levels of functions); the parser and
#: lowering recurse once per level, so this bounds their stack. Chains of operators
#: (``=A1+A1+...``) are not nesting: they are lowered iteratively, whatever their length.
MAX_FORMULA_LENGTH = 65_536
MAX_DEPTH = 100


@dataclass(frozen=True, slots=True)
class Formula:
    """A cell holding a formula (text starting with ``=``), as opposed to a text value."""

    text: str


#: What a workbook cell holds: a number, a boolean, text, a formula, or nothing.
CellContent = float | int | bool | str | Formula | None


@dataclass(frozen=True, slots=True)
class Number:
    """A numeric literal."""

    value: float


@dataclass(frozen=True, slots=True)
class Text:
    """A string literal (quotes removed, ``""`` unescaped)."""

    value: str


@dataclass(frozen=True, slots=True)
class Bool:
    """``TRUE`` or ``FALSE``."""

    value: bool


@dataclass(frozen=True, slots=True)
class ErrorLiteral:
    """An Excel error literal such as ``#N/A``."""

    code: str


@dataclass(frozen=True, slots=True)
class Missing:
    """An omitted argument, as in ``RiskTruncate(,10)``."""


@dataclass(frozen=True, slots=True)
class Ref:
    """A cell or rectangular range, 1-based and inclusive; ``sheet`` None means this sheet.

    Whole columns (``A:A``) and rows (``1:1``) span to Excel's limits; the builder clamps
    them to the cells the sheet actually holds.
    """

    sheet: str | None
    top: int
    left: int
    bottom: int
    right: int

    @property
    def is_cell(self) -> bool:
        """True for a single cell."""
        return self.top == self.bottom and self.left == self.right


@dataclass(frozen=True, slots=True)
class Name:
    """A defined name, optionally qualified by the sheet that scopes it (``Sheet1!Rate``)."""

    name: str
    sheet: str | None = None


@dataclass(frozen=True, slots=True)
class Array:
    """An array constant ``{1,2;3,4}``: rows of literals."""

    rows: tuple[tuple[Expr, ...], ...]


@dataclass(frozen=True, slots=True)
class Call:
    """A function call; ``name`` as written, without ``_xlfn.``-style prefixes."""

    name: str
    args: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Unary:
    """``neg`` (prefix ``-``) or ``percent`` (postfix ``%``); prefix ``+`` is dropped."""

    op: str
    operand: Expr


@dataclass(frozen=True, slots=True)
class Binary:
    """An infix operator, named as ``Apply.fn`` (``add``, ``pow``, ``le``, ``concat``...)."""

    op: str
    left: Expr
    right: Expr


Expr: TypeAlias = (
    Number | Text | Bool | ErrorLiteral | Missing | Ref | Name | Array | Call | Unary | Binary
)

# Binding powers: (left, right) for infix operators; left-associative everywhere as in Excel.
_INFIX = {
    "=": ("eq", 1),
    "<>": ("ne", 1),
    "<": ("lt", 1),
    "<=": ("le", 1),
    ">": ("gt", 1),
    ">=": ("ge", 1),
    "&": ("concat", 2),
    "+": ("add", 3),
    "-": ("sub", 3),
    "*": ("mul", 4),
    "/": ("div", 4),
    "^": ("pow", 5),
}
_PERCENT_BP = 6
_PREFIX_BP = 7
_PREFIXES = ("_xlfn.", "_xlws.", "_xll.")

_SHEET = r"(?:'(?P<quoted>(?:[^']|'')+)'|(?P<plain>[^'!:\[\]]+))!"
_CELL = r"\$?(?P<{c}>[A-Za-z]{{1,3}})\$?(?P<{r}>[0-9]+)"
_AREA = re.compile(
    rf"^(?:{_SHEET})?(?:"
    rf"(?P<cell>{_CELL.format(c='c1', r='r1')}(?::{_CELL.format(c='c2', r='r2')})?)"
    r"|(?P<cols>\$?(?P<k1>[A-Za-z]{1,3}):\$?(?P<k2>[A-Za-z]{1,3}))"
    r"|(?P<rows>\$?(?P<w1>[0-9]+):\$?(?P<w2>[0-9]+))"
    r"|(?P<name>[A-Za-z_\\][A-Za-z0-9_.\\?]*))$"
)


def parse_reference(text: str, location: str = "") -> Ref | Name:
    """Parse a range operand (``'My Sheet'!$A$1:B3``, ``A:A``, ``Sheet1!Rate``, ``Rate``)."""
    m = _AREA.match(text)
    if m is None or "[" in text:
        raise FormulaError(f"unsupported reference {text!r}", location)
    sheet = m["quoted"].replace("''", "'") if m["quoted"] else m["plain"]
    if m["cell"]:
        c1, r1 = column_number(m["c1"]), int(m["r1"])
        c2, r2 = (column_number(m["c2"]), int(m["r2"])) if m["c2"] else (c1, r1)
        if max(c1, c2) <= MAX_COL and min(r1, r2) >= 1 and max(r1, r2) <= MAX_ROW:
            return Ref(sheet, min(r1, r2), min(c1, c2), max(r1, r2), max(c1, c2))
        if m["c2"]:
            raise FormulaError(f"reference {text!r} is outside the sheet", location)
        return Name(text.split("!")[-1], sheet)
    if m["cols"]:
        c1, c2 = sorted((column_number(m["k1"]), column_number(m["k2"])))
        if c2 > MAX_COL:
            raise FormulaError(f"reference {text!r} is outside the sheet", location)
        return Ref(sheet, 1, c1, MAX_ROW, c2)
    if m["rows"]:
        r1, r2 = sorted((int(m["w1"]), int(m["w2"])))
        if not 1 <= r1 <= r2 <= MAX_ROW:
            raise FormulaError(f"reference {text!r} is outside the sheet", location)
        return Ref(sheet, r1, 1, r2, MAX_COL)
    return Name(m["name"], sheet)


def parse(formula: str, location: str = "") -> Expr:
    """Parse one formula (with or without the leading ``=``) into an :data:`Expr`.

    Raises :class:`FormulaError` naming ``location`` for anything malformed or refused.
    """
    text = formula if formula.startswith("=") else "=" + formula
    if len(text) > MAX_FORMULA_LENGTH:
        raise FormulaError(f"formula longer than {MAX_FORMULA_LENGTH} characters", location)
    try:
        items = Tokenizer(text).items
    except (TokenizerError, ValueError, IndexError) as exc:
        raise FormulaError(f"cannot parse formula {formula!r}: {exc}", location) from None
    return _Parser(items, formula, location).parse()


class _Parser:
    """A Pratt parser over openpyxl tokens; whitespace is dropped (intersection refused)."""

    def __init__(self, items: list[Token], formula: str, location: str) -> None:
        self.pos = 0
        self.depth = 0
        self.formula = formula
        self.location = location
        for before, space, after in zip(items, items[1:], items[2:], strict=False):
            # a space between two references is Excel's intersection operator
            if (
                space.type == Token.WSPACE
                and (before.subtype == Token.RANGE or before.subtype == Token.CLOSE)
                and (after.subtype == Token.RANGE or after.type == Token.PAREN)
                and after.subtype != Token.CLOSE
            ):
                raise self.fail(
                    "the intersection operator (a space between references, "
                    f"{before.value}{space.value}{after.value}) is not supported"
                )
        self.tokens = [t for t in items if t.type != Token.WSPACE]

    def fail(self, reason: str) -> FormulaError:
        shown = self.formula if len(self.formula) <= 80 else self.formula[:77] + "..."
        return FormulaError(f"{reason} in formula {shown!r}", self.location)

    def peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def next(self) -> Token:
        tok = self.peek()
        if tok is None:
            raise self.fail("unexpected end")
        self.pos += 1
        return tok

    def parse(self) -> Expr:
        if not self.tokens:
            raise self.fail("empty formula")
        expr = self.expression(0)
        if self.peek() is not None:
            raise self.fail(f"unexpected {self.peek().value!r}")  # type: ignore[union-attr]
        return expr

    def expression(self, min_bp: int) -> Expr:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(f"formula nests deeper than {MAX_DEPTH} levels")
        left = self.prefix()
        while (tok := self.peek()) is not None:
            if tok.type == Token.OP_POST and tok.value == "%":
                if min_bp > _PERCENT_BP:
                    break
                self.next()
                left = Unary("percent", left)
            elif tok.type == Token.OP_IN and tok.value in _INFIX:
                op, bp = _INFIX[tok.value]
                if bp <= min_bp:
                    break
                self.next()
                left = Binary(op, left, self.expression(bp))
            elif tok.type == Token.OP_IN and tok.value == ",":
                raise self.fail(
                    "the union operator (references joined by ',' in parentheses) is not supported"
                )
            elif tok.type == Token.OP_IN:
                raise self.fail(f"unsupported operator {tok.value!r}")
            else:
                break
        self.depth -= 1
        return left

    def prefix(self) -> Expr:
        tok = self.next()
        if tok.type == Token.OP_PRE:
            operand = self.expression(_PREFIX_BP)
            return Unary("neg", operand) if tok.value == "-" else operand
        if tok.type == Token.OPERAND:
            return self.operand(tok)
        if tok.type == Token.PAREN and tok.subtype == Token.OPEN:
            inner = self.expression(0)
            close = self.next()
            if close.type != Token.PAREN:
                raise self.fail("union references like (A1,B1) are not supported")
            return inner
        if tok.type == Token.FUNC and tok.subtype == Token.OPEN:
            return self.call(tok.value[:-1])
        if tok.type == Token.ARRAY and tok.subtype == Token.OPEN:
            return self.array()
        raise self.fail(f"unexpected {tok.value!r}")

    def operand(self, tok: Token) -> Expr:
        if tok.subtype == Token.NUMBER:
            return Number(float(tok.value))
        if tok.subtype == Token.TEXT:
            return Text(tok.value[1:-1].replace('""', '"'))
        if tok.subtype == Token.LOGICAL:
            return Bool(tok.value.upper() == "TRUE")
        if tok.subtype == Token.ERROR:
            return ErrorLiteral(tok.value.upper())
        return parse_reference(tok.value, self.location)

    def call(self, raw: str) -> Call:
        name = raw
        for prefix in _PREFIXES:
            if name.lower().startswith(prefix):
                name = name[len(prefix) :]
        args: list[Expr] = []
        tok = self.peek()
        if tok is not None and tok.type == Token.FUNC and tok.subtype == Token.CLOSE:
            self.next()
            return Call(name, ())
        while True:
            tok = self.peek()
            if (
                tok is not None
                and tok.type in (Token.SEP, Token.FUNC)
                and tok.subtype
                in (
                    Token.ARG,
                    Token.CLOSE,
                )
            ):
                args.append(Missing())
            else:
                args.append(self.expression(0))
            tok = self.next()
            if tok.type == Token.FUNC and tok.subtype == Token.CLOSE:
                return Call(name, tuple(args))
            if not (tok.type == Token.SEP and tok.subtype == Token.ARG):
                raise self.fail(f"unexpected {tok.value!r} in arguments of {name}")

    def array(self) -> Array:
        rows: list[tuple[Expr, ...]] = []
        row: list[Expr] = []
        while True:
            tok = self.next()
            sign = 1.0
            if tok.type == Token.OP_PRE:
                sign = -1.0 if tok.value == "-" else 1.0
                tok = self.next()
            if tok.type != Token.OPERAND or tok.subtype == Token.RANGE:
                raise self.fail("array constants may hold only literals")
            item = self.operand(tok)
            row.append(Number(sign * item.value) if isinstance(item, Number) else item)
            sep = self.next()
            if sep.type == Token.ARRAY and sep.subtype == Token.CLOSE:
                rows.append(tuple(row))
                break
            if sep.type == Token.SEP and sep.subtype == Token.ROW:
                rows.append(tuple(row))
                row = []
            elif not (sep.type == Token.SEP and sep.subtype == Token.ARG):
                raise self.fail(f"unexpected {sep.value!r} in array constant")
        if len({len(r) for r in rows}) != 1:
            raise self.fail("array constant rows differ in length")
        return Array(tuple(rows))
