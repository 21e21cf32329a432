"""The NumPy back end: Excel semantics per trial, node sharing, invariance, bounded memory.

Tests that take ``compile_model`` run on every CPU back end (native too, conftest.py)."""

from __future__ import annotations

import itertools
import math
import tracemalloc

import numpy as np
import pytest

from services.engine import catalog
from services.engine.errors import FormulaError
from services.engine.ir import Apply, Const, Correlation, Model, Output, Sample, Table
from services.engine.numpy_backend import FUNCTIONS, compile_numpy


def normal(stream: int, mean: object = 0.0, sd: object = 1.0, **kw: object) -> Sample:
    params = tuple(p if isinstance(p, Sample | Apply | Const) else Const(p) for p in (mean, sd))
    return Sample(stream, "normal", params, f"x{stream}", f"In!A{stream + 1}", **kw)  # type: ignore[arg-type]


def sample(stream: int, dist: str, *params: float) -> Sample:
    return Sample(stream, dist, tuple(Const(p) for p in params), f"x{stream}", f"In!A{stream + 1}")


def model(outputs: dict[str, object], *inputs: Sample, correlations=()) -> Model:
    outs = tuple(Output(k, f"Out!{k}", v) for k, v in outputs.items())  # type: ignore[arg-type]
    return Model(inputs, outs, tuple(correlations))


def test_sum_of_independent_inputs(compile_model) -> None:
    a, b, c = normal(0, 1.0, 2.0), sample(1, "uniform", 0.0, 6.0), sample(2, "expon", 3.0)
    m = model({"S": Apply("add", (Apply("add", (a, b)), c))}, a, b, c)
    n = 1 << 18
    outputs, inputs = compile_model(m, seed=5).evaluate(0, n)
    s = outputs["S"]
    assert np.array_equal(s, (inputs["x0"] + inputs["x1"]) + inputs["x2"])
    assert abs(s.mean() - 7.0) < 4 * 4.0 / math.sqrt(n)
    assert s.var(ddof=1) == pytest.approx(16.0, rel=0.02)


# Each function on a grid of values, against catalog.evaluate (the front end's constant
# folding) element by element: a cell gives the same value folded or sampled.
GRID = [-2.5, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 2.675, 3.0, 1e3, math.nan]
ONE = ["neg", "percent", "not", "abs", "exp", "ln", "log10", "sqrt", "int", "sign"]
TWO = [
    "add",
    "sub",
    "mul",
    "div",
    "pow",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "iferror",
    "and",
    "or",
    "sum",
    "average",
    "min",
    "max",
    "log",
    "power",
    "round",
    "roundup",
    "rounddown",
    "mod",
    "npv",
]
THREE = ["if", "choose", "sum", "npv", "pv", "fv", "pmt", "min"]


