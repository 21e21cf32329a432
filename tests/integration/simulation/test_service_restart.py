"""The simulation service as a real process (with identity): a restart with a simulation in
flight loses nothing, and its results equal an uninterrupted run's, bit for bit."""

from __future__ import annotations

import io
import uuid

import grpc
import pytest
from alea.identity.v1 import identity_pb2, identity_pb2_grpc
from alea.simulation.v1 import simulation_pb2 as pb
from alea.simulation.v1 import simulation_pb2_grpc

from services.cli.edge_client import edge_channel
from services.simulation.store import Store
from tests.engine import models
from tests.support.services import start_service

pytestmark = pytest.mark.integration
ENV = {
    "ALEA_SIMULATION_CHUNK_TRIALS": "65536",
    "ALEA_SIMULATION_CHECKPOINT_SECONDS": "0",
    "ALEA_SIMULATION_LEASE_SECONDS": "2",
    "ALEA_SIMULATION_POLL_SECONDS": "0.05",
}


async def test_restart_with_a_simulation_in_flight(store: Store, tmp_path):
    if store.db.dialect != "sqlite":
        # The queue's PostgreSQL statements are covered by test_queue and the worker
        # process tests; this one is slow there (two service starts) for no new path.
        pytest.skip("restart through the service process runs on SQLite")
    url = store.db.engine.url.render_as_string(hide_password=False)
    identity = start_service(
        "identity",
        tmp_path,
        {"ALEA_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'identity.db'}"},
    )
    env = {**ENV, "ALEA_DATABASE_URL": url, "ALEA_IDENTITY_ADDRESS": identity.address}
    simulation = start_service("simulation", tmp_path, env)
    try:
        with edge_channel(identity.address, tmp_path / "pki", "edge") as channel:
            reply = identity_pb2_grpc.IdentityServiceStub(channel).Register(
                identity_pb2.RegisterRequest(
                    tenant_display_name="t",
                    email=f"r-{uuid.uuid4().hex[:6]}@example.com",
                    password="restart password 1",
                    display_name="r",
                ),
                timeout=30,
            )
        auth = (("authorization", f"Bearer {reply.tokens.access_token}"),)
        buffer = io.BytesIO()
        models.small().save(buffer)

        def call(method: str, request):
            with edge_channel(simulation.address, tmp_path / "pki", "edge") as channel:
                stub = simulation_pb2_grpc.SimulationServiceStub(channel)
                return getattr(stub, method)(request, metadata=auth, timeout=60)

        model = call(
            "CreateModel", pb.CreateModelRequest(display_name="small", workbook=buffer.getvalue())
        )
        runs = [
            call(
                "CreateSimulation",
                pb.CreateSimulationRequest(
                    model_id=model.id, trials=1_000_000, seed=5, bypass_cache=True
                ),
            )
            for _ in range(2)
        ]
        with edge_channel(simulation.address, tmp_path / "pki", "edge") as channel:
            stub = simulation_pb2_grpc.SimulationServiceStub(channel)
            watch = stub.WatchSimulation(
                pb.WatchSimulationRequest(simulation_id=runs[0].id), metadata=auth, timeout=120
            )
            for event in watch:  # stop the service once the first run is under way
                if event.WhichOneof("event") == "progress" and event.progress.trials_done:
                    break
            watch.cancel()
        assert simulation.stop() == 0  # SIGTERM: checkpoint, release, drain
        stopped = await store.get_simulation(reply.tenant.id, runs[0].id)
        assert stopped.state == "RUNNING" and 0 < stopped.trials_done < 1_000_000
        simulation = start_service("simulation", tmp_path, env)
        finals = []
        for run in runs:
            with edge_channel(simulation.address, tmp_path / "pki", "edge") as channel:
                stub = simulation_pb2_grpc.SimulationServiceStub(channel)
                events = list(
                    stub.WatchSimulation(
                        pb.WatchSimulationRequest(simulation_id=run.id), metadata=auth, timeout=180
                    )
                )
            finals.append(events[-1].simulation)
        assert [f.state for f in finals] == [pb.Simulation.STATE_SUCCEEDED] * 2
        first, second = (call("GetResults", pb.GetResultsRequest(simulation_id=r.id)) for r in runs)
        assert first.outputs == second.outputs  # interrupted vs not: the same bits
    except grpc.RpcError as error:
        log = simulation.log()[-3000:]
        raise AssertionError(f"{error.code()}: {error.details()}\n{log}") from None
    finally:
        simulation.stop()
        identity.stop()
