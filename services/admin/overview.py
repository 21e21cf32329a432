"""The operator overview: every service's health, version and recent errors, the queue,
storage and backlogs, gathered concurrently (a service that does not answer within two
seconds shows as unreachable rather than holding the overview up).

Each service's replica tells its own numbers through the runtime's StatusService
(``runtime.status``): version, requests and server errors over five minutes, records
waiting in its outbox, and its gauges — simulation's queue and workers, files' storage,
identity's users, notification's webhook backlog. Platform operators see those
platform-wide; a tenant's admins see the services' health and their own tenant's users,
simulations and storage (asked with their own credentials).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from services.runtime.access import SERVICES
from services.runtime.context import Principal

__all__ = ["Overview", "OverviewView", "ServiceView"]

Credentials = Sequence[tuple[str, str]]
SERVING, NOT_SERVING = 1, 2  # grpc.health.v1 HealthCheckResponse.ServingStatus


class Probe(Protocol):
    """One service's health and status (``runtime.peers.StatusClient``)."""

    async def health(self) -> int: ...

    async def status(self) -> Any: ...


class TenantSources(Protocol):
    """A tenant's own numbers, asked with an admin's credentials (``runtime.peers``)."""

    async def count_users(self, credentials: Credentials) -> int: ...

    async def queue(self, credentials: Credentials) -> Any: ...

    async def storage(self, credentials: Credentials) -> tuple[int, int]: ...


@dataclass(frozen=True)
class ServiceView:
    """One service as its answering replica reports it."""

    name: str
    status: str  # SERVING, NOT_SERVING or UNREACHABLE
    latency_ms: float = 0.0
    version: str = ""
    instance: str = ""
    uptime_seconds: float = 0.0
    recent_requests: int = 0
    recent_errors: int = 0
    outbox_pending: dict[str, int] = field(default_factory=dict)
    gauges: dict[str, float] = field(default_factory=dict)

    @property
    def error_ratio(self) -> float:
        return self.recent_errors / self.recent_requests if self.recent_requests else 0.0


@dataclass
class OverviewView:
    """The overview, platform-wide (``platform``) or for the caller's tenant."""

    services: list[ServiceView]
    platform: bool
    snapshot_time: float
    users: int = 0
    simulations_queued: int = 0
    simulations_running: int = 0
    workers: int = 0
    gpu_devices: int = 0
    storage_used_bytes: int = 0
    storage_quota_bytes: int = 0
    segments_queued: int = 0
    segments_running: int = 0
    oldest_queued_seconds: float = 0.0
    workers_cpu: int = 0
    workers_gpu: int = 0
    events_backlog: int = 0
    audit_backlog: int = 0
    webhook_backlog: int = 0
    audit_events: int = 0


async def _probe(name: str, probe: Probe) -> ServiceView:
    started = time.perf_counter()
    try:
        health = await probe.health()
        latency = (time.perf_counter() - started) * 1000
        status = await probe.status()
    except Exception:  # down, unreachable, or too slow: the overview still answers
        return ServiceView(name, "UNREACHABLE")
    start = status.start_time.seconds + status.start_time.nanos / 1e9
    return ServiceView(
        name,
        "SERVING" if health == SERVING else "NOT_SERVING",
        round(latency, 3),
        status.version,
        status.instance,
        max(0.0, time.time() - start),
        status.recent_requests,
        status.recent_errors,
        dict(status.outbox_pending),
        dict(status.gauges),
    )


class Overview:
    """Gathers the overview; see the module docstring."""

    def __init__(
        self,
        probe: Callable[[str], Probe],
        tenant: TenantSources,
        audit_events: Callable[[str | None], Any],
        services: Sequence[str] = SERVICES,
    ) -> None:
        self.probe, self.tenant, self.audit_events = probe, tenant, audit_events
        self.services = services

    async def get(self, principal: Principal, credentials: Credentials) -> OverviewView:
        views = await asyncio.gather(*(_probe(n, self.probe(n)) for n in self.services))
        gauges = {v.name: v.gauges for v in views}

        def gauge(service: str, name: str) -> float:
            return gauges.get(service, {}).get(name, 0.0)

        def pending(topic: str) -> int:
            return sum(v.outbox_pending.get(topic, 0) for v in views)

        overview = OverviewView(
            list(views),
            principal.platform,
            time.time(),
            workers_cpu=int(gauge("simulation", "workers_cpu")),
            workers_gpu=int(gauge("simulation", "workers_gpu")),
            workers=int(gauge("simulation", "workers_cpu") + gauge("simulation", "workers_gpu")),
            gpu_devices=int(gauge("simulation", "gpu_devices")),
            audit_events=await self.audit_events(
                None if principal.platform else principal.tenant_id
            ),
        )
        if principal.platform:
            overview.users = int(gauge("identity", "users"))
            overview.simulations_queued = int(gauge("simulation", "simulations_queued"))
            overview.simulations_running = int(gauge("simulation", "simulations_running"))
            overview.segments_queued = int(gauge("simulation", "segments_queued"))
            overview.segments_running = int(gauge("simulation", "segments_running"))
            overview.oldest_queued_seconds = gauge("simulation", "oldest_queued_seconds")
            overview.storage_used_bytes = int(gauge("files", "storage_bytes"))
            overview.events_backlog = pending("events")
            overview.audit_backlog = pending("audit")
            overview.webhook_backlog = int(gauge("notification", "webhook_backlog"))
            return overview
        await self._tenant_numbers(overview, credentials)
        return overview

    async def _tenant_numbers(self, overview: OverviewView, credentials: Credentials) -> None:
        """The caller's tenant's users, simulations and storage; a service that cannot
        answer leaves its numbers at zero (its row already says it is unreachable)."""
        users: Any
        queue: Any
        storage: Any
        users, queue, storage = await asyncio.gather(
            self.tenant.count_users(credentials),
            self.tenant.queue(credentials),
            self.tenant.storage(credentials),
            return_exceptions=True,
        )
        if isinstance(users, int):
            overview.users = users
        if not isinstance(queue, BaseException):
            overview.simulations_queued, overview.simulations_running = queue.queued, queue.running
        if isinstance(storage, tuple):
            overview.storage_used_bytes, overview.storage_quota_bytes = storage
