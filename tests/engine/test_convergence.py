"""Convergence stopping: the trial a run stops at, and what it says about it.

The reference is an independent computation over the same trials' outputs (the NumPy back
end's values of the first ``max_trials`` trials): at each multiple of ``check_every`` the
confidence intervals of the module docstring, from NumPy and SciPy, over that prefix. A run
stops at the first multiple where every monitored output passes, whatever the chunk size,
and its results are exactly those of a plain run of that many trials.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from openpyxl import Workbook
from scipy import stats as sps

from services import engine
from services.engine import convergence, simtable
from services.engine.convergence import Settings, criterion
from services.engine.errors import FormulaError
from services.engine.ir import Convergence, Model
from services.engine.numpy_backend import compile_numpy
from tests.engine import examples
from tests.engine import models as wb
from tests.engine.test_cli_run import alea

SEED = 20261204
WORKBOOK = Path(__file__).parents[1] / "data" / "workbooks" / "convergence.xlsx"


@pytest.fixture(scope="module")
def model() -> Model:
    return engine.load_workbook(WORKBOOK)


def _passes(x: np.ndarray, test: Convergence) -> bool:
    """``test`` over the values ``x``, computed here from its definition."""
    x = x[np.isfinite(x)]
    n = x.size
    z = sps.norm.ppf((1 + test.confidence) / 2)
    found: list[tuple[float, float]] = []
    if test.mean:
        found.append((x.mean(), z * x.std(ddof=1) / math.sqrt(n)))
    if test.stddev:
        s = x.std(ddof=1)
        a = 1 - test.confidence
        hi = s * math.sqrt((n - 1) / sps.chi2.ppf(a / 2, n - 1))
        lo = s * math.sqrt((n - 1) / sps.chi2.ppf(1 - a / 2, n - 1))
        found.append((s, max(hi - s, s - lo)))
    for p in test.percentiles:
        d = z * math.sqrt(p * (1 - p) / n)
        lo, mid, hi = np.quantile(x, [max(p - d, 0), p, min(p + d, 1)])
        found.append((mid, max(mid - lo, hi - mid)))
    limit = (lambda e: test.tolerance * abs(e)) if test.relative else (lambda e: test.tolerance)
    return all(h <= limit(e) for e, h in found)


def _reference(model: Model, settings: Settings) -> int | None:
    """The first multiple of check_every where every monitored output passes, else None."""
    outputs, _ = compile_numpy(model, seed=SEED).evaluate(0, settings.max_trials)
    tests = {o.name: o.convergence or settings.default for o in model.outputs}
    for end in range(settings.check_every, settings.max_trials + 1, settings.check_every):
        if all(_passes(outputs[k][:end], t) for k, t in tests.items() if t is not None):
            return end
    return None


def _run(model: Model, settings: Settings, chunk_size: int | None = None):  # type: ignore[no-untyped-def]
    evaluator = compile_numpy(model, seed=SEED)
    return convergence.simulate(model, evaluator, settings, chunk_size=chunk_size)


def test_the_worked_example_reads_each_outputs_riskconvergence(model: Model) -> None:
    tests = {o.name: o.convergence for o in model.outputs}
    assert tests == {
        "Profit": Convergence(0.01, True, 0.95, True, False, ()),
        "Shortfall": Convergence(50.0, False, 0.90, False, False, (0.95,)),
        "Units": None,
    }


@pytest.mark.parametrize("default", [None, criterion(0.01, stddev=True, percentiles=(0.05,))])
def test_stops_where_the_reference_does_whatever_the_chunking(
    model: Model, default: Convergence | None
) -> None:
    settings = Settings(check_every=1000, max_trials=100_000, default=default)
    expected = _reference(model, settings)
    assert expected is not None and expected < settings.max_trials
    runs = [_run(model, settings, chunk) for chunk in (None, 256, 1000, 333)]
    assert {outcome.trials for _, outcome in runs} == {expected}
    assert all(outcome.converged for _, outcome in runs)
    # the results are exactly those of a plain run of that many trials (the convergence
    # series is of merged moments: equal within rounding for any chunking, see stats.py)
    plain = engine.simulate(model, trials=expected, seed=SEED, backend="numpy")
    want = {k: v.to_dict() for k, v in plain.results().items()}
    series = {k: np.array(want[k].pop("convergence")) for k in want}
    for partial, _ in runs:
        assert partial.trials == expected
        got = {k: v.to_dict() for k, v in partial.results().items()}
        for k, v in got.items():
            np.testing.assert_allclose(v.pop("convergence"), series[k], rtol=1e-12)
        assert got == want


def test_a_run_that_never_converges_stops_at_max_trials_and_says_so(model: Model) -> None:
    settings = Settings(check_every=1000, max_trials=5000, default=criterion(1e-6))
    partial, outcome = _run(model, settings)
    assert (partial.trials, outcome.trials, outcome.converged) == (5000, 5000, False)
    assert outcome.passed["Units"] is False
    precision = outcome.precision["Units"]["mean"]
    assert precision is not None and 1e-6 < precision < 0.1
    data = outcome.to_dict(settings)
    assert data["converged"] is False and data["max_trials"] == 5000


def test_a_relative_test_of_a_zero_mean_never_passes_an_absolute_one_does(
    tmp_path: Path,
) -> None:
    book = Workbook()
    ws = book.active
    ws["A1"] = "=RiskNormal(0,1)"
    ws["A2"] = "=RiskOutput()+A1-A1"  # exactly 0: relative passes (no spread)
    ws["A3"] = "=RiskOutput(,,,RiskConvergence(0.05,1))+A1"  # absolute ±0.05
    ws["A4"] = "=RiskOutput(,,,RiskConvergence(1%))+A1"  # relative, mean 0
    model = engine.load_workbook(wb.save(book, tmp_path, "zero"))
    settings = Settings(check_every=1000, max_trials=10_000, default=criterion(0.01))
    _, outcome = _run(model, settings)
    assert outcome.passed["Sheet!A2"] and outcome.passed["Sheet!A3"]
    assert not outcome.passed["Sheet!A4"] and outcome.trials == 10_000
    assert outcome.precision["Sheet!A4"]["mean"] is not None  # a sample mean is never 0 exactly


def test_risksimtable_monitors_every_simulations_outputs(tmp_path: Path) -> None:
    model = engine.load_workbook(wb.save(examples.simtable(), tmp_path, "simtable"))
    expansion = simtable.expand(model)
    settings = Settings(check_every=1000, max_trials=50_000, default=criterion(0.02))
    _, outcome = _run(expansion.model, settings)
    assert set(outcome.precision) == {o.name for o in expansion.model.outputs}
    assert outcome.trials == _reference(expansion.model, settings)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"tolerance": 0.0}, "tolerance"),
        ({"tolerance": math.nan}, "tolerance"),
        ({"tolerance": 1.5}, "tolerance"),
        ({"confidence": 1.0}, "confidence"),
        ({"percentiles": (0.5, 1.0)}, "percentiles"),
        ({"mean": False}, "mean"),
    ],
)
def test_bad_tests_are_refused_naming_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=rf"^default\.{field} "):
        criterion(**kwargs, field_prefix="default.")  # type: ignore[arg-type]


def test_bad_settings_are_refused_naming_the_field(model: Model) -> None:
    with pytest.raises(ValueError, match=r"^check_every"):
        Settings(check_every=0, max_trials=10)
    with pytest.raises(ValueError, match=r"^max_trials must be a multiple"):
        Settings(check_every=1000, max_trials=1500)
    with pytest.raises(ValueError, match=r"^check_every must be at least"):
        Settings(check_every=1, max_trials=10**9)
    plain = engine.load_workbook(Path(__file__).parents[1] / "data" / "workbooks" / "sobol.xlsx")
    with pytest.raises(ValueError, match="monitors no output"):
        Settings(1000, 10_000, None).tests(plain)
    assert set(Settings(1000, 10_000, None).tests(model)) == {"Profit", "Shortfall"}
    settings = Settings(1000, 10_000, criterion(0.02, percentiles=(0.9,)))
    assert Settings.from_json(json.loads(json.dumps(settings.to_json()))) == settings


@pytest.mark.parametrize(
    ("formula", "message"),
    [
        ("RiskConvergence(3%,3)", "toleranceType must be 1 or 2"),
        ("RiskConvergence(-1)", "tolerance must be a positive number"),
        ("RiskConvergence(1%,2,95%,FALSE,FALSE,TRUE)", "usePercentile needs the percentile"),
        ("RiskConvergence(1%,2,95%,FALSE,FALSE,TRUE,1.5)", "percentiles must be probabilities"),
        ("RiskConvergence(A9)", "constant numbers"),
        ("RiskNormal(1,1)", "only property functions may follow"),
    ],
)
def test_bad_riskconvergence_is_refused_naming_the_cell(
    tmp_path: Path, formula: str, message: str
) -> None:
    book = Workbook()
    ws = book.active
    ws["A1"] = "=RiskNormal(0,1)"
    ws["A9"] = "=RiskUniform(0,1)"
    ws["B2"] = f"=RiskOutput(,,,{formula})+A1"
    with pytest.raises(FormulaError, match=f"Sheet!B2: .*{message}"):
        engine.load_workbook(wb.save(book, tmp_path, "bad"))


def test_riskconvergence_belongs_to_outputs_only(tmp_path: Path) -> None:
    book = Workbook()
    ws = book.active
    ws["A1"] = "=RiskNormal(0,1,RiskConvergence(1%))"
    ws["B2"] = "=RiskOutput()+A1"
    with pytest.raises(FormulaError, match="only property functions may follow"):
        engine.load_workbook(wb.save(book, tmp_path, "input"))
    ws["A1"] = "=RiskNormal(0,1)+RiskConvergence(1%)"
    with pytest.raises(FormulaError, match="allowed only as an argument of RiskOutput"):
        engine.load_workbook(wb.save(book, tmp_path, "alone"))


def test_alea_run_stops_at_the_same_trial_with_any_chunk_size(model: Model) -> None:
    settings = Settings(check_every=2000, max_trials=100_000, default=criterion(0.005))
    expected = _reference(model, settings)
    args = ["--seed", SEED, "--backend", "numpy", "--json", "--converge", "0.5%"]
    args += ["--check-every", 2000, "--max-trials", 100_000]
    found = []
    for chunk in ("700", "65536"):
        done = alea(WORKBOOK, *map(str, args), "--chunk-size", chunk)
        assert done.returncode == 0, done.stderr
        found.append(json.loads(done.stdout))
    for summary in found:
        assert summary["trials"] == expected == summary["convergence"]["trials"]
        assert summary["convergence"]["converged"] is True
        assert set(summary["convergence"]["outputs"]) == {"Profit", "Shortfall", "Units"}
    assert found[0]["outputs"] == found[1]["outputs"]
    text = alea(WORKBOOK, "--seed", SEED, "--backend", "numpy", "--check-every", 2000)
    assert text.returncode == 0, text.stderr
    assert "converged at" in text.stdout and "Units:" not in text.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--converge", "x"], "--converge: not a tolerance"),
        (["--converge", "1%", "--converge-on", "median"], "--converge-on: unknown"),
        (["--converge", "1%", "--confidence", "100"], "--converge: confidence"),
        (["--check-every", "1000", "--max-trials", "1500"], "--max-trials must be a multiple"),
    ],
)
def test_alea_run_refuses_bad_convergence_options(args: list[str], message: str) -> None:
    done = alea(WORKBOOK, *args)
    assert done.returncode == 2 and message in done.stderr, done.stderr


def test_alea_simulate_asks_for_what_alea_run_would() -> None:
    from services.cli.main import build_parser
    from services.cli.run import stopping_settings
    from services.simulation.convert import convergence_settings, settings_message

    options = ["--converge", "250", "--converge-on", "std,p95", "--confidence", "90"]
    args = build_parser().parse_args(
        ["simulate", str(WORKBOOK), "--trials", "100000", *options, "--check-every", "5000"]
    )
    settings = stopping_settings(args, args.trials)
    test = criterion(250, relative=False, confidence=0.9, mean=False, stddev=True)
    assert settings == Settings(5000, 100_000, replace(test, percentiles=(0.95,)))
    message = settings_message(settings)
    assert message is not None and convergence_settings(message, 100_000) == settings
    plain = build_parser().parse_args(["simulate", str(WORKBOOK), "--trials", "100000"])
    assert stopping_settings(plain, plain.trials) is None
