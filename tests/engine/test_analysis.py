"""Scenario analysis and contribution to variance (``services/engine/analysis.py``).

The reference is computed here with plain NumPy on the very trials the run evaluated (the
NumPy back end's per-trial values), on every CPU back end, over every trial and over the
reservoir a long run keeps; the analytic case is the worked example's Cost, linear in two
independent normal inputs.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from services import engine
from services.engine import outcome, simtable
from services.engine.analysis import DEFAULT_SCENARIOS, Scenario
from services.engine.numpy_backend import compile_numpy
from services.engine.stats import StatsOptions, trial_hash
from tests.engine import examples
from tests.engine import models as wb

SEED = 7
TRIALS = 60_000
WANTED = (Scenario("below", 0.0, "Profit"), Scenario("top", 10.0), Scenario("bottom", 25.0))


def _model(tmp_path: Path) -> engine.Model:
    return engine.load_workbook(wb.save(examples.scenarios(), tmp_path, "scenarios"))


def _target(y: np.ndarray, scenario: Scenario) -> np.ndarray:
    if scenario.kind == "top":
        return y >= np.percentile(y, 100 - scenario.threshold)
    if scenario.kind == "bottom":
        return y <= np.percentile(y, scenario.threshold)
    return y > scenario.threshold if scenario.kind == "above" else y < scenario.threshold


def _reference_scenario(y: np.ndarray, inputs: dict[str, np.ndarray], scenario: Scenario):
    target = _target(y, scenario)
    return int(target.sum()), {
        name: (np.median(x[target]) - np.median(x)) / np.std(x, ddof=1)
        for name, x in inputs.items()
    }


def _reference_contribution(y: np.ndarray, inputs: dict[str, np.ndarray]):
    """R² and shares from an ordinary least-squares fit with an intercept."""
    names = list(inputs)
    design = np.column_stack([np.ones(y.size)] + [inputs[n] for n in names])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = y - design @ coef
    r2 = 1 - residual @ residual / ((y - y.mean()) @ (y - y.mean()))
    b = np.array([coef[1 + j] * inputs[n].std() / y.std() for j, n in enumerate(names)])
    return r2, dict(zip(names, r2 * b**2 / (b @ b), strict=True))


def _check(data: dict, outputs: dict[str, np.ndarray], inputs: dict[str, np.ndarray]) -> None:
    for name, y in outputs.items():
        r = data[name]
        r2, shares = _reference_contribution(y, inputs)
        assert r["r_squared"] == pytest.approx(r2, rel=1e-9)
        got = {c["name"]: c["share"] for c in r["contribution"]}
        assert got == pytest.approx(shares, rel=1e-6, abs=1e-12)
        assert [c["share"] for c in r["contribution"]] == sorted(got.values(), reverse=True)
        wanted = [s for s in WANTED if s.output in ("", name)]
        assert [s["scenario"] for s in r["scenarios"]] == [s.to_json() for s in wanted]
        for scenario, got_scenario in zip(wanted, r["scenarios"], strict=True):
            trials, significance = _reference_scenario(y, inputs, scenario)
            assert got_scenario["trials"] == trials
            found = {i["name"]: i["significance"] for i in got_scenario["inputs"]}
            assert found == pytest.approx(significance, rel=1e-9, abs=1e-12)
            for i in got_scenario["inputs"]:
                assert i["significant"] == (abs(i["significance"]) >= 0.5)
            order = [abs(i["significance"]) for i in got_scenario["inputs"]]
            assert order == sorted(order, reverse=True)


def test_every_trial_matches_numpy_on_the_same_trials(tmp_path: Path, backend: str) -> None:
    model = _model(tmp_path)
    options = outcome.RunOptions(scenarios=WANTED)
    expansion = outcome.prepare(model, options)
    partial = engine.simulate(model, trials=TRIALS, seed=SEED, backend=backend)
    data = outcome.results_data(expansion, partial, options)
    outputs, inputs = compile_numpy(model, seed=SEED).evaluate(0, TRIALS)
    assert all(r["exact"] for r in data.values())
    _check(data, outputs, inputs)
    # The example's point: a loss comes from a low price and a high unit cost and overhead.
    loss = data["Profit"]["scenarios"][0]
    assert [i["name"] for i in loss["inputs"] if i["significant"]] == [
        "Price",
        "Unit cost",
        "Overhead",
    ]


def test_a_long_run_analyses_its_reservoir(tmp_path: Path, backend: str) -> None:
    """Past the exact limit the analysis reads the reservoir: the trials of smallest hash."""
    model = _model(tmp_path)
    options = outcome.RunOptions(scenarios=WANTED)
    stats = StatsOptions(exact_limit=1 << 14, reservoir_size=5_000)
    partial = engine.simulate(
        model, trials=1 << 17, seed=SEED, backend=backend, chunk_size=1 << 16, options=stats
    )
    data = outcome.results_data(outcome.prepare(model, options), partial, options)
    kept = np.sort(np.argsort(trial_hash(np.arange(1 << 17)))[:5_000])
    outputs, inputs = compile_numpy(model, seed=SEED).evaluate(0, 1 << 17)
    assert not any(r["exact"] for r in data.values())
    _check(data, {k: v[kept] for k, v in outputs.items()}, {k: v[kept] for k, v in inputs.items()})


def test_a_linear_output_of_independent_normals_splits_its_variance_exactly(tmp_path) -> None:
    model = _model(tmp_path)
    partial = engine.simulate(model, trials=400_000, seed=SEED, backend="numpy")
    cost = partial.results()["Cost"]
    assert cost.r_squared == pytest.approx(1.0, abs=1e-12)
    shares = {c.name: c.share for c in cost.contribution}
    for name, share in examples.cost_shares().items():
        # the sample variances of 400,000 normals are within ~0.5% of the true ones
        assert shares[name] == pytest.approx(share, abs=0.005)
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-9)
    others = ("Demand", "Price", "Unit cost", "Overhead")
    assert max(shares[n] for n in others) < 1e-20
    # the top 10% of Cost: each input's conditional median, from the bivariate normal
    top = next(s for s in cost.scenarios if s.scenario == Scenario("top", 10.0))
    sigma = math.hypot(2 * examples.LABOUR[1], 3 * examples.MATERIALS[1])
    rhos = {
        "Labour": 2 * examples.LABOUR[1] / sigma,
        "Materials": 3 * examples.MATERIALS[1] / sigma,
    }
    for i in top.inputs:
        if i.name in rhos:
            # 40,000 target trials: the median's standard error is about 0.01 sd
            assert i.significance == pytest.approx(_top_median(rhos[i.name], 0.10), abs=0.03)
            assert i.significant
        else:
            assert abs(i.significance) < 0.05 and not i.significant


def _top_median(rho: float, fraction: float) -> float:
    """Median of X given Y in its top ``fraction``, X and Y standard normals of correlation
    ``rho``: X = rho Z + sqrt(1 - rho²) E with Z the truncated Y, solved by quadrature."""
    from scipy import integrate, optimize, stats

    cut = stats.norm.ppf(1 - fraction)
    rest = math.sqrt(1 - rho * rho)

    def below(m: float) -> float:
        inner = integrate.quad(
            lambda z: stats.norm.pdf(z) * stats.norm.cdf((m - rho * z) / rest), cut, np.inf
        )[0]
        return inner / fraction - 0.5

    return float(optimize.brentq(below, -5.0, 5.0))


def test_defaults_are_the_top_and_bottom_ten_percent(tmp_path) -> None:
    model = _model(tmp_path)
    partial = engine.simulate(model, trials=5_000, seed=SEED, backend="numpy")
    data = outcome.results_data(outcome.prepare(model, outcome.RunOptions()), partial)
    for r in data.values():
        assert [s["label"] for s in r["scenarios"]] == [">90%", "<10%"]
        assert [s["trials"] for s in r["scenarios"]] == [500, 500]
    assert outcome.RunOptions().scenarios_of("Cost") == DEFAULT_SCENARIOS


def test_no_target_trial_and_constant_inputs_give_nan_not_errors() -> None:
    from services.engine.stats import Partial

    y = np.linspace(0.0, 1.0, 1_000)
    inputs = {"x": y * 2.0, "flat": np.ones_like(y)}
    r = Partial.from_chunk(0, {"y": y}, inputs).results({"y": [Scenario("above", 5.0)]})["y"]
    (scenario,) = r.scenarios
    assert scenario.trials == 0
    assert all(math.isnan(i.significance) and not i.significant for i in scenario.inputs)
    assert {c.name: c.share for c in r.contribution} == pytest.approx({"x": 1.0, "flat": 0.0})
    data = r.to_dict()
    assert data["scenarios"][0]["inputs"][0]["significance"] is None


def test_simtable_simulations_keep_their_own_inputs(tmp_path) -> None:
    model = engine.load_workbook(wb.save(examples.simtable(), tmp_path, "simtable"))
    options = outcome.RunOptions(scenarios=(Scenario("below", 0.0, "Profit"),))
    expansion = outcome.prepare(model, options)
    partial = engine.simulate(expansion.model, trials=20_000, seed=SEED, backend="numpy")
    data = outcome.results_data(expansion, partial, options)
    for k in (1, 2, 3):
        profit, value = data[f"Profit [{k}]"], data[f"Value [{k}]"]
        assert [s["label"] for s in profit["scenarios"]] == ["<0"]
        assert value["scenarios"] == []
        names = {"Price", "Volume", "Unit cost"}
        assert {i["name"] for i in profit["scenarios"][0]["inputs"]} == names
        assert {c["name"] for c in profit["contribution"]} == names
    assert simtable.simulations(model) == 3


@pytest.mark.parametrize(
    ("text", "scenario"),
    [
        (">90%", Scenario("top", 10.0)),
        ("<25%", Scenario("bottom", 25.0)),
        ("NPV:>1000", Scenario("above", 1000.0, "NPV")),
        ("Net: margin:< -5", Scenario("below", -5.0, "Net: margin")),
    ],
)
def test_scenarios_parse_as_risk_writes_them(text: str, scenario: Scenario) -> None:
    assert Scenario.parse(text) == scenario
    assert Scenario.parse(scenario.label()).kind == scenario.kind


@pytest.mark.parametrize("text", ["90%", ">100%", "<0%", ">abc", ">nan", "<inf", ""])
def test_malformed_scenarios_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"scenario|number|percent|finite"):
        Scenario.parse(text)


def test_options_round_trip_through_json_and_keep_plain_options_as_before() -> None:
    options = outcome.RunOptions(vary_seeds=True, scenarios=WANTED)
    assert outcome.RunOptions.from_json(options.to_json()) == options
    assert outcome.RunOptions().to_json() == {"vary_seeds": False}
    assert options.scenarios_of("Cost") == (WANTED[1], WANTED[2])
