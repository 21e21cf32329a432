"""AnalyticsService servicer: protobuf → domain call → protobuf, nothing else."""

from __future__ import annotations

import datetime as dt
import time

from alea.analytics.v1 import analytics_pb2 as pb
from alea.analytics.v1 import analytics_pb2_grpc
from alea.simulation.v1 import simulation_pb2
from google.api import httpbody_pb2
from google.protobuf import json_format, timestamp_pb2

from services.analytics import report
from services.analytics.performance import BackendPerformance
from services.analytics.store import LedgerRow
from services.analytics.usage import EventView, Usage, align, month_range, tenant_scope
from services.runtime.context import ServicerContext, current_principal
from services.runtime.convert import timestamp_of_seconds
from services.runtime.errors import InvalidArgument
from services.runtime.events import type_name

__all__ = ["AnalyticsServicer"]

_DAY = 86_400.0
MAX_PERIOD_DAYS = 3_660
"""The longest period a usage query or report covers (ten years): a report lists its days."""
_GRANULARITY = {
    pb.GRANULARITY_UNSPECIFIED: "DAY",
    pb.GRANULARITY_HOUR: "HOUR",
    pb.GRANULARITY_DAY: "DAY",
    pb.GRANULARITY_MONTH: "MONTH",
}
_BACKENDS = {"cpu": simulation_pb2.BACKEND_CPU, "gpu": simulation_pb2.BACKEND_GPU}


def _seconds(stamp: timestamp_pb2.Timestamp) -> float:
    return stamp.seconds + stamp.nanos / 1e9


def _metric(number: int) -> str:
    return pb.UsageMetric.Name(number).removeprefix("USAGE_METRIC_")


def _period(
    request: pb.GetUsageRequest | pb.GetPerformanceRequest, default_start: float
) -> tuple[float, float]:
    start = _seconds(request.start_time) if request.HasField("start_time") else default_start
    end = _seconds(request.end_time) if request.HasField("end_time") else time.time()
    return _bounded(start, end)


def _bounded(start: float, end: float) -> tuple[float, float]:
    if end - start > MAX_PERIOD_DAYS * _DAY:
        raise InvalidArgument("start_time", f"the period may span at most {MAX_PERIOD_DAYS} days")
    return start, end


def _dimension(number: int) -> str:
    return pb.UsageDimension.Name(number).removeprefix("USAGE_DIMENSION_")


def _report_period(request: pb.GetReportRequest) -> tuple[float, float]:
    """The month asked, else the period asked, by default the previous month."""
    if request.month:
        return month_range(request.month)
    this_month = month_range("")[0]
    previous = dt.datetime.fromtimestamp(this_month - _DAY, dt.UTC).strftime("%Y-%m")
    start = _seconds(request.start_time) if request.HasField("start_time") else None
    end = _seconds(request.end_time) if request.HasField("end_time") else this_month
    return _bounded(month_range(previous)[0] if start is None else start, end)


def _backend(item: BackendPerformance) -> pb.BackendPerformance:
    return pb.BackendPerformance(
        backend=_BACKENDS[item.backend],
        simulations=item.simulations,
        trials=int(item.trials),
        trials_per_second=item.trials_per_second,
        queue_wait_seconds_p50=item.queue_wait_p50,
        queue_wait_seconds_p95=item.queue_wait_p95,
        run_seconds_p50=item.run_p50,
        run_seconds_p95=item.run_p95,
        model_size_band=item.size_band,
    )


def _user(row: report.UserRow) -> pb.UserUsage:
    t = row.totals
    return pb.UserUsage(
        user_id=row.user_id,
        trials=t["TRIALS"],
        simulations=t["SIMULATIONS"],
        compute_seconds=t["COMPUTE_SECONDS"],
        trials_run=t["TRIALS_RUN"],
        cpu_seconds=t["CPU_SECONDS"],
        gpu_seconds=t["GPU_SECONDS"],
        uploaded_bytes=t["UPLOADED_BYTES"],
        storage_byte_days=t["STORAGE_BYTE_DAYS"],
        api_calls=t["API_CALLS"],
    )


