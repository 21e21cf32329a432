"""CreateApiKey, ListApiKeys, RevokeApiKey and VerifyApiKey; keys used instead of a JWT."""

from __future__ import annotations

import uuid

import grpc
import pytest
from alea.access.v1 import access_pb2
from alea.identity.v1 import identity_pb2 as pb

from tests.integration.identity.conftest import Identity, auth
from tests.integration.identity.test_accounts import code_of
from tests.integration.identity.test_users import add_user

pytestmark = pytest.mark.integration


def create_key(identity: Identity, caller, role: int = access_pb2.ROLE_VIEWER, **changes):
    request = pb.CreateApiKeyRequest(display_name="ci", role=role, **changes)
    return identity.stub().CreateApiKey(request, metadata=auth(caller))


def key_auth(secret: str) -> tuple[tuple[str, str]]:
    return (("x-api-key", secret),)


def test_a_key_authenticates_instead_of_a_jwt(identity: Identity) -> None:
    admin = identity.register()
    created = create_key(identity, admin)
    assert created.secret.startswith(created.api_key.prefix)
    assert created.api_key.role == access_pb2.ROLE_VIEWER
    user = identity.stub().GetUser(
        pb.GetUserRequest(user_id=admin.user.id), metadata=key_auth(created.secret)
    )
    assert user.id == admin.user.id


def test_a_key_acts_with_its_own_role(identity: Identity) -> None:
    admin = identity.register()
    viewer_key = create_key(identity, admin, access_pb2.ROLE_VIEWER)
    request = pb.CreateUserRequest(
        email="k@example.com", password="x" * 12, display_name="K", role=access_pb2.ROLE_VIEWER
    )
    call = identity.stub().CreateUser
    denied = code_of(call, request, metadata=key_auth(viewer_key.secret))
    assert denied == grpc.StatusCode.PERMISSION_DENIED


def test_viewers_cannot_create_keys(identity: Identity) -> None:
    admin = identity.register()
    _, viewer = add_user(identity, admin, access_pb2.ROLE_VIEWER)
    with pytest.raises(grpc.RpcError) as raised:
        create_key(identity, viewer)
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_a_key_cannot_outrank_its_creator(identity: Identity) -> None:
    admin = identity.register()
    _, analyst = add_user(identity, admin, access_pb2.ROLE_ANALYST)
    with pytest.raises(grpc.RpcError) as raised:
        create_key(identity, analyst, access_pb2.ROLE_ADMIN)
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert create_key(identity, analyst, access_pb2.ROLE_ANALYST).api_key.role == 2


def test_create_is_idempotent_and_shows_the_secret_once(identity: Identity) -> None:
    admin = identity.register()
    request_id = str(uuid.uuid4())
    first = create_key(identity, admin, request_id=request_id)
    again = create_key(identity, admin, request_id=request_id)
    assert again.api_key.id == first.api_key.id
    assert first.secret and not again.secret


def test_a_revoked_key_stops_working(identity: Identity) -> None:
    admin = identity.register()
    created = create_key(identity, admin)
    revoked = identity.stub().RevokeApiKey(
        pb.RevokeApiKeyRequest(api_key_id=created.api_key.id), metadata=auth(admin)
    )
    assert revoked.HasField("revoke_time")
    request = pb.GetUserRequest(user_id=admin.user.id)
    call = identity.stub().GetUser
    assert code_of(call, request, metadata=key_auth(created.secret)) == (
        grpc.StatusCode.UNAUTHENTICATED
    )
    verify = pb.VerifyApiKeyRequest(secret=created.secret)
    assert code_of(identity.stub("files").VerifyApiKey, verify) == grpc.StatusCode.UNAUTHENTICATED


def test_services_verify_keys(identity: Identity) -> None:
    admin = identity.register()
    created = create_key(identity, admin, access_pb2.ROLE_ANALYST)
    answer = identity.stub("simulation").VerifyApiKey(pb.VerifyApiKeyRequest(secret=created.secret))
    assert (answer.user_id, answer.tenant_id, answer.role, answer.api_key_id) == (
        admin.user.id,
        admin.tenant.id,
        access_pb2.ROLE_ANALYST,
        created.api_key.id,
    )
    assert not answer.HasField("expire_time")


def test_listing_is_own_keys_or_all_for_admins(identity: Identity) -> None:
    admin = identity.register()
    _, analyst = add_user(identity, admin, access_pb2.ROLE_ANALYST)
    mine = create_key(identity, analyst).api_key
    create_key(identity, admin)
    theirs = identity.stub().ListApiKeys(pb.ListApiKeysRequest(), metadata=auth(analyst))
    assert [k.id for k in theirs.api_keys] == [mine.id]
    everything = identity.stub().ListApiKeys(pb.ListApiKeysRequest(), metadata=auth(admin))
    assert len(everything.api_keys) == 2
    identity.stub().RevokeApiKey(pb.RevokeApiKeyRequest(api_key_id=mine.id), metadata=auth(admin))
    live = identity.stub().ListApiKeys(
        pb.ListApiKeysRequest(filter="revoked = false"), metadata=auth(admin)
    )
    assert mine.id not in [k.id for k in live.api_keys] and len(live.api_keys) == 1


def test_keys_of_others_cannot_be_revoked(identity: Identity) -> None:
    admin, stranger = identity.register(), identity.register()
    _, analyst = add_user(identity, admin, access_pb2.ROLE_ANALYST)
    admins_key = create_key(identity, admin).api_key
    request = pb.RevokeApiKeyRequest(api_key_id=admins_key.id)
    for caller in (analyst, stranger):
        call = identity.stub().RevokeApiKey
        assert code_of(call, request, metadata=auth(caller)) == grpc.StatusCode.NOT_FOUND
