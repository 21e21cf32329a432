"""The cases of the Excel differential tests, and the workbook they are laid out in.

Each case is one formula of one function over argument cells: random arguments drawn from
the function's domains (a seeded generator, so the cases are fixed), and edge cases where
one argument is replaced by a blank, numeric text, other text, a logical value or an error.
Functions over ranges read the fixture blocks of the ``Data`` sheet.

The same layout serves both sides: ``tests/data/make_excel_expected.py`` writes it as an
.xlsx for the independent ``formulas`` engine (and asks SciPy, numpy_financial or Python for
the functions ``formulas`` lacks), and the tests build it as an engine ``Book`` in two
modes: ``constant`` (every argument a constant: the engine folds each case at compile time)
and ``uncertain`` (every numeric argument a ``RiskDiscrete`` that always draws that value,
so each case is computed per trial by the back ends).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from services.engine.formula import Formula

# --- arguments ----------------------------------------------------------------------------------

#: An argument value as stored in the JSON: {"n": 1.5} {"b": true} {"s": "x"} {"blank": true}
#: {"e": "#N/A"}.
Arg = dict[str, Any]

BLANK: Arg = {"blank": True}
_ERROR_FORMULAS = {
    "#N/A": ("NA()", "RiskDiscrete({{1}},{{1}})*0+NA()"),
    "#DIV/0!": ("1/0", "RiskDiscrete({{1}},{{1}})/0"),
    "#NUM!": ("SQRT(-1)", "SQRT(-RiskDiscrete({{1}},{{1}}))"),
    "#VALUE!": ('"a"+1', 'RiskDiscrete({{1}},{{1}})+"a"'),
}


def n(x: float) -> Arg:
    return {"n": float(x)}


def s(text: str) -> Arg:
    return {"s": text}


def b(flag: bool) -> Arg:
    return {"b": flag}


def e(code: str) -> Arg:
    return {"e": code}


EDGES: tuple[Arg, ...] = (BLANK, s("3"), s("abc"), b(True), b(False), e("#N/A"), e("#DIV/0!"))


def cell_content(arg: Arg, mode: str) -> object:
    """What the argument's cell holds in ``mode`` (``constant`` or ``uncertain``)."""
    if "blank" in arg:
        return None
    if "s" in arg:
        return arg["s"]
    if "e" in arg:
        constant, uncertain = _ERROR_FORMULAS[arg["e"]]
        return Formula("=" + (constant if mode == "constant" else uncertain.format()))
    if "b" in arg:
        if mode == "constant":
            return bool(arg["b"])
        return Formula("=RiskDiscrete({1},{1})" + (">0" if arg["b"] else "<0"))
    x = float(arg["n"])
    if mode == "constant":
        return x
    return Formula(f"=RiskDiscrete({{{x!r}}},{{1}})")


# --- the Data sheet ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """A fixture block: values down column ``col`` from row 1; ``fixed`` blocks stay constant
    in uncertain mode (holiday lists, the tables of functions that need them constant)."""

    col: str
    values: tuple[Arg, ...]
    fixed: bool = False

    @property
    def ref(self) -> str:
        return f"Data!${self.col}$1:${self.col}${len(self.values)}"


_DATES = (45000.0, 45031.0, 45100.0, 45292.0, 45400.0, 45500.0)
BLOCKS: dict[str, Block] = {
    "nums": Block("A", tuple(n(v) for v in (3, -1.5, 0, 7.25, 2, 10, -4, 2))),
    "mixed": Block("B", (n(1), s("x"), BLANK, b(True), n(4.5), s("3"), n(-2), n(2))),
    "errs": Block("C", (n(1), n(2), e("#DIV/0!"), n(4), n(5))),
    "keys": Block("D", tuple(n(v) for v in (1, 2, 3, 5, 8, 13, 21, 34))),
    "vals": Block("E", tuple(n(v) for v in (10, 20, 30, 40, 50, 60, 70, 80))),
    "text": Block("F", tuple(s(t) for t in ("apple", "Banana", "cherry", "date", "elder"))),
    "holidays": Block("G", tuple(n(v) for v in (45005, 45017, 45292, 45294)), fixed=True),
    "flows": Block("H", tuple(n(v) for v in (-1000, 200, 300, 400, 500, 100))),
    "dates": Block("I", tuple(n(v) for v in _DATES)),
    "pos": Block("J", tuple(n(v) for v in (2.5, 1, 4, 8, 0.5, 3))),
    "ys": Block("K", tuple(n(v) for v in (2.1, 3.9, 6.2, 7.8, 10.1, 12.2))),
    "xs": Block("L", tuple(n(v) for v in (1, 2, 3, 4, 5, 6))),
    "rates": Block("M", tuple(n(v) for v in (0.05, 0.04, 0.06, -0.01))),
    "desc": Block("N", tuple(n(v) for v in (50, 40, 30, 20, 10))),
    "flags": Block("O", (n(1), n(2), n(1), s("a"), n(2), n(3), BLANK, n(1))),
    "twod": Block("P", tuple(n(v) for v in (1, 2, 3, 4))),
    "twod2": Block("Q", tuple(n(v) for v in (10, 20, 30, 40))),
    "twod3": Block("R", tuple(n(v) for v in (100, 200, 300, 400))),
}
TABLE = "Data!$P$1:$R$4"  # a 4x3 numeric table: keys 1-4, then two value columns


def data_cells(mode: str) -> dict[tuple[int, int], object]:
    """The Data sheet's cells in ``mode``."""
    from services.engine.formula import column_number

    cells: dict[tuple[int, int], object] = {}
    for block in BLOCKS.values():
        col = column_number(block.col)
        for i, arg in enumerate(block.values, start=1):
            content = cell_content(arg, "constant" if block.fixed else mode)
            if content is not None:
                cells[(i, col)] = content
    return cells


