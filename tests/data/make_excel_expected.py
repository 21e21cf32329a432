"""Write tests/data/excel_expected.json: the expected value of every Excel differential case.

The cases (tests/engine/excel_cases.py) are laid out as a workbook with constant arguments
and computed by the independent Excel engine ``formulas``; for the functions ``formulas``
lacks, returns arrays it cannot, or computes differently from Excel's documented behaviour,
the expected value comes from SciPy, numpy_financial or plain Python instead (``REFERENCES``
below, each with its reason). Run from the repository root (about a minute):

    .venv/bin/python tests/data/make_excel_expected.py
"""

from __future__ import annotations

import json
import math
import re
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy_financial as npf
import openpyxl
from scipy import optimize

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from services.engine.formula import Formula
from tests.engine import excel_cases as xc

OUT = Path(__file__).with_name("excel_expected.json")
ERRORS = ("#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A")


class XlError(Exception):
    """An Excel error met while computing a Python reference."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _number(arg: xc.Arg, strict: bool = False) -> float:
    """An argument as Excel's arithmetic coerces it (errors raised); ``strict``: a logical
    value is #VALUE! (Analysis ToolPak functions)."""
    if "e" in arg:
        raise XlError(arg["e"])
    if "blank" in arg:
        return 0.0
    if "b" in arg:
        if strict:
            raise XlError("#VALUE!")
        return 1.0 if arg["b"] else 0.0
    if "s" in arg:
        try:
            return float(arg["s"])
        except ValueError:
            raise XlError("#VALUE!") from None
    return float(arg["n"])


def _numbers(case: xc.Case, strict: bool = False) -> list[float]:
    return [_number(a, strict) for a in case.args]


def _combin(n: float, k: float) -> float:
    n, k = math.trunc(n), math.trunc(k)
    if n < 0 or k < 0 or n < k:
        raise XlError("#NUM!")
    return float(math.comb(n, k))


def _combina(n: float, k: float) -> float:
    n, k = math.trunc(n), math.trunc(k)
    if n < 0 or k < 0 or (n == 0 and k > 0):
        raise XlError("#NUM!")
    return 1.0 if k == 0 else _combin(n + k - 1, k)


def _quotient(a: float, b: float) -> float:
    if b == 0:
        raise XlError("#DIV/0!")
    return float(math.trunc(a / b))


def _finance(fn: Callable[..., float], per_check: bool) -> Callable[..., float]:
    """numpy_financial's IPMT/PPMT with Excel's #NUM! for a period outside 1..nper."""

    def apply(rate: float, per: float, nper: float, pv: float, fv: float, kind: float) -> float:
        if per_check and (per < 1 or per > nper):
            raise XlError("#NUM!")
        return float(fn(rate, per, nper, pv, fv, when=1 if kind else 0))

    return apply


def _cumulative(principal: bool) -> Callable[..., float]:
    def apply(rate: float, nper: float, pv: float, start: float, end: float, kind: float) -> float:
        s, e = math.ceil(start), math.floor(end)
        if (
            rate <= 0
            or nper <= 0
            or pv <= 0
            or s < 1
            or e < 1
            or s > e
            or kind not in (0, 1)
            or e > nper
        ):
            raise XlError("#NUM!")
        per = np.arange(s, e + 1)
        fn = npf.ppmt if principal else npf.ipmt
        return float(np.sum(fn(rate, per, nper, pv, 0, when=int(kind))))

    return apply


def _xirr(guess: float) -> float:
    """XIRR of the fixture cash flows by Brent's method on XNPV (formulas stops at 1e-7)."""
    flows = [a["n"] for a in xc.BLOCKS["flows"].values]
    dates = [a["n"] for a in xc.BLOCKS["dates"].values]
    if guess < 0:
        raise XlError("#NUM!")
    t = (np.asarray(dates) - dates[0]) / 365.0

    def xnpv(r: float) -> float:
        return float(np.sum(np.asarray(flows) / (1.0 + r) ** t))

    return float(optimize.brentq(xnpv, -0.99, 10.0, xtol=1e-15, rtol=1e-15))


def _fact(x: float) -> float:
    n = math.trunc(x)
    if not 0 <= n <= 170:
        raise XlError("#NUM!")
    return float(math.factorial(n))


