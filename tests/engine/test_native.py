"""The native back end: the generated source built by the system C compiler, in-process.

Its uniforms equal NumPy's bit for bit; its inputs and outputs equal the NumPy back end's
within 1e-9 relative on every test model (the same tolerance as the CUDA harness); its bits
do not depend on chunks or threads; libraries are cached by hash and built safely by
concurrent processes; without a compiler everything falls back to NumPy, saying why.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from services import engine
from services.engine import native, numpy_backend, rng, run, sampling
from services.engine.errors import FormulaError
from services.engine.excel import registry
from services.engine.ir import Apply, Const, Model, Output, Sample
from services.engine.numpy_backend import compile_numpy
from services.engine.stats import Partial, StatsOptions
from tests.engine import models as wb
from tests.engine.ir_models import (
    HAND_MODELS,
    WORKBOOKS,
    assert_close,
    functions,
    huge_counts,
    model,
    random_parameters,
    same_statistics,
)

pytestmark = pytest.mark.skipif(native.available() is not None, reason="no C compiler")

ROOT = Path(__file__).parents[2]


@pytest.mark.parametrize("key", [*HAND_MODELS, *WORKBOOKS])
def test_every_test_model_matches_the_numpy_backend(key: str, tmp_path: Path) -> None:
    m = model(key, tmp_path)
    outputs, inputs = native.compile_native(m, seed=20261122).evaluate(5, 4001)
    want_out, want_in = compile_numpy(m, seed=20261122).evaluate(5, 4001)
    assert_close(inputs, want_in)
    assert_close(outputs, want_out)


def test_uniforms_match_numpy_bit_for_bit() -> None:
    inputs = tuple(
        Sample(i, "uniform", (Const(0.0), Const(1.0)), f"u{i}", f"U!A{i + 1}") for i in range(3)
    )
    fixed = Sample(3, "uniform", (Const(0.0), Const(1.0)), "seeded", "U!A4", seed=99)
    m = Model((*inputs, fixed), (Output("u0", "U!B1", inputs[0]),))
    for seed, first in [(2**64 - 1, 6), (0, 2**40 + 3)]:
        _, x = native.compile_native(m, seed=seed).evaluate(first, 1003)
        for s in inputs:
            np.testing.assert_array_equal(x[s.name], rng.uniforms(seed, s.stream, first, 1003))
        np.testing.assert_array_equal(x["seeded"], rng.uniforms(99, 3, first, 1003))


def test_normal_quantiles_by_column_and_by_trial_are_the_same_and_scipys() -> None:
    """A normal of constant parameters is transformed a column of trials at a time (with its
    RiskSimtable-like copies, which share its quantiles), one whose mean is a formula trial
    by trial: the same bits from the same uniforms, within 2e-15 of SciPy's ndtri."""
    from scipy import special

    u = Sample(0, "uniform", (Const(0.0), Const(1.0)), "u", "A1")
    column = Sample(1, "normal", (Const(0.0), Const(1.0)), "column", "A2")
    scaled = Sample(2, "normal", (Const(3.0), Const(2.0)), "scaled", "A3", draws_from=1)
    mean = Apply("mul", (Const(0.0), u))
    trial = Sample(3, "normal", (mean, Const(1.0)), "trial", "A4", draws_from=1)
    m = Model((u, column, scaled, trial), (Output("sum", "B1", Apply("add", (column, trial))),))
    _, x = native.compile_native(m, seed=11).evaluate(3, 200_003)
    np.testing.assert_array_equal(x["column"], x["trial"])
    np.testing.assert_array_equal(x["scaled"], 3.0 + 2.0 * x["column"])
    want = special.ndtri(rng.uniforms(11, 1, 3, 200_003))
    np.testing.assert_allclose(x["column"], want, rtol=2e-15, atol=0)


@pytest.mark.parametrize("sampling_method", ["mc", "lhs"])
def test_bits_do_not_depend_on_chunks_or_threads(sampling_method: str) -> None:
    m = random_parameters()
    one = native.compile_native(m, seed=7, sampling=sampling_method, threads=1)
    many = native.compile_native(m, seed=7, sampling=sampling_method, threads=3)
    whole_out, whole_in = one.evaluate(1, 70_001)
    parts = [many.evaluate(first, count) for first, count in [(1, 2), (3, 65_534), (65_537, 4465)]]
    for whole, i in ((whole_out, 0), (whole_in, 1)):
        for name, values in whole.items():
            joined = np.concatenate([p[i][name] for p in parts])
            np.testing.assert_array_equal(joined, values, err_msg=name)


