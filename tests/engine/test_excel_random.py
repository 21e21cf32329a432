"""RAND() and RANDBETWEEN(): inputs drawn from the model's Philox streams.

Each call is an input of its own (Uniform(0, 1), or IntUniform over the whole numbers
between the bounds): reproducible by seed, different across seeds and across calls, in the
sensitivity ranking like any @RISK input, and the same per trial on every back end.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from scipy import stats

from services import engine
from services.engine import native
from services.engine.build import Book, build_model
from services.engine.cuda import generate
from services.engine.cuda.harness import nvcc_path
from services.engine.formula import Formula
from services.engine.numpy_backend import compile_numpy

N = 100_000


def _model(cells: dict[tuple[int, int], object]) -> engine.Model:
    return build_model(Book({"S": cells}))


def _rand_model() -> engine.Model:
    return _model(
        {
            (1, 1): Formula("=RAND()"),
            (2, 1): Formula("=RANDBETWEEN(1.5,6)"),
            (3, 1): Formula("=RAND()"),
            (4, 1): Formula("=RANDBETWEEN(-3,A1*4)"),
            (5, 1): Formula('=RiskOutput("u")+A1'),
            (6, 1): Formula('=RiskOutput("k")+A2'),
            (7, 1): Formula('=RiskOutput("u2")+A3'),
            (8, 1): Formula('=RiskOutput("j")+A4'),
            (9, 1): Formula('=RiskOutput("total")+10*A1+A2'),
        }
    )


def test_each_call_is_an_input() -> None:
    model = _rand_model()
    assert [(i.distribution, i.address) for i in model.inputs] == [
        ("uniform", "S!A1"),
        ("intuniform", "S!A2"),
        ("uniform", "S!A3"),
        ("intuniform", "S!A4"),
    ]


def test_distributions() -> None:
    out, _ = compile_numpy(_rand_model(), seed=5).evaluate(0, N)
    u, k, u2, j = out["u"], out["k"], out["u2"], out["j"]
    assert ((u >= 0) & (u < 1)).all()
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    assert stats.kstest(u2, "uniform").pvalue > 1e-3
    assert abs(np.corrcoef(u, u2)[0, 1]) < 0.01  # two calls, two streams
    # RANDBETWEEN(1.5, 6): the whole numbers 2..6, equally likely
    counts = np.array([(k == v).sum() for v in range(2, 7)])
    assert counts.sum() == N
    assert stats.chisquare(counts).pvalue > 1e-3
    # RANDBETWEEN(-3, 4u): per trial from -3 to floor(4u); #NUM! where that is below -3
    assert np.isfinite(j).all() and (j >= -3).all() and (j <= np.floor(4 * u)).all()
    assert (j == np.floor(j)).all()


def test_reproducible_by_seed() -> None:
    model = _rand_model()
    a, _ = compile_numpy(model, seed=1).evaluate(0, 1000)
    b, _ = compile_numpy(model, seed=1).evaluate(0, 1000)
    c, _ = compile_numpy(model, seed=2).evaluate(0, 1000)
    assert np.array_equal(a["u"], b["u"]) and np.array_equal(a["k"], b["k"])
    assert not np.array_equal(a["u"], c["u"])


def test_in_the_sensitivity_ranking() -> None:
    partial = engine.simulate(_rand_model(), trials=20_000, seed=3, backend="cpu")
    ranking = partial.results()["total"].to_dict()["sensitivity"]
    assert [name for name, _ in ranking[:2]] == ["S!A1", "S!A2"]  # 10·RAND() leads
    assert ranking[0][1] > 0.85


def test_bounds_checked() -> None:
    bad = _model({(1, 1): Formula("=RANDBETWEEN(5,4.5)"), (2, 1): Formula('=RiskOutput("x")+A1')})
    out, _ = compile_numpy(bad, seed=1).evaluate(0, 4)
    assert np.isnan(out["x"]).all()
    same = _model({(1, 1): Formula("=RANDBETWEEN(4,4.5)"), (2, 1): Formula('=RiskOutput("x")+A1')})
    assert not same.inputs  # one whole number: a constant
    out, _ = compile_numpy(same, seed=1).evaluate(0, 4)
    assert (out["x"] == 4).all()


@pytest.mark.skipif(native.available() is not None, reason="no C compiler")
def test_native_draws_the_same() -> None:
    model = _rand_model()
    want, _ = compile_numpy(model, seed=9).evaluate(0, 1000)
    got, _ = native.compile_native(model, seed=9).evaluate(0, 1000)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-12)


@pytest.mark.skipif(nvcc_path() is None, reason="nvcc is not installed")
def test_generated_source_compiles_to_ptx(tmp_path) -> None:
    path = tmp_path / "rand.cu"
    path.write_text(generate(_rand_model()).source)
    command = [nvcc_path(), "-ptx", "-arch=sm_90", "-Xcicc", "-O1", "-w", str(path)]
    done = subprocess.run([*command, "-o", str(tmp_path / "rand.ptx")], capture_output=True)  # type: ignore[list-item]
    assert done.returncode == 0, done.stderr[-3000:]
