"""Text: how Excel reads numbers in text and writes numbers as text, and the text functions.

Text never varies per trial in a model (an uncertain number joined by ``&`` is refused), so
text functions run at compile time on constant arguments; ``VALUE`` and ``LEN`` give
numbers that the rest of the model uses. :func:`to_number` is Excel's coercion of text in
arithmetic and ``VALUE``: digits with thousands separators, a decimal point, an exponent,
a leading currency sign, a trailing percent sign, accounting parentheses, and dates and
times in the forms of :func:`.dates.text_serial`.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from services.engine.excel import registry
from services.engine.ir import Apply, Const, Sample
from services.engine.values import EMPTY, Scalar

if TYPE_CHECKING:
    from services.engine.formula import Expr
    from services.engine.lowering import Lowerer

CATEGORY = "Text"
_NUMBER = re.compile(
    r"^(?P<open>\()?\s*(?P<sign>[+-])?\s*\$?\s*"
    r"(?P<int>\d{1,3}(?:,\d{3})+|\d*)(?P<frac>\.\d*)?(?P<exp>[eE][+-]?\d+)?"
    r"\s*(?P<pct>%)?\s*(?P<close>\))?$"
)


def to_number(text: str) -> float | None:
    """The number Excel reads in ``text`` (``"1,000.5"``, ``"5%"``, ``"$3"``, ``"(4)"``,
    ``"1/31/2024"``), or None when it reads none (#VALUE! in arithmetic)."""
    t = text.strip()
    m = _NUMBER.match(t)
    if (
        m
        and (m["int"] or (m["frac"] and len(m["frac"]) > 1))
        and bool(m["open"]) == bool(m["close"])
    ):
        value = float((m["int"] or "0").replace(",", "") + (m["frac"] or "") + (m["exp"] or ""))
        if m["sign"] == "-" or m["open"]:
            value = -value
        if m["pct"]:
            value /= 100.0
        return value if math.isfinite(value) else None
    from services.engine.excel.dates import text_serial

    return text_serial(t)


def number_text(x: float) -> str:
    """A number as Excel writes it in text (General format): 15 significant digits."""
    if x == 0:
        return "0"
    text = f"{x:.15g}"
    if "e" in text:
        mantissa, exp = text.split("e")
        return f"{mantissa}E{'+' if int(exp) >= 0 else '-'}{abs(int(exp)):02d}"
    return text


def _text_args(lw: Lowerer, args: tuple[Expr, ...], sheet: str, what: str) -> list[Scalar]:
    out: list[Scalar] = []
    for a in args:
        v = lw.lower(a, sheet)
        if isinstance(v, (str, Const)) or v is EMPTY:
            out.append(v)
        elif hasattr(v, "rows"):
            raise lw.fail("needs single values, not ranges", what)
        else:
            raise lw.fail("needs constant arguments (text cannot vary per trial)", what)
    return out


def _error_in(values: list[Scalar]) -> Const | None:
    for v in values:
        if isinstance(v, Const) and math.isnan(v.value):
            return v
    return None


def _textual(fn: Any, what: str) -> Any:
    """A text function of constants: ``fn(lw, values)`` returns text or a number."""

    def lower(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Any:
        values = _text_args(lw, args, sheet, what)
        err = _error_in(values)
        if err is not None:
            return err
        result = fn(lw, values)
        if isinstance(result, float):
            return lw.const(result) if math.isfinite(result) else lw.error("#NUM!")
        return result

    return lower


def _s(lw: Lowerer, v: Scalar) -> str:
    return lw.text_of(v)


def _n(lw: Lowerer, v: Scalar) -> float | None:
    if isinstance(v, str):
        return to_number(v)
    if v is EMPTY:
        return 0.0
    return v.value  # type: ignore[union-attr]


def _value(lw: Lowerer, v: list[Scalar]) -> Any:
    if lw.is_logical(v[0]):
        return lw.error("#VALUE!")
    n = _n(lw, v[0])
    return lw.error("#VALUE!") if n is None else float(n)


def _count_arg(lw: Lowerer, v: Scalar, default: float) -> float | None:
    n = _n(lw, v) if v is not None else default
    return None if n is None else math.trunc(n)


def _left(lw: Lowerer, v: list[Scalar]) -> Any:
    n = _count_arg(lw, v[1], 1) if len(v) > 1 else 1
    if n is None or n < 0:
        return lw.error("#VALUE!")
    return _s(lw, v[0])[: int(n)]


def _right(lw: Lowerer, v: list[Scalar]) -> Any:
    n = _count_arg(lw, v[1], 1) if len(v) > 1 else 1
    if n is None or n < 0:
        return lw.error("#VALUE!")
    s = _s(lw, v[0])
    return s[max(len(s) - int(n), 0) :] if n else ""


def _mid(lw: Lowerer, v: list[Scalar]) -> Any:
    start, n = _count_arg(lw, v[1], 1), _count_arg(lw, v[2], 1)
    if start is None or n is None or start < 1 or n < 0:
        return lw.error("#VALUE!")
    return _s(lw, v[0])[int(start) - 1 : int(start) - 1 + int(n)]


def _find(case: bool) -> Any:
    def find(lw: Lowerer, v: list[Scalar]) -> Any:
        needle, hay = _s(lw, v[0]), _s(lw, v[1])
        start = _count_arg(lw, v[2], 1) if len(v) > 2 else 1
        if start is None or start < 1 or start > len(hay) + 1:
            return lw.error("#VALUE!")
        if case:
            i = hay.find(needle, int(start) - 1)
        else:
            pattern = "".join(
                ".*" if c == "*" else "." if c == "?" else re.escape(c) for c in needle
            )
            m = re.compile(pattern, re.IGNORECASE | re.DOTALL).search(hay, int(start) - 1)
            i = m.start() if m else -1
        return lw.error("#VALUE!") if i < 0 else float(i + 1)

    return find


def _substitute(lw: Lowerer, v: list[Scalar]) -> Any:
    text, old, new = _s(lw, v[0]), _s(lw, v[1]), _s(lw, v[2])
    if len(v) < 4:
        return text.replace(old, new) if old else text
    k = _count_arg(lw, v[3], 1)
    if k is None or k < 1:
        return lw.error("#VALUE!")
    pos = -1
    for _ in range(int(k)):
        pos = text.find(old, pos + 1)
        if pos < 0 or not old:
            return text
    return text[:pos] + new + text[pos + len(old) :]


def _rept(lw: Lowerer, v: list[Scalar]) -> Any:
    n = _count_arg(lw, v[1], 0)
    if n is None or n < 0 or n * len(_s(lw, v[0])) > 32767:
        return lw.error("#VALUE!")
    return _s(lw, v[0]) * int(n)


def _concat(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Any:
    """CONCAT also takes ranges (their cells in order); CONCATENATE single values only."""
    parts: list[str] = []
    for a in args:
        rng = lw.area(a, sheet)
        values = (
            list(lw.grid(rng).items) if rng is not None else _text_args(lw, (a,), sheet, "CONCAT")
        )
        for v in values:
            if isinstance(v, Const) and math.isnan(v.value):
                return v
            if not isinstance(v, (str, Const)) and v is not EMPTY:
                raise lw.fail("needs constant arguments (text cannot vary per trial)", "CONCAT")
            parts.append(lw.text_of(v))
    return "".join(parts)


_LETTERS = re.compile(r"[^\W\d_]+")  # a word of PROPER: letters, accented ones too


def _value_of(what: str) -> Any:
    """VALUE(x): the number in constant text, or an uncertain number as it is."""
    textual = _textual(_value, what)

    def lower(lw: Lowerer, args: tuple[Expr, ...], sheet: str) -> Any:
        v = lw.lower(args[0], sheet)
        if isinstance(v, (Apply, Sample)):
            return lw.error("#VALUE!") if lw.is_logical(v) else v
        return textual(lw, args, sheet)

    return lower


_FUNCTIONS: dict[str, tuple[int, int, Any]] = {
    "LEN": (1, 1, lambda lw, v: float(len(_s(lw, v[0])))),
    "LEFT": (1, 2, _left),
    "RIGHT": (1, 2, _right),
    "MID": (3, 3, _mid),
    "UPPER": (1, 1, lambda lw, v: _s(lw, v[0]).upper()),
    "LOWER": (1, 1, lambda lw, v: _s(lw, v[0]).lower()),
    "PROPER": (1, 1, lambda lw, v: _LETTERS.sub(lambda m: m[0].capitalize(), _s(lw, v[0]))),
    "TRIM": (1, 1, lambda lw, v: re.sub(" +", " ", _s(lw, v[0])).strip(" ")),
    "EXACT": (2, 2, lambda lw, v: lw.boolean(_s(lw, v[0]) == _s(lw, v[1]))),
    "FIND": (2, 3, _find(True)),
    "SEARCH": (2, 3, _find(False)),
    "SUBSTITUTE": (3, 4, _substitute),
    "REPT": (2, 2, _rept),
    "T": (1, 1, lambda lw, v: v[0] if isinstance(v[0], str) else ""),
    "CONCATENATE": (1, registry.MAX_ARGS, lambda lw, v: "".join(_s(lw, x) for x in v)),
}
for _name, (_lo, _hi, _fn) in _FUNCTIONS.items():
    registry.function(_name, CATEGORY, _lo, _hi, _textual(_fn, _name), runs="compile time")
for _name in ("VALUE", "NUMBERVALUE"):
    registry.function(_name, CATEGORY, 1, 1, _value_of(_name))
registry.function("CONCAT", CATEGORY, 1, registry.MAX_ARGS, _concat, runs="compile time")
