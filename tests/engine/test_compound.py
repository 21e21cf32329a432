"""RiskCompound: sums of a random number of severity draws, with deductible and limit.

References: the compound Poisson moments (mean λ·E[X], variance λ·E[X²], fourth cumulant
λ·E[X⁴]), the layer's expected value λ·∫_d^{d+l} S(x) dx integrated by SciPy from the
severity's survival function, and single trials rebuilt from the documented draw mapping
with the pure-Python Philox of ``test_rng`` and SciPy's quantiles. The native back end and
the generated CUDA source (nvcc host harness) equal NumPy trial by trial.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from openpyxl import Workbook
from scipy import integrate, stats

from services import engine
from services.engine import compound, native, rng, serial, simtable, xlerror
from services.engine.cuda.codegen import generate
from services.engine.cuda.harness import HostHarness, nvcc_path
from services.engine.errors import ModelError
from services.engine.ir import Model
from services.engine.numpy_backend import compile_numpy
from services.engine.spec import model_from_spec
from tests.engine import examples
from tests.engine import models as wb
from tests.engine.ir_models import assert_close
from tests.engine.test_rng import philox4x64_10

SEED = 20261204
TRIALS = 200_000
WORKBOOK = Path(__file__).parents[1] / "data" / "workbooks" / "compound.xlsx"


@pytest.fixture(scope="module")
def model() -> Model:
    return engine.load_workbook(WORKBOOK)


@pytest.fixture(scope="module")
def outputs(model: Model) -> dict[str, np.ndarray]:
    values, _ = compile_numpy(model, seed=SEED).evaluate(0, TRIALS)
    return values


def _lognorm(mean: float, sd: float) -> stats.rv_continuous:
    sigma2 = math.log1p((sd / mean) ** 2)
    return stats.lognorm(math.sqrt(sigma2), scale=math.exp(math.log(mean) - sigma2 / 2))


def test_the_example_workbook_is_the_builders() -> None:
    book = engine.load_workbook(WORKBOOK)
    assert [s.name for s in book.inputs] == ["Claims", "Claim", "Large claim"]
    assert [o.name for o in book.outputs] == ["Ground-up", "Layer"]


def test_poisson_exponential_matches_the_compound_moments(outputs) -> None:
    lam, beta = examples.CLAIMS, examples.CLAIM_MEAN
    x = outputs["Ground-up"]
    moments = [math.factorial(k) * beta**k for k in range(5)]  # E[X^k] of the exponential
    mean, var, k4 = lam * moments[1], lam * moments[2], lam * moments[4]
    assert abs(x.mean() - mean) < 4 * math.sqrt(var / TRIALS)
    assert abs(x.var() - var) < 4 * math.sqrt((k4 + 2 * var**2) / TRIALS)
    zero = math.exp(-lam)  # no claim: exactly 0
    assert abs((x == 0).mean() - zero) < 4 * math.sqrt(zero * (1 - zero) / TRIALS)


def test_the_layer_matches_its_expected_value(outputs) -> None:
    sev = _lognorm(*examples.SEVERITY)
    d, limit = examples.RETENTION, examples.LAYER
    per_claim, _ = integrate.quad(sev.sf, d, d + limit, limit=200)
    # E[layer²] = ∫ 2z P(layer > z) dz over [0, limit], and P(layer > z) = S(d + z)
    per_claim2, _ = integrate.quad(lambda y: 2 * (y - d) * sev.sf(y), d, d + limit, limit=200)
    lam = examples.CLAIMS
    x = outputs["Layer"]
    assert abs(x.mean() - lam * per_claim) < 4 * math.sqrt(lam * per_claim2 / TRIALS)
    assert abs(x.var() - lam * per_claim2) < 0.05 * lam * per_claim2
    counts = np.rint(
        compile_numpy(engine.load_workbook(WORKBOOK), seed=SEED).evaluate(0, 2000)[1]["Claims"]
    )
    assert np.all(x[:2000] <= counts * limit)


def test_trials_follow_the_documented_draws(model: Model) -> None:
    """Rebuild trials from (seed, stream, trial) alone: Philox words, uniforms, SciPy."""
    first, count = 70_000, 40
    outs, ins = compile_numpy(model, seed=SEED).evaluate(first, count)
    sev = stats.expon(scale=examples.CLAIM_MEAN)
    stream = 1  # Ground-up's severity
    for i in range(count):
        n = int(ins["Claims"][i])
        (word,) = rng.raw(SEED, stream, first + i, 1)
        u1 = float(rng.to_unit(np.array([word]))[0])
        key = int(np.array([u1]).view(np.uint64)[0])
        draws = [sev.ppf(u1)] if n else []
        for j in range(n - 1):
            w = philox4x64_10((j // 4, compound.DOMAIN, 0, 0), (key, stream))[j % 4]
            draws.append(sev.ppf(((w >> 12) + 0.5) * 2.0**-52))
        assert outs["Ground-up"][i] == pytest.approx(sum(draws), rel=1e-12, abs=1e-9)


@pytest.mark.skipif(native.available() is not None, reason="no C compiler")
@pytest.mark.parametrize("sampling", ["mc", "lhs"])
def test_native_equals_numpy_trial_by_trial(model: Model, sampling: str) -> None:
    got = native.compile_native(model, seed=SEED, sampling=sampling).evaluate(65_000, 3_001)
    want = compile_numpy(model, seed=SEED, sampling=sampling).evaluate(65_000, 3_001)
    assert_close(got[0], want[0])
    assert_close(got[1], want[1])


@pytest.mark.skipif(nvcc_path() is None, reason="nvcc is not installed")
def test_the_generated_cuda_source_equals_numpy(model: Model, tmp_path: Path) -> None:
    got = HostHarness(generate(model), tmp_path).evaluate(SEED, 5, 2_001)
    want = compile_numpy(model, seed=SEED).evaluate(5, 2_001)
    assert_close(got[0], want[0])
    assert_close(got[1], want[1])


def test_chunks_do_not_change_a_trial(model: Model) -> None:
    evaluator = compile_numpy(model, seed=SEED)
    whole, _ = evaluator.evaluate(65_530, 20)
    parts = [evaluator.evaluate(65_530 + a, 5)[0]["Layer"] for a in range(0, 20, 5)]
    np.testing.assert_array_equal(np.concatenate(parts), whole["Layer"])


def _book(tmp_path: Path, formula: str, **cells: str) -> Path:
    book = Workbook()
    ws = book.active
    ws.title = "M"
    for address, value in cells.items():
        ws[address] = value
    ws["B9"] = f'=RiskOutput("Y")+{formula}'
    return wb.save(book, tmp_path, "case")


def _values(tmp_path: Path, formula: str, trials: int = 2_000, **cells: str) -> np.ndarray:
    model = engine.load_workbook(_book(tmp_path, formula, **cells))
    values = compile_numpy(model, seed=SEED).evaluate(0, trials)[0]["Y"]
    if native.available() is None:
        other = native.compile_native(model, seed=SEED).evaluate(0, trials)[0]["Y"]
        assert_close({"Y": other}, {"Y": values})
    return values


def test_a_constant_frequency_and_a_continuous_one_truncated(tmp_path: Path) -> None:
    fixed = _values(tmp_path, "RiskCompound(3,RiskNormal(10,1))", 20_000)
    assert abs(fixed.mean() - 30) < 4 * math.sqrt(3 / 20_000)
    assert abs(fixed.var() - 3) < 0.1
    uniform = _values(tmp_path, "RiskCompound(RiskUniform(0,2),RiskUniform(1,1.000001))", 20_000)
    assert set(np.round(uniform).astype(int)) == {0, 1}  # 1.7 claims is one claim


def test_frequencies_out_of_range_are_num_in_their_trial(tmp_path: Path) -> None:
    values = _values(tmp_path, "RiskCompound(RiskUniform(-1,1),RiskExpon(1))")
    negative = np.isnan(values)
    assert 0.4 < negative.mean() < 0.6
    assert set(xlerror.codes(values[negative])) == {xlerror.CODES["#NUM!"]}
    assert np.all(values[~negative] == 0)  # frequencies in [0, 1) are no claim
    past = _values(
        tmp_path, f"RiskCompound(RiskUniform(0,{2 * compound.MAX_FREQUENCY}),RiskExpon(1))", 50
    )
    assert np.isnan(past).any()


def test_errors_in_the_arguments_propagate(tmp_path: Path) -> None:
    values = _values(tmp_path, "RiskCompound(1/(B1-B1),RiskExpon(1))", 20, B1="=RiskNormal(0,1)")
    assert set(xlerror.codes(values)) == {xlerror.CODES["#DIV/0!"]}
    values = _values(tmp_path, "RiskCompound(2,RiskExpon(1),B1-5)", 200, B1="=RiskUniform(0,10)")
    assert np.isnan(values).any() and not np.isnan(values).all()


@pytest.mark.parametrize(
    "formula,message",
    [
        ("RiskCompound(1e9,RiskExpon(1))", "above 100,000"),
        ("RiskCompound(RiskPoisson(1e9),RiskExpon(1))", "median 1e+09"),
        ("RiskCompound(-1,RiskExpon(1))", "must not be negative"),
        ("RiskCompound(2,RiskExpon(1),-5)", "deductible must not be negative"),
        ("RiskCompound(2,RiskExpon(1),0,-5)", "limit must not be negative"),
        ("RiskCompound(2,100)", "severity must be a distribution"),
        ("RiskCompound(2,RiskExpon(1,RiskShift(3)))", "severity must be a distribution"),
        ("RiskCompound(2)", "takes 2 to 4 arguments"),
        ("RiskCompound(2,B1)+RiskCompound(3,B1)", "already another RiskCompound"),
        (
            "RiskCompound(2,RiskNormal(1,1,RiskCorrmat(C1:D2,1)))+RiskNormal(0,1,RiskCorrmat(C1:D2,2))",
            "cannot be correlated",
        ),
    ],
)
def test_refused_naming_the_cell(tmp_path: Path, formula: str, message: str) -> None:
    cells = {"B1": "=RiskExpon(5)", "C1": "1", "D1": "0.5", "C2": "0.5", "D2": "1"}
    with pytest.raises(ModelError) as err:
        engine.load_workbook(_book(tmp_path, formula, **{k: _number(v) for k, v in cells.items()}))
    assert err.value.location == "M!B9", err.value
    assert message in str(err.value)


def _number(text: str) -> str | float:
    return text if text.startswith("=") else float(text)


def test_a_spec_takes_it_in_a_formula_with_a_frequency_input() -> None:
    spec = {
        "inputs": [
            {
                "name": "claims",
                "distribution": {"kind": "DISTRIBUTION_KIND_POISSON", "parameters": [3]},
            }
        ],
        "expressions": [{"name": "loss", "formula": "RiskCompound(claims,RiskExpon(2),1)"}],
        "outputs": [{"name": "Loss", "expression": "loss"}],
    }
    model = model_from_spec(spec)
    outputs, inputs = compile_numpy(model, seed=SEED).evaluate(0, 50_000)
    layer = 2 * math.exp(-1 / 2)  # E[max(X - 1, 0)] of an exponential of mean 2
    loss = outputs["Loss"]
    assert abs(loss.mean() - 3 * layer) < 4 * loss.std() / math.sqrt(50_000)
    assert np.all(loss[inputs["claims"] == 0] == 0)


def test_a_risksimtable_in_the_severity_gives_each_simulation_the_same_draws(tmp_path) -> None:
    path = _book(tmp_path, "RiskCompound(RiskPoisson(2),RiskExpon(RiskSimtable({1,3})))")
    expanded = simtable.expand(engine.load_workbook(path)).model
    outputs, _ = compile_numpy(expanded, seed=SEED).evaluate(0, 1_000)
    np.testing.assert_allclose(outputs["Y [2]"], 3 * outputs["Y [1]"], rtol=1e-12)


@pytest.mark.parametrize(
    "formula",
    [
        "RiskCompound(RiskNegbin(3,0.4),RiskGamma(0.7,1000))",  # a tabulated quantile natively
        "RiskCompound(RiskPoisson(6),RiskNormal(100,30,RiskTruncate(0,)),50,80)",
        "RiskCompound(RiskBinomial(5,0.5),RiskDiscrete({1,5,10},{0.5,0.3,0.2}))",
        "RiskCompound(B1,RiskPert(1,B1,30),1)",  # parameters that vary per trial
        "RiskCompound(RiskPoisson(2),RiskBeta(0.5,0.6,RiskSeed(5)))",
    ],
)
def test_severities_of_every_kind_agree_on_every_back_end(tmp_path: Path, formula: str) -> None:
    model = engine.load_workbook(_book(tmp_path, formula, B1="=RiskUniform(2,9)"))
    want = compile_numpy(model, seed=SEED).evaluate(10, 3_000)
    if native.available() is None:
        assert_close(native.compile_native(model, seed=SEED).evaluate(10, 3_000)[0], want[0])
    if nvcc_path() is not None:
        assert_close(HostHarness(generate(model), tmp_path).evaluate(SEED, 10, 3_000)[0], want[0])


def test_the_stored_model_runs_the_same_trials(model: Model) -> None:
    """What the simulation service stores and its workers load (``engine.serial``)."""
    stored = serial.load_model(serial.dump_model(model))
    got = compile_numpy(stored, seed=SEED).evaluate(0, 2_000)
    want = compile_numpy(model, seed=SEED).evaluate(0, 2_000)
    for name, values in want[0].items():
        np.testing.assert_array_equal(got[0][name], values)
