"""``alea simulate``, ``alea results`` and ``alea worker``: simulations on the running mesh.

The commands talk to the edge over gRPC with mTLS (the client certificate from
``$ALEA_HOME/pki``). The edge address is ``--edge``, else ``ALEA_EDGE_ADDRESS``, else the
one recorded by ``alea up``, else ``localhost:8443``. Credentials, first found wins:
``--token``/``ALEA_TOKEN`` (a JWT), ``--api-key``/``ALEA_API_KEY``, else a demo account:
registered on first use and kept in ``$ALEA_HOME/cli/account.json``, logged in each time.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import grpc
from alea.identity.v1 import identity_pb2, identity_pb2_grpc
from alea.simulation.v1 import simulation_pb2 as pb
from alea.simulation.v1 import simulation_pb2_grpc

from services.cli.analysis_view import add_scenario_option, contribution_line, scenario_lines
from services.cli.edge_client import edge_channel
from services.cli.run import add_convergence_options, stopping_settings
from services.runtime.config import alea_home

__all__ = ["DEMO_STEPS", "register"]

Metadata = tuple[tuple[str, str], ...]
Command = Callable[[argparse.Namespace], int]
_SAMPLING = {
    "mc": pb.SAMPLING_MONTE_CARLO,
    "lhs": pb.SAMPLING_LATIN_HYPERCUBE,
    "sobol": pb.SAMPLING_SOBOL,
}
_BACKEND = {
    "auto": pb.BACKEND_PREFERENCE_AUTO,
    "cpu": pb.BACKEND_PREFERENCE_CPU,
    "gpu": pb.BACKEND_PREFERENCE_GPU,
    "native": pb.BACKEND_PREFERENCE_NATIVE,
    "numpy": pb.BACKEND_PREFERENCE_NUMPY,
}
_SHOWN = ("5", "50", "95")


def _edge_address(args: argparse.Namespace) -> str:
    if args.edge or os.environ.get("ALEA_EDGE_ADDRESS"):
        return args.edge or os.environ["ALEA_EDGE_ADDRESS"]
    recorded = alea_home() / "run" / "mesh.json"
    if recorded.exists():
        return f"localhost:{json.loads(recorded.read_text())['edge_port']}"
    return "localhost:8443"


def _demo_login(channel: grpc.Channel) -> Metadata:
    """Log the demo account in, registering it (once) if this home has none yet."""
    stub = identity_pb2_grpc.IdentityServiceStub(channel)
    path = alea_home() / "cli" / "account.json"
    if not path.exists():
        email, password = f"cli-{uuid.uuid4().hex[:8]}@example.com", uuid.uuid4().hex
        stub.Register(
            identity_pb2.RegisterRequest(
                tenant_display_name="Alea CLI",
                email=email,
                password=password,
                display_name="CLI user",
                request_id=str(uuid.uuid4()),
            ),
            timeout=30,
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"email": email, "password": password}))
        path.chmod(0o600)
    account = json.loads(path.read_text())
    login = stub.Login(identity_pb2.LoginRequest(**account), timeout=30)
    return (("authorization", f"Bearer {login.tokens.access_token}"),)


def _credentials(args: argparse.Namespace, channel: grpc.Channel) -> Metadata:
    token = args.token or os.environ.get("ALEA_TOKEN")
    if token:
        return (("authorization", f"Bearer {token}"),)
    api_key = args.api_key or os.environ.get("ALEA_API_KEY")
    if api_key:
        return (("x-api-key", api_key),)
    return _demo_login(channel)


def _number(value: float) -> str:
    return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"


def summary_table(results: pb.Results) -> str:
    """One line per output (and RiskSimtable simulation): mean, standard deviation,
    P5/P50/P95, min and max; then the values of each simulation."""
    several = len(results.simulations) > 0
    header = ["sim"] * several + ["output", "mean", "std", *(f"P{p}" for p in _SHOWN)]
    header += ["min", "max"]
    rows = [header]
    for out in results.outputs:
        pct = {f"{p.percent:g}": p.value for p in out.percentiles}
        s = out.statistics
        rows.append(
            [str(out.simulation)] * several
            + [out.name]
            + [_number(v) for v in (s.mean, s.std, *(pct[p] for p in _SHOWN), s.min, s.max)]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [
        "  ".join(
            c.ljust(w) if i <= int(several) else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    for sim in results.simulations:
        values = ", ".join(
            f"{v.address} = {_number(v.value) if v.HasField('value') else '#N/A'}"
            for v in sim.values
        )
        lines.append(f"simulation {sim.index}: {values}")
    return "\n".join(lines)


def analysis_text(results: pb.Results) -> str:
    """Per output, its contribution to variance and the significant inputs of each scenario."""
    several = len(results.simulations) > 0
    lines = []
    for out in results.outputs:
        title = f"{out.name} (simulation {out.simulation})" if several else out.name
        shares = [(c.input_name, c.share) for c in out.contribution_to_variance]
        line = contribution_line(title, shares, out.regression_r_squared)
        lines.extend([line] if line else [])
        scenarios = [
            (
                s.label,
                s.trials,
                [(i.input_name, i.significance, i.significant) for i in s.inputs],
            )
            for s in out.scenarios
        ]
        lines.extend(scenario_lines(title, scenarios))
    return "\n".join(lines)


def _bar(progress: pb.Progress) -> str:
    done, total = progress.trials_done, max(progress.trials_total, 1)
    filled = int(30 * done / total)
    eta = progress.eta.seconds + progress.eta.nanos / 1e9
    return (
        f"\r[{'#' * filled}{'.' * (30 - filled)}] {done:,}/{total:,} trials "
        f"{progress.trials_per_second:,.0f}/s ETA {eta:.1f}s "
    )


FINAL_STATES = (
    pb.Simulation.STATE_SUCCEEDED,
    pb.Simulation.STATE_FAILED,
    pb.Simulation.STATE_CANCELLED,
)
WATCH_RESUME_SECONDS = 120.0


class WatchBroken(ConnectionError):
    """A watch broke and could not be opened again within :data:`WATCH_RESUME_SECONDS`."""


def _resumable(error: grpc.RpcError) -> bool:
    """A stream cut by a restart: UNAVAILABLE, or the INTERNAL that gRPC reports for a stream
    the edge reset when the service behind it died (RST_STREAM)."""
    code, details = error.code(), error.details() or ""
    return code == grpc.StatusCode.UNAVAILABLE or (
        code == grpc.StatusCode.INTERNAL and "RST_STREAM" in details
    )


def watch(
    stub: simulation_pb2_grpc.SimulationServiceStub,
    simulation_id: str,
    metadata: Metadata,
    out: TextIO = sys.stderr,
) -> pb.Simulation:
    """Follow a simulation to its final state, drawing a progress bar on ``out``.

    A stream broken mid-way (the service restarting: UNAVAILABLE, or INTERNAL for a stream
    the edge reset) is opened again, for at most :data:`WATCH_RESUME_SECONDS`; a watch
    starts from the simulation's current state, so nothing is missed but progress."""
    last: pb.Simulation | None = None
    rate = 0.0
    request = pb.WatchSimulationRequest(simulation_id=simulation_id)
    broken_since: float | None = None
    while True:
        try:
            for event in stub.WatchSimulation(request, metadata=metadata):
                broken_since = None
                if event.WhichOneof("event") == "progress":
                    rate = event.progress.trials_per_second
                    out.write(_bar(event.progress))
                    out.flush()
                else:
                    last = event.simulation
        except grpc.RpcError as error:
            if last is None or not _resumable(error):
                raise
        if last is not None and last.state in FINAL_STATES:
            break
        broken_since = broken_since or time.monotonic()
        if time.monotonic() - broken_since > WATCH_RESUME_SECONDS:
            raise WatchBroken(f"the watch of {simulation_id} broke and did not resume")
        time.sleep(0.5)
    assert last is not None, "the stream always starts with the simulation's state"
    # The final state: the bar ends where the simulation ended, at the last rate seen.
    out.write(
        _bar(
            pb.Progress(
                trials_done=last.trials_done, trials_total=last.trials, trials_per_second=rate
            )
        )
    )
    out.write("\n")
    return last


