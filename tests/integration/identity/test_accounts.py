"""Register, Login, Refresh, Logout, GetTenant and GetJwks against the real process."""

from __future__ import annotations

import uuid

import grpc
import jwt
import pytest
from alea.access.v1 import access_pb2
from alea.identity.v1 import identity_pb2 as pb
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from tests.integration.identity.conftest import PASSWORD, Identity, auth

pytestmark = pytest.mark.integration


def code_of(call, *args, **kwargs) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as raised:
        call(*args, **kwargs)
    return raised.value.code()


def test_register_creates_a_tenant_and_signs_its_admin_in(identity: Identity) -> None:
    registered = identity.register(tenant_display_name="Globex")
    assert registered.tenant.display_name == "Globex"
    assert registered.tenant.tier == pb.TIER_FREE
    assert registered.user.role == access_pb2.ROLE_ADMIN
    assert registered.user.tenant_id == registered.tenant.id
    assert registered.tokens.token_type == "Bearer"
    assert registered.tokens.expires_in == 900
    tenant = identity.stub().GetTenant(
        pb.GetTenantRequest(tenant_id=registered.tenant.id), metadata=auth(registered)
    )
    assert tenant.id == registered.tenant.id


def test_access_tokens_are_eddsa_with_a_published_kid(identity: Identity) -> None:
    registered = identity.register()
    header = jwt.get_unverified_header(registered.tokens.access_token)
    keys = identity.stub().GetJwks(pb.GetJwksRequest()).keys
    (key,) = [k for k in keys if k.kid == header["kid"]]
    assert (header["alg"], key.kty, key.crv, key.use) == ("EdDSA", "OKP", "Ed25519", "sig")
    public = jwt.PyJWK({"kty": key.kty, "crv": key.crv, "x": key.x}).key
    claims = jwt.decode(
        registered.tokens.access_token, public, ["EdDSA"], audience="alea", issuer="alea-identity"
    )
    assert (claims["sub"], claims["tid"], claims["role"]) == (
        registered.user.id,
        registered.tenant.id,
        "admin",
    )
    assert claims["exp"] - claims["iat"] == 900


def test_bad_input_names_the_field(identity: Identity) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        identity.register(email="not-an-email")
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    (detail,) = rpc_status.from_call(raised.value).details
    bad = error_details_pb2.BadRequest()
    assert detail.Unpack(bad)
    assert [v.field for v in bad.field_violations] == ["email"]


def test_register_is_idempotent_by_request_id(identity: Identity) -> None:
    request_id = str(uuid.uuid4())
    email = f"{uuid.uuid4().hex}@example.com"
    first = identity.register(email=email, request_id=request_id)
    again = identity.register(email=email, request_id=request_id)
    assert (again.tenant.id, again.user.id) == (first.tenant.id, first.user.id)
    assert again.tokens.refresh_token != first.tokens.refresh_token
    with pytest.raises(grpc.RpcError) as raised:
        identity.register(email=email, request_id=request_id, tenant_display_name="Other")
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "request_id" in raised.value.details()


def test_an_email_registers_once(identity: Identity) -> None:
    email = f"{uuid.uuid4().hex}@example.com"
    identity.register(email=email)
    assert code_of(identity.register, email=email.upper()) == grpc.StatusCode.ALREADY_EXISTS


def test_login_checks_the_password(identity: Identity) -> None:
    registered = identity.register()
    stub = identity.stub()
    login = stub.Login(pb.LoginRequest(email=registered.user.email, password=PASSWORD))
    assert login.user.id == registered.user.id
    assert login.user.HasField("last_login_time")
    wrong = pb.LoginRequest(email=registered.user.email, password=PASSWORD + "!")
    assert code_of(stub.Login, wrong) == grpc.StatusCode.UNAUTHENTICATED
    nobody = pb.LoginRequest(email="nobody@example.com", password=PASSWORD)
    assert code_of(stub.Login, nobody) == grpc.StatusCode.UNAUTHENTICATED


def test_refresh_rotates_and_reuse_ends_the_session(identity: Identity) -> None:
    stub = identity.stub()
    first = identity.register().tokens
    second = stub.Refresh(pb.RefreshRequest(refresh_token=first.refresh_token)).tokens
    assert second.refresh_token != first.refresh_token
    assert second.access_token
    # Replaying the rotated token (as a thief would) revokes the whole session ...
    replay = pb.RefreshRequest(refresh_token=first.refresh_token)
    assert code_of(stub.Refresh, replay) == grpc.StatusCode.UNAUTHENTICATED
    # ... so the legitimate holder's newer token stops working too.
    newer = pb.RefreshRequest(refresh_token=second.refresh_token)
    assert code_of(stub.Refresh, newer) == grpc.StatusCode.UNAUTHENTICATED


def test_logout_revokes_the_refresh_token(identity: Identity) -> None:
    stub = identity.stub()
    tokens = identity.register().tokens
    stub.Logout(pb.LogoutRequest(refresh_token=tokens.refresh_token))
    refresh = pb.RefreshRequest(refresh_token=tokens.refresh_token)
    assert code_of(stub.Refresh, refresh) == grpc.StatusCode.UNAUTHENTICATED
    unknown = pb.LogoutRequest(refresh_token="rt_unknown")
    assert code_of(stub.Logout, unknown) == grpc.StatusCode.UNAUTHENTICATED


def test_another_tenant_is_not_found(identity: Identity) -> None:
    a, b = identity.register(), identity.register()
    request = pb.GetTenantRequest(tenant_id=b.tenant.id)
    assert (
        code_of(identity.stub().GetTenant, request, metadata=auth(a)) == grpc.StatusCode.NOT_FOUND
    )


def test_racing_registrations_of_one_email_never_fail_internally(identity: Identity) -> None:
    email = f"{uuid.uuid4().hex}@example.com"
    stub = identity.stub()
    request = pb.RegisterRequest(
        tenant_display_name="Race", email=email, password=PASSWORD, display_name="R"
    )
    futures = [stub.Register.future(request) for _ in range(6)]
    codes = []
    for future in futures:
        try:
            future.result()
            codes.append(grpc.StatusCode.OK)
        except grpc.RpcError as exc:
            codes.append(exc.code())
    assert codes.count(grpc.StatusCode.OK) == 1
    assert set(codes) <= {
        grpc.StatusCode.OK,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.ABORTED,
    }
