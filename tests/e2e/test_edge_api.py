"""Through Envoy over native gRPC and REST: register, log in, authenticated calls, request ids.

Starts the whole mesh (every implemented service and Envoy as processes) on SQLite and on
PostgreSQL.
"""

from __future__ import annotations

import uuid

import pytest
from alea.access.v1 import access_pb2
from alea.identity.v1 import identity_pb2, identity_pb2_grpc

from services.cli import mesh_demo
from services.cli.edge_client import RestClient
from tests.e2e.conftest import PASSWORD, Tenants
from tests.support.mesh import Mesh

pytestmark = pytest.mark.integration


def test_grpc_register_login_and_read_own_user(
    identity: identity_pb2_grpc.IdentityServiceStub,
) -> None:
    email = f"g-{uuid.uuid4().hex[:8]}@example.com"
    registered = identity.Register(
        identity_pb2.RegisterRequest(
            tenant_display_name="Acme",
            email=email,
            password=PASSWORD,
            display_name="Ada",
            request_id=str(uuid.uuid4()),
        ),
        timeout=30,
    )
    login = identity.Login(identity_pb2.LoginRequest(email=email, password=PASSWORD), timeout=30)
    auth = (("authorization", f"Bearer {login.tokens.access_token}"),)

    user, call = identity.GetUser.with_call(
        identity_pb2.GetUserRequest(user_id=registered.user.id), metadata=auth, timeout=30
    )
    listed = identity.ListUsers(
        identity_pb2.ListUsersRequest(page_size=10), metadata=auth, timeout=30
    )

    assert (user.email, user.tenant_id) == (email, registered.tenant.id)
    assert [u.id for u in listed.users] == [registered.user.id]
    # Envoy made a request id and the response carries it back.
    assert uuid.UUID(dict(call.initial_metadata())["x-request-id"])


def test_rest_register_login_and_read_own_user(rest: RestClient) -> None:
    email = f"r-{uuid.uuid4().hex[:8]}@example.com"
    registered = rest.request(
        "POST",
        "/v1/auth:register",
        {
            "tenantDisplayName": "Acme",
            "email": email,
            "password": PASSWORD,
            "displayName": "Grace",
            "requestId": str(uuid.uuid4()),
        },
    )
    assert registered.status == 200, registered.text
    login = rest.request("POST", "/v1/auth:login", {"email": email, "password": PASSWORD})
    assert login.status == 200, login.text
    auth = {"authorization": f"Bearer {login.body['tokens']['accessToken']}"}
    user_id = registered.body["user"]["id"]

    user = rest.request("GET", f"/v1/users/{user_id}", headers=auth)
    listed = rest.request("GET", "/v1/users?pageSize=10", headers=auth)

    assert user.status == 200, user.text
    assert (user.body["email"], user.body["role"]) == (email, "ROLE_ADMIN")
    assert [u["id"] for u in listed.body["users"]] == [user_id]
    assert uuid.UUID(user.headers["x-request-id"])


def test_client_request_id_is_kept(rest: RestClient, tenants: Tenants) -> None:
    request_id = str(uuid.uuid4())
    reply = rest.request(
        "GET",
        f"/v1/users/{tenants.a.user_id}",
        headers={**tenants.a.headers, "x-request-id": request_id},
    )
    assert reply.status == 200, reply.text
    assert reply.headers["x-request-id"] == request_id


def test_public_jwks_over_rest(rest: RestClient) -> None:
    reply = rest.request("GET", "/.well-known/jwks.json")
    assert reply.status == 200, reply.text
    assert {k["alg"] for k in reply.body["keys"]} == {"EdDSA"}


def test_api_key_authenticates_over_both_transports(
    identity: identity_pb2_grpc.IdentityServiceStub, rest: RestClient, tenants: Tenants
) -> None:
    created = identity.CreateApiKey(
        identity_pb2.CreateApiKeyRequest(
            display_name="ci", role=access_pb2.ROLE_VIEWER, request_id=str(uuid.uuid4())
        ),
        metadata=tenants.a.metadata,
        timeout=30,
    )
    key = (("x-api-key", created.secret),)

    user = identity.GetUser(
        identity_pb2.GetUserRequest(user_id=tenants.a.user_id), metadata=key, timeout=30
    )
    reply = rest.request(
        "GET", f"/v1/users/{tenants.a.user_id}", headers={"x-api-key": created.secret}
    )

    assert user.id == tenants.a.user_id
    assert reply.status == 200 and reply.body["id"] == tenants.a.user_id


def test_demo_runs_against_the_whole_mesh(mesh: Mesh, capsys: pytest.CaptureFixture[str]) -> None:
    assert mesh_demo.run(mesh.layout) == 0, capsys.readouterr()
    assert " 0 skipped" in capsys.readouterr().out
