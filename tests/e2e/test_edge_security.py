"""Security refusals at and behind the edge, over gRPC and REST; every one must hold.

mTLS: no client certificate, one from another CA, an expired one (handshake refused).
Tokens: missing, expired, wrongly signed, ``alg: none`` (UNAUTHENTICATED / 401). Roles: a
viewer creating an API key (PERMISSION_DENIED / 403). Tenancy: tenant A reading tenant B's
user (NOT_FOUND / 404). A revoked API key. Internal RPCs are not routed at the edge. Who
may call a service: the client certificate only through the edge, peers only as their
``PEERS`` row says, every port on loopback.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import ssl
import time
import uuid
from pathlib import Path

import grpc
import jwt
import pytest
from alea.access.v1 import access_pb2
from alea.files.v1 import files_pb2, files_pb2_grpc
from alea.identity.v1 import identity_pb2, identity_pb2_grpc
from alea.simulation.v1 import simulation_pb2, simulation_pb2_grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.cli.edge_client import RestClient, edge_channel, ssl_context
from services.identity.store import IdentityStore
from services.identity.tokens import SigningKeys, load_kek
from services.runtime.access import PEERS, SERVICES
from services.runtime.auth import API_KEY_CACHE_SECONDS, AUDIENCE, ISSUER
from services.runtime.db import Database
from tests.e2e.conftest import Account, Tenants
from tests.support.mesh import Mesh
from tests.support.pki import expired_cert, foreign_cert
from tests.support.services import listening_addresses

pytestmark = pytest.mark.integration

# --- mTLS at the edge -------------------------------------------------------------------


def _client_certs(mesh: Mesh, tmp_path: Path) -> dict[str, tuple[Path, Path] | None]:
    return {
        "no certificate": None,
        "another CA": foreign_cert(tmp_path),
        "expired": expired_cert(mesh.pki, tmp_path),
    }


@pytest.mark.parametrize("case", ["no certificate", "another CA", "expired"])
def test_edge_refuses_grpc_without_a_valid_client_certificate(
    mesh: Mesh, tmp_path: Path, case: str
) -> None:
    cert = _client_certs(mesh, tmp_path)[case]
    credentials = grpc.ssl_channel_credentials(
        root_certificates=(mesh.pki / "ca.crt").read_bytes(),
        private_key=cert[1].read_bytes() if cert else None,
        certificate_chain=cert[0].read_bytes() if cert else None,
    )
    with grpc.secure_channel(mesh.edge_address, credentials) as channel:
        stub = identity_pb2_grpc.IdentityServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.GetJwks(identity_pb2.GetJwksRequest(), timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("case", ["no certificate", "another CA", "expired"])
def test_edge_refuses_rest_without_a_valid_client_certificate(
    mesh: Mesh, tmp_path: Path, case: str
) -> None:
    cert = _client_certs(mesh, tmp_path)[case]
    context = ssl_context(mesh.pki / "ca.crt", *(cert or (None, None)))
    client = RestClient("localhost", mesh.layout.edge_port, context)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        client.request("GET", "/v1/jwks")
    client.close()


def test_the_same_call_with_the_client_certificate_succeeds(rest: RestClient) -> None:
    # The control for the refusals above: only the certificate differs.
    assert rest.request("GET", "/v1/jwks").status == 200


# --- tokens -----------------------------------------------------------------------------


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _claims(account: Account) -> dict[str, object]:
    now = int(dt.datetime.now(dt.UTC).timestamp())
    return {
        "sub": account.user_id,
        "tid": account.tenant_id,
        "role": "admin",
        "iat": now,
        "exp": now + 600,
        "iss": ISSUER,
        "aud": AUDIENCE,
    }


def _expired_token(mesh: Mesh, account: Account) -> str:
    """A token signed by identity's real key, whose lifetime ended ten minutes ago."""

    async def mint() -> str:
        template = mesh.layout.database_url_template
        url = (
            template.format(service="identity")
            if template
            else f"sqlite+aiosqlite:///{mesh.layout.home / 'data' / 'identity.db'}"
        )
        db = Database(url)
        await db.open()
        try:
            keys = SigningKeys(
                IdentityStore(db), load_kek(mesh.pki), access_ttl=dt.timedelta(minutes=-10)
            )
            token = await keys.issue(account.user_id, account.tenant_id, "admin", "e2e")
        finally:
            await db.close()
        return token.token

    return asyncio.run(mint())


def _bad_tokens(mesh: Mesh, account: Account) -> dict[str, str | None]:
    kid = jwt.get_unverified_header(account.token)["kid"]
    forged = jwt.encode(
        _claims(account), Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": kid}
    )
    return {
        "missing": None,
        "expired": _expired_token(mesh, account),
        "wrongly signed": forged,
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{_b64(_claims(account))}.",
        "garbage": "not-a-jwt",
    }


