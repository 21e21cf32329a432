"""The builder: cells → IR, through real .xlsx files written by openpyxl."""

from __future__ import annotations

import inspect
import io
import json
import math
import random
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from openpyxl import Workbook
from openpyxl.workbook.defined_name import DefinedName

from services.engine import xlerror
from services.engine.errors import (
    CircularReference,
    CorrelationError,
    FormulaError,
    ModelError,
    ParameterError,
)
from services.engine.ir import Apply, Const, Model, Sample, Table
from services.engine.workbook import load_workbook
from tests.engine import models


def xlsx(
    cells: Mapping[str, object],
    names: Mapping[str, str] | None = None,
    local: Mapping[tuple[str, str], str] | None = None,
) -> bytes:
    """A workbook from ``{"Sheet!A1": value}``; sheets are created in first-seen order."""
    wb = Workbook()
    wb.remove(wb.active)
    for key, value in cells.items():
        sheet, cell = key.rsplit("!", 1)
        ws = wb[sheet] if sheet in wb.sheetnames else wb.create_sheet(sheet)
        ws[cell] = value
    for name, text in (names or {}).items():
        wb.defined_names[name] = DefinedName(name, attr_text=text)
    for (sheet, name), text in (local or {}).items():
        wb[sheet].defined_names[name] = DefinedName(name, attr_text=text)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def build(cells: Mapping[str, object], **kw: Any) -> Model:
    return load_workbook(xlsx(cells, **kw))


def const(model: Model, output: int = 0) -> float:
    node = model.outputs[output].node
    assert isinstance(node, Const), node
    return node.value


# --- the shared test models -------------------------------------------------------------------


def test_small_model() -> None:
    model = load_workbook(_bytes(models.small()))
    assert [(s.stream, s.name, s.distribution, s.address) for s in model.inputs] == [
        (0, "Revenue", "normal", "Model!B1"),
        (1, "Cost", "triang", "Model!B2"),
        (2, "Tax", "uniform", "Model!B3"),
    ]
    assert [(o.name, o.address) for o in model.outputs] == [("Profit", "Model!B5")]
    assert model.inputs[1].params == (Const(20.0), Const(30.0), Const(50.0))


def test_project_npv_crosses_sheets_and_uses_a_defined_name() -> None:
    model = load_workbook(_bytes(models.project_npv()))
    assert [s.name for s in model.inputs] == ["Units year 1", "Price", "Unit cost", "Growth"]
    assert [o.name for o in model.outputs] == ["NPV", "Assumptions!B10"]
    npv = model.outputs[0].node
    assert isinstance(npv, Apply) and npv.fn == "sub"
    inner = npv.args[0]
    assert isinstance(inner, Apply) and inner.fn == "npv"
    assert inner.args[0] == Const(models.NPV_RATE) and len(inner.args) == 1 + models.NPV_YEARS
    # the final-year cash flow is the same node object in both outputs
    assert model.outputs[1].node is inner.args[-1]


def test_portfolio_correlates_the_first_five_assets() -> None:
    model = load_workbook(_bytes(models.portfolio()))
    assert len(model.inputs) == models.ASSETS
    (corr,) = model.correlations
    assert corr.name == "EquityCorr" and corr.streams == (0, 1, 2, 3, 4)
    assert corr.matrix[0] == (1.0, 0.3, 0.3, 0.3, 0.3)
    total = model.outputs[0].node
    assert isinstance(total, Apply) and total.fn == "sum" and len(total.args) == models.ASSETS
    assert all(isinstance(a, Apply) and a.fn == "mul" for a in total.args)


def test_black_scholes_folds_the_lognormal_parameters() -> None:
    model = load_workbook(_bytes(models.black_scholes()))
    (price,) = model.inputs
    mu = math.log(models.BS_SPOT) + (models.BS_RATE - models.BS_VOL**2 / 2) * models.BS_TIME
    assert price.distribution == "lognorm2"
    assert price.params == (Const(mu), Const(models.BS_VOL))


@pytest.mark.parametrize("name", sorted(models.DISTRIBUTIONS))
def test_one_model_per_distribution(name: str) -> None:
    model = load_workbook(_bytes(models.distribution(name)))
    (sample,) = model.inputs
    assert sample.distribution == name
    assert model.outputs[0].node is sample


