"""The PyCUDA runner on a real GPU: the same values as the NumPy back end and the host harness.

Skipped where PyCUDA or a CUDA device is missing (``scripts/build_pycuda.sh`` builds PyCUDA on
a GPU host and runs these tests).
"""

from __future__ import annotations

import numpy as np
import pytest

from services import engine
from services.engine import load_workbook, rng
from services.engine.cuda.runner import compile_cuda, devices, gpu_available
from services.engine.ir import Const, Model, Output, Sample
from services.engine.numpy_backend import compile_numpy
from services.engine.stats import Partial, StatsOptions
from tests.engine import dataset_examples, examples
from tests.engine import models as wb
from tests.engine.ir_models import (
    HAND_MODELS,
    WORKBOOKS,
    assert_close,
    functions,
    random_parameters,
    same_statistics,
)

GPU = gpu_available()
needs_gpu = pytest.mark.skipif(not GPU, reason="no CUDA GPU or PyCUDA on this machine")


def test_gpu_available_never_raises():
    assert isinstance(gpu_available(), bool)
    assert isinstance(devices(), list) and (len(devices()) > 0) == GPU


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("key", list(HAND_MODELS))
@pytest.mark.parametrize("sampling", ["mc", "lhs"])
def test_gpu_matches_numpy_backend(key, sampling):
    m = HAND_MODELS[key]()
    gpu = compile_cuda(m, seed=42, sampling=sampling)
    assert gpu.backend == "gpu"
    outputs, inputs = gpu.evaluate(65530, 20_003)
    want_out, want_in = compile_numpy(m, seed=42, sampling=sampling).evaluate(65530, 20_003)
    assert_close(inputs, want_in)
    assert_close(outputs, want_out)


@pytest.mark.gpu
@needs_gpu
def test_gpu_uniforms_are_numpy_bits_and_chunk_invariant():
    u = Sample(0, "uniform", (Const(0.0), Const(1.0)), "u", "U!A1")
    gpu = compile_cuda(Model((u,), (Output("u", "U!B1", u),)), seed=2**64 - 1)
    _, whole = gpu.evaluate(3, 100_001)
    np.testing.assert_array_equal(whole["u"], rng.uniforms(2**64 - 1, 0, 3, 100_001))
    parts = [gpu.evaluate(a, n)[1]["u"] for a, n in [(3, 5), (8, 99_990), (99_998, 6)]]
    np.testing.assert_array_equal(np.concatenate(parts), whole["u"])
    assert gpu.evaluate(10, 0)[1]["u"].size == 0


# Every shared test workbook (each distribution on its own, the Excel functions) and the
# modelling examples whose draws are made in the kernel: compound sums and resampled data.
GPU_WORKBOOKS = {
    **WORKBOOKS,
    "compound": examples.compound,
    "sobol": examples.sobol,
    "resample": dataset_examples.resample,
}


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("key", list(GPU_WORKBOOKS))
@pytest.mark.parametrize("sampling", ["mc", "sobol"])
def test_every_workbook_on_the_gpu_matches_numpy(key, sampling, tmp_path):
    m = load_workbook(wb.save(GPU_WORKBOOKS[key](), tmp_path, key))
    gpu = compile_cuda(m, seed=20261204, sampling=sampling)
    outputs, inputs = gpu.evaluate(131_070, 9_001)  # crosses a block of 65,536 trials
    want_out, want_in = compile_numpy(m, seed=20261204, sampling=sampling).evaluate(131_070, 9_001)
    assert_close(inputs, want_in)
    assert_close(outputs, want_out)


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("make", [functions, random_parameters], ids=["functions", "random"])
def test_statistics_on_the_gpu_equal_those_of_its_values(make):
    """Moments, extremes, sketch and reservoir computed on the device, as from the values."""
    gpu = compile_cuda(make(), seed=5)
    options = StatsOptions(exact_limit=1000, reservoir_size=700)
    first, count = 12_345, 70_001
    streamed = gpu.summarise(first, count, options)
    assert streamed.samples is None
    same_statistics(streamed, Partial.from_chunk(first, *gpu.evaluate(first, count), options))


@pytest.mark.gpu
@needs_gpu
def test_the_gpu_sketch_regime_is_chunk_invariant():
    """Per trial the GPU's values are the NumPy back end's (above); its statistics are the
    same whatever the chunks."""
    m = functions()
    options = StatsOptions(exact_limit=10_000, reservoir_size=2_000)
    one = engine.simulate(m, trials=3_000_000, seed=2, backend="gpu", options=options)
    gpu = compile_cuda(m, seed=2)
    other = engine.simulate(
        m, trials=3_000_000, seed=2, options=options, chunk_size=777_777, evaluator=gpu
    )
    assert not next(iter(one.results().values())).exact
    same_statistics(one, other)
