"""@RISK property functions on the new families, in workbooks: RiskShift, RiskTruncate (in
shifted terms, as @RISK reads it), RiskTruncateP, RiskLock with or without RiskStatic,
RiskName; constant parameters validated naming the cell; the same values on every back end."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from services.engine import native, sampling
from services.engine.build import Book, build_model
from services.engine.errors import ParameterError
from services.engine.formula import Formula
from services.engine.ir import Model
from services.engine.numpy_backend import compile_numpy

N = 20_000


def _model(*formulas: str) -> Model:
    cells: dict[tuple[int, int], object] = {}
    for row, text in enumerate(formulas, start=1):
        cells[(row, 2)] = Formula(text)
        cells[(row, 3)] = Formula(f'=RiskOutput("out{row}")+B{row}')
    return build_model(Book({"S": cells}))


def _values(compile_model, model: Model, seed: int = 7) -> dict[str, np.ndarray]:
    """The outputs of ``model`` on the back end ``compile_model`` compiles for."""
    return compile_model(model, seed=seed).evaluate(0, N)[0]


def test_shift_moves_every_value(compile_model) -> None:
    model = _model("=RiskLogistic(2,0.5,RiskShift(10))", "=RiskLogistic(2,0.5)")
    out = _values(compile_model, model)
    shifted, plain = out["out1"], out["out2"]
    assert model.inputs[0].distribution == "logistic"
    # the two inputs draw from their own streams: compare distributions, not trials
    assert stats.ks_2samp(shifted - 10, plain).pvalue > 1e-3
    assert abs(np.median(shifted) - 12) < 0.05


def test_truncation_is_in_shifted_terms(compile_model) -> None:
    model = _model("=RiskLaplace(0,1,RiskShift(100),RiskTruncate(99,102))")
    out = _values(compile_model, model)["out1"]
    assert out.min() >= 99 and out.max() <= 102
    assert out.min() < 99.01 and out.max() > 101.9


def test_truncate_p_keeps_the_middle_percentiles(compile_model) -> None:
    model = _model("=RiskStudent(4,RiskTruncateP(0.1,0.8))")
    out = _values(compile_model, model)["out1"]
    lo, hi = stats.t.ppf([0.1, 0.8], 4)
    assert out.min() >= lo - 1e-12 and out.max() <= hi + 1e-12
    assert model.inputs[0].truncate == pytest.approx((lo, hi), rel=1e-9)


def test_lock_holds_the_static_value(compile_model) -> None:
    model = _model(
        "=RiskPareto(3,2,RiskLock())",
        "=RiskPareto(3,2,RiskStatic(7),RiskLock())",
        "=RiskPareto(3,2,RiskShift(1),RiskLock())",
    )
    assert model.inputs == ()
    out = _values(compile_model, model)
    np.testing.assert_allclose(out["out1"], 3.0, rtol=1e-12)  # the mean, 3·2/(3-1)
    np.testing.assert_array_equal(out["out2"], 7.0)
    np.testing.assert_allclose(out["out3"], 4.0, rtol=1e-12)
    assert any("locked" in w for w in model.warnings)


@pytest.mark.parametrize(
    ("formula", "reference"),
    [
        ("=RiskNormal(0,1,RiskTruncate(0,))", stats.halfnorm()),
        ("=RiskNormal(10,2,RiskTruncate(13,))", stats.truncnorm(1.5, np.inf, 10, 2)),
        ("=RiskLogistic(5,2,RiskTruncate(6,))", None),
    ],
)
def test_a_window_open_above_the_median_is_sampled(compile_model, formula, reference) -> None:
    """F(lo) + u (1 - F(lo)) rounds to 1 for the largest uniform: kept below 1, the quantile
    stays finite, so a half-normal is no longer refused as leaving the range of doubles."""
    model = _model(formula)
    out = _values(compile_model, model)["out1"]
    assert np.all(np.isfinite(out))
    if reference is not None:
        assert stats.kstest(out, reference.cdf).pvalue > 1e-3
    lo = float(formula.split("RiskTruncate(")[1].split(",")[0])
    largest = sampling.sample(
        model.inputs[0].distribution,
        np.array([1.0 - 2.0**-53]),
        tuple(p.value for p in model.inputs[0].params),  # type: ignore[attr-defined]
        (lo, None),
    )
    assert np.isfinite(largest).all() and largest[0] > lo


def test_name_names_the_input() -> None:
    model = _model('=RiskGeomet(0.3,RiskName("Failures"))')
    assert model.inputs[0].name == "Failures"


@pytest.mark.parametrize(
    ("formula", "reason"),
    [
        ("=RiskGamma(-1,2)", "alpha must be > 0"),
        ("=RiskStudent(0)", "nu"),
        ("=RiskHypergeo(5,10,4)", "must be"),
        ("=RiskPoisson(1e300)", "lambda must be at most 2^53"),
        ("=RiskNormal(0,1,RiskTruncate(100,101))", "leaves no probability"),
        ("=RiskCauchy(0,1,RiskTruncateP(0.9,0.2))", "RiskTruncateP"),
        # an error argument shows as Excel shows it, not as the NaN that carries it
        ('=RiskNormal("high",1)', "mean must be a finite number, got #VALUE!"),
        ("=RiskNormal(10,1/0)", "sd must be a finite number, got #DIV/0!"),
    ],
)
def test_constant_parameters_are_checked_naming_the_cell(formula: str, reason: str) -> None:
    with pytest.raises(ParameterError) as err:
        _model("=1", formula)
    assert reason in str(err.value) and err.value.location == "S!B2"


@pytest.mark.skipif(native.available() is not None, reason="no C compiler")
def test_native_draws_the_same_values() -> None:
    model = _model(
        "=RiskLogistic(2,0.5,RiskShift(10))",
        "=RiskLaplace(0,1,RiskShift(100),RiskTruncate(99,102))",
        "=RiskStudent(4,RiskTruncateP(0.1,0.8))",
        "=RiskNegbin(3,B3/2+0.5)",  # a parameter per trial, invalid (p <= 0) in some trials
    )
    want, _ = compile_numpy(model, seed=3).evaluate(0, 4000)
    got, _ = native.compile_native(model, seed=3).evaluate(0, 4000)
    for name in want:
        np.testing.assert_array_equal(np.isnan(got[name]), np.isnan(want[name]))
        ok = np.isfinite(want[name])
        np.testing.assert_allclose(got[name][ok], want[name][ok], rtol=1e-9)
    assert np.isnan(want["out4"]).any() and np.isfinite(want["out4"]).any()


def test_sampling_registry_knows_every_family() -> None:
    from services.engine import distributions

    assert set(distributions.FAMILIES) <= set(sampling.DISTRIBUTIONS)