def test_fixed_mode_keeps_inputs_as_samples() -> None:
    model = load_workbook(_bytes(models.small("fixed")))
    assert [s.distribution for s in model.inputs] == ["discrete"] * 3
    assert model.inputs[0].params == (Table((100.0,), 1, 1), Table((1.0,), 1, 1))


def _bytes(wb: Workbook) -> bytes:
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


# --- references, names, folding, sharing --------------------------------------------------------


def test_constant_cells_fold_with_excel_semantics() -> None:
    model = build({"S!A1": 2.5, "S!A2": "=ROUND(A1,0)+ROUND(-A1,0)*10", "S!B1": "=RiskOutput()+A2"})
    assert const(model) == 3 - 30
    assert model.outputs[0].name == "S!B1"


def test_blank_cells_are_zero_and_skipped_by_average() -> None:
    model = build({"S!A1": 4, "S!A3": 8, "S!B1": "=RiskOutput()+AVERAGE(A1:A3)+A2"})
    assert const(model) == 6


def test_logical_cells_are_skipped_in_ranges_but_count_when_referenced() -> None:
    model = build({"S!A1": True, "S!A2": 3, "S!B1": "=RiskOutput()+SUM(A1:A2)+A1"})
    assert const(model) == 4


def test_whole_column_ranges_are_clamped_to_the_sheet() -> None:
    model = build(
        {"S!A1": 1, "S!A2": 2, "S!A3": "=RiskNormal(0,1)", "S!B1": "=RiskOutput()+SUM(A:A)"}
    )
    node = model.outputs[0].node
    assert isinstance(node, Apply) and node.fn == "sum" and len(node.args) == 3


def test_sheet_scoped_names_shadow_workbook_names() -> None:
    model = build(
        {"A!A1": 1, "A!A2": 2, "A!B1": "=RiskOutput()+Rate", "B!B1": "=RiskOutput()+Rate"},
        names={"Rate": "A!$A$1"},
        local={("B", "Rate"): "A!$A$2"},
    )
    assert [const(model, 0), const(model, 1)] == [1, 2]


def test_qualified_sheet_names_and_quoted_sheets() -> None:
    model = build(
        {
            "My Sheet!A1": 5,
            "Other!A1": "='My Sheet'!A1*2",
            "Other!B1": "=RiskOutput()+A1+Other!Rate",
        },
        local={("Other", "Rate"): "0.5"},
    )
    assert const(model) == 10.5


def test_only_cells_reaching_an_output_are_built() -> None:
    model = build(
        {
            "S!A1": "=RiskNormal(0,1)",
            "S!A2": "=RiskUniform(0,1)",  # never read
            "S!A3": "=NOSUCHFUNCTION(1)",  # never read, so never refused
            "S!B1": "=RiskOutput()+A1",
        }
    )
    assert [s.address for s in model.inputs] == ["S!A1"]


def test_streams_follow_addresses_not_discovery_order() -> None:
    model = build(
        {"S!A1": "=RiskNormal(0,1)", "S!A2": "=RiskNormal(0,2)", "S!B1": "=RiskOutput()+A2-A1"}
    )
    assert [(s.stream, s.address) for s in model.inputs] == [(0, "S!A1"), (1, "S!A2")]
    assert model.inputs[1].params[1] == Const(2.0)


def test_equal_sub_expressions_are_one_node() -> None:
    model = build(
        {
            "S!A1": "=RiskNormal(0,1)",
            "S!A2": "=EXP(A1)*2",
            "S!A3": "=EXP(A1)*2",
            "S!B1": "=RiskOutput()+A2",
            "S!B2": "=RiskOutput()+A3",
        }
    )
    a, b = (o.node for o in model.outputs)
    assert isinstance(a, Apply) and isinstance(b, Apply)
    assert a is b


def test_a_deep_chain_does_not_exhaust_the_stack() -> None:
    cells: dict[str, object] = {"S!A1": "=RiskNormal(0,1)"}
    cells.update({f"S!A{r}": f"=A{r - 1}+1" for r in range(2, 3001)})
    cells["S!B1"] = "=RiskOutput()+A3000"
    node: object = build(cells).outputs[0].node
    depth = 1
    while isinstance(node, Apply):
        node, depth = node.args[0], depth + 1
    assert depth == 3000 and isinstance(node, Sample)