def plot(results: pb.Results, path: Path) -> None:
    """Per output: a histogram with P5/P50/P95 markers, a tornado chart of Spearman rho and
    one of each input's contribution to variance. With RiskSimtable, the simulations'
    histograms and CDFs overlaid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if results.simulations:
        return _plot_simulations(results, path)
    outputs = list(results.outputs)
    figure, axes = plt.subplots(len(outputs), 3, figsize=(18, 4 * len(outputs)), squeeze=False)
    for (hist_ax, tornado_ax, variance_ax), out in zip(axes, outputs, strict=True):
        edges, counts = list(out.histogram.bin_edges), list(out.histogram.counts)
        if counts:
            hist_ax.stairs(counts, edges, fill=True, alpha=0.6)
        for p in out.percentiles:
            if f"{p.percent:g}" in _SHOWN:
                hist_ax.axvline(p.value, color="black", linestyle="--", linewidth=1)
                hist_ax.annotate(
                    f"P{p.percent:g}",
                    (p.value, 0),
                    xytext=(2, 4),
                    textcoords="offset points",
                    rotation=90,
                )
        hist_ax.set(title=f"{out.name} ({out.address})", xlabel="value", ylabel="trials")
        ranked = list(out.sensitivity)[:10][::-1]
        tornado_ax.barh(
            [s.input_name for s in ranked],
            [s.spearman_rho for s in ranked],
            color=["tab:red" if s.spearman_rho < 0 else "tab:blue" for s in ranked],
        )
        tornado_ax.axvline(0, color="black", linewidth=0.8)
        tornado_ax.set(title=f"{out.name}: sensitivity", xlabel="Spearman rank correlation")
        shares = [c for c in out.contribution_to_variance if c.share == c.share][:10][::-1]
        variance_ax.barh([c.input_name for c in shares], [100 * c.share for c in shares])
        variance_ax.set(
            title=f"{out.name}: contribution to variance (R² {out.regression_r_squared:.3f})",
            xlabel="% of the output's variance",
        )
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def _plot_simulations(results: pb.Results, path: Path) -> None:
    """Per output: every simulation's histogram (as a density) and CDF, overlaid."""
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(out.name for out in results.outputs))
    figure, axes = plt.subplots(len(names), 2, figsize=(12, 4 * len(names)), squeeze=False)
    for (hist_ax, cdf_ax), name in zip(axes, names, strict=True):
        for out in (o for o in results.outputs if o.name == name):
            label = f"simulation {out.simulation}"
            edges, counts = list(out.histogram.bin_edges), list(out.histogram.counts)
            total = sum(counts)
            if total:
                widths = [b - a for a, b in itertools.pairwise(edges)]
                density = [
                    c / total / w if w > 0 else 0.0 for c, w in zip(counts, widths, strict=True)
                ]
                hist_ax.stairs(density, edges, label=label)
            cdf_ax.plot([p.value for p in out.cdf], [p.probability for p in out.cdf], label=label)
        hist_ax.set(title=f"{name}: histograms", xlabel="value", ylabel="density")
        cdf_ax.set(title=f"{name}: cumulative", xlabel="value", ylabel="probability")
        hist_ax.legend(fontsize="small")
        cdf_ax.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def _connect(args: argparse.Namespace) -> tuple[grpc.Channel, Any, Metadata]:
    channel = edge_channel(_edge_address(args), alea_home() / "pki")
    metadata = _credentials(args, channel)
    return channel, simulation_pb2_grpc.SimulationServiceStub(channel), metadata