# --- cases -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One formula: ``template`` with ``{0}``, ``{1}``... standing for the argument cells;
    ``spec`` is the key of its entry in :data:`SPECS`."""

    function: str
    template: str
    args: tuple[Arg, ...]
    spec: str = ""

    def formula(self, row: int) -> str:
        """The formula of the case in row ``row`` (arguments in columns C, D, ...)."""
        refs = [f"{chr(ord('C') + i)}{row}" for i in range(len(self.args))]
        return "=" + self.template.format(*refs)


def _draw(r: random.Random, domain: str) -> Arg:
    special = r.random() < 0.15
    if domain == "x":
        return n(
            r.choice((0, -1, 1, 2.5, -2.5, 1e6, -1e-6, 123.456))
            if special
            else round(r.uniform(-10, 10), 4)
        )
    if domain == "pos":
        return n(r.choice((0.001, 1, 100, 1e8)) if special else round(r.uniform(0.1, 10), 4))
    if domain == "prob":
        return n(r.choice((0.001, 0.5, 0.999)) if special else round(r.uniform(0.01, 0.99), 4))
    if domain == "int":
        return n(r.choice((0, 1, 50)) if special else r.randint(0, 20))
    if domain == "small":
        return n(r.randint(1, 5))
    if domain == "rate":
        return n(r.choice((0, 0.1, 0.005)) if special else round(r.uniform(-0.03, 0.2), 4))
    if domain == "periods":
        return n(r.randint(1, 40))
    if domain == "money":
        return n(round(r.uniform(-5000, 5000), 2))
    if domain == "date":
        return n(
            r.choice((1, 59, 60, 61, 36526, 43831, 2958465)) if special else r.randint(1, 55000)
        )
    if domain == "flag":
        return r.choice((b(True), b(False), n(0), n(1)))
    if domain == "angle":
        return n(round(r.uniform(-6.3, 6.3), 4))
    if domain == "unit":
        return n(round(r.uniform(-0.999, 0.999), 4))
    if domain == "digits":
        return n(r.randint(-3, 4))
    if domain == "sig":
        return n(r.choice((1, 0.5, 2, -2, 0.1, 5, 3)))
    if domain == "df":
        return n(r.randint(1, 30))
    if domain == "time":
        return n(round(r.uniform(0, 3), 6))
    if domain == "hms":
        return n(r.randint(0, 70))
    if domain == "dist_x":
        return n(round(r.uniform(0, 5), 4))
    if domain == "str":
        return s(r.choice(_STRINGS))
    if domain == "needle":
        return s(r.choice(("a", "an", "A", "p", "*", "?", "o W", "zz", "1", "~*")))
    raise ValueError(domain)


_STRINGS = (
    "apple pie", "  Hello   World ", "ABC", "a*b?c", "x", "3.5", "Ünïcode café",
    "banana", "it's O'Neil", "mixed CASE words", "100", "a-b_c d.e",
)  # fmt: skip


#: function → (template, argument domains); edge cases replace one argument at a time.
SPECS: dict[str, tuple[str, tuple[str, ...]]] = {}


def _spec(function: str, template: str, *domains: str) -> None:
    SPECS[function] = (template, domains)


for _f, _d in {
    "ABS": "x",
    "SIN": "angle",
    "COS": "angle",
    "TAN": "angle",
    "ASIN": "unit",
    "ACOS": "unit",
    "ATAN": "x",
    "SINH": "x",
    "COSH": "x",
    "TANH": "x",
    "ASINH": "x",
    "ACOSH": "pos",
    "ATANH": "unit",
    "COT": "angle",
    "CSC": "angle",
    "SEC": "angle",
    "COTH": "x",
    "CSCH": "x",
    "SECH": "x",
    "ACOT": "x",
    "ACOTH": "x",
    "DEGREES": "x",
    "RADIANS": "x",
    "SQRTPI": "pos",
    "EXP": "x",
    "LN": "pos",
    "LOG10": "pos",
    "SQRT": "x",
    "INT": "x",
    "SIGN": "x",
    "EVEN": "x",
    "ODD": "x",
    "FACT": "int",
    "FACTDOUBLE": "int",
    "GAMMALN": "pos",
    "GAMMALN.PRECISE": "pos",
    "GAMMA": "x",
    "ERF.PRECISE": "x",
    "ERFC": "x",
    "ERFC.PRECISE": "x",
    "PHI": "x",
    "GAUSS": "x",
    "FISHER": "unit",
    "FISHERINV": "x",
    "NORMSDIST": "x",
    "NORM.S.INV": "prob",
    "NORMSINV": "prob",
    "YEAR": "date",
    "MONTH": "date",
    "DAY": "date",
    "HOUR": "time",
    "MINUTE": "time",
    "SECOND": "time",
    "ISEVEN": "x",
    "ISODD": "x",
    "N": "x",
    "ISNUMBER": "x",
    "ISERROR": "x",
    "ISERR": "x",
    "ISNA": "x",
    "ISBLANK": "x",
    "ISTEXT": "x",
    "ISNONTEXT": "x",
    "ISLOGICAL": "flag",
    "ERROR.TYPE": "x",
    "NOT": "flag",
}.items():
    _spec(_f, _f + "({0})", _d)

for _f, _d in {
    "ATAN2": ("x", "x"),
    "POWER": ("x", "x"),
    "MOD": ("x", "x"),
    "QUOTIENT": ("x", "x"),
    "ROUND": ("x", "digits"),
    "ROUNDUP": ("x", "digits"),
    "ROUNDDOWN": ("x", "digits"),
    "TRUNC": ("x", "digits"),
    "MROUND": ("x", "sig"),
    "CEILING": ("x", "sig"),
    "FLOOR": ("x", "sig"),
    "CEILING.MATH": ("x", "sig"),
    "FLOOR.MATH": ("x", "sig"),
    "CEILING.PRECISE": ("x", "sig"),
    "FLOOR.PRECISE": ("x", "sig"),
    "ISO.CEILING": ("x", "sig"),
    "LOG": ("pos", "pos"),
    "COMBIN": ("int", "int"),
    "COMBINA": ("int", "int"),
    "PERMUT": ("int", "int"),
    "PERMUTATIONA": ("int", "int"),
    "NORM.S.DIST": ("x", "flag"),
    "EDATE": ("date", "x"),
    "EOMONTH": ("date", "x"),
    "DAYS": ("date", "date"),
    "DAYS360": ("date", "date"),
    "WEEKDAY": ("date", "small"),
    "YEARFRAC": ("date", "date"),
    "EFFECT": ("rate", "periods"),
    "NOMINAL": ("rate", "periods"),
    "T.DIST.RT": ("x", "df"),
    "T.DIST.2T": ("x", "df"),
    "T.INV": ("prob", "df"),
    "T.INV.2T": ("prob", "df"),
    "TINV": ("prob", "df"),
    "CHISQ.DIST.RT": ("dist_x", "df"),
    "CHIDIST": ("dist_x", "df"),
    "CHISQ.INV": ("prob", "df"),
    "CHISQ.INV.RT": ("prob", "df"),
    "CHIINV": ("prob", "df"),
    "IFERROR": ("x", "x"),
    "IFNA": ("x", "x"),
    "ERF": ("x", "x"),
}.items():
    _spec(_f, _f + "({0},{1})", *_d)

for _f, _d in {
    "NORM.INV": ("prob", "x", "pos"),
    "NORMINV": ("prob", "x", "pos"),
    "LOGNORM.INV": ("prob", "x", "pos"),
    "LOGINV": ("prob", "x", "pos"),
    "LOGNORMDIST": ("pos", "x", "pos"),
    "EXPON.DIST": ("dist_x", "pos", "flag"),
    "EXPONDIST": ("dist_x", "pos", "flag"),
    "GAMMA.INV": ("prob", "pos", "pos"),
    "GAMMAINV": ("prob", "pos", "pos"),
    "BETA.INV": ("prob", "pos", "pos"),
    "BETAINV": ("prob", "pos", "pos"),
    "BETADIST": ("prob", "pos", "pos"),
    "BINOM.INV": ("int", "prob", "prob"),
    "CRITBINOM": ("int", "prob", "prob"),
    "POISSON.DIST": ("int", "pos", "flag"),
    "POISSON": ("int", "pos", "flag"),
    "T.DIST": ("x", "df", "flag"),
    "TDIST": ("x", "df", "small"),
    "CHISQ.DIST": ("dist_x", "df", "flag"),
    "F.DIST.RT": ("dist_x", "df", "df"),
    "FDIST": ("dist_x", "df", "df"),
    "F.INV": ("prob", "df", "df"),
    "F.INV.RT": ("prob", "df", "df"),
    "FINV": ("prob", "df", "df"),
    "STANDARDIZE": ("x", "x", "pos"),
    "CONFIDENCE.NORM": ("prob", "pos", "periods"),
    "CONFIDENCE": ("prob", "pos", "periods"),
    "CONFIDENCE.T": ("prob", "pos", "periods"),
    "NEGBINOMDIST": ("int", "small", "prob"),
    "DATE": ("int", "x", "x"),
    "TIME": ("hms", "hms", "hms"),
    "SLN": ("money", "money", "periods"),
    "PDURATION": ("rate", "pos", "pos"),
    "RRI": ("periods", "pos", "pos"),
    "DAYS360 ": ("date", "date", "flag"),
    "IF": ("flag", "x", "x"),
    "YEARFRAC ": ("date", "date", "small"),
}.items():
    _spec(_f, _f.strip() + "({0},{1},{2})", *_d)

for _f, _d in {
    "NORM.DIST": ("x", "x", "pos", "flag"),
    "NORMDIST": ("x", "x", "pos", "flag"),
    "LOGNORM.DIST": ("pos", "x", "pos", "flag"),
    "GAMMA.DIST": ("dist_x", "pos", "pos", "flag"),
    "GAMMADIST": ("dist_x", "pos", "pos", "flag"),
    "BETA.DIST": ("prob", "pos", "pos", "flag"),
    "BINOM.DIST": ("int", "int", "prob", "flag"),
    "BINOMDIST": ("int", "int", "prob", "flag"),
    "NEGBINOM.DIST": ("int", "small", "prob", "flag"),
    "WEIBULL.DIST": ("dist_x", "pos", "pos", "flag"),
    "WEIBULL": ("dist_x", "pos", "pos", "flag"),
    "F.DIST": ("dist_x", "df", "df", "flag"),
    "HYPGEOMDIST": ("small", "int", "int", "int"),
    "SYD": ("money", "money", "periods", "periods"),
    "ISPMT": ("rate", "periods", "periods", "money"),
    "DB": ("pos", "pos", "periods", "periods"),
    "DDB": ("pos", "pos", "periods", "periods"),
}.items():
    _spec(_f, _f + "({0},{1},{2},{3})", *_d)

_spec("HYPGEOM.DIST", "HYPGEOM.DIST({0},{1},{2},{3},{4})", "small", "int", "int", "int", "flag")
_spec("PV", "PV({0},{1},{2},{3},{4})", "rate", "periods", "money", "money", "flag")
_spec("FV", "FV({0},{1},{2},{3},{4})", "rate", "periods", "money", "money", "flag")
_spec("PMT", "PMT({0},{1},{2},{3},{4})", "rate", "periods", "money", "money", "flag")
_spec("NPER", "NPER({0},{1},{2},{3},{4})", "rate", "money", "money", "money", "flag")
_spec(
    "IPMT", "IPMT({0},{1},{2},{3},{4},{5})", "rate", "periods", "periods", "money", "money", "flag"
)
_spec(
    "PPMT", "PPMT({0},{1},{2},{3},{4},{5})", "rate", "periods", "periods", "money", "money", "flag"
)
_spec(
    "CUMIPMT",
    "CUMIPMT({0},{1},{2},{3},{4},{5})",
    "rate",
    "periods",
    "money",
    "periods",
    "periods",
    "flag",
)
_spec(
    "CUMPRINC",
    "CUMPRINC({0},{1},{2},{3},{4},{5})",
    "rate",
    "periods",
    "money",
    "periods",
    "periods",
    "flag",
)
_spec("RATE", "RATE({0},{1},{2})", "periods", "money", "money")
_spec("DB ", "DB({0},{1},{2},{3},{4})", "pos", "pos", "periods", "periods", "small")
_spec("DDB ", "DDB({0},{1},{2},{3},{4})", "pos", "pos", "periods", "periods", "pos")
_spec("GCD", "GCD({0},{1},{2})", "int", "int", "int")
_spec("LCM", "LCM({0},{1},{2})", "int", "int", "int")
_spec("MULTINOMIAL", "MULTINOMIAL({0},{1},{2})", "small", "small", "small")
_spec(
    "DATEDIF",
    'DATEDIF({0},{1},"Y")+100*DATEDIF({0},{1},"M")+10000*DATEDIF({0},{1},"YD")',
    "date",
    "date",
)
_spec(
    "DATEDIF ",
    'DATEDIF({0},{1},"MD")+100*DATEDIF({0},{1},"YM")+10000*DATEDIF({0},{1},"D")',
    "date",
    "date",
)
_spec("IFS", "IFS({0}>0,{1},{0}<0,{2})", "x", "x", "x")
_spec("SWITCH", "SWITCH({0},1,{1},2,{2},-1)", "small", "x", "x")
_spec("XOR", "XOR({0},{1},{2})", "flag", "flag", "flag")
_spec("AND", "AND({0},{1},{2})", "flag", "flag", "flag")
_spec("OR", "OR({0},{1},{2})", "flag", "flag", "flag")
_spec("CHOOSE", "CHOOSE({0},{1},{2},7)", "small", "x", "x")
_spec("PRODUCT", "PRODUCT({0},{1},{2})", "x", "x", "x")
_spec("SUMSQ", "SUMSQ({0},{1},{2})", "x", "x", "x")
_spec("SUM", "SUM({0},{1},{2})", "x", "x", "x")
_spec("AVERAGE", "AVERAGE({0},{1},{2})", "x", "x", "x")
_spec("MAX", "MAX({0},{1},{2})", "x", "x", "x")
_spec("MIN", "MIN({0},{1},{2})", "x", "x", "x")
_spec("COUNT", "COUNT({0},{1},{2})", "x", "x", "x")
_spec("COUNTA", "COUNTA({0},{1},{2})", "x", "x", "x")

# range functions: fixture blocks and random scalar arguments
_R = {k: v.ref for k, v in BLOCKS.items()}
for _f in (
    "SUM",
    "AVERAGE",
    "MIN",
    "MAX",
    "PRODUCT",
    "SUMSQ",
    "COUNT",
    "COUNTA",
    "MEDIAN",
    "MODE",
    "MODE.SNGL",
    "STDEV",
    "STDEV.S",
    "STDEV.P",
    "STDEVP",
    "VAR",
    "VAR.S",
    "VAR.P",
    "VARP",
    "DEVSQ",
    "AVEDEV",
    "GEOMEAN",
    "HARMEAN",
    "SKEW",
    "SKEW.P",
    "KURT",
    "AVERAGEA",
    "MINA",
    "MAXA",
    "STDEVA",
    "STDEVPA",
    "VARA",
    "VARPA",
):
    for _block in ("nums", "mixed", "errs", "pos"):
        _spec(f"{_f} {_block}", f"{_f}({_R[_block]},{{0}})", "x")
_spec("COUNTBLANK", f"COUNTBLANK({_R['mixed']})+10*COUNTBLANK({_R['flags']})+{{0}}", "x")
for _f, _dom in (
    ("LARGE", "small"),
    ("SMALL", "small"),
    ("PERCENTILE", "prob"),
    ("PERCENTILE.INC", "prob"),
    ("PERCENTILE.EXC", "prob"),
    ("QUARTILE", "small"),
    ("QUARTILE.INC", "small"),
    ("QUARTILE.EXC", "small"),
    ("TRIMMEAN", "prob"),
):
    for _block in ("nums", "mixed", "errs"):
        _spec(f"{_f} {_block}", f"{_f}({_R[_block]},{{0}})", _dom)
for _f in ("RANK", "RANK.EQ", "RANK.AVG"):
    _spec(f"{_f} nums", f"{_f}({{0}},{_R['nums']},{{1}})", "small", "flag")
    _spec(f"{_f} keys", f"{_f}({{0}},{_R['keys']})", "int")
for _f in ("PERCENTRANK", "PERCENTRANK.INC", "PERCENTRANK.EXC"):
    _spec(f"{_f} nums", f"{_f}({_R['nums']},{{0}},{{1}})", "x", "small")
for _f in (
    "CORREL",
    "PEARSON",
    "COVAR",
    "COVARIANCE.P",
    "COVARIANCE.S",
    "SLOPE",
    "INTERCEPT",
    "RSQ",
    "STEYX",
    "SUMX2MY2",
    "SUMX2PY2",
    "SUMXMY2",
):
    _spec(f"{_f} ys", f"{_f}({_R['ys']},{_R['xs']})+{{0}}", "x")
    _spec(f"{_f} mixed", f"{_f}({_R['mixed']},{_R['nums']})+{{0}}", "x")
for _f in ("FORECAST", "FORECAST.LINEAR"):
    _spec(_f, f"{_f}({{0}},{_R['ys']},{_R['xs']})", "x")
_spec("SUMPRODUCT", f"SUMPRODUCT({_R['ys']},{_R['xs']})*{{0}}", "x")
_spec("SUMPRODUCT mixed", f"SUMPRODUCT({_R['mixed']},{_R['nums']})+{{0}}", "x")
_spec("SUMPRODUCT cond", f"SUMPRODUCT(--({_R['nums']}>{{0}}),{_R['vals']})", "x")
_spec("NPV", f"NPV({{0}},{_R['flows']})+NPV({{0}},{{1}},{{2}})", "rate", "money", "money")
_spec("IRR", f"IRR({_R['flows']},{{0}})", "rate")
_spec("MIRR", f"MIRR({_R['flows']},{{0}},{{1}})", "rate", "rate")
_spec("XNPV", f"XNPV({{0}},{_R['flows']},{_R['dates']})", "pos")
_spec("XIRR", f"XIRR({_R['flows']},{_R['dates']},{{0}})", "rate")
_spec("FVSCHEDULE", f"FVSCHEDULE({{0}},{_R['rates']})", "money")
_spec("NETWORKDAYS", f"NETWORKDAYS({{0}},{{1}},{_R['holidays']})", "date", "date")
_spec("NETWORKDAYS ", "NETWORKDAYS({0},{1})", "date", "date")
_spec("WORKDAY", f"WORKDAY({{0}},{{1}},{_R['holidays']})", "date", "x")
_spec("WORKDAY ", "WORKDAY({0},{1})", "date", "x")
_spec("COUNTIF", f'COUNTIF({_R["nums"]},">"&{{0}})+10*COUNTIF({_R["mixed"]},{{0}})', "x")
_spec(
    "COUNTIF text",
    f'COUNTIF({_R["text"]},"<"&{{0}})+10*COUNTIF({_R["text"]},"*a*")+100*COUNTIF({_R["nums"]},"<>"&{{0}})',
    "x",
)
_spec("SUMIF", f'SUMIF({_R["nums"]},">="&{{0}},{_R["vals"]})+SUMIF({_R["mixed"]},"<>2")', "x")
_spec("AVERAGEIF", f'AVERAGEIF({_R["nums"]},"<"&{{0}},{_R["vals"]})', "x")
_spec("COUNTIFS", f'COUNTIFS({_R["nums"]},">"&{{0}},{_R["keys"]},"<"&{{1}})', "x", "int")
_spec("SUMIFS", f'SUMIFS({_R["vals"]},{_R["nums"]},">"&{{0}},{_R["keys"]},"<"&{{1}})', "x", "int")
_spec(
    "AVERAGEIFS",
    f'AVERAGEIFS({_R["vals"]},{_R["nums"]},"<="&{{0}},{_R["keys"]},">"&{{1}})',
    "x",
    "int",
)
_spec("MAXIFS", f'MAXIFS({_R["vals"]},{_R["nums"]},">"&{{0}},{_R["keys"]},"<"&{{1}})', "x", "int")
_spec("MINIFS", f'MINIFS({_R["vals"]},{_R["nums"]},"<"&{{0}},{_R["keys"]},">"&{{1}})', "x", "int")
_spec("MATCH", f"MATCH({{0}},{_R['keys']},1)+100*MATCH({{1}},{_R['keys']},0)", "x", "int")
_spec("MATCH desc", f"MATCH({{0}},{_R['desc']},-1)", "x")
_spec("MATCH text", f'MATCH({{0}},{_R["text"]},0)+10*MATCH("b*",{_R["text"]},0)', "x")
_spec("XMATCH", f"XMATCH({{0}},{_R['keys']},-1)+100*XMATCH({{0}},{_R['keys']},1)", "x")
_spec("XMATCH rev", f"XMATCH({{0}},{_R['flags']},0,-1)", "small")
_spec("VLOOKUP", f"VLOOKUP({{0}},{TABLE},2)+VLOOKUP({{1}},{TABLE},3,FALSE)", "x", "small")
_spec("HLOOKUP", "HLOOKUP({0},{{1,2,3;10,20,30;100,200,300}},{1})", "x", "small")
_spec(
    "XLOOKUP",
    f"XLOOKUP({{0}},{_R['keys']},{_R['vals']},-1)+XLOOKUP({{0}},{_R['keys']},{_R['vals']},-2,-1)",
    "x",
)
_spec("XLOOKUP next", f"XLOOKUP({{0}},{_R['keys']},{_R['vals']},0,1)", "x")
_spec("LOOKUP", f"LOOKUP({{0}},{_R['keys']},{_R['vals']})", "x")
_spec("INDEX", f"INDEX({TABLE},{{0}},{{1}})", "small", "small")
_spec("INDEX row", f"INDEX({_R['vals']},{{0}})", "int")
_spec("HSTACK", "SUMPRODUCT(HSTACK({0},{1},{2}),{{1,2,3}})", "x", "x", "x")
_spec("HSTACK pad", "INDEX(HSTACK({{1;2}},{0}),{1},2)", "x", "small")
_spec("HSTACK count", "COUNT(HSTACK({0},{1}))+10*COUNTA(HSTACK({0},{1}))", "x", "x")
_spec(
    "VSTACK",
    f"SUM(VSTACK({{0}},{{1}},{_R['nums']}))+100*COUNT(VSTACK({{0}},{_R['nums']}))",
    "x",
    "x",
)
_spec("VSTACK pad", "INDEX(VSTACK({{1,2}},{0}),2,{1})", "x", "small")
_spec("ROW", f"ROW({_R['vals']})+ROW()*0+{{0}}", "x")
_spec("COLUMN", f"COLUMN({TABLE})+{{0}}", "x")
_spec("OFFSET", "SUM(OFFSET(Data!$A$1,{0},0,3,1))", "small")
_spec("INDIRECT", 'INDIRECT("Data!A"&{0})', "small")
_spec("TRUE", "TRUE()+{0}", "x")
_spec("FALSE", "FALSE()+{0}", "x")
_spec("NA", "IFNA(NA(),{0})", "x")
_spec("PI", "PI()*{0}", "x")
_spec("VALUE", 'VALUE("1,234.5")+VALUE("5%")+VALUE({0})', "x")
_spec("NUMBERVALUE", "NUMBERVALUE({0})", "x")
_spec("LEN", 'LEN("abc")+LEN({0})', "x")
_spec("LEN text", "LEN({0})", "str")
for _f in ("LEFT", "RIGHT"):
    _spec(_f, f"{_f}({{0}},{{1}})", "str", "small")
    _spec(f"{_f} one", f"{_f}({{0}})", "str")
    _spec(f"{_f} number", f"{_f}({{0}},{{1}})", "money", "small")
_spec("MID", "MID({0},{1},{2})", "str", "small", "small")
_spec("MID number", "MID({0},{1},{2})", "money", "small", "small")
for _f in ("UPPER", "LOWER", "PROPER", "TRIM", "T"):
    _spec(_f, f"{_f}({{0}})", "str")
_spec("EXACT", "EXACT({0},{1})", "str", "str")
_spec("EXACT case", "EXACT({0},UPPER({0}))", "str")
for _f in ("FIND", "SEARCH"):
    _spec(_f, f"{_f}({{0}},{{1}})", "needle", "str")
    _spec(f"{_f} start", f"{_f}({{0}},{{1}},{{2}})", "needle", "str", "small")
_spec("SUBSTITUTE", "SUBSTITUTE({0},{1},{2})", "str", "needle", "str")
_spec("SUBSTITUTE nth", "SUBSTITUTE({0},{1},{2},{3})", "str", "needle", "needle", "small")
_spec("REPT", "REPT({0},{1})", "needle", "small")
_spec("CONCATENATE", "CONCATENATE({0},{1},{2})", "str", "money", "str")
_spec("CONCAT", "CONCAT({0},{1},{2})", "str", "money", "str")
_spec("CONCAT range", f"CONCAT({_R['text']},{{0}})", "str")
_spec("DATEVALUE", 'DATEVALUE("2024-01-31")+DATEVALUE("3/15/2023")+0*{0}', "x")
_spec("TIMEVALUE", 'TIMEVALUE("12:30")+TIMEVALUE("6:45 PM")+0*{0}', "x")

#: Functions checked only against Python's own arithmetic (``formulas`` lacks or gets them
#: wrong for reasons documented in the generator) or whose result is an array.
ARRAY_CASES: dict[str, str] = {
    "ROWS": f"ROWS({TABLE})*10+ROWS({{{{1,2;3,4;5,6}}}})",
    "COLUMNS": f"COLUMNS({TABLE})*10+COLUMNS({{{{1,2;3,4;5,6}}}})",
    "TRANSPOSE": f"SUMPRODUCT(TRANSPOSE({_R['xs']}),{{{{1,2,3,4,5,6}}}})",
    "MMULT": "SUM(MMULT({{1,2;3,4}},{{5;6}}))+INDEX(MMULT({{1,2;3,4}},{{1,0;0,1}}),2,1)",
}

#: Edges a spec leaves out: a blank row or column number of INDEX selects a whole column or
#: row, an array in one cell (Excel intersects it with the cell's row; the engine takes the
#: first value and warns); text picked at a per-trial position (text per trial does not exist:
#: the engine refuses it naming the cell).
NO_EDGES: dict[str, tuple[Arg, ...]] = {
    "INDEX": (BLANK,),
    "INDEX row": (BLANK,),
    "HSTACK pad": (BLANK, s("3"), s("abc")),
    "VSTACK pad": (BLANK, s("3"), s("abc")),
}
RANDOM_CASES = 8
EDGES_PER_ARG = 2


def cases() -> list[Case]:
    """Every case, in a fixed order."""
    out: list[Case] = []
    for key in sorted(SPECS):
        template, domains = SPECS[key]
        function = key.split(" ")[0]
        r = random.Random(f"{key}")
        for _ in range(RANDOM_CASES):
            out.append(Case(function, template, tuple(_draw(r, d) for d in domains), key))
        for i in range(len(domains)):
            edges = [x for x in EDGES if x not in NO_EDGES.get(key, ())]
            for edge in r.sample(edges, EDGES_PER_ARG):
                args = [_draw(r, d) for d in domains]
                args[i] = edge
                out.append(Case(function, template, tuple(args), key))
    for function, template in sorted(ARRAY_CASES.items()):
        out.append(Case(function, template, (), function))
    return out


def case_cells(case_list: list[Case], mode: str) -> dict[tuple[int, int], object]:
    """The Cases sheet: row i holds case i's formula in column B and its arguments from C."""
    cells: dict[tuple[int, int], object] = {}
    for row, case in enumerate(case_list, start=1):
        cells[(row, 1)] = case.function
        cells[(row, 2)] = Formula(case.formula(row))
        for i, arg in enumerate(case.args):
            content = cell_content(arg, mode)
            if content is not None:
                cells[(row, 3 + i)] = content
    return cells


def isclose(got: float, want: float, rtol: float = 1e-9) -> bool:
    """Equal to ``rtol`` relative (absolute near zero)."""
    return math.isclose(got, want, rel_tol=rtol, abs_tol=1e-12)