def _name_chain(count: int, nest: int) -> dict[str, str]:
    """``nm_0`` the input cell, ``nm_i`` ``nm_{i-1}`` under ``nest`` SUMs plus one."""
    names = {"nm_0": "S!$A$1"}
    for i in range(1, count + 1):
        names[f"nm_{i}"] = "SUM(" * nest + f"nm_{i - 1}" + ")" * nest + "+1"
    return names


def _indirect_chain(count: int, nest: int) -> dict[str, object]:
    cells: dict[str, object] = {"S!A1": "=RiskNormal(0,1)"}
    for r in range(2, count + 1):
        cells[f"S!A{r}"] = "=" + "SUM(" * nest + f'INDIRECT("A{r - 1}")' + ")" * nest + "+1"
    cells["S!B1"] = f"=RiskOutput()+A{count}"
    return cells


def test_names_and_indirect_cells_nest_within_a_limit(compile_model) -> None:
    """A formula's depth is bounded by the parser, but the names and INDIRECT cells it reads
    add theirs: three names each nesting 60 SUMs, or 30 INDIRECT cells under 5 SUMs each, ran
    lowering out of stack (RecursionError). Past the limit the model is refused naming the
    cell; a short chain still builds."""
    ok = build({"S!A1": "=RiskNormal(0,1)", "S!B1": "=RiskOutput()+nm_3"}, names=_name_chain(3, 2))
    outputs, inputs = compile_model(ok, seed=1).evaluate(0, 100)
    np.testing.assert_allclose(outputs["S!B1"], inputs["S!A1"] + 3.0, rtol=1e-12)
    limit = "formula nests deeper than 150 levels, counting the defined names"
    deep = {"S!A1": "=RiskNormal(0,1)", "S!B1": "=RiskOutput()+nm_3"}
    with pytest.raises(FormulaError, match=limit) as err:
        build(deep, names=_name_chain(3, 60))
    assert err.value.location == "S!B1"
    with pytest.raises(FormulaError, match=limit) as err:
        build({**deep, "S!B1": "=RiskOutput()+nm_200"}, names=_name_chain(200, 0))
    assert build(_indirect_chain(30, 0)).inputs  # INDIRECT alone: a few levels a cell
    with pytest.raises(FormulaError, match=limit) as err:
        build(_indirect_chain(30, 5))
    assert err.value.location.startswith("S!A")


def test_lowering_out_of_stack_is_a_model_error() -> None:
    """The backstop behind the limit: whatever a caller's stack, never a RecursionError."""
    deep = "=RiskOutput()+" + "SUM(" * 90 + "A1" + ")" * 90
    data = xlsx({"S!A1": "=RiskNormal(0,1)", "S!B1": deep})
    saved = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack(0)) + 350)  # parsing it takes ~280 frames
    try:
        with pytest.raises(FormulaError, match="formula nests too deeply to compile") as err:
            load_workbook(data)
    finally:
        sys.setrecursionlimit(saved)
    assert err.value.location == "S!B1"


def test_random_parameters_and_conditions_stay_in_the_graph() -> None:
    model = build(
        {
            "S!A1": "=RiskUniform(1,2)",
            "S!A2": "=RiskNormal(A1*10,1)",
            "S!B1": "=RiskOutput()+IF(A2>15,A2,0)",
        }
    )
    mean = model.inputs[1].params[0]
    assert isinstance(mean, Apply) and mean.args[0] is model.inputs[0]
    node = model.outputs[0].node
    assert isinstance(node, Apply) and node.fn == "if"


def test_constant_conditions_pick_a_branch() -> None:
    model = build({"S!A1": "=RiskNormal(0,1)", "S!B1": '=RiskOutput()+IF(1>2,"no",A1)'})
    assert model.outputs[0].node is model.inputs[0]