def _factdouble(x: float) -> float:
    n = math.trunc(x)
    if n < -1:
        raise XlError("#NUM!")
    value = math.prod(range(max(n, 1), 0, -2))
    if value > 1.7976931348623157e308:
        raise XlError("#NUM!")
    return float(value)


def _permutationa(n: float, k: float) -> float:
    n, k = math.trunc(n), math.trunc(k)
    if n < 0 or k < 0:
        raise XlError("#NUM!")
    value = n**k
    if value > 1.7976931348623157e308:
        raise XlError("#NUM!")
    return float(value)


def _n(case: xc.Case) -> Any:
    arg = case.args[0]
    if "e" in arg:
        raise XlError(arg["e"])
    if "b" in arg:
        return 1.0 if arg["b"] else 0.0
    return 0.0 if "s" in arg or "blank" in arg else arg["n"]


def _value(case: xc.Case) -> float:
    """VALUE of the case's argument: a number is itself, numeric text its number."""
    arg = case.args[0]
    if "e" in arg:
        raise XlError(arg["e"])
    if "b" in arg:
        raise XlError("#VALUE!")
    x = _number(arg)
    return 1234.5 + 0.05 + x


def _fixture(block: str) -> list[float]:
    return [a.get("n", 0.0) for a in xc.BLOCKS[block].values]


def _indirect(row: float) -> float:
    nums = _fixture("nums")
    if not 1 <= int(row) <= len(nums):
        raise XlError("#REF!")
    return nums[int(row) - 1]


def _offset(down: float) -> float:
    k = math.floor(down)
    if k < 0:
        raise XlError("#REF!")
    nums = _fixture("nums") + [0.0] * 8
    return float(sum(nums[k : k + 3]))


def _weekday(serial: int) -> bool:
    return serial % 7 >= 2  # serial 1 is a Sunday, serial 0 a Saturday


def _networkdays(start: float, end: float, holidays: bool) -> float:
    """Weekdays from start to end inclusive, counted one day at a time."""
    a, b = math.floor(start), math.floor(end)
    if not (0 <= a <= 2958465 and 0 <= b <= 2958465):
        raise XlError("#NUM!")
    skip = {int(h) for h in _fixture("holidays")} if holidays else set()
    lo, hi = min(a, b), max(a, b)
    count = sum(1 for d in range(lo, hi + 1) if _weekday(d) and d not in skip)
    return float(-count if b < a else count)


def _workday(start: float, days: float, holidays: bool) -> float:
    """The date ``days`` weekdays away, stepping one day at a time."""
    d, n = math.floor(start), math.trunc(days)
    if not 0 <= d <= 2958465:
        raise XlError("#NUM!")
    skip = {int(h) for h in _fixture("holidays")} if holidays else set()
    step = 1 if n > 0 else -1
    while n:
        d += step
        if _weekday(d) and d not in skip:
            n -= step
    if not 0 <= d <= 2958465:
        raise XlError("#NUM!")
    return float(d)


def _first_error_then_formulas(case: xc.Case, formulas_value: dict[str, Any]) -> dict[str, Any]:
    """Excel's rule formulas drops for PV/FV/PMT/NPER's trailing arguments: the first error
    argument is the result, non-numeric text is #VALUE!."""
    for arg in case.args:
        if "e" in arg:
            return {"e": arg["e"]}
        if "s" in arg:
            try:
                float(arg["s"])
            except ValueError:
                return {"e": "#VALUE!"}
    return formulas_value


_STACK_WHY = "formulas coerces numeric text in HSTACK/VSTACK and keeps blanks blank"


def _stacked(args: tuple[xc.Arg, ...]) -> list[xc.Arg]:
    """The items of HSTACK/VSTACK of single cells: a blank is 0 (Excel's arrays hold no
    blanks), text stays text, an error stays an error."""
    return [xc.n(0) if "blank" in a else a for a in args]


def _stack_sumproduct(case: xc.Case) -> float:
    """SUMPRODUCT(HSTACK(x, y, z), {1,2,3}): the first error, else the numbers weighted
    (text and logical items count as 0 in SUMPRODUCT)."""
    items = _stacked(case.args)
    for a in items:
        if "e" in a:
            raise XlError(a["e"])
    return float(sum(w * a["n"] for w, a in zip((1, 2, 3), items, strict=True) if "n" in a))


