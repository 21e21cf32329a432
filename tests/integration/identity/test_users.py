"""CreateUser, GetUser, UpdateUser, ListUsers and SearchUsers: roles and tenant scoping."""

from __future__ import annotations

import uuid

import grpc
import pytest
from alea.access.v1 import access_pb2
from alea.identity.v1 import identity_pb2 as pb
from google.protobuf import field_mask_pb2

from tests.integration.identity.conftest import PASSWORD, Identity, auth
from tests.integration.identity.test_accounts import code_of

pytestmark = pytest.mark.integration


def add_user(identity: Identity, admin, role: int, **changes) -> tuple[pb.User, pb.LoginResponse]:
    """A new user of ``admin``'s tenant, and that user signed in."""
    fields = {
        "email": f"{uuid.uuid4().hex}@example.com",
        "password": PASSWORD,
        "display_name": "Someone",
        "role": role,
        **changes,
    }
    user = identity.stub().CreateUser(pb.CreateUserRequest(**fields), metadata=auth(admin))
    login = identity.stub().Login(pb.LoginRequest(email=user.email, password=PASSWORD))
    return user, login


def update(identity: Identity, caller, user: pb.User, *paths: str) -> pb.User:
    request = pb.UpdateUserRequest(user=user, update_mask=field_mask_pb2.FieldMask(paths=paths))
    return identity.stub().UpdateUser(request, metadata=auth(caller))


def test_admin_creates_users_idempotently(identity: Identity) -> None:
    admin = identity.register()
    request = pb.CreateUserRequest(
        email=f"{uuid.uuid4().hex}@example.com",
        password=PASSWORD,
        display_name="Al",
        role=access_pb2.ROLE_ANALYST,
        request_id=str(uuid.uuid4()),
    )
    first = identity.stub().CreateUser(request, metadata=auth(admin))
    again = identity.stub().CreateUser(request, metadata=auth(admin))
    assert first.id == again.id
    assert (first.role, first.tenant_id) == (access_pb2.ROLE_ANALYST, admin.tenant.id)


def test_non_admins_cannot_create_users(identity: Identity) -> None:
    admin = identity.register()
    _, analyst = add_user(identity, admin, access_pb2.ROLE_ANALYST)
    request = pb.CreateUserRequest(
        email="x@example.com", password=PASSWORD, display_name="X", role=access_pb2.ROLE_VIEWER
    )
    call = identity.stub().CreateUser
    assert code_of(call, request, metadata=auth(analyst)) == grpc.StatusCode.PERMISSION_DENIED


def test_create_user_requires_a_role(identity: Identity) -> None:
    admin = identity.register()
    request = pb.CreateUserRequest(email="r@example.com", password=PASSWORD, display_name="R")
    with pytest.raises(grpc.RpcError) as raised:
        identity.stub().CreateUser(request, metadata=auth(admin))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "role" in raised.value.details()


def test_a_user_of_another_tenant_is_not_found(identity: Identity) -> None:
    a, b = identity.register(), identity.register()
    request = pb.GetUserRequest(user_id=b.user.id)
    assert code_of(identity.stub().GetUser, request, metadata=auth(a)) == grpc.StatusCode.NOT_FOUND
    own = identity.stub().GetUser(pb.GetUserRequest(user_id=a.user.id), metadata=auth(a))
    assert own.email == a.user.email


def test_users_update_their_own_name_and_preferences(identity: Identity) -> None:
    admin = identity.register()
    viewer, login = add_user(identity, admin, access_pb2.ROLE_VIEWER)
    change = pb.User(
        id=viewer.id,
        display_name="Vee",
        preferences=pb.Preferences(locale="en-GB", default_trials=5000, default_seed=7),
    )
    updated = update(identity, login, change, "display_name", "preferences")
    assert updated.display_name == "Vee"
    assert (updated.preferences.locale, updated.preferences.default_trials) == ("en-GB", 5000)
    assert updated.preferences.default_seed == 7
    only_locale = pb.User(id=viewer.id, preferences=pb.Preferences(locale="fr"))
    updated = update(identity, login, only_locale, "preferences.locale")
    assert (updated.preferences.locale, updated.preferences.default_trials) == ("fr", 5000)


def test_only_admins_change_others_and_roles(identity: Identity) -> None:
    admin = identity.register()
    viewer, login = add_user(identity, admin, access_pb2.ROLE_VIEWER)
    promote = pb.User(id=viewer.id, role=access_pb2.ROLE_ADMIN)
    with pytest.raises(grpc.RpcError) as raised:
        update(identity, login, promote, "role")
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    rename_admin = pb.User(id=admin.user.id, display_name="Pwned")
    with pytest.raises(grpc.RpcError) as raised:
        update(identity, login, rename_admin, "display_name")
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert update(identity, admin, promote, "role").role == access_pb2.ROLE_ADMIN