def test_lookups_over_constant_tables(compile_model) -> None:
    cells: dict[str, object] = {f"T!A{r}": r for r in range(1, 4)}
    cells.update({f"T!B{r}": r * 10 for r in range(1, 4)})
    cells.update(
        {
            "T!C1": "=RiskUniform(1,3)",
            "T!D1": "=RiskOutput()+VLOOKUP(C1,A1:B3,2)",
            "T!D2": "=RiskOutput()+INDEX(B1:B3,MATCH(C1,A1:A3,1))",
            "T!D3": "=RiskOutput()+INDEX(A1:B3,2,2)+CHOOSE(2,1,2,3)",
        }
    )
    model = build(cells)
    vlookup = model.outputs[0].node  # a position among the keys, then the pick of a column
    assert isinstance(vlookup, Apply) and vlookup.fn == "index"
    assert vlookup.args[0] == Table((10.0, 20.0, 30.0), 3, 1)
    position = vlookup.args[1]
    assert isinstance(position, Apply) and position.fn == "lookup_t"
    assert position.args[0] is model.inputs[0] and position.args[3] == Table((1.0, 2.0, 3.0), 3, 1)
    outputs, inputs = compile_model(model, seed=1).evaluate(0, 1000)
    x = inputs[model.inputs[0].name]
    np.testing.assert_array_equal(outputs[model.outputs[0].name], 10.0 * np.floor(x))
    np.testing.assert_array_equal(outputs[model.outputs[1].name], 10.0 * np.floor(x))
    assert const(model, 2) == 22


def test_index_with_a_constant_position_picks_an_uncertain_cell() -> None:
    model = build({"S!A1": "=RiskNormal(0,1)", "S!A2": 2, "S!B1": "=RiskOutput()+INDEX(A1:A2,1)"})
    assert model.outputs[0].node is model.inputs[0]


def test_index_at_an_uncertain_row_of_a_table_with_a_label_column(compile_model) -> None:
    """INDEX(table, k, 3) with k per trial reads column 3 only, so the table's text column does
    not matter; INDEX(table, k, 0) and INDEX(table, 0, k) are a whole row and column, which SUM
    adds up (a constant 0 beside a per-trial position was an error in every trial)."""
    labels = ["north", "south", "east"]
    prices = [1.5, 2.5, 3.5]
    grid = np.arange(1.0, 10.0).reshape(3, 3) ** 2
    cells: dict[str, object] = {}
    for r in range(3):
        cells[f"T!A{r + 1}"] = r + 1
        cells[f"T!B{r + 1}"] = labels[r]
        cells[f"T!C{r + 1}"] = prices[r]
        for c in range(3):
            cells[f"T!{'HIJ'[c]}{r + 1}"] = float(grid[r, c])
    cells["T!E1"] = '=RiskIntUniform(1,3,RiskName("k"))'
    cells["T!F1"] = '=RiskOutput("price")+INDEX(A1:C3,E1,3)'
    cells["T!F2"] = '=RiskOutput("price by key")+INDEX($A$1:$C$3,MATCH(E1,$A$1:$A$3,0),3)'
    cells["T!F3"] = '=RiskOutput("row")+SUM(INDEX(H1:J3,E1,0))'
    cells["T!F4"] = '=RiskOutput("column")+SUM(INDEX(H1:J3,0,E1))'
    cells["T!F5"] = '=RiskOutput("first of row")+INDEX(H1:J3,E1,0)'
    outputs, inputs = compile_model(build(cells), seed=3).evaluate(0, 600)
    k = inputs["k"].astype(int) - 1
    assert set(k) == {0, 1, 2}
    np.testing.assert_array_equal(outputs["price"], np.array(prices)[k])
    np.testing.assert_array_equal(outputs["price by key"], np.array(prices)[k])
    np.testing.assert_array_equal(outputs["row"], grid.sum(axis=1)[k])
    np.testing.assert_array_equal(outputs["column"], grid.sum(axis=0)[k])
    np.testing.assert_array_equal(outputs["first of row"], grid[k, 0])


def test_index_that_may_pick_text_at_an_uncertain_position_is_refused() -> None:
    cells = {"T!A1": 1, "T!B1": "north", "T!A2": 2, "T!B2": "south"}
    cells["T!C1"] = "=RiskIntUniform(1,2)"
    cells["T!D1"] = "=RiskOutput()+INDEX(A1:B2,C1,2)"
    err = refusal(cells, FormulaError)
    assert (err.location, err.function) == ("T!D1", "INDEX") and "text" in err.reason


