"""RiskResample: a model draws a dataset's values, with replacement, in order or without.

Method 2's reference is the same workbook with ``RiskDUniform`` of the data's numbers: equal
trial by trial on NumPy, on the native back end and in the generated CUDA source (nvcc host
harness); the values drawn are the data's, each about equally often. Method 1 gives the data
in order, wrapping; method 3 each number once per block of ``n`` trials, shuffled differently
per block, seed and RiskSeed, every order equally likely; both the same for any chunking and
sampling method, and bit for bit on every back end. Refusals name the cell.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from services import engine
from services.engine import native, outcome, serial, simtable, uniforms
from services.engine.cuda.codegen import generate
from services.engine.cuda.harness import HostHarness, nvcc_path
from services.engine.errors import ModelError
from services.engine.numpy_backend import compile_numpy
from tests.engine import dataset_examples as ex
from tests.engine import models as wb
from tests.engine.ir_models import assert_close

SEED = 20261205
LOSSES = [row[1] for row in ex.claims()]
LISTED = "RiskDUniform({" + ",".join(repr(v) for v in LOSSES) + "})"
N = len(LOSSES)
IN_ORDER = f"RiskResample(1, Data!B2:B{ex.DATA_ROWS})"
SHUFFLED = f"RiskResample(3, Data!B2:B{ex.DATA_ROWS})"


def _load(tmp_path: Path, function: str | None = None) -> engine.Model:
    book = ex.resample() if function is None else ex.resample(function)
    return engine.load_workbook(wb.save(book, tmp_path, "resample"))


@pytest.mark.parametrize("sampling", ["mc", "lhs"])
def test_resample_is_duniform_of_the_data_on_numpy(tmp_path: Path, sampling: str) -> None:
    outputs, inputs = compile_numpy(_load(tmp_path), seed=SEED, sampling=sampling).evaluate(
        0, 50_000
    )
    want, _ = compile_numpy(_load(tmp_path, LISTED), seed=SEED, sampling=sampling).evaluate(
        0, 50_000
    )
    np.testing.assert_array_equal(outputs["Premium"], want["Premium"])
    (drawn,) = inputs.values()
    assert set(np.unique(drawn)) <= set(LOSSES)
    counts = np.unique(drawn, return_counts=True)[1]
    assert len(counts) == len(set(LOSSES))
    assert stats.chisquare(counts).pvalue > 1e-4  # each value equally likely


@pytest.mark.skipif(native.available() is not None, reason="no C compiler")
def test_native_backend_agrees(tmp_path: Path) -> None:
    model = _load(tmp_path)
    outputs, inputs = native.compile_native(model, seed=SEED).evaluate(3, 4_001)
    want_out, want_in = compile_numpy(model, seed=SEED).evaluate(3, 4_001)
    assert_close(outputs, want_out)
    assert_close(inputs, want_in)


@pytest.mark.skipif(nvcc_path() is None, reason="nvcc is not installed")
def test_the_generated_cuda_source_agrees(tmp_path: Path) -> None:
    model = _load(tmp_path)
    outputs, inputs = HostHarness(generate(model), tmp_path).evaluate(SEED, 5, 2_001)
    want_out, want_in = compile_numpy(model, seed=SEED).evaluate(5, 2_001)
    assert_close(outputs, want_out)
    assert_close(inputs, want_in)


def test_the_mean_is_the_datas(tmp_path: Path) -> None:
    trials = 200_000
    expansion = outcome.prepare(_load(tmp_path), outcome.RunOptions())
    partial = engine.simulate(expansion.model, trials=trials, seed=SEED, backend="numpy")
    premium = outcome.results_data(expansion, partial)["Premium"]
    assert premium["mean"] == pytest.approx(np.mean(LOSSES) * ex.LOADING, rel=0.01)
    assert premium["std"] == pytest.approx(np.std(LOSSES) * ex.LOADING, rel=0.01)
    assert set(premium["sensitivity"][0][:1]) == {"Loss"}


@pytest.mark.parametrize(
    ("function", "words"),
    [
        ("RiskResample(4, Data!B2:B600)", "the method must be 1 (in order), 2"),
        ("RiskResample(Data!B2, Data!B2:B600)", "the method must be 1 (in order), 2"),
        ("RiskResample(1, Data!B2:B600, RiskTruncate(0, 9000))", "RiskTruncate cannot apply"),
        ("RiskResample(3, Data!B2:B600, RiskTruncateP(0, 0.9))", "RiskTruncateP cannot"),
        ("RiskResample(3, Data!B2:B600, RiskCorrmat(Data!E1:F2, 1))", "RiskCorrmat cannot"),
        ("RiskResample(1, Data!B2:B600, RiskLock())", "RiskLock cannot apply"),
        ("RiskCompound(3, RiskResample(3, Data!B2:B600))", "severity cannot be RiskResample"),
        ("RiskResample(2, Data!A1:A3)", "not text"),
        ("RiskResample(2, Data!D2:D9)", "no numbers"),
        ("RiskResample(2)", "takes at least 2 arguments"),
    ],
)
def test_refusals_name_the_cell(tmp_path: Path, function: str, words: str) -> None:
    with pytest.raises(ModelError) as error:
        _load(tmp_path, function)
    assert error.value.location == "Model!B1" and words in str(error.value)


def _drawn(model: engine.Model, first: int, count: int, **options: object) -> np.ndarray:
    """The resampled input's values in trials ``[first, first + count)`` (NumPy)."""
    options = {"seed": SEED, **options}
    _, inputs = compile_numpy(model, **options).evaluate(first, count)  # type: ignore[arg-type]
    (drawn,) = inputs.values()
    return drawn


