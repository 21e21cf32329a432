"""The PyCUDA runner on a real GPU: the same values as the NumPy back end and the host harness.

Skipped where PyCUDA or a CUDA device is missing (``scripts/build_pycuda.sh`` builds PyCUDA on
a GPU host and runs these tests).
"""

from __future__ import annotations

import numpy as np
import pytest

from services.engine import rng
from services.engine.cuda.runner import compile_cuda, devices, gpu_available
from services.engine.ir import Const, Model, Output, Sample
from services.engine.numpy_backend import compile_numpy
from tests.engine.test_cuda_codegen import HAND_MODELS, assert_close

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
