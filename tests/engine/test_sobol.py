"""Scrambled Sobol sampling: SciPy's sequence, scrambled by seed, the same for any chunking.

References: ``scipy.stats.qmc.Sobol`` (its unscrambled points are the engine's before
scrambling, bit for bit), the net property (every prefix of 2^m points puts one point in each
elementary interval), SciPy's discrepancy (below Monte Carlo's), and the exact mean of the
worked example (its error far below Monte Carlo's at equal trials). The native back end and
the generated CUDA source equal NumPy trial by trial.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import qmc

from services import engine
from services.engine import native, sobol, uniforms
from services.engine.cuda.codegen import generate
from services.engine.cuda.harness import HostHarness, nvcc_path
from services.engine.errors import ModelError
from services.engine.ir import Const, Model, Output, Sample
from services.engine.numpy_backend import compile_numpy
from tests.engine import examples
from tests.engine.ir_models import assert_close

SEED = 20261204
WORKBOOK = Path(__file__).parents[1] / "data" / "workbooks" / "sobol.xlsx"


@pytest.fixture(scope="module")
def model() -> Model:
    return engine.load_workbook(WORKBOOK)


def _scipy(dimensions: int, count: int, bits: int = sobol.BITS) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # balance wants powers of 2
        points = qmc.Sobol(dimensions, scramble=False, bits=bits).random(count)
    return (points * 2.0**bits).astype(np.uint64)


def test_unscrambled_points_are_scipys_in_gray_code_order() -> None:
    want = _scipy(64, 1_000)
    for d in range(64):
        np.testing.assert_array_equal(sobol.points(sobol.directions(d), 0, 1_000), want[:, d])


def test_the_last_dimension_and_a_far_start_are_scipys() -> None:
    engine_ = qmc.Sobol(sobol.MAX_DIMENSIONS, scramble=False)  # 30 bits: fast_forward's
    engine_.fast_forward(123_457)
    want = (engine_.random(64)[:, -1] * 2.0**30).astype(np.uint64)
    got = sobol.points(sobol.directions(sobol.MAX_DIMENSIONS - 1), 123_457, 64)
    np.testing.assert_array_equal(got >> np.uint64(sobol.BITS - 30), want)
    with pytest.raises(ValueError, match="21,201 dimensions"):
        sobol.directions(sobol.MAX_DIMENSIONS)


def test_any_chunking_gives_the_same_bits_and_seeds_scramble() -> None:
    whole = sobol.uniforms(SEED, 3, 1_000, 5_000)
    parts = [sobol.uniforms(SEED, 3, 1_000 + a, 1_000) for a in range(0, 5_000, 1_000)]
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    np.testing.assert_array_equal(sobol.uniforms(SEED, 3, 1_000, 5_000), whole)
    assert not np.array_equal(sobol.uniforms(SEED + 1, 3, 1_000, 5_000), whole)
    assert not np.array_equal(sobol.uniforms(SEED, 4, 1_000, 5_000), whole)
    assert whole.min() > 0 and whole.max() < 1


@pytest.mark.parametrize("seed", [1, SEED])
def test_scrambled_prefixes_are_nets(seed: int) -> None:
    """Scrambling keeps the net: in 2^10 points, every interval [i/2^a, (i+1)/2^a) ×
    [j/2^b, (j+1)/2^b) with a + b = 10 holds one point (t = 0 for two dimensions), and each
    dimension alone is stratified at every power of two."""
    n = 1 << 10
    x, y = (sobol.uniforms(seed, s, 0, n) for s in (0, 1))
    for a in range(11):
        b = 10 - a
        cells = np.floor(x * 2**a).astype(int) * 2**b + np.floor(y * 2**b).astype(int)
        assert np.bincount(cells, minlength=n).max() == 1, a
    for s in range(8):
        u = sobol.uniforms(seed, s, 0, n)
        for m in (4, 7, 10):
            counts = np.bincount(np.floor(u[: 1 << m] * 2**m).astype(int), minlength=1 << m)
            assert np.all(counts == 1), (s, m)


def test_discrepancy_is_below_monte_carlos_and_like_scipys() -> None:
    n, d = 1 << 10, 5
    ours = np.stack([sobol.uniforms(SEED, s, 0, n) for s in range(d)], axis=1)
    theirs = qmc.Sobol(d, seed=1).random(n)
    mc = np.random.default_rng(1).random((n, d))
    assert qmc.discrepancy(ours) < 0.1 * qmc.discrepancy(mc)
    assert qmc.discrepancy(ours) < 3 * qmc.discrepancy(theirs)


def test_the_mean_error_is_far_below_monte_carlos_at_equal_trials(model: Model) -> None:
    exact, trials = examples.sobol_mean(), 4_096

    def rmse(method: str) -> float:
        means = [
            compile_numpy(model, seed=s, sampling=method).evaluate(0, trials)[0]["Value"].mean()
            for s in range(1, 17)
        ]
        return float(np.sqrt(np.mean((np.array(means) - exact) ** 2)))

    assert rmse("sobol") < 0.05 * rmse("mc")


@pytest.mark.skipif(native.available() is not None, reason="no C compiler")
def test_native_equals_numpy_trial_by_trial(model: Model) -> None:
    got = native.compile_native(model, seed=SEED, sampling="sobol").evaluate(65_530, 3_001)
    want = compile_numpy(model, seed=SEED, sampling="sobol").evaluate(65_530, 3_001)
    assert_close(got[0], want[0])
    assert_close(got[1], want[1])


@pytest.mark.skipif(nvcc_path() is None, reason="nvcc is not installed")
def test_the_generated_cuda_source_equals_numpy(model: Model, tmp_path: Path) -> None:
    given = uniforms.host(model, SEED, "sobol", 5, 2_001)
    got = HostHarness(generate(model), tmp_path).evaluate(SEED, 5, 2_001, given)
    want = compile_numpy(model, seed=SEED, sampling="sobol").evaluate(5, 2_001)
    assert_close(got[0], want[0])
    assert_close(got[1], want[1])


def test_a_model_wider_than_the_dimensions_is_refused() -> None:
    inputs = tuple(
        Sample(s, "uniform", (Const(0.0), Const(1.0)), f"x{s}", f"A{s + 1}")
        for s in range(sobol.MAX_DIMENSIONS + 1)
    )
    wide = Model(inputs, (Output("Y", "B1", inputs[0]),))
    with pytest.raises(ModelError, match="at most 21,201 inputs"):
        engine.make_evaluator(wide, seed=1, sampling="sobol", backend="numpy")
    engine.make_evaluator(wide, seed=1, sampling="lhs", backend="numpy")
