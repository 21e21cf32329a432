"""Usage: taken in from the services' events, counted per tenant, user and time bucket.

What each metric counts (``USAGE_METRIC_*`` in the contract), and from which event:

=================  ===================================================================
TRIALS             trials charged against the monthly quota: a simulation's trials at its
                   ``simulation.created`` event, unless answered from the result cache —
                   exactly what identity's ReserveTrials reserved (``trials_used_this_month``)
SIMULATIONS        simulations created, split by the state they are in now
TRIALS_RUN         trials the workers ran, counted when the simulation ended
CPU_SECONDS        engine seconds CPU workers measured, counted when it ended
GPU_SECONDS        engine seconds GPU workers measured, counted when it ended
COMPUTE_SECONDS    CPU_SECONDS + GPU_SECONDS
UPLOADED_BYTES     bytes of the files uploaded (``file.uploaded``)
STORAGE_BYTE_DAYS  bytes stored times days stored, from ``file.uploaded`` to
                   ``file.deleted`` (or now), split over the buckets it spans
API_CALLS          RPCs of the tenant's users, as each service's runtime counted them
                   (recorded through RecordEvent)
=================  ===================================================================

Simulations and files are attributed to the user who created or owns them. Buckets are
UTC hours, days or calendar months.
"""

from __future__ import annotations

import calendar
import datetime as dt
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from services.analytics.performance import Performance, performance
from services.analytics.store import (
    AnalyticsStore,
    FileFact,
    LedgerRow,
    LedgerTotal,
    SimulationFact,
)
from services.runtime.context import Principal
from services.runtime.errors import InvalidArgument, NotFound

__all__ = [
    "DERIVED",
    "METRICS",
    "EventView",
    "Series",
    "Usage",
    "UsageData",
    "align",
    "buckets",
    "month_range",
    "tenant_scope",
]

METRICS = (
    "TRIALS",
    "SIMULATIONS",
    "COMPUTE_SECONDS",
    "UPLOADED_BYTES",
    "API_CALLS",
    "CPU_SECONDS",
    "GPU_SECONDS",
    "STORAGE_BYTE_DAYS",
    "TRIALS_RUN",
)
DERIVED = frozenset(METRICS) - {"API_CALLS"}
"""Metrics derived from events; the others come as recorded quantities."""

_TERMINAL = {"succeeded": "SUCCEEDED", "failed": "FAILED", "cancelled": "CANCELLED"}
_DAY = 86_400.0


@dataclass(frozen=True)
class EventView:
    """An event as analytics reads it: its dotted type, e.g. ``simulation.succeeded``."""

    id: str
    tenant_id: str
    type: str
    user_id: str
    data: dict[str, Any]
    event_time: float


@dataclass(frozen=True)
class Series:
    """One metric over the buckets, for the tenant or split by a user, state or backend."""

    metric: str
    user_id: str
    state: str
    backend: str
    points: list[tuple[float, float]]  # (bucket start, value)

    @property
    def total(self) -> float:
        return sum(value for _, value in self.points)


def tenant_scope(principal: Principal, tenant_id: str) -> str:
    """The tenant a caller may read: its own, any for operators and services."""
    if principal.is_service:
        if not tenant_id:
            raise InvalidArgument("tenant_id", "required when a service asks")
        return tenant_id
    if tenant_id and tenant_id != principal.tenant_id and not principal.platform:
        raise NotFound("tenant", tenant_id)
    return tenant_id or principal.tenant_id


# -- time buckets ---------------------------------------------------------------------------


def _utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def align(seconds: float, granularity: str) -> float:
    """The start of the bucket holding ``seconds``."""
    moment = _utc(seconds)
    if granularity == "HOUR":
        moment = moment.replace(minute=0, second=0, microsecond=0)
    elif granularity == "MONTH":
        moment = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    else:
        moment = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return moment.timestamp()


def _next(start: float, granularity: str) -> float:
    if granularity == "HOUR":
        return start + 3600
    if granularity == "DAY":
        return start + _DAY
    moment = _utc(start)
    days = calendar.monthrange(moment.year, moment.month)[1]
    return start + days * _DAY


def buckets(start: float, end: float, granularity: str) -> list[tuple[float, float]]:
    """The ``[from, to)`` buckets covering ``[start, end)``, the first aligned."""
    spans, at = [], align(start, granularity)
    while at < end:
        after = _next(at, granularity)
        spans.append((at, after))
        at = after
    return spans