class AnalyticsServicer(analytics_pb2_grpc.AnalyticsServiceServicer):
    """The AnalyticsService RPCs; access rules and validation ran before each handler."""

    def __init__(self, usage: Usage) -> None:
        self.usage = usage

    async def RecordEvent(
        self, request: pb.RecordEventRequest, context: ServicerContext
    ) -> pb.RecordEventResponse:
        row = LedgerRow(
            id=request.request_id,
            tenant_id=request.tenant_id,
            user_id=request.user_id,
            metric=_metric(request.metric),
            quantity=request.quantity,
            event_time=_seconds(request.event_time),
        )
        await self.usage.record(row)
        return pb.RecordEventResponse()

    async def IngestEvents(
        self, request: pb.IngestEventsRequest, context: ServicerContext
    ) -> pb.IngestEventsResponse:
        recorded = 0
        for event in request.events:
            view = EventView(
                id=event.id,
                tenant_id=event.tenant_id,
                type=type_name(event.type),
                user_id=event.user_id,
                data=json_format.MessageToDict(event.data),
                event_time=_seconds(event.event_time),
            )
            recorded += await self.usage.ingest(view)
        return pb.IngestEventsResponse(recorded=recorded)

    async def GetUsage(
        self, request: pb.GetUsageRequest, context: ServicerContext
    ) -> pb.GetUsageResponse:
        start, end = _period(request, month_range("")[0])
        granularity = _GRANULARITY[request.granularity]
        dimensions = {_dimension(d) for d in request.group_by}
        if request.per_user:
            dimensions.add("USER")
        found = await self.usage.usage(
            current_principal(),
            request.tenant_id,
            start,
            end,
            granularity,
            [_metric(m) for m in request.metrics],
            frozenset(dimensions),
        )
        response = pb.GetUsageResponse(
            start_time=timestamp_of_seconds(align(start, granularity)),
            end_time=timestamp_of_seconds(end),
        )
        # Every series has a point per bucket, the same buckets: each bucket's Timestamp is
        # built once, and points are added in place (a month of days in nine metrics is 279
        # points, which cost more as new messages than the rest of the call).
        stamps: dict[float, timestamp_pb2.Timestamp] = {}
        for s in found:
            series = response.series.add(
                metric=f"USAGE_METRIC_{s.metric}",
                user_id=s.user_id,
                state=s.state,
                backend=s.backend,
                total=s.total,
            )
            add = series.points.add
            for t, v in s.points:
                stamp = stamps.get(t)
                if stamp is None:
                    stamp = stamps[t] = timestamp_of_seconds(t)
                add(start_time=stamp, value=v)
        return response

    async def GetPerformance(
        self, request: pb.GetPerformanceRequest, context: ServicerContext
    ) -> pb.GetPerformanceResponse:
        start, end = _period(request, time.time() - 30 * _DAY)
        found = await self.usage.performance(current_principal(), request.tenant_id, start, end)
        return pb.GetPerformanceResponse(
            start_time=timestamp_of_seconds(start),
            end_time=timestamp_of_seconds(end),
            backends=[_backend(b) for b in found.backends],
            cache_hit_ratio=found.cache_hit_ratio,
            cache_hits=found.cache_hits,
        )

    async def GetReport(self, request: pb.GetReportRequest, context: ServicerContext) -> pb.Report:
        tenant = tenant_scope(current_principal(), request.tenant_id)
        start, end = _report_period(request)
        built = await report.build(self.usage, tenant, start, end)
        return pb.Report(
            tenant_id=tenant,
            start_time=timestamp_of_seconds(start),
            end_time=timestamp_of_seconds(end),
            totals=[
                pb.MetricTotal(metric=f"USAGE_METRIC_{m}", value=v) for m, v in built.totals.items()
            ],
            top_users=[_user(row) for row in built.users[: request.top_users or 10]],
            backends=[_backend(b) for b in built.performance.backends],
            create_time=timestamp_of_seconds(built.create_time),
            simulations_by_state=built.by_state,
            daily_trials=[
                pb.UsagePoint(start_time=timestamp_of_seconds(t), value=v)
                for t, v in built.daily_trials
            ],
            cache_hit_ratio=built.performance.cache_hit_ratio,
        )

    async def DownloadReport(
        self, request: pb.DownloadReportRequest, context: ServicerContext
    ) -> httpbody_pb2.HttpBody:
        tenant = tenant_scope(current_principal(), request.tenant_id)
        start, end = month_range(request.month)
        built = await report.build(self.usage, tenant, start, end)
        csv = request.format == pb.REPORT_FORMAT_CSV
        month = dt.datetime.fromtimestamp(start, dt.UTC).strftime("%Y-%m")
        name = f"alea-usage-{month}.{'csv' if csv else 'html'}"
        await context.send_initial_metadata(
            (("content-disposition", f'attachment; filename="{name}"'),)
        )
        if csv:
            return httpbody_pb2.HttpBody(
                content_type="text/csv; charset=utf-8", data=report.render_csv(built)
            )
        return httpbody_pb2.HttpBody(
            content_type="text/html; charset=utf-8", data=report.render_html(built)
        )
