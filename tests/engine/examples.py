"""The worked examples of the README's "Modelling" section, as workbooks with known answers.

Each builder returns an openpyxl workbook; ``tests/data/make_workbooks.py`` writes them to
``tests/data/workbooks/`` (``alea run tests/data/workbooks/simtable.xlsx``) and the tests of
each feature use them. ``values=...`` substitutes constants for the modelling functions, so
a test can compare a feature with the plain model it stands for.
"""

from __future__ import annotations

from collections.abc import Callable

from openpyxl import Workbook

# --- RiskSimtable: one run, three simulations ---------------------------------------------------

RATES = (0.06, 0.08, 0.10)
PRICES = (50.0, 55.0, 60.0)
VOLUME = (800.0, 1000.0, 1300.0)  # RiskTriang(min, mode, max)
UNIT_COST = (30.0, 40.0)  # RiskUniform(min, max)
FIXED_COST = 8000.0


def simtable(values: int | None = None) -> Workbook:
    """Profit and its present value under three (discount rate, mean price) scenarios.

    The discount rate is a RiskSimtable in a formula; the mean of the price distribution is
    a RiskSimtable in a distribution's parameter. ``values=k`` writes simulation ``k``'s
    values (0-based) as constants instead: the plain model simulation ``k + 1`` stands for.
    """
    wb = Workbook()
    ws = wb.active
    ws.title = "Model"

    def table(options: tuple[float, ...]) -> str:
        if values is not None:
            return repr(options[values])
        return "RiskSimtable({" + ",".join(repr(v) for v in options) + "})"

    ws["A1"], ws["B1"] = "Discount rate", f"={table(RATES)}"
    ws["A2"], ws["B2"] = "Price", f'=RiskNormal({table(PRICES)},5,RiskName("Price"))'
    ws["A3"], ws["B3"] = "Volume", '=RiskTriang({},{},{},RiskName("Volume"))'.format(*VOLUME)
    ws["A4"], ws["B4"] = "Unit cost", '=RiskUniform({},{},RiskName("Unit cost"))'.format(*UNIT_COST)
    ws["A5"], ws["B5"] = "Fixed cost", FIXED_COST
    ws["A7"], ws["B7"] = "Profit", '=RiskOutput("Profit")+(B2-B4)*B3-B5'
    ws["A8"], ws["B8"] = "Value", '=RiskOutput("Value")+B7/(1+B1)'
    return wb


def simtable_means(k: int) -> dict[str, float]:
    """Exact means of simulation ``k`` (0-based) of :func:`simtable`."""
    volume = sum(VOLUME) / 3
    profit = (PRICES[k] - sum(UNIT_COST) / 2) * volume - FIXED_COST
    return {"Profit": profit, "Value": profit / (1 + RATES[k])}


# --- Scenario analysis and contribution to variance ------------------------------------------

LABOUR = (100.0, 15.0)  # RiskNormal(mean, sd)
MATERIALS = (50.0, 8.0)
COST_WEIGHTS = (2.0, 3.0)  # Cost = 2 Labour + 3 Materials


def scenarios() -> Workbook:
    """A product's profit (non-linear in four inputs) and a cost linear in two independent
    normal inputs, whose contributions to variance are exact (:func:`cost_shares`)."""
    wb = Workbook()
    ws = wb.active
    ws.title = "Model"
    ws["A1"], ws["B1"] = "Demand", '=RiskNormal(1000,150,RiskName("Demand"))'
    ws["A2"], ws["B2"] = "Price", '=RiskNormal(50,5,RiskName("Price"))'
    ws["A3"], ws["B3"] = "Unit cost", '=RiskUniform(30,40,RiskName("Unit cost"))'
    ws["A4"], ws["B4"] = "Overhead", '=RiskTriang(5000,8000,14000,RiskName("Overhead"))'
    ws["A5"], ws["B5"] = "Labour", '=RiskNormal({},{},RiskName("Labour"))'.format(*LABOUR)
    ws["A6"], ws["B6"] = "Materials", '=RiskNormal({},{},RiskName("Materials"))'.format(*MATERIALS)
    ws["A8"], ws["B8"] = "Profit", '=RiskOutput("Profit")+(B2-B3)*B1-B4'
    ws["A9"], ws["B9"] = "Cost", '=RiskOutput("Cost")+{}*B5+{}*B6'.format(*COST_WEIGHTS)
    return wb


def cost_shares() -> dict[str, float]:
    """Exact contribution to the variance of :func:`scenarios`' Cost: a²σx² / Σ a²σ²."""
    parts = {
        "Labour": (COST_WEIGHTS[0] * LABOUR[1]) ** 2,
        "Materials": (COST_WEIGHTS[1] * MATERIALS[1]) ** 2,
    }
    return {name: part / sum(parts.values()) for name, part in parts.items()}


# --- RiskCompound: an insurance portfolio's annual losses -----------------------------------------

CLAIMS = 4.0  # RiskPoisson(lambda): claims per year
CLAIM_MEAN = 10_000.0  # RiskExpon(beta): the ground-up claim
SEVERITY = (10_000.0, 15_000.0)  # RiskLognorm(mean, sd): the claim the layer sees
RETENTION, LAYER = 5_000.0, 20_000.0  # deductible and limit of each claim


