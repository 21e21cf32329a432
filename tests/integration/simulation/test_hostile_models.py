"""Models built to hurt a worker, through the real simulation service (with identity).

Each was found to crash, wedge or exhaust the service before the engine bounded them: every
one now either simulates or is refused with INVALID_ARGUMENT naming its cell, and the
service's peak memory stays bounded for a 100,000-input workbook.
"""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from alea.identity.v1 import identity_pb2, identity_pb2_grpc
from alea.simulation.v1 import model_spec_pb2 as spec_pb
from alea.simulation.v1 import simulation_pb2 as pb
from alea.simulation.v1 import simulation_pb2_grpc
from openpyxl import Workbook

from services.cli.edge_client import edge_channel
from tests.support.services import ServiceProcess, start_service

pytestmark = [pytest.mark.integration, pytest.mark.slow]

Call = Callable[[str, Any], Any]


def workbook(cells: dict[str, str]) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = "Model"
    for ref, value in cells.items():
        ws[ref] = value
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def column(rows: int) -> bytes:
    """``=RiskNormal(1,0.1)`` in A1:A{rows} and their SUM as the output."""
    wb = Workbook()
    ws = wb.active
    ws.title = "Model"
    for r in range(1, rows + 1):
        ws.cell(r, 1, "=RiskNormal(1,0.1)")
    ws["B1"] = f"=RiskOutput()+SUM(A1:A{rows})"
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def chain(cells: int) -> bytes:
    """A1 uncertain, A{i} = A{i-1}+1 down to A{cells}, the output the last."""
    wb = Workbook()
    ws = wb.active
    ws.title = "Model"
    ws["A1"] = "=RiskNormal(1,0.1)"
    for i in range(2, cells + 1):
        ws.cell(i, 1, f"=A{i - 1}+1")
    ws["B1"] = f"=RiskOutput()+A{cells}"
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServiceProcess, Call]]:
    home = tmp_path_factory.mktemp("hostile")
    identity = start_service(
        "identity", home, {"ALEA_DATABASE_URL": f"sqlite+aiosqlite:///{home / 'identity.db'}"}
    )
    simulation = start_service(
        "simulation",
        home,
        {
            "ALEA_DATABASE_URL": f"sqlite+aiosqlite:///{home / 'simulation.db'}",
            "ALEA_IDENTITY_ADDRESS": identity.address,
            "ALEA_SIMULATION_POLL_SECONDS": "0.05",
        },
        memory_limit=8 << 30,  # a safety net for the machine; the engine's own budget is 512 MiB
    )
    try:
        with edge_channel(identity.address, home / "pki", "edge") as channel:
            reply = identity_pb2_grpc.IdentityServiceStub(channel).Register(
                identity_pb2.RegisterRequest(
                    tenant_display_name="t",
                    email=f"h-{uuid.uuid4().hex[:6]}@example.com",
                    password="hostile password 1",
                    display_name="h",
                ),
                timeout=30,
            )
        auth = (("authorization", f"Bearer {reply.tokens.access_token}"),)

        def call(method: str, request: Any) -> Any:
            with edge_channel(simulation.address, home / "pki", "edge") as channel:
                stub = simulation_pb2_grpc.SimulationServiceStub(channel)
                return getattr(stub, method)(request, metadata=auth, timeout=600)

        yield simulation, call
    finally:
        simulation.stop()
        identity.stop()


def simulate(call: Call, request: pb.CreateModelRequest, trials: int = 2000) -> pb.Simulation:
    """Create the model, simulate it, and wait for the end (the simulation when it ended)."""
    model = call("CreateModel", request)
    sim = call(
        "CreateSimulation",
        pb.CreateSimulationRequest(model_id=model.id, trials=trials, seed=3, bypass_cache=True),
    )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        sim = call("GetSimulation", pb.GetSimulationRequest(simulation_id=sim.id))
        if sim.state in (pb.Simulation.STATE_SUCCEEDED, pb.Simulation.STATE_FAILED):
            return sim
        time.sleep(0.2)
    raise AssertionError(f"simulation {sim.id} still {pb.Simulation.State.Name(sim.state)}")


