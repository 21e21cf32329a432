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

from services.engine import rng, sampling, xlerror
from services.engine.cuda import generate
from services.engine.cuda.codegen import literal
from services.engine.cuda.harness import HostHarness, nvcc_path
from services.engine.cuda.runner import SUMMARY
from services.engine.errors import FormulaError
from services.engine.ir import Apply, Const, Model, Output, Sample, Table
from services.engine.numpy_backend import compile_numpy
from tests.engine import models as wb
from tests.engine.ir_models import (
    HAND_MODELS,
    WORKBOOKS,
    assert_close,
    functions,
    model,
    random_parameters,
)

pytestmark = pytest.mark.skipif(nvcc_path() is None, reason="nvcc is not installed")


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


def test_the_statistics_kernels_build_as_pycuda_builds_them(tmp_path):
    """The chunk statistics computed on the GPU (runner.SUMMARY) are one module for every
    model, built without FMA contraction; every kernel the runner launches is in it."""
    _nvcc(tmp_path, SUMMARY, "-ptx", "--fmad=false")
    ptx = (tmp_path / "model.out").read_text()
    for kernel in (
        "alea_segments",
        "alea_fold",
        "alea_count_keys",
        "alea_candidates",
        "alea_gather",
    ):
        assert f".entry {kernel}(" in ptx, kernel


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


def test_gamma_functions_do_not_grow_the_kernel_per_cell(tmp_path):
    """CUDA inlines lgamma at every use (about 600 PTX lines): a workbook of hundreds of
    COMBIN cells took minutes to compile. Through one call each cell adds a few lines."""

    def ptx_lines(cells: int) -> int:
        xs = tuple(
            Sample(i, "uniform", (Const(0.0), Const(60.0)), f"x{i}", f"G!A{i + 1}")
            for i in range(cells)
        )
        combin = (Apply("combin", (Apply("add", (x, Const(40.0))), x)) for x in xs)
        outputs = tuple(Output(f"c{i}", f"G!B{i + 1}", c) for i, c in enumerate(combin))
        _nvcc(tmp_path, generate(Model(xs, outputs)).source, "-ptx")
        return len((tmp_path / "model.out").read_text().splitlines())

    per_cell = (ptx_lines(24) - ptx_lines(4)) / 20
    assert per_cell < 400, f"{per_cell:.0f} PTX lines per COMBIN cell"


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
