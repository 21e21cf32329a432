"""A real OTLP/gRPC receiver for tests: the collector's TraceService and MetricsService.

with OtlpReceiver() as receiver:   # listens on 127.0.0.1:receiver.port
    ...                            # OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint
    spans = receiver.spans()       # every span received so far, with its service.name
"""

from __future__ import annotations

import threading
from concurrent import futures
from dataclasses import dataclass

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

__all__ = ["OtlpReceiver", "ReceivedSpan"]


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int


class OtlpReceiver(
    trace_service_pb2_grpc.TraceServiceServicer, metrics_service_pb2_grpc.MetricsServiceServicer
):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spans: list[ReceivedSpan] = []
        self._metrics: set[tuple[str, str]] = set()  # (service, metric name)
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, self._server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(self, self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> OtlpReceiver:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop(0)

    def Export(self, request, context):  # both services name their one RPC Export
        if isinstance(request, trace_service_pb2.ExportTraceServiceRequest):
            received = [
                ReceivedSpan(
                    _service(resource_spans.resource),
                    span.name,
                    span.trace_id.hex(),
                    span.span_id.hex(),
                    span.parent_span_id.hex(),
                    span.kind,
                )
                for resource_spans in request.resource_spans
                for scope in resource_spans.scope_spans
                for span in scope.spans
            ]
            with self._lock:
                self._spans.extend(received)
            return trace_service_pb2.ExportTraceServiceResponse()
        names = {
            (_service(rm.resource), metric.name)
            for rm in request.resource_metrics
            for scope in rm.scope_metrics
            for metric in scope.metrics
        }
        with self._lock:
            self._metrics |= names
        return metrics_service_pb2.ExportMetricsServiceResponse()

    def spans(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self._spans)

    def metrics(self) -> set[tuple[str, str]]:
        with self._lock:
            return set(self._metrics)


def _service(resource) -> str:
    for attribute in resource.attributes:
        if attribute.key == "service.name":
            return str(attribute.value.string_value)
    return ""