def _finite_or_nan(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return np.where(np.isfinite(x), x, np.nan)


@pytest.mark.parametrize(
    "fn,arity", [(f, 1) for f in ONE] + [(f, 2) for f in TWO] + [(f, 3) for f in THREE]
)
def test_functions_agree_with_constant_folding(fn: str, arity: int) -> None:
    combos = list(itertools.product(GRID, repeat=arity))
    if fn in ("round", "roundup", "rounddown"):
        combos = [(x, d) for x, d in combos if math.isnan(d) or abs(d) <= 3]
    if fn in ("pv", "fv", "pmt"):  # catalog.evaluate fails on rates <= -1 (complex powers)
        combos = [c for c in combos if not c[0] <= -1]
    columns = [np.array(c) for c in zip(*combos, strict=True)]
    with np.errstate(all="ignore"):
        got = _finite_or_nan(FUNCTIONS[fn](*columns))
    expected = np.array([catalog.evaluate(fn, list(c)) for c in combos])
    np.testing.assert_allclose(
        got, expected, rtol=1e-12, equal_nan=True, err_msg=f"{fn}: args {combos}"
    )


@np.errstate(all="ignore")
def test_excel_specific_semantics() -> None:
    f = FUNCTIONS
    np.testing.assert_array_equal(
        f["round"](np.array([2.5, -2.5, 0.125, 1234.5]), np.array([0.0, 0.0, 2.0, -2.0])),
        [3.0, -3.0, 0.13, 1200.0],
    )
    np.testing.assert_array_equal(
        f["mod"](np.array([-7.0, 7.0, 7.0]), np.array([3.0, -3.0, 0.0])), [2.0, -2.0, np.nan]
    )
    assert np.isnan(f["div"](np.array([1.0]), np.array([0.0]))).all()
    assert f["pmt"](0.05 / 12, 360.0, 200_000.0) == pytest.approx(-1073.64, abs=0.01)
    assert f["pv"](0.08, 10.0, -100.0) == pytest.approx(671.008, abs=1e-3)
    assert f["fv"](0.0, 10.0, -100.0, -50.0) == pytest.approx(1050.0)
    assert f["npv"](0.1, Table((100.0, 200.0), 2, 1)) == pytest.approx(100 / 1.1 + 200 / 1.21)


def test_lookups_over_constant_tables() -> None:
    f = FUNCTIONS
    table = Table((1.0, 10.0, 2.0, 20.0, 4.0, 40.0), 3, 2)
    x = np.array([0.5, 1.0, 2.5, 4.0, 9.0, np.nan])
    np.testing.assert_array_equal(
        f["vlookup"](x, table, 2.0, 1.0), [np.nan, 10, 20, 40, 40, np.nan]
    )
    np.testing.assert_array_equal(
        f["vlookup"](x, table, 2.0, 0.0), [np.nan, 10, np.nan, 40, np.nan, np.nan]
    )
    keys = Table((3.0, 1.0, 2.0), 3, 1)
    np.testing.assert_array_equal(f["match"](np.array([2.0, 5.0]), keys, 0.0), [3.0, np.nan])
    np.testing.assert_array_equal(
        f["match"](np.array([2.5]), Table((3.0, 2.0, 1.0), 1, 3), -1.0), [1.0]
    )
    np.testing.assert_array_equal(
        f["index"](table, np.array([1.0, 3.0, 4.0]), 2.0), [10.0, 40.0, np.nan]
    )
    np.testing.assert_array_equal(f["index"](Table((5.0, 6.0, 7.0), 1, 3), np.array([2.0])), [6.0])
    for fn in ("match", "vlookup"):
        args = (keys, 1.0) if fn == "match" else (table, 2.0, 1.0)
        for xv in (0.0, 1.5, 2.0, 3.5, 9.0):
            assert np.array_equal(
                f[fn](np.array([xv]), *args), [catalog.evaluate(fn, [xv, *args])], equal_nan=True
            )


def test_if_evaluates_both_branches_and_iferror_catches(compile_model) -> None:
    x = normal(0)
    ratio = Apply("div", (Const(1.0), Apply("gt", (x, Const(0.0)))))  # #DIV/0! when x <= 0
    out = Apply("iferror", (ratio, Const(-1.0)))
    pick = Apply("if", (Apply("gt", (x, Const(0.0))), x, Apply("neg", (x,))))
    outputs, inputs = compile_model(model({"r": out, "abs": pick}, x), seed=1).evaluate(0, 1000)
    np.testing.assert_array_equal(outputs["r"], np.where(inputs["x0"] > 0, 1.0, -1.0))
    np.testing.assert_array_equal(outputs["abs"], np.abs(inputs["x0"]))


def test_random_parameters_and_per_trial_nan(compile_model) -> None:
    mean = sample(0, "uniform", 10.0, 20.0)
    sd = normal(1, 0.5, 1.0)  # negative in ~31% of trials: those trials are #NUM!
    y = normal(2, mean, sd)
    outputs, inputs = compile_model(model({"y": y}, mean, sd, y), seed=3).evaluate(0, 1 << 16)
    bad = inputs["x1"] <= 0
    assert np.isnan(outputs["y"][bad]).all() and np.isfinite(outputs["y"][~bad]).all()
    assert bad.mean() == pytest.approx(0.3085, abs=0.01)
    assert outputs["y"][~bad].mean() == pytest.approx(15.0, abs=0.05)


def test_equal_subexpressions_share_one_register() -> None:
    x = normal(0)
    twice = [Apply("mul", (x, Const(2.0))) for _ in range(2)]  # equal, distinct objects
    out = Apply("add", (twice[0], twice[1]))
    ev = compile_numpy(model({"o": out, "c": Const(3.0)}, x), seed=1)
    assert ev.registers == 7  # 0.0, 1.0 (x's parameters), x, 2.0, x*2 once, the sum, 3.0
    outputs, inputs = ev.evaluate(10, 100)
    np.testing.assert_array_equal(outputs["o"], inputs["x0"] * 4.0)
    np.testing.assert_array_equal(outputs["c"], np.full(100, 3.0))


def test_deep_chain_compiles_without_recursion(compile_model) -> None:
    x = normal(0)
    node: object = x
    for _ in range(20_000):
        node = Apply("add", (node, Const(1.0)))
    outputs, inputs = compile_model(model({"deep": node}, x), seed=1).evaluate(0, 8)
    np.testing.assert_allclose(outputs["deep"], inputs["x0"] + 20_000.0)


def test_unsupported_function_names_its_cell(compile_model) -> None:
    x = normal(0)
    bad = Apply("vlookdown", (x,), "Calc!C7")
    with pytest.raises(FormulaError, match="Calc!C7") as err:
        compile_model(model({"o": bad}, x), seed=1)
    assert err.value.function == "vlookdown"


def _mixed_model() -> Model:
    a, b, c = normal(0, 1.0, 2.0), sample(1, "gamma", 2.0, 1.0), sample(2, "triang", 0.0, 1.0, 3.0)
    d = Sample(3, "poisson", (Const(5.0),), "d", "In!A4", truncate=(2.0, None))
    e = Sample(4, "uniform", (Const(0.0), Const(1.0)), "e", "In!A5", seed=77)
    total = Apply("add", (Apply("mul", (a, b)), Apply("sub", (c, Apply("div", (d, e))))))
    corr = Correlation("M", (0, 1, 2), ((1.0, 0.5, -0.3), (0.5, 1.0, 0.2), (-0.3, 0.2, 1.0)))
    return model({"total": total}, a, b, c, d, e, correlations=[corr])


@pytest.mark.parametrize("sampling", ["mc", "lhs"])
def test_bits_do_not_depend_on_chunks_or_threads(sampling: str, compile_model) -> None:
    m = _mixed_model()
    n = (1 << 17) + 123
    whole, ins = compile_model(m, seed=9, sampling=sampling, threads=1).evaluate(0, n)
    ev = compile_model(m, seed=9, sampling=sampling, threads=2)
    cuts = [0, 1, 70_000, 70_001, (1 << 17) + 5, n]
    parts = [ev.evaluate(a, b - a) for a, b in itertools.pairwise(cuts)]
    assert np.array_equal(np.concatenate([p[0]["total"] for p in parts]), whole["total"])
    for name in ins:
        assert np.array_equal(np.concatenate([p[1][name] for p in parts]), ins[name])


def test_seed_and_riskseed(compile_model) -> None:
    m = _mixed_model()
    one = compile_model(m, seed=1).evaluate(0, 100)[1]
    two = compile_model(m, seed=2).evaluate(0, 100)[1]
    assert not np.array_equal(one["x0"], two["x0"])
    assert np.array_equal(one["e"], two["e"])  # RiskSeed(77) fixes this input's stream


def test_memory_is_bounded_by_the_chunk_not_the_graph() -> None:
    x = normal(0)
    node: object = x
    for i in range(300):  # 300 intermediates of 8 bytes per trial each, if all were kept
        node = Apply("add", (Apply("mul", (node, Const(0.5))), Const(float(i))))
    ev = compile_numpy(model({"o": node}, x), seed=1)
    n = 1 << 18
    ev.evaluate(0, 1 << 16)  # warm up caches outside the measurement
    tracemalloc.start()
    ev.evaluate(0, n)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    kept = 2 * 8 * n  # the returned output and input
    assert peak < kept + 32 * 8 * (1 << 16) * ev.threads  # a few live tiles, not 600 arrays
