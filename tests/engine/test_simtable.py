"""RiskSimtable: one run, N simulations.

The reference for simulation k is the plain model with simulation k's values written as
constants (``examples.simtable(values=k)``): with the default seeds, every simulation of the
expanded model must equal it trial by trial — on NumPy, on the native back end and in the
generated CUDA source (nvcc host harness) — and its mean must match the model's exact mean.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from services import engine
from services.cli import simulate
from services.engine import native, outcome, simtable
from services.engine.cuda.codegen import generate
from services.engine.cuda.harness import HostHarness, nvcc_path
from services.engine.errors import ModelError
from services.engine.ir import Apply, Const, Correlation, Model, Output, Sample, Table
from services.engine.numpy_backend import compile_numpy
from services.engine.spec import model_from_spec
from services.simulation import convert
from tests.engine import examples
from tests.engine import models as wb
from tests.engine.ir_models import assert_close

SEED = 20261204
SIMS = len(examples.RATES)


def _load(tmp_path: Path, values: int | None = None) -> Model:
    name = "simtable" if values is None else f"simtable_{values}"
    return engine.load_workbook(wb.save(examples.simtable(values), tmp_path, name))


def _simulation(outputs: dict[str, np.ndarray], k: int) -> dict[str, np.ndarray]:
    """Simulation ``k``'s (0-based) outputs of an expanded model, under the model's names."""
    return {name: outputs[f"{name} [{k + 1}]"] for name in ("Profit", "Value")}


def test_the_example_runs_three_simulations_in_one_model(tmp_path: Path) -> None:
    model = _load(tmp_path)
    assert simtable.simulations(model) == SIMS
    expansion = simtable.expand(model)
    assert [o.name for o in expansion.model.outputs] == [
        f"{n} [{k}]" for k in (1, 2, 3) for n in ("Profit", "Value")
    ]
    # Price changes its mean per simulation: two copies; Volume and Unit cost are shared.
    assert [s.name for s in expansion.model.inputs] == [
        "Price",
        "Volume",
        "Unit cost",
        "Price [2]",
        "Price [3]",
    ]
    assert [s.draws_from for s in expansion.model.inputs] == [None, None, None, 0, 0]
    assert expansion.values == [
        [("Model!B1", r), ("Model!B2", p)]
        for r, p in zip(examples.RATES, examples.PRICES, strict=True)
    ]


@pytest.mark.parametrize("sampling", ["mc", "lhs"])
def test_each_simulation_is_the_plain_model_trial_by_trial_on_numpy(tmp_path, sampling) -> None:
    expanded = simtable.expand(_load(tmp_path)).model
    outputs, _ = compile_numpy(expanded, seed=SEED, sampling=sampling).evaluate(65_530, 3_000)
    for k in range(SIMS):
        plain = compile_numpy(_load(tmp_path, k), seed=SEED, sampling=sampling)
        want, _ = plain.evaluate(65_530, 3_000)  # crosses an LHS block
        for name, values in _simulation(outputs, k).items():
            np.testing.assert_array_equal(values, want[name], err_msg=f"{name} [{k + 1}]")


@pytest.mark.skipif(native.available() is not None, reason="no C compiler")
@pytest.mark.parametrize("sampling", ["mc", "lhs"])
def test_each_simulation_is_the_plain_model_on_the_native_backend(tmp_path, sampling) -> None:
    expanded = simtable.expand(_load(tmp_path)).model
    outputs, inputs = native.compile_native(expanded, seed=SEED, sampling=sampling).evaluate(
        3, 4_001
    )
    want_out, want_in = compile_numpy(expanded, seed=SEED, sampling=sampling).evaluate(3, 4_001)
    assert_close(outputs, want_out)
    assert_close(inputs, want_in)
    for k in range(SIMS):
        plain, _ = native.compile_native(_load(tmp_path, k), seed=SEED, sampling=sampling).evaluate(
            3, 4_001
        )
        for name, values in _simulation(outputs, k).items():
            np.testing.assert_array_equal(values, plain[name])


@pytest.mark.skipif(nvcc_path() is None, reason="nvcc is not installed")
def test_the_generated_cuda_source_gives_every_simulation(tmp_path) -> None:
    expanded = simtable.expand(_load(tmp_path)).model
    harness = HostHarness(generate(expanded), tmp_path)
    outputs, inputs = harness.evaluate(SEED, 5, 2_001)
    want_out, want_in = compile_numpy(expanded, seed=SEED).evaluate(5, 2_001)
    assert_close(outputs, want_out)
    assert_close(inputs, want_in)


def test_means_match_the_exact_means_of_each_simulation(tmp_path) -> None:
    expansion = outcome.prepare(_load(tmp_path), outcome.RunOptions())
    trials = 200_000
    partial = engine.simulate(expansion.model, trials=trials, seed=SEED, backend="numpy")
    data = outcome.results_data(expansion, partial)
    assert list(data) == [f"{n} [{k}]" for k in (1, 2, 3) for n in ("Profit", "Value")]
    for k in range(SIMS):
        for name, mean in examples.simtable_means(k).items():
            r = data[f"{name} [{k + 1}]"]
            assert r["name"] == name and r["simulation"] == k + 1
            assert r["simtable"] == [
                ["Model!B1", examples.RATES[k]],
                ["Model!B2", examples.PRICES[k]],
            ]
            assert abs(r["mean"] - mean) < 4 * r["std"] / trials**0.5, (name, k)
            # sensitivity names the model's own inputs, whichever copy the simulation drew
            assert {i for i, _ in r["sensitivity"]} == {"Price", "Volume", "Unit cost"}


def test_a_model_without_riksimtable_keeps_its_results_as_they_were(tmp_path) -> None:
    model = engine.load_workbook(wb.save(wb.small("risk"), tmp_path, "small"))
    expansion = outcome.prepare(model, outcome.RunOptions(vary_seeds=True))
    assert expansion.model is model
    partial = engine.simulate(model, trials=2_000, seed=1, backend="numpy")
    assert outcome.results_data(expansion, partial) == {
        n: r.to_dict() for n, r in partial.results().items()
    }


def test_varied_seeds_draw_afresh_but_riskseed_inputs_keep_their_numbers(tmp_path) -> None:
    book = examples.simtable()
    book["Model"]["B4"] = '=RiskUniform(30,40,RiskName("Unit cost"),RiskSeed(7))'
    model = engine.load_workbook(wb.save(book, tmp_path, "seeded"))
    expansion = simtable.expand(model, vary_seeds=True)
    names = [s.name for s in expansion.model.inputs]
    copies = [f"{n} [{k}]" for k in (2, 3) for n in ("Price", "Volume")]
    assert names == ["Price", "Volume", "Unit cost", *copies]
    assert all(s.draws_from is None for s in expansion.model.inputs)
    _, inputs = compile_numpy(expansion.model, seed=SEED).evaluate(0, 20_000)
    assert not np.array_equal(inputs["Volume"], inputs["Volume [2]"])
    assert abs(np.corrcoef(inputs["Volume"], inputs["Volume [3]"])[0, 1]) < 0.05
    # same distribution, other numbers
    assert abs(inputs["Volume [2]"].mean() - sum(examples.VOLUME) / 3) < 5
    partial = engine.simulate(expansion.model, trials=100_000, seed=SEED, backend="numpy")
    data = outcome.results_data(expansion, partial)
    for k in range(SIMS):
        r = data[f"Profit [{k + 1}]"]
        mean = examples.simtable_means(k)["Profit"]
        assert abs(r["mean"] - mean) < 4 * r["std"] / 100_000**0.5


def _correlated(simulations: tuple[float, ...] | None) -> Model:
    """Two rank-correlated normals; the first one's mean is a RiskSimtable (or a constant)."""
    if simulations is None:
        mean: Const | Apply = Const(0.0)
    else:
        table = Table(simulations, 1, len(simulations))
        mean = Apply(simtable.FUNCTION, (table,), "S!A1")
    a = Sample(0, "normal", (mean, Const(1.0)), "a", "S!A1")
    b = Sample(1, "normal", (Const(10.0), Const(2.0)), "b", "S!A2")
    total = Apply("add", (a, b), "S!A3")
    corr = Correlation("c", (0, 1), ((1.0, 0.7), (0.7, 1.0)))
    return Model((a, b), (Output("total", "S!A3", total),), (corr,))


