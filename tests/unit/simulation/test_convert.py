"""Records ↔ messages: every field of Model, Simulation, Progress and Results filled from
the stored records and the engine's results, with the enums the contract names."""

from __future__ import annotations

import math

import pytest
from alea.simulation.v1 import analysis_pb2, model_spec_pb2
from alea.simulation.v1 import simulation_pb2 as pb

from services.engine import StatsOptions, ir, simulate
from services.engine.analysis import Scenario
from services.engine.catalog import DISTRIBUTIONS
from services.engine.outcome import RunOptions
from services.simulation import convert
from services.simulation.domain import summarise
from services.simulation.hub import Progress
from tests.unit.simulation.records import model_record, simulation_record


def _model(distribution: str = "normal", warnings: tuple[str, ...] = ()) -> ir.Model:
    a = ir.Sample(0, distribution, (ir.Const(100.0), ir.Const(10.0)), "a", "Sheet1!A1")
    y = ir.Apply("mul", (a, ir.Const(2.0)), "Sheet1!B1")
    return ir.Model((a,), (ir.Output("y", "Sheet1!B1", y),), warnings=warnings)


def test_model_carries_the_record_and_its_summary() -> None:
    warnings = ("Sheet1!C3: RiskCorrmat ignored", "'My Sheet'!D4: volatile", "no location here")
    record = model_record(summary=summarise(_model(warnings=warnings)), file_id="f1")
    message = convert.model(record)
    assert (message.id, message.tenant_id, message.display_name) == (
        record.id,
        "t1",
        "portfolio",
    )
    assert (message.file_id, message.creator_id, message.content_hash) == ("f1", "u1", "c0ffee")
    assert message.source == pb.MODEL_SOURCE_WORKBOOK
    [given] = message.inputs
    assert (given.name, given.address, given.summary) == ("a", "Sheet1!A1", "normal(100, 10)")
    assert model_spec_pb2.DistributionKind.Name(given.kind) == "DISTRIBUTION_KIND_NORMAL"
    assert [(o.name, o.address) for o in message.outputs] == [("y", "Sheet1!B1")]
    assert [(w.location, w.message) for w in message.warnings] == [
        ("Sheet1!C3", "RiskCorrmat ignored"),
        ("'My Sheet'!D4", "volatile"),
        ("", "no location here"),
    ]
    # Float seconds carry about a quarter of a microsecond of precision at this epoch.
    assert abs(message.create_time.ToNanoseconds() - 1_700_000_000_250_000_000) < 1000
    assert convert.model(model_record(source_kind="spec")).source == pb.MODEL_SOURCE_SPEC


@pytest.mark.parametrize("distribution", sorted(DISTRIBUTIONS))
def test_every_engine_distribution_converts_to_its_model_input_kind(distribution: str) -> None:
    # The contract names every family the engine samples (CHI_SQ is chisq, BETA_GENERAL
    # betageneral): none reads UNSPECIFIED, and none fails the RPC.
    record = model_record(summary=summarise(_model(distribution)))
    [given] = convert.model(record).inputs
    name = model_spec_pb2.DistributionKind.Name(given.kind)
    assert name.removeprefix("DISTRIBUTION_KIND_").replace("_", "").lower() == distribution
    assert given.summary.startswith(f"{distribution}(")


def test_simulation_maps_states_enums_and_times() -> None:
    record = simulation_record(
        state="RUNNING",
        sampling="lhs",
        backend_preference="NATIVE",
        backend="native",
        start_time=1_700_000_001.5,
        trials_done=300,
    )
    message = convert.simulation(record)
    assert message.state == pb.Simulation.STATE_RUNNING
    assert message.sampling == pb.SAMPLING_LATIN_HYPERCUBE
    assert message.backend_preference == pb.BACKEND_PREFERENCE_NATIVE
    assert message.backend == pb.BACKEND_NATIVE
    assert (message.creator_id, message.trials, message.trials_done) == ("u1", 1000, 300)
    assert abs(message.start_time.ToNanoseconds() - 1_700_000_001_500_000_000) < 1000
    assert not message.HasField("end_time")  # not ended: unset, not the epoch


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ("cuda", pb.BACKEND_GPU),  # rows written before "gpu"
        ("cpu", pb.BACKEND_CPU),  # workers registered before the native back end
        ("cache", pb.BACKEND_UNSPECIFIED),  # served from the result cache
        ("", pb.BACKEND_UNSPECIFIED),  # not run yet
    ],
)
def test_stored_backends_of_every_age_convert(stored: str, expected: int) -> None:
    assert convert.simulation(simulation_record(backend=stored)).backend == expected


def test_every_state_and_preference_the_store_writes_has_a_message_value() -> None:
    for state in ("QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"):
        assert convert.simulation(simulation_record(state=state)).state
    for preference in ("AUTO", "CPU", "GPU", "NATIVE", "NUMPY"):
        message = convert.simulation(simulation_record(backend_preference=preference))
        assert convert.PREFERENCE_FROM_PROTO[message.backend_preference] == preference


def test_progress_with_and_without_an_eta() -> None:
    running = {"y": (200.5, 0.25)}
    message = convert.progress(Progress(500, 1000, 250.0, 2.5, running))
    assert (message.trials_done, message.trials_total, message.trials_per_second) == (
        500,
        1000,
        250.0,
    )
    assert message.eta.ToNanoseconds() == 2_500_000_000
    assert [(o.name, o.mean, o.standard_error) for o in message.outputs] == [("y", 200.5, 0.25)]
    # No rate yet: the ETA is unknown (infinite) and stays unset rather than overflowing.
    assert convert.progress(Progress(0, 1000, 0.0, math.inf, {})).eta.ToNanoseconds() == 0