TOKEN_CASES = ["missing", "expired", "wrongly signed", "alg none", "garbage"]


@pytest.mark.parametrize("case", TOKEN_CASES)
def test_bad_tokens_are_unauthenticated_over_grpc(
    mesh: Mesh, identity: identity_pb2_grpc.IdentityServiceStub, tenants: Tenants, case: str
) -> None:
    token = _bad_tokens(mesh, tenants.a)[case]
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    with pytest.raises(grpc.RpcError) as caught:
        identity.GetUser(
            identity_pb2.GetUserRequest(user_id=tenants.a.user_id), metadata=metadata, timeout=30
        )
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("case", TOKEN_CASES)
def test_bad_tokens_are_401_over_rest(
    mesh: Mesh, rest: RestClient, tenants: Tenants, case: str
) -> None:
    token = _bad_tokens(mesh, tenants.a)[case]
    headers = {"authorization": f"Bearer {token}"} if token else {}
    reply = rest.request("GET", f"/v1/users/{tenants.a.user_id}", headers=headers)
    assert reply.status == 401, reply.text
    assert reply.body["code"] == grpc.StatusCode.UNAUTHENTICATED.value[0]


def test_expired_token_is_otherwise_valid(mesh: Mesh, tenants: Tenants) -> None:
    # The expired token is refused for its expiry alone: same key, same claims layout.
    header = jwt.get_unverified_header(_expired_token(mesh, tenants.a))
    assert header["kid"] == jwt.get_unverified_header(tenants.a.token)["kid"]


# --- roles, tenancy, API keys -----------------------------------------------------------


def test_viewer_cannot_create_api_keys(
    identity: identity_pb2_grpc.IdentityServiceStub, rest: RestClient, tenants: Tenants
) -> None:
    request = identity_pb2.CreateApiKeyRequest(
        display_name="nope", role=access_pb2.ROLE_VIEWER, request_id=str(uuid.uuid4())
    )
    with pytest.raises(grpc.RpcError) as caught:
        identity.CreateApiKey(request, metadata=tenants.viewer.metadata, timeout=30)
    body = {"displayName": "nope", "role": "ROLE_VIEWER", "requestId": str(uuid.uuid4())}
    reply = rest.request("POST", "/v1/apiKeys", body, headers=tenants.viewer.headers)

    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert reply.status == 403, reply.text