def test_latin_hypercube_matches_the_numpy_backend() -> None:
    m = functions()
    first, count, seed = 65530, 300, 3  # crosses an LHS block boundary
    outputs, inputs = native.compile_native(m, seed=seed, sampling="lhs").evaluate(first, count)
    want_out, want_in = compile_numpy(m, seed=seed, sampling="lhs").evaluate(first, count)
    assert_close(inputs, want_in)
    assert_close(outputs, want_out)
    _, inputs = native.compile_native(random_parameters(), seed=seed, sampling="lhs").evaluate(
        first, count
    )
    u = sampling.lhs_uniforms(seed, 0, first, count)  # mean ~ Uniform(-1, 3), uncorrelated
    np.testing.assert_array_equal(inputs["mean"], -1.0 + 4.0 * u)


def test_libraries_are_cached_by_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALEA_HOME", str(tmp_path))
    source, _ = native.native_source(wb_model := random_parameters())
    first = native.build(source)
    assert first.parent == tmp_path / "cache" / "native" and first.stat().st_size > 0
    stamp = first.stat().st_mtime_ns
    assert native.build(source) == first and first.stat().st_mtime_ns == stamp
    other = native.build(native.native_source(functions())[0])
    assert other != first
    assert native.compile_native(wb_model, seed=1).library == first


