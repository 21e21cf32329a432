"""Process wiring: the servicer with its in-process workers, or a worker-only process.

``python -m services.simulation`` serves gRPC and runs ``ALEA_SIMULATION_WORKERS``
workers in the same event loop; ``python -m services.simulation --worker`` (or
``alea worker``) runs workers only, sharing the queue through the database. On
SIGTERM/SIGINT workers checkpoint their job and release its lease, so another worker
resumes it at once; a SIGKILLed worker's lease simply expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path

from alea.simulation.v1 import simulation_pb2, simulation_pb2_grpc
from opentelemetry import metrics

from services.runtime import telemetry
from services.runtime.clients import secure_channel
from services.runtime.config import Settings, load_settings
from services.runtime.db import Database
from services.runtime.logs import configure_logging
from services.runtime.pki import ensure_pki
from services.runtime.server import Mount, create_server, serve
from services.simulation import remote
from services.simulation.api import SimulationServicer
from services.simulation.config import SimulationConfig, load_config
from services.simulation.domain import Simulations
from services.simulation.hub import Hub
from services.simulation.queue import Queue
from services.simulation.store import Store
from services.simulation.worker import Worker, detect_backend

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger(__name__)


def make_workers(store: Store, hub: Hub, config: SimulationConfig, count: int) -> list[Worker]:
    """``count`` workers sharing one wake-up event (set when a job is queued here)."""
    backend, devices = detect_backend()
    wake = asyncio.Event()
    return [
        Worker(store, hub, config, backend=backend, devices=devices, wake=wake)
        for _ in range(count)
    ]


async def _run_workers(workers: list[Worker], stop: asyncio.Event) -> None:
    await asyncio.gather(*(w.run(stop) for w in workers))


async def _measure_queue(queue: Queue, stop: asyncio.Event, every: float = 5.0) -> None:
    """Keep the ``alea.simulation.queue.depth`` gauge current (read every ``every`` s)."""
    depth = 0

    def observe(_options: metrics.CallbackOptions) -> list[metrics.Observation]:
        return [metrics.Observation(depth)]

    metrics.get_meter("alea.simulation").create_observable_gauge(
        "alea.simulation.queue.depth",
        callbacks=[observe],
        unit="{segment}",
        description="Segments of the queue not completed yet (waiting or running)",
    )
    while not stop.is_set():
        try:
            depth = await queue.depth()
        except Exception:  # the database is away: the gauge keeps its last value
            log.warning("could not read the queue depth", exc_info=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)


async def serve_service(settings: Settings, config: SimulationConfig) -> None:
    """The gRPC service with its in-process workers, until SIGTERM/SIGINT."""
    database = Database(settings.database_url, MIGRATIONS)
    await database.open()
    store = Store(database)
    hub = Hub(store.get_simulation, config.poll_seconds)
    workers = make_workers(store, hub, config, config.workers)
    pki = ensure_pki(settings.home)
    identity = secure_channel(settings.identity_address, pki, "simulation")
    files = secure_channel(config.files_address, pki, "simulation")

    async def fetch(file_id: str, credentials: tuple[tuple[str, str], ...]) -> bytes:
        return await remote.fetch_file(files, file_id, list(credentials))

    def cancel_local(simulation_id: str) -> None:
        for worker in workers:
            worker.cancel(simulation_id)

    domain = Simulations(
        store,
        hub,
        config,
        quotas=remote.IdentityQuotas(identity),
        fetch_file=fetch,
        wake=workers[0].wake.set if workers else lambda: None,
        cancel_local=cancel_local,
    )
    mount = Mount(
        simulation_pb2.DESCRIPTOR.services_by_name["SimulationService"],
        SimulationServicer(domain),
        simulation_pb2_grpc.add_SimulationServiceServicer_to_server,
    )
    server, port = create_server("simulation", [mount], settings)
    log.info("listening", extra={"port": port, "workers": len(workers)})
    stop = asyncio.Event()
    running = asyncio.gather(_run_workers(workers, stop), _measure_queue(Queue(store), stop))
    try:
        await serve(server, stop)
    finally:
        stop.set()
        await running
        await identity.close(None)
        await files.close(None)
        await database.close()


async def serve_workers(settings: Settings, config: SimulationConfig) -> None:
    """Workers only (``--worker``): at least one, until SIGTERM/SIGINT."""
    database = Database(settings.database_url, MIGRATIONS)
    await database.open()
    store = Store(database)
    hub = Hub(store.get_simulation, config.poll_seconds)
    stop = asyncio.Event()
    _stop_on_signals(stop)
    try:
        await _run_workers(make_workers(store, hub, config, max(config.workers, 1)), stop)
    finally:
        await database.close()


def main(argv: list[str]) -> None:
    """Entry point of ``python -m services.simulation [--worker]``."""
    settings = load_settings("simulation")
    config = load_config()
    configure_logging("simulation", settings.log_level)
    telemetry.configure_telemetry("simulation", settings.otel_exporter)
    run = serve_workers if "--worker" in argv else serve_service
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(settings, config))
