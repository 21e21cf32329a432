"""Domain records ↔ protobuf messages of ``alea.simulation.v1`` (the only place that maps them)."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from alea.simulation.v1 import analysis_pb2, convergence_pb2, fitting_pb2, model_spec_pb2
from alea.simulation.v1 import simulation_pb2 as pb
from google.protobuf import duration_pb2

from services.engine.analysis import Scenario
from services.engine.convergence import Settings, criterion
from services.runtime.convert import timestamp_of_seconds
from services.runtime.errors import InvalidArgument
from services.simulation import result_data
from services.simulation.hub import Progress, number_or_nan
from services.simulation.store import ModelRecord, SimulationRecord

if TYPE_CHECKING:  # the engine loads off the serving path (services.simulation.loading)
    from services.engine.fitting import Fit, Report

SAMPLING_FROM_PROTO = {
    pb.SAMPLING_UNSPECIFIED: "mc",
    pb.SAMPLING_MONTE_CARLO: "mc",
    pb.SAMPLING_LATIN_HYPERCUBE: "lhs",
    pb.SAMPLING_SOBOL: "sobol",
}
SAMPLING_TO_PROTO = {
    "mc": pb.SAMPLING_MONTE_CARLO,
    "lhs": pb.SAMPLING_LATIN_HYPERCUBE,
    "sobol": pb.SAMPLING_SOBOL,
}
PREFERENCE_FROM_PROTO = {
    pb.BACKEND_PREFERENCE_UNSPECIFIED: "AUTO",
    pb.BACKEND_PREFERENCE_AUTO: "AUTO",
    pb.BACKEND_PREFERENCE_CPU: "CPU",
    pb.BACKEND_PREFERENCE_GPU: "GPU",
    pb.BACKEND_PREFERENCE_NATIVE: "NATIVE",
    pb.BACKEND_PREFERENCE_NUMPY: "NUMPY",
}
PREFERENCE_TO_PROTO = {v: k for k, v in PREFERENCE_FROM_PROTO.items() if k}
BACKEND_TO_PROTO = {
    "native": pb.BACKEND_NATIVE,
    "numpy": pb.BACKEND_CPU,
    "gpu": pb.BACKEND_GPU,
    "cpu": pb.BACKEND_CPU,  # workers registered before the native back end
    "cuda": pb.BACKEND_GPU,  # simulations and workers recorded before "gpu"
}
_LOCATION = re.compile(r"^('?[^!]+'?![A-Z]+[0-9]+|[\w.\[\]]+): (.*)$")


#: Engine distribution name → DistributionKind value name (``BETA_GENERAL`` is betageneral);
#: a family the contract does not name yet is UNSPECIFIED (its summary still names it).
_KINDS = {
    name.removeprefix("DISTRIBUTION_KIND_").lower().replace("_", ""): name
    for name in (v.name for v in model_spec_pb2.DistributionKind.DESCRIPTOR.values)
}


def _kind(distribution: str) -> str:
    """The DistributionKind value name of an engine distribution (messages take names)."""
    return _KINDS.get(distribution, "DISTRIBUTION_KIND_UNSPECIFIED")


def _warning(text: str) -> pb.ModelWarning:
    match = _LOCATION.match(text)
    if match is None:
        return pb.ModelWarning(message=text)
    return pb.ModelWarning(location=match.group(1), message=match.group(2))


def model(record: ModelRecord) -> pb.Model:
    """The Model message of a stored model."""
    summary = record.summary
    source = pb.MODEL_SOURCE_SPEC if record.source_kind == "spec" else pb.MODEL_SOURCE_WORKBOOK
    return pb.Model(
        id=record.id,
        tenant_id=record.tenant_id,
        display_name=record.display_name,
        source=source,
        file_id=record.file_id or "",
        content_hash=record.content_hash,
        inputs=[
            pb.ModelInput(
                name=i["name"],
                address=i["address"],
                kind=_kind(i["distribution"].split("(")[0]),
                summary=i["distribution"],
            )
            for i in summary["inputs"]
        ],
        outputs=[pb.ModelOutput(name=o["name"], address=o["address"]) for o in summary["outputs"]],
        warnings=[_warning(w) for w in summary["warnings"]],
        creator_id=record.creator_id,
        create_time=timestamp_of_seconds(record.create_time),
        update_time=timestamp_of_seconds(record.update_time),
        simulations=summary.get("simulations", 1),
    )


def simulation(record: SimulationRecord) -> pb.Simulation:
    """The Simulation message of a stored job."""
    return pb.Simulation(
        id=record.id,
        tenant_id=record.tenant_id,
        model_id=record.model_id,
        creator_id=record.user_id,
        state=f"STATE_{record.state}",
        state_reason=record.state_reason,
        trials=record.trials,
        trials_done=record.trials_done,
        seed=record.seed,
        sampling=SAMPLING_TO_PROTO[record.sampling],
        backend_preference=PREFERENCE_TO_PROTO[record.backend_preference],
        backend=BACKEND_TO_PROTO.get(record.backend, pb.BACKEND_UNSPECIFIED),
        priority=record.priority,
        cached=record.cached,
        create_time=timestamp_of_seconds(record.create_time),
        update_time=timestamp_of_seconds(record.update_time),
        start_time=timestamp_of_seconds(record.start_time),
        end_time=timestamp_of_seconds(record.end_time),
        vary_simulation_seeds=bool((record.options or {}).get("vary_seeds", False)),
        scenarios=[
            scenario_target(Scenario.from_json(s))
            for s in (record.options or {}).get("scenarios", [])
        ],
        convergence=settings_message((record.options or {}).get("convergence")),
    )


def convergence_settings(message: convergence_pb2.ConvergenceSettings, trials: int) -> Settings:
    """A request's convergence stopping (``trials`` is its most); INVALID_ARGUMENT names
    the field at fault (``convergence.default_test.tolerance``...)."""
    default = None
    if message.HasField("default_test"):
        test = message.default_test
        chosen = test.mean or test.stddev or bool(test.percentiles)
        try:
            default = criterion(
                tolerance=test.tolerance,
                relative=not test.absolute,
                confidence=test.confidence or 0.95,
                mean=test.mean or not chosen,
                stddev=test.stddev,
                percentiles=tuple(test.percentiles),
                field_prefix="convergence.default_test.",
            )
        except ValueError as exc:
            field, _, reason = str(exc).partition(" ")
            raise InvalidArgument(field, reason) from None
    try:
        return Settings(message.check_every, trials, default)
    except ValueError as exc:
        field, _, reason = str(exc).partition(" ")
        if field == "max_trials":  # the request's trials bound a converging run
            field, reason = "trials", reason.replace("check_every", "convergence.check_every")
        else:
            field = f"convergence.{field}"
        raise InvalidArgument(field, reason) from None


def settings_message(
    settings: Settings | dict[str, Any] | None,
) -> convergence_pb2.ConvergenceSettings | None:
    """Convergence settings (or as stored) as the contract shows them (None: none asked for)."""
    if settings is None:
        return None
    if isinstance(settings, dict):
        settings = Settings.from_json(settings)
    message = convergence_pb2.ConvergenceSettings(check_every=settings.check_every)
    test = settings.default
    if test is not None:
        message.default_test.CopyFrom(
            convergence_pb2.ConvergenceTest(
                tolerance=test.tolerance,
                absolute=not test.relative,
                confidence=test.confidence,
                mean=test.mean,
                stddev=test.stddev,
                percentiles=test.percentiles,
            )
        )
    return message


def convergence_status(data: dict[str, Any] | None) -> convergence_pb2.ConvergenceStatus | None:
    """Whether and where a converging simulation stopped, from its stored results."""
    if data is None:
        return None
    return convergence_pb2.ConvergenceStatus(
        converged=data["converged"],
        trials=data["trials"],
        check_every=data["check_every"],
        outputs=[
            convergence_pb2.OutputConvergence(
                output=key,
                converged=entry["converged"],
                statistics=[
                    convergence_pb2.StatisticPrecision(statistic=stat, precision=precision)
                    for stat, precision in entry["precision"].items()
                ],
            )
            for key, entry in data["outputs"].items()
        ],
    )


SCENARIO_KIND_TO_PROTO = {
    "top": analysis_pb2.SCENARIO_KIND_TOP_PERCENT,
    "bottom": analysis_pb2.SCENARIO_KIND_BOTTOM_PERCENT,
    "above": analysis_pb2.SCENARIO_KIND_ABOVE_VALUE,
    "below": analysis_pb2.SCENARIO_KIND_BELOW_VALUE,
}
SCENARIO_KIND_FROM_PROTO = {v: k for k, v in SCENARIO_KIND_TO_PROTO.items()}


def scenario_target(scenario: Scenario) -> analysis_pb2.ScenarioTarget:
    """The ScenarioTarget message of an engine scenario."""
    return analysis_pb2.ScenarioTarget(
        output=scenario.output,
        kind=SCENARIO_KIND_TO_PROTO[scenario.kind],
        threshold=scenario.threshold,
    )


def scenario(target: analysis_pb2.ScenarioTarget) -> Scenario:
    """The engine scenario of a (validated) ScenarioTarget message."""
    return Scenario(SCENARIO_KIND_FROM_PROTO[target.kind], target.threshold, target.output)


def progress(event: Progress) -> pb.Progress:
    """The Progress message of a progress event."""
    eta = duration_pb2.Duration()
    if math.isfinite(event.eta_seconds):
        eta.FromNanoseconds(int(event.eta_seconds * 1e9))
    return pb.Progress(
        trials_done=event.trials_done,
        trials_total=event.trials_total,
        trials_per_second=event.trials_per_second,
        eta=eta,
        outputs=[
            pb.OutputProgress(name=name, mean=mean, standard_error=se)
            for name, (mean, se) in event.running.items()
        ],
        convergence=convergence_status(event.convergence),
    )


def output_results(data: dict[str, Any], address: str) -> pb.OutputResults:
    """One output's statistics from the engine's ``Results.to_dict()`` form."""
    n = number_or_nan
    return pb.OutputResults(
        name=data["name"],
        address=address,
        statistics=pb.Statistics(
            count=data["count"],
            errors=data["errors"],
            mean=n(data["mean"]),
            std=n(data["std"]),
            min=n(data["min"]),
            max=n(data["max"]),
            skewness=n(data["skewness"]),
            kurtosis=n(data["kurtosis"]),
        ),
        percentiles=[
            pb.Percentile(percent=float(p), value=n(v))
            for p, v in sorted(data["percentiles"].items(), key=lambda kv: float(kv[0]))
        ],
        var_95=n(data["var_95"]),
        cvar_95=n(data["cvar_95"]),
        histogram=pb.Histogram(
            bin_edges=[n(e) for e in data["histogram"]["edges"]], counts=data["histogram"]["counts"]
        ),
        cdf=[pb.CdfPoint(value=n(v), probability=n(p)) for v, p in data["cdf"]],
        sensitivity=[
            pb.Sensitivity(input_name=name, spearman_rho=n(rho))
            for name, rho in data["sensitivity"]
        ],
        convergence=[
            pb.ConvergencePoint(trials=t, mean=n(m), standard_error=n(se))
            for t, m, se in data["convergence"]
        ],
        exact=bool(data.get("exact", True)),
        simulation=data.get("simulation", 1),
        scenarios=[_scenario_result(d, data["name"]) for d in data.get("scenarios", [])],
        contribution_to_variance=[
            analysis_pb2.VarianceContribution(
                input_name=c["name"],
                share=n(c["share"]),
                standardized_coefficient=n(c["coefficient"]),
            )
            for c in data.get("contribution", [])
        ],
        regression_r_squared=n(data.get("r_squared")),
    )


def _scenario_result(data: dict[str, Any], output: str) -> analysis_pb2.ScenarioResult:
    """One scenario of an output from ``analysis.ScenarioResult.to_dict()``."""
    n = number_or_nan
    target = scenario_target(Scenario.from_json(data["scenario"]))
    target.output = output
    return analysis_pb2.ScenarioResult(
        target=target,
        label=data["label"],
        trials=data["trials"],
        inputs=[
            analysis_pb2.ScenarioInput(
                input_name=i["name"],
                subset_median=n(i["subset_median"]),
                overall_median=n(i["overall_median"]),
                std=n(i["std"]),
                significance=n(i["significance"]),
                significant=i["significant"],
            )
            for i in data["inputs"]
        ],
    )


def results(
    record: SimulationRecord, data: dict[str, Any], addresses: dict[str, str]
) -> pb.Results:
    """The Results message: the simulation's parameters, every output's statistics, the
    reports and the values of each RiskSimtable simulation. ``data`` is
    ``{"format": 2, "outputs": ..., "reports": ...}`` (outputs as
    ``engine.outcome.results_data`` gives them), or the outputs alone as results were stored
    before reports."""
    stopped = data.get("convergence")
    data, reports = result_data.parts(data)
    simulations: dict[int, pb.SimtableSimulation] = {}
    for d in data.values():
        if "simtable" in d and d["simulation"] not in simulations:
            simulations[d["simulation"]] = pb.SimtableSimulation(
                index=d["simulation"],
                values=[pb.SimtableValue(address=a, value=v) for a, v in d["simtable"]],
            )
    return pb.Results(
        simulation_id=record.id,
        model_id=record.model_id,
        trials=record.trials if stopped is None else stopped["trials"],
        seed=record.seed,
        sampling=SAMPLING_TO_PROTO[record.sampling],
        backend=BACKEND_TO_PROTO.get(record.backend, pb.BACKEND_UNSPECIFIED),
        convergence=convergence_status(stopped),
        outputs=[output_results(d, addresses.get(d["name"], "")) for d in data.values()],
        create_time=timestamp_of_seconds(record.end_time),
        reports=[
            pb.ReportResult(
                name=r["name"], address=r["address"], value=r["value"], error=r["error"]
            )
            for r in reports
        ],
        simulations=[simulations[k] for k in sorted(simulations)],
    )


FIT_KIND_FROM_PROTO = {
    fitting_pb2.FIT_KIND_UNSPECIFIED: "auto",
    fitting_pb2.FIT_KIND_CONTINUOUS: "continuous",
    fitting_pb2.FIT_KIND_DISCRETE: "discrete",
}


def _fit(fit: Fit) -> fitting_pb2.DistributionFit:
    message = fitting_pb2.DistributionFit(
        function=fit.function,
        parameters=[fitting_pb2.FitParameter(name=n, value=v) for n, v in fit.params],
        formula=fit.formula,
        log_likelihood=fit.log_likelihood,
        aic=fit.aic,
        bic=fit.bic,
        aic_rank=fit.aic_rank,
        bic_rank=fit.bic_rank,
        chi_square_bins=fit.chi_square_bins,
        bootstrap_replicates=fit.replicates,
        pp_points=[fitting_pb2.FitPoint(x=x, y=y) for x, y in fit.pp],
        qq_points=[fitting_pb2.FitPoint(x=x, y=y) for x, y in fit.qq],
    )
    for field, value in (
        ("ks_statistic", fit.ks),
        ("ks_p_value", fit.ks_p),
        ("ad_statistic", fit.ad),
        ("ad_p_value", fit.ad_p),
        ("chi_square_statistic", fit.chi_square),
        ("chi_square_p_value", fit.chi_square_p),
    ):
        if value is not None:
            setattr(message, field, value)
    return message


def fit_response(column: str, report: Report) -> fitting_pb2.FitDistributionResponse:
    """The FitDistribution response of a fitting report (best AIC first)."""
    return fitting_pb2.FitDistributionResponse(
        column=column,
        count=report.count,
        discrete=report.discrete,
        mean=report.mean,
        sd=report.sd,
        min=report.minimum,
        max=report.maximum,
        fits=[_fit(f) for f in report.fits],
        skipped=[fitting_pb2.SkippedFit(function=f, reason=r) for f, r in report.skipped],
    )
