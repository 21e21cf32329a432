"""OpenTelemetry wiring: tracer and meter providers, RPC metrics (the server span of each
RPC is made by the runtime's interceptor, client spans by ``Peers``' channels).

The exporter is ``none`` (default: spans are then not recorded, see
:func:`tracer_provider_for`), ``console``, or ``otlp`` (OTLP/gRPC) when
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set. Metrics are also always readable by a Prometheus
scrape (``GET /metrics`` on the health port, :mod:`services.runtime.health_port`).
"""

from __future__ import annotations

from collections.abc import Callable

from opentelemetry import context, metrics, propagate, trace
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

__all__ = [
    "configure_telemetry",
    "context_of",
    "rpc_duration",
    "traceparent",
    "tracer_provider_for",
]


def _exporters(kind: str) -> tuple[SpanExporter | None, MetricExporter | None]:
    if kind == "console":
        return ConsoleSpanExporter(), ConsoleMetricExporter()
    if kind == "otlp":
        # Imported only when used: a service without a collector does not pay for it.
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(), OTLPMetricExporter()
    return None, None


def configure_telemetry(service: str, exporter: str) -> Callable[[], None]:
    """Install global tracer and meter providers for ``service``; returns their shutdown,
    which flushes what is still buffered."""
    resource = Resource.create({"service.name": f"alea-{service}", "service.namespace": "alea"})
    span_exporter, metric_exporter = _exporters(exporter)
    tracer_provider = tracer_provider_for(resource, span_exporter)
    # Metrics are always scrapeable (GET /metrics on the health port), and pushed by OTLP
    # when an exporter is configured.
    readers: list[MetricReader] = [PrometheusMetricReader()]
    if metric_exporter:
        readers.append(PeriodicExportingMetricReader(metric_exporter))
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)

    def shutdown() -> None:
        tracer_provider.shutdown()
        meter_provider.shutdown()

    return shutdown


def tracer_provider_for(resource: Resource, exporter: SpanExporter | None) -> TracerProvider:
    """Spans exported by ``exporter``; with none, spans are not recorded (the ALWAYS_OFF
    sampler): nothing could ever read them, and a recorded span cost three times an
    unrecorded one on every RPC. Trace context still flows: an unrecorded span keeps its
    parent's trace id, and calls made under it carry that trace on."""
    if exporter is None:
        return TracerProvider(resource=resource, sampler=ALWAYS_OFF)
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def rpc_duration() -> metrics.Histogram:
    """Histogram of server RPC durations in seconds, by method and status code."""
    meter = metrics.get_meter("alea.runtime")
    return meter.create_histogram(
        "rpc.server.duration", unit="s", description="Duration of inbound RPCs"
    )


def traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span, to carry a trace into work done later
    (a queued simulation); None outside any trace."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


def context_of(parent: str | None) -> context.Context:
    """The context whose span is ``parent`` (a ``traceparent``); the empty one for None."""
    return propagate.extract({"traceparent": parent} if parent else {})
