"""`alea simulate --watch` against a real gRPC server whose streams break mid-way."""

from __future__ import annotations

import io
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from alea.simulation.v1 import simulation_pb2 as pb
from alea.simulation.v1 import simulation_pb2_grpc

from services.cli.simulate import watch

State = pb.Simulation.State


class Flaky(simulation_pb2_grpc.SimulationServiceServicer):
    """Each watch reports the state and some progress, then ends as ``endings`` says: a
    status code (and details) to abort with, or None to finish the simulation."""

    def __init__(self, endings: list[tuple[grpc.StatusCode, str] | None]) -> None:
        self.endings = endings
        self.calls = 0

    def WatchSimulation(self, request, context) -> Iterator[pb.SimulationEvent]:
        ending = self.endings[min(self.calls, len(self.endings) - 1)]
        self.calls += 1
        running = pb.Simulation(id=request.simulation_id, state=State.STATE_RUNNING, trials=100)
        yield pb.SimulationEvent(simulation=running)
        done = 25 * self.calls
        yield pb.SimulationEvent(
            progress=pb.Progress(trials_done=done, trials_total=100, trials_per_second=10)
        )
        if ending is not None:
            context.abort(*ending)
        finished = pb.Simulation(
            id=request.simulation_id, state=State.STATE_SUCCEEDED, trials=100, trials_done=100
        )
        yield pb.SimulationEvent(simulation=finished)


@pytest.fixture
def serve():
    servers = []

    def start(servicer: Flaky) -> simulation_pb2_grpc.SimulationServiceStub:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        simulation_pb2_grpc.add_SimulationServiceServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append((server, grpc.insecure_channel(f"127.0.0.1:{port}")))
        return simulation_pb2_grpc.SimulationServiceStub(servers[-1][1])

    yield start
    for server, channel in servers:
        channel.close()
        server.stop(None)


def test_a_watch_broken_by_a_restart_or_a_reset_stream_resumes_to_the_end(serve) -> None:
    reset = (grpc.StatusCode.INTERNAL, "Received RST_STREAM with error code 2")
    servicer = Flaky([(grpc.StatusCode.UNAVAILABLE, "restarting"), reset, None])
    out = io.StringIO()
    final = watch(serve(servicer), "s1", (), out=out)
    assert final.state == State.STATE_SUCCEEDED and servicer.calls == 3
    assert "75/100 trials" in out.getvalue()  # the third stream's progress was drawn


@pytest.mark.parametrize(
    "ending",
    [
        (grpc.StatusCode.NOT_FOUND, "simulation s1 not found"),
        (grpc.StatusCode.INTERNAL, "a bug, not a reset"),
        (grpc.StatusCode.PERMISSION_DENIED, "no"),
    ],
)
def test_other_errors_end_the_watch_at_once(serve, ending) -> None:
    servicer = Flaky([ending, None])
    with pytest.raises(grpc.RpcError) as error:
        watch(serve(servicer), "s1", (), out=io.StringIO())
    assert error.value.code() == ending[0] and servicer.calls == 1
