"""RiskResample: a model draws a dataset's values with replacement.

The reference is the same workbook with ``RiskDUniform`` of the data's numbers: equal trial
by trial on NumPy, on the native back end and in the generated CUDA source (nvcc host
harness); the values drawn are the data's, each about equally often; refusals name the cell.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from services import engine
from services.engine import native, outcome
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
        ("RiskResample(1, Data!B2:B600)", "methods 1 and 3 are not supported"),
        ("RiskResample(2, Data!A1:A3)", "not text"),
        ("RiskResample(2, Data!D2:D9)", "no numbers"),
        ("RiskResample(2)", "takes at least 2 arguments"),
    ],
)
def test_refusals_name_the_cell(tmp_path: Path, function: str, words: str) -> None:
    with pytest.raises(ModelError) as error:
        _load(tmp_path, function)
    assert error.value.location == "Model!B1" and words in str(error.value)
