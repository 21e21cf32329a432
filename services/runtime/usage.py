"""API calls per tenant, user and hour, counted by the runtime and reported to analytics.

:class:`ApiCallMeter` is an interceptor observer: every RPC a user (by access token or API
key) makes, reads included, adds one to a counter in memory (health checks, reflection and
calls between services are not counted). Every ``flush_seconds`` the counters are written
to the outbox (topic ``usage``), one record per tenant, user and hour, which the outbox
relay delivers at least once to analytics' RecordEvent (``USAGE_METRIC_API_CALLS``,
deduplicated by the record's id). As with the audit trail, counts reach the outbox off the
request path: a process killed with SIGKILL loses at most its last ``flush_seconds`` of
counts; SIGTERM writes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import Counter

from alea.analytics.v1 import analytics_pb2

from services.runtime.db import Database
from services.runtime.interceptor import Call
from services.runtime.outbox import Outbox, OutboxItem

__all__ = ["TOPIC", "ApiCallMeter"]

log = logging.getLogger(__name__)

TOPIC = "usage"
_FRAMEWORK = ("/grpc.health.v1.", "/grpc.reflection.")


class ApiCallMeter:
    """Counts users' RPCs per (tenant, user, hour) and writes the counts to the outbox."""

    def __init__(
        self, service: str, db: Database, outbox: Outbox, flush_seconds: float = 10.0
    ) -> None:
        self.service, self.db, self.outbox = service, db, outbox
        self.flush_seconds = flush_seconds
        self._counts: Counter[tuple[str, str, int]] = Counter()

    def finished(self, call: Call) -> None:
        principal = call.principal
        if principal is None or not principal.user_id or call.method.startswith(_FRAMEWORK):
            return
        hour = int(time.time() // 3600)
        self._counts[(principal.tenant_id, principal.user_id, hour)] += 1

    async def run(self, stop: asyncio.Event) -> None:
        """Write the counts every ``flush_seconds`` until ``stop``, then once more."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.flush_seconds)
            try:
                await self.flush()
            except Exception:  # the database is away: the counts stay and grow
                log.warning("usage: cannot write API call counts to the outbox")

    async def flush(self) -> int:
        """Write the counts to the outbox; returns how many records were written."""
        counts, self._counts = self._counts, Counter()
        if not counts:
            return 0
        items = []
        for (tenant, user, hour), calls in counts.items():
            record_id = str(uuid.uuid4())
            event = analytics_pb2.RecordEventRequest(
                tenant_id=tenant,
                user_id=user,
                metric=analytics_pb2.USAGE_METRIC_API_CALLS,
                quantity=calls,
                attributes={"service": self.service},
                request_id=record_id,
            )
            event.event_time.FromSeconds(hour * 3600)
            items.append(OutboxItem(TOPIC, f"usage/{tenant}", record_id, event.SerializeToString()))
        try:
            async with self.db.transaction() as session:
                await self.outbox.add(session, *items)
        except BaseException:
            counts.update(self._counts)
            self._counts = counts
            raise
        return len(items)