@pytest.mark.parametrize("sampling", uniforms.SAMPLINGS)
def test_in_order_takes_the_data_in_order_and_wraps(tmp_path: Path, sampling: str) -> None:
    model = _load(tmp_path, IN_ORDER)
    first, count = N - 7, 2 * N + 10  # from the first block's end across two wraps
    outputs, inputs = compile_numpy(model, seed=SEED, sampling=sampling).evaluate(first, count)
    want = np.array(LOSSES)[np.arange(first, first + count) % N]
    np.testing.assert_array_equal(inputs["Loss"], want)
    np.testing.assert_allclose(outputs["Premium"], want * ex.LOADING, rtol=1e-15)


def test_without_replacement_takes_every_number_once_per_block(tmp_path: Path) -> None:
    model = _load(tmp_path, SHUFFLED)
    blocks = _drawn(model, 0, 4 * N).reshape(4, N)
    for block in blocks:
        assert sorted(block) == sorted(LOSSES)
        assert not np.array_equal(block, LOSSES)  # shuffled
    assert len({tuple(block) for block in blocks}) == 4  # a new order in every block
    other_seed = _drawn(model, 0, N, seed=SEED + 1)
    assert sorted(other_seed) == sorted(LOSSES)
    assert not np.array_equal(other_seed, blocks[0])


def test_the_sampling_method_changes_nothing(tmp_path: Path) -> None:
    model = _load(tmp_path, SHUFFLED)
    want = _drawn(model, 11, 3 * N)
    for sampling in ("lhs", "sobol"):
        np.testing.assert_array_equal(_drawn(model, 11, 3 * N, sampling=sampling), want)


def test_riskseed_keys_the_shuffle(tmp_path: Path) -> None:
    model = _load(tmp_path, f"RiskResample(3, Data!B2:B{ex.DATA_ROWS}, RiskSeed(7))")
    fixed = _drawn(model, 0, 2 * N)
    np.testing.assert_array_equal(_drawn(model, 0, 2 * N, seed=SEED + 1), fixed)
    assert not np.array_equal(fixed, _drawn(_load(tmp_path, SHUFFLED), 0, 2 * N))


