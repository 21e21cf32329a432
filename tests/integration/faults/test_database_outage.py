"""A database outage, with a real PostgreSQL stopped and started under a real identity process
and a real Envoy in front of it.

While the server is down, calls that need the database are UNAVAILABLE over gRPC and 503
with ``{"code": 14}`` over REST (the codes clients retry on), with no internals in the
message, and the service's health is NOT_SERVING (its liveness stays SERVING: nothing
should restart it); once the database is back the same process is SERVING and answers
again, without a restart.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from alea.identity.v1 import identity_pb2 as pb
from alea.identity.v1 import identity_pb2_grpc
from grpc_health.v1 import health_pb2

from services.cli.edge_client import RestClient
from services.cli.mesh_procs import MeshLayout, start_edge, stop_mesh
from services.runtime.clients import channel_credentials
from services.runtime.server import LIVENESS
from tests.support.fuzz import leaked
from tests.support.postgres import PG_BIN, PostgresServer, running_postgres
from tests.support.services import ServiceProcess, free_port, health_status, start_service

pytestmark = pytest.mark.integration

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
LOGIN = {"email": "nobody@example.com", "password": "x" * 12}


@dataclass
class Subject:
    """Identity on its own PostgreSQL, and an edge in front of it."""

    process: ServiceProcess
    home: Path
    edge: MeshLayout


@pytest.fixture
def outage_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL of this test's own: it is stopped and started on purpose."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL binaries not found in {PG_BIN}")
    with running_postgres() as server:
        yield server


@pytest.fixture
def subject(outage_postgres: PostgresServer) -> Iterator[Subject]:
    home = Path(tempfile.mkdtemp(prefix="alea-outage-"))
    url = outage_postgres.create_database("alea_identity")
    process = start_service("identity", home, {"ALEA_DATABASE_URL": url})
    edge = MeshLayout(
        home=home,
        services={"identity": process.port},
        health_ports={"identity": process.health_port},
        edge_port=free_port(),
        admin_port=free_port(),
    )
    edge.run_dir.mkdir()
    try:
        start_edge(edge)
        yield Subject(process, home, edge)
    finally:
        stop_mesh(edge, names=["envoy"])
        process.stop()


def _login(stub: identity_pb2_grpc.IdentityServiceStub) -> grpc.StatusCode:
    try:
        stub.Login(pb.LoginRequest(**LOGIN), timeout=30)
    except grpc.RpcError as error:
        assert leaked(error.details() or "") is None, error.details()
        return error.code()
    return grpc.StatusCode.OK


def _rest_login(rest: RestClient) -> tuple[int, int | None]:
    reply = rest.request("POST", "/v1/auth:login", LOGIN)
    assert leaked(reply.text) is None, reply.text
    return reply.status, reply.body.get("code") if isinstance(reply.body, dict) else None


def _health_becomes(port: int, wanted: int, seconds: float = 15.0) -> list[int | None]:
    """Health statuses seen until ``wanted`` (bounded in time); the last one is ``wanted``
    unless it never came."""
    seen: list[int | None] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen.append(health_status(port))
        if seen[-1] == wanted:
            break
        time.sleep(0.1)
    return seen


def test_database_down_is_unavailable_and_back_without_a_restart(
    outage_postgres: PostgresServer, subject: Subject
) -> None:
    process = subject.process
    credentials = channel_credentials(subject.home / "pki", "edge")
    channel = grpc.secure_channel(process.address, credentials)
    stub = identity_pb2_grpc.IdentityServiceStub(channel)
    rest = RestClient.for_pki("localhost", subject.edge.edge_port, subject.home / "pki")
    assert _login(stub) == grpc.StatusCode.UNAUTHENTICATED  # the database answered: no user
    assert _rest_login(rest) == (401, 16)
    assert health_status(process.health_port) == SERVING

    outage_postgres.stop()
    during = [_login(stub) for _ in range(3)]
    during_rest = [_rest_login(rest) for _ in range(3)]
    health_during = _health_becomes(process.health_port, NOT_SERVING)
    liveness_during = health_status(process.health_port, LIVENESS)
    outage_postgres.start()
    health_after = _health_becomes(process.health_port, SERVING)
    after = _login(stub)
    after_rest = _rest_login(rest)
    channel.close()
    rest.close()

    assert during == [grpc.StatusCode.UNAVAILABLE] * 3
    assert during_rest == [(503, 14)] * 3
    assert health_during[-1] == NOT_SERVING, health_during
    assert liveness_during == SERVING
    assert health_after[-1] == SERVING, health_after
    assert after == grpc.StatusCode.UNAUTHENTICATED
    assert after_rest == (401, 16)
    assert process.process.poll() is None  # the same process throughout