@pytest.mark.parametrize("kind", [0, 1])
def test_cumulative_interest_and_principal_sum_the_schedule(compile_model, kind: int) -> None:
    """CUMIPMT and CUMPRINC are the sums of IPMT and PPMT over the periods (numpy_financial's),
    negative for a loan, payments in arrears (0) or in advance (1); with a per-trial rate and
    folded from constants alike."""
    import numpy_financial as npf

    spans = [(1, 1), (1, 12), (13, 24), (3, 7.5), (1, 360), (2, 2)]
    cells: dict[str, object] = {"S!A1": "=RiskDiscrete({0.006},{1})"}
    for i, (start, end) in enumerate(spans, start=1):
        args = f"360,250000,{start},{end},{kind}"
        cells[f"S!B{i}"] = f'=RiskOutput("interest {i}")+CUMIPMT(A1,{args})'
        cells[f"S!C{i}"] = f'=RiskOutput("principal {i}")+CUMPRINC(A1,{args})'
        cells[f"S!D{i}"] = f'=RiskOutput("folded interest {i}")+CUMIPMT(0.006,{args})'
        cells[f"S!E{i}"] = f'=RiskOutput("folded principal {i}")+CUMPRINC(0.006,{args})'
    outputs, _ = compile_model(build(cells), seed=1).evaluate(0, 4)
    for i, (start, end) in enumerate(spans, start=1):
        periods = np.arange(math.ceil(start), math.floor(end) + 1)
        interest = npf.ipmt(0.006, periods, 360, 250000, 0, when=kind).sum()
        principal = npf.ppmt(0.006, periods, 360, 250000, 0, when=kind).sum()
        for prefix in ("", "folded "):
            np.testing.assert_allclose(
                outputs[f"{prefix}interest {i}"], interest, rtol=1e-9, atol=1e-6
            )
            np.testing.assert_allclose(outputs[f"{prefix}principal {i}"], principal, rtol=1e-9)


def test_financial_functions_get_all_their_arguments() -> None:
    model = build({"S!A1": "=RiskUniform(0.01,0.1)", "S!B1": "=RiskOutput()+PMT(A1,10,1000)"})
    pmt = model.outputs[0].node
    assert (
        isinstance(pmt, Apply)
        and pmt.fn == "pmt"
        and pmt.args[1:] == (Const(10.0), Const(1000.0), Const(0.0), Const(0.0))
    )


BIG_SEED = 2**53 + 1  # not exactly a double: only text keeps it


def test_property_functions() -> None:
    model = build(
        {
            "S!A1": "Label",
            "S!B1": "=RiskNormal(0,1,RiskTruncate(,2),RiskSeed(42),RiskStatic(0))",
            "S!B2": f'=RiskNormal(0,1,RiskName("Named"),RiskTruncate(-1),RiskSeed("{BIG_SEED}"))',
            "S!B3": "=RiskNormal(0,1,RiskTruncate())",
            "S!C1": '=RiskOutput("Total","Group",1)+B1+B2+B3',
        }
    )
    first, second, third = model.inputs
    assert (first.name, first.truncate, first.seed) == ("Label", (None, 2.0), 42)
    assert (second.name, second.truncate, second.seed) == ("Named", (-1.0, None), BIG_SEED)
    assert third.truncate == (None, None)
    assert model.outputs[0].name == "Total"
    assert model.warnings == ()


def test_duplicate_names_are_made_unique() -> None:
    model = build(
        {
            "S!A1": '=RiskNormal(0,1,RiskName("x"))',
            "S!A2": '=RiskNormal(0,1,RiskName("x"))',
            "S!B1": '=RiskOutput("y")+A1',
            "S!B2": '=RiskOutput("y")+A2',
        }
    )
    assert [s.name for s in model.inputs] == ["x (S!A1)", "x (S!A2)"]
    assert [o.name for o in model.outputs] == ["y (S!B1)", "y (S!B2)"]


# --- refusals ---------------------------------------------------------------------------------


def refusal(cells: Mapping[str, object], kind: type[ModelError], **kw: Any) -> ModelError:
    with pytest.raises(kind) as err:
        build(cells, **kw)
    return err.value


def test_no_output_is_refused() -> None:
    err = refusal({"S!A1": "=RiskNormal(0,1)"}, ModelError)
    assert "no RiskOutput" in str(err)


def test_unsupported_function_names_cell_and_function() -> None:
    err = refusal({"S!A1": '=RiskOutput()+CUBEVALUE("cube",1)'}, FormulaError)
    assert (err.location, err.function, err.reason) == ("S!A1", "CUBEVALUE", "unsupported function")


