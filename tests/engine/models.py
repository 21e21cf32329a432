"""Shared test models, built as openpyxl workbooks, with their known answers.

Every builder takes ``mode``, which decides what an uncertain cell holds:

- ``"risk"``: the @RISK distribution (``=RiskNormal(100,10)``), the model as a user writes it;
- ``"fixed"``: ``=RiskDiscrete({v},{1})``, still an uncertain input to the engine (a Sample,
  not folded) but one that always draws its nominal value ``v``, so a backend's evaluation
  can be compared with a deterministic Excel engine;
- ``"constant"``: the nominal value itself, so any Excel engine (``formulas``) can compute it.

``MODELS`` maps each model's name to its builder (small, project_npv, portfolio, black_scholes,
functions: every supported Excel function). ``EXPECTED_MEAN`` holds the exact mean of each
output in ``"risk"`` mode where one is known analytically; ``DISTRIBUTIONS`` the exact mean and
standard deviation of each distribution (``distribution(name)`` builds its one-input model).
Deterministic values of every model, computed by the independent ``formulas`` engine in
``"constant"`` mode, are in tests/data/formulas_expected.json (written by
tests/data/make_formulas_expected.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path

from openpyxl import Workbook
from openpyxl.workbook.defined_name import DefinedName

Mode = str
MODES = ("risk", "fixed", "constant")


def uncertain(call: str, nominal: float, mode: Mode) -> str | float:
    """The content of an uncertain cell: ``=call`` in risk mode, else its nominal value."""
    if mode == "risk":
        return f"={call}"
    if mode == "fixed":
        return f"=RiskDiscrete({{{nominal!r}}},{{1}})"
    return nominal


def save(wb: Workbook, directory: Path, name: str) -> Path:
    """Write ``wb`` as ``directory/name.xlsx`` and return the path."""
    path = Path(directory) / f"{name}.xlsx"
    wb.save(path)
    return path


# --- small: three inputs, one output -------------------------------------------------------


def small(mode: Mode = "risk") -> Workbook:
    """Profit = (revenue - cost) * (1 - tax) over three independent inputs."""
    wb = Workbook()
    ws = wb.active
    ws.title = "Model"
    ws["A1"], ws["B1"] = "Revenue", uncertain('RiskNormal(100,10,RiskName("Revenue"))', 100, mode)
    ws["A2"], ws["B2"] = "Cost", uncertain('RiskTriang(20,30,50,RiskName("Cost"))', 30, mode)
    ws["A3"], ws["B3"] = "Tax", uncertain('RiskUniform(0.1,0.2,RiskName("Tax"))', 0.15, mode)
    ws["A5"], ws["B5"] = "Profit", '=RiskOutput("Profit")+(B1-B2)*(1-B3)'
    return wb


SMALL_MEAN = (100 - (20 + 30 + 50) / 3) * (1 - 0.15)


# --- project NPV: assumptions sheet + cash-flow sheet, cross-sheet references ---------------

NPV_YEARS = 10
NPV_INVESTMENT = 1000.0
NPV_RATE = 0.08
NPV_TAX = 0.25


def project_npv(mode: Mode = "risk") -> Workbook:
    """A 10-year project: units grow yearly, margin taxed, NPV at a named discount rate."""
    wb = Workbook()
    a = wb.active
    a.title = "Assumptions"
    rows = [
        ("Investment", NPV_INVESTMENT),
        ("Units year 1", uncertain("RiskTriang(80,100,130)", 100, mode)),
        ("Price", uncertain("RiskNormal(10,1)", 10, mode)),
        ("Unit cost", uncertain("RiskPert(4,5,7)", 5, mode)),
        ("Growth", uncertain("RiskUniform(0.02,0.06)", 0.04, mode)),
        ("Discount rate", NPV_RATE),
        ("Tax rate", NPV_TAX),
    ]
    for i, (label, value) in enumerate(rows, start=1):
        a.cell(i, 1, label)
        a.cell(i, 2, value)
    wb.defined_names["Rate"] = DefinedName("Rate", attr_text="Assumptions!$B$6")
    c = wb.create_sheet("Cash Flow")
    for col, head in enumerate(["Year", "Units", "Revenue", "Cost", "Cash flow"], start=1):
        c.cell(1, col, head)
    for year in range(1, NPV_YEARS + 1):
        r = year + 1
        c.cell(r, 1, year)
        c.cell(r, 2, f"=Assumptions!$B$2*(1+Assumptions!$B$5)^(A{r}-1)")
        c.cell(r, 3, f"=B{r}*Assumptions!$B$3")
        c.cell(r, 4, f"=B{r}*Assumptions!$B$4")
        c.cell(r, 5, f"=(C{r}-D{r})*(1-Assumptions!$B$7)")
    last = NPV_YEARS + 1
    a["A9"], a["B9"] = "NPV", f"=RiskOutput(\"NPV\")+NPV(Rate,'Cash Flow'!E2:E{last})-B1"
    a["A10"], a["B10"] = "Final cash flow", f"=RiskOutput()+'Cash Flow'!E{last}"
    return wb


def _npv_mean() -> float:
    units = (80 + 100 + 130) / 3
    margin = 10 - (4 + 4 * 5 + 7) / 6
    total = 0.0
    for year in range(1, NPV_YEARS + 1):
        k = year - 1  # E[(1+g)^k] for g ~ U(0.02, 0.06)
        growth = (1.06 ** (k + 1) - 1.02 ** (k + 1)) / ((k + 1) * 0.04)
        total += units * growth * margin * (1 - NPV_TAX) / (1 + NPV_RATE) ** year
    return total - NPV_INVESTMENT


# --- portfolio: 50 assets, RiskCorrmat over the first five --------------------------------

ASSETS = 50
CORRELATED = 5
CORR_OFF_DIAGONAL = 0.3


def _asset_mean(i: int) -> float:
    return 0.02 + 0.002 * i


def _asset_sd(i: int) -> float:
    return 0.05 + 0.003 * i


def _weight(i: int) -> float:
    return i / (ASSETS * (ASSETS + 1) / 2)


def portfolio(mode: Mode = "risk") -> Workbook:
    """50 weighted normal asset returns, five of them rank-correlated through RiskCorrmat."""
    wb = Workbook()
    ws = wb.active
    ws.title = "Assets"
    ws.append(["Asset", "Weight", "Return"])
    for i in range(1, ASSETS + 1):
        props = f',RiskName("Asset {i}")'
        if i <= CORRELATED:
            props += f",RiskCorrmat(EquityCorr,{i})"
        call = f"RiskNormal({_asset_mean(i)!r},{_asset_sd(i)!r}{props})"
        ws.append([f"Asset {i}", _weight(i), uncertain(call, _asset_mean(i), mode)])
    last = ASSETS + 1
    ws["E1"], ws["F1"] = (
        "Portfolio return",
        f'=RiskOutput("Portfolio return")+SUMPRODUCT(B2:B{last},C2:C{last})',
    )
    ws["E2"], ws["F2"] = "Portfolio value", '=RiskOutput("Portfolio value")+1000000*(1+F1)'
    corr = wb.create_sheet("Correlations")
    for r in range(CORRELATED):
        for col in range(CORRELATED):
            corr.cell(r + 2, col + 2, 1.0 if r == col else CORR_OFF_DIAGONAL)
    wb.defined_names["EquityCorr"] = DefinedName("EquityCorr", attr_text="Correlations!$B$2:$F$6")
    return wb


PORTFOLIO_MEAN = sum(_weight(i) * _asset_mean(i) for i in range(1, ASSETS + 1))


# --- Black–Scholes: terminal price by RiskLognorm2, payoffs by MAX --------------------------

BS_SPOT, BS_STRIKE, BS_RATE, BS_VOL, BS_TIME = 100.0, 105.0, 0.05, 0.2, 1.0


def black_scholes(mode: Mode = "risk") -> Workbook:
    """European call and put on a lognormal terminal price under the risk-neutral measure."""
    wb = Workbook()
    ws = wb.active
    ws.title = "Option"
    for i, (label, value) in enumerate(
        [
            ("Spot", BS_SPOT),
            ("Strike", BS_STRIKE),
            ("Rate", BS_RATE),
            ("Volatility", BS_VOL),
            ("Years", BS_TIME),
        ],
        start=1,
    ):
        ws.cell(i, 1, label)
        ws.cell(i, 2, value)
    forward = BS_SPOT * math.exp(BS_RATE * BS_TIME)
    ws["A7"] = "Terminal price"
    ws["B7"] = uncertain(
        'RiskLognorm2(LN(B1)+(B3-B4^2/2)*B5,B4*SQRT(B5),RiskName("Terminal price"))', forward, mode
    )
    ws["A8"], ws["B8"] = "Call", '=RiskOutput("Call")+EXP(-B3*B5)*MAX(B7-B2,0)'
    ws["A9"], ws["B9"] = "Put", '=RiskOutput("Put")+EXP(-B3*B5)*MAX(B2-B7,0)'
    return wb


def _phi(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def _black_scholes() -> tuple[float, float]:
    sd = BS_VOL * math.sqrt(BS_TIME)
    d1 = (math.log(BS_SPOT / BS_STRIKE) + (BS_RATE + BS_VOL**2 / 2) * BS_TIME) / sd
    d2 = d1 - sd
    disc = BS_STRIKE * math.exp(-BS_RATE * BS_TIME)
    call = BS_SPOT * _phi(d1) - disc * _phi(d2)
    return call, call - BS_SPOT + disc


# --- every supported Excel function, over three inputs and a constant table ----------------

#: label → formula over x (B1), y (B2), z (B3) and the table D1:E3.
FUNCTION_CASES: dict[str, str] = {
    "arithmetic": "x+y*z-x/4",
    "negation": "-x^2",
    "percent": "x%*200",
    "comparisons": "(x>y)+(x<=y)*2+(x=2.5)*4+(x<>y)*8+(y<z)*16+(y>=z)*32",
    "if": "IF(x>y,x,y)+IF(y>0,1)",
    "logic": "AND(x>0,y>0)+OR(x>0,y>0)*2+NOT(y>0)*4",
    "iferror": "IFERROR(x/0,-1)+IFERROR(x,5)",
    "sum": "SUM(B1:B3,1)",
    "sumproduct": "SUMPRODUCT(D1:D3,E1:E3)*x+SUMPRODUCT(B1:B3,B1:B3)",
    "average": "AVERAGE(B1:B3)",
    "min max": "MIN(B1:B3)+MAX(B1:B3)*10",
    "abs sign": "ABS(y)+SIGN(y)",
    "exp ln": "EXP(z)+LN(x)",
    "logs": "LOG(x)+LOG(x,2)+LOG10(x)",
    "sqrt power": "SQRT(x)+POWER(x,z)",
    "round": "ROUND(x,0)+ROUND(y,1)*10+ROUND(x*1000+0.4,-2)",
    "roundup rounddown": "ROUNDUP(z*7,1)+ROUNDDOWN(y*3,1)",
    "int mod": "INT(y)+MOD(y,1)+MOD(x,-2)",
    "npv": "NPV(z,x,y,1)",
    "pv": "PV(z/12,12,x)",
    "fv": "FV(z/12,12,y,10,1)",
    "pmt": "PMT(z,10,100*x)",
    "choose": "CHOOSE(2,x,y,z)",
    "index": "INDEX(D1:E3,2,2)+INDEX(D1:D3,3)",
    "match": "MATCH(x,D1:D3,1)+MATCH(2,D1:D3,0)",
    "vlookup": "VLOOKUP(x,D1:E3,2)+VLOOKUP(2,D1:E3,2,FALSE)",
}
FUNCTION_INPUTS = {"x": 2.5, "y": -1.25, "z": 0.3}


def functions(mode: Mode = "risk") -> Workbook:
    """One output per Excel function family; inputs x, y, z are uncertain cells B1:B3."""
    wb = Workbook()
    ws = wb.active
    ws.title = "Functions"
    for row, (name, value) in enumerate(FUNCTION_INPUTS.items(), start=1):
        ws.cell(row, 1, name)
        ws.cell(row, 2, uncertain(f"RiskUniform({value},{value + 1})", value, mode))
    for row in range(1, 4):
        ws.cell(row, 4, row)
        ws.cell(row, 5, row * 10)
    for row, (label, formula) in enumerate(FUNCTION_CASES.items(), start=5):
        text = formula
        for name, ref in (("x", "$B$1"), ("y", "$B$2"), ("z", "$B$3")):
            text = re.sub(rf"\b{name}\b", ref, text)
        ws.cell(row, 1, label)
        ws.cell(row, 2, f'=RiskOutput("{label}")+{text}')
    return wb


# --- one model per distribution ------------------------------------------------------------

_TRIGEN_HALF_WIDTH = 3 / (1 - math.sqrt(0.2))  # symmetric Trigen(2,5,8,10,90) as a Triang
_LN2_MU, _LN2_SIGMA = 1.0, 0.5
_WEIBULL_SHAPE, _WEIBULL_SCALE = 2.0, 10.0

#: distribution → (the @RISK call, exact mean, exact standard deviation).
DISTRIBUTIONS: dict[str, tuple[str, float, float]] = {
    "normal": ("RiskNormal(10,2)", 10, 2),
    "triang": ("RiskTriang(1,2,6)", 3, math.sqrt(21 / 18)),
    "trigen": ("RiskTrigen(2,5,8,10,90)", 5, _TRIGEN_HALF_WIDTH / math.sqrt(6)),
    "pert": ("RiskPert(0,3,10)", 22 / 6, math.sqrt((22 / 6) * (10 - 22 / 6) / 7)),
    "uniform": ("RiskUniform(5,15)", 10, 10 / math.sqrt(12)),
    "lognorm": ("RiskLognorm(10,3)", 10, 3),
    "lognorm2": (
        f"RiskLognorm2({_LN2_MU},{_LN2_SIGMA})",
        math.exp(_LN2_MU + _LN2_SIGMA**2 / 2),
        math.sqrt((math.exp(_LN2_SIGMA**2) - 1) * math.exp(2 * _LN2_MU + _LN2_SIGMA**2)),
    ),
    "discrete": ("RiskDiscrete({1,2,3},{1,2,1})", 2, math.sqrt(0.5)),
    "binomial": ("RiskBinomial(10,0.3)", 3, math.sqrt(2.1)),
    "poisson": ("RiskPoisson(4)", 4, 2),
    "expon": ("RiskExpon(5)", 5, 5),
    "gamma": ("RiskGamma(2,3)", 6, math.sqrt(18)),
    "beta": ("RiskBeta(2,5)", 2 / 7, math.sqrt(10 / (49 * 8))),
    "betageneral": ("RiskBetaGeneral(2,5,10,20)", 10 + 20 / 7, 10 * math.sqrt(10 / (49 * 8))),
    "weibull": (
        f"RiskWeibull({_WEIBULL_SHAPE},{_WEIBULL_SCALE})",
        _WEIBULL_SCALE * math.gamma(1 + 1 / _WEIBULL_SHAPE),
        _WEIBULL_SCALE
        * math.sqrt(math.gamma(1 + 2 / _WEIBULL_SHAPE) - math.gamma(1 + 1 / _WEIBULL_SHAPE) ** 2),
    ),
    "cumul": ("RiskCumul(0,10,{2,5,8},{0.2,0.5,0.9})", 4.75, math.sqrt(6.9375)),
}


def distribution(name: str) -> Workbook:
    """One input with the distribution ``name`` and one output equal to it."""
    wb = Workbook()
    ws = wb.active
    ws.title = "Dist"
    ws["A1"], ws["B1"] = name, f"={DISTRIBUTIONS[name][0]}"
    ws["A2"], ws["B2"] = "Value", f'=RiskOutput("{name}")+B1'
    return wb


_CALL, _PUT = _black_scholes()

#: model name → builder taking ``mode``.
MODELS: dict[str, Callable[..., Workbook]] = {
    "small": small,
    "project_npv": project_npv,
    "portfolio": portfolio,
    "black_scholes": black_scholes,
    "functions": functions,
}

#: model name → output name → exact mean in ``"risk"`` mode.
EXPECTED_MEAN: dict[str, dict[str, float]] = {
    "small": {"Profit": SMALL_MEAN},
    "project_npv": {"NPV": _npv_mean()},
    "portfolio": {
        "Portfolio return": PORTFOLIO_MEAN,
        "Portfolio value": 1e6 * (1 + PORTFOLIO_MEAN),
    },
    "black_scholes": {"Call": _CALL, "Put": _PUT},
}