def _stack_count(case: xc.Case) -> float:
    """COUNT(HSTACK(x, y)) + 10 * COUNTA(HSTACK(x, y))."""
    items = _stacked(case.args)
    return float(sum("n" in a for a in items) + 10 * len(items))


def _stack_sum(case: xc.Case) -> float:
    """SUM(VSTACK(x, y, nums)) + 100 * COUNT(VSTACK(x, nums)): SUM skips text and logical
    items of an array."""
    x, y = _stacked(case.args)
    for a in (x, y):
        if "e" in a:
            raise XlError(a["e"])
    nums = _fixture("nums")
    total = sum(a["n"] for a in (x, y) if "n" in a) + sum(nums)
    return float(total + 100 * (len(nums) + ("n" in x)))


#: spec → (why not ``formulas`` alone, reference computing the value from the case).
REFERENCES: dict[str, tuple[str, Callable[[xc.Case], float]]] = {
    "COMBIN": ("formulas does not implement it", lambda c: _combin(*_numbers(c))),
    "COMBINA": ("formulas does not implement it", lambda c: _combina(*_numbers(c))),
    "QUOTIENT": (
        "formulas does not implement it",
        lambda c: _quotient(*_numbers(c, strict=True)),
    ),
    "FACT": ("formulas gives #VALUE! beyond 20!", lambda c: _fact(*_numbers(c))),
    "FACTDOUBLE": (
        "formulas gives #VALUE! beyond 64-bit integers",
        lambda c: _factdouble(*_numbers(c, strict=True)),
    ),
    "PERMUTATIONA": (
        "formulas gives #VALUE! beyond 64-bit integers",
        lambda c: _permutationa(*_numbers(c)),
    ),
    "N": ("formulas returns FALSE for N(FALSE), Excel 0", _n),
    "VALUE": ("formulas gives #VALUE! for VALUE of a number, Excel the number", _value),
    "INDIRECT": ("formulas does not implement INDIRECT", lambda c: _indirect(*_numbers(c))),
    "OFFSET": ("formulas does not implement OFFSET", lambda c: _offset(*_numbers(c))),
    "NETWORKDAYS": (
        "formulas fails on 29 February 1900 and weekend starts; counted day by day",
        lambda c: _networkdays(*_numbers(c, strict=True), holidays=True),
    ),
    "NETWORKDAYS ": (
        "as NETWORKDAYS",
        lambda c: _networkdays(*_numbers(c, strict=True), holidays=False),
    ),
    "WORKDAY": (
        "formulas gives #VALUE! for a weekend start; stepped day by day",
        lambda c: _workday(*_numbers(c, strict=True), holidays=True),
    ),
    "WORKDAY ": (
        "as WORKDAY",
        lambda c: _workday(*_numbers(c, strict=True), holidays=False),
    ),
    "SUMPRODUCT cond": (
        "formulas cannot negate arrays (--)",
        lambda c: _sumproduct_cond(c.args[0]),
    ),
    "IPMT": (
        "formulas returns #NUM! for any positive interest",
        lambda c: _finance(npf.ipmt, True)(*_numbers(c)),
    ),
    "PPMT": ("numpy_financial, as IPMT", lambda c: _finance(npf.ppmt, True)(*_numbers(c))),
    "CUMIPMT": ("numpy_financial", lambda c: _cumulative(False)(*_numbers(c))),
    "CUMPRINC": ("numpy_financial", lambda c: _cumulative(True)(*_numbers(c))),
    "XIRR": (
        "formulas stops Newton's method at 1e-7",
        lambda c: _xirr(*_numbers(c, strict=True)),
    ),
    "HSTACK": (_STACK_WHY, _stack_sumproduct),
    "HSTACK count": (_STACK_WHY, _stack_count),
    "VSTACK": (_STACK_WHY, _stack_sum),
    "ROWS": ("formulas gives #VALUE! for array constants", lambda c: 4 * 10 + 3.0),
    "COLUMNS": ("formulas gives #VALUE! for array constants", lambda c: 3 * 10 + 2.0),
    "TRANSPOSE": (
        "formulas cannot pass TRANSPOSE to SUMPRODUCT",
        lambda c: float(np.dot(np.arange(1, 7), np.arange(1, 7))),
    ),
    "MMULT": (
        "formulas gives no MMULT inside INDEX",
        lambda c: float(np.sum(np.array([[1, 2], [3, 4]]) @ np.array([[5], [6]]))) + 3.0,
    ),
}