@pytest.mark.parametrize(
    ("formula", "operator"),
    [("=RiskOutput()+_xlfn.SINGLE(B1:B3)", "the @ operator"), ("=_xlfn.ANCHORARRAY(B1)", "A1#")],
)
def test_excel_operators_stored_as_functions_are_named(formula: str, operator: str) -> None:
    """Excel 365 stores @ and A1# as functions the user never typed: the refusal says which."""
    err = refusal({"S!A1": formula, "S!B1": 1, "S!C1": "=RiskOutput()+A1"}, FormulaError)
    assert err.location == "S!A1" and operator in err.reason


def test_circular_reference_names_the_cycle() -> None:
    err = refusal(
        {"S!A1": "=B1+1", "S!B1": "=C1", "S!C1": "=A1", "S!D1": "=RiskOutput()+A1"},
        CircularReference,
    )
    assert "S!A1 -> S!B1 -> S!C1 -> S!A1" in str(err)


def test_self_reference_and_circular_names() -> None:
    refusal({"S!A1": "=RiskOutput()+A1"}, CircularReference)
    err = refusal({"S!A1": "=RiskOutput()+Loop"}, CircularReference, names={"Loop": "Loop+1"})
    assert "Loop" in str(err)


def test_text_in_arithmetic_is_value_error_with_a_warning_naming_the_cell() -> None:
    model = build(
        {
            "S!A1": "abc",
            "S!A2": "=A1*2",
            "S!A3": '="3"*2',
            "S!B1": "=RiskOutput()+A2+RiskNormal(0,1)",
        }
        | {"S!B2": "=RiskOutput()+A3"}
    )
    assert xlerror.name(const(model, 1)) == ""
    assert const(model, 1) == 6.0  # text that reads as a number is that number
    node = model.outputs[0].node
    assert isinstance(node, Apply) and xlerror.name(node.args[0].value) == "#VALUE!"  # type: ignore[union-attr]
    assert any(w.startswith("S!A2: text 'abc'") for w in model.warnings)


def test_invalid_distribution_parameters() -> None:
    err = refusal({"S!A1": "=RiskOutput()+RiskNormal(0,-1)"}, ParameterError)
    assert (err.location, err.function) == ("S!A1", "RiskNormal")
    err = refusal({"S!B2": "=RiskOutput()+RiskTriang(3,2,1)"}, ParameterError)
    assert (err.location, err.function) == ("S!B2", "RiskTriang")
    err = refusal({"S!A1": "=RiskOutput()+RiskDiscrete({1,2,3},{1,2})"}, ParameterError)
    assert "values has 3 entries" in err.reason
    err = refusal({"S!A1": "=RiskOutput()+RiskDiscrete({1,2},{0,0})"}, ParameterError)
    assert "positive" in err.reason


def test_parameters_computed_from_constant_cells_are_checked_too() -> None:
    err = refusal({"S!A1": -1, "S!B1": "=RiskOutput()+RiskNormal(0,A1*2)"}, ParameterError)
    assert err.location == "S!B1" and "sd must be > 0, got -2" in err.reason


def test_unknown_names_and_sheets() -> None:
    assert "unknown name" in str(refusal({"S!A1": "=RiskOutput()+Nope"}, FormulaError))
    assert "no sheet" in str(refusal({"S!A1": "=RiskOutput()+Nope!A1"}, FormulaError))
    let = "=RiskOutput()+_xlfn.LET(_xlpm.x,2,_xlpm.x*3)"  # as Excel stores LET
    assert "LET and LAMBDA are not supported ('x'" in str(refusal({"S!A1": let}, FormulaError))


def test_property_functions_only_inside_distributions() -> None:
    err = refusal({"S!A1": '=RiskOutput()+RiskName("x")'}, FormulaError)
    assert err.function == "RiskName"
    refusal({"S!A1": "=RiskOutput()+RiskNormal(0,1,5)"}, FormulaError)
    refusal({"S!A1": "=RiskOutput()+RiskNormal(0,1,RiskTruncate(5,1))"}, ParameterError)


def _corr(matrix: list[list[float]]) -> dict[str, object]:
    cells: dict[str, object] = {}
    for i, row in enumerate(matrix):
        for j, v in enumerate(row):
            cells[f"C!{'ABC'[j]}{i + 1}"] = v
        cells[f"S!A{i + 1}"] = f"=RiskNormal(0,1,RiskCorrmat(C!$A$1:$C$3,{i + 1}))"
    cells["S!B1"] = "=RiskOutput()+A1+A2+A3"
    return cells