def month_range(month: str) -> tuple[float, float]:
    """``[start, end)`` of a ``YYYY-MM`` month (empty: the current one), UTC;
    InvalidArgument naming ``month`` for the year 0, which the contract's pattern lets
    through (``[0-9]{4}``) but no calendar has."""
    today = dt.datetime.now(dt.UTC)
    year, number = (today.year, today.month) if not month else map(int, month.split("-"))
    if not dt.MINYEAR <= year <= dt.MAXYEAR or not 1 <= number <= 12:
        raise InvalidArgument("month", f"{month!r} is not a month of the years 0001 to 9999")
    start = dt.datetime(year, number, 1, tzinfo=dt.UTC)
    days = calendar.monthrange(year, number)[1]
    return start.timestamp(), start.timestamp() + days * _DAY


# -- counting -------------------------------------------------------------------------------


@dataclass(frozen=True)
class UsageData:
    """What the store holds for a tenant over a period."""

    simulations: list[SimulationFact]
    files: list[FileFact]
    ledger: list[LedgerTotal]


def _backend(name: str) -> str:
    """``cpu`` or ``gpu`` for a simulation's engine back end (``cache``, or empty before
    it ran, as they are)."""
    if name in ("numpy", "native", "cpu"):
        return "cpu"
    return "gpu" if name in ("gpu", "cuda") else name


def _contributions(
    metric: str, data: UsageData, start: float, end: float
) -> Iterator[tuple[float, str, str, str, float]]:
    """(time, user, state, backend, quantity) of everything ``metric`` counts in range."""

    def inside(t: float | None) -> bool:
        return t is not None and start <= t < end

    for sim in data.simulations:
        state, backend = f"STATE_{sim.state}", _backend(sim.backend)
        if metric == "TRIALS" and inside(sim.create_time) and not sim.cached:
            yield sim.create_time, sim.user_id, state, backend, sim.trials
        elif metric == "SIMULATIONS" and inside(sim.create_time):
            yield sim.create_time, sim.user_id, state, backend, 1.0
        elif inside(sim.end_time):
            assert sim.end_time is not None
            quantity = {
                "TRIALS_RUN": 0.0 if sim.cached else sim.trials_done,
                "CPU_SECONDS": sim.cpu_seconds,
                "GPU_SECONDS": sim.gpu_seconds,
                "COMPUTE_SECONDS": sim.cpu_seconds + sim.gpu_seconds,
            }.get(metric)
            if quantity:
                yield sim.end_time, sim.user_id, state, backend, quantity
    if metric == "UPLOADED_BYTES":
        for file in data.files:
            if inside(file.upload_time):
                yield file.upload_time, file.owner_id, "", "", file.size
    for row in data.ledger:
        if row.metric == metric and inside(row.event_time):
            yield row.event_time, row.user_id, "", "", row.quantity


def _byte_days(
    files: Iterable[FileFact], spans: Sequence[tuple[float, float]], now: float
) -> Iterator[tuple[float, str, float]]:
    """(bucket start, owner, byte-days) of every file in every bucket it was stored in."""
    for file in files:
        gone = file.delete_time if file.delete_time is not None else now
        for lo, hi in spans:
            overlap = min(gone, hi) - max(file.upload_time, lo)
            if overlap > 0:
                yield lo, file.owner_id, file.size * overlap / _DAY


def series(
    metric: str,
    data: UsageData,
    start: float,
    end: float,
    granularity: str,
    dimensions: frozenset[str] = frozenset(),
    now: float | None = None,
) -> list[Series]:
    """The tenant's series of ``metric``, and one per value of each dimension asked
    (``USER``, ``STATE``, ``BACKEND``); buckets without usage are 0."""
    spans = buckets(start, end, granularity)
    starts = [lo for lo, _ in spans]
    sums: dict[tuple[str, str, str], dict[float, float]] = defaultdict(lambda: defaultdict(float))

    def add(at: float, key: tuple[str, str, str], value: float) -> None:
        sums[key][at] += value

    def spread(at: float, user: str, state: str, backend: str, value: float) -> None:
        add(at, ("", "", ""), value)
        if "USER" in dimensions and user:
            add(at, (user, "", ""), value)
        if "STATE" in dimensions and state:
            add(at, ("", state, ""), value)
        if "BACKEND" in dimensions and backend:
            add(at, ("", "", backend), value)

    if metric == "STORAGE_BYTE_DAYS":
        clipped = [(max(lo, start), min(hi, end)) for lo, hi in spans]
        for at, user, value in _byte_days(data.files, clipped, now or time.time()):
            spread(align(at, granularity), user, "", "", value)
    else:
        for at, user, state, backend, value in _contributions(metric, data, start, end):
            spread(align(at, granularity), user, state, backend, value)
    keys = sorted({("", "", ""), *sums})
    return [Series(metric, *key, [(lo, sums[key].get(lo, 0.0)) for lo in starts]) for key in keys]


