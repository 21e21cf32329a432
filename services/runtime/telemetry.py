"""OpenTelemetry wiring: tracer and meter providers, RPC metrics (the server span of each
RPC is made by the runtime's interceptor, client spans by ``Peers``' channels).

The exporter is ``none`` (default), ``console``, or ``otlp`` when
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set and ``opentelemetry-exporter-otlp`` is installed;
OTLP is optional so the default install stays light.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

__all__ = ["configure_telemetry", "rpc_duration"]

log = logging.getLogger(__name__)


def _exporters(kind: str):
    if kind == "console":
        return ConsoleSpanExporter(), ConsoleMetricExporter()
    if kind == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        except ImportError:
            log.warning("OTLP requested but opentelemetry-exporter-otlp is not installed")
            return None, None
        return OTLPSpanExporter(), OTLPMetricExporter()
    return None, None


def configure_telemetry(service: str, exporter: str) -> Callable[[], None]:
    """Install global tracer and meter providers for ``service``; returns their shutdown,
    which flushes what is still buffered."""
    resource = Resource.create({"service.name": f"alea-{service}", "service.namespace": "alea"})
    span_exporter, metric_exporter = _exporters(exporter)
    tracer_provider = TracerProvider(resource=resource)
    if span_exporter is not None:
        tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
    readers = [PeriodicExportingMetricReader(metric_exporter)] if metric_exporter else []
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)

    def shutdown() -> None:
        tracer_provider.shutdown()
        meter_provider.shutdown()

    return shutdown


def rpc_duration() -> metrics.Histogram:
    """Histogram of server RPC durations in seconds, by method and status code."""
    meter = metrics.get_meter("alea.runtime")
    return meter.create_histogram(
        "rpc.server.duration", unit="s", description="Duration of inbound RPCs"
    )
