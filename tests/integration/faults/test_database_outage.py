"""A database outage, with a real PostgreSQL stopped and started under a real identity process.

While the server is down, calls that need the database are UNAVAILABLE (the code clients
retry on), with no internals in the message; once it is back the same process serves again,
without a restart.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from alea.identity.v1 import identity_pb2 as pb
from alea.identity.v1 import identity_pb2_grpc

from services.runtime.clients import channel_credentials
from tests.support.fuzz import leaked
from tests.support.postgres import PG_BIN, PostgresServer, running_postgres
from tests.support.services import ServiceProcess, start_service

pytestmark = pytest.mark.integration


@pytest.fixture
def outage_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL of this test's own: it is stopped and started on purpose."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL binaries not found in {PG_BIN}")
    with running_postgres() as server:
        yield server


@pytest.fixture
def identity(outage_postgres: PostgresServer) -> Iterator[tuple[ServiceProcess, Path]]:
    home = Path(tempfile.mkdtemp(prefix="alea-outage-"))
    url = outage_postgres.create_database("alea_identity")
    process = start_service("identity", home, {"ALEA_DATABASE_URL": url})
    yield process, home
    process.stop()


def _login(stub: identity_pb2_grpc.IdentityServiceStub) -> grpc.StatusCode:
    try:
        stub.Login(pb.LoginRequest(email="nobody@example.com", password="x" * 12), timeout=30)
    except grpc.RpcError as error:
        assert leaked(error.details() or "") is None, error.details()
        return error.code()
    return grpc.StatusCode.OK


def test_database_down_is_unavailable_and_back_without_a_restart(
    outage_postgres: PostgresServer, identity: tuple[ServiceProcess, Path]
) -> None:
    process, home = identity
    channel = grpc.secure_channel(process.address, channel_credentials(home / "pki", "client"))
    stub = identity_pb2_grpc.IdentityServiceStub(channel)
    assert _login(stub) == grpc.StatusCode.UNAUTHENTICATED  # the database answered: no user

    outage_postgres.stop()
    during = [_login(stub) for _ in range(3)]
    outage_postgres.start()
    after = _login(stub)
    channel.close()

    assert during == [grpc.StatusCode.UNAVAILABLE] * 3
    assert after == grpc.StatusCode.UNAUTHENTICATED
    assert process.process.poll() is None  # the same process throughout