def cmd_simulate(args: argparse.Namespace) -> int:
    """Create the model, start the simulation and, with --watch, follow it to the end."""
    from services.simulation.convert import scenario_target, settings_message

    try:
        stopping = stopping_settings(args, args.trials)
    except ValueError as exc:
        print(f"alea simulate: {exc}", file=sys.stderr)
        return 2
    channel, stub, metadata = _connect(args)
    with channel:
        model = stub.CreateModel(
            pb.CreateModelRequest(
                display_name=args.model.name,
                workbook=args.model.read_bytes(),
                request_id=str(uuid.uuid4()),
            ),
            metadata=metadata,
            timeout=120,
        )
        request = pb.CreateSimulationRequest(
            model_id=model.id,
            trials=args.trials,
            sampling=_SAMPLING[args.sampling],
            backend=_BACKEND[args.backend],
            request_id=str(uuid.uuid4()),
            bypass_cache=args.no_cache,
            vary_simulation_seeds=args.vary_seeds,
            scenarios=[scenario_target(s) for s in args.scenario],
            convergence=settings_message(stopping),
        )
        if args.seed is not None:
            request.seed = args.seed
        simulation = stub.CreateSimulation(request, metadata=metadata, timeout=30)
        print(
            f"model {model.id}: {len(model.inputs)} inputs, "
            f"{len(model.outputs)} outputs; simulation {simulation.id} "
            f"{pb.Simulation.State.Name(simulation.state)}"
            f"{' (cached)' if simulation.cached else ''}"
        )
        if not args.watch:
            print(f"follow it with: alea results {simulation.id}")
            return 0
        final = simulation if simulation.cached else watch(stub, simulation.id, metadata)
        if final.state != pb.Simulation.STATE_SUCCEEDED:
            print(
                f"simulation {pb.Simulation.State.Name(final.state)}: {final.state_reason}",
                file=sys.stderr,
            )
            return 1
        results = stub.GetResults(
            pb.GetResultsRequest(simulation_id=simulation.id), metadata=metadata, timeout=60
        )
        print(summary_table(results))
        print(analysis_text(results))
        if results.HasField("convergence"):
            print(convergence_text(results))
    return 0


