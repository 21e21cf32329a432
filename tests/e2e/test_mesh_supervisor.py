"""The supervised local mesh as a user runs it (``alea up`` as a process, real services).

Each service and the edge is SIGKILLed in turn while a simulation runs: each is SERVING
(the edge READY) again, restarted at once by the supervisor, and the simulation finishes
with results identical to an uninterrupted run's. How long a restart takes is printed, not
asserted (timings belong to benchmarks): it is the process's own start-up, 0.4 s for Envoy
and 2-3 s for a service on an idle 2-core machine, more under load. Also: ``alea up
--services`` adds a service to the running mesh and the edge routes it, ``alea restart``,
``alea status`` (restarts, uptime), ``alea logs [-f]``, and a crash loop reported in the
status and the supervisor's log.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from alea.files.v1 import files_pb2, files_pb2_grpc
from alea.identity.v1 import identity_pb2, identity_pb2_grpc
from alea.simulation.v1 import simulation_pb2 as pb
from alea.simulation.v1 import simulation_pb2_grpc

from services.cli.edge_client import edge_channel
from services.cli.mesh_procs import (
    MeshLayout,
    envoy_ready,
    is_alive,
    read_pid,
    service_health,
    start_mesh,
    stop_mesh,
    supervisor_alive,
)
from services.cli.simulate import demo_workbook
from services.runtime.config import DEFAULT_PORTS, HEALTH_PORT_OFFSET
from tests.e2e.test_cli_mesh import alea, alea_process
from tests.support.services import free_port, free_port_offset

pytestmark = pytest.mark.integration
COME_BACK_TIMEOUT_S = 60.0  # a bound for a broken supervisor, not a speed target
SIMULATION = {
    # Small chunks, each checkpointed: a free tier's million trials last long enough for
    # every process to be killed while they run.
    "ALEA_SIMULATION_CHUNK_TRIALS": "2048",
    "ALEA_SIMULATION_CHECKPOINT_SECONDS": "0",
    "ALEA_SIMULATION_LEASE_SECONDS": "2",
    "ALEA_SIMULATION_POLL_SECONDS": "0.05",
    "ALEA_SIMULATION_MAX_SEGMENTS": "4",
    "ALEA_SIMULATION_MIN_SEGMENT_TRIALS": "2048",
    "ALEA_SIMULATION_ENGINE_THREADS": "1",
}


def _env() -> dict[str, str]:
    return {
        "ALEA_EDGE_PORT": str(free_port()),
        "ALEA_EDGE_ADMIN_PORT": str(free_port()),
        "ALEA_PORT_OFFSET": str(free_port_offset()),
        **SIMULATION,
    }


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """identity and simulation first; files is added by a test below."""
    home = tmp_path_factory.mktemp("alea-supervised")
    env = _env()
    up = alea_process(home, env, "up", "--services", "identity,simulation")
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        yield home, env
    finally:
        stop_mesh(MeshLayout.load(home))


def _ready(layout: MeshLayout, name: str) -> bool:
    if name == "envoy":
        return envoy_ready(layout.admin_port)
    return service_health(layout.health_port(name)) == "SERVING"


def _retry(call, attempts: int = 100):
    """``call()``, retried while the mesh is coming back (UNAVAILABLE and the like)."""
    for attempt in range(attempts):
        try:
            return call()
        except grpc.RpcError as exc:
            transient = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
            if exc.code() not in transient or attempt == attempts - 1:
                raise
            time.sleep(0.2)
    raise AssertionError("unreachable")


def test_a_service_that_cannot_start_is_not_added_and_the_mesh_carries_on(
    running: tuple[Path, dict[str, str]],
) -> None:
    """Adding admin while its health port is taken: the add fails saying why, admin is left
    out, and the running mesh (before: stopped whole, as if `alea up` had failed) serves on."""
    home, env = running
    layout = MeshLayout.load(home)
    port = DEFAULT_PORTS["admin"] + layout.port_offset + HEALTH_PORT_OFFSET
    with socket.create_server(("127.0.0.1", port)):
        up = alea_process(home, env, "up", "--services", "admin")
    assert up.returncode == 1, up.stdout + up.stderr
    assert "admin did not become ready, so nothing was added" in up.stderr
    assert "Address already in use" in up.stderr
    layout = MeshLayout.load(home)
    assert "admin" not in layout.services
    assert supervisor_alive(layout)
    assert all(_ready(layout, name) for name in ("identity", "simulation", "envoy"))
    status = alea(home, env, "status")
    assert status.returncode == 0 and "admin" not in status.stdout, status.stdout


def test_up_adds_a_service_to_the_running_mesh(running: tuple[Path, dict[str, str]]) -> None:
    home, env = running
    up = alea_process(home, env, "up", "--services", "files")
    assert up.returncode == 0, up.stdout + up.stderr
    layout = MeshLayout.load(home)
    assert "files" in layout.services and _ready(layout, "files")
    token = _register(layout)
    with edge_channel(f"localhost:{layout.edge_port}", layout.pki) as channel:
        usage = files_pb2_grpc.FilesServiceStub(channel).GetStorageUsage(
            files_pb2.GetStorageUsageRequest(), metadata=token, timeout=30
        )
    assert usage.used_bytes == 0  # routed by the edge to the service just added


def _register(layout: MeshLayout) -> tuple[tuple[str, str], ...]:
    with edge_channel(f"localhost:{layout.edge_port}", layout.pki) as channel:
        reply = _retry(
            lambda: identity_pb2_grpc.IdentityServiceStub(channel).Register(
                identity_pb2.RegisterRequest(
                    tenant_display_name="supervised",
                    email=f"s-{uuid.uuid4().hex[:8]}@example.com",
                    password="supervised password 1",
                    display_name="s",
                    request_id=str(uuid.uuid4()),
                ),
                timeout=30,
            )
        )
    return (("authorization", f"Bearer {reply.tokens.access_token}"),)


def test_sigkilled_processes_come_back_and_the_simulation_is_unchanged(
    running: tuple[Path, dict[str, str]],
) -> None:
    home, env = running
    layout = MeshLayout.load(home)
    auth = _register(layout)
    channel = edge_channel(f"localhost:{layout.edge_port}", layout.pki)
    stub = simulation_pb2_grpc.SimulationServiceStub(channel)

    def call(method: str, request):
        return _retry(lambda: getattr(stub, method)(request, metadata=auth, timeout=30))

    model = call("CreateModel", pb.CreateModelRequest(display_name="m", workbook=demo_workbook()))

    def simulate() -> str:
        request = pb.CreateSimulationRequest(
            model_id=model.id,
            trials=1_000_000,
            seed=11,
            request_id=str(uuid.uuid4()),
            bypass_cache=True,  # the reference run must run, not reuse the interrupted one
        )
        return str(call("CreateSimulation", request).id)

    def finish(simulation_id: str) -> pb.GetResultsResponse:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            got = call("GetSimulation", pb.GetSimulationRequest(simulation_id=simulation_id))
            if got.state not in (pb.Simulation.STATE_QUEUED, pb.Simulation.STATE_RUNNING):
                assert got.state == pb.Simulation.STATE_SUCCEEDED, got
                return call("GetResults", pb.GetResultsRequest(simulation_id=simulation_id))
            time.sleep(0.2)
        raise AssertionError("the simulation did not finish")

    killed = simulate()
    back: dict[str, float] = {}
    for name in ("envoy", "identity", "files", "simulation"):
        state = call("GetSimulation", pb.GetSimulationRequest(simulation_id=killed)).state
        assert state in (pb.Simulation.STATE_QUEUED, pb.Simulation.STATE_RUNNING), (name, state)
        pid = read_pid(layout, name)
        os.kill(pid, signal.SIGKILL)  # type: ignore[arg-type]
        killed_at = time.monotonic()
        while not (read_pid(layout, name) != pid and _ready(layout, name)):
            assert time.monotonic() - killed_at < COME_BACK_TIMEOUT_S, f"{name} is not back"
            time.sleep(0.05)
        back[name] = time.monotonic() - killed_at
    interrupted = finish(killed)
    started = time.monotonic()
    reference = finish(simulate())
    print(f"back after: {back}; an uninterrupted run: {time.monotonic() - started:.1f} s")
    channel.close()

    assert interrupted.outputs and interrupted.outputs == reference.outputs, back
    status = alea(home, env, "status")
    assert status.returncode == 0, status.stdout + status.stderr
    rows = {line.split()[0]: line.split() for line in status.stdout.splitlines()[1:]}
    for name in ("identity", "files", "simulation", "edge"):
        assert rows[name][3] in ("SERVING", "READY") and int(rows[name][4]) >= 1, status.stdout


def test_restart_replaces_a_process_gracefully(running: tuple[Path, dict[str, str]]) -> None:
    home, env = running
    layout = MeshLayout.load(home)
    before = read_pid(layout, "identity")
    restart = alea(home, env, "restart", "identity")
    assert restart.returncode == 0, restart.stdout + restart.stderr
    assert read_pid(layout, "identity") != before and not is_alive(before)
    assert _ready(layout, "identity")
    unknown = alea(home, env, "restart", "nonesuch")
    assert unknown.returncode == 1 and "no process 'nonesuch'" in unknown.stderr


def test_logs_prints_and_follows(running: tuple[Path, dict[str, str]]) -> None:
    home, env = running
    logs = alea(home, env, "logs", "identity", "-n", "3")
    assert logs.returncode == 0 and 0 < len(logs.stdout.splitlines()) <= 3, logs
    log_path = MeshLayout.load(home).log_path("supervisor")
    with log_path.open("a") as log:
        log.write("the last line before following\n")
    follow = subprocess.Popen(
        [sys.executable, "-m", "services.cli.main", "logs", "supervisor", "-f", "-n", "1"],
        env={**os.environ, "ALEA_HOME": str(home)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert follow.stdout is not None
        # Once it printed the last line it is following: what is appended comes next.
        assert follow.stdout.readline() == "the last line before following\n"
        with log_path.open("a") as log:
            log.write("a line written while following\n")
        assert follow.stdout.readline() == "a line written while following\n"
    finally:
        follow.kill()
        follow.wait()
    missing = alea(home, env, "logs", "nonesuch")
    assert missing.returncode == 1 and "known:" in missing.stderr


def test_a_crash_loop_is_reported(tmp_path: Path) -> None:
    env = _env()
    up = alea_process(tmp_path, env, "up", "--services", "identity")
    assert up.returncode == 0, up.stdout + up.stderr
    layout = MeshLayout.load(tmp_path)
    try:
        # identity's database becomes unusable: every restart fails at once.
        database = tmp_path / "data" / "identity.db"
        database.unlink()
        database.mkdir()
        os.kill(read_pid(layout, "identity"), signal.SIGKILL)  # type: ignore[arg-type]
        deadline = time.monotonic() + 60
        while "CRASH-LOOP" not in (status := alea(tmp_path, env, "status")).stdout:
            assert time.monotonic() < deadline, status.stdout
            time.sleep(0.5)
        assert status.returncode == 1
        log = layout.log_path("supervisor").read_text()
        assert "crash loop: identity exited 5 times" in log
    finally:
        stop_mesh(layout)


@pytest.mark.parametrize("ending", ["owner exits", "supervisor SIGTERM"])
def test_every_process_stops_with_the_supervisor(tmp_path: Path, ending: str) -> None:
    """Tests and benchmarks make themselves the mesh's owner: one killed before its
    cleanup leaves no mesh running (``alea up`` sets no owner: its mesh outlives it). A
    SIGTERMed supervisor stops every process before it exits, as ``alea down`` has it do."""
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    layout = MeshLayout(
        home=tmp_path,
        services={"identity": free_port()},
        health_ports={"identity": free_port()},
        edge_port=free_port(),
        admin_port=free_port(),
        owner_pid=owner.pid,
    )
    try:
        start_mesh(layout)
        pids = {name: read_pid(layout, name) for name in ("supervisor", "identity", "envoy")}
        assert all(is_alive(pid) for pid in pids.values()), pids
        if ending == "owner exits":
            owner.kill()
            owner.wait()
        else:
            os.kill(pids["supervisor"], signal.SIGTERM)  # type: ignore[arg-type]
        deadline = time.monotonic() + COME_BACK_TIMEOUT_S
        while alive := [name for name, pid in pids.items() if is_alive(pid)]:
            assert time.monotonic() < deadline, f"still running: {alive}"
            time.sleep(0.2)
        if ending == "owner exits":
            assert "owner process" in layout.log_path("supervisor").read_text()
    finally:
        owner.kill()
        stop_mesh(layout)
