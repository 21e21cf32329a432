"""Generated CUDA source, proven without a GPU.

Every test model is compiled to PTX by ``nvcc -ptx -arch=sm_90``; the same source is compiled
for this CPU by ``nvcc`` (host harness, :mod:`services.engine.cuda.harness`), which
runs the kernel's own ``__host__ __device__`` functions: its Philox words must equal NumPy's
bit for bit and its inputs and outputs must equal the NumPy back end's within 1e-9 relative
(the quantile functions differ in their last bits: CUDA ``normcdfinv`` against SciPy
``ndtri``, Numerical Recipes incomplete gamma/beta against SciPy's).
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from services.engine import load_workbook, rng, sampling, xlerror
from services.engine.cuda import generate
from services.engine.cuda.codegen import literal
from services.engine.cuda.harness import HostHarness, nvcc_path
from services.engine.distributions import FAMILIES
from services.engine.errors import FormulaError
from services.engine.ir import Apply, Const, Correlation, Model, Output, Sample, Table
from services.engine.numpy_backend import compile_numpy
from tests.engine import models as wb
from tests.engine.test_distributions import TABLE

pytestmark = pytest.mark.skipif(nvcc_path() is None, reason="nvcc is not installed")

RTOL = 1e-9


# --------------------------------------------------------------------------- test models


def _c(*values: float) -> tuple[Const, ...]:
    return tuple(Const(float(v)) for v in values)


def _t(*values: float) -> Table:
    return Table(tuple(float(v) for v in values), len(values), 1)


_PARAMS = {
    "normal": _c(10, 2),
    "triang": _c(1, 2, 6),
    "trigen": _c(2, 5, 8, 10, 90),
    "pert": _c(0, 3, 10),
    "uniform": _c(5, 15),
    "lognorm": _c(10, 3),
    "lognorm2": _c(1, 0.5),
    "discrete": (_t(3, 1, 2), _t(1, 1, 2)),
    "binomial": _c(10, 0.3),
    "poisson": _c(4),
    "expon": _c(5),
    "gamma": _c(2, 3),
    "beta": _c(2, 5),
    "betageneral": _c(2, 5, 10, 20),
    "weibull": _c(2, 10),
    "cumul": (*_c(0, 10), _t(2, 5, 8), _t(0.2, 0.5, 0.9)),
    **{
        name: tuple(p if isinstance(p, Table) else Const(float(p)) for p in ref.params)
        for name, ref in TABLE.items()
        if name in FAMILIES
    },
}
_TRUNCATE = {
    "normal": (8.0, 13.0),
    "gamma": (1.0, None),
    "poisson": (2.0, 6.0),
    "discrete": (2.0, None),
    "weibull": (None, 12.0),
    "beta": (0.1, 0.5),
    "triang": (1.5, 5.0),
    "expon": (None, 3.0),
    "student": (-1.0, 2.0),
    "invgauss": (1.0, None),
    "negbin": (1.0, 6.0),
    "general": (3.0, 8.0),
    "cumuld": (None, 6.0),
    "hypergeo": (2.0, None),
}


def distributions() -> Model:
    """One input and one output per distribution, then truncated copies of some."""
    inputs = [Sample(i, d, p, d, f"Dist!B{i + 1}") for i, (d, p) in enumerate(_PARAMS.items())]
    for d, bounds in _TRUNCATE.items():
        i = len(inputs)
        inputs.append(Sample(i, d, _PARAMS[d], f"{d} truncated", f"Dist!B{i + 1}", truncate=bounds))
    return Model(tuple(inputs), tuple(Output(s.name, s.address, s) for s in inputs))


def random_parameters() -> Model:
    """Parameters drawn from other inputs, some of them invalid in some trials (→ NaN)."""
    mean = Sample(0, "uniform", _c(-1, 3), "mean", "P!B1")
    sd = Sample(1, "uniform", _c(-0.5, 2), "sd", "P!B2")  # sd <= 0 in 20% of trials
    n = Sample(2, "discrete", (_t(0, 5, 7.5, 40), _t(1, 1, 1, 1)), "n", "P!B3")
    inputs = [
        mean,
        sd,
        n,
        Sample(3, "normal", (mean, sd), "x", "P!B4"),
        Sample(4, "gamma", (Apply("add", (Const(0.5), sd)), mean), "g", "P!B5"),
        Sample(5, "binomial", (n, Const(0.4)), "b", "P!B6"),
        Sample(6, "poisson", (Apply("mul", (mean, Const(100.0))),), "p", "P!B7"),
        Sample(7, "pert", (mean, Const(3.0), Const(5.0)), "pert", "P!B8"),
        Sample(
            8, "trigen", (mean, Const(3.0), Const(5.0), Const(10.0), Const(90.0)), "trigen", "P!B9"
        ),
        Sample(9, "cumul", (mean, Const(12.0), _t(4, 6), _t(0.3, 0.8)), "cumul", "P!B10"),
    ]
    return Model(tuple(inputs), tuple(Output(s.name, s.address, s) for s in inputs[3:]))


def functions() -> Model:
    """Every ``Apply.fn`` of the backend protocol over random arguments, with a copula."""
    a = Sample(0, "normal", _c(0, 3), "a", "F!B1")
    b = Sample(1, "uniform", _c(-2, 4), "b", "F!B2")
    k = Sample(2, "discrete", (_t(0, 1, 2, 3, 4), _t(1, 1, 1, 1, 1)), "k", "F!B3")
    grid = Table((1, 10, 100, 2, 20, 200, 3, 30, 300), 3, 3)
    keys = _t(-5, -1, 0, 2, 3.5)
    calls = {
        "add": (a, b),
        "sub": (a, b),
        "mul": (a, b),
        "div": (a, k),
        "pow": (b, a),
        "neg": (a,),
        "percent": (b,),
        "eq": (k, Const(2)),
        "ne": (k, Const(2)),
        "lt": (a, b),
        "le": (a, k),
        "gt": (a, b),
        "ge": (b, k),
        "concat": (a, b),
        "if": (Apply("gt", (a, b)), a, b),
        "and": (a, k, b),
        "or": (k, Const(0)),
        "not": (k,),
        "iferror": (Apply("div", (a, k)), Const(-1)),
        "sum": (a, b, keys, k),
        "sumproduct": (a, b, k, Const(2.0)),
        "average": (a, keys, b),
        "min": (a, b, keys),
        "max": (a, b, Const(1.0)),
        "abs": (a,),
        "exp": (b,),
        "ln": (b,),
        "log": (b, Const(2)),
        "log10": (b,),
        "sqrt": (b,),
        "power": (b, Const(0.5)),
        "round": (Apply("mul", (a, Const(1000))), Const(-1)),
        "roundup": (a, Const(1)),
        "rounddown": (a, Const(2)),
        "int": (a,),
        "mod": (a, k),
        "sign": (b,),
        "npv": (Const(0.08), a, b, keys, k),
        "pv": (Const(0.05), k, a),
        "fv": (Apply("div", (b, Const(100))), Const(10), a, b, Const(1)),
        "pmt": (Apply("div", (k, Const(100))), Const(12), Const(1000)),
        "choose": (Apply("add", (k, Const(0.5))), a, b, Const(7)),
        "index": (grid, Apply("add", (k, Const(0.2))), Const(2)),
        "match": (a, keys, Const(1)),
        "vlookup": (Apply("abs", (b,)), grid, Const(3)),
    }
    outputs = [
        Output(fn, f"F!D{i + 1}", Apply(fn, args, f"F!D{i + 1}"))
        for i, (fn, args) in enumerate(calls.items())
    ]
    outputs += [
        Output("index1", "F!E1", Apply("index", (keys, k))),
        Output("match0", "F!E2", Apply("match", (k, keys, Const(0)))),
        Output("match-1", "F!E3", Apply("match", (b, _t(4, 3, 1, 0, -1), Const(-1)))),
        Output("vlookup0", "F!E4", Apply("vlookup", (k, grid, Const(2), Const(0)))),
        Output("if2", "F!E5", Apply("if", (Apply("lt", (a, b)), a))),
    ]
    corr = Correlation("C", (0, 1), ((1.0, 0.7), (0.7, 1.0)))
    return Model((a, b, k), tuple(outputs), (corr,))


HAND_MODELS = {
    "distributions": distributions,
    "random_parameters": random_parameters,
    "functions": functions,
}


WORKBOOKS = {
    **{name: build for name, build in wb.MODELS.items()},
    **{f"dist_{d}": (lambda d=d: wb.distribution(d)) for d in wb.DISTRIBUTIONS},
}


def model(key: str, tmp_path) -> Model:
    """A hand-built model, or a shared test workbook through the front end."""
    if key in HAND_MODELS:
        return HAND_MODELS[key]()
    return load_workbook(wb.save(WORKBOOKS[key](), tmp_path, key))


@pytest.fixture(scope="module")
def harnesses(tmp_path_factory):
    """Host harnesses compiled once per model for the module."""
    cache: dict[str, HostHarness] = {}
    workdir = tmp_path_factory.mktemp("harness")

    def get(key: str, m: Model) -> HostHarness:
        if key not in cache:
            cache[key] = HostHarness(generate(m), workdir)
        return cache[key]

    return get


def assert_close(actual: dict, expected: dict, rtol: float = RTOL) -> None:
    assert actual.keys() == expected.keys()
    for name, want in expected.items():
        got = actual[name]
        assert got.shape == want.shape, name
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=name)
        ok = ~np.isnan(want)
        np.testing.assert_allclose(got[ok], want[ok], rtol=rtol, atol=1e-300, err_msg=name)


# ---------------------------------------------------------------------------------- tests


def _nvcc(tmp_path, source: str, *flags: str) -> None:
    path = tmp_path / "model.cu"
    path.write_text(source)
    done = subprocess.run(
        [nvcc_path(), *flags, "-arch=sm_90", "-w", str(path), "-o", str(tmp_path / "model.out")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.parametrize("key", [*HAND_MODELS, *WORKBOOKS])
def test_ptx_compiles_for_every_test_model(key, tmp_path):
    # NVVM at -O1: the same front-end checks as a full build, at a fifth of the time.
    _nvcc(tmp_path, generate(model(key, tmp_path)).source, "-ptx", "-Xcicc", "-O1")
    assert ".entry alea_kernel" in (tmp_path / "model.out").read_text()


@pytest.mark.parametrize("key", ["distributions", "functions"])
def test_cubin_builds_fully_optimised(key, tmp_path):
    """As PyCUDA builds it (NVVM -O3 and ptxas): every quantile and Excel function."""
    _nvcc(tmp_path, generate(HAND_MODELS[key]()).source, "-cubin")
    assert (tmp_path / "model.out").stat().st_size > 0


SEEDS = [0, 1, 12345678901234567890, 2**64 - 1]


def test_philox_words_match_numpy_bit_for_bit(harnesses):
    h = harnesses("functions", functions())
    for seed in SEEDS:
        for stream, first in [(0, 0), (1, 3), (7, 1 << 40), (2**63 + 5, 2**62 + 1)]:
            np.testing.assert_array_equal(
                h.raw(seed, stream, first, 37), rng.raw(seed, stream, first, 37)
            )


def test_uniforms_match_numpy_bit_for_bit(harnesses, tmp_path):
    inputs = tuple(
        Sample(i, "uniform", (Const(0.0), Const(1.0)), f"u{i}", f"U!A{i + 1}") for i in range(3)
    )
    fixed = Sample(3, "uniform", (Const(0.0), Const(1.0)), "seeded", "U!A4", seed=99)
    m = Model((*inputs, fixed), (Output("u0", "U!B1", inputs[0]),))
    h = harnesses("uniforms", m)
    _, x = h.evaluate(2**64 - 1, 6, 1003)
    for s in inputs:
        np.testing.assert_array_equal(x[s.name], rng.uniforms(2**64 - 1, s.stream, 6, 1003))
    np.testing.assert_array_equal(x["seeded"], rng.uniforms(99, 3, 6, 1003))


@pytest.mark.parametrize("key", [*HAND_MODELS, *wb.MODELS])
def test_model_matches_numpy_backend(key, harnesses, tmp_path):
    m = model(key, tmp_path)
    h = harnesses(key, m)
    outputs, inputs = h.evaluate(20261122, 5, 4001)
    want_out, want_in = compile_numpy(m, seed=20261122).evaluate(5, 4001)
    assert_close(inputs, want_in)
    assert_close(outputs, want_out)


def test_chunks_give_identical_bits(harnesses):
    h = harnesses("random_parameters", random_parameters())
    whole_out, whole_in = h.evaluate(7, 1, 999)
    parts = [h.evaluate(7, first, count) for first, count in [(1, 2), (3, 500), (503, 497)]]
    for whole, i in ((whole_out, 0), (whole_in, 1)):
        for name, values in whole.items():
            joined = np.concatenate([p[i][name] for p in parts])
            np.testing.assert_array_equal(joined, values, err_msg=name)


def test_latin_hypercube_uniforms_from_the_host(harnesses):
    m = functions()
    h = harnesses("functions", m)
    first, count, seed = 65530, 300, 3  # crosses an LHS block boundary
    u = np.stack([sampling.lhs_uniforms(seed, s.stream, first, count) for s in m.inputs])
    outputs, inputs = h.evaluate(seed, first, count, uniforms=u)
    want_out, want_in = compile_numpy(m, seed=seed, sampling="lhs").evaluate(first, count)
    assert_close(inputs, want_in)
    assert_close(outputs, want_out)


def test_unsupported_function_names_its_cell():
    x = Sample(0, "normal", (Const(0.0), Const(1.0)), "x", "S!A1")
    m = Model((x,), (Output("y", "S!B1", Apply("frobnicate", (x,), "S!B1")),))
    with pytest.raises(FormulaError) as err:
        generate(m)
    assert err.value.location == "S!B1" and err.value.function == "frobnicate"


def test_literals_round_trip_exactly():
    for v in [0.0, -0.0, 1 / 3, -2.5e-310, 1.7976931348623157e308, 5e-324, -np.pi]:
        back = float.fromhex(literal(v).strip("()"))
        assert back == v and np.signbit(back) == np.signbit(v)
    assert literal(float("-inf")) == "(-INFINITY)"
    assert literal(xlerror.NA) == '__builtin_nan("7")'  # an Excel error keeps its code
    assert literal(float("nan")) == '__builtin_nan("6")'  # any other NaN is #NUM!


def test_tables_beyond_the_constant_bank_go_to_global_memory(harnesses, tmp_path):
    x = Sample(0, "uniform", (Const(0.0), Const(9000.0)), "x", "T!A1")
    small = Table(tuple(float(i) for i in range(10)), 10, 1)
    big = Table(tuple(float(-i) for i in range(9000)), 9000, 1)
    m = Model(
        (x,),
        (
            Output("small", "T!B1", Apply("index", (small, Apply("mod", (x, Const(10.0)))))),
            Output("big", "T!B2", Apply("index", (big, x))),
        ),
    )
    src = generate(m).source
    assert "ALEA_TABLE(t0, 10," in src and "ALEA_GLOBAL_TABLE(t1, 9000," in src
    _nvcc(tmp_path, src, "-ptx")
    outputs, _ = harnesses("tables", m).evaluate(3, 0, 500)
    assert_close(outputs, compile_numpy(m, seed=3).evaluate(0, 500)[0], rtol=0)


def test_quantiles_for_extreme_shapes(harnesses):
    """Incomplete gamma/beta inversion against SciPy far from the test models' parameters."""
    cases = [("gamma", (a, 1.0)) for a in (0.05, 0.3, 1.0, 30.0, 1000.0)]
    cases += [("beta", ab) for ab in ((0.1, 0.1), (0.5, 3.0), (50.0, 0.7), (400.0, 600.0))]
    cases += [
        ("binomial", (1000.0, 0.01)),
        ("binomial", (1e5, 0.5)),
        ("poisson", (0.01,)),
        ("poisson", (1e4,)),
    ]
    inputs = tuple(
        Sample(i, d, tuple(Const(v) for v in p), f"{d}{p}", f"X!A{i + 1}")
        for i, (d, p) in enumerate(cases)
    )
    m = Model(inputs, (Output("first", "X!B1", inputs[0]),))
    _, got = harnesses("shapes", m).evaluate(9, 0, 20_000)
    _, want = compile_numpy(m, seed=9).evaluate(0, 20_000)
    assert_close(got, want)
    for d, p in cases:
        if d in ("binomial", "poisson"):
            np.testing.assert_array_equal(got[f"{d}{p}"], want[f"{d}{p}"])


def test_wide_argument_lists(harnesses, tmp_path):
    """300 uncertain cells in SUM, MIN, CHOOSE and NPV: no nesting limit, same values."""
    xs = tuple(
        Sample(i, "uniform", (Const(-1.0), Const(1.0)), f"x{i}", f"W!A{i + 1}") for i in range(300)
    )
    pick = Apply("mul", (Apply("abs", (xs[0],)), Const(100.0)))
    calls = {"sum": xs, "min": xs, "choose": (pick, *xs), "npv": (Const(0.05), *xs)}
    m = Model(
        xs,
        tuple(
            Output(fn, f"W!B{i}", Apply(fn, a)) for i, (fn, a) in enumerate(calls.items(), start=1)
        ),
    )
    _nvcc(tmp_path, generate(m).source, "-ptx", "-Xcicc", "-O1")
    outputs, _ = harnesses("wide", m).evaluate(3, 0, 1000)
    assert_close(outputs, compile_numpy(m, seed=3).evaluate(0, 1000)[0])
