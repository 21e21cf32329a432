"""What a replica tells the admin service about itself: ``alea.status.v1.StatusService``.

Mounted by the runtime on every service (like health and reflection). It answers with the
running version, the replica (host and pid), recent RPC and server-error counts (the
last five minutes, from :class:`RecentCalls`, an interceptor observer), the records
waiting in the replica's outbox per topic, and the service's own gauges
(``Service.gauges``: the simulation queue, storage used, ...).
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Mapping

import grpc
from alea.status.v1 import status_pb2, status_pb2_grpc
from sqlalchemy import func, select

from services.runtime.audit import AuditTrail
from services.runtime.context import ServicerContext
from services.runtime.db import Database
from services.runtime.interceptor import Call
from services.runtime.outbox import outbox_table

__all__ = ["SERVER_ERRORS", "Gauges", "RecentCalls", "StatusServicer", "version"]

log = logging.getLogger(__name__)

Gauges = Callable[[], Awaitable[Mapping[str, float]]]
"""A service's own numbers for the overview, e.g. ``{"segments_queued": 3}``."""

SERVER_ERRORS = frozenset(
    {
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DATA_LOSS,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    }
)
_BUCKET_SECONDS = 60
_BUCKETS = 5
_FRAMEWORK = ("/grpc.health.v1.", "/grpc.reflection.")


def version() -> str:
    """The installed ``alea`` distribution's version."""
    try:
        return importlib.metadata.version("alea")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


class RecentCalls:
    """RPCs and server errors per minute over the last five minutes (health checks and
    reflection excluded); an interceptor observer."""

    def __init__(self) -> None:
        self._counts: dict[int, list[int]] = {}

    def finished(self, call: Call) -> None:
        if call.method.startswith(_FRAMEWORK):
            return
        minute = int(time.monotonic() // _BUCKET_SECONDS)
        bucket = self._counts.get(minute)
        if bucket is None:
            bucket = self._counts[minute] = [0, 0]
            for old in [m for m in self._counts if m <= minute - _BUCKETS]:
                del self._counts[old]
        bucket[0] += 1
        if call.code in SERVER_ERRORS:
            bucket[1] += 1

    def totals(self) -> tuple[int, int]:
        """(requests, server errors) over the last five minutes."""
        oldest = int(time.monotonic() // _BUCKET_SECONDS) - _BUCKETS
        live = [b for m, b in self._counts.items() if m > oldest]
        return sum(b[0] for b in live), sum(b[1] for b in live)


class StatusServicer(status_pb2_grpc.StatusServiceServicer):
    """GetStatus for the admin service's overview."""

    def __init__(
        self,
        service: str,
        db: Database,
        recent: RecentCalls,
        gauges: Gauges | None = None,
        trail: AuditTrail | None = None,
    ) -> None:
        self.service, self.db, self.recent, self.gauges, self.trail = (
            service,
            db,
            recent,
            gauges,
            trail,
        )
        self.instance = f"{socket.gethostname()}-{os.getpid()}"
        self.started = dt.datetime.now(dt.UTC)

    async def _outbox(self) -> dict[str, int]:
        query = (
            select(outbox_table.c.topic, func.count())
            .where(outbox_table.c.dead.is_(False))
            .group_by(outbox_table.c.topic)
        )
        async with self.db.reading() as session:
            rows = (await session.execute(query)).all()
        pending = {str(topic): int(count) for topic, count in rows}
        if self.trail is not None and self.trail.pending:  # entries not yet in the outbox
            pending["audit"] = pending.get("audit", 0) + self.trail.pending
        return pending

    async def GetStatus(
        self, request: status_pb2.GetStatusRequest, context: ServicerContext
    ) -> status_pb2.ServiceStatus:
        requests, errors = self.recent.totals()
        status = status_pb2.ServiceStatus(
            service=self.service,
            version=version(),
            instance=self.instance,
            recent_requests=requests,
            recent_errors=errors,
            outbox_pending=await self._outbox(),
            gauges=dict(await self.gauges()) if self.gauges is not None else {},
        )
        status.start_time.FromDatetime(self.started)
        return status