def convergence_text(results: pb.Results) -> str:
    """Whether and where a converging simulation stopped, and each output's precision."""
    status = results.convergence
    every = f"checked every {status.check_every:,} trials"
    lines = [
        f"converged at {status.trials:,} trials ({every})"
        if status.converged
        else f"not converged within {status.trials:,} trials ({every})"
    ]
    for out in status.outputs:
        shown = ", ".join(
            f"{s.statistic} ±{s.precision:.4g}" if s.HasField("precision") else f"{s.statistic} -"
            for s in out.statistics
        )
        lines.append(f"  {out.output}: {shown} ({'' if out.converged else 'not '}converged)")
    return "\n".join(lines)


def cmd_results(args: argparse.Namespace) -> int:
    """Print a finished simulation's summary; optionally plot it and download its SIPmath
    library."""
    channel, stub, metadata = _connect(args)
    with channel:
        results = stub.GetResults(
            pb.GetResultsRequest(simulation_id=args.simulation_id), metadata=metadata, timeout=60
        )
        library = None
        if args.sipmath:
            request = pb.GetSimulationSipmathRequest(simulation_id=args.simulation_id)
            if args.sipmath_terms is not None:
                request.terms = args.sipmath_terms
            library = stub.GetSimulationSipmath(request, metadata=metadata, timeout=60).data
    print(f"simulation {results.simulation_id}: {results.trials:,} trials, seed {results.seed}")
    print(summary_table(results))
    print(analysis_text(results))
    if results.HasField("convergence"):
        print(convergence_text(results))
    if args.plot:
        plot(results, args.plot)
        print(f"plot written to {args.plot}")
    if library is not None:
        args.sipmath.write_bytes(library)
        print(f"SIPmath library written to {args.sipmath}")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Run simulation workers only (the same as ``python -m services.simulation --worker``)."""
    from services.runtime.server import run
    from services.simulation.app import MIGRATIONS, build_workers

    run("simulation", build_workers, MIGRATIONS)
    return 0


def _guard(command: Command) -> Command:
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except grpc.RpcError as exc:
            print(f"alea {args.command}: {exc.code().name}: {exc.details()}", file=sys.stderr)
            return 1
        except OSError as exc:
            print(f"alea {args.command}: {exc}", file=sys.stderr)
            return 1

    return run


def _add_connection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--edge", help="edge address (default: ALEA_EDGE_ADDRESS, alea up's)")
    parser.add_argument("--token", help="access token (default: ALEA_TOKEN)")
    parser.add_argument("--api-key", help="API key (default: ALEA_API_KEY)")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``simulate``, ``results`` and ``worker`` subcommands."""
    simulate = subparsers.add_parser("simulate", help="simulate a workbook on the running mesh")
    simulate.add_argument("model", type=Path, help="the .xlsx workbook")
    simulate.add_argument("--trials", type=int, required=True)
    simulate.add_argument("--seed", type=int)
    simulate.add_argument("--sampling", choices=sorted(_SAMPLING), default="mc")
    simulate.add_argument("--backend", choices=sorted(_BACKEND), default="auto")
    simulate.add_argument("--watch", action="store_true", help="follow progress, then summarise")
    simulate.add_argument("--no-cache", action="store_true", help="bypass the result cache")
    simulate.add_argument(
        "--vary-seeds",
        action="store_true",
        help="RiskSimtable: each simulation draws its own random numbers (default: the same)",
    )
    add_scenario_option(simulate)
    add_convergence_options(simulate, bounded=False)
    _add_connection(simulate)
    simulate.set_defaults(func=_guard(cmd_simulate))
    results = subparsers.add_parser("results", help="show (and plot) a simulation's results")
    results.add_argument("simulation_id")
    results.add_argument("--plot", type=Path, help="write histogram + tornado charts (PNG)")
    results.add_argument(
        "--sipmath",
        type=Path,
        metavar="PATH",
        help="write the inputs and outputs as a SIPmath 3.0 library (JSON) to PATH",
    )
    results.add_argument(
        "--sipmath-terms",
        type=int,
        help="most metalog terms per variable of the SIPmath library (2 to 30, default 16)",
    )
    _add_connection(results)
    results.set_defaults(func=_guard(cmd_results))
    worker = subparsers.add_parser("worker", help="run simulation workers against the database")
    worker.set_defaults(func=cmd_worker)


