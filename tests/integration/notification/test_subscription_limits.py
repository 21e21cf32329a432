"""Live subscriptions are bounded: real identity and notification processes, notification
started with small limits. One subscription more than a tenant may hold is refused with
RESOURCE_EXHAUSTED naming the limit, the open ones go on receiving, another tenant is not
affected, and a slot is free again once a subscriber disconnects (also one that left before
its first event)."""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from alea.identity.v1 import identity_pb2, identity_pb2_grpc
from alea.notification.v1 import notification_pb2 as pb
from alea.notification.v1 import notification_pb2_grpc
from google.rpc import error_details_pb2, status_pb2

from services.runtime.clients import channel_credentials
from tests.support.services import ServiceProcess, start_service

pytestmark = pytest.mark.integration
PER_TENANT = 2


@dataclass
class Services:
    home: Path
    identity: ServiceProcess
    notification: ServiceProcess

    def channel(self, service: ServiceProcess) -> grpc.Channel:
        credentials = channel_credentials(self.home / "pki", "edge")  # in the edge's place
        return grpc.secure_channel(service.address, credentials)


@pytest.fixture(scope="module")
def services() -> Iterator[Services]:
    home = Path(tempfile.mkdtemp(prefix="alea-subscriptions-"))
    identity = start_service("identity", home, {})
    notification = start_service(
        "notification",
        home,
        {
            "ALEA_IDENTITY_ADDRESS": identity.address,
            "ALEA_NOTIFICATION_MAX_SUBSCRIPTIONS_PER_TENANT": str(PER_TENANT),
        },
    )
    yield Services(home, identity, notification)
    notification.stop()
    identity.stop()
    shutil.rmtree(home, ignore_errors=True)


def _token(services: Services) -> tuple[tuple[str, str], ...]:
    with services.channel(services.identity) as channel:
        reply = identity_pb2_grpc.IdentityServiceStub(channel).Register(
            identity_pb2.RegisterRequest(
                tenant_display_name="limits",
                email=f"limits-{uuid.uuid4().hex[:8]}@example.com",
                password="limits test password 0123",
                display_name="l",
                request_id=str(uuid.uuid4()),
            ),
            timeout=30,
        )
    return (("authorization", f"Bearer {reply.tokens.access_token}"),)


def _subscribe(
    stub: notification_pb2_grpc.NotificationServiceStub, auth: tuple[tuple[str, str], ...]
) -> Any:
    """A Subscribe call, once it stands (its headers came) or was refused (it ended)."""
    call = stub.Subscribe(pb.SubscribeRequest(), metadata=auth, timeout=60)
    call.initial_metadata()
    return call


def test_a_tenant_holds_at_most_its_share_of_live_subscriptions(services: Services) -> None:
    alice, bob = _token(services), _token(services)
    with services.channel(services.notification) as channel:
        stub = notification_pb2_grpc.NotificationServiceStub(channel)
        held = [_subscribe(stub, alice) for _ in range(PER_TENANT)]
        assert all(call.is_active() for call in held)
        refused = _subscribe(stub, alice)
        with pytest.raises(grpc.RpcError) as error:
            next(refused)
        assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert f"{PER_TENANT} live subscriptions" in error.value.details()
        status = status_pb2.Status.FromString(
            dict(error.value.trailing_metadata())["grpc-status-details-bin"]
        )
        failure = error_details_pb2.QuotaFailure()
        assert status.details[0].Unpack(failure)
        assert failure.violations[0].quota_id == "subscriptions_per_tenant"

        other = _subscribe(stub, bob)  # another tenant has a share of its own
        assert other.is_active()
        assert all(call.is_active() for call in held)  # the open ones carry on

        held.pop().cancel()  # a subscriber leaves: its slot is free again
        deadline = time.monotonic() + 30  # the server learns of it asynchronously
        while not (again := _subscribe(stub, alice)).is_active():
            assert time.monotonic() < deadline, again.details()
            time.sleep(0.1)
        for call in (*held, other, again):
            call.cancel()
