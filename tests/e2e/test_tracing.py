"""One trace per request across the mesh, received by a real OTLP collector endpoint.

The mesh (every service and Envoy, as processes) exports to an OTLP/gRPC receiver started
here. A REST CreateSimulation through the edge yields one trace with spans from Envoy,
simulation and identity (simulation reserves the trials there), and the worker's queue
wait, segment and checkpoints; a REST CreateModel from a file yields one with Envoy,
simulation and files (the workbook's download). Every span's parent is in the same trace,
down from Envoy's root. RPC and worker metrics arrive by OTLP too.
"""

from __future__ import annotations

import base64
import shutil
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alea.files.v1 import files_pb2, files_pb2_grpc

from services.cli.mesh_procs import service_health
from services.cli.simulate import demo_workbook
from tests.support.mesh import Mesh, start_test_mesh
from tests.support.otlp import OtlpReceiver, ReceivedSpan

pytestmark = pytest.mark.integration
WORKER_SPANS = frozenset({"simulation.queue_wait", "simulation.segment", "simulation.checkpoint"})
SERVER = 2  # opentelemetry.proto.trace.v1.Span.SPAN_KIND_SERVER


@pytest.fixture(scope="module")
def traced() -> Iterator[tuple[Mesh, OtlpReceiver]]:
    with OtlpReceiver() as receiver, pytest.MonkeyPatch.context() as env:
        env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        env.setenv("OTEL_BSP_SCHEDULE_DELAY", "200")  # export spans within 0.2 s
        env.setenv("OTEL_METRIC_EXPORT_INTERVAL", "1000")
        home = Path(tempfile.mkdtemp(prefix="alea-tracing-"))
        mesh = start_test_mesh(home, None, "sqlite")
        try:
            yield mesh, receiver
        finally:
            mesh.stop()
            shutil.rmtree(home, ignore_errors=True)


def _trace(
    receiver: OtlpReceiver, rpc: str, services: set[str], names: frozenset[str] = frozenset()
) -> list[ReceivedSpan]:
    """The spans of the trace rooted at Envoy in which ``rpc`` was served, once ``services``
    all reported to it and spans named ``names`` arrived (Envoy flushes every few seconds)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        spans = receiver.spans()
        for root in (s for s in spans if s.service == "alea-edge" and not s.parent_span_id):
            trace = [s for s in spans if s.trace_id == root.trace_id]
            served = any(s.name.endswith(f"/{rpc}") for s in trace)
            complete = names <= {s.name for s in trace}
            if served and complete and services <= {s.service for s in trace}:
                return trace
        time.sleep(0.25)
    raise AssertionError(f"no new trace with {services}: {receiver.spans()}")


def _assert_one_tree(trace: list[ReceivedSpan]) -> None:
    ids = {s.span_id for s in trace}
    (root,) = [s for s in trace if not s.parent_span_id]
    assert root.service == "alea-edge"
    for span in trace:
        assert span.parent_span_id in ids or span is root, span


def _login(mesh: Mesh) -> dict[str, str]:
    rest = mesh.rest()
    email = f"t-{uuid.uuid4().hex[:8]}@example.com"
    body = {
        "tenantDisplayName": "traced",
        "email": email,
        "password": "traced password 123",
        "displayName": "t",
        "requestId": str(uuid.uuid4()),
    }
    reply = rest.request("POST", "/v1/auth:register", body)
    assert reply.status == 200, reply.text
    rest.close()
    return {"authorization": f"Bearer {reply.body['tokens']['accessToken']}"}


def test_a_rest_create_simulation_is_one_trace_through_edge_simulation_and_identity(
    traced: tuple[Mesh, OtlpReceiver],
) -> None:
    mesh, receiver = traced
    headers = _login(mesh)
    rest = mesh.rest()
    model = rest.request(
        "POST",
        "/v1/models",
        {"displayName": "m", "workbook": base64.b64encode(demo_workbook()).decode()},
        headers,
    )
    assert model.status == 200, model.text
    created = rest.request(
        "POST",
        "/v1/simulations",
        {"modelId": model.body["id"], "trials": 10000, "requestId": str(uuid.uuid4())},
        headers,
    )
    rest.close()
    assert created.status == 200, created.text
    services = {"alea-edge", "alea-simulation", "alea-identity"}
    trace = _trace(receiver, "CreateSimulation", services, WORKER_SPANS)
    _assert_one_tree(trace)
    assert any(s.name.endswith("ReserveTrials") for s in trace if s.service == "alea-identity")
    # The worker's spans hang under the CreateSimulation that queued the work, checkpoints
    # under their segment.
    (create,) = [s for s in trace if s.name.endswith("/CreateSimulation") and s.kind == SERVER]
    by_name = {s.name: s for s in trace}
    assert by_name["simulation.queue_wait"].parent_span_id == create.span_id
    assert by_name["simulation.segment"].parent_span_id == create.span_id
    segments = {s.span_id for s in trace if s.name == "simulation.segment"}
    checkpoints = [s for s in trace if s.name == "simulation.checkpoint"]
    assert checkpoints and all(c.parent_span_id in segments for c in checkpoints)


def test_a_rest_create_model_from_a_file_is_one_trace_through_edge_simulation_and_files(
    traced: tuple[Mesh, OtlpReceiver],
) -> None:
    mesh, receiver = traced
    headers = _login(mesh)
    workbook = demo_workbook()
    with mesh.channel() as channel:
        uploaded = files_pb2_grpc.FilesServiceStub(channel).Upload(
            iter(
                [
                    files_pb2.UploadRequest(
                        metadata=files_pb2.FileMetadata(
                            file_name="model.xlsx", size_bytes=len(workbook)
                        )
                    ),
                    files_pb2.UploadRequest(chunk=workbook),
                ]
            ),
            metadata=tuple(headers.items()),
            timeout=60,
        )
    rest = mesh.rest()
    model = rest.request("POST", "/v1/models", {"displayName": "f", "fileId": uploaded.id}, headers)
    rest.close()
    assert model.status == 200, model.text
    trace = _trace(receiver, "CreateModel", {"alea-edge", "alea-simulation", "alea-files"})
    _assert_one_tree(trace)
    assert any(s.name.endswith("/Download") for s in trace if s.service == "alea-files")


def test_rpc_and_worker_metrics_are_exported_by_otlp(traced: tuple[Mesh, OtlpReceiver]) -> None:
    _, receiver = traced
    expected = {
        ("alea-identity", "rpc.server.duration"),
        ("alea-simulation", "alea.simulation.trials"),
        ("alea-simulation", "alea.simulation.workers"),
        ("alea-simulation", "alea.simulation.workers.busy"),
        ("alea-simulation", "alea.simulation.queue.depth"),
    }
    deadline = time.monotonic() + 15
    while not expected <= receiver.metrics():
        assert time.monotonic() < deadline, expected - receiver.metrics()
        time.sleep(0.25)


def test_the_health_port_serves_a_prometheus_scrape(traced: tuple[Mesh, OtlpReceiver]) -> None:
    mesh, _ = traced
    port = mesh.layout.health_port("simulation")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        assert reply.status == 200
        assert reply.headers["Content-Type"].startswith("text/plain")
        text = reply.read().decode()
    for metric in ("rpc_server_duration", "alea_simulation_workers", "alea_simulation_queue_depth"):
        assert f"\n{metric}" in text, metric
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/nonesuch", timeout=10)
    assert missing.value.code == 404
    # The same port still answers gRPC health checks (the mesh's readiness used it too).
    assert service_health(port) == "SERVING"