def demo_workbook() -> bytes:
    """A ten-year project as .xlsx bytes: revenue, cost and tax uncertain, revenue growing
    by an uncertain rate each year; Profit is the NPV of the yearly cash flows at 8%.

    Thirteen inputs make a million trials take long enough on any back end that a watcher
    sees the progress move, not only the end."""
    import io

    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Model"
    sheet["A1"], sheet["B1"] = "Revenue", '=RiskNormal(100,10,RiskName("Revenue"))'
    sheet["A2"], sheet["B2"] = "Cost", '=RiskTriang(20,30,50,RiskName("Cost"))'
    sheet["A3"], sheet["B3"] = "Tax", '=RiskUniform(0.1,0.2,RiskName("Tax"))'
    sheet["A4"], sheet["B4"] = "Discount rate", 0.08
    sheet["A5"], sheet["B5"], sheet["C5"], sheet["D5"] = "Year", "Growth", "Revenue", "Cash flow"
    for year in range(1, 11):
        row = 5 + year
        revenue_before = "$B$1" if year == 1 else f"C{row - 1}"
        sheet[f"A{row}"] = year
        sheet[f"B{row}"] = f'=RiskNormal(0.03,0.02,RiskName("Growth {year}"))'
        sheet[f"C{row}"] = f"={revenue_before}*(1+B{row})"
        sheet[f"D{row}"] = f"=(C{row}-$B$2)*(1-$B$3)"
    sheet["A17"], sheet["B17"] = "Profit", '=RiskOutput("Profit")+NPV(B4,D6:D15)'
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def demo_simulate(demo: Any) -> str:
    """alea demo step: a small workbook simulated over gRPC, its live progress drawn."""
    stub = simulation_pb2_grpc.SimulationServiceStub(demo.channel)
    metadata = demo.grpc_auth()
    request = pb.CreateModelRequest(
        display_name="demo", workbook=demo_workbook(), request_id=str(uuid.uuid4())
    )
    model = stub.CreateModel(request, metadata=metadata, timeout=60)
    simulation = stub.CreateSimulation(
        pb.CreateSimulationRequest(
            model_id=model.id,
            trials=1_000_000,
            seed=1,
            request_id=str(uuid.uuid4()),
            bypass_cache=True,
        ),
        metadata=metadata,
        timeout=30,
    )
    final = watch(stub, simulation.id, metadata, out=sys.stdout)
    results = stub.GetResults(
        pb.GetResultsRequest(simulation_id=simulation.id), metadata=metadata, timeout=60
    )
    demo.state["simulation_id"] = simulation.id
    out = results.outputs[0]
    shown = {f"{p.percent:g}": p.value for p in out.percentiles}
    return (
        f"CreateModel + CreateSimulation + WatchSimulation: {simulation.id} "
        f"{pb.Simulation.State.Name(final.state)}, {out.name} over {results.trials:,} "
        f"trials: mean {out.statistics.mean:.2f}, P5 {shown['5']:.2f}, "
        f"P50 {shown['50']:.2f}, P95 {shown['95']:.2f}"
    )


def demo_queue_rest(demo: Any) -> str:
    """alea demo step: the queue over REST."""
    body = demo.rest_call("GET", "/v1/queue")
    workers = body.get("workers", [])
    return f"GET /v1/queue: {len(workers)} worker(s), {body.get('queued', 0)} queued"


DEMO_STEPS = [("grpc", demo_simulate), ("rest", demo_queue_rest)]