def test_tenant_a_cannot_see_tenant_b_users(
    identity: identity_pb2_grpc.IdentityServiceStub, rest: RestClient, tenants: Tenants
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        identity.GetUser(
            identity_pb2.GetUserRequest(user_id=tenants.b.user_id),
            metadata=tenants.a.metadata,
            timeout=30,
        )
    reply = rest.request("GET", f"/v1/users/{tenants.b.user_id}", headers=tenants.a.headers)
    own = rest.request("GET", f"/v1/users/{tenants.b.user_id}", headers=tenants.b.headers)

    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert reply.status == 404, reply.text
    assert own.status == 200  # the user exists; only the other tenant cannot see it


def test_revoked_api_key_is_refused(
    identity: identity_pb2_grpc.IdentityServiceStub, rest: RestClient, tenants: Tenants
) -> None:
    created = identity.CreateApiKey(
        identity_pb2.CreateApiKeyRequest(
            display_name="short-lived", role=access_pb2.ROLE_VIEWER, request_id=str(uuid.uuid4())
        ),
        metadata=tenants.a.metadata,
        timeout=30,
    )
    identity.RevokeApiKey(
        identity_pb2.RevokeApiKeyRequest(api_key_id=created.api_key.id),
        metadata=tenants.a.metadata,
        timeout=30,
    )

    with pytest.raises(grpc.RpcError) as caught:
        identity.GetUser(
            identity_pb2.GetUserRequest(user_id=tenants.a.user_id),
            metadata=(("x-api-key", created.secret),),
            timeout=30,
        )
    reply = rest.request(
        "GET", f"/v1/users/{tenants.a.user_id}", headers={"x-api-key": created.secret}
    )

    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert reply.status == 401, reply.text


def test_revoked_api_key_is_refused_by_every_service_within_the_stated_bound(
    identity: identity_pb2_grpc.IdentityServiceStub, rest: RestClient, tenants: Tenants
) -> None:
    created = identity.CreateApiKey(
        identity_pb2.CreateApiKeyRequest(
            display_name="revoked-everywhere",
            role=access_pb2.ROLE_VIEWER,
            request_id=str(uuid.uuid4()),
        ),
        metadata=tenants.a.metadata,
        timeout=30,
    )
    key = {"x-api-key": created.secret}
    # One read per service, so every service has the key in its cache before the revocation.
    reads = [f"/v1/users/{tenants.a.user_id}", "/v1/files?pageSize=1", "/v1/simulations?pageSize=1"]
    assert [rest.request("GET", path, headers=key).status for path in reads] == [200] * 3
    identity.RevokeApiKey(
        identity_pb2.RevokeApiKeyRequest(api_key_id=created.api_key.id),
        metadata=tenants.a.metadata,
        timeout=30,
    )
    assert API_KEY_CACHE_SECONDS <= 1.0  # the bound the README promises
    time.sleep(API_KEY_CACHE_SECONDS + 0.2)

    assert [rest.request("GET", path, headers=key).status for path in reads] == [401] * 3


# --- internal RPCs ----------------------------------------------------------------------


def test_internal_rpcs_are_not_routed_at_the_edge(mesh: Mesh, tenants: Tenants) -> None:
    with edge_channel(mesh.edge_address, mesh.pki) as channel:
        stub = identity_pb2_grpc.IdentityServiceStub(channel)
        with pytest.raises(grpc.RpcError) as verify:
            stub.VerifyApiKey(identity_pb2.VerifyApiKeyRequest(secret="x"), timeout=10)
        with pytest.raises(grpc.RpcError) as reserve:
            stub.ReserveTrials(
                identity_pb2.ReserveTrialsRequest(), metadata=tenants.a.metadata, timeout=10
            )
    assert verify.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert reserve.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_internal_rpcs_have_no_rest_path(rest: RestClient) -> None:
    reply = rest.request("POST", "/alea.identity.v1.IdentityService/VerifyApiKey", {"secret": "x"})
    assert reply.status == 404, reply.text


# --- who may call a service -------------------------------------------------------------


def _user_reads(account: Account) -> dict[str, tuple[object, str]]:
    """One user read per service, as (bound gRPC call on a channel, REST path)."""
    return {
        "identity": (
            lambda ch: identity_pb2_grpc.IdentityServiceStub(ch).ListUsers(
                identity_pb2.ListUsersRequest(), metadata=account.metadata, timeout=30
            ),
            "/v1/users",
        ),
        "files": (
            lambda ch: files_pb2_grpc.FilesServiceStub(ch).ListFiles(
                files_pb2.ListFilesRequest(), metadata=account.metadata, timeout=30
            ),
            "/v1/files",
        ),
        "simulation": (
            lambda ch: simulation_pb2_grpc.SimulationServiceStub(ch).ListSimulations(
                simulation_pb2.ListSimulationsRequest(), metadata=account.metadata, timeout=30
            ),
            "/v1/simulations",
        ),
    }


def test_the_client_certificate_reaches_services_only_through_the_edge(
    mesh: Mesh, rest: RestClient, tenants: Tenants
) -> None:
    for service, (read, path) in _user_reads(tenants.a).items():
        with mesh.direct_channel(service, "client") as channel:
            with pytest.raises(grpc.RpcError) as direct:
                read(channel)
            with pytest.raises(grpc.RpcError) as health:
                health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert direct.value.code() == grpc.StatusCode.PERMISSION_DENIED, service
        assert "through the edge" in (direct.value.details() or ""), service
        assert health.value.code() == grpc.StatusCode.PERMISSION_DENIED, service
        with mesh.channel("client") as channel:
            read(channel)  # the same call through the edge
        reply = rest.request("GET", path, headers=tenants.a.headers)
        assert reply.status == 200, (service, reply.text)


def test_services_refuse_peers_their_row_does_not_name(mesh: Mesh, tenants: Tenants) -> None:
    for service, (read, _) in _user_reads(tenants.a).items():
        strangers = {"edge", *SERVICES} - PEERS[service]
        for stranger in sorted(strangers):
            with (
                mesh.direct_channel(service, stranger) as channel,
                pytest.raises(grpc.RpcError) as caught,
            ):
                read(channel)  # even with a user's valid token
            assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED, (service, stranger)


def test_every_service_listens_on_loopback_only(mesh: Mesh) -> None:
    for service, port in mesh.layout.services.items():
        for listening in (port, mesh.layout.health_port(service)):
            addresses = listening_addresses(listening)
            assert addresses and addresses <= {"127.0.0.1", "::1"}, (service, addresses)


def test_edge_identity_cannot_call_internal_rpcs_directly(mesh: Mesh) -> None:
    # Even if a route were added by mistake, identity refuses the edge as a peer for them.
    with edge_channel(f"localhost:{mesh.layout.services['identity']}", mesh.pki, "edge") as ch:
        stub = identity_pb2_grpc.IdentityServiceStub(ch)
        with pytest.raises(grpc.RpcError) as caught:
            stub.VerifyApiKey(identity_pb2.VerifyApiKeyRequest(secret="x"), timeout=10)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