def test_unknown_mask_paths_are_named(identity: Identity) -> None:
    admin = identity.register()
    with pytest.raises(grpc.RpcError) as raised:
        update(identity, admin, pb.User(id=admin.user.id, email="new@example.com"), "email")
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "update_mask" in raised.value.details()


def test_the_last_admin_cannot_step_down(identity: Identity) -> None:
    admin = identity.register()
    demote = pb.User(id=admin.user.id, role=access_pb2.ROLE_VIEWER)
    with pytest.raises(grpc.RpcError) as raised:
        update(identity, admin, demote, "role")
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_a_disabled_user_is_locked_out(identity: Identity) -> None:
    admin = identity.register()
    analyst, login = add_user(identity, admin, access_pb2.ROLE_ANALYST)
    update(identity, admin, pb.User(id=analyst.id, disabled=True), "disabled")
    relogin = pb.LoginRequest(email=analyst.email, password=PASSWORD)
    assert code_of(identity.stub().Login, relogin) == grpc.StatusCode.UNAUTHENTICATED
    own = pb.GetUserRequest(user_id=analyst.id)
    call = identity.stub().GetUser
    assert code_of(call, own, metadata=auth(login)) == grpc.StatusCode.UNAUTHENTICATED
    quota = identity.stub().GetQuota
    assert (
        code_of(quota, pb.GetQuotaRequest(), metadata=auth(login))
        == grpc.StatusCode.UNAUTHENTICATED
    )
    refresh = pb.RefreshRequest(refresh_token=login.tokens.refresh_token)
    assert code_of(identity.stub().Refresh, refresh) == grpc.StatusCode.UNAUTHENTICATED


def test_list_users_pages_filters_and_orders(identity: Identity) -> None:
    admin = identity.register()
    for name in ("b", "c", "d"):
        add_user(identity, admin, access_pb2.ROLE_VIEWER, display_name=name)
    stub, seen, token = identity.stub(), [], ""
    while True:
        page = stub.ListUsers(
            pb.ListUsersRequest(page_size=2, page_token=token, order_by="display_name desc"),
            metadata=auth(admin),
        )
        seen += [u.display_name for u in page.users]
        token = page.next_page_token
        if not token:
            break
    assert seen == ["d", "c", "b", "Ann Admin"]
    viewers = stub.ListUsers(
        pb.ListUsersRequest(filter='role = "ROLE_VIEWER"'), metadata=auth(admin)
    )
    assert sorted(u.display_name for u in viewers.users) == ["b", "c", "d"]
    with pytest.raises(grpc.RpcError) as raised:
        stub.ListUsers(pb.ListUsersRequest(filter="password = 1"), metadata=auth(admin))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "filter" in raised.value.details()


def test_search_users_within_the_tenant(identity: Identity) -> None:
    admin, other = identity.register(), identity.register()
    add_user(identity, admin, access_pb2.ROLE_VIEWER, display_name="Zed Zebra_1")
    add_user(identity, other, access_pb2.ROLE_VIEWER, display_name="Zed Zebra_2")
    found = identity.stub().SearchUsers(pb.SearchUsersRequest(query="zebra_"), metadata=auth(admin))
    assert [u.display_name for u in found.users] == ["Zed Zebra_1"]
    none = identity.stub().SearchUsers(pb.SearchUsersRequest(query="%"), metadata=auth(admin))
    assert list(none.users) == []


def test_a_demoted_users_old_token_loses_its_power_here(identity: Identity) -> None:
    admin = identity.register()
    second, second_login = add_user(identity, admin, access_pb2.ROLE_ADMIN)
    update(identity, admin, pb.User(id=second.id, role=access_pb2.ROLE_VIEWER), "role")
    request = pb.CreateUserRequest(
        email=f"{uuid.uuid4().hex}@example.com",
        password=PASSWORD,
        display_name="Late",
        role=access_pb2.ROLE_VIEWER,
    )
    call = identity.stub().CreateUser
    assert code_of(call, request, metadata=auth(second_login)) == grpc.StatusCode.UNAUTHENTICATED
    refreshed = identity.stub().Refresh(
        pb.RefreshRequest(refresh_token=second_login.tokens.refresh_token)
    )
    assert code_of(call, request, metadata=auth(refreshed.tokens.access_token)) == (
        grpc.StatusCode.PERMISSION_DENIED
    )


def test_a_malformed_user_id_is_invalid_argument_naming_it(identity: Identity) -> None:
    """UpdateUser looked a malformed id up and answered NOT_FOUND, where GetUser refuses it."""
    admin = identity.register()
    for bad in ("nope", admin.user.id.replace("-", ""), ""):
        with pytest.raises(grpc.RpcError) as raised:
            update(identity, admin, pb.User(id=bad, display_name="X"), "display_name")
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, bad
        assert raised.value.details().startswith("user.id: "), raised.value.details()
