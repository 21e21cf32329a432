"""The identity service as a real process, once per session, on SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from alea.identity.v1 import identity_pb2 as pb
from alea.identity.v1 import identity_pb2_grpc

from services.runtime.clients import channel_credentials
from tests.support.postgres import postgres  # noqa: F401  (session fixture)
from tests.support.services import ServiceProcess, start_service

PASSWORD = "correct horse battery staple"


@dataclass
class Identity:
    """A running identity process and its database URL."""

    process: ServiceProcess
    home: Path
    database_url: str

    def stub(self, identity: str = "edge") -> identity_pb2_grpc.IdentityServiceStub:
        """A stub over mTLS presenting ``spiffe://alea/<identity>``."""
        channel = grpc.secure_channel(
            self.process.address, channel_credentials(self.home / "pki", identity)
        )
        return identity_pb2_grpc.IdentityServiceStub(channel)

    def register(self, **changes: str) -> pb.RegisterResponse:
        """A fresh tenant with its admin."""
        fields = {
            "tenant_display_name": "Acme",
            "email": f"{uuid.uuid4().hex}@example.com",
            "password": PASSWORD,
            "display_name": "Ann Admin",
            **changes,
        }
        return self.stub().Register(pb.RegisterRequest(**fields))


def auth(response_or_token) -> tuple[tuple[str, str]]:
    """Bearer metadata for a Register/Login response or a raw token."""
    token = getattr(getattr(response_or_token, "tokens", None), "access_token", response_or_token)
    return (("authorization", f"Bearer {token}"),)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def identity(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[Identity]:
    home = Path(tmp_path_factory.mktemp(f"identity-{request.param}"))
    env = {}
    if request.param == "postgresql":
        env["ALEA_DATABASE_URL"] = request.getfixturevalue("postgres").create_database("identity")
    process = start_service("identity", home, env)
    url = env.get("ALEA_DATABASE_URL", f"sqlite+aiosqlite:///{home}/data/identity.db")
    yield Identity(process, home, url)
    assert process.stop() == 0, process.log()
