"""Measurements through the running service: a mesh (identity, simulation, Envoy) driven
over gRPC through the edge, and bare worker processes sharing one SQLite queue."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
from alea.identity.v1 import identity_pb2, identity_pb2_grpc
from alea.simulation.v1 import simulation_pb2 as pb
from alea.simulation.v1 import simulation_pb2_grpc

from services.cli.edge_client import edge_channel
from services.cli.mesh_procs import MeshLayout, start_mesh, stop_mesh
from services.cli.simulate import Metadata
from tests.support.services import REPO_ROOT, free_port

if TYPE_CHECKING:  # imported where used: the mesh's side of the benchmark needs neither
    import openpyxl

    from services.engine.ir import Model
    from services.simulation.store import Store


@dataclass(frozen=True)
class Run:
    """One simulation through the service."""

    client_rate: float  # trials/s from CreateSimulation to the final event at the client
    service_rate: float  # trials/s between the simulation's start and end times
    events_per_second: float  # progress events one watcher received while it ran
    latencies: list[float]  # GetQueueStatus round trips meanwhile


class Mesh:
    """Identity, simulation and Envoy as processes under a temporary home (free ports)."""

    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="alea-bench-sim-"))
        names = ("identity", "simulation")
        self.layout = MeshLayout(
            home=self.home,
            services={n: free_port() for n in names},
            health_ports={n: free_port() for n in names},
            edge_port=free_port(),
            admin_port=free_port(),
            owner_pid=os.getpid(),
        )

    def __enter__(self) -> Mesh:
        start_mesh(self.layout)
        self.address = f"localhost:{self.layout.edge_port}"
        self.channel = edge_channel(self.address, self.layout.pki)
        self.stub = simulation_pb2_grpc.SimulationServiceStub(self.channel)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.channel.close()
        stop_mesh(self.layout)
        shutil.rmtree(self.home, ignore_errors=True)

    def tenant(self, workbook: bytes) -> tuple[tuple[tuple[str, str], ...], str]:
        """A fresh tenant (a fresh monthly quota) with the model stored: (metadata, model id)."""
        identity = identity_pb2_grpc.IdentityServiceStub(self.channel)
        email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
        reply = identity.Register(
            identity_pb2.RegisterRequest(
                tenant_display_name="bench",
                email=email,
                password="bench password 123",
                display_name="bench",
                request_id=str(uuid.uuid4()),
            ),
            timeout=30,
        )
        metadata = (("authorization", f"Bearer {reply.tokens.access_token}"),)
        request = pb.CreateModelRequest(display_name="bench", workbook=workbook)
        model = self.stub.CreateModel(request, metadata=metadata, timeout=60)
        return metadata, model.id

    def run(self, workbook: bytes, trials: int, watchers: int = 0, probe: bool = False) -> Run:
        """One simulation from CreateSimulation to its final event, watched ``watchers + 1``
        times; with ``probe``, GetQueueStatus latencies are measured meanwhile (a separate
        run: the probe's own load would count against the throughput)."""
        metadata, model_id = self.tenant(workbook)
        latencies: list[float] = []
        done = threading.Event()
        prober = threading.Thread(target=self._probe, args=(metadata, latencies, done))
        started = time.perf_counter()
        sim = self.stub.CreateSimulation(
            pb.CreateSimulationRequest(model_id=model_id, trials=trials, seed=1, bypass_cache=True),
            metadata=metadata,
        )
        if probe:
            prober.start()
        final, progress_events = asyncio.run(self._watch(sim.id, metadata, watchers + 1))
        elapsed = time.perf_counter() - started
        done.set()
        if probe:
            prober.join()
        assert final.state == pb.Simulation.STATE_SUCCEEDED, final.state_reason
        running = (final.end_time.ToNanoseconds() - final.start_time.ToNanoseconds()) / 1e9
        return Run(trials / elapsed, trials / running, progress_events / running, latencies)

    def idle_latencies(self, count: int = 200) -> list[float]:
        metadata, _ = self.tenant(_tiny_workbook())
        latencies: list[float] = []
        done = threading.Event()
        threading.Timer(count * 0.01, done.set).start()
        self._probe(metadata, latencies, done)
        return latencies

    def _probe(self, metadata: Metadata, latencies: list[float], done: threading.Event) -> None:
        """Sequential GetQueueStatus calls: how responsive the service's event loop is."""
        while not done.is_set():
            begin = time.perf_counter()
            self.stub.GetQueueStatus(pb.GetQueueStatusRequest(), metadata=metadata, timeout=30)
            latencies.append(time.perf_counter() - begin)
            time.sleep(0.01)

    async def _watch(
        self, simulation_id: str, metadata: Metadata, count: int
    ) -> tuple[pb.Simulation, int]:
        """(the final state, progress events the first watcher received)."""
        pki = self.layout.pki
        credentials = grpc.ssl_channel_credentials(
            (pki / "ca.crt").read_bytes(),
            (pki / "client.key").read_bytes(),
            (pki / "client.crt").read_bytes(),
        )
        async with grpc.aio.secure_channel(self.address, credentials) as channel:
            stub = simulation_pb2_grpc.SimulationServiceStub(channel)

            async def follow() -> tuple[pb.Simulation, int]:
                last, progress = pb.Simulation(), 0
                call = stub.WatchSimulation(
                    pb.WatchSimulationRequest(simulation_id=simulation_id), metadata=metadata
                )
                async for event in call:
                    if event.WhichOneof("event") == "simulation":
                        last = event.simulation
                    else:
                        progress += 1
                return last, progress

            return (await asyncio.gather(*(follow() for _ in range(count))))[0]


def _tiny_workbook() -> bytes:
    from services.cli.simulate import demo_workbook

    return demo_workbook()


def workbook_bytes(book: openpyxl.Workbook) -> bytes:
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def worker_processes(model: Model, trials: int, processes: int, threads: int) -> float:
    """trials/s of one simulation shared by ``processes`` worker processes (one SQLite queue)."""
    from services.runtime.db import Database
    from services.simulation.app import MIGRATIONS
    from services.simulation.config import SimulationConfig
    from services.simulation.domain import SimulationRequest, Simulations
    from services.simulation.hub import Hub
    from services.simulation.store import Store
    from tests.integration.simulation.models import insert_model

    home = Path(tempfile.mkdtemp(prefix="alea-bench-workers-"))
    url = f"sqlite+aiosqlite:///{home / 'simulation.db'}"
    env = {
        **os.environ,
        "ALEA_HOME": str(home),
        "ALEA_DATABASE_URL": url,
        "ALEA_SIMULATION_ENGINE_THREADS": str(threads),
        "ALEA_SIMULATION_POLL_SECONDS": "0.05",
    }

    async def poll(store: Store, done: Callable[[Store], Awaitable[bool]]) -> None:
        # The queue lives in the database: polling it is what is being measured.
        while not await done(store):  # noqa: ASYNC110
            await asyncio.sleep(0.02)

    async def run() -> float:
        database = Database(url, MIGRATIONS)
        await database.open()
        store = Store(database)
        try:
            # Every worker up and polling before the clock starts.
            await poll(store, lambda s: _workers_at_least(s, processes))
            domain = Simulations(store, Hub(store.simulations_by_id, 0.5), SimulationConfig())
            model_id = await insert_model(store, "bench", model)
            started = time.perf_counter()
            sim = await domain.create_simulation(
                "bench", "u", SimulationRequest(model_id, trials, 1, bypass_cache=True)
            )
            await poll(store, lambda s: _finished(s, sim.id))
            return trials / (time.perf_counter() - started)
        finally:
            await database.close()

    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "services.simulation", "--worker"],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(processes)
    ]
    try:
        return asyncio.run(run())
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait()
        shutil.rmtree(home, ignore_errors=True)


async def _workers_at_least(store: Store, count: int) -> bool:
    return len((await store.queue_status(time.time() - 60))[1]) >= count


async def _finished(store: Store, simulation_id: str) -> bool:
    record = await store.get_simulation("bench", simulation_id)
    if record is None:
        raise RuntimeError(f"simulation {simulation_id} vanished")
    if record.state in ("FAILED", "CANCELLED"):
        raise RuntimeError(f"simulation {record.state}: {record.state_reason}")
    return record.state == "SUCCEEDED"


def p50_ms(latencies: list[float]) -> float:
    return statistics.median(latencies) * 1000 if latencies else float("nan")
