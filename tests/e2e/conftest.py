"""End-to-end fixtures: the whole mesh (real services and Envoy) and a few tenants in it."""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest
from alea.access.v1 import access_pb2
from alea.identity.v1 import identity_pb2, identity_pb2_grpc
from alea.simulation.v1 import simulation_pb2, simulation_pb2_grpc

from services.cli.edge_client import RestClient
from tests.engine import models
from tests.support.fuzz import CASES
from tests.support.mesh import Mesh, mesh  # noqa: F401  (session fixture)
from tests.support.postgres import postgres  # noqa: F401  (session fixture)

PASSWORD = "e2e password 0123456"
OPERATOR_EMAIL = "operator@alea.test"


@pytest.fixture(scope="session", autouse=True)
def mesh_environment() -> Iterator[None]:
    """What the mesh's services read at start-up for these tests: one platform operator
    (registered by the ``operator`` fixture) and API-call counts written every second."""
    wanted = {"ALEA_PLATFORM_ADMINS": OPERATOR_EMAIL, "ALEA_USAGE_FLUSH_SECONDS": "1"}
    before = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    yield
    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@dataclass(frozen=True)
class Account:
    """A user with a fresh access token."""

    tenant_id: str
    user_id: str
    email: str
    token: str

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),)

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}


@dataclass(frozen=True)
class Tenants:
    """Two tenants: ``a`` (admin) with a ``viewer``, and ``b`` (admin)."""

    a: Account
    viewer: Account
    b: Account


@pytest.fixture(scope="session")
def edge(mesh: Mesh) -> Iterator[grpc.Channel]:  # noqa: F811
    """A gRPC channel to the edge with the client certificate."""
    with mesh.channel() as channel:
        yield channel


@pytest.fixture(scope="session")
def identity(edge: grpc.Channel) -> identity_pb2_grpc.IdentityServiceStub:
    """The identity service, through the edge."""
    return identity_pb2_grpc.IdentityServiceStub(edge)


@pytest.fixture
def rest(mesh: Mesh) -> Iterator[RestClient]:  # noqa: F811
    """A REST client of the edge with the client certificate."""
    client = mesh.rest()
    yield client
    client.close()


def register(identity: identity_pb2_grpc.IdentityServiceStub, label: str) -> Account:
    """Register a new tenant and return its first admin."""
    email = f"{label}-{uuid.uuid4().hex[:8]}@example.com"
    reply = identity.Register(
        identity_pb2.RegisterRequest(
            tenant_display_name=f"Tenant {label}",
            email=email,
            password=PASSWORD,
            display_name=label,
            request_id=str(uuid.uuid4()),
        ),
        timeout=30,
    )
    return Account(reply.tenant.id, reply.user.id, email, reply.tokens.access_token)


def add_user(
    identity: identity_pb2_grpc.IdentityServiceStub, admin: Account, role: int
) -> tuple[identity_pb2.User, identity_pb2.Tokens]:
    """A new user of ``admin``'s tenant with ``role``, and the tokens of their login."""
    email = f"user-{uuid.uuid4().hex[:8]}@example.com"
    user = identity.CreateUser(
        identity_pb2.CreateUserRequest(
            email=email,
            password=PASSWORD,
            display_name="User",
            role=role,
        ),
        metadata=admin.metadata,
        timeout=30,
    )
    login = identity.Login(identity_pb2.LoginRequest(email=email, password=PASSWORD), timeout=30)
    return user, login.tokens


def small_model(edge: grpc.Channel, owner: Account) -> simulation_pb2.Model:
    """A new model of ``owner``'s from the small test workbook (three inputs, one output)."""
    workbook = io.BytesIO()
    models.small().save(workbook)
    return simulation_pb2_grpc.SimulationServiceStub(edge).CreateModel(
        simulation_pb2.CreateModelRequest(display_name="m", workbook=workbook.getvalue()),
        metadata=owner.metadata,
        timeout=60,
    )


@pytest.fixture(scope="session")
def tenants(identity: identity_pb2_grpc.IdentityServiceStub) -> Tenants:
    """Tenant A (admin + viewer) and tenant B, registered once per mesh."""
    a, b = register(identity, "a"), register(identity, "b")
    viewer, tokens = add_user(identity, a, access_pb2.ROLE_VIEWER)
    return Tenants(a, Account(a.tenant_id, viewer.id, viewer.email, tokens.access_token), b)


@pytest.fixture(scope="session")
def operator(identity: identity_pb2_grpc.IdentityServiceStub) -> Account:
    """The platform operator (ALEA_PLATFORM_ADMINS), admin of a tenant of their own."""
    reply = identity.Register(
        identity_pb2.RegisterRequest(
            tenant_display_name="Platform",
            email=OPERATOR_EMAIL,
            password=PASSWORD,
            display_name="Operator",
            request_id=str(uuid.uuid4()),
        ),
        timeout=30,
    )
    assert reply.user.platform
    return Account(reply.tenant.id, reply.user.id, OPERATOR_EMAIL, reply.tokens.access_token)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """How many generated cases each fuzzer sent per service (see tests/support/fuzz.py)."""
    if CASES:
        terminalreporter.section("generated fuzz cases")
        for name, count in sorted(CASES.items()):
            terminalreporter.write_line(f"{name}: {count}")
