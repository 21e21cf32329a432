"""Wiring of the simulation service: the servicer with its in-process workers, or workers only.

``python -m services.simulation`` serves gRPC and runs ``ALEA_SIMULATION_WORKERS``
workers in the same event loop (:func:`build`); ``python -m services.simulation
--worker`` (or ``alea worker``) runs workers only (:func:`build_workers`), sharing the
queue through the database. Both go through ``runtime.server.run``: on SIGTERM/SIGINT
workers checkpoint their segment and release its lease, so another worker resumes it at
once; a SIGKILLed worker's lease simply expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from pathlib import Path

from alea.simulation.v1 import simulation_pb2, simulation_pb2_grpc
from opentelemetry import metrics

from services.runtime.config import Settings
from services.runtime.db import Database
from services.runtime.events import events_relay
from services.runtime.outbox import Outbox
from services.runtime.peers import Peers
from services.runtime.platform_settings import CACHE_TTL
from services.runtime.server import Background, Mount, Service
from services.simulation.api import SimulationServicer
from services.simulation.config import SimulationConfig, load_config
from services.simulation.domain import Simulations
from services.simulation.fitting import Fitting
from services.simulation.hub import Hub
from services.simulation.queue import Queue
from services.simulation.store import Store
from services.simulation.worker import Worker

__all__ = ["MIGRATIONS", "build", "build_workers", "make_workers"]

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger(__name__)


def make_workers(store: Store, hub: Hub, config: SimulationConfig, count: int) -> list[Worker]:
    """``count`` workers sharing one wake-up event (set when a job is queued here); each
    finds its back end as it starts, so the engine loads after the service serves."""
    wake = asyncio.Event()
    return [Worker(store, hub, config, wake=wake) for _ in range(count)]


def _background(workers: list[Worker]) -> list[Background]:
    return [worker.run for worker in workers]


async def measure_queue_depth(queue: Queue, stop: asyncio.Event, every: float = 5.0) -> None:
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


async def build(settings: Settings, db: Database, peers: Peers) -> Service:
    """The SimulationService servicer and ``ALEA_SIMULATION_WORKERS`` workers beside it."""
    config = load_config()
    outbox = Outbox()
    store = Store(db, outbox)
    hub = Hub(store.simulations_by_id, config.poll_seconds)
    workers = make_workers(store, hub, config, config.workers)

    def cancel_local(simulation_id: str) -> None:
        for worker in workers:
            worker.cancel(simulation_id)

    domain = Simulations(
        store,
        hub,
        config,
        quotas=peers.identity,
        files=peers.files,
        users=peers.identity,
        wake=workers[0].wake.set if workers else lambda: None,
        cancel_local=cancel_local,
        cache_ttl=lambda tenant_id: peers.settings.get(CACHE_TTL, tenant_id),
    )
    mount = Mount(
        simulation_pb2.DESCRIPTOR.services_by_name["SimulationService"],
        SimulationServicer(domain, Fitting(peers.files)),
        simulation_pb2_grpc.add_SimulationServiceServicer_to_server,
    )
    relay = events_relay(db, outbox, peers)
    depth = functools.partial(measure_queue_depth, Queue(store))
    return Service([mount], background=[*_background(workers), depth, relay], gauges=domain.gauges)


async def build_workers(settings: Settings, db: Database, peers: Peers) -> Service:
    """Workers only (``--worker``): at least one, no gRPC server."""
    config = load_config()
    outbox = Outbox()
    store = Store(db, outbox)
    hub = Hub(store.simulations_by_id, config.poll_seconds)
    workers = make_workers(store, hub, config, max(config.workers, 1))
    relay = events_relay(db, outbox, peers)
    return Service([], background=[*_background(workers), relay])
