"""Spans are recorded only where an exporter can send them; the trace flows either way."""

from __future__ import annotations

from pathlib import Path

import pytest
from alea.identity.v1 import identity_pb2 as pb
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from services.runtime.telemetry import tracer_provider_for
from tests.unit.runtime.harness import identity_in_process
from tests.unit.runtime.test_interceptor import bearer, register, stub

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
RESOURCE = Resource.create({"service.name": "alea-test"})


def test_without_an_exporter_spans_are_not_recorded_and_the_trace_flows_on() -> None:
    tracer = tracer_provider_for(RESOURCE, None).get_tracer("test")
    span = tracer.start_span("/a.B/C", propagate.extract({"traceparent": PARENT}))
    assert not span.is_recording()
    context = span.get_span_context()
    assert f"{context.trace_id:032x}" == "0af7651916cd43dd8448eb211c80319c"
    assert f"{context.span_id:016x}" != "b7ad6b7169203331"  # a span of its own


def test_with_an_exporter_every_span_is_recorded_and_exported() -> None:
    exporter = InMemorySpanExporter()
    provider = tracer_provider_for(RESOURCE, exporter)
    tracer = provider.get_tracer("test")
    span = tracer.start_span("/a.B/C", propagate.extract({}), kind=SpanKind.SERVER)
    assert span.is_recording()
    span.end()
    provider.force_flush()
    assert [s.name for s in exporter.get_finished_spans()] == ["/a.B/C"]


async def test_a_recorded_server_span_carries_the_rpcs_attributes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exporter = InMemorySpanExporter()
    provider = tracer_provider_for(RESOURCE, exporter)
    # The interceptor's tracer (and the peers' client tracers) from this provider.
    monkeypatch.setattr(trace, "get_tracer", lambda name, *_, **__: provider.get_tracer(name))
    async with identity_in_process(tmp_path) as subject:
        admin = await register(subject)
        metadata = (*bearer(admin), ("x-request-id", "traced"), ("traceparent", PARENT))
        await stub(subject).GetUser(pb.GetUserRequest(user_id=admin.user.id), metadata=metadata)
    provider.force_flush()
    (span,) = [s for s in exporter.get_finished_spans() if s.name.endswith("/GetUser")]
    assert span.kind == SpanKind.SERVER
    assert f"{span.context.trace_id:032x}" == "0af7651916cd43dd8448eb211c80319c"
    attributes = dict(span.attributes or {})
    assert attributes["rpc.system"] == "grpc"
    assert attributes["rpc.service"] == "alea.identity.v1.IdentityService"
    assert attributes["rpc.method"] == "GetUser"
    assert attributes["rpc.grpc.status_code"] == 0
    assert attributes["alea.request_id"] == "traced"
    assert attributes["alea.user_id"] == admin.user.id
    assert attributes["net.peer.name"] == "localhost"