@pytest.mark.parametrize("vary_seeds", [False, True])
def test_correlated_inputs_keep_their_copula_in_every_simulation(vary_seeds) -> None:
    expansion = simtable.expand(_correlated((0.0, 5.0)), vary_seeds=vary_seeds)
    evaluator = compile_numpy(expansion.model, seed=SEED)
    outputs, inputs = evaluator.evaluate(0, 50_000)
    plain_out, plain_in = compile_numpy(_correlated(None), seed=SEED).evaluate(0, 50_000)
    a2 = inputs["a [2]"]
    if vary_seeds:
        assert len(expansion.model.correlations) == 2
        assert abs(np.corrcoef(a2, inputs["b [2]"])[0, 1] - 0.7) < 0.03
        assert abs(np.corrcoef(a2, inputs["a"])[0, 1]) < 0.03
    else:  # the copy takes a's uniforms after the copula: a shifted by 5
        np.testing.assert_allclose(a2, plain_in["a"] + 5.0, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(outputs["total [1]"], plain_out["total"])
    if native.available() is None:
        got_out, got_in = native.compile_native(expansion.model, seed=SEED).evaluate(0, 5_000)
        want_out, want_in = compile_numpy(expansion.model, seed=SEED).evaluate(0, 5_000)
        assert_close(got_out, want_out)
        assert_close(got_in, want_in)


def test_a_shorter_list_is_na_in_the_simulations_it_has_no_value_for(tmp_path) -> None:
    book = examples.simtable()
    book["Model"]["B1"] = "=RiskSimtable({0.06,0.08})"
    expansion = simtable.expand(engine.load_workbook(wb.save(book, tmp_path, "short")))
    assert expansion.simulations == 3 and expansion.values[2][0] == ("Model!B1", None)
    partial = engine.simulate(expansion.model, trials=1_000, seed=1, backend="numpy")
    data = outcome.results_data(expansion, partial)
    assert data["Value [3]"]["errors"] == 1_000 and data["Value [2]"]["errors"] == 0
    assert data["Profit [3]"]["errors"] == 0  # Profit does not use the rate


def test_a_range_gives_the_values_and_the_spec_takes_it_in_a_formula(tmp_path) -> None:
    book = examples.simtable()
    ws = book["Model"]
    ws["D1"], ws["D2"], ws["D3"] = 0.06, 0.08, 0.10
    ws["B1"] = "=RiskSimtable(D1:D3)"
    assert simtable.expand(engine.load_workbook(wb.save(book, tmp_path, "range"))).values[1][0] == (
        "Model!B1",
        0.08,
    )
    spec = {
        "inputs": [
            {
                "name": "price",
                "distribution": {"kind": "DISTRIBUTION_KIND_NORMAL", "parameters": [50, 5]},
            }
        ],
        "expressions": [
            {"name": "rate", "formula": "RiskSimtable({0.05,0.1})"},
            {"name": "value", "formula": "price/(1+rate)"},
        ],
        "outputs": [{"name": "Value", "expression": "value"}],
    }
    expansion = simtable.expand(model_from_spec(spec))
    assert expansion.values == [
        [("expressions[0].formula", 0.05)],
        [("expressions[0].formula", 0.1)],
    ]
    outputs, inputs = compile_numpy(expansion.model, seed=1).evaluate(0, 100)
    np.testing.assert_allclose(outputs["Value [2]"], inputs["price"] / 1.1, rtol=1e-15)


@pytest.mark.parametrize(
    ("formula", "reason"),
    [
        ("=RiskSimtable({1,2;3,4})", "needs one row or one column of values"),
        ('=RiskSimtable({1,"a"})', "only numbers are supported"),
        ("=RiskSimtable()", "RiskSimtable"),
        ("=RiskSimtable({1,2},{3})", "RiskSimtable"),
        ("=RiskSimtable(D1:E2)", "needs one row or one column of values"),
    ],
)
def test_bad_tables_are_refused_naming_the_cell(tmp_path, formula: str, reason: str) -> None:
    book = examples.simtable()
    ws = book["Model"]
    ws["D1"], ws["D2"], ws["E1"], ws["E2"] = 1, 2, 3, 4
    ws["B1"] = formula
    with pytest.raises(ModelError) as err:
        engine.load_workbook(wb.save(book, tmp_path, "bad"))
    assert "Model!B1" in str(err.value) and reason in str(err.value)


def test_at_most_max_simulations(tmp_path) -> None:
    book = examples.simtable()
    ws = book["Model"]
    for i in range(simtable.MAX_SIMULATIONS + 1):
        ws.cell(i + 1, 10, i / 1000)
    ws["B1"] = f"=RiskSimtable(J1:J{simtable.MAX_SIMULATIONS + 1})"
    with pytest.raises(ModelError, match="at most 1000 simulations"):
        engine.load_workbook(wb.save(book, tmp_path, "many"))


def test_the_results_message_and_alea_results_show_each_simulation(tmp_path) -> None:
    expansion = outcome.prepare(_load(tmp_path), outcome.RunOptions())
    partial = engine.simulate(expansion.model, trials=5_000, seed=SEED, backend="numpy")
    record = SimpleNamespace(
        id="s", model_id="m", trials=5_000, seed=SEED, sampling="mc", backend="numpy", end_time=1.0
    )
    data = outcome.results_data(expansion, partial)
    message = convert.results(record, data, {"Profit": "Model!B7", "Value": "Model!B8"})
    assert [(o.name, o.simulation, o.address) for o in message.outputs][:2] == [
        ("Profit", 1, "Model!B7"),
        ("Value", 1, "Model!B8"),
    ]
    assert [(v.address, v.value) for v in message.simulations[1].values] == [
        ("Model!B1", 0.08),
        ("Model!B2", 55.0),
    ]
    table = simulate.summary_table(message).splitlines()
    assert table[0].split()[:3] == ["sim", "output", "mean"]
    assert [line.split()[:2] for line in table[1:7]] == [
        [str(k), n] for k in (1, 2, 3) for n in ("Profit", "Value")
    ]
    assert table[-1] == "simulation 3: Model!B1 = 0.1, Model!B2 = 60"
    png = tmp_path / "simulations.png"
    simulate.plot(message, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_expansion_beyond_max_copies_is_refused_before_it_is_built(tmp_path, monkeypatch):
    model = _load(tmp_path)
    monkeypatch.setattr(simtable, "MAX_COPIES", 9)
    with pytest.raises(ModelError, match=r"3 simulations of the \d+ formulas") as err:
        simtable.expand(model)
    assert err.value.location == "Model!B1" and err.value.function == "RiskSimtable"
    monkeypatch.setattr(simtable, "MAX_COPIES", 1_000)
    simtable.expand(model)


def test_simulations_list_the_tables_in_cell_order(tmp_path) -> None:
    book = examples.simtable()
    ws = book["Model"]
    ws["B10"], ws["AA1"] = "=RiskSimtable({1,2,3})", "=RiskSimtable({4,5,6})"
    ws["B9"] = '=RiskOutput("Check")+B10+AA1+B1'
    values = simtable.expand(engine.load_workbook(wb.save(book, tmp_path, "order"))).values
    assert [a for a, _ in values[0]] == ["Model!B1", "Model!B2", "Model!B10", "Model!AA1"]


def test_reporting_cells_are_evaluated_per_simulation(tmp_path) -> None:
    from services.engine.reports import evaluate

    book = examples.simtable()
    book["Model"]["A10"], book["Model"]["B10"] = "Mean value", "=RiskMean(B8)*(1+B1)"
    expansion = outcome.prepare(
        engine.load_workbook(wb.save(book, tmp_path, "rep")), outcome.RunOptions()
    )
    partial = engine.simulate(expansion.model, trials=20_000, seed=SEED, backend="numpy")
    reports = evaluate(expansion.model, partial)
    assert [r.name for r in reports] == [f"Mean value [{k}]" for k in (1, 2, 3)]
    data = outcome.results_data(expansion, partial)
    for k, r in enumerate(reports):  # the discounted value's mean times the simulation's rate
        want = data[f"Value [{k + 1}]"]["mean"] * (1 + examples.RATES[k])
        assert r.value == pytest.approx(want, rel=1e-12)
        assert r.value == pytest.approx(data[f"Profit [{k + 1}]"]["mean"], rel=1e-9)