def test_valid_correlation_with_a_blank_triangle() -> None:
    cells = _corr([[1, 0.5, 0.2], [0.5, 1, 0.1], [0.2, 0.1, 1]])
    del cells["C!A2"], cells["C!A3"], cells["C!B3"]
    (corr,) = build(cells).correlations
    assert corr.matrix == ((1, 0.5, 0.2), (0.5, 1, 0.1), (0.2, 0.1, 1))
    assert corr.name == "C!A1:C3"


@pytest.mark.parametrize(
    ("matrix", "reason"),
    [
        ([[1, 0.5, 0], [0.4, 1, 0], [0, 0, 1]], "not symmetric"),
        ([[1, 0, 0], [0, 0.9, 0], [0, 0, 1]], "diagonal"),
        ([[1, 1.5, 0], [1.5, 1, 0], [0, 0, 1]], "[-1, 1]"),
        ([[1, 0.9, -0.9], [0.9, 1, 0.9], [-0.9, 0.9, 1]], "positive semi-definite"),
    ],
)
def test_invalid_correlation_matrices(matrix: list[list[float]], reason: str) -> None:
    err = refusal(_corr(matrix), CorrelationError)
    assert reason in err.reason and err.location == "C!A1:C3" and err.function == "RiskCorrmat"
    assert "C!A1:C3" not in err.reason  # the location says it once


def test_one_matrix_however_it_is_spelled() -> None:
    cells = _corr([[1, 0.5, 0.2], [0.5, 1, 0.1], [0.2, 0.1, 1]])
    cells["S!A2"] = "=RiskNormal(0,1,RiskCorrmat(corr,2))"
    cells["S!A3"] = "=RiskNormal(0,1,RiskCorrmat(CORR,3))"
    (corr,) = build(cells, names={"Corr": "C!$A$1:$C$3"}).correlations
    assert corr.streams == (0, 1, 2) and corr.name == "C!A1:C3"


def test_instances_of_one_matrix_are_separate_correlations() -> None:
    cells = _corr([[1, 0.5, 0.2], [0.5, 1, 0.1], [0.2, 0.1, 1]])
    for r in range(1, 4):
        cells[f"S!A{r + 3}"] = f'=RiskNormal(0,1,RiskCorrmat(C!$A$1:$C$3,{r},"second"))'
    cells["S!B1"] = "=RiskOutput()+SUM(A1:A6)"
    first, second = build(cells).correlations
    assert first.streams == (0, 1, 2) and second.streams == (3, 4, 5)
    assert second.name == "C!A1:C3 (second)"


def test_correlation_positions_must_be_distinct() -> None:
    cells = _corr([[1, 0.5, 0.2], [0.5, 1, 0.1], [0.2, 0.1, 1]])
    cells["S!A3"] = "=RiskNormal(0,1,RiskCorrmat(C!$A$1:$C$3,2))"
    assert "used twice" in str(refusal(cells, CorrelationError))


# --- deterministic evaluation against the independent `formulas` engine -----------------------

EXPECTED = json.loads((Path(__file__).parents[1] / "data" / "formulas_expected.json").read_text())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_constant_folding_matches_formulas(name: str) -> None:
    model = load_workbook(_bytes(models.MODELS[name]("constant")))
    got = {o.address: o.node for o in model.outputs}
    assert set(got) == set(EXPECTED[name])
    for where, value in EXPECTED[name].items():
        assert isinstance(got[where], Const), where
        assert got[where].value == pytest.approx(value, rel=1e-12, abs=1e-12), where  # type: ignore[union-attr]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_back_ends_match_formulas_with_inputs_fixed(name: str, compile_model) -> None:
    model = load_workbook(_bytes(models.MODELS[name]("fixed")))
    assert model.inputs and all(s.distribution == "discrete" for s in model.inputs)
    outputs, _ = compile_model(model, seed=3).evaluate(0, 4)
    for o in model.outputs:
        expected = EXPECTED[name][o.address]
        np.testing.assert_allclose(
            outputs[o.name], expected, rtol=1e-12, atol=1e-12, err_msg=o.name
        )


