"""ListContacts: where notification may email a tenant's users — only notification may ask,
only the tenant's users come back (the named ones, and its admins when asked)."""

from __future__ import annotations

import uuid

import grpc
import pytest
from alea.access.v1 import access_pb2
from alea.identity.v1 import identity_pb2 as pb

from tests.integration.identity.conftest import PASSWORD, Identity, auth


def test_notification_gets_the_named_users_and_the_admins(identity: Identity) -> None:
    admin = identity.register()
    other = identity.register()
    member = identity.stub().CreateUser(
        pb.CreateUserRequest(
            email=f"{uuid.uuid4().hex}@example.com",
            password=PASSWORD,
            display_name="Mo",
            role=access_pb2.ROLE_VIEWER,
        ),
        metadata=auth(admin),
    )
    notification = identity.stub("notification")
    named = notification.ListContacts(
        pb.ListContactsRequest(tenant_id=admin.tenant.id, user_ids=[member.id, other.user.id])
    )
    assert [(c.user_id, c.email, c.role) for c in named.contacts] == [
        (member.id, member.email, access_pb2.ROLE_VIEWER)
    ]  # the other tenant's user is not there
    admins = notification.ListContacts(
        pb.ListContactsRequest(tenant_id=admin.tenant.id, include_admins=True)
    )
    assert [c.user_id for c in admins.contacts] == [admin.user.id]
    for caller in ("files", "client"):
        with pytest.raises(grpc.RpcError) as refused:
            identity.stub(caller).ListContacts(pb.ListContactsRequest(tenant_id=admin.tenant.id))
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