def peak_rss(process: ServiceProcess) -> int:
    """The process's peak resident memory so far, in bytes (Linux VmHWM)."""
    status = Path(f"/proc/{process.process.pid}/status").read_text()
    line = next(x for x in status.splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


@pytest.mark.parametrize(
    "name,cells",
    [
        (
            "2,700 terms of one cell",
            {"A1": "=RiskNormal(1,0.1)", "B1": "=RiskOutput()+" + "+".join(["A1"] * 2700)},
        ),
        (
            "a 30,000-character formula",
            {"A1": "=RiskNormal(1,0.1)", "B1": "=RiskOutput()+" + "+".join(["A1*1.5"] * 4283)},
        ),
    ],
)
def test_long_formulas_simulate(service, name: str, cells: dict[str, str]) -> None:
    _, call = service
    sim = simulate(call, pb.CreateModelRequest(display_name=name, workbook=workbook(cells)))
    assert sim.state == pb.Simulation.STATE_SUCCEEDED, sim.state_reason


@pytest.mark.parametrize("cells", [5_000, 50_000])
def test_long_dependency_chains_simulate(service, cells: int) -> None:
    _, call = service
    request = pb.CreateModelRequest(display_name=f"chain {cells}", workbook=chain(cells))
    sim = simulate(call, request)
    assert sim.state == pb.Simulation.STATE_SUCCEEDED, sim.state_reason
    result = call("GetResults", pb.GetResultsRequest(simulation_id=sim.id)).outputs[0]
    assert result.statistics.mean == pytest.approx(cells, abs=0.05)


def _input(k: int) -> spec_pb.InputSpec:
    normal = spec_pb.Distribution(kind=spec_pb.DISTRIBUTION_KIND_NORMAL, parameters=[1.0, 0.1])
    return spec_pb.InputSpec(name=f"in_{k}", distribution=normal)


def test_the_largest_specs_simulate(service) -> None:
    """10,000 inputs (the proto's own maximum) and an 8,191-character expression."""
    _, call = service
    formula = "+".join(f"in_{k}" for k in range(1000))
    while len(formula) < 8190:
        formula += "+0"
    formula += "0" * (8191 - len(formula))  # "+00" ends it at 8,191 characters
    assert len(formula) == 8191
    model = spec_pb.ModelSpec(
        inputs=[_input(i) for i in range(10_000)],
        expressions=[spec_pb.ExpressionSpec(name="total", formula=formula)],
        outputs=[spec_pb.OutputSpec(name="total", expression="total")],
    )
    sim = simulate(call, pb.CreateModelRequest(display_name="largest spec", spec=model))
    assert sim.state == pb.Simulation.STATE_SUCCEEDED, sim.state_reason


@pytest.mark.parametrize(
    "formula,expected",
    [
        ("=RiskNormal(1e308,1e308)", "with mean 1e+308 and sd 1e+308 its values leave the range"),
        ("=RiskPoisson(1e300)", "lambda must be at most 2^53"),
        ("=RiskNormal(0,1,RiskTruncate(100,101))", "RiskTruncate(100,101) leaves no probability"),
    ],
)
def test_parameters_beyond_double_precision_are_refused(service, formula: str, expected: str):
    _, call = service
    request = pb.CreateModelRequest(
        display_name=formula, workbook=workbook({"A1": formula, "B1": "=RiskOutput()+A1"})
    )
    with pytest.raises(grpc.RpcError) as err:
        call("CreateModel", request)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Model!A1" in err.value.details() and expected in err.value.details()


def test_a_100000_input_workbook_simulates_in_bounded_memory(service) -> None:
    """It grew the service to 23.6 GB before the memory plan; now under 1.5 GB."""
    process, call = service
    request = pb.CreateModelRequest(display_name="100,000 inputs", workbook=column(100_000))
    sim = simulate(call, request, trials=10_000)
    assert sim.state == pb.Simulation.STATE_SUCCEEDED, sim.state_reason
    result = call("GetResults", pb.GetResultsRequest(simulation_id=sim.id)).outputs[0]
    assert result.statistics.mean == pytest.approx(100_000, abs=5)
    assert len(result.sensitivity) <= 256  # the strongest inputs, not all 100,000
    assert peak_rss(process) < 1.5 * 2**30