def _multinomial(case: xc.Case, value: dict[str, Any]) -> dict[str, Any]:
    if any("s" in a for a in case.args):
        return {"e": "#VALUE!"}
    return value


def _quartile(case: xc.Case, value: dict[str, Any]) -> dict[str, Any]:
    q = case.args[0]
    if "s" in q and not _numeric_text(q["s"]):
        return {"e": "#VALUE!"}
    return value


def _search_any(case: xc.Case, value: dict[str, Any]) -> dict[str, Any]:
    """SEARCH("*" or "?", text[, start]): the wildcard matches at the start position."""
    needle, hay = case.args[0], case.args[1]
    if needle not in ({"s": "*"}, {"s": "?"}) or "s" not in hay or value != {"e": "#VALUE!"}:
        return value
    start = case.args[2] if len(case.args) > 2 else xc.n(1)
    try:
        k = math.trunc(_number(start))
    except XlError:
        return value
    return {"n": float(k)} if 1 <= k <= len(hay["s"]) else value


def _countif_text(case: xc.Case, value: dict[str, Any]) -> dict[str, Any]:
    """``"<>"&x`` for a logical or non-numeric text x counts every number (8 in nums)."""
    x = case.args[0]
    other = "b" in x or ("s" in x and not _numeric_text(x["s"]))
    if other and "n" in value and value["n"] < 100:
        return {"n": value["n"] + 800.0}
    return value


