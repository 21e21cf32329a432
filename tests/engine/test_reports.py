"""Reporting cells: @RISK statistics functions in cells, evaluated once the simulation is done.

Each statistic is checked against the same statistic computed directly from the trials'
values (NumPy), in the exact regime (every value kept) and within the sketch's 0.1% beyond
it; reports keep Excel's errors, survive storage, and are refused where they cannot be
computed (an output that uses one, a report over uncertain values, an unknown output).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from openpyxl import Workbook
from scipy import stats

from services import engine
from services.engine import serial, xlerror
from services.engine.build import Book, build_model
from services.engine.errors import ModelError
from services.engine.formula import Formula
from services.engine.ir import Model
from services.engine.numpy_backend import compile_numpy
from services.engine.reports import evaluate
from services.engine.stats import StatsOptions

ROOT = Path(__file__).parents[2]
TRIALS = 20_000
SEED = 4

CELLS: dict[str, object] = {
    "A1": "Revenue",
    "B1": "=RiskNormal(100,10)",
    "B2": "=RiskLognorm(50,20)",
    "B3": '=RiskOutput("Profit")+B1-B2',
    "A5": "Mean profit",
    "B5": "=RiskMean(B3)",
    "B6": "=RiskPercentile(B3,0.95)/1000",
    "B7": "=RiskTarget(B3,60)",
    "B8": "=RiskStdDev(B1)",  # B1 is no output: it becomes one
    "B9": '=RiskPtoX("Profit",0.5)',
    "B10": "=RiskXtoP(B3,60)+RiskTargetD(B3,60)",
    "B11": "=RiskKurtosis(B1)",
    "B12": "=RiskMean(B3)/0",
    "B13": "=RiskPercentileD(B3,0.05)-RiskPercentile(B3,0.95)",
    "B14": "=RiskSkewness(B2)+RiskVariance(B3)+RiskMin(B3)+RiskMax(B3)+RiskRange(B3)",
    "B15": "=IF(RiskMean(B3)>50,1,2)",
}


def _book(cells: dict[str, object]) -> Book:
    from services.engine.formula import parse_reference

    out: dict[tuple[int, int], object] = {}
    for ref, content in cells.items():
        r = parse_reference(ref, "S")
        text = isinstance(content, str) and content.startswith("=")
        out[(r.top, r.left)] = Formula(content) if text else content  # type: ignore[union-attr, assignment]
    return Book({"S": out})


@pytest.fixture(scope="module")
def model() -> Model:
    return build_model(_book(CELLS))


@pytest.fixture(scope="module")
def values(model: Model) -> dict[str, np.ndarray]:
    return compile_numpy(model, seed=SEED).evaluate(0, TRIALS)[0]


def _reports(model: Model, options: StatsOptions | None = None) -> dict[str, float]:
    partial = engine.simulate(model, trials=TRIALS, seed=SEED, backend="numpy", options=options)
    return {r.address: r.value for r in evaluate(model, partial)}


def test_reports_and_their_outputs(model: Model) -> None:
    assert [o.name for o in model.outputs] == ["Profit", "S!B1", "S!B2"]
    assert [r.address for r in model.reports] == [f"S!B{i}" for i in range(5, 16)]
    assert model.reports[0].name == "Mean profit"
    assert len(model.inputs) == 2


def test_each_statistic_equals_numpy_on_the_trials(model: Model, values) -> None:
    got = _reports(model)
    profit, revenue, cost = values["Profit"], values["S!B1"], values["S!B2"]
    assert got["S!B5"] == pytest.approx(profit.mean(), rel=1e-12)
    assert got["S!B6"] == pytest.approx(np.quantile(profit, 0.95) / 1000, rel=1e-12)
    assert got["S!B7"] == pytest.approx(np.mean(profit <= 60), rel=1e-12)
    assert got["S!B8"] == pytest.approx(revenue.std(ddof=1), rel=1e-12)
    assert got["S!B9"] == pytest.approx(np.median(profit), rel=1e-12)
    assert got["S!B10"] == pytest.approx(1.0, rel=1e-12)
    assert got["S!B11"] == pytest.approx(stats.kurtosis(revenue, fisher=False), rel=1e-9)
    assert got["S!B13"] == pytest.approx(0.0, abs=1e-9)
    want = (
        stats.skew(cost)
        + profit.var(ddof=1)
        + profit.min()
        + profit.max()
        + (profit.max() - profit.min())
    )
    assert got["S!B14"] == pytest.approx(want, rel=1e-9)
    assert got["S!B15"] == 1.0


def test_an_error_is_the_cells_error(model: Model) -> None:
    assert xlerror.name(_reports(model)["S!B12"]) == "#DIV/0!"


def test_beyond_the_exact_limit_the_sketch_answers(model: Model, values) -> None:
    got = _reports(model, StatsOptions(exact_limit=1000))
    profit = values["Profit"]
    assert got["S!B5"] == pytest.approx(profit.mean(), rel=1e-12)  # moments stay exact
    assert got["S!B6"] == pytest.approx(np.quantile(profit, 0.95) / 1000, rel=2e-3)
    assert got["S!B7"] == pytest.approx(np.mean(profit <= 60), abs=2e-3)


def test_reports_are_stored_with_the_model(model: Model) -> None:
    back = serial.load_model(serial.dump_model(model))
    assert back.reports == model.reports
    assert _reports(back) == pytest.approx(_reports(model), nan_ok=True)


@pytest.mark.parametrize(
    ("cells", "where", "reason"),
    [
        ({"B1": "=RiskNormal(0,1)", "B2": '=RiskOutput("x")+B1+RiskMean(B1)'}, "S!B2", "output"),
        (
            {"B1": "=RiskNormal(0,1)", "B2": "=RiskMean(B1)", "B3": '=RiskOutput("x")+B2'},
            "S!B3",
            "output",
        ),
        ({"B1": "=RiskNormal(0,1)", "B2": "=RiskMean(B1)+B1"}, "S!B2", "not uncertain values"),
        ({"B1": '=RiskOutput("x")+1', "B2": '=RiskMean("y")'}, "S!B2", "no output named 'y'"),
        ({"B1": "=RiskNormal(0,1)", "B2": "=RiskPercentile(B1,1.5)"}, "S!B2", "[0, 1]"),
        ({"B1": "=RiskNormal(0,1)", "B2": "=RiskTarget(B1,A9+B1)"}, "S!B2", "constant number"),
        # @RISK's Sim# argument, which would read another simulation's statistics
        ({"B1": "=RiskNormal(0,1)", "B2": "=RiskMean(B1,1)"}, "S!B2", "Sim# argument"),
        ({"B1": "=RiskNormal(0,1)", "B2": "=RiskPercentile(B1,0.9,2)"}, "S!B2", "Sim#"),
        # a statistic of a cell that holds no formula: empty, a number, text
        ({"B1": '=RiskOutput("x")+1', "B2": "=RiskMean(Z99)"}, "S!B2", "S!Z99 holds no formula"),
        ({"B1": 5, "B2": "=RiskMean(B1)"}, "S!B2", "S!B1 holds no formula"),
        ({"B1": "abc", "B2": "=RiskStdDev(B1)"}, "S!B2", "S!B1 holds no formula"),
        (
            {"B1": "=RiskNormal(0,1)", "C1": "=B1", "C2": "=B1*2", "B2": "=RiskMean(C1:C2)"},
            "S!B2",
            "one cell",
        ),
    ],
)
def test_refused_naming_the_cell(cells: dict[str, object], where: str, reason: str) -> None:
    with pytest.raises(ModelError) as err:
        build_model(_book(cells))
    assert err.value.location == where and reason in str(err.value)


def test_a_defined_name_of_a_cell_is_that_cell() -> None:
    cells = {"B1": "=RiskUniform(0,1)", "B2": '=RiskOutput("y")+B1*2', "B3": "=RiskMean(Y)"}
    m = build_model(Book(_book(cells).sheets, names={(None, "Y"): "S!$B$2"}))
    assert [o.name for o in m.outputs] == ["y"]
    assert _reports(m)["S!B3"] == pytest.approx(1.0, abs=0.02)


def test_a_workbook_of_reports_only_simulates() -> None:
    m = build_model(_book({"B1": "=RiskUniform(0,1)", "B2": "=RiskMean(B1)"}))
    assert [o.name for o in m.outputs] == ["S!B1"]
    assert _reports(m)["S!B2"] == pytest.approx(0.5, abs=0.01)


def test_alea_run_prints_the_reports(tmp_path: Path) -> None:
    wb = Workbook()
    ws = wb.active
    ws.title = "S"
    for ref, content in CELLS.items():
        ws[ref] = content
    path = tmp_path / "reports.xlsx"
    wb.save(path)
    done = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "run", str(path), "--json", "--trials", "5000"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    reports = {r["address"]: r for r in json.loads(done.stdout)["reports"]}
    assert reports["S!B12"] == {
        "name": "S!B12",
        "address": "S!B12",
        "value": None,
        "error": "#DIV/0!",
    }
    assert math.isclose(reports["S!B10"]["value"], 1.0)
    table = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "run", str(path), "--trials", "5000"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert "reports:" in table and "Mean profit (S!B5)" in table