def compound() -> Workbook:
    """Annual losses: a Poisson number of claims (one count shared by both outputs); the
    ground-up total of exponential claims, and a per-claim excess-of-loss layer (20,000 in
    excess of 5,000) of lognormal claims."""
    wb = Workbook()
    ws = wb.active
    ws.title = "Portfolio"
    ws["A1"], ws["B1"] = "Claims", f'=RiskPoisson({CLAIMS},RiskName("Claims"))'
    ws["A2"], ws["B2"] = "Retention", RETENTION
    ws["A3"], ws["B3"] = "Layer limit", LAYER
    claim = f'RiskExpon({CLAIM_MEAN},RiskName("Claim"))'
    large = 'RiskLognorm({},{},RiskName("Large claim"))'.format(*SEVERITY)
    ws["A5"], ws["B5"] = "Ground-up", f'=RiskOutput("Ground-up")+RiskCompound(B1,{claim})'
    ws["A6"], ws["B6"] = "Layer", f'=RiskOutput("Layer")+RiskCompound(B1,{large},B2,B3)'
    return wb


# --- Sobol sampling: a smooth model with an exact mean -------------------------------------------

MARGIN = (100.0, 10.0)  # RiskNormal(mean, sd)
COST = (20.0, 30.0, 50.0)  # RiskTriang(min, mode, max)
GROWTH = (0.02, 0.06)  # RiskUniform(min, max), a year
YEARS = 5


def sobol() -> Workbook:
    """The value of a margin net of cost after five years of uncertain growth; run it with
    ``--sampling sobol`` beside ``--sampling mc`` to compare their errors."""
    wb = Workbook()
    ws = wb.active
    ws.title = "Model"
    ws["A1"], ws["B1"] = "Margin", '=RiskNormal({},{},RiskName("Margin"))'.format(*MARGIN)
    ws["A2"], ws["B2"] = "Cost", '=RiskTriang({},{},{},RiskName("Cost"))'.format(*COST)
    ws["A3"], ws["B3"] = "Growth", '=RiskUniform({},{},RiskName("Growth"))'.format(*GROWTH)
    ws["A5"], ws["B5"] = "Value", f'=RiskOutput("Value")+(B1-B2)*(1+B3)^{YEARS}'
    return wb


def sobol_mean() -> float:
    """The exact mean of :func:`sobol`'s value (independent inputs)."""
    lo, hi = GROWTH
    growth = ((1 + hi) ** (YEARS + 1) - (1 + lo) ** (YEARS + 1)) / ((YEARS + 1) * (hi - lo))
    return (MARGIN[0] - sum(COST) / 3) * growth


# --- Convergence stopping: run until the statistics are known well enough ---------------------

DEMAND = (1000.0, 250.0)  # RiskNormal(mean, sd): units a month
MARGIN_PER_UNIT = (2.0, 5.0)  # RiskUniform(min, max)
OVERHEAD = 2500.0
PROFIT_TEST = (0.01, 2, 0.95, True)  # RiskConvergence: ±1 % of the mean at 95 %
SHORTFALL_TEST = (50.0, 1, 0.90, False, False, True, 0.95)  # ±50 on the P95 at 90 %


def convergence() -> Workbook:
    """A month's profit and its shortfall against a target, each with its own
    RiskConvergence: profit's mean within ±1 % at 95 % confidence, the shortfall's 95th
    percentile within ±50 (absolute) at 90 %; units have no RiskConvergence, so the run's
    own test (``alea run --converge``) monitors them, or nothing does."""
    wb = Workbook()
    ws = wb.active
    ws.title = "Model"

    def args(test: tuple[float | bool, ...]) -> str:
        return ",".join(str(v).upper() if isinstance(v, bool) else repr(v) for v in test)

    ws["A1"], ws["B1"] = "Demand", '=RiskNormal({},{},RiskName("Demand"))'.format(*DEMAND)
    margin = '=RiskUniform({},{},RiskName("Margin"))'.format(*MARGIN_PER_UNIT)
    ws["A2"], ws["B2"] = "Margin per unit", margin
    ws["A3"], ws["B3"] = "Overhead", OVERHEAD
    ws["A5"], ws["B5"] = (
        "Profit",
        f'=RiskOutput("Profit",,,RiskConvergence({args(PROFIT_TEST)}))+B1*B2-B3',
    )
    ws["A6"], ws["B6"] = (
        "Shortfall",
        f'=RiskOutput("Shortfall",,,RiskConvergence({args(SHORTFALL_TEST)}))+MAX(0,3000-B5)',
    )
    ws["A7"], ws["B7"] = "Units", '=RiskOutput("Units")+B1'
    return wb


#: example name → builder (the file name in tests/data/workbooks/).
EXAMPLES: dict[str, Callable[[], Workbook]] = {
    "simtable": simtable,
    "scenarios": scenarios,
    "compound": compound,
    "sobol": sobol,
    "convergence": convergence,
}