def test_results_carry_the_engine_statistics() -> None:
    engine = simulate(_model(), trials=2000, seed=7, options=StatsOptions(exact_limit=10_000))
    data = {name: r.to_dict() for name, r in engine.results().items()}
    record = simulation_record(state="SUCCEEDED", end_time=1_700_000_009.0, seed=7)
    message = convert.results(record, data, {"y": "Sheet1!B1"})
    assert (message.simulation_id, message.model_id, message.seed) == (record.id, "m1", 7)
    assert message.create_time.seconds == 1_700_000_009  # when the results were made
    [output] = message.outputs
    expected = data["y"]
    assert (output.name, output.address) == ("y", "Sheet1!B1")
    assert output.statistics.count == 2000
    assert output.statistics.mean == pytest.approx(expected["mean"])
    assert output.statistics.mean == pytest.approx(200.0, rel=0.02)
    assert output.exact
    percents = [p.percent for p in output.percentiles]
    assert percents == sorted(percents)  # sorted numerically, not as the stored strings
    assert len(output.percentiles) == len(expected["percentiles"])
    assert sum(output.histogram.counts) == 2000
    assert len(output.histogram.bin_edges) == len(output.histogram.counts) + 1


def test_undefined_statistics_become_nan_not_zero() -> None:
    # to_dict() writes NaN as None (JSON); the message must say NaN again, not 0.
    engine = simulate(_model(), trials=1, seed=1)
    data = {name: r.to_dict() for name, r in engine.results().items()}
    assert data["y"]["std"] is None
    output = convert.output_results(data["y"], "")
    assert math.isnan(output.statistics.std)
    assert output.statistics.mean == pytest.approx(data["y"]["mean"])


def test_results_carry_scenarios_and_contribution_to_variance() -> None:
    engine = simulate(_model(), trials=2000, seed=7)
    scenarios = [Scenario("below", 190.0, "y"), Scenario("top", 5.0)]
    data = {name: r.to_dict() for name, r in engine.results({"y": scenarios}).items()}
    output = convert.output_results(data["y"], "Sheet1!B1")
    assert [s.label for s in output.scenarios] == ["<190", ">95%"]
    below, top = output.scenarios
    assert below.target == analysis_pb2.ScenarioTarget(
        output="y", kind=analysis_pb2.SCENARIO_KIND_BELOW_VALUE, threshold=190.0
    )
    assert top.target.output == "y"  # the output the results are of, not "every output"
    assert top.trials == 100
    [a] = top.inputs
    stored = data["y"]["scenarios"][1]["inputs"][0]
    assert (a.input_name, a.significance, a.significant) == ("a", stored["significance"], True)
    assert a.subset_median > a.overall_median and a.std == pytest.approx(10.0, rel=0.05)
    [share] = output.contribution_to_variance
    assert (share.input_name, share.share) == ("a", pytest.approx(1.0))
    assert share.standardized_coefficient == pytest.approx(1.0)
    assert output.regression_r_squared == pytest.approx(1.0)


def test_results_stored_before_the_analysis_convert_without_it() -> None:
    engine = simulate(_model(), trials=100, seed=1)
    data = engine.results()["y"].to_dict()
    for key in ("scenarios", "contribution", "r_squared"):
        del data[key]
    output = convert.output_results(data, "")
    assert not output.scenarios and not output.contribution_to_variance
    assert math.isnan(output.regression_r_squared)


def test_a_simulation_shows_the_scenarios_it_asked_for() -> None:
    options = RunOptions(scenarios=(Scenario("above", 1e6, "y"),))
    message = convert.simulation(simulation_record(options=options.to_json()))
    assert [(t.output, t.kind, t.threshold) for t in message.scenarios] == [
        ("y", analysis_pb2.SCENARIO_KIND_ABOVE_VALUE, 1e6)
    ]
    assert convert.scenario(message.scenarios[0]) == options.scenarios[0]
    assert not convert.simulation(simulation_record()).scenarios


def test_results_print_and_plot_the_analysis(tmp_path) -> None:
    from services.cli import simulate as cli

    engine = simulate(_model(), trials=2000, seed=7)
    data = {name: r.to_dict() for name, r in engine.results().items()}
    message = convert.results(simulation_record(state="SUCCEEDED"), data, {"y": "Sheet1!B1"})
    high, low = (s.inputs[0].significance for s in message.outputs[0].scenarios)
    assert high > 1.5 and low < -1.5  # the median of a normal's top 10 % is 1.75 sd up
    assert cli.analysis_text(message).splitlines() == [
        "y contribution to variance (R² 1.000): a 100.0%",
        f"y scenario >90% (200 trials): a {high:+.2f} sd",
        f"y scenario <10% (200 trials): a {low:+.2f} sd",
    ]
    png = tmp_path / "results.png"
    cli.plot(message, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_sampling_method_maps_both_ways() -> None:
    for method in ("mc", "lhs", "sobol"):
        message = convert.simulation(simulation_record(sampling=method))
        assert convert.SAMPLING_FROM_PROTO[message.sampling] == method
    assert convert.SAMPLING_TO_PROTO["sobol"] == pb.SAMPLING_SOBOL
