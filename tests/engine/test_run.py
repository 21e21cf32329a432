"""Chunked execution: bit-identical whatever the chunking or worker split, progress, cancel."""

from __future__ import annotations

import math
import threading
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from services import engine
from services.engine import native
from services.engine.cuda.runner import gpu_available
from services.engine.ir import Apply, Const, Model, Output, Sample
from tests.engine import models

EXACT_FIELDS = (
    "count",
    "errors",
    "mean",
    "std",
    "min",
    "max",
    "skewness",
    "kurtosis",
    "percentiles",
    "var_95",
    "cvar_95",
    "histogram",
    "cdf",
    "sensitivity",
)


def _small() -> Model:
    """The shared small model (Profit = (Revenue - Cost) * (1 - Tax)) as IR."""
    rev = Sample(0, "normal", (Const(100.0), Const(10.0)), "Revenue", "Model!B1")
    cost = Sample(1, "triang", (Const(20.0), Const(30.0), Const(50.0)), "Cost", "Model!B2")
    tax = Sample(2, "uniform", (Const(0.1), Const(0.2)), "Tax", "Model!B3")
    profit = Apply("mul", (Apply("sub", (rev, cost)), Apply("sub", (Const(1.0), tax))))
    return Model((rev, cost, tax), (Output("Profit", "Model!B5", profit),))


def _assert_same(a: engine.Partial, b: engine.Partial) -> None:
    ra, rb = a.results(), b.results()
    assert ra.keys() == rb.keys()
    for name in ra:
        da, db = ra[name].to_dict(), rb[name].to_dict()
        for key in EXACT_FIELDS:
            assert da[key] == db[key], (name, key)
        # Convergence points are merged moments: equal to rounding, not always to the bit.
        np.testing.assert_allclose(
            np.array(da["convergence"], dtype=float),
            np.array(db["convergence"], dtype=float),
            rtol=1e-12,
        )


@pytest.mark.parametrize("sampling", ["mc", "lhs"])
def test_any_chunking_gives_the_same_bits(sampling: str, backend: str) -> None:
    m = _small()
    whole = engine.simulate(m, trials=150_000, seed=7, sampling=sampling, backend=backend)
    chunked = engine.simulate(
        m, trials=150_000, seed=7, sampling=sampling, backend=backend, chunk_size=33_333
    )
    _assert_same(whole, chunked)


def test_two_workers_merged_equal_one(backend: str) -> None:
    m = _small()
    one = engine.simulate(m, trials=100_000, seed=3, chunk_size=40_000, backend=backend)
    first = engine.simulate(m, trials=50_000, seed=3, chunk_size=7_000, backend=backend)
    second = engine.simulate(
        m, trials=50_000, seed=3, first_trial=50_000, chunk_size=65_536, backend=backend
    )
    _assert_same(one, first.merge(second))


@pytest.fixture(scope="module")
def workbooks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    for name, build in models.MODELS.items():
        models.save(build("risk"), folder, name)
    for name in models.DISTRIBUTIONS:
        models.save(models.distribution(name), folder, f"dist_{name}")
    return folder


def test_black_scholes_matches_the_closed_form(workbooks: Path, backend: str) -> None:
    model = engine.load_workbook(workbooks / "black_scholes.xlsx")
    results = engine.simulate(model, trials=400_000, seed=11, backend=backend).results()
    for name, exact in models.EXPECTED_MEAN["black_scholes"].items():
        r = results[name]
        stderr = r.std / math.sqrt(r.count)
        assert abs(r.mean - exact) < 4 * stderr, (name, r.mean, exact, stderr)


@pytest.mark.parametrize("name", ["small", "project_npv", "portfolio"])
def test_shared_models_hit_their_exact_means(workbooks: Path, name: str, compile_model) -> None:
    model = engine.load_workbook(workbooks / f"{name}.xlsx")
    outputs, _ = compile_model(model, seed=2).evaluate(0, 1 << 18)
    for output, exact in models.EXPECTED_MEAN[name].items():
        x = outputs[output]
        assert abs(x.mean() - exact) < 4 * x.std() / math.sqrt(x.size), output