class Usage:
    """Takes in events and records, and answers usage series."""

    def __init__(self, store: AnalyticsStore) -> None:
        self.store = store

    async def ingest(self, event: EventView) -> bool:
        """Take in one event's usage; False when it carries none or was taken in before."""
        kind, _, action = event.type.partition(".")
        now = time.time()
        if kind == "simulation":
            return await self.store.take_in(event.id, now, simulation=_simulation(event, action))
        if kind == "file" and action in ("uploaded", "deleted"):
            return await self.store.take_in(event.id, now, file=_file(event, action))
        return False

    async def performance(
        self, principal: Principal, tenant_id: str, start: float, end: float
    ) -> Performance:
        """Performance of the tenant's simulations in ``[start, end)``."""
        tenant = tenant_scope(principal, tenant_id)
        return performance(await self.store.simulations(tenant, start, end), start, end)

    async def record(self, row: LedgerRow) -> bool:
        """Add a recorded quantity (RecordEvent); False when already recorded."""
        return await self.store.record(row)

    async def data(self, tenant_id: str, start: float, end: float) -> UsageData:
        return UsageData(
            await self.store.simulations(tenant_id, start, end),
            await self.store.files(tenant_id, start, end),
            await self.store.ledger(tenant_id, METRICS, start, end),
        )

    async def usage(
        self,
        principal: Principal,
        tenant_id: str,
        start: float,
        end: float,
        granularity: str,
        metrics: Sequence[str],
        dimensions: frozenset[str],
    ) -> list[Series]:
        """Every metric asked (all when none) as series over ``[start, end)``."""
        if end <= start:
            raise InvalidArgument("end_time", "must be after start_time")
        if len(buckets(start, end, granularity)) > 10_000:
            raise InvalidArgument("granularity", "more than 10,000 buckets: choose a wider one")
        tenant = tenant_scope(principal, tenant_id)
        data = await self.data(tenant, start, end)
        found: list[Series] = []
        for metric in metrics or METRICS:
            found += series(metric, data, start, end, granularity, dimensions)
        return found


def _simulation(event: EventView, action: str) -> SimulationFact:
    data = event.data
    if action == "created":
        state = "SUCCEEDED" if data.get("cached") else "QUEUED"
    else:
        state = _TERMINAL.get(action, "RUNNING")
    return SimulationFact(
        id=str(data.get("simulation_id", "")),
        tenant_id=event.tenant_id,
        user_id=str(data.get("user_id") or event.user_id),
        state=state,
        trials=float(data.get("trials") or 0),
        trials_done=float(data.get("trials_done") or 0),
        cached=bool(data.get("cached")),
        backend=str(data.get("backend") or ""),
        model_inputs=int(data.get("model_inputs") or 0),
        create_time=float(data.get("create_time") or event.event_time),
        start_time=_optional(data.get("start_time")),
        end_time=_optional(data.get("end_time")),
        cpu_seconds=float(data.get("cpu_seconds") or 0),
        gpu_seconds=float(data.get("gpu_seconds") or 0),
    )


def _file(event: EventView, action: str) -> FileFact:
    data = event.data
    return FileFact(
        id=str(data.get("file_id", "")),
        tenant_id=event.tenant_id,
        owner_id=str(data.get("owner_id") or event.user_id),
        size=float(data.get("size_bytes") or 0),
        upload_time=event.event_time,
        delete_time=event.event_time if action == "deleted" else None,
    )


def _optional(value: Any) -> float | None:
    return None if value is None else float(value)