@pytest.mark.parametrize("function", [IN_ORDER, SHUFFLED])
def test_any_chunking_gives_the_same_trials(tmp_path: Path, function: str) -> None:
    model = _load(tmp_path, function)
    whole = compile_numpy(model, seed=SEED, threads=1).evaluate(0, 5 * N)[1]["Loss"]
    evaluator = compile_numpy(model, seed=SEED, threads=2)
    evaluator.tile = 333  # tiles that cut blocks anywhere
    cuts = [0, 17, N + 1, 3 * N - 2, 5 * N]
    parts = [evaluator.evaluate(a, b - a)[1]["Loss"] for a, b in itertools.pairwise(cuts)]
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_every_order_of_a_block_is_equally_likely(tmp_path: Path) -> None:
    """Five numbers, 120 orders, 48,000 blocks: a four-round Feistel network fails this."""
    model = _load(tmp_path, "RiskResample(3, {1,2,3,4,5})")
    blocks = _drawn(model, 0, 5 * 48_000).reshape(-1, 5).astype(np.int64) - 1
    assert (np.sort(blocks, axis=1) == np.arange(5)).all()
    orders = np.unique(blocks @ 5 ** np.arange(5), return_counts=True)[1]
    assert len(orders) == 120
    assert stats.chisquare(orders).pvalue > 1e-4


def test_properties_name_and_shift_them(tmp_path: Path) -> None:
    model = _load(tmp_path, f'{IN_ORDER[:-1]}, RiskName("Claim"), RiskShift(100))')
    outputs, inputs = compile_numpy(model, seed=SEED).evaluate(0, N)
    np.testing.assert_array_equal(inputs["Claim"], LOSSES)
    np.testing.assert_allclose(outputs["Premium"], (np.array(LOSSES) + 100) * ex.LOADING)


@pytest.mark.parametrize("vary_seeds", [False, True])
def test_every_simtable_simulation_runs_the_same_positions(
    tmp_path: Path, vary_seeds: bool
) -> None:
    model = _load(tmp_path, f"{SHUFFLED}*RiskSimtable({{1,2}})")
    expanded = simtable.expand(model, vary_seeds=vary_seeds).model
    outputs, _ = compile_numpy(expanded, seed=SEED).evaluate(0, 2 * N)
    first = outputs["Premium [1]"] / ex.LOADING
    second = outputs["Premium [2]"] / (2 * ex.LOADING)
    for drawn in (first, second):
        for block in drawn.reshape(2, N):
            np.testing.assert_allclose(np.sort(block), np.sort(LOSSES))
    # the same order unless the simulations vary their seeds (then each its own stream)
    assert np.allclose(first, second) != vary_seeds


@pytest.mark.parametrize("function", [IN_ORDER, SHUFFLED])
def test_the_stored_model_round_trips(tmp_path: Path, function: str) -> None:
    model = _load(tmp_path, function)
    stored = serial.load_model(serial.dump_model(model))
    assert stored == model
    np.testing.assert_array_equal(_drawn(stored, 0, 2 * N), _drawn(model, 0, 2 * N))


@pytest.mark.skipif(native.available() is not None, reason="no C compiler")
@pytest.mark.parametrize("function", [IN_ORDER, SHUFFLED])
@pytest.mark.parametrize("sampling", ["mc", "lhs"])
def test_native_backend_takes_the_same_positions(
    tmp_path: Path, function: str, sampling: str
) -> None:
    model = _load(tmp_path, function)
    evaluator = native.compile_native(model, seed=SEED, sampling=sampling)
    outputs, inputs = evaluator.evaluate(3, 2 * N + 1)
    want_out, want_in = compile_numpy(model, seed=SEED, sampling=sampling).evaluate(3, 2 * N + 1)
    np.testing.assert_array_equal(inputs["Loss"], want_in["Loss"])
    assert_close(outputs, want_out)
    parts = [evaluator.evaluate(a, b - a)[1]["Loss"] for a, b in ((3, 400), (400, 2 * N + 4))]
    np.testing.assert_array_equal(np.concatenate(parts), want_in["Loss"])


@pytest.mark.skipif(nvcc_path() is None, reason="nvcc is not installed")
@pytest.mark.parametrize("function", [IN_ORDER, SHUFFLED])
def test_the_generated_cuda_source_takes_the_same_positions(tmp_path: Path, function: str) -> None:
    model = _load(tmp_path, function)
    harness = HostHarness(generate(model), tmp_path)
    for sampling in ("mc", "lhs"):
        given = uniforms.host(model, SEED, sampling, 5, 2 * N)
        outputs, inputs = harness.evaluate(SEED, 5, 2 * N, given)
        want_out, want_in = compile_numpy(model, seed=SEED, sampling=sampling).evaluate(5, 2 * N)
        np.testing.assert_array_equal(inputs["Loss"], want_in["Loss"])
        assert_close(outputs, want_out)