def _numeric_text(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _lookup_index(case: xc.Case, value: dict[str, Any]) -> dict[str, Any]:
    index = case.args[1]
    if ("n" in index and index["n"] < 1) or ("b" in index and not index["b"]):
        return {"e": "#VALUE!"}
    return value


def _xlookup_text(case: xc.Case, value: dict[str, Any]) -> dict[str, Any]:
    if "s" in case.args[0]:
        return {"n": -3.0}  # text never equals a number: both lookups give their if_not_found
    return value


def _sumproduct_cond(arg: xc.Arg) -> float:
    """SUMPRODUCT(--(nums > arg), vals): a number is below any text or logical value."""
    if "s" in arg or "b" in arg:
        return 0.0
    x = _number(arg)
    return float(sum(v for k, v in zip(_fixture("nums"), _fixture("vals"), strict=True) if k > x))


def _tdist(case: xc.Case, value: dict[str, Any]) -> dict[str, Any]:
    x = case.args[0]
    if "n" in x and x["n"] < 0:
        return {"e": "#NUM!"}
    return value


def _rate(case: xc.Case, value: dict[str, Any]) -> dict[str, Any]:
    """RATE's root above -100% nearest the guess 0.1 where formulas' Newton iteration stops
    without one or below -100% (Brent's method between the sign changes of a fine grid)."""
    if "n" in value and value["n"] <= -1:
        value = {"e": "#NUM!"}
    if value != {"e": "#NUM!"}:
        return value
    try:
        nper, pmt, pv = _numbers(case)
    except XlError:
        return value

    def f(r: float) -> float:
        return pv * (1 + r) ** nper + pmt * ((1 + r) ** nper - 1) / r

    grid = np.concatenate([-1 + np.logspace(-6, 0, 400)[:-1], np.logspace(-6, 7, 1300)])
    with np.errstate(all="ignore"):
        values = np.array([f(r) for r in grid])
    change = np.flatnonzero((values[:-1] * values[1:] <= 0) & np.isfinite(values[:-1] * values[1:]))
    if not change.size:
        return value
    k = change[np.argmin(np.abs(grid[change] - 0.1))]
    return {"n": float(optimize.brentq(f, grid[k], grid[k + 1], xtol=1e-15, rtol=1e-15))}


#: spec → (Excel's documented behaviour that formulas departs from, correction of its value).
CORRECTIONS: dict[str, tuple[str, Callable[[xc.Case, dict[str, Any]], dict[str, Any]]]] = {
    **{
        spec: ("an error or non-numeric text argument is the result", _first_error_then_formulas)
        for spec in ("PV", "FV", "PMT", "NPER")
    },
    "MULTINOMIAL": ("text is nonnumeric: #VALUE!", _multinomial),
    **{
        spec: ("as PERCENTILE: a text q is #VALUE! before the values' errors", _quartile)
        for f in ("QUARTILE", "QUARTILE.INC", "QUARTILE.EXC")
        for spec in (f"{f} nums", f"{f} mixed", f"{f} errs")
    },
    "SEARCH": ("the wildcards * and ? match at the start position", _search_any),
    "SEARCH start": ("as SEARCH", _search_any),
    "COUNTIF text": ('"<>" and a logical or text value counts the numbers too', _countif_text),
    "VLOOKUP": ("an index below 1 is #VALUE!", _lookup_index),
    "HLOOKUP": ("an index below 1 is #VALUE!", _lookup_index),
    "XLOOKUP": ("text never matches numeric keys", _xlookup_text),
    "TDIST": ("TDIST of a negative x is #NUM!", _tdist),
    "RATE": (
        "a rate at or below -100% is #NUM!; where Newton's method from the guess fails, the"
        " root nearest the guess",
        _rate,
    ),
}


def _encode(value: Any) -> dict[str, Any]:
    if isinstance(value, np.ndarray):
        value = value.ravel()[0] if value.size == 1 else value
    if isinstance(value, (bool, np.bool_)):
        return {"b": bool(value)}
    if isinstance(value, str) and str.__str__(value) in ERRORS:  # formulas' XlError too
        return {"e": str.__str__(value)}
    if isinstance(value, str):
        return {"s": value}
    if value is None or str(value) == "empty":
        return {"n": 0.0}
    x = float(value)
    return {"n": x} if math.isfinite(x) else {"e": "#NUM!"}


# formulas reads numeric text inside references as numbers and stops at other text, where
# Excel's SUM, AVERAGE, STDEV... leave text and logical values in references out (and the "A"
# functions count text as 0, TRUE as 1): for those functions the expected values are
# computed by formulas over the same cells with text and logical values blanked (DataN),
# or replaced by the numbers Excel reads (DataA).
IGNORING = {
    "SUM", "AVERAGE", "MIN", "MAX", "PRODUCT", "SUMSQ", "COUNT", "MEDIAN", "MODE",
    "MODE.SNGL", "STDEV", "STDEV.S", "STDEV.P", "STDEVP", "VAR", "VAR.S", "VAR.P", "VARP",
    "DEVSQ", "AVEDEV", "GEOMEAN", "HARMEAN", "SKEW", "SKEW.P", "KURT", "LARGE", "SMALL",
    "PERCENTILE", "PERCENTILE.INC", "PERCENTILE.EXC", "QUARTILE", "QUARTILE.INC",
    "QUARTILE.EXC", "TRIMMEAN", "NPV", "SUMIF", "SUMPRODUCT",
}  # fmt: skip
COUNTING = {"AVERAGEA", "MINA", "MAXA", "STDEVA", "STDEVPA", "VARA", "VARPA"}
#: Argument positions that are aggregated values (the others are scalars: k, p, rate...).
VALUE_ARGS = {"NPV": (1, 2)}


def _excel_reading(arg: xc.Arg, counting: bool) -> xc.Arg:
    if "s" in arg:
        return xc.n(0) if counting else xc.BLANK
    if "b" in arg:
        return xc.n(1 if arg["b"] else 0) if counting else xc.BLANK
    return arg


def _blank_zero(arg: xc.Arg) -> xc.Arg:
    """A blank scalar argument (k, p) is 0 to Excel; formulas reads #VALUE!."""
    return xc.n(0) if "blank" in arg else arg


def _value_positions(case: xc.Case) -> tuple[int, ...]:
    """Which arguments of the case are values of the aggregate (the rest are k, p, rates)."""
    if case.function in VALUE_ARGS:
        return VALUE_ARGS[case.function]
    scalar_args = ("LARGE", "SMALL", "TRIMMEAN", "PERCENTILE", "QUARTILE", "SUMIF", "SUMPRODUCT")
    if case.function.startswith(scalar_args):
        return ()
    return tuple(range(len(case.args)))


# formulas reads numeric text as a date of the current month in date functions (Excel reads
# "3" as serial 3) and an empty cell as an error in YEARFRAC (Excel reads 0).
DATES = {
    "EDATE",
    "EOMONTH",
    "YEARFRAC",
    "DAYS360",
    "DAYS",
    "DATEDIF",
    "WEEKDAY",
    "YEAR",
    "MONTH",
    "DAY",
}


def _date_args(case: xc.Case) -> xc.Case:
    def fixed(arg: xc.Arg) -> xc.Arg:
        if "s" in arg and arg["s"] == "3":
            return xc.n(3)
        return xc.n(0) if "blank" in arg and case.function == "YEARFRAC" else arg

    return xc.Case(case.function, case.template, tuple(map(fixed, case.args)), case.spec)


def _as_excel_reads(case: xc.Case) -> xc.Case:
    """The case with its referenced text and logical values as Excel's aggregate reads them."""
    if case.function in DATES:
        return _date_args(case)
    if case.function not in IGNORING | COUNTING:
        return case
    counting = case.function in COUNTING
    positions = _value_positions(case)
    args = tuple(
        _excel_reading(a, counting) if i in positions else _blank_zero(a)
        for i, a in enumerate(case.args)
    )
    sheet = "DataA" if counting else "DataN"
    return xc.Case(case.function, case.template.replace("Data!", f"{sheet}!"), args, case.spec)


def _data_variant(counting: bool) -> dict[tuple[int, int], object]:
    from services.engine.formula import column_number

    cells: dict[tuple[int, int], object] = {}
    for block in xc.BLOCKS.values():
        col = column_number(block.col)
        for i, arg in enumerate(block.values, start=1):
            content = xc.cell_content(_excel_reading(arg, counting), "constant")
            if content is not None:
                cells[(i, col)] = content
    return cells


def _workbook(cases: list[xc.Case], directory: Path) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Cases"
    sheets = [
        (ws, xc.case_cells([_as_excel_reads(c) for c in cases], "constant")),
        (wb.create_sheet("Data"), xc.data_cells("constant")),
        (wb.create_sheet("DataN"), _data_variant(counting=False)),
        (wb.create_sheet("DataA"), _data_variant(counting=True)),
    ]
    for sheet, cells in sheets:
        for (row, col), content in cells.items():
            sheet.cell(row, col, content.text if isinstance(content, Formula) else content)
    path = directory / "cases.xlsx"
    wb.save(path)
    return path


def _formulas_values(path: Path, count: int) -> dict[int, dict[str, Any]]:
    import formulas

    solution = formulas.ExcelModel().loads(str(path)).finish().calculate()
    values = {}
    for key, result in solution.items():
        m = re.fullmatch(r"'\[[^\]]+\]CASES'!B([0-9]+)", key)
        if m:
            values[int(m[1])] = _encode(result.value)
    for row in range(1, count + 1):  # a formula formulas cannot parse has no value
        values.setdefault(row, {"unparsed": True})
    return values


def main() -> None:
    warnings.filterwarnings("ignore")
    cases = xc.cases()
    with tempfile.TemporaryDirectory() as tmp:
        found = _formulas_values(_workbook(cases, Path(tmp)), len(cases))
    out = []
    for row, case in enumerate(cases, start=1):
        expected, reference = found[row], "formulas"
        if "unparsed" in expected and case.function in ("ISEVEN", "ISODD"):
            # formulas raises on non-numeric text; Excel documents #VALUE! for it
            expected, reference = {"e": "#VALUE!"}, "excel: nonnumeric text is #VALUE!"
        elif "unparsed" in expected and case.spec not in REFERENCES:
            raise SystemExit(f"formulas cannot compute {case.formula(row)} ({case.function})")
        if case.spec in REFERENCES:
            why, compute = REFERENCES[case.spec]
            try:
                expected = _encode(compute(case))
            except XlError as err:
                expected = {"e": err.code}
            reference = f"python: {why}"
        elif case.spec in CORRECTIONS:
            why, correct = CORRECTIONS[case.spec]
            corrected = correct(case, expected)
            if corrected != expected:
                expected, reference = corrected, f"excel: {why}"
        out.append(
            {
                "function": case.function,
                "template": case.template,
                "args": list(case.args),
                "expected": expected,
                "reference": reference,
            }
        )
    OUT.write_text(json.dumps({"cases": out}, indent=0, sort_keys=True) + "\n")
    print(f"wrote {len(out)} cases to {OUT}")


if __name__ == "__main__":
    main()