@pytest.mark.parametrize("name", sorted(models.DISTRIBUTIONS))
def test_each_distribution_from_its_workbook(workbooks: Path, name: str, compile_model) -> None:
    model = engine.load_workbook(workbooks / f"dist_{name}.xlsx")
    (x,) = compile_model(model, seed=4, sampling="lhs").evaluate(0, 1 << 16)[0].values()
    _, mean, sd = models.DISTRIBUTIONS[name]
    assert abs(x.mean() - mean) < 4 * sd / math.sqrt(x.size)
    assert x.std() == pytest.approx(sd, rel=0.02)


def test_small_model_mean_and_sensitivity(backend: str) -> None:
    r = engine.simulate(_small(), trials=200_000, seed=1, backend=backend).results()["Profit"]
    assert abs(r.mean - models.SMALL_MEAN) < 4 * r.std / math.sqrt(r.count)
    assert [name for name, _ in r.sensitivity] == ["Revenue", "Cost", "Tax"]


def test_progress_reports_each_chunk(backend: str) -> None:
    seen: list[tuple[int, int]] = []
    engine.simulate(
        _small(),
        trials=10_000,
        seed=1,
        backend=backend,
        chunk_size=3_000,
        progress=lambda done, p: seen.append((done, p.trials)),
    )
    assert seen == [(3_000, 3_000), (6_000, 6_000), (9_000, 9_000), (10_000, 10_000)]


def test_stop_cancels_between_chunks(backend: str) -> None:
    stop = threading.Event()
    done: list[int] = []

    def progress(trials: int, _: engine.Partial) -> None:
        done.append(trials)
        if trials >= 2_000:
            stop.set()

    with pytest.raises(engine.Cancelled, match="after 2000 of 10000"):
        engine.simulate(
            _small(),
            trials=10_000,
            seed=1,
            chunk_size=1_000,
            progress=progress,
            stop=stop,
            backend=backend,
        )
    assert done == [1_000, 2_000]


def test_backend_choice() -> None:
    cpu = "native" if native.available() is None else "numpy"
    assert engine.resolve_backend("cpu") == cpu
    assert engine.resolve_backend("numpy") == "numpy"
    with pytest.raises(ValueError, match="backend"):
        engine.resolve_backend("tpu")
    if gpu_available():
        assert engine.resolve_backend("auto") == engine.resolve_backend("gpu") == "gpu"
    else:
        assert engine.resolve_backend("auto") == cpu
        with pytest.raises(engine.BackendUnavailable, match="PyCUDA"):
            engine.simulate(_small(), trials=10, seed=1, backend="gpu")


def test_default_chunk_size_scales_with_the_model() -> None:
    small = engine.default_chunk_size(_small())
    wide = Model(
        tuple(
            Sample(i, "normal", (Const(0.0), Const(1.0)), f"x{i}", f"A{i + 1}") for i in range(400)
        ),
        (),
    )
    assert small == 1 << 20
    assert engine.default_chunk_size(wide) == 1 << 16
    assert small % (1 << 16) == 0


def test_memory_stays_bounded_on_a_large_run(backend: str) -> None:
    options = engine.StatsOptions(exact_limit=1 << 16, reservoir_size=1_000)
    n = 1 << 22  # 4M trials: all samples would be 96 MiB
    m = _small()
    run = dict(seed=1, options=options, backend=backend)
    engine.simulate(m, trials=1 << 17, chunk_size=1 << 16, **run)  # warm-up
    tracemalloc.start()
    partial = engine.simulate(m, trials=n, chunk_size=1 << 18, **run)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert partial.trials == n
    assert peak < 48 << 20  # one chunk of outputs and inputs (8 MiB) plus tiles and sketches