# --- bounds on what a formula may make the builder read ----------------------------------------


def test_a_sheet_sized_range_over_a_small_sheet_reads_only_its_cells() -> None:
    model = build(
        {"S!A1": 2, "S!B2": "=RiskNormal(0,1)", "T!A1": "=RiskOutput()+SUM(S!A1:XFD1048576)"}
    )
    node = model.outputs[0].node
    assert isinstance(node, Apply) and node.args == (Const(2.0), model.inputs[0])


def test_a_huge_table_is_refused() -> None:
    err = refusal(
        {"S!A1": "=RiskUniform(0,1)", "S!B1": "=RiskOutput()+MATCH(A1,C1:Z100000,1)"}, ModelError
    )
    assert "limit" in err.reason and err.location == "S!C1:Z100000"


def test_the_total_cells_read_through_ranges_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.engine import build as build_module

    cells: dict[str, object] = {f"S!A{r}": r for r in range(1, 51)}
    cells.update({f"S!B{r}": "=SUM($A$1:$A$50)" for r in range(1, 51)})
    cells["S!C1"] = "=RiskOutput()+SUM(B1:B50)"
    monkeypatch.setattr(build_module, "MAX_REFERENCED_CELLS", 1000)
    assert "more than 1000 cells" in str(refusal(cells, ModelError))


def test_the_number_of_formula_cells_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.engine import build as build_module

    cells: dict[str, object] = {"S!A1": "=RiskNormal(0,1)"}
    cells.update({f"S!A{r}": f"=A{r - 1}+1" for r in range(2, 30)})
    cells["S!B1"] = "=RiskOutput()+A29"
    monkeypatch.setattr(build_module, "MAX_FORMULA_CELLS", 20)
    assert "more than 20 formula cells" in str(refusal(cells, ModelError))


# --- random formulas: a refusal is always a ModelError, never a crash ----------------------------

_ATOMS = [
    "1",
    "2.5",
    "-3",
    "A1",
    "B1:B3",
    "A:A",
    "Rate",
    "TRUE",
    '"x"',
    "#N/A",
    "{1,2;3,4}",
    "",
    "T!A1",
]
_FUNCTIONS = [
    "SUM",
    "IF",
    "AND",
    "IFERROR",
    "SUMPRODUCT",
    "AVERAGE",
    "MIN",
    "MAX",
    "LN",
    "LOG",
    "ROUND",
    "MOD",
    "NPV",
    "PV",
    "CHOOSE",
    "INDEX",
    "MATCH",
    "VLOOKUP",
    "RiskNormal",
    "RiskDiscrete",
    "RiskOutput",
    "RiskName",
    "RiskTruncate",
    "RiskCorrmat",
    "NOPE",
]
_OPERATORS = ["+", "-", "*", "/", "^", "&", "=", "<", ":", " ", ","]


def _random_formula(rnd: random.Random, depth: int = 0) -> str:
    r = rnd.random()
    if depth > 3 or r < 0.3:
        return rnd.choice(_ATOMS)
    if r < 0.55:
        return (
            _random_formula(rnd, depth + 1)
            + rnd.choice(_OPERATORS)
            + _random_formula(rnd, depth + 1)
        )
    if r < 0.65:
        return "-(" + _random_formula(rnd, depth + 1) + ")%"
    args = ",".join(_random_formula(rnd, depth + 1) for _ in range(rnd.randint(0, 4)))
    return f"{rnd.choice(_FUNCTIONS)}({args})"


def test_random_formulas_build_or_raise_model_errors() -> None:
    from services.engine.build import Book, build_model
    from services.engine.formula import Formula

    rnd = random.Random(20261122)
    outcomes = {"built": 0, "refused": 0}
    for _ in range(1500):
        cells = {
            (1, 1): Formula("=" + _random_formula(rnd)),
            (2, 1): Formula("=RiskNormal(0,1)"),
            (1, 2): Formula("=RiskOutput()+" + _random_formula(rnd)),
            (2, 2): "text",
            (3, 2): 5.0,
        }
        book = Book({"S": cells, "T": {(1, 1): 3.0}}, {(None, "RATE"): "S!$B$3"})
        try:
            build_model(book)
            outcomes["built"] += 1
        except ModelError:
            outcomes["refused"] += 1
    assert min(outcomes.values()) > 100, outcomes  # both paths were exercised