def test_concurrent_builders_leave_one_whole_library(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALEA_HOME", str(tmp_path))
    source, _ = native.native_source(random_parameters())
    paths: list[Path] = []
    threads = [
        threading.Thread(target=lambda: paths.append(native.build(source))) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(paths)) == 1
    assert sorted(p.name for p in (tmp_path / "cache" / "native").iterdir()) == [paths[0].name]
    outputs, _ = native.compile_native(random_parameters(), seed=2).evaluate(0, 100)
    assert all(v.shape == (100,) for v in outputs.values())


def test_without_a_compiler_cpu_falls_back_to_numpy_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no cc, gcc or clang
    monkeypatch.delenv("ALEA_CC", raising=False)
    assert "no C compiler" in (native.available() or "")
    with caplog.at_level(logging.WARNING):
        evaluator = engine.make_evaluator(random_parameters(), seed=1, backend="cpu")
    assert evaluator.backend == "numpy"
    assert "using the NumPy back end: no C compiler found" in caplog.text
    with pytest.raises(engine.BackendUnavailable, match="no C compiler"):
        engine.make_evaluator(random_parameters(), seed=1, backend="native")


def test_alea_run_without_a_compiler_reports_numpy(tmp_path: Path) -> None:
    path = wb.save(wb.small("risk"), tmp_path, "small")
    env = {**os.environ, "PATH": str(tmp_path), "ALEA_HOME": str(tmp_path / "home")}
    env.pop("ALEA_CC", None)
    done = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "run", str(path), "--trials", "1000", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["backend"] == "numpy"
    assert "no C compiler found" in done.stderr


def test_a_failing_build_falls_back_unless_native_was_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "cc"
    broken.write_text("#!/bin/sh\necho 'cc (broken) 1.0'; [ \"$1\" = --version ] || exit 1\n")
    broken.chmod(0o755)
    monkeypatch.setenv("ALEA_CC", str(broken))
    monkeypatch.setenv("ALEA_HOME", str(tmp_path / "home"))
    assert engine.make_evaluator(functions(), seed=1, backend="auto").backend in ("numpy", "gpu")
    with pytest.raises(engine.BackendUnavailable, match="the C compiler failed"):
        engine.make_evaluator(functions(), seed=1, backend="native")


@pytest.mark.parametrize(
    ("cpp", "units", "reason"),
    [
        ("", (), "test.negate: function has no C implementation"),
        ("xl_neg", ("test_unit",), "test.negate: function has no C implementation (C units"),
        ("xl_test_unwritten", (), "undefined reference to `xl_test_unwritten'"),
    ],
    ids=["no C", "no unit", "no C function"],
)
def test_a_function_without_c_runs_on_numpy_saying_why(
    cpp: str,
    units: tuple[str, ...],
    reason: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A function the Excel registry has no C for yet (or C that does not build) runs on
    NumPy where the CPU back end was asked for, and the log says which; asked for by name,
    the native back end refuses."""
    monkeypatch.setenv("ALEA_HOME", str(tmp_path))
    negate = registry.Primitive("test.negate", np.negative, cpp, units)
    monkeypatch.setitem(registry.PRIMITIVES, "test.negate", negate)
    monkeypatch.setitem(numpy_backend.FUNCTIONS, "test.negate", np.negative)
    x = Sample(0, "normal", (Const(0.0), Const(1.0)), "x", "T!A1")
    m = Model((x,), (Output("y", "T!B1", Apply("test.negate", (x,))),))
    run._fall_back.cache_clear()  # it says each reason once per process
    with caplog.at_level(logging.WARNING):
        evaluator = engine.make_evaluator(m, seed=1, backend="cpu")
    assert evaluator.backend == "numpy"
    assert "using the NumPy back end" in caplog.text and reason in caplog.text
    outputs, inputs = evaluator.evaluate(0, 100)
    np.testing.assert_array_equal(outputs["y"], -inputs["x"])
    assert engine.simulate(m, trials=5000, seed=1, backend="cpu").results()["y"].count == 5000
    with pytest.raises((FormulaError, engine.BackendUnavailable), match=re.escape(reason)):
        engine.make_evaluator(m, seed=1, backend="native")


@pytest.mark.parametrize("make", [functions, random_parameters], ids=["functions", "random"])
def test_statistics_in_the_loop_equal_those_of_the_values(make) -> None:
    ev = native.compile_native(make(), seed=5, threads=3)
    options = StatsOptions(exact_limit=1000, reservoir_size=700)
    first, count = 12_345, 70_001
    streamed = ev.summarise(first, count, options)
    assert streamed.samples is None
    same_statistics(streamed, Partial.from_chunk(first, *ev.evaluate(first, count), options))


def test_sketch_regime_is_chunk_and_thread_invariant() -> None:
    m = functions()
    options = StatsOptions(exact_limit=10_000, reservoir_size=2_000)
    one = engine.simulate(m, trials=300_000, seed=2, backend="native", options=options)
    ev = native.compile_native(m, seed=2, threads=1)
    other = engine.simulate(
        m, trials=300_000, seed=2, options=options, chunk_size=77_777, evaluator=ev
    )
    assert not next(iter(one.results().values())).exact
    same_statistics(one, other)


def test_wide_and_long_models_compile_in_proportion_to_their_cells() -> None:
    """A column of identical inputs is one loop and their SUM another; a long chain of cells
    compiles at -O0 (linear in the model); both give NumPy's values."""
    column = tuple(
        Sample(i, "normal", (Const(1.0), Const(0.1)), f"c{i}", f"A{i + 1}") for i in range(5000)
    )
    odd = Sample(5000, "triang", (Const(0.0), Const(1.0), Const(3.0)), "odd", "B1")
    total = Apply("sum", (*column[:2500], odd, *column[2500:]))
    chain = Apply("add", (odd, Const(1.0)))
    for _ in range(4000):
        chain = Apply("mul", (Apply("add", (chain, Const(1.0))), Const(0.5)))
    m = Model((*column, odd), (Output("total", "C1", total), Output("chain", "C2", chain)))
    source, _ = native.native_source(m)
    one = Sample(0, "triang", (Const(0.0), Const(1.0), Const(3.0)), "odd", "B1")
    fixed, _ = native.native_source(Model((one,), (Output("odd", "C1", one),)))
    grown = source.count("\n") - fixed.count("\n")
    assert grown < 8200  # 8000 statements for the chain, a few for the column
    assert "for (int k = 0; k < 5000; ++k) { const int r[] = {k};" in source  # one column loop
    assert "for (int k = 2500; k < 5000; ++k) s" in source  # and the second half of its SUM
    ev = native.compile_native(m, seed=4)
    outputs, _ = ev.evaluate(0, 2000)
    want, _ = compile_numpy(m, seed=4).evaluate(0, 2000)
    assert_close(outputs, want)


def test_a_keyed_library_is_found_without_generating_the_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers key the cache by their stored model: a cached build skips code generation."""
    monkeypatch.setenv("ALEA_HOME", str(tmp_path))
    m = huge_counts()  # tables too: they are cached beside the library
    first = native.compile_native(m, seed=1, key="stored-model-hash")
    want, _ = first.evaluate(0, 500)

    def no_codegen(model: Model) -> None:
        raise AssertionError("the source was generated again")

    monkeypatch.setattr(native, "native_source", no_codegen)
    again = native.compile_native(m, seed=1, key="stored-model-hash")
    assert again.library == first.library
    got, _ = again.evaluate(0, 500)
    assert_close(got, want, rtol=0)
    with pytest.raises(AssertionError, match="generated again"):
        native.compile_native(m, seed=1, key="another model")
